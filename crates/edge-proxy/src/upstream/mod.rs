//! The central registries behind the edge: [`RegistryPool`] picks one per call by health and
//! measured latency, retries on another when a call gets no answer, and bounds every call by a
//! deadline.
//!
//! Order of attempts: registries whose circuit is closed before ones due a half-open probe;
//! among those, registries whose latency average is within `outlier_factor` × the best one's
//! before the outliers; then by latency. A registry with an open circuit is skipped. At most
//! `max_attempts` registries are tried per call, each once. A definite answer (NOT_FOUND,
//! PERMISSION_DENIED, …) ends the call at once: another registry would say the same.

mod calls;
mod health;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_core::protocol::ErrorKind;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status, Streaming};
use tracing::Instrument;

pub use self::health::{Admission, Health};
use crate::config::{RegistryEndpoint, UpstreamConfig};
use crate::error::{EdgeError, answered_kind};
use crate::metrics::{CallLabels, Metrics, RegistryLabels};
use crate::proto::registry_client::RegistryClient;
use crate::proto::{ZipHeader, ZipResponse};

/// Largest message accepted from a registry: a `.mod` of up to 16 MiB.
const MAX_MESSAGE: usize = 17 << 20;

/// One central registry.
#[derive(Debug)]
pub struct Upstream {
    /// Configured name.
    pub name: String,
    /// HTTP base URL, for the checksum-database forward.
    pub http_base: String,
    client: RegistryClient<Channel>,
    /// Latency and circuit breaker.
    pub health: Health,
}

/// A zip stream that has delivered its header.
#[derive(Debug)]
pub struct ZipOpen {
    /// The header: size, h1, etag and the range the data carries.
    pub header: ZipHeader,
    /// The data messages.
    pub stream: Streaming<ZipResponse>,
    /// Who is sending it.
    pub upstream: Arc<Upstream>,
}

/// Every configured registry, with the call policy.
#[derive(Debug)]
pub struct RegistryPool {
    upstreams: Vec<Arc<Upstream>>,
    config: UpstreamConfig,
    metrics: Arc<Metrics>,
}

impl RegistryPool {
    /// Channels to every registry; none connects before its first call.
    pub fn new(
        endpoints: &[RegistryEndpoint],
        config: &UpstreamConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, String> {
        let mut upstreams = Vec::new();
        for e in endpoints {
            let mut endpoint = Endpoint::from_shared(e.grpc.clone())
                .map_err(|err| format!("registries.grpc {:?}: {err}", e.grpc))?
                .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(10))
                .initial_stream_window_size(1 << 20)
                .initial_connection_window_size(4 << 20);
            // `https://` registries: TLS with the configured CA and client certificate, files
            // read now so a wrong one stops the start with its name.
            if let Some(tls) = e.client_tls()? {
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|err| format!("registries {:?}: TLS settings: {err}", e.name))?;
            }
            let channel = endpoint.connect_lazy();
            let client = RegistryClient::new(channel).max_decoding_message_size(MAX_MESSAGE);
            metrics
                .registry_healthy
                .get_or_create(&RegistryLabels {
                    registry: e.name.clone(),
                })
                .set(1);
            upstreams.push(Arc::new(Upstream {
                name: e.name.clone(),
                http_base: e.http.trim_end_matches('/').to_owned(),
                client,
                health: Health::new(
                    config.failure_threshold,
                    Duration::from_millis(config.cooldown_ms),
                ),
            }));
        }
        Ok(Self {
            upstreams,
            config: config.clone(),
            metrics,
        })
    }

    /// Every registry, in configuration order.
    pub fn upstreams(&self) -> &[Arc<Upstream>] {
        &self.upstreams
    }

    /// Whether at least one registry's circuit is closed.
    pub fn any_healthy(&self) -> bool {
        self.upstreams.iter().any(|u| u.health.is_closed())
    }

    /// The registries a call may go to, best first (see the module comment).
    pub fn order(&self) -> Vec<Arc<Upstream>> {
        let mut available: Vec<(bool, f64, Arc<Upstream>)> = self
            .upstreams
            .iter()
            .filter(|u| u.health.is_available())
            .map(|u| (u.health.is_closed(), u.health.latency_ms(), Arc::clone(u)))
            .collect();
        let best = available
            .iter()
            .map(|(_, latency, _)| *latency)
            .filter(|l| *l > 0.0)
            .fold(f64::INFINITY, f64::min);
        let outlier =
            |latency: f64| best.is_finite() && latency > best * self.config.outlier_factor;
        available.sort_by(|a, b| {
            (!a.0, outlier(a.1))
                .cmp(&(!b.0, outlier(b.1)))
                .then(a.1.total_cmp(&b.1))
        });
        available.into_iter().map(|(_, _, u)| u).collect()
    }

    /// Runs `call` against registries in order until one answers (see the module comment).
    /// `what` names the request in errors. `skip` leaves out a registry (a zip resume after it
    /// failed mid-stream).
    pub async fn call<T, F, Fut>(
        &self,
        what: &str,
        skip: Option<&str>,
        mut call: F,
    ) -> Result<(T, Arc<Upstream>), EdgeError>
    where
        F: FnMut(RegistryClient<Channel>, Duration) -> Fut,
        Fut: Future<Output = Result<T, Status>>,
    {
        let order: Vec<_> = self
            .order()
            .into_iter()
            .filter(|u| Some(u.name.as_str()) != skip)
            .take(self.config.max_attempts)
            .collect();
        if order.is_empty() {
            return Err(EdgeError::NoUpstream {
                what: what.to_owned(),
                reasons: "every registry is cooling down after failures (circuit open)".into(),
                timeout: false,
            });
        }
        let timeout = self.config.request_timeout();
        let mut reasons = Vec::new();
        let mut timed_out = false;
        for upstream in order {
            if upstream.health.admit() == Admission::Rejected {
                self.count(&upstream, "rejected");
                reasons.push(format!("{}: circuit open", upstream.name));
                continue;
            }
            let span = strata_service::span!(
                "edge.registry_call",
                otel.name = %format!("registry {what}"),
                otel.kind = "client",
                rpc.system = "grpc",
                registry = upstream.name.as_str(),
            );
            let started = Instant::now();
            // The request is built inside the span, so it carries the span's traceparent.
            let pending = span.in_scope(|| call(upstream.client.clone(), timeout));
            let result = tokio::time::timeout(timeout, pending.instrument(span.clone())).await;
            let elapsed = started.elapsed();
            self.metrics
                .upstream_duration
                .get_or_create(&RegistryLabels {
                    registry: upstream.name.clone(),
                })
                .observe(elapsed.as_secs_f64());
            match result {
                Ok(Ok(value)) => {
                    self.succeeded(&upstream, elapsed, "ok");
                    return Ok((value, upstream));
                }
                Ok(Err(status)) if !registry_failed(&status) => {
                    self.succeeded(&upstream, elapsed, "answer");
                    return Err(EdgeError::from_status(&upstream.name, &status));
                }
                Ok(Err(status)) => {
                    timed_out = status.code() == Code::DeadlineExceeded;
                    let outcome = if answered_kind(&status).is_some() {
                        "overloaded"
                    } else {
                        "failed"
                    };
                    tracing::debug!(
                        registry = %upstream.name,
                        code = ?status.code(),
                        message = status.message(),
                        outcome,
                        "registry call failed; counts against its health"
                    );
                    self.failed_because(&upstream, outcome, status.message());
                    strata_service::trace::set_error(&span, status.message());
                    reasons.push(format!("{}: {}", upstream.name, status.message()));
                }
                Err(_) => {
                    timed_out = true;
                    self.failed_because(&upstream, "timeout", "no answer within the deadline");
                    strata_service::trace::set_error(&span, "no answer within the deadline");
                    reasons.push(format!("{}: no answer within {timeout:?}", upstream.name));
                }
            }
        }
        Err(EdgeError::NoUpstream {
            what: what.to_owned(),
            reasons: reasons.join("; "),
            timeout: timed_out,
        })
    }

    fn count(&self, upstream: &Upstream, outcome: &'static str) {
        self.metrics
            .upstream_calls
            .get_or_create(&CallLabels {
                registry: upstream.name.clone(),
                outcome,
            })
            .inc();
    }

    fn succeeded(&self, upstream: &Upstream, elapsed: Duration, outcome: &'static str) {
        upstream.health.success(elapsed);
        self.count(upstream, outcome);
        self.set_healthy(upstream);
    }

    /// Records that `upstream` gave no answer (also used when a zip stream breaks).
    pub fn failed(&self, upstream: &Upstream, outcome: &'static str) {
        self.failed_because(upstream, outcome, outcome);
    }

    /// [`RegistryPool::failed`], with what happened for the log line if the circuit opens.
    pub fn failed_because(&self, upstream: &Upstream, outcome: &'static str, reason: &str) {
        if upstream.health.failure() {
            tracing::warn!(
                registry = %upstream.name,
                outcome,
                last_failure = reason,
                "registry circuit opened after consecutive failures"
            );
        }
        self.count(upstream, outcome);
        self.set_healthy(upstream);
    }

    fn set_healthy(&self, upstream: &Upstream) {
        self.metrics
            .registry_healthy
            .get_or_create(&RegistryLabels {
                registry: upstream.name.clone(),
            })
            .set(i64::from(upstream.health.is_closed()));
    }

    /// The zip idle timeout.
    pub fn zip_idle_timeout(&self) -> Duration {
        self.config.zip_idle_timeout()
    }
}

/// Whether `status` means "this registry failed" (another one may answer, and it counts
/// against this one's health), as opposed to a definite answer about the request.
///
/// A status carrying `strata-error-kind` came from the registry's handler: it answered. Only
/// its own `unavailable` (overloaded, storage down, shutting down) is its failure — an
/// upstream's failure (`upstream_unavailable`, `upstream_timeout`), a bad path, a missing
/// module are answers, however many clients ask for them. A status without it comes from the
/// transport (refused connection, reset stream, deadline): a failure for the retryable codes.
/// The same rule judges a status that breaks off a zip stream after its header.
pub(crate) fn registry_failed(status: &Status) -> bool {
    match answered_kind(status) {
        Some(kind) => kind == ErrorKind::Unavailable,
        None => retryable(status.code()),
    }
}

/// Codes that, without a strata error kind, mean "this registry did not answer".
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
            | Code::Aborted
            | Code::DataLoss
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::protocol::ERROR_KIND_METADATA;
    use tonic::metadata::MetadataValue;

    fn answered(code: Code, kind: ErrorKind) -> Status {
        let mut status = Status::new(code, "x");
        status
            .metadata_mut()
            .insert(ERROR_KIND_METADATA, MetadataValue::from_static(kind.name()));
        status
    }

    #[test]
    fn only_transport_failures_and_the_registrys_own_unavailable_count() {
        // Answers of the registry's handler, whatever their code: not its failure.
        for kind in [
            ErrorKind::BadPath,
            ErrorKind::NotFound,
            ErrorKind::InvalidInput,
            ErrorKind::Forbidden,
            ErrorKind::UpstreamUnavailable,
            ErrorKind::UpstreamTimeout,
            ErrorKind::UpstreamFallThrough,
            ErrorKind::IntegrityViolation,
            ErrorKind::Internal,
        ] {
            let code = Code::from_i32(kind.grpc_code() as i32);
            assert!(!registry_failed(&answered(code, kind)), "{kind:?}");
        }
        assert!(registry_failed(&answered(
            Code::Unavailable,
            ErrorKind::Unavailable
        )));
        // Without the kind: the transport's codes are failures, definite codes are answers.
        for code in [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Internal,
            Code::Unknown,
        ] {
            assert!(registry_failed(&Status::new(code, "transport")), "{code:?}");
        }
        for code in [
            Code::NotFound,
            Code::InvalidArgument,
            Code::PermissionDenied,
        ] {
            assert!(!registry_failed(&Status::new(code, "answer")), "{code:?}");
        }
    }
}

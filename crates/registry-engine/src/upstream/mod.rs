//! The HTTP client of one upstream (a GOPROXY or a checksum database), fetched natively with
//! reqwest: credentials, connect/read timeouts, retries with capped exponential backoff and
//! jitter on 429, 5xx, timeouts and connection failures (honouring `Retry-After`), and bounds
//! on the requests in flight: one pool for whole-body (metadata) requests and one for streamed
//! (zip) downloads, so that slow downloads cannot starve `list` (a semaphore permit is held
//! until a streamed body is dropped).
//!
//! Status handling follows the GOPROXY protocol (§3.2) as goproxy/goproxy reads it: 400, 404
//! and 410 mean "not here" and are never retried (the public mirror answers 400 for hosts it
//! refuses and for invalid versions); any other non-200 answer is an upstream failure.
//!
//! URLs in errors and logs never carry the user information of the configured URL.

mod config;

pub use config::{UpstreamConfig, redact_url};

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use strata_core::protocol::ErrorKind;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use strata_service::backoff::Backoff;

/// Longest error body quoted in a message.
const MAX_QUOTED_BODY: usize = 300;

/// Why an upstream request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// 400, 404 or 410: the upstream does not have it (or refuses the path as invalid).
    #[error("{url}: not found upstream ({status}){}", quote(.body))]
    NotFound {
        /// The URL asked.
        url: String,
        /// 400, 404 or 410.
        status: u16,
        /// The start of the upstream's explanation.
        body: String,
    },
    /// Any other non-success status, after the retries.
    #[error("{url}: upstream answered {status}{}", quote(.body))]
    Status {
        /// The URL asked.
        url: String,
        /// The status.
        status: u16,
        /// The start of the upstream's explanation.
        body: String,
    },
    /// No answer within the configured time, after the retries.
    #[error("{url}: upstream timed out")]
    Timeout {
        /// The URL asked.
        url: String,
    },
    /// Connecting or reading failed, after the retries.
    #[error("{url}: upstream unreachable: {message}")]
    Transport {
        /// The URL asked.
        url: String,
        /// What failed.
        message: String,
    },
    /// A body larger than the caller accepts.
    #[error("{url}: upstream response is larger than {limit} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The limit.
        limit: usize,
    },
}

impl UpstreamError {
    /// The protocol-level kind of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            UpstreamError::NotFound { .. } => ErrorKind::NotFound,
            UpstreamError::Timeout { .. } => ErrorKind::UpstreamTimeout,
            UpstreamError::Status { .. }
            | UpstreamError::Transport { .. }
            | UpstreamError::TooLarge { .. } => ErrorKind::UpstreamUnavailable,
        }
    }

    /// Whether the upstream said "not here" (400/404/410), as opposed to failing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, UpstreamError::NotFound { .. })
    }
}

fn quote(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// A response body being streamed, with the concurrency permit it holds.
pub struct UpstreamBody {
    /// `Content-Length`, when the upstream sent one.
    pub content_length: Option<u64>,
    /// The chunks; a read pause longer than the read timeout ends it with an error.
    pub stream: BoxStream<'static, Result<Bytes, UpstreamError>>,
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

/// A client of one upstream.
#[derive(Clone)]
pub struct Upstream {
    /// The base URL as errors and logs show it ([`redact_url`]).
    base: String,
    /// The base URL requests go to, with any user information.
    request_base: String,
    config: UpstreamConfig,
    client: reqwest::Client,
    /// Slots of whole-body requests ([`Upstream::get_bytes`]).
    metadata_permits: Arc<Semaphore>,
    /// Slots of streamed downloads ([`Upstream::get_stream`]).
    zip_permits: Arc<Semaphore>,
}

// The request URL may carry credentials: `Debug` shows the redacted one only.
impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("base", &self.base)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A client for `config` (validated by the configuration loader).
    pub fn new(config: &UpstreamConfig) -> Result<Self, String> {
        config.validate()?;
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            .read_timeout(config.read_timeout())
            .user_agent(concat!("strata-registry/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let base = config.url.trim().trim_end_matches('/').to_owned();
        Ok(Self {
            base: redact_url(&base),
            request_base: base,
            config: config.clone(),
            client,
            metadata_permits: Arc::new(Semaphore::new(config.max_concurrency)),
            zip_permits: Arc::new(Semaphore::new(config.max_zip_concurrency)),
        })
    }

    /// The base URL as it may be shown (user information redacted), without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The full URL of `path` (which starts with `/`) as it may be shown in errors and logs.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GETs `path` and reads the whole body, at most `limit` bytes, in the metadata pool
    /// (`max_concurrency`). Failures of the body are retried like failures of the head.
    pub async fn get_bytes(&self, path: &str, limit: usize) -> Result<Bytes, UpstreamError> {
        let span = self.span(path);
        traced(
            &span,
            self.get_bytes_untraced(path, limit)
                .instrument(span.clone()),
        )
        .await
    }

    async fn get_bytes_untraced(&self, path: &str, limit: usize) -> Result<Bytes, UpstreamError> {
        let url = self.url(path);
        let mut backoff = self.backoff();
        let mut attempt = 1;
        loop {
            let result = match self.send(path, &self.metadata_permits).await {
                Ok((response, _permit)) => read_limited(&url, response, limit).await,
                Err(e) => Err(e),
            };
            match result {
                Err(Attempt::Retry(e, after)) if attempt < self.config.attempts => {
                    attempt += 1;
                    tracing::debug!(%url, error = %e, attempt, "retrying upstream request");
                    tokio::time::sleep(self.delay(&mut backoff, after)).await;
                }
                Err(Attempt::Retry(e, _) | Attempt::Final(e)) => return Err(e),
                Ok(bytes) => return Ok(bytes),
            }
        }
    }

    /// GETs `path` and hands out the body as a stream once the head arrived, in the download
    /// pool (`max_zip_concurrency`; the slot is held until the stream is dropped). Only the
    /// head is retried: a body that fails half-way is the caller's to restart.
    pub async fn get_stream(&self, path: &str) -> Result<UpstreamBody, UpstreamError> {
        let span = self.span(path);
        traced(
            &span,
            self.get_stream_untraced(path).instrument(span.clone()),
        )
        .await
    }

    /// The client span of one GET (all its attempts); [`tracing::Span::none`] with tracing off.
    fn span(&self, path: &str) -> tracing::Span {
        strata_service::span!(
            "upstream.get",
            otel.name = "GET upstream",
            otel.kind = "client",
            http.request.method = "GET",
            url.full = %self.url(path),
        )
    }

    async fn get_stream_untraced(&self, path: &str) -> Result<UpstreamBody, UpstreamError> {
        let url = self.url(path);
        let mut backoff = self.backoff();
        let mut attempt = 1;
        loop {
            let result = match self.send(path, &self.zip_permits).await {
                Ok((response, permit)) => check_status(&url, response)
                    .await
                    .map(|response| stream_body(url.clone(), response, permit)),
                Err(e) => Err(e),
            };
            match result {
                Err(Attempt::Retry(e, after)) if attempt < self.config.attempts => {
                    attempt += 1;
                    tracing::debug!(%url, error = %e, attempt, "retrying upstream request");
                    tokio::time::sleep(self.delay(&mut backoff, after)).await;
                }
                Err(Attempt::Retry(e, _) | Attempt::Final(e)) => return Err(e),
                Ok(body) => return Ok(body),
            }
        }
    }

    fn backoff(&self) -> Backoff {
        let initial = self.config.retry_initial();
        Backoff::new(initial, initial * 10)
    }

    fn delay(&self, backoff: &mut Backoff, retry_after: Option<Duration>) -> Duration {
        let cap = self.config.retry_initial() * 10;
        match retry_after {
            Some(after) => after.min(cap),
            None => backoff.next_delay(),
        }
    }

    /// Sends one GET of `path`, waiting for a slot of `permits` first. The response head must
    /// arrive within the read timeout.
    async fn send(
        &self,
        path: &str,
        permits: &Arc<Semaphore>,
    ) -> Result<(reqwest::Response, OwnedSemaphorePermit), Attempt> {
        // Errors name the shown URL; only the request itself sees the user information (which
        // reqwest turns into Basic credentials and strips from the URL it reports).
        let url = &self.url(path);
        let permit = permits.clone().acquire_owned().await.map_err(|_| {
            Attempt::Final(UpstreamError::Transport {
                url: url.to_owned(),
                message: "client is shutting down".into(),
            })
        })?;
        let mut request = self.client.get(format!("{}{path}", self.request_base));
        if strata_service::trace::enabled() {
            let mut headers = reqwest::header::HeaderMap::new();
            strata_service::trace::inject_headers(&mut headers);
            request = request.headers(headers);
        }
        if let Some(token) = &self.config.token {
            request = request.bearer_auth(token);
        } else if let Some(user) = &self.config.username {
            request = request.basic_auth(user, self.config.password.as_ref());
        }
        let head = tokio::time::timeout(self.config.read_timeout(), request.send()).await;
        match head {
            Err(_) => Err(Attempt::Retry(
                UpstreamError::Timeout {
                    url: url.to_owned(),
                },
                None,
            )),
            Ok(Err(e)) => Err(Attempt::Retry(transport(url, &e), None)),
            Ok(Ok(response)) => Ok((response, permit)),
        }
    }
}

/// Awaits `fut`, marking `span` failed when it fails with anything but "not found".
async fn traced<T>(
    span: &tracing::Span,
    fut: impl std::future::Future<Output = Result<T, UpstreamError>>,
) -> Result<T, UpstreamError> {
    let result = fut.await;
    if let Err(e) = &result
        && !e.is_not_found()
    {
        strata_service::trace::set_error(span, e);
    }
    result
}

/// One attempt's failure: worth retrying (with the server's `Retry-After`) or not.
enum Attempt {
    Retry(UpstreamError, Option<Duration>),
    Final(UpstreamError),
}

fn transport(url: &str, e: &reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        return UpstreamError::Timeout {
            url: url.to_owned(),
        };
    }
    // The source chain says what actually failed (refused, reset, DNS, TLS).
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    UpstreamError::Transport {
        url: url.to_owned(),
        message,
    }
}

/// Passes a 200 through; turns anything else into the matching error.
async fn check_status(
    url: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, Attempt> {
    let status = response.status();
    if status == StatusCode::OK {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = error_body(response).await;
    let url = url.to_owned();
    let status_code = status.as_u16();
    Err(match status {
        // goproxy/goproxy's reading of the protocol: the public mirror answers 400 for paths
        // it will not serve (refused hosts, invalid versions), which is "not here", not a
        // failure of the upstream.
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND | StatusCode::GONE => {
            Attempt::Final(UpstreamError::NotFound {
                url,
                status: status_code,
                body,
            })
        }
        StatusCode::TOO_MANY_REQUESTS => Attempt::Retry(
            UpstreamError::Status {
                url,
                status: status_code,
                body,
            },
            retry_after,
        ),
        s if s.is_server_error() => Attempt::Retry(
            UpstreamError::Status {
                url,
                status: status_code,
                body,
            },
            retry_after,
        ),
        _ => Attempt::Final(UpstreamError::Status {
            url,
            status: status_code,
            body,
        }),
    })
}

async fn read_limited(
    url: &str,
    response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, Attempt> {
    let response = check_status(url, response).await?;
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(Attempt::Final(UpstreamError::TooLarge {
            url: url.to_owned(),
            limit,
        }));
    }
    let mut out = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| Attempt::Retry(transport(url, &e), None))?;
        if out.len() + chunk.len() > limit {
            return Err(Attempt::Final(UpstreamError::TooLarge {
                url: url.to_owned(),
                limit,
            }));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

fn stream_body(
    url: String,
    response: reqwest::Response,
    permit: OwnedSemaphorePermit,
) -> UpstreamBody {
    let content_length = response.content_length();
    let stream = response
        .bytes_stream()
        .map(move |chunk| {
            // The permit lives as long as the stream.
            let _held = &permit;
            chunk.map_err(|e| transport(&url, &e))
        })
        .boxed();
    UpstreamBody {
        content_length,
        stream,
    }
}

/// The first bytes of an error body, as one line of text.
async fn error_body(response: reqwest::Response) -> String {
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        out.extend_from_slice(&chunk);
        if out.len() >= MAX_QUOTED_BODY {
            break;
        }
    }
    out.truncate(MAX_QUOTED_BODY);
    String::from_utf8_lossy(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `Retry-After` in seconds (the HTTP-date form is rare from proxies and ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests;

//! Distributed traces: OpenTelemetry spans exported over OTLP/gRPC, W3C trace context in and out.
//!
//! Off unless an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
//! `[tracing] otlp_endpoint` in a service's file). Off means off: [`span!`](crate::span) makes
//! [`tracing::Span::none`] and the propagation helpers return at once, so the request paths pay
//! one relaxed atomic load. On, every service makes one span per request or job, continues a
//! caller's `traceparent` (HTTP headers, gRPC metadata, a Redis Streams job entry), passes its own
//! on to whatever it calls, and every JSON log line written inside a span carries `trace.id` and
//! `span.id`.
//!
//! Settings, environment first (the OpenTelemetry names), then the file:
//!
//! | variable | `[tracing]` key | meaning |
//! |---|---|---|
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_ENDPOINT` | `otlp_endpoint` | collector's OTLP/gRPC URL; tracing is on when set |
//! | `OTEL_SERVICE_NAME` | `service_name` | `service.name` of the spans (default: the binary's) |
//! | `OTEL_TRACES_SAMPLER` | `sampler` | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on` (default), `parentbased_always_off`, `parentbased_traceidratio` |
//! | `OTEL_TRACES_SAMPLER_ARG` | `sampler_arg` | the ratio for the `*traceidratio` samplers, 0..=1 |
//! | `OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none` | `enabled = false` | off even with an endpoint |

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Whether spans are being made and exported (set once, by [`install`]).
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether tracing is on in this process. Cheap: one relaxed load.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A span of ours: `tracing::info_span!` with the same arguments when tracing is on,
/// [`tracing::Span::none`] when it is off (so the log lines and the request path are exactly
/// what they are without tracing). Target `strata::trace`, which the trace exporter listens to
/// whatever `RUST_LOG` says.
#[macro_export]
macro_rules! span {
    ($name:expr $(, $($fields:tt)*)?) => {
        if $crate::trace::enabled() {
            ::tracing::info_span!(target: "strata::trace", $name $(, $($fields)*)?)
        } else {
            ::tracing::Span::none()
        }
    };
}

/// The current span when tracing is on, else [`tracing::Span::none`] without looking: for
/// `tokio::spawn(fut.instrument(trace::current()))`, so work handed to a task stays in the
/// trace of the request that started it.
#[inline]
pub fn current() -> tracing::Span {
    if enabled() {
        tracing::Span::current()
    } else {
        tracing::Span::none()
    }
}

/// The `[tracing]` table of a service's configuration file. Every key is optional; the
/// `OTEL_*` environment variables win over it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// `false` keeps tracing off even with an endpoint.
    pub enabled: Option<bool>,
    /// The collector's OTLP/gRPC endpoint, e.g. `http://otel-collector:4317`.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of this process's spans.
    pub service_name: Option<String>,
    /// The sampler, by its `OTEL_TRACES_SAMPLER` name.
    pub sampler: Option<String>,
    /// The sampler's ratio.
    pub sampler_arg: Option<f64>,
}

/// What [`install`] sets up: resolved from the environment and a [`TracingConfig`].
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSettings {
    /// OTLP/gRPC endpoint URL.
    pub endpoint: String,
    /// `service.name`.
    pub service_name: String,
    /// The sampler's name, checked.
    pub sampler: String,
    /// Ratio of the ratio samplers.
    pub ratio: f64,
}

const SAMPLERS: &[&str] = &[
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
];

impl TraceSettings {
    /// Resolves the settings: `env` (a variable's value by name) first, then `file`;
    /// `Ok(None)` when tracing is off. An unusable value is an error naming where it came from.
    pub fn resolve(
        file: Option<&TracingConfig>,
        env: impl Fn(&str) -> Option<String>,
        default_service: &str,
    ) -> Result<Option<Self>, String> {
        let empty = TracingConfig::default();
        let file = file.unwrap_or(&empty);
        let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        if let Some(v) = env("OTEL_SDK_DISABLED") {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => return Ok(None),
                "false" => {}
                _ => {
                    return Err(format!(
                        "OTEL_SDK_DISABLED must be true or false, not {v:?}"
                    ));
                }
            }
        }
        if let Some(v) = env("OTEL_TRACES_EXPORTER") {
            match v.trim() {
                "none" => return Ok(None),
                "otlp" => {}
                _ => {
                    return Err(format!(
                        "OTEL_TRACES_EXPORTER must be otlp or none (strata exports OTLP/gRPC), not {v:?}"
                    ));
                }
            }
        }
        if file.enabled == Some(false) {
            return Ok(None);
        }
        let endpoint = match env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .map(|v| (v, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            .or_else(|| {
                env("OTEL_EXPORTER_OTLP_ENDPOINT").map(|v| (v, "OTEL_EXPORTER_OTLP_ENDPOINT"))
            })
            .or_else(|| {
                file.otlp_endpoint
                    .clone()
                    .map(|v| (v, "[tracing] otlp_endpoint"))
            }) {
            Some((v, from)) => {
                let v = v.trim().to_owned();
                let parsed: http::Uri = v
                    .parse()
                    .map_err(|e| format!("{from}: {v:?} is not a URL: {e}"))?;
                if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none()
                {
                    return Err(format!(
                        "{from}: {v:?} must be an http:// or https:// URL of an OTLP/gRPC collector"
                    ));
                }
                v
            }
            None if file.enabled == Some(true) => {
                return Err(
                    "[tracing] enabled = true needs otlp_endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT)"
                        .into(),
                );
            }
            None => return Ok(None),
        };
        let service_name = env("OTEL_SERVICE_NAME")
            .or_else(|| file.service_name.clone())
            .unwrap_or_else(|| default_service.to_owned());
        let (sampler, from) = match env("OTEL_TRACES_SAMPLER") {
            Some(v) => (v.trim().to_owned(), "OTEL_TRACES_SAMPLER"),
            None => (
                file.sampler
                    .clone()
                    .unwrap_or_else(|| "parentbased_always_on".into()),
                "[tracing] sampler",
            ),
        };
        if !SAMPLERS.contains(&sampler.as_str()) {
            return Err(format!(
                "{from}: unknown sampler {sampler:?} (one of {})",
                SAMPLERS.join(", ")
            ));
        }
        let ratio = match env("OTEL_TRACES_SAMPLER_ARG") {
            Some(v) => v.trim().parse::<f64>().map_err(|_| {
                format!("OTEL_TRACES_SAMPLER_ARG must be a number from 0 to 1, not {v:?}")
            })?,
            None => file.sampler_arg.unwrap_or(1.0),
        };
        if !(0.0..=1.0).contains(&ratio) {
            return Err(format!(
                "the sampler ratio must be from 0 to 1, not {ratio}"
            ));
        }
        Ok(Some(Self {
            endpoint,
            service_name,
            sampler,
            ratio,
        }))
    }

    /// Resolves from the process environment.
    pub fn from_env(
        file: Option<&TracingConfig>,
        default_service: &str,
    ) -> Result<Option<Self>, String> {
        Self::resolve(file, |name| std::env::var(name).ok(), default_service)
    }

    fn sampler(&self) -> Sampler {
        let ratio = Sampler::TraceIdRatioBased(self.ratio);
        match self.sampler.as_str() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => ratio,
            "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            "parentbased_traceidratio" => Sampler::ParentBased(Box::new(ratio)),
            _ => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
        }
    }
}

/// Flushes and stops the exporter when dropped (at the end of `main`).
#[derive(Debug)]
pub struct TraceGuard {
    provider: SdkTracerProvider,
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            eprintln!("traces: flushing the exporter at shutdown failed: {e}");
        }
    }
}

/// The weak handle on the process's subscriber, for the log formatter to find a span's trace id.
pub(crate) static DISPATCH: OnceLock<tracing::dispatcher::WeakDispatch> = OnceLock::new();

/// Builds the OTLP exporter and the tracer provider for `settings`, and the layer to install.
/// Must run inside a Tokio runtime (the gRPC exporter's channel lives on it).
pub(crate) fn layer<S>(
    settings: &TraceSettings,
) -> Result<
    (
        tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
        TraceGuard,
    ),
    String,
>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(settings.endpoint.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("the OTLP exporter for {}: {e}", settings.endpoint))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(settings.sampler())
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("strata");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_location(false)
        .with_target(false);
    ENABLED.store(true, Ordering::Relaxed);
    Ok((layer, TraceGuard { provider }))
}

// ---- propagation ----------------------------------------------------------------------------

/// Continues the trace named by a caller's `traceparent` (and `tracestate`): `get` reads a
/// header or metadata value by lower-case name. Nothing when tracing is off or no valid
/// `traceparent` came.
pub fn set_parent(span: &tracing::Span, get: impl Fn(&str) -> Option<String>) {
    if !enabled() || span.is_none() {
        return;
    }
    // The propagator borrows values from its extractor: read the two it needs into an owned map.
    let values = Owned(
        ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|k| get(k).map(|v| (k, v)))
            .collect(),
    );
    if values.0.is_empty() {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&values);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

struct Owned(Vec<(&'static str, String)>);

impl Extractor for Owned {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| *k).collect()
    }
}

/// Continues the trace of `traceparent` (a job entry's field).
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    set_parent(span, |k| {
        (k == "traceparent").then(|| traceparent.to_owned())
    });
}

/// Passes `span`'s context on: calls `set(name, value)` for `traceparent` (and `tracestate`
/// when there is one). Nothing when tracing is off or the span is not recorded.
pub fn inject(span: &tracing::Span, mut set: impl FnMut(&'static str, String)) {
    if !enabled() || span.is_none() {
        return;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return;
    }
    struct Set<'a>(&'a mut dyn FnMut(&'static str, String));
    impl Injector for Set<'_> {
        fn set(&mut self, key: &str, value: String) {
            match key {
                "traceparent" => (self.0)("traceparent", value),
                "tracestate" if !value.is_empty() => (self.0)("tracestate", value),
                _ => {}
            }
        }
    }
    TraceContextPropagator::new().inject_context(&cx, &mut Set(&mut set));
}

/// `span`'s `traceparent`, for a job entry.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let mut out = None;
    inject(span, |k, v| {
        if k == "traceparent" {
            out = Some(v);
        }
    });
    out
}

/// Adds `traceparent`/`tracestate` of the current span to outgoing HTTP headers.
pub fn inject_headers(headers: &mut http::HeaderMap) {
    inject(&tracing::Span::current(), |k, v| {
        if let Ok(v) = http::HeaderValue::from_str(&v) {
            headers.insert(k, v);
        }
    });
}

/// Continues the trace of incoming HTTP `headers` in `span`.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    if !enabled() {
        return;
    }
    set_parent(span, |k| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    });
}

/// The 32-hex trace id of `span`, when tracing is on and it is recorded.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    if !enabled() || span.is_none() {
        return None;
    }
    let cx: Context = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}

/// Marks `span` failed (`otel.status_code = ERROR`) with `message`.
pub fn set_error(span: &tracing::Span, message: impl std::fmt::Display) {
    if !enabled() || span.is_none() {
        return;
    }
    span.set_status(opentelemetry::trace::Status::error(message.to_string()));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(
            TraceSettings::resolve(None, env(&[]), "strata-edge"),
            Ok(None)
        );
        let file = TracingConfig {
            service_name: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(TraceSettings::resolve(Some(&file), env(&[]), "e"), Ok(None));
    }

    #[test]
    fn environment_wins_over_the_file() {
        let file = TracingConfig {
            otlp_endpoint: Some("http://file:4317".into()),
            service_name: Some("from-file".into()),
            sampler: Some("traceidratio".into()),
            sampler_arg: Some(0.5),
            ..Default::default()
        };
        let s = TraceSettings::resolve(Some(&file), env(&[]), "strata-edge")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                s.endpoint.as_str(),
                s.service_name.as_str(),
                s.sampler.as_str(),
                s.ratio
            ),
            ("http://file:4317", "from-file", "traceidratio", 0.5)
        );
        let s = TraceSettings::resolve(
            Some(&file),
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://env:4317"),
                ("OTEL_SERVICE_NAME", "edge-eu"),
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ]),
            "strata-edge",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (
                s.endpoint.as_str(),
                s.service_name.as_str(),
                s.sampler.as_str(),
                s.ratio
            ),
            (
                "http://env:4317",
                "edge-eu",
                "parentbased_traceidratio",
                0.25
            )
        );
        let s = TraceSettings::resolve(
            None,
            env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
            ]),
            "strata-sync",
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.endpoint, "http://traces:4317");
        assert_eq!(s.service_name, "strata-sync");
        assert_eq!(s.sampler, "parentbased_always_on");
    }

    #[test]
    fn switched_off_explicitly() {
        let file = TracingConfig {
            otlp_endpoint: Some("http://file:4317".into()),
            enabled: Some(false),
            ..Default::default()
        };
        assert_eq!(TraceSettings::resolve(Some(&file), env(&[]), "e"), Ok(None));
        for off in [
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_SDK_DISABLED", "true"),
            ][..],
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ][..],
        ] {
            let pairs: &'static [(&str, &str)] = off;
            assert_eq!(TraceSettings::resolve(None, env(pairs), "e"), Ok(None));
        }
    }

    #[test]
    fn bad_values_are_refused_with_their_source() {
        let cases: &[(&'static [(&'static str, &'static str)], &str)] = &[
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317")],
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
            (
                &[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://c:4317")],
                "http:// or https://",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_TRACES_SAMPLER", "sometimes"),
                ],
                "unknown sampler",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_TRACES_SAMPLER_ARG", "half"),
                ],
                "OTEL_TRACES_SAMPLER_ARG",
            ),
            (
                &[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                    ("OTEL_TRACES_SAMPLER_ARG", "2"),
                ],
                "from 0 to 1",
            ),
            (&[("OTEL_SDK_DISABLED", "maybe")], "OTEL_SDK_DISABLED"),
            (
                &[("OTEL_TRACES_EXPORTER", "zipkin")],
                "OTEL_TRACES_EXPORTER",
            ),
        ];
        for (pairs, needle) in cases {
            let err = TraceSettings::resolve(None, env(pairs), "e").unwrap_err();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
        let file = TracingConfig {
            enabled: Some(true),
            ..Default::default()
        };
        assert!(
            TraceSettings::resolve(Some(&file), env(&[]), "e")
                .unwrap_err()
                .contains("otlp_endpoint")
        );
    }

    #[test]
    fn the_file_table_refuses_unknown_keys() {
        let err = toml::from_str::<TracingConfig>("endpoint = \"http://c:4317\"").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn helpers_do_nothing_when_tracing_is_off() {
        let span = tracing::Span::none();
        assert_eq!(traceparent(&span), None);
        assert_eq!(trace_id(&span), None);
        let mut headers = http::HeaderMap::new();
        inject_headers(&mut headers);
        assert!(headers.is_empty());
    }
}

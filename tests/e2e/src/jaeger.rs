//! A real Jaeger v2 (the `jaeger` binary of Jaeger 1.75.0, an OpenTelemetry Collector build that
//! scripts/ensure-deps.sh compiles into `/var/tmp/strata-tools`) receiving OTLP over gRPC and
//! HTTP into in-memory storage, and its HTTP query API (`/api/traces`) read back into plain
//! structs ([`Trace`], [`Span`]) for tests of the traces the services export.
//!
//! Every listener of the collector (the two OTLP receivers, the query extension's HTTP and gRPC
//! servers, the health check, the collector's own Prometheus metrics) is on a free port of
//! 127.0.0.1, so parallel tests and a developer's own Jaeger on the default ports don't clash.
//! Jaeger's own tracing (`jaeger_query.enable_tracing`, on by default in v2, which would export
//! to `localhost:4317`) and the collector's internal traces are off.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::process::Service;

/// The Jaeger release scripts/ensure-deps.sh builds.
pub const JAEGER_VERSION: &str = "1.75.0";

/// How long the collector may take until all its components are up.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Starts retried when a port picked as free was taken by someone else in the meantime.
const START_ATTEMPTS: usize = 3;
/// Polling interval of [`JaegerProcess::wait_for_trace`].
const POLL: Duration = Duration::from_millis(200);

/// The `jaeger` binary: `$STRATA_JAEGER` if set, else
/// `${STRATA_TOOLS_DIR:-/var/tmp/strata-tools}/jaeger-1.75.0/jaeger`. Panics when it is missing
/// (scripts/ensure-deps.sh builds it).
pub fn binary() -> PathBuf {
    let path = match std::env::var_os("STRATA_JAEGER").filter(|v| !v.is_empty()) {
        Some(path) => PathBuf::from(path),
        None => {
            let tools = std::env::var_os("STRATA_TOOLS_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/var/tmp/strata-tools"));
            tools
                .join(format!("jaeger-{JAEGER_VERSION}"))
                .join("jaeger")
        }
    };
    if !path.is_file() {
        panic!(
            "jaeger {JAEGER_VERSION} not found at {}: run scripts/ensure-deps.sh (make deps) to \
             build it, or point STRATA_JAEGER at a jaeger v2 binary",
            path.display()
        );
    }
    path
}

/// The ports of one Jaeger, all on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JaegerPorts {
    /// OTLP/gRPC receiver.
    pub otlp_grpc: u16,
    /// OTLP/HTTP receiver (`/v1/traces`).
    pub otlp_http: u16,
    /// Query API and UI (`jaeger_query` extension, `http`).
    pub query_http: u16,
    /// Query gRPC API (`jaeger_query` extension, `grpc`).
    pub query_grpc: u16,
    /// `healthcheckv2` extension (`/status`).
    pub health: u16,
    /// The collector's own Prometheus metrics (`/metrics`).
    pub metrics: u16,
}

impl JaegerPorts {
    /// Six distinct ports that were free a moment ago (all bound at once, then released).
    fn pick() -> Self {
        let listeners: Vec<TcpListener> = (0..6)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
            .collect();
        let ports: Vec<u16> = listeners
            .iter()
            .map(|l| l.local_addr().expect("a bound address").port())
            .collect();
        Self {
            otlp_grpc: ports[0],
            otlp_http: ports[1],
            query_http: ports[2],
            query_grpc: ports[3],
            health: ports[4],
            metrics: ports[5],
        }
    }
}

/// The collector configuration: OTLP in, memory storage, query API; nothing on a default port.
pub fn config_yaml(ports: &JaegerPorts) -> String {
    let JaegerPorts {
        otlp_grpc,
        otlp_http,
        query_http,
        query_grpc,
        health,
        metrics,
    } = *ports;
    format!(
        "# Written by the strata end-to-end tests: Jaeger v2 receiving OTLP into memory, every
# listener on a port of 127.0.0.1 the test picked.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      # No batch processor: a span is stored before the OTLP request is answered.
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    logs:
      level: info
    metrics:
      level: normal
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {metrics}
    traces:
      level: none

extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000

  jaeger_query:
    storage:
      traces: memstore
    # On by default in v2: it would export Jaeger's own spans to localhost:4317.
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:{query_http}
    grpc:
      endpoint: 127.0.0.1:{query_grpc}

  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:{health}
      status:
        enabled: true
        path: /status

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{otlp_grpc}
      http:
        endpoint: 127.0.0.1:{otlp_http}

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"
    )
}

/// A running Jaeger.
#[derive(Debug)]
pub struct JaegerProcess {
    /// The process.
    pub service: Service,
    /// Its listeners.
    pub ports: JaegerPorts,
    client: reqwest::Client,
}

impl JaegerProcess {
    /// Writes `jaeger.yaml` under `dir`, starts [`binary()`] with it (log: `jaeger.log`) and
    /// waits until every component is up (health check `/status` 200) and the query API
    /// answers (`/api/services` 200). Retries with other ports when one was taken meanwhile.
    pub async fn start(dir: &Path) -> Self {
        let program = binary();
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        let mut attempt = 1;
        loop {
            let ports = JaegerPorts::pick();
            let config = dir.join("jaeger.yaml");
            std::fs::write(&config, config_yaml(&ports)).expect("write jaeger.yaml");
            let log = if attempt == 1 {
                dir.join("jaeger.log")
            } else {
                dir.join(format!("jaeger.{attempt}.log"))
            };
            let service = Service::spawn(
                "jaeger",
                &program,
                &[&format!("--config={}", config.display())],
                &[],
                &log,
            );
            let mut jaeger = Self {
                service,
                ports,
                client: client.clone(),
            };
            match jaeger.wait_ready().await {
                Ok(()) => return jaeger,
                Err(log) if attempt < START_ATTEMPTS && log.contains("address already in use") => {
                    attempt += 1;
                }
                Err(_) => jaeger.service.fail("exited before it was ready"),
            }
        }
    }

    /// Waits for the health check and the query API; the log when the process exited first.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let health = format!("http://127.0.0.1:{}/status", self.ports.health);
        let services = format!("{}/api/services", self.query_url());
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if self.answers_2xx(&health).await && self.answers_2xx(&services).await {
                return Ok(());
            }
            if self.service.exit_status().is_some() {
                return Err(self.service.log());
            }
            if Instant::now() > deadline {
                self.service.fail(&format!(
                    "{health} and {services} did not both answer 2xx within {} s",
                    START_DEADLINE.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn answers_2xx(&self, url: &str) -> bool {
        matches!(self.client.get(url).send().await, Ok(r) if r.status().is_success())
    }

    /// Base URL of the OTLP/gRPC receiver, `http://127.0.0.1:PORT` (an
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for gRPC).
    pub fn otlp_grpc_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.otlp_grpc)
    }

    /// Base URL of the OTLP/HTTP receiver, `http://127.0.0.1:PORT` (an
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for http/protobuf; traces go to `/v1/traces` under it).
    pub fn otlp_http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.otlp_http)
    }

    /// The full OTLP/HTTP traces URL, `http://127.0.0.1:PORT/v1/traces`.
    pub fn otlp_http_traces_url(&self) -> String {
        format!("{}/v1/traces", self.otlp_http_endpoint())
    }

    /// Base URL of the query API and UI, `http://127.0.0.1:PORT`.
    pub fn query_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.query_http)
    }

    /// The service names Jaeger has seen (`/api/services`).
    pub async fn services(&self) -> Result<Vec<String>, String> {
        let body = self
            .get_json(&format!("{}/api/services", self.query_url()))
            .await?;
        let mut names: Vec<String> = body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    /// The traces with a span of `service` (up to 1000, of the last hour):
    /// `/api/traces?service=…`.
    pub async fn traces(&self, service: &str) -> Result<Vec<Trace>, String> {
        let url = format!(
            "{}/api/traces?service={}&limit=1000&lookback=1h",
            self.query_url(),
            encode(service)
        );
        let body = self.get_json(&url).await?;
        parse_traces(&body).map_err(|e| format!("GET {url}: {e}"))
    }

    /// One trace by id (`/api/traces/{id}`); `Ok(None)` when Jaeger doesn't have it.
    pub async fn trace(&self, trace_id: &str) -> Result<Option<Trace>, String> {
        let url = format!(
            "{}/api/traces/{}",
            self.query_url(),
            normalise_id(trace_id, 32)
        );
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let text = response
            .text()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let body: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))?;
        let traces = parse_traces(&body).map_err(|e| format!("GET {url}: {e}"))?;
        Ok(traces.into_iter().next())
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url}: {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))
    }

    /// Polls [`traces`](Self::traces) of `service` every 200 ms until one satisfies `pick`, and
    /// returns it. After `timeout`, panics with the traces seen (each as a [`Trace::tree`]),
    /// the services Jaeger knows, and the tail of Jaeger's log.
    pub async fn wait_for_trace(
        &self,
        service: &str,
        timeout: Duration,
        pick: impl Fn(&Trace) -> bool,
    ) -> Trace {
        let deadline = Instant::now() + timeout;
        loop {
            let result = self.traces(service).await;
            if let Ok(traces) = &result
                && let Some(found) = traces.iter().find(|t| pick(t))
            {
                return found.clone();
            }
            if Instant::now() >= deadline {
                let mut message = format!(
                    "no trace of service {service:?} matched within {:.1} s; ",
                    timeout.as_secs_f64()
                );
                match &result {
                    Ok(traces) => message += &summary(traces),
                    Err(e) => message += &format!("the last query failed: {e}\n"),
                }
                match self.services().await {
                    Ok(names) => message += &format!("services Jaeger knows: {names:?}"),
                    Err(e) => message += &format!("services: {e}"),
                }
                self.service.fail(&message);
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// "N traces seen:" and the tree of each.
pub fn summary(traces: &[Trace]) -> String {
    let mut out = format!("{} trace(s) seen:\n", traces.len());
    for trace in traces {
        let _ = writeln!(
            out,
            "trace {} ({} spans)",
            trace.trace_id,
            trace.spans.len()
        );
        for line in trace.tree().lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    out
}

/// One trace as Jaeger's query API returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// Its spans, in Jaeger's order.
    pub spans: Vec<Span>,
}

/// One span, its process resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The span a `CHILD_OF` reference names (OTLP's parent), else the first `FOLLOWS_FROM`
    /// one into the same trace (an OTLP link; links into other traces are not parents);
    /// 16 lowercase hex digits.
    pub parent_span_id: Option<String>,
    /// The span name.
    pub operation_name: String,
    /// `serviceName` of the span's process (OTLP's `service.name` resource attribute).
    pub service_name: String,
    /// Span attributes, plus what Jaeger derives from OTLP fields (`span.kind`,
    /// `otel.scope.name`, `otel.status_code`, `error`…); values as strings (`42`, `true`).
    pub tags: BTreeMap<String, String>,
    /// The tags of the span's process (the other resource attributes), values as strings.
    pub process_tags: BTreeMap<String, String>,
    /// Start, microseconds since the Unix epoch.
    pub start_time_us: u64,
    /// Duration, microseconds.
    pub duration_us: u64,
}

impl Span {
    /// The value of tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }
}

impl Trace {
    /// The spans named `op`, in Jaeger's order.
    pub fn spans_named(&self, op: &str) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|s| s.operation_name == op)
            .collect()
    }

    /// The span with id `id` (any case; leading zeros may be left out).
    pub fn span(&self, id: &str) -> Option<&Span> {
        let id = normalise_id(id, 16);
        self.spans.iter().find(|s| s.span_id == id)
    }

    /// The parent of `span` in this trace (`None` for a root, or when the parent is missing).
    pub fn parent_of(&self, span: &Span) -> Option<&Span> {
        self.span(span.parent_span_id.as_deref()?)
    }

    /// Whether the span with id `ancestor_id` is a parent, grandparent… of `span` in this trace.
    pub fn has_ancestor(&self, span: &Span, ancestor_id: &str) -> bool {
        let ancestor_id = normalise_id(ancestor_id, 16);
        let mut current = span;
        // At most one step per span: a reference cycle can't loop forever.
        for _ in 0..self.spans.len() {
            match self.parent_of(current) {
                Some(parent) if parent.span_id == ancestor_id => return true,
                Some(parent) => current = parent,
                None => return false,
            }
        }
        false
    }

    /// The service names of its spans.
    pub fn services(&self) -> BTreeSet<String> {
        self.spans.iter().map(|s| s.service_name.clone()).collect()
    }

    /// The roots: spans without a parent in this trace.
    pub fn roots(&self) -> Vec<&Span> {
        self.spans
            .iter()
            .filter(|s| self.parent_of(s).is_none())
            .collect()
    }

    /// The spans whose parent is `span`, by start time.
    pub fn children_of(&self, span: &Span) -> Vec<&Span> {
        let mut children: Vec<&Span> = self
            .spans
            .iter()
            .filter(|s| s.parent_span_id.as_deref() == Some(span.span_id.as_str()))
            .collect();
        children.sort_by_key(|s| (s.start_time_us, s.span_id.clone()));
        children
    }

    /// An indented tree, one line per span, `service: operation`, children by start time; a
    /// span whose parent is not in the trace is a root marked `(parent … missing)`.
    pub fn tree(&self) -> String {
        let mut roots = self.roots();
        roots.sort_by_key(|s| (s.start_time_us, s.span_id.clone()));
        let mut out = String::new();
        let mut seen = BTreeSet::new();
        for root in roots {
            self.render(root, 0, &mut out, &mut seen);
        }
        // Spans in a reference cycle are reachable from no root.
        for span in &self.spans {
            if !seen.contains(span.span_id.as_str()) {
                let _ = writeln!(
                    out,
                    "{}: {} (in a reference cycle)",
                    span.service_name, span.operation_name
                );
            }
        }
        out
    }

    fn render<'a>(
        &'a self,
        span: &'a Span,
        depth: usize,
        out: &mut String,
        seen: &mut BTreeSet<&'a str>,
    ) {
        if !seen.insert(&span.span_id) {
            return;
        }
        let missing = match &span.parent_span_id {
            Some(parent) if self.span(parent).is_none() => format!(" (parent {parent} missing)"),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "{}{}: {} [{} µs]{missing}",
            "  ".repeat(depth),
            span.service_name,
            span.operation_name,
            span.duration_us
        );
        for child in self.children_of(span) {
            self.render(child, depth + 1, out, seen);
        }
    }
}

/// The traces of a `/api/traces` answer (`{"data": [...], "errors": ...}`), or its errors.
pub fn parse_traces(body: &serde_json::Value) -> Result<Vec<Trace>, String> {
    if let Some(errors) = body.get("errors").filter(|e| !e.is_null())
        && errors.as_array().is_none_or(|a| !a.is_empty())
    {
        return Err(format!("Jaeger answered errors: {errors}"));
    }
    let Some(data) = body.get("data") else {
        return Err(format!("no \"data\" in {body}"));
    };
    if data.is_null() {
        return Ok(Vec::new());
    }
    data.as_array()
        .ok_or_else(|| format!("\"data\" is not an array: {data}"))?
        .iter()
        .map(parse_trace)
        .collect()
}

/// One element of `data`.
fn parse_trace(trace: &serde_json::Value) -> Result<Trace, String> {
    let trace_id = normalise_id(str_field(trace, "traceID")?, 32);
    let processes = trace.get("processes").and_then(|p| p.as_object());
    let spans = trace
        .get("spans")
        .and_then(|s| s.as_array())
        .ok_or_else(|| format!("trace {trace_id}: no \"spans\" array"))?
        .iter()
        .map(|span| {
            let process = match span.get("process").filter(|p| p.is_object()) {
                Some(inline) => Some(inline),
                None => span
                    .get("processID")
                    .and_then(|id| id.as_str())
                    .and_then(|id| processes?.get(id)),
            };
            parse_span(span, process).map_err(|e| format!("trace {trace_id}: {e}"))
        })
        .collect::<Result<Vec<Span>, String>>()?;
    Ok(Trace { trace_id, spans })
}

fn parse_span(
    span: &serde_json::Value,
    process: Option<&serde_json::Value>,
) -> Result<Span, String> {
    let span_id = normalise_id(str_field(span, "spanID")?, 16);
    let trace_id = normalise_id(str_field(span, "traceID")?, 32);
    let references = span
        .get("references")
        .and_then(|r| r.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    // The first reference of `kind` into this trace (an OTLP link may point into another one).
    let reference = |kind: &str| {
        references
            .iter()
            .filter(|r| r.get("refType").and_then(|t| t.as_str()) == Some(kind))
            .filter(|r| {
                r.get("traceID")
                    .and_then(|t| t.as_str())
                    .is_none_or(|t| normalise_id(t, 32) == trace_id)
            })
            .find_map(|r| r.get("spanID")?.as_str())
    };
    let parent_span_id = reference("CHILD_OF")
        .or_else(|| span.get("parentSpanID")?.as_str().filter(|p| !p.is_empty()))
        .or_else(|| reference("FOLLOWS_FROM"))
        .map(|id| normalise_id(id, 16));
    let service_name = process
        .and_then(|p| p.get("serviceName")?.as_str())
        .ok_or_else(|| format!("span {span_id}: no process with a serviceName"))?
        .to_owned();
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        operation_name: str_field(span, "operationName")?.to_owned(),
        service_name,
        tags: key_values(span.get("tags")),
        process_tags: key_values(process.and_then(|p| p.get("tags"))),
        start_time_us: span.get("startTime").and_then(|t| t.as_u64()).unwrap_or(0),
        duration_us: span.get("duration").and_then(|t| t.as_u64()).unwrap_or(0),
    })
}

fn str_field<'a>(value: &'a serde_json::Value, key: &str) -> Result<&'a str, String> {
    value
        .get(key)
        .and_then(|v| v.as_str())
        .ok_or_else(|| format!("no string {key:?} in {value}"))
}

/// Jaeger's `[{"key", "type", "value"}]`, values stringified (strings as they are).
fn key_values(list: Option<&serde_json::Value>) -> BTreeMap<String, String> {
    list.and_then(|l| l.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|kv| {
            let key = kv.get("key")?.as_str()?.to_owned();
            let value = match kv.get("value")? {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key, value))
        })
        .collect()
}

/// `id` as `width` lowercase hex digits: Jaeger writes a trace id whose high 64 bits are zero
/// as 16 digits, and other writers drop leading zeros.
pub fn normalise_id(id: &str, width: usize) -> String {
    let id = id.trim().to_ascii_lowercase();
    format!("{id:0>width$}")
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a real `/api/traces` answer (Jaeger 1.75.0, OTLP in): a trace id with a zero
    /// high half written as 16 digits, two processes, a CHILD_OF chain, FOLLOWS_FROM references
    /// (an OTLP link: into another trace, which is no parent, and next to a CHILD_OF, which wins),
    /// typed tags.
    const SAMPLE: &str = r#"{
      "data": [{
        "traceID": "4BF92F3577B34DA6",
        "spans": [
          {"traceID": "4bf92f3577b34da6", "spanID": "00f067aa0ba902b7", "operationName": "GET /mod/@v/list",
           "references": [{"refType": "FOLLOWS_FROM", "traceID": "0af7651916cd43dd8448eb211c80319c", "spanID": "b7ad6b7169203331"}],
           "startTime": 1700000000000000, "duration": 1500,
           "tags": [{"key": "span.kind", "type": "string", "value": "server"},
                    {"key": "http.response.status_code", "type": "int64", "value": 200},
                    {"key": "error", "type": "bool", "value": false},
                    {"key": "ratio", "type": "float64", "value": 0.5}],
           "logs": [], "processID": "p1", "warnings": null},
          {"traceID": "4bf92f3577b34da6", "spanID": "53995c3f42cd8ad8", "operationName": "registry.fetch",
           "references": [{"refType": "FOLLOWS_FROM", "traceID": "4bf92f3577b34da6", "spanID": "1111111111111111"},
                          {"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6", "spanID": "00f067aa0ba902b7"}],
           "startTime": 1700000000000100, "duration": 900,
           "tags": [{"key": "span.kind", "type": "string", "value": "client"}],
           "logs": [], "processID": "p1", "warnings": null},
          {"traceID": "4bf92f3577b34da6", "spanID": "a2fb4a1d1a96d312", "operationName": "GetModule",
           "references": [{"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6", "spanID": "53995c3f42cd8ad8"}],
           "startTime": 1700000000000200, "duration": 500,
           "tags": [], "logs": [], "processID": "p2", "warnings": null},
          {"traceID": "4bf92f3577b34da6", "spanID": "b7ad6b7169203331", "operationName": "s3.get",
           "references": [{"refType": "FOLLOWS_FROM", "traceID": "4bf92f3577b34da6", "spanID": "a2fb4a1d1a96d312"}],
           "startTime": 1700000000000300, "duration": 100,
           "tags": [], "logs": [], "processID": "p2", "warnings": null},
          {"traceID": "4bf92f3577b34da6", "spanID": "1111111111111111", "operationName": "orphan",
           "references": [{"refType": "CHILD_OF", "traceID": "4bf92f3577b34da6", "spanID": "2222222222222222"}],
           "startTime": 1700000000000400, "duration": 10,
           "tags": [], "logs": [], "processID": "p2", "warnings": null}
        ],
        "processes": {
          "p1": {"serviceName": "strata-edge", "tags": [{"key": "service.version", "type": "string", "value": "0.1.0"}]},
          "p2": {"serviceName": "strata-registry", "tags": []}
        },
        "warnings": null
      }],
      "total": 0, "limit": 0, "offset": 0, "errors": null
    }"#;

    fn sample() -> Trace {
        let body: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        let mut traces = parse_traces(&body).unwrap();
        assert_eq!(traces.len(), 1);
        traces.remove(0)
    }

    #[test]
    fn ids_are_padded_lowercase_hex() {
        let trace = sample();
        assert_eq!(trace.trace_id, "00000000000000004bf92f3577b34da6");
        assert!(trace.spans.iter().all(|s| s.trace_id == trace.trace_id));
        assert_eq!(trace.spans[0].span_id, "00f067aa0ba902b7");
        assert_eq!(normalise_id("F067AA0BA902B7", 16), "00f067aa0ba902b7");
        assert_eq!(
            normalise_id("4bf92f3577b34da6a3ce929d0e0e4736", 32),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }

    #[test]
    fn spans_resolve_processes_parents_and_tags() {
        let trace = sample();
        let root = &trace.spans[0];
        assert_eq!(root.operation_name, "GET /mod/@v/list");
        assert_eq!(root.service_name, "strata-edge");
        assert_eq!(root.parent_span_id, None);
        assert_eq!(root.tag("span.kind"), Some("server"));
        assert_eq!(root.tag("http.response.status_code"), Some("200"));
        assert_eq!(root.tag("error"), Some("false"));
        assert_eq!(root.tag("ratio"), Some("0.5"));
        assert_eq!(root.process_tags["service.version"], "0.1.0");
        assert_eq!(root.start_time_us, 1_700_000_000_000_000);
        assert_eq!(root.duration_us, 1500);

        let fetch = trace.spans_named("registry.fetch")[0];
        assert_eq!(fetch.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        let get_module = trace.spans_named("GetModule");
        assert_eq!(get_module.len(), 1);
        let get_module = get_module[0];
        assert_eq!(get_module.service_name, "strata-registry");
        assert_eq!(
            trace
                .parent_of(get_module)
                .map(|p| p.operation_name.as_str()),
            Some("registry.fetch")
        );
        let s3 = trace.span("B7AD6B7169203331").unwrap();
        assert_eq!(s3.parent_span_id.as_deref(), Some("a2fb4a1d1a96d312"));
        assert!(trace.has_ancestor(s3, "F067AA0BA902B7"));
        assert!(trace.has_ancestor(s3, "53995c3f42cd8ad8"));
        assert!(!trace.has_ancestor(root, "53995c3f42cd8ad8"));
        let orphan = trace.span("1111111111111111").unwrap();
        assert!(trace.parent_of(orphan).is_none());
        assert!(!trace.has_ancestor(orphan, "00f067aa0ba902b7"));
        assert_eq!(
            trace.services(),
            BTreeSet::from(["strata-edge".to_owned(), "strata-registry".to_owned()])
        );
        assert!(trace.spans_named("nothing").is_empty());
        assert!(trace.span("0").is_none());
    }

    #[test]
    fn tree_indents_children_under_parents() {
        assert_eq!(
            sample().tree(),
            "strata-edge: GET /mod/@v/list [1500 µs]\n\
             \x20 strata-edge: registry.fetch [900 µs]\n\
             \x20   strata-registry: GetModule [500 µs]\n\
             \x20     strata-registry: s3.get [100 µs]\n\
             strata-registry: orphan [10 µs] (parent 2222222222222222 missing)\n"
        );
        let summary = summary(&[sample()]);
        assert!(
            summary.starts_with(
                "1 trace(s) seen:\ntrace 00000000000000004bf92f3577b34da6 (5 spans)\n"
            )
        );
        assert!(summary.contains("\n      strata-registry: GetModule"));
    }

    #[test]
    fn reference_cycles_terminate() {
        let body = serde_json::json!({"data": [{
            "traceID": "1",
            "spans": [
                {"traceID": "1", "spanID": "a", "operationName": "x", "processID": "p",
                 "references": [{"refType": "CHILD_OF", "traceID": "1", "spanID": "b"}]},
                {"traceID": "1", "spanID": "b", "operationName": "y", "processID": "p",
                 "references": [{"refType": "CHILD_OF", "traceID": "1", "spanID": "a"}]}
            ],
            "processes": {"p": {"serviceName": "s"}}
        }]});
        let trace = parse_traces(&body).unwrap().remove(0);
        assert!(!trace.has_ancestor(&trace.spans[0], "c"));
        assert!(trace.has_ancestor(&trace.spans[0], "b"));
        assert_eq!(
            trace.tree(),
            "s: x (in a reference cycle)\ns: y (in a reference cycle)\n"
        );
    }

    #[test]
    fn empty_and_error_answers() {
        let empty =
            serde_json::json!({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": null});
        assert_eq!(parse_traces(&empty), Ok(Vec::new()));
        let null = serde_json::json!({"data": null, "errors": null});
        assert_eq!(parse_traces(&null), Ok(Vec::new()));
        let error = serde_json::json!({"data": null, "total": 0, "limit": 0, "offset": 0,
            "errors": [{"code": 400, "msg": "parameter 'service' is required"}]});
        assert!(
            parse_traces(&error)
                .unwrap_err()
                .contains("parameter 'service' is required")
        );
        let no_process = serde_json::json!({"data": [{"traceID": "1", "spans": [
            {"traceID": "1", "spanID": "2", "operationName": "x", "processID": "p9"}], "processes": {}}]});
        assert!(
            parse_traces(&no_process)
                .unwrap_err()
                .contains("serviceName")
        );
    }

    #[test]
    fn config_uses_only_the_picked_ports() {
        let ports = JaegerPorts::pick();
        let yaml = config_yaml(&ports);
        let mut listed: Vec<u16> = yaml
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                l.strip_prefix("endpoint: 127.0.0.1:")
                    .or_else(|| l.strip_prefix("port: "))
                    .map(|p| p.parse().unwrap())
            })
            .collect();
        listed.sort_unstable();
        let mut picked = vec![
            ports.otlp_grpc,
            ports.otlp_http,
            ports.query_http,
            ports.query_grpc,
            ports.health,
            ports.metrics,
        ];
        picked.sort_unstable();
        picked.dedup();
        assert_eq!(picked.len(), 6, "distinct ports");
        assert_eq!(listed, picked);
        assert!(yaml.contains("enable_tracing: false"));
        assert_eq!(encode("strata edge/α"), "strata%20edge%2F%CE%B1");
    }
}

//! The HTTP front end: routes, the GOPROXY handler and its access log. The listener and
//! connection handling are in [`server`].
//!
//! Routes: `/healthz`; `/readyz` and `/metrics` unless they have a listener of their own
//! (`server.admin_listen`, [`handle_admin`]); then the longest configured prefix names the
//! repository, and the rest of the path is either `sumdb/<name>/…` (parsed into a
//! `SumDbRequest`, see [`sumdb`]) or a GOPROXY path, parsed into a `ProxyRequest` before
//! anything else happens. The path is percent-decoded exactly once, before routing, and an
//! encoded `/` is refused: what routing saw is what the parsers see.

mod ops;
pub mod respond;
pub mod server;
mod sumdb;
pub mod zerocopy;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use strata_core::path::percent_decode_path;
use strata_core::protocol::{CacheClass, ErrorKind, ProxyRequest, private_cache_control};
use tracing::Instrument;

use self::respond::{ResponseBody, X_CACHE};
use crate::edge::Edge;
use crate::error::EdgeError;
use crate::metrics::{KindLabels, RequestLabels};

/// Handles one request (never fails: errors become responses).
pub async fn handle<B>(
    edge: Arc<Edge>,
    request: Request<B>,
) -> Result<Response<ResponseBody>, Infallible> {
    if !strata_service::trace::enabled() {
        return handle_request(edge, request).await;
    }
    let span = strata_service::span!(
        "edge.request",
        otel.name = %format!("{} edge", request.method()),
        otel.kind = "server",
        http.request.method = request.method().as_str(),
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    strata_service::trace::set_parent_from_headers(&span, request.headers());
    handle_request(edge, request).instrument(span).await
}

/// The peer address of a client connection (a request extension set by the listener), for
/// the access log's `client.address`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

async fn handle_request<B>(
    edge: Arc<Edge>,
    request: Request<B>,
) -> Result<Response<ResponseBody>, Infallible> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut log = AccessLog::default();
    let mut response = route(&edge, &request, &mut log).await;
    if request.headers().contains_key(header::AUTHORIZATION) && log.kind != "ops" {
        privatize(&mut response);
    }
    let status = response.status().as_u16();
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|_| method != Method::HEAD)
        .unwrap_or(0);
    let cache = response
        .headers()
        .get(X_CACHE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let m = &edge.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            kind: log.kind,
            status,
        })
        .inc();
    m.request_duration
        .get_or_create(&KindLabels { kind: log.kind })
        .observe(started.elapsed().as_secs_f64());
    m.bytes_served
        .get_or_create(&KindLabels { kind: log.kind })
        .inc_by(bytes);
    if strata_service::trace::enabled() {
        let span = tracing::Span::current();
        span.record("http.response.status_code", status);
        if status >= 500 {
            strata_service::trace::set_error(&span, format!("HTTP {status}"));
        }
    }
    if log.kind != "ops" {
        let client = request
            .extensions()
            .get::<ClientAddr>()
            .map(|c| c.0.ip().to_string())
            .unwrap_or_default();
        tracing::info!(
            target: "strata_edge::access",
            method = method.as_str(),
            path = path.as_str(),
            repository = log.repo.as_str(),
            module = log.module.as_str(),
            version = log.version.as_str(),
            kind = log.kind,
            status,
            cache,
            upstream = log.upstream.as_str(),
            bytes,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            client.address = client.as_str(),
        );
    }
    Ok(response)
}

/// Marks an answer to a client that sent credentials as its own: `Cache-Control: private`
/// and `Vary: Authorization`, so no shared cache between the edge and the client hands it to
/// someone else. (Whether the repository also allows anonymous reads is the registry's to
/// know; an authenticated answer is treated as private either way.)
fn privatize(response: &mut Response<ResponseBody>) {
    let h = response.headers_mut();
    if let Some(value) = h
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(private_cache_control)
        .and_then(|v| HeaderValue::from_str(&v).ok())
    {
        h.insert(header::CACHE_CONTROL, value);
    }
    h.append(header::VARY, HeaderValue::from_static("authorization"));
}

/// What the access log line says about a request.
#[derive(Debug)]
struct AccessLog {
    kind: &'static str,
    repo: String,
    module: String,
    version: String,
    upstream: String,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            kind: "other",
            repo: String::new(),
            module: String::new(),
            version: String::new(),
            upstream: String::new(),
        }
    }
}

async fn route<B>(
    edge: &Arc<Edge>,
    request: &Request<B>,
    log: &mut AccessLog,
) -> Response<ResponseBody> {
    // The go command percent-encodes `!` (case-encoding) as `%21`.
    let decoded = match percent_decode_path(request.uri().path()) {
        Ok(decoded) => decoded,
        Err(reason) => {
            return respond::text(
                StatusCode::NOT_FOUND,
                CacheClass::NotFound,
                format!("invalid request path: {reason}"),
            );
        }
    };
    let path = decoded.as_str();
    match path {
        "/healthz" => {
            log.kind = "ops";
            return ops::handle(edge, path);
        }
        "/readyz" | "/metrics" if edge.config.server.admin_listen.is_none() => {
            log.kind = "ops";
            return ops::handle(edge, path);
        }
        "/readyz" | "/metrics" => {
            log.kind = "ops";
            return respond::text(
                StatusCode::NOT_FOUND,
                CacheClass::NotFound,
                format!("{path} is served on the admin listener, not here"),
            );
        }
        _ => {}
    }
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut r = respond::text(
            StatusCode::METHOD_NOT_ALLOWED,
            CacheClass::UpstreamFailure,
            "the module proxy is read-only: use GET or HEAD",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some((repo, rest)) = edge.config.route(path) else {
        return respond::text(
            StatusCode::NOT_FOUND,
            CacheClass::NotFound,
            format!("no repository is served at {path:?}"),
        );
    };
    log.repo = repo.to_owned();
    let auth = match request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str())
    {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return respond::error(&EdgeError::Registry {
                kind: ErrorKind::Unauthenticated,
                registry: String::new(),
                message: "the Authorization header is not readable text".into(),
            });
        }
    };
    if let Some(sumdb_path) = rest.strip_prefix("sumdb/") {
        log.kind = "sumdb";
        return sumdb::handle(edge, repo, sumdb_path, auth).await;
    }
    let parsed = match ProxyRequest::parse(rest) {
        Ok(p) => p,
        Err(e) => {
            return respond::text(StatusCode::NOT_FOUND, CacheClass::NotFound, e.to_string());
        }
    };
    log.kind = parsed.kind_name();
    log.module = parsed.module().as_str().to_owned();
    log.version = match &parsed {
        ProxyRequest::Info(_, v) | ProxyRequest::Mod(_, v) | ProxyRequest::Zip(_, v) => {
            v.as_str().to_owned()
        }
        ProxyRequest::Query(_, q) => q.clone(),
        _ => String::new(),
    };
    match edge.serve(repo, &parsed, auth).await {
        Ok(answer) => {
            log.upstream = answer.meta.source.clone().unwrap_or_default();
            if !matches!(parsed, ProxyRequest::Query(..)) {
                edge.heat.record(repo, &log.module, &log.version);
            }
            // Bytes that are also in a disk-tier file may go with sendfile on HTTP/1 over
            // plain TCP (the listener sets the extension only there).
            let zero_copy = request
                .extensions()
                .get::<zerocopy::ZeroCopy>()
                .filter(|_| request.version() <= http::Version::HTTP_11);
            let delivery = respond::Delivery {
                disk: Arc::clone(&edge.disk),
                zero_copy,
                sendfile_min_bytes: edge.config.server.sendfile_min_bytes,
            };
            respond::answer(
                method,
                request.headers(),
                parsed.cache_class(),
                answer,
                delivery,
            )
            .await
        }
        Err(e) => {
            if let EdgeError::Registry { registry, .. } = &e {
                log.upstream = registry.clone();
            }
            respond::error(&e)
        }
    }
}

/// Handles one request on the admin listener: `/healthz`, `/readyz`, `/metrics`, nothing else.
pub async fn handle_admin<B>(
    edge: Arc<Edge>,
    request: Request<B>,
) -> Result<Response<ResponseBody>, Infallible> {
    let path = request.uri().path();
    let response = match (request.method(), path) {
        (&Method::GET | &Method::HEAD, "/healthz" | "/readyz" | "/metrics") => {
            ops::handle(&edge, path)
        }
        (&Method::GET | &Method::HEAD, _) => respond::text(
            StatusCode::NOT_FOUND,
            CacheClass::NotFound,
            "the admin listener serves /healthz, /readyz and /metrics only",
        ),
        _ => respond::text(
            StatusCode::METHOD_NOT_ALLOWED,
            CacheClass::UpstreamFailure,
            "use GET or HEAD",
        ),
    };
    Ok(response)
}

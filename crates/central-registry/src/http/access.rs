//! The registry's access log: one JSON line per HTTP request (target `strata::access`, message
//! `access`), in the edge's access-log schema plus the caller's name.
//!
//! Fields: `method`, `path` (no query string), `repository`, `module`, `version`, `kind`
//! (`list`, `latest`, `query`, `info`, `mod`, `zip`, `sumdb`, `upload`, `api`, `ops`, `other`),
//! `status`, `bytes` (the response's Content-Length; 0 when streamed without one), `duration_ms`
//! (to the response head), `user.name` (the token's configured name, `anonymous`, or
//! `unauthenticated` for credentials the registry does not accept; never a token),
//! `client.address` (the peer's IP). `/healthz`, `/readyz` and `/metrics` are not logged (probes
//! and scrapes would drown the rest).
//!
//! With tracing on, the middleware also opens the request's server span (continuing the
//! caller's `traceparent`): the line, and every line written while the request runs, carries
//! its `trace.id`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use strata_core::protocol::ProxyRequest;
use tracing::Instrument;

use super::AppState;

/// What the path says about a request: kind, repository, module, version.
fn describe(path: &str) -> (&'static str, String, String, String) {
    let none = || (String::new(), String::new());
    if let Some(rest) = path.strip_prefix("/go/") {
        let (repo, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if rest.starts_with("sumdb/") {
            return ("sumdb", repo.to_owned(), String::new(), String::new());
        }
        let Ok(request) = ProxyRequest::parse(rest) else {
            let (m, v) = none();
            return ("other", repo.to_owned(), m, v);
        };
        let version = match &request {
            ProxyRequest::List(_) | ProxyRequest::Latest(_) => String::new(),
            ProxyRequest::Query(_, q) => q.to_string(),
            ProxyRequest::Info(_, v) | ProxyRequest::Mod(_, v) | ProxyRequest::Zip(_, v) => {
                v.to_string()
            }
        };
        return (
            request.kind_name(),
            repo.to_owned(),
            request.module().to_string(),
            version,
        );
    }
    if let Some(rest) = path.strip_prefix("/api/repos/") {
        let repo = rest.split('/').next().unwrap_or_default();
        return ("upload", repo.to_owned(), String::new(), String::new());
    }
    if let Some(rest) = path.strip_prefix("/api/go/") {
        let (repo, _) = rest.split_once('/').unwrap_or((rest, ""));
        return ("api", repo.to_owned(), String::new(), String::new());
    }
    let (m, v) = none();
    ("other", String::new(), m, v)
}

/// The middleware: runs the request, then writes its line.
pub async fn log(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let started = Instant::now();
    let method = request.method().clone();
    let client = request
        .extensions()
        .get::<ConnectInfo<super::ClientAddr>>()
        .map(|c| c.0.0.ip().to_string())
        .unwrap_or_default();
    let user = match request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str())
    {
        None => "anonymous".to_owned(),
        Some(Ok(value)) => match state.registry.authenticate(Some(value)) {
            Ok(principal) => principal.label().to_owned(),
            Err(_) => strata_registry_engine::audit::UNAUTHENTICATED.to_owned(),
        },
        Some(Err(_)) => strata_registry_engine::audit::UNAUTHENTICATED.to_owned(),
    };
    let span = strata_service::span!(
        "registry.http",
        otel.name = %format!("{method} {}", describe(&path).0),
        otel.kind = "server",
        http.request.method = method.as_str(),
        url.path = path.as_str(),
        user.name = user.as_str(),
        http.response.status_code = tracing::field::Empty,
    );
    strata_service::trace::set_parent_from_headers(&span, request.headers());
    async move {
        let response = next.run(request).await;
        let (kind, repository, module, version) = describe(&path);
        let status = response.status().as_u16();
        let bytes = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let span = tracing::Span::current();
        span.record("http.response.status_code", status);
        if status >= 500 {
            strata_service::trace::set_error(&span, format!("HTTP {status}"));
        }
        tracing::info!(
            target: "strata::access",
            method = method.as_str(),
            path = path.as_str(),
            repository = repository.as_str(),
            module = module.as_str(),
            version = version.as_str(),
            kind,
            status,
            bytes,
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            user.name = user.as_str(),
            client.address = client.as_str(),
            "access"
        );
        response
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_described() {
        let d = |p: &str| {
            let (kind, repo, module, version) = describe(p);
            (kind, repo, module, version)
        };
        assert_eq!(
            d("/go/gocache/example.com/!a/@v/v1.0.0.zip"),
            (
                "zip",
                "gocache".into(),
                "example.com/A".into(),
                "v1.0.0".into()
            )
        );
        assert_eq!(
            d("/go/go/example.com/a/@v/list"),
            ("list", "go".into(), "example.com/a".into(), String::new())
        );
        assert_eq!(
            d("/go/go/sumdb/sum.golang.org/lookup/x@v1"),
            ("sumdb", "go".into(), String::new(), String::new())
        );
        assert_eq!(d("/api/repos/private/upload").0, "upload");
        assert_eq!(d("/api/go/private/example.com/a/@v/v1.0.0.zip").0, "api");
        assert_eq!(d("/nowhere").0, "other");
        assert_eq!(d("/go/go/not a path").0, "other");
    }
}

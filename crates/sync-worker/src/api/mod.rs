//! The worker's HTTP layer:
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`warm`]: `POST /api/warm`, `GET /api/warm/{id}`, `GET`/`DELETE /api/pins/{name}` (the
//!   sets and pins themselves are [`crate::jobs::warmup`]'s);
//! - [`retention`]: `GET`/`POST /api/retention/{repo}`;
//! - [`reply`]: how all of them answer (the producers' webhook endpoint too).
//!
//! Every `/api/` endpoint takes the registry's tokens (`Authorization: Bearer <token>`, or Basic
//! with the token as password), checked by the embedded registry exactly as the registry checks
//! them. Anonymous callers are refused even where a repository allows anonymous reads: these
//! endpoints make the platform do work. Errors are `text/plain` with the reason; a registry
//! error gets the registry's own status (its
//! [`ErrorKind`](strata_core::protocol::ErrorKind)'s `http_status`), and every 401 carries the
//! registry's and the edge's challenge, [`reply::CHALLENGE`].
//!
//! The layer uses the runtime, the jobs' documents and the registry; nothing but the crate root
//! (which serves these routes) and the webhook producer (its replies) uses it.

// Handlers return early with the `Response` that refuses the request; boxing it would only
// add noise to every call site.
#![allow(clippy::result_large_err)]

pub mod ops;
pub mod reply;
pub mod retention;
#[cfg(test)]
mod tests;
pub mod warm;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use strata_registry_engine::auth::{Permission, Principal};
use strata_registry_engine::registry::{Registry, RepoEntry};

use self::reply::{json, message, queue_error, registry_error};
use crate::jobs::retention::RetentionPolicy;
use crate::runtime::queue::JobQueue;

/// What the API handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The embedded registry (authentication, repositories, storage).
    pub registry: Arc<Registry>,
    /// Where jobs go.
    pub queue: Arc<dyn JobQueue>,
    /// The retention policies (to refuse runs for repositories without one).
    pub retention: Arc<Vec<RetentionPolicy>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// The `/api/` routes (the webhooks aside), served next to [`ops::routes`].
pub fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/api/warm", post(warm::post_warm))
        .route("/api/warm/{id}", get(warm::get_progress))
        .route(
            "/api/pins/{name}",
            get(warm::get_pin).delete(warm::delete_pin),
        )
        .route(
            "/api/retention/{repo}",
            get(retention::get_report).post(retention::post_run),
        )
        .with_state(state)
}

/// With tracing on, runs each request (the probes and scrapes aside) in a server span that
/// continues the caller's `traceparent`; the jobs it enqueues carry the trace on.
pub async fn trace_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let path = request.uri().path();
    if !strata_service::trace::enabled() || matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    let span = strata_service::span!(
        "sync.http",
        otel.name = %format!("{} {path}", request.method()),
        otel.kind = "server",
        http.request.method = request.method().as_str(),
        url.path = path,
        http.response.status_code = tracing::field::Empty,
    );
    strata_service::trace::set_parent_from_headers(&span, request.headers());
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        strata_service::trace::set_error(&span, format!("HTTP {status}"));
    }
    response
}

/// The caller, who must present a known token.
pub(crate) fn principal(state: &ApiState, headers: &HeaderMap) -> Result<Principal, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(message(
            StatusCode::UNAUTHORIZED,
            "a token is required: Authorization: Bearer <token>",
        ));
    };
    let value = value.to_str().map_err(|_| {
        message(
            StatusCode::UNAUTHORIZED,
            "malformed Authorization header (use Bearer or Basic)",
        )
    })?;
    match state.registry.authenticate(Some(value)) {
        Ok(Principal::Anonymous) => Err(message(
            StatusCode::UNAUTHORIZED,
            "a token is required: Authorization: Bearer <token>",
        )),
        Ok(principal) => Ok(principal),
        Err(e) => Err(registry_error(&e)),
    }
}

/// Repository `repo` after checking that `principal` may do `permission` there.
pub(crate) fn authorized<'a>(
    state: &'a ApiState,
    principal: &Principal,
    repo: &str,
    permission: Permission,
) -> Result<&'a RepoEntry, Response> {
    state
        .registry
        .authorized(principal, repo, permission)
        .map_err(|e| registry_error(&e))
}

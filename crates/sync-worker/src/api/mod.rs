//! The worker's HTTP API next to `/healthz`, `/readyz` and `/metrics`:
//! - [`warm`]: `POST /api/warm`, `GET /api/warm/{id}`, `GET`/`DELETE /api/pins/{name}`;
//! - [`retention`]: `GET`/`POST /api/retention/{repo}`.
//!
//! Every endpoint takes the registry's tokens (`Authorization: Bearer <token>`, or Basic with
//! the token as password), checked by the embedded registry exactly as the registry checks
//! them. Anonymous callers are refused even where a repository allows anonymous reads: these
//! endpoints make the platform do work. Errors are `text/plain` with the reason; a registry
//! error gets the registry's own status (its [`ErrorKind`]'s `http_status`), and every 401
//! carries the registry's and the edge's challenge, [`CHALLENGE`].

// Handlers return early with the `Response` that refuses the request; boxing it would only
// add noise to every call site.
#![allow(clippy::result_large_err)]

pub mod retention;
#[cfg(test)]
mod tests;
pub mod warm;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use strata_registry_engine::auth::{Permission, Principal};
use strata_registry_engine::error::RegistryError;
use strata_registry_engine::registry::{Registry, RepoEntry};
use strata_core::protocol::ErrorKind;

use crate::handlers::retention::RetentionPolicy;
use crate::queue::{JobQueue, QueueError};

/// The `WWW-Authenticate` challenge of a 401, as the registry and the edge send it: Basic, so
/// `.netrc`/`GOAUTH` clients retry with credentials (a token goes in as the password).
pub const CHALLENGE: &str = "Basic realm=\"strata\", charset=\"UTF-8\"";

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

/// The API routes, to merge into the worker's server (`server::start_with`).
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

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        );
    }
    response
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(mut body) => {
            body.push(b'\n');
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The answer to a registry error: the status of its kind (the one mapping the registry and the
/// edge use too), its message as the body.
pub(crate) fn registry_error(error: &RegistryError) -> Response {
    let kind = error.kind();
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if kind == ErrorKind::Internal {
        tracing::error!(error = %error, "internal error");
    }
    text(status, error.to_string())
}

/// The answer to a queue that refused a job.
pub(crate) fn queue_error(error: &QueueError) -> Response {
    match error {
        QueueError::InvalidJob(_) => text(StatusCode::BAD_REQUEST, error.to_string()),
        QueueError::Full { .. } | QueueError::Unavailable(_) => {
            let mut response = text(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            response
        }
    }
}

/// The caller, who must present a known token.
pub(crate) fn principal(state: &ApiState, headers: &HeaderMap) -> Result<Principal, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(text(
            StatusCode::UNAUTHORIZED,
            "a token is required: Authorization: Bearer <token>",
        ));
    };
    let value = value.to_str().map_err(|_| {
        text(
            StatusCode::UNAUTHORIZED,
            "malformed Authorization header (use Bearer or Basic)",
        )
    })?;
    match state.registry.authenticate(Some(value)) {
        Ok(Principal::Anonymous) => Err(text(
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

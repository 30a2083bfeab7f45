//! How the worker's HTTP endpoints answer, for all of them (the API, the operational endpoints
//! and the webhooks): plain text and JSON, never cached; registry and queue failures with the
//! statuses the registry and the edge use for them.
//!
//! Invariant: every 401 carries [`CHALLENGE`] (HTTP requires a challenge with a 401), as the
//! registry's and the edge's do.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_core::protocol::ErrorKind;
use strata_registry_engine::error::RegistryError;

use crate::runtime::queue::QueueError;

/// The `WWW-Authenticate` challenge of a 401, the one every service sends: Basic, so
/// `.netrc`/`GOAUTH` clients retry with credentials (a token goes in as the password).
pub use strata_service::reply::BASIC_CHALLENGE as CHALLENGE;

/// A plain-text answer with `body` exactly as given.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    let mut response = (status, body.into()).into_response();
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

/// A [`text`] answer of one line: `line` ended by a newline, as the registry's and the edge's
/// error answers are (the API's refusals equal theirs byte for byte).
pub fn message(status: StatusCode, line: impl Into<String>) -> Response {
    let mut line = line.into();
    if !line.ends_with('\n') {
        line.push('\n');
    }
    text(status, line)
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
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
        Err(e) => message(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The answer to a registry error: the status of its kind (the one mapping the registry and
/// the edge use too), its message as the body.
pub fn registry_error(error: &RegistryError) -> Response {
    let kind = error.kind();
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if kind == ErrorKind::Internal {
        tracing::error!(error = %error, "internal error");
    }
    message(status, error.to_string())
}

/// The answer to a queue that refused a job: 400 for a job it cannot take, 503 with
/// `Retry-After` when it is full or unreachable.
pub fn queue_error(error: &QueueError) -> Response {
    match error {
        QueueError::InvalidJob(_) => message(StatusCode::BAD_REQUEST, error.to_string()),
        QueueError::Full { .. } | QueueError::Unavailable(_) => {
            let mut response = message(StatusCode::SERVICE_UNAVAILABLE, error.to_string());
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            response
        }
    }
}

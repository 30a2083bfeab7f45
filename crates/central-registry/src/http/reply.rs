//! Turning results into HTTP responses: errors as `text/plain` with the status and cache policy
//! of their [`ErrorKind`], and the small header helpers the handlers share.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use strata_core::protocol::{CacheClass, ErrorKind};

use crate::error::RegistryError;

/// A plain-text response ([`strata_service::reply::text`]).
pub fn text(status: StatusCode, cache: CacheClass, body: impl Into<String>) -> Response {
    strata_service::reply::text(status, cache, body).map(Body::from)
}

/// The response for an error: its kind's status and cache policy, its message as the body, and
/// the `Basic` challenge on 401 ([`strata_service::reply::error`]). Internal errors are logged.
pub fn error(e: &RegistryError) -> Response {
    let kind = e.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = %e, "internal error");
    }
    strata_service::reply::error(kind, e.to_string()).map(Body::from)
}

/// The `Authorization` header as text, if present and readable.
pub fn authorization(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

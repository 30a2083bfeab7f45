//! Turning results into HTTP responses: errors as `text/plain` with the status and cache policy
//! of their [`ErrorKind`], and the small header helpers the handlers share.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use strata_core::protocol::{CacheClass, ErrorKind};

use crate::error::RegistryError;

/// A plain-text response.
pub fn text(status: StatusCode, cache: CacheClass, body: impl Into<String>) -> Response {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache.cache_control()),
    );
    response
}

/// The response for an error: its kind's status and cache policy, its message as the body.
/// 401 answers carry a `WWW-Authenticate` challenge so `.netrc`/`GOAUTH` clients retry with
/// credentials.
pub fn error(e: &RegistryError) -> Response {
    let kind = e.kind();
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = text(status, kind.cache_class(), e.to_string());
    if kind == ErrorKind::Unauthenticated {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"strata\", charset=\"UTF-8\""),
        );
    }
    if kind == ErrorKind::Internal {
        tracing::error!(error = %e, "internal error");
    }
    response
}

/// The `Authorization` header as text, if present and readable.
pub fn authorization(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

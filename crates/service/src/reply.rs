//! Plain-text HTTP replies, the same from every service: errors answer with the status and cache
//! policy of their [`ErrorKind`] and their message as a `text/plain` body ending in a newline;
//! `401` carries the one `WWW-Authenticate` challenge every service sends (`Basic`, so `.netrc`
//! and `GOAUTH` clients retry with credentials).
//!
//! The replies have a `String` body; each front end maps it into its own body type
//! (`reply::text(…).map(Body::from)`), so this module needs no web framework.

use http::{HeaderValue, Response, StatusCode, header};
use strata_core::protocol::{CacheClass, ErrorKind};

/// The challenge of every `401`.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"strata\", charset=\"UTF-8\"";

/// A `text/plain` reply with `status`, the `Cache-Control` of `cache` and `body` (a newline is
/// added when it has none).
pub fn text(status: StatusCode, cache: CacheClass, body: impl Into<String>) -> Response<String> {
    let mut body = body.into();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut response = Response::new(body);
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

/// The reply for an error of `kind` saying `message`: the kind's status and cache policy, and
/// the `Basic` challenge on `401`.
pub fn error(kind: ErrorKind, message: impl Into<String>) -> Response<String> {
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = text(status, kind.cache_class(), message);
    if kind == ErrorKind::Unauthenticated {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(BASIC_CHALLENGE),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_answer_with_their_kind() {
        let r = error(ErrorKind::NotFound, "no such module");
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.body(), "no such module\n");
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            r.headers()[header::CACHE_CONTROL],
            ErrorKind::NotFound.cache_class().cache_control()
        );
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
        let r = error(ErrorKind::Unauthenticated, "credentials needed\n");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.body(), "credentials needed\n");
        assert_eq!(r.headers()[header::WWW_AUTHENTICATE], BASIC_CHALLENGE);
    }

    #[test]
    fn every_kind_has_its_own_status() {
        for kind in ErrorKind::ALL {
            assert_eq!(error(*kind, "x").status().as_u16(), kind.http_status());
        }
    }
}

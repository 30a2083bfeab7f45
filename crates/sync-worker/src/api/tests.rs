//! The API's error answers: every registry error kind gets the registry's status through the
//! one `ErrorKind::http_status` mapping, a plain-text reason and, on 401, the registry's Basic
//! challenge.
//!
//! 409, 413, 502 and 504 are tested here, on the mapping, because no API endpoint meets them
//! as registry errors: the endpoints ask the registry only to authenticate and authorize
//! synchronously (Unauthenticated, Forbidden, NotFound); fetches happen in prefetch jobs, whose
//! failures the progress endpoint reports in its JSON. `tests/api_errors.rs` covers the statuses
//! the endpoints do answer, their own 409 (a pin of another repository) and 413s among them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::http::header;
use axum::response::Response;
use strata_registry_engine::error::RegistryError;
use strata_registry_engine::upstream::UpstreamError;

use super::reply::registry_error;

/// Status, body and the headers that matter of a response.
async fn answer(response: Response) -> (u16, String, Option<String>, String, String) {
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let challenge = header(header::WWW_AUTHENTICATE);
    let content_type = header(header::CONTENT_TYPE).unwrap_or_default();
    let cache = header(header::CACHE_CONTROL).unwrap_or_default();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (
        status,
        String::from_utf8(body.to_vec()).unwrap(),
        challenge,
        content_type,
        cache,
    )
}

/// Asserts the answer to `error`: `status` (also the kind's own), the message as a plain-text
/// body, never cached, and a challenge exactly on 401.
async fn assert_answer(error: RegistryError, status: u16) {
    assert_eq!(error.kind().http_status(), status, "{error:?}");
    let message = error.to_string();
    let (got, body, challenge, content_type, cache) = answer(registry_error(&error)).await;
    assert_eq!(got, status, "{error:?}");
    assert_eq!(body, format!("{message}\n"));
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(cache, "no-store");
    let want_challenge = (status == 401).then_some(r#"Basic realm="strata", charset="UTF-8""#);
    assert_eq!(challenge.as_deref(), want_challenge, "{error:?}");
}

#[tokio::test]
async fn conflict_is_409() {
    assert_answer(
        RegistryError::Conflict("example.com/m@v1.0.0 exists already with other bytes".into()),
        409,
    )
    .await;
}

#[tokio::test]
async fn too_large_is_413() {
    assert_answer(RegistryError::TooLarge { limit: 1 << 20 }, 413).await;
}

#[tokio::test]
async fn upstream_failure_and_integrity_violation_are_502() {
    let upstream = UpstreamError::Status {
        url: "https://proxy.example/example.com/m/@v/v1.0.0.zip".into(),
        status: 503,
        body: "overloaded".into(),
    };
    assert_answer(RegistryError::Upstream(upstream), 502).await;
    assert_answer(
        RegistryError::Integrity("example.com/m@v1.0.0: checksum mismatch".into()),
        502,
    )
    .await;
}

#[tokio::test]
async fn upstream_timeout_is_504() {
    let upstream = UpstreamError::Timeout {
        url: "https://proxy.example/example.com/m/@v/list".into(),
    };
    assert_answer(RegistryError::Upstream(upstream), 504).await;
    // Shared by every caller of one coalesced fetch: still the upstream's kind.
    let shared = UpstreamError::Timeout {
        url: "https://proxy.example/example.com/m/@v/list".into(),
    };
    let shared = RegistryError::Shared(std::sync::Arc::new(RegistryError::Upstream(shared)));
    assert_answer(shared, 504).await;
}

#[tokio::test]
async fn the_other_kinds_answer_the_registry_status() {
    for (error, status) in [
        (RegistryError::NotFound("example.com/m@v1.0.0".into()), 404),
        (RegistryError::NoSuchRepository("nowhere".into()), 404),
        (RegistryError::FallThrough("upstream down".into()), 404),
        (
            RegistryError::InvalidModule(vec!["a".into(), "b".into()]),
            400,
        ),
        (RegistryError::Unauthenticated("unknown token".into()), 401),
        (RegistryError::Forbidden("no read permission".into()), 403),
        (
            RegistryError::Unsupported("a virtual repository".into()),
            403,
        ),
        (
            RegistryError::Internal("a worker thread panicked".into()),
            500,
        ),
    ] {
        assert_answer(error, status).await;
    }
}

//! HTTP requests as the tests send them: a `reqwest` client with generous timeouts, the two
//! `Authorization` forms, and answers read whole into a [`Reply`] — the answer type of the
//! workspace's raw HTTP/1.1 client, [`strata_testkit::raw_http`], which the tests use for
//! request targets that `reqwest` would normalise (`..`, `%2e%2e`, `//`).

use std::time::Duration;

pub use strata_testkit::raw_http::Reply;

/// `Content-Type` of every error and of `@v/list`.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// A `reqwest` client with generous timeouts.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

/// `request` with the whole `Authorization` value `auth`; "" for none.
pub fn with_auth(request: reqwest::RequestBuilder, auth: &str) -> reqwest::RequestBuilder {
    if auth.is_empty() {
        request
    } else {
        request.header("authorization", auth)
    }
}

/// `Bearer TOKEN`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `Basic base64(user:TOKEN)`, as `.netrc` clients send it.
pub fn basic(token: &str) -> String {
    use base64::Engine as _;
    let raw = format!("someone:{token}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// Sends a `reqwest` request and reads the whole answer.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request fails to complete");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.bytes().await.expect("response body").to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

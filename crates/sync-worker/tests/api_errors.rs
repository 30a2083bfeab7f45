//! The worker API's error answers against the registry's own: where both refuse the same
//! caller for the same reason they answer the same status, the same plain-text reason and the
//! same `WWW-Authenticate` challenge; and the 413s the warm-up endpoint answers itself.
//!
//! 409, 502 and 504 cannot come out of an API endpoint (they only ask the registry to
//! authenticate and authorize; fetches run in prefetch jobs), so those kinds are tested on the
//! mapping itself, in `src/api/tests.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "warm_support/mod.rs"]
mod support;

use strata_sync_worker::QueueStats;
use strata_sync_worker::api::warm::{MAX_BODY, MAX_ITEMS};
use strata_testkit::dependency_graph;
use support::{CI_TOKEN, OUTSIDER_TOKEN, Stack, worker_toml};

/// The registry's and the edge's challenge, spelled out rather than taken from the code.
const CHALLENGE: &str = r#"Basic realm="strata", charset="UTF-8""#;

/// What a client sees of an error answer.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    content_type: String,
    challenge: Option<String>,
    body: String,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
    };
    let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
    let challenge = header(reqwest::header::WWW_AUTHENTICATE);
    Answer {
        status: response.status().as_u16(),
        content_type,
        challenge,
        body: response.text().await.unwrap(),
    }
}

fn with_token(request: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_answer_what_the_registry_answers() {
    let modules = dependency_graph(1);
    let stack = Stack::start(&modules, "").await;
    let worker = stack.worker(&worker_toml("", "")).await;
    let http = reqwest::Client::new();
    let body = format!("{}@v1.0.0\n", modules[0].path);

    // The same caller, the same repository: the registry's GOPROXY endpoint and the worker's
    // warm-up endpoint.
    let registry = |repo: &str, token: Option<&str>| {
        let url = format!(
            "http://{}/go/{repo}/{}/@v/list",
            stack.registry.http_addr, modules[0].path
        );
        with_token(http.get(url), token)
    };
    let worker_warm = |repo: &str, token: Option<&str>| {
        let url = format!("{}/api/warm?repository={repo}", worker.base);
        with_token(http.post(url).body(body.clone()), token)
    };
    for (repo, token, status) in [
        // An unknown token: 401, the registry's reason and challenge.
        ("gocache", Some("not-a-token"), 401),
        // No permission on the repository: 403.
        ("gocache", Some(OUTSIDER_TOKEN), 403),
        // No such repository: 404.
        ("nowhere", Some(CI_TOKEN), 404),
    ] {
        let from_registry = answer(registry(repo, token)).await;
        let from_worker = answer(worker_warm(repo, token)).await;
        assert_eq!(
            from_worker.status, status,
            "{repo} {token:?}: {from_worker:?}"
        );
        assert_eq!(from_worker, from_registry, "{repo} {token:?}");
        assert!(from_worker.content_type.starts_with("text/plain"));
    }

    // No token at all: the worker refuses even what allows anonymous reads, with the same
    // challenge the registry sends to an anonymous caller of a private repository.
    let from_registry = answer(registry("gocache", None)).await;
    assert_eq!(from_registry.status, 401);
    assert_eq!(from_registry.challenge.as_deref(), Some(CHALLENGE));
    let anonymous = [
        http.post(format!("{}/api/warm?repository=go", worker.base))
            .body(body.clone()),
        http.get(format!("{}/api/warm/0123abcd", worker.base)),
        http.get(format!("{}/api/pins/release", worker.base)),
        http.delete(format!("{}/api/pins/release", worker.base)),
        http.get(format!("{}/api/retention/gocache", worker.base)),
        http.post(format!("{}/api/retention/gocache", worker.base)),
    ];
    for request in anonymous {
        let from_worker = answer(request).await;
        assert_eq!(from_worker.status, 401, "{from_worker:?}");
        assert_eq!(from_worker.challenge.as_deref(), Some(CHALLENGE));
        assert!(from_worker.content_type.starts_with("text/plain"));
        assert!(
            from_worker.body.contains("a token is required"),
            "{}",
            from_worker.body
        );
    }
    // Only 401s carry a challenge.
    let forbidden = answer(with_token(
        http.post(format!("{}/api/retention/gocache", worker.base)),
        Some(CI_TOKEN),
    ))
    .await;
    assert_eq!(forbidden.status, 403, "{forbidden:?}");
    assert_eq!(forbidden.challenge, None);

    assert_eq!(
        worker.running.queue.stats().await.unwrap(),
        QueueStats::default(),
        "nothing was enqueued"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_warm_ups_are_413() {
    let modules = dependency_graph(1);
    let stack = Stack::start(&modules, "").await;
    let worker = stack.worker(&worker_toml("", "")).await;
    let http = reqwest::Client::new();
    let warm = |body: String| {
        http.post(format!("{}/api/warm?repository=go", worker.base))
            .bearer_auth(CI_TOKEN)
            .body(body)
    };

    // A body over the limit.
    let line = format!("{}@v1.0.0\n", modules[0].path);
    let too_long = line.repeat(MAX_BODY / line.len() + 1);
    assert!(too_long.len() > MAX_BODY);
    let refused = answer(warm(too_long)).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(refused.content_type.starts_with("text/plain"));
    assert!(
        refused
            .body
            .contains(&format!("larger than {MAX_BODY} bytes")),
        "{}",
        refused.body
    );
    assert_eq!(refused.challenge, None);

    // More versions than one warm-up takes, in a body under the limit.
    let too_many: String = (0..=MAX_ITEMS)
        .map(|i| format!("example.com/m{i}@v1.0.0\n"))
        .collect();
    assert!(too_many.len() <= MAX_BODY);
    let refused = answer(warm(too_many)).await;
    assert_eq!(refused.status, 413, "{}", refused.body);
    assert!(
        refused
            .body
            .contains(&format!("one warm-up takes at most {MAX_ITEMS}")),
        "{}",
        refused.body
    );

    assert_eq!(
        worker.running.queue.stats().await.unwrap(),
        QueueStats::default(),
        "nothing was enqueued"
    );
    assert!(
        stack.upstream.requests().is_empty(),
        "{:?}",
        stack.upstream.requests()
    );
    worker.stop().await;
}

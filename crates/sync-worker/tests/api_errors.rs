//! The worker API's error answers against the registry's own: where both refuse the same
//! caller for the same reason they answer the same status, the same plain-text reason and the
//! same `WWW-Authenticate` challenge (401 for an unknown token, no token or a malformed
//! `Authorization`); and the 413s the warm-up endpoint answers itself.
//!
//! 409 is the warm-up endpoint's own: a pin name taken by another repository's pin.
//! 502 and 504 cannot come out of an API endpoint: they only ask the registry to
//! authenticate and authorize, fetches run in prefetch jobs. So those kinds are tested on the
//! mapping itself, in `src/api/tests.rs`, and here the upstream failures end to end: where the
//! registry answers a client 502 (the upstream fails) or 504 (it stalls), a warm-up of the same
//! version is accepted and its progress reports the version failed, for the same reason.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use serde_json::Value;
use strata_sync_worker::QueueStats;
use strata_sync_worker::api::warm::{MAX_BODY, MAX_ITEMS};
use strata_testkit::dependency_graph;
use support::{CI_TOKEN, OUTSIDER_TOKEN, Stack, Worker, worker_toml};

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
    let stack = Stack::start(&modules).await;
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
    let stack = Stack::start(&modules).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_authorization_is_401_with_the_challenge_like_the_registry() {
    let modules = dependency_graph(1);
    let stack = Stack::start(&modules).await;
    let worker = stack.worker(&worker_toml("", "")).await;
    let http = reqwest::Client::new();
    for value in ["Token strata-test-ci", "Bearer", "Basic !!not-base64!!"] {
        let from_registry = answer(
            http.get(format!(
                "http://{}/go/gocache/{}/@v/list",
                stack.registry.http_addr, modules[0].path
            ))
            .header(reqwest::header::AUTHORIZATION, value),
        )
        .await;
        let from_worker = answer(
            http.post(format!("{}/api/warm?repository=gocache", worker.base))
                .header(reqwest::header::AUTHORIZATION, value)
                .body(format!("{}@v1.0.0\n", modules[0].path)),
        )
        .await;
        assert_eq!(from_worker.status, 401, "{value}: {from_worker:?}");
        assert_eq!(from_worker.challenge.as_deref(), Some(CHALLENGE), "{value}");
        assert_eq!(from_worker, from_registry, "{value}");
    }
    worker.stop().await;
}

/// Asks the registry for `module@v1.0.0`'s `.info` (as a client of `gocache` would) and warms
/// the same version through the worker: the registry's answer, and the warm-up's final progress.
async fn registry_and_warm_up(stack: &Stack, worker: &Worker, module: &str) -> (Answer, Value) {
    let from_registry = answer(
        reqwest::Client::new()
            .get(format!(
                "http://{}/go/gocache/{module}/@v/v1.0.0.info",
                stack.registry.http_addr
            ))
            .bearer_auth(CI_TOKEN),
    )
    .await;
    let progress = worker
        .warm("gocache", None, &format!("{module}@v1.0.0\n"))
        .await;
    (from_registry, progress)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_failure_is_502_at_the_registry_and_a_failed_version_in_the_warm_up() {
    let modules = dependency_graph(1);
    let stack = Stack::start(&modules).await;
    let worker = stack.worker(&worker_toml("", "")).await;
    stack.upstream.set_fail_status(Some(503));
    let (from_registry, progress) = registry_and_warm_up(&stack, &worker, &modules[0].path).await;
    assert_eq!(from_registry.status, 502, "{from_registry:?}");
    assert!(
        from_registry.body.contains("upstream answered 503"),
        "{from_registry:?}"
    );
    assert_eq!(
        (&progress["completed"], &progress["failed"]),
        (&Value::from(0), &Value::from(1)),
        "{progress:#}"
    );
    let error = progress["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("upstream answered 503"), "{error}");
    // Retried like every upstream failure, then given up: a dead letter.
    assert_eq!(worker.running.queue.stats().await.unwrap().dead, 1);
    stack.upstream.clear_faults();
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_timeout_is_504_at_the_registry_and_a_failed_version_in_the_warm_up() {
    let modules = dependency_graph(1);
    let stack = Stack::builder(&modules)
        .upstream_timeout_ms(300)
        .start()
        .await;
    let worker = stack.worker(&worker_toml("", "")).await;
    stack.upstream.set_hang(true);
    let (from_registry, progress) = registry_and_warm_up(&stack, &worker, &modules[0].path).await;
    assert_eq!(from_registry.status, 504, "{from_registry:?}");
    assert!(
        from_registry.body.contains("upstream timed out"),
        "{from_registry:?}"
    );
    assert_eq!(
        (&progress["completed"], &progress["failed"]),
        (&Value::from(0), &Value::from(1)),
        "{progress:#}"
    );
    let error = progress["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("upstream timed out"), "{error}");
    assert_eq!(worker.running.queue.stats().await.unwrap().dead, 1);
    stack.upstream.clear_faults();
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_of_another_repository_is_409_and_changes_nothing() {
    let modules = dependency_graph(1);
    let stack = Stack::start(&modules).await;
    let worker = stack.worker(&worker_toml("", "")).await;
    let body = format!("{}@v1.0.0\n", modules[0].path);
    let done = worker.warm("go", Some("release"), &body).await;
    assert_eq!(done["completed"], 1, "{done:#}");
    worker.idle().await;
    let pinned = worker.get_json("/api/pins/release", CI_TOKEN).await;
    assert_eq!(pinned["repository"], "go");
    let requests = stack.upstream.requests().len();

    // The same pin name from a warm-up into another repository the caller may read.
    let http = reqwest::Client::new();
    let refused = answer(
        http.post(format!(
            "{}/api/warm?repository=gocache&pin=release",
            worker.base
        ))
        .bearer_auth(CI_TOKEN)
        .body(body.clone()),
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.content_type.starts_with("text/plain"));
    assert!(
        refused
            .body
            .contains(r#"pin "release" pins repository "go""#),
        "{}",
        refused.body
    );
    assert_eq!(refused.challenge, None);

    // Nothing changed: the pin, the queue, the upstream.
    assert_eq!(worker.get_json("/api/pins/release", CI_TOKEN).await, pinned);
    assert_eq!(
        worker.running.queue.stats().await.unwrap(),
        QueueStats::default(),
        "nothing was enqueued"
    );
    assert_eq!(stack.upstream.requests().len(), requests);

    // Into its own repository the pin is replaced, as documented.
    let again = worker.warm("go", Some("release"), &body).await;
    assert_eq!(again["completed"], 1, "{again:#}");
    let replaced = worker.get_json("/api/pins/release", CI_TOKEN).await;
    assert_ne!(replaced["warmup"], pinned["warmup"]);
    worker.stop().await;
}

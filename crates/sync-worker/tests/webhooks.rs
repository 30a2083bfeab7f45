//! Tag-push webhooks end to end: a central registry over a fixture upstream and a sync worker
//! started as the binary starts it, with one `[[webhooks]]` entry per provider. A bad or
//! missing signature gets 401 and enqueues nothing; a good one for a new tag gets the version
//! fetched into the remote repository; other events are ignored.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use strata_testkit::FixtureModule;
use support::{Stack, Worker, cached, until, worker_toml};

const GITHUB_SECRET: &str = "gh-secret";
const GITLAB_TOKEN: &str = "gl-token";
const GITEA_SECRET: &str = "gitea-secret";
const ZERO: &str = "0000000000000000000000000000000000000000";
const SHA: &str = "1234567890abcdef1234567890abcdef12345678";

const HOOKS: &str = r#"
[[webhooks]]
provider = "github"
secret = "gh-secret"
repository = "gocache"

[[webhooks]]
provider = "gitlab"
secret_env = "TEST_GITLAB_TOKEN"
repository = "go"

[[webhooks]]
provider = "gitea"
secret = "gitea-secret"
repository = "gocache"
module_prefix = "go.corp.example.com"
"#;

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// POSTs `body` to `/api/webhooks/{provider}` with `headers`: status, content type, body.
async fn post(
    worker: &Worker,
    provider: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/webhooks/{provider}", worker.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

fn github_push(reference: &str, url: &str) -> String {
    json!({"ref": reference, "before": ZERO, "after": SHA, "created": true, "deleted": false,
        "repository": {"html_url": url, "full_name": "org/repo"}})
    .to_string()
}

fn github_headers(secret: &str, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("x-github-event", "push".to_owned()),
        (
            "x-hub-signature-256",
            format!("sha256={}", hmac_hex(secret, body.as_bytes())),
        ),
    ]
}

/// Checks a 202 answer naming both jobs, and returns the prefetch's key.
fn accepted(answer: &(u16, String, String), module: &str, version: &str, repo: &str) -> String {
    let (status, content_type, body) = answer;
    assert_eq!(*status, 202, "{body}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let json: Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["module"], module);
    assert_eq!(json["version"], version);
    assert_eq!(json["repository"], repo);
    let jobs = json["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2, "{body}");
    assert_eq!(jobs[0]["kind"], "refresh_metadata");
    assert_eq!(jobs[1]["kind"], "prefetch");
    assert!(
        jobs.iter()
            .all(|j| j["id"].as_str().is_some_and(|id| !id.is_empty()))
    );
    let key = jobs[1]["key"].as_str().unwrap().to_owned();
    assert_eq!(key, format!("prefetch/{repo}/{module}@{version}"));
    key
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_tag_pushes_fetch_the_new_version_and_nothing_else_does() {
    let modules = [
        FixtureModule::new("github.com/org/repo", "v1.0.0", &[]),
        FixtureModule::new("github.com/org/repo/v2", "v2.1.0", &[]),
        FixtureModule::new("gitlab.example.com/group/proj", "v1.2.0", &[]),
        FixtureModule::new("go.corp.example.com/team/lib", "v0.3.0", &[]),
    ];
    let stack = Stack::start(&modules).await;
    let worker = stack
        .worker_with_env(
            &worker_toml("", HOOKS),
            &[("TEST_GITLAB_TOKEN", GITLAB_TOKEN)],
        )
        .await;
    let queue = worker.running.queue.clone();
    let before = queue.stats().await.unwrap();

    // Refused: wrong secret, no signature, another provider's signature, a wrong token.
    let tag = github_push("refs/tags/v1.0.0", "https://github.com/org/repo");
    for headers in [
        github_headers("not-the-secret", &tag),
        vec![("x-github-event", "push".to_owned())],
        vec![("x-gitea-signature", hmac_hex(GITHUB_SECRET, tag.as_bytes()))],
    ] {
        let (status, content_type, body) = post(&worker, "github", &headers, &tag).await;
        assert_eq!(status, 401, "{body}");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(body, "invalid or missing signature");
    }
    let signed_elsewhere = github_headers(GITHUB_SECRET, &tag.replace("v1.0.0", "v1.0.1"));
    assert_eq!(
        post(&worker, "github", &signed_elsewhere, &tag).await.0,
        401,
        "body changed"
    );
    let gitlab = json!({"object_kind": "tag_push", "ref": "refs/tags/v1.2.0", "before": ZERO,
        "after": SHA, "project": {"web_url": "https://gitlab.example.com/group/proj"}})
    .to_string();
    let wrong_token = [("x-gitlab-token", "gl-tokem".to_owned())];
    assert_eq!(post(&worker, "gitlab", &wrong_token, &gitlab).await.0, 401);
    assert_eq!(
        queue.stats().await.unwrap(),
        before,
        "nothing was enqueued by refused webhooks"
    );
    assert!(stack.upstream.requests().is_empty(), "and nothing fetched");

    // Verified but not a new module version: ignored, nothing enqueued.
    let branch = github_push("refs/heads/main", "https://github.com/org/repo");
    let answer = post(
        &worker,
        "github",
        &github_headers(GITHUB_SECRET, &branch),
        &branch,
    )
    .await;
    assert_eq!(
        (answer.0, answer.2.as_str()),
        (202, "ignored: not a tag push")
    );
    let not_semver = github_push("refs/tags/release-7", "https://github.com/org/repo");
    let answer = post(
        &worker,
        "github",
        &github_headers(GITHUB_SECRET, &not_semver),
        &not_semver,
    )
    .await;
    assert_eq!(
        (answer.0, answer.2.as_str()),
        (202, "ignored: not a module version")
    );
    let ping = "{\"zen\":\"Keep it logically awesome.\"}";
    let mut ping_headers = github_headers(GITHUB_SECRET, ping);
    ping_headers[0].1 = "ping".into();
    assert_eq!(post(&worker, "github", &ping_headers, ping).await.0, 202);
    let garbage = "{not json";
    let answer = post(
        &worker,
        "github",
        &github_headers(GITHUB_SECRET, garbage),
        garbage,
    )
    .await;
    assert_eq!(answer.0, 400, "{}", answer.2);
    assert_eq!(post(&worker, "bitbucket", &[], "{}").await.0, 404);
    let too_big = "x".repeat(strata_sync_worker::producers::webhooks::BODY_LIMIT + 1);
    assert_eq!(post(&worker, "github", &[], &too_big).await.0, 413);
    assert_eq!(queue.stats().await.unwrap(), before);

    // GitHub: a v1 tag and a v2 tag (the module with the /v2 suffix).
    let answer = post(
        &worker,
        "github",
        &github_headers(GITHUB_SECRET, &tag),
        &tag,
    )
    .await;
    let v1 = accepted(&answer, "github.com/org/repo", "v1.0.0", "gocache");
    let tag_v2 = github_push("refs/tags/v2.1.0", "https://github.com/org/repo");
    let answer = post(
        &worker,
        "github",
        &github_headers(GITHUB_SECRET, &tag_v2),
        &tag_v2,
    )
    .await;
    let v2 = accepted(&answer, "github.com/org/repo/v2", "v2.1.0", "gocache");

    // GitLab, into the virtual repository `go` (whose remote member caches it).
    let answer = post(
        &worker,
        "gitlab",
        &[
            ("x-gitlab-event", "Tag Push Hook".to_owned()),
            ("x-gitlab-token", GITLAB_TOKEN.to_owned()),
        ],
        &gitlab,
    )
    .await;
    let gl = accepted(&answer, "gitlab.example.com/group/proj", "v1.2.0", "go");

    // Gitea, whose repository URL is mapped onto the module prefix.
    let gitea = json!({"ref": "refs/tags/v0.3.0", "before": ZERO, "after": SHA,
        "repository": {"html_url": "https://gitea.corp.local/team/lib"}})
    .to_string();
    let answer = post(
        &worker,
        "gitea",
        &[
            ("x-gitea-event", "push".to_owned()),
            (
                "x-gitea-signature",
                hmac_hex(GITEA_SECRET, gitea.as_bytes()),
            ),
        ],
        &gitea,
    )
    .await;
    let gt = accepted(&answer, "go.corp.example.com/team/lib", "v0.3.0", "gocache");

    let registry = worker.registry().clone();
    until("the pushed versions to be fetched", || async {
        cached(&registry, "gocache", "github.com/org/repo", "v1.0.0").await
            && cached(&registry, "gocache", "github.com/org/repo/v2", "v2.1.0").await
            && cached(
                &registry,
                "gocache",
                "gitlab.example.com/group/proj",
                "v1.2.0",
            )
            .await
            && cached(
                &registry,
                "gocache",
                "go.corp.example.com/team/lib",
                "v0.3.0",
            )
            .await
    })
    .await;
    worker.idle().await;
    for key in [v1, v2, gl, gt] {
        assert!(queue.is_completed(&key).await.unwrap(), "{key}");
    }
    let (_, metrics) = worker.get("/metrics", None).await;
    for line in [
        r#"strata_sync_jobs_total{kind="refresh_metadata",outcome="completed"} 4"#,
        "strata_sync_dead_letters 0",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    worker.stop().await;
}

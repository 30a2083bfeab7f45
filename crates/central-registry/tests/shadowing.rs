//! The shadowing policy: publishing to a local member of a virtual repository a path that the
//! virtual repository's remote members serve is refused (403 with the reason, nothing stored),
//! unless the local repository sets `allow_shadowing` or claims the path by an include
//! pattern; private paths the upstream does not know publish as before, over HTTP and gRPC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/remote_harness.rs"]
mod harness;

use std::sync::Arc;

use harness::{CI_TOKEN, DB_NAME, Options, config_toml};
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::grpc::proto::registry_client::RegistryClient;
use strata_central_registry::grpc::proto::{PublishHeader, PublishRequest, publish_request};
use strata_central_registry::server::{self, Running};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tokio_util::sync::CancellationToken;

/// A registry over the harness configuration, edited by `edit`, with its upstream serving
/// `github.com/popular/lib` and a module with pseudo-versions only.
struct Setup {
    registry: Running,
    upstream: FixtureUpstream,
    root: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Setup {
    async fn start(edit: impl Fn(String) -> String) -> Self {
        let db = Arc::new(TestSumDb::new(DB_NAME));
        let modules = [
            FixtureModule::new("github.com/popular/lib", "v1.4.0", &[]),
            FixtureModule::new(
                "github.com/popular/untagged",
                "v0.0.0-20240102030405-abcdefabcdef",
                &[],
            ),
        ];
        let upstream = FixtureUpstream::start(&modules, Some(db.clone())).await;
        let root = tempfile::tempdir().unwrap();
        let text = edit(config_toml(&root, &upstream, &db, &Options::default()));
        let config = RegistryConfig::from_toml(&text, "shadowing-test", &[]).unwrap();
        let shutdown = CancellationToken::new();
        let registry = server::start(config, shutdown.clone()).await.unwrap();
        Setup {
            registry,
            upstream,
            root,
            shutdown,
        }
    }

    async fn publish(&self, repo: &str, module: &FixtureModule) -> (u16, String) {
        let r = reqwest::Client::new()
            .put(format!(
                "http://{}/api/repos/{repo}/upload",
                self.registry.http_addr
            ))
            .bearer_auth(CI_TOKEN)
            .body(module.zip())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get(&self, repo: &str, path: &str) -> (u16, String) {
        let r = reqwest::Client::new()
            .get(format!(
                "http://{}/go/{repo}/{path}",
                self.registry.http_addr
            ))
            .bearer_auth(CI_TOKEN)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Object keys stored under `repos/{repo}/`.
    fn stored(&self, repo: &str) -> Vec<String> {
        let base = self.root.path().join("data/objects/repos").join(repo);
        let mut out = Vec::new();
        let mut stack = vec![base];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().display().to_string());
                }
            }
        }
        out
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The harness configuration with the default policy on `private`.
fn default_policy(text: String) -> String {
    assert!(text.contains("allow_shadowing = true\n"));
    text.replace("allow_shadowing = true\n", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_a_public_path_is_refused_with_the_reason_and_nothing_is_stored() {
    let s = Setup::start(default_policy).await;
    for module in [
        FixtureModule::new("github.com/popular/lib", "v1.5.0", &[]),
        // Known upstream only by a pseudo-version: `@latest` answers, the list is empty.
        FixtureModule::new("github.com/popular/untagged", "v1.0.0", &[]),
    ] {
        let (status, body) = s.publish("private", &module).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            body.contains(&format!(
                "publishing {} to repository \"private\"",
                module.path
            )) && body.contains("would shadow a public module")
                && body.contains("virtual repository \"go\"")
                && body.contains("remote member \"gocache\"")
                && body.contains("allow_shadowing = true"),
            "{body}"
        );
    }
    assert!(s.stored("private").is_empty(), "{:?}", s.stored("private"));
    // The virtual repository still serves the public versions.
    let (status, list) = s.get("go", "github.com/popular/lib/@v/list").await;
    assert_eq!((status, list.as_str()), (200, "v1.4.0\n"));

    // Private paths the upstream does not know publish as before, and then belong to the
    // local member (dependency-confusion protection unchanged).
    let private = FixtureModule::new("example.com/private/app", "v1.0.0", &[]);
    let (status, body) = s.publish("private", &private).await;
    assert_eq!(status, 201, "{body}");
    let (status, list) = s.get("go", "example.com/private/app/@v/list").await;
    assert_eq!((status, list.as_str()), (200, "v1.0.0\n"));
    // A path claimed by an include pattern (`corp`: corp.example.com) is never checked.
    let corp = FixtureModule::new("corp.example.com/tool", "v1.0.0", &[]);
    assert_eq!(s.publish("corp", &corp).await.0, 201);
    assert_eq!(
        s.upstream.request_count("/corp.example.com/tool/@v/list"),
        0,
        "a path claimed by pattern needs no upstream check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_shadowing_or_an_include_pattern_permits_it() {
    // `allow_shadowing = true` (the harness's setting for `private`).
    let s = Setup::start(|t| t).await;
    let module = FixtureModule::new("github.com/popular/lib", "v1.5.0", &[]);
    let (status, body) = s.publish("private", &module).await;
    assert_eq!(status, 201, "{body}");
    let (status, list) = s.get("go", "github.com/popular/lib/@v/list").await;
    assert_eq!(
        (status, list.as_str()),
        (200, "v1.5.0\n"),
        "the local member now owns the path"
    );
    drop(s);

    // An include pattern that names the path claims it on purpose.
    let s = Setup::start(|t| {
        default_policy(t).replace(
            "name = \"private\"\nkind = \"local\"\n",
            "name = \"private\"\nkind = \"local\"\ninclude = [\"github.com/popular/lib\"]\n",
        )
    })
    .await;
    let (status, body) = s.publish("private", &module).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_publish_gets_the_same_policy() {
    let s = Setup::start(default_policy).await;
    let mut client = RegistryClient::connect(format!("http://{}", s.registry.grpc_addr))
        .await
        .unwrap();
    let module = FixtureModule::new("github.com/popular/lib", "v1.5.0", &[]);
    let messages = vec![
        PublishRequest {
            part: Some(publish_request::Part::Header(PublishHeader {
                repository: "private".into(),
                ..Default::default()
            })),
        },
        PublishRequest {
            part: Some(publish_request::Part::Chunk(module.zip().into())),
        },
    ];
    let mut request = tonic::Request::new(futures::stream::iter(messages));
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {CI_TOKEN}").parse().unwrap(),
    );
    let status = client.publish(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("would shadow a public module"),
        "{status:?}"
    );
    assert!(s.stored("private").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_refuses_with_the_reason() {
    // The remote's upstream is a closed port: whether the path is public is unknown.
    let s = Setup::start(|t| {
        let t = default_policy(t);
        let start = t.find("upstream = { url = \"").unwrap() + "upstream = { url = \"".len();
        let end = start + t[start..].find('"').unwrap();
        let url = t[start..end].to_string();
        t.replace(&format!("upstream = {{ url = \"{url}\""), {
            "upstream = { url = \"http://127.0.0.1:9\""
        })
    })
    .await;
    let module = FixtureModule::new("example.com/private/app", "v1.0.0", &[]);
    let (status, body) = s.publish("private", &module).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("could not check whether the remote members of virtual repository \"go\""),
        "{body}"
    );
    assert!(s.stored("private").is_empty());
}

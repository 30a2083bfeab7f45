//! The shadowing policy: publishing to a local member of a virtual repository a path that the
//! virtual repository's remote members serve is refused (403 with the reason, nothing stored),
//! unless the local repository sets `allow_shadowing` or claims the path by an include
//! pattern; private paths the upstream does not know publish as before, over HTTP and gRPC.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use strata_central_registry::grpc::proto::registry_client::RegistryClient;
use strata_central_registry::grpc::proto::{PublishHeader, PublishRequest, publish_request};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use support::config::{self, CI_TOKEN, DB_NAME, RemoteOptions};
use support::registry::TestRegistry;

/// A registry over the remote layout's configuration, edited by `edit`, with its upstream
/// serving `github.com/popular/lib` and a module with pseudo-versions only.
async fn setup(edit: impl Fn(String) -> String) -> TestRegistry {
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
    let toml = config::remote(&upstream, &db, &RemoteOptions::default());
    TestRegistry::builder(toml)
        .edit(edit)
        .fixtures(upstream, db)
        .start()
        .await
}

/// The remote layout's configuration with the default policy on `private`.
fn default_policy(text: String) -> String {
    assert!(text.contains("allow_shadowing = true\n"));
    text.replace("allow_shadowing = true\n", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_a_public_path_is_refused_with_the_reason_and_nothing_is_stored() {
    let s = setup(default_policy).await;
    for module in [
        FixtureModule::new("github.com/popular/lib", "v1.5.0", &[]),
        // Known upstream only by a pseudo-version: `@latest` answers, the list is empty.
        FixtureModule::new("github.com/popular/untagged", "v1.0.0", &[]),
    ] {
        let (status, body) = s.publish("private", module.zip()).await;
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
    assert!(
        s.stored_keys("private").is_empty(),
        "{:?}",
        s.stored_keys("private")
    );
    // The virtual repository still serves the public versions.
    let (status, list) = s.fetch_text("go", "github.com/popular/lib/@v/list").await;
    assert_eq!((status, list.as_str()), (200, "v1.4.0\n"));

    // Private paths the upstream does not know publish as before, and then belong to the
    // local member (dependency-confusion protection unchanged).
    let private = FixtureModule::new("example.com/private/app", "v1.0.0", &[]);
    let (status, body) = s.publish("private", private.zip()).await;
    assert_eq!(status, 201, "{body}");
    let (status, list) = s.fetch_text("go", "example.com/private/app/@v/list").await;
    assert_eq!((status, list.as_str()), (200, "v1.0.0\n"));
    // A path claimed by an include pattern (`corp`: corp.example.com) is never checked.
    let corp = FixtureModule::new("corp.example.com/tool", "v1.0.0", &[]);
    assert_eq!(s.publish("corp", corp.zip()).await.0, 201);
    assert_eq!(
        s.upstream().request_count("/corp.example.com/tool/@v/list"),
        0,
        "a path claimed by pattern needs no upstream check"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_shadowing_or_an_include_pattern_permits_it() {
    // `allow_shadowing = true` (the harness's setting for `private`).
    let s = setup(|t| t).await;
    let module = FixtureModule::new("github.com/popular/lib", "v1.5.0", &[]);
    let (status, body) = s.publish("private", module.zip()).await;
    assert_eq!(status, 201, "{body}");
    let (status, list) = s.fetch_text("go", "github.com/popular/lib/@v/list").await;
    assert_eq!(
        (status, list.as_str()),
        (200, "v1.5.0\n"),
        "the local member now owns the path"
    );
    drop(s);

    // An include pattern that names the path claims it on purpose.
    let s = setup(|t| {
        default_policy(t).replace(
            "name = \"private\"\nkind = \"local\"\n",
            "name = \"private\"\nkind = \"local\"\ninclude = [\"github.com/popular/lib\"]\n",
        )
    })
    .await;
    let (status, body) = s.publish("private", module.zip()).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_publish_gets_the_same_policy() {
    let s = setup(default_policy).await;
    let mut client = RegistryClient::connect(format!("http://{}", s.running.grpc_addr))
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
    assert!(s.stored_keys("private").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_refuses_with_the_reason() {
    // The remote's upstream is a closed port: whether the path is public is unknown.
    let s = setup(|t| {
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
    let (status, body) = s.publish("private", module.zip()).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("could not check whether the remote members of virtual repository \"go\""),
        "{body}"
    );
    assert!(s.stored_keys("private").is_empty());
}

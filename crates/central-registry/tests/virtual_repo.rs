//! Virtual repositories over a local and a remote member: merged lists, `@latest` across
//! members, the first member wins for artifacts, dependency-confusion protection, and the
//! checksum-database proxy reached through the virtual repository.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use strata_testkit::FixtureModule;
use support::config::{DB_NAME, RemoteOptions};
use support::registry::TestRegistry;

/// On the upstream: a public module with two versions, and a module whose path a local
/// repository owns (a dependency-confusion attempt: same path, higher version).
fn upstream_modules() -> Vec<FixtureModule> {
    vec![
        FixtureModule::new("example.com/shared", "v1.0.0", &[]),
        FixtureModule::new("example.com/shared", "v1.2.0", &[]),
        FixtureModule::new("example.com/private/app", "v1.9.9", &[]),
        FixtureModule::new("corp.example.com/tool", "v1.5.0", &[]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merges_members_and_prefers_the_first() {
    let h = TestRegistry::remote(&upstream_modules(), RemoteOptions::default()).await;
    // The local member also has example.com/shared, at a version the upstream lacks.
    let local = FixtureModule::new("example.com/shared", "v1.1.0", &[]).zip();
    let (status, body) = h.publish("private", local.clone()).await;
    assert_eq!(status, 201, "{body}");

    let (status, _, list) = h.fetch("go", "example.com/shared/@v/list").await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(list).unwrap(), "v1.1.0\n");
    // ↑ the local member holds versions of example.com/shared, so it owns the path: the
    // remote member is not asked (dependency-confusion protection also covers this case).
    assert_eq!(h.upstream().request_count("/example.com/shared/@v/list"), 0);
    let (status, _, zip) = h.fetch("go", "example.com/shared/@v/v1.1.0.zip").await;
    assert_eq!(status, 200);
    assert_eq!(zip, local);
    let (status, _, _) = h.fetch("go", "example.com/shared/@v/v1.2.0.zip").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_modules_come_from_the_remote_member() {
    let h = TestRegistry::remote(&upstream_modules(), RemoteOptions::default()).await;
    let (status, _, list) = h.fetch("go", "example.com/shared/@v/list").await;
    assert_eq!(status, 200);
    assert_eq!(String::from_utf8(list).unwrap(), "v1.0.0\nv1.2.0\n");
    let (status, _, latest) = h.fetch("go", "example.com/shared/@latest").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&latest));
    assert!(String::from_utf8_lossy(&latest).contains("\"v1.2.0\""));
    let built = h.upstream().module("example.com/shared", "v1.2.0").unwrap();
    let (status, headers, zip) = h.fetch("go", "example.com/shared/@v/v1.2.0.zip").await;
    assert_eq!(status, 200);
    assert_eq!(zip, built.zip);
    assert_eq!(headers["x-go-checksum"], built.zip_hash.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_paths_are_never_resolved_from_the_remote() {
    let h = TestRegistry::remote(&upstream_modules(), RemoteOptions::default()).await;
    // `private` owns example.com/private/app by having a version of it.
    let local = FixtureModule::new("example.com/private/app", "v1.0.0", &[]).zip();
    assert_eq!(h.publish("private", local.clone()).await.0, 201);
    // `corp` owns corp.example.com/… by its include pattern, even with no version at all.
    for path in [
        "example.com/private/app/@v/list",
        "example.com/private/app/@latest",
        "example.com/private/app/@v/v1.9.9.info",
        "example.com/private/app/@v/v1.9.9.mod",
        "example.com/private/app/@v/v1.9.9.zip",
        "corp.example.com/tool/@v/list",
        "corp.example.com/tool/@v/v1.5.0.zip",
    ] {
        let (status, _, body) = h.fetch("go", path).await;
        let text = String::from_utf8_lossy(&body);
        match path {
            "example.com/private/app/@v/list" => assert_eq!(text, "v1.0.0\n"),
            "example.com/private/app/@latest" => assert!(text.contains("v1.0.0"), "{text}"),
            // A claimed path with no versions: an empty list, not the upstream's.
            "corp.example.com/tool/@v/list" => assert_eq!((status, text.as_ref()), (200, "")),
            _ => assert_eq!(status, 404, "{path}: {text}"),
        }
    }
    let asked: Vec<String> = h
        .upstream()
        .requests()
        .into_iter()
        .filter(|p| p.contains("private/app") || p.contains("corp.example.com"))
        .collect();
    assert!(asked.is_empty(), "the upstream was asked: {asked:#?}");
    let (_, _, zip) = h.fetch("go", "example.com/private/app/@v/v1.0.0.zip").await;
    assert_eq!(zip, local);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checksum_database_is_proxied() {
    let h = TestRegistry::remote(&upstream_modules(), RemoteOptions::default()).await;
    let base = format!("sumdb/{DB_NAME}");
    for repo in ["go", "gocache"] {
        let (status, _, _) = h.fetch(repo, &format!("{base}/supported")).await;
        assert_eq!(status, 200, "{repo}");
    }
    let (status, _, _) = h.fetch("private", &format!("{base}/supported")).await;
    assert_eq!(status, 404, "a local repository has no database");
    let (status, _, _) = h.fetch("go", "sumdb/sum.golang.org/supported").await;
    assert_eq!(status, 404, "only the configured database");
    let (status, headers, body) = h
        .fetch("go", &format!("{base}/lookup/example.com/shared@v1.0.0"))
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body);
    let built = h.upstream().module("example.com/shared", "v1.0.0").unwrap();
    assert!(text.contains(&built.zip_hash), "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let (status, _, _) = h
        .fetch("go", &format!("{base}/tile/8/0/x001/../../x"))
        .await;
    assert_ne!(status, 200);
}

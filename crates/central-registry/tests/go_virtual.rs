//! The real go command through a virtual repository (local + remote members): it resolves a
//! dependency graph mixing a private module (published to the local member) and public
//! fixture modules (fetched by the remote member from the fixture upstream and verified),
//! verifies go.sum against the test checksum database reached through the registry's sumdb
//! proxy (`GOSUMDB=<test key>`, no URL), and `go mod verify` passes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Output;

use strata_testkit::{FixtureModule, dependency_graph, go_command};
use support::config::{DB_NAME, RemoteOptions};
use support::registry::TestRegistry;

/// `go args…` in `dir` with private caches under `home`; `example.com/private` skips the
/// checksum database.
fn go(dir: &Path, home: &Path, proxy: &str, key: &str, args: &[&str]) -> Output {
    go_command::run(dir, home, proxy, key, "example.com/private", args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_resolves_private_and_public_modules_through_a_virtual_repository() {
    let public = dependency_graph(8);
    let h = TestRegistry::remote(&public, RemoteOptions::default()).await;
    let top = &public[public.len() - 1];
    let private = FixtureModule::new(
        "example.com/private/app",
        "v1.0.0",
        &[(top.path.as_str(), top.version.as_str())],
    );
    let (status, body) = h.publish("private", private.zip()).await;
    assert_eq!(status, 201, "{body}");

    let proxy = h.proxy_url("go");
    let key = h.db().verifier_key();
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_owned();
    let (get, verify, go_sum) = tokio::task::spawn_blocking(move || {
        let home = root_path.join("home");
        let dir = home.join("client");
        std::fs::create_dir_all(&dir).unwrap();
        let init = go(
            &dir,
            &home,
            &proxy,
            &key,
            &["mod", "init", "example.com/client"],
        );
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        let get = go(
            &dir,
            &home,
            &proxy,
            &key,
            &["get", "example.com/private/app@v1.0.0"],
        );
        let download = go(&dir, &home, &proxy, &key, &["mod", "download", "all"]);
        assert!(
            download.status.success(),
            "{}",
            String::from_utf8_lossy(&download.stderr)
        );
        let verify = go(&dir, &home, &proxy, &key, &["mod", "verify"]);
        let go_sum = std::fs::read_to_string(dir.join("go.sum")).unwrap_or_default();
        (get, verify, go_sum)
    })
    .await
    .unwrap();
    assert!(
        get.status.success(),
        "go get: {}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert!(
        verify.status.success()
            && String::from_utf8_lossy(&verify.stdout).contains("all modules verified"),
        "go mod verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    // The public modules' go.sum lines are the database's (the go command keeps only the
    // lines the pruned module graph needs).
    let expected: String = public
        .iter()
        .map(|m| {
            h.upstream()
                .module(&m.path, &m.version)
                .unwrap()
                .go_sum
                .clone()
        })
        .collect();
    let top_built = h.upstream().module(&top.path, &top.version).unwrap();
    assert!(go_sum.contains(&top_built.go_sum), "{go_sum}");
    for line in go_sum
        .lines()
        .filter(|l| !l.starts_with("example.com/private/"))
    {
        assert!(expected.contains(line), "unexpected go.sum line {line}");
    }
    // The go command verified through the registry's proxy, and the registry fetched every
    // public zip exactly once.
    let requests = h.upstream().requests();
    assert!(
        requests
            .iter()
            .any(|p| p.starts_with(&format!("/sumdb/{DB_NAME}/lookup/"))),
        "{requests:#?}"
    );
    for m in &public {
        let escaped = strata_core::path::escape_path(&m.path).unwrap();
        let zips = h
            .upstream()
            .request_count(&format!("/{escaped}/@v/{}.zip", m.version));
        assert!(zips <= 1, "{}: {zips} zip fetches", m.path);
    }
    assert!(
        !requests.iter().any(|p| p.contains("private/app")),
        "{requests:#?}"
    );
}

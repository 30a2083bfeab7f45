//! The real go command accepts the fixture upstream and the test checksum database: it resolves
//! fixture modules through `GOPROXY`, verifies them against the test database reached through the
//! proxy (`GOSUMDB=<test key>`, no `GONOSUMDB`/`GOINSECURE`), writes the go.sum lines the fixture
//! computed, and refuses a tampered zip with a SECURITY ERROR.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use strata_testkit::{FixtureUpstream, Tamper, TestSumDb, dependency_graph, go_command};

const DB_NAME: &str = "sum.strata.test";

/// Runs `go args…` in `dir` with a private GOPATH/GOMODCACHE/GOCACHE under `home`, every
/// module verified against the database.
fn go(dir: &Path, home: &Path, proxy: &str, sumdb_key: &str, args: &[&str]) -> Output {
    go_command::run(dir, home, proxy, sumdb_key, "", args)
}

/// A fresh client module in a new home; returns (home, module dir).
fn client_module(
    root: &tempfile::TempDir,
    name: &str,
    proxy: &str,
    key: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let home = root.path().join(name);
    let dir = home.join("client");
    std::fs::create_dir_all(&dir).unwrap();
    let out = go(
        &dir,
        &home,
        proxy,
        key,
        &["mod", "init", "example.com/client"],
    );
    assert!(out.status.success(), "go mod init: {}", stderr(&out));
    (home, dir)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_command_accepts_fixture_upstream_and_test_sumdb() {
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let key = db.verifier_key();
    let modules = dependency_graph(5);
    assert!(
        modules
            .iter()
            .any(|m| m.path.chars().any(|c| c.is_ascii_uppercase())),
        "an upper-case path is among the fixtures"
    );
    let upstream = FixtureUpstream::start(&modules, Some(db.clone())).await;
    assert_eq!(db.size(), 5);
    let proxy = upstream.url();
    let root = tempfile::tempdir().unwrap();

    // Resolve and verify every fixture module.
    let targets: Vec<String> = modules
        .iter()
        .map(|m| format!("{}@{}", m.path, m.version))
        .collect();
    let (proxy2, key2, root_path) = (proxy.clone(), key.clone(), root.path().to_owned());
    let (go_sum, verify) = tokio::task::spawn_blocking(move || {
        let root = tempfile::TempDir::new_in(root_path).unwrap();
        let (home, dir) = client_module(&root, "ok", &proxy2, &key2);
        let mut args = vec!["get"];
        args.extend(targets.iter().map(String::as_str));
        let out = go(&dir, &home, &proxy2, &key2, &args);
        assert!(out.status.success(), "go get: {}", stderr(&out));
        let verify = go(&dir, &home, &proxy2, &key2, &["mod", "verify"]);
        let go_sum = std::fs::read_to_string(dir.join("go.sum")).unwrap();
        (go_sum, verify)
    })
    .await
    .unwrap();
    assert!(
        verify.status.success(),
        "go mod verify: {}",
        stderr(&verify)
    );
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("all modules verified"),
        "go mod verify output"
    );
    let expected: String = modules
        .iter()
        .map(|m| upstream.module(&m.path, &m.version).unwrap().go_sum.clone())
        .collect();
    assert_eq!(sorted_lines(&go_sum), sorted_lines(&expected));

    // The database was really consulted, through the proxy.
    let requests = upstream.requests();
    let sumdb_prefix = format!("/sumdb/{DB_NAME}/");
    assert!(upstream.request_count(&format!("{sumdb_prefix}supported")) >= 1);
    for m in &modules {
        let escaped = strata_core::path::escape_path(&m.path).unwrap();
        let lookup = format!("{sumdb_prefix}lookup/{escaped}@{}", m.version);
        assert_eq!(
            upstream.request_count(&lookup),
            1,
            "{lookup} in {requests:#?}"
        );
        let zip = format!("/{escaped}/@v/{}.zip", m.version);
        assert_eq!(upstream.request_count(&zip), 1, "{zip}");
    }
    assert!(
        requests
            .iter()
            .any(|p| p.starts_with(&format!("{sumdb_prefix}tile/8/0/"))),
        "tile requests in {requests:#?}"
    );

    // A tampered zip is refused: the database's hash wins over the upstream's bytes.
    let victim = modules[2].clone();
    upstream.set_tampered(&victim.path, Some(Tamper::Content));
    let root_path = root.path().to_owned();
    let target = format!("{}@{}", victim.path, victim.version);
    let out = tokio::task::spawn_blocking(move || {
        let root = tempfile::TempDir::new_in(root_path).unwrap();
        let (home, dir) = client_module(&root, "tampered", &proxy, &key);
        go(&dir, &home, &proxy, &key, &["get", &target])
    })
    .await
    .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "go get of a tampered zip succeeded");
    assert!(err.contains("checksum mismatch"), "stderr: {err}");
    assert!(err.contains("SECURITY ERROR"), "stderr: {err}");
    assert!(err.contains(&format!("{DB_NAME}: h1:")), "stderr: {err}");
}

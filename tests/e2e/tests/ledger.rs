//! The registry's own checksum database (its ledger) end to end: registry processes on MinIO
//! with Redis events, an HTTPS edge in front, and the real go command with `GOSUMDB` set to
//! the ledger's verifier key and `GONOSUMDB` empty.
//!
//! * A private module and a public module graph (the fixture upstream, verified against the
//!   test database) both verify against the ledger; the go command's own sumdb cache holds
//!   tiles it fetched from strata.
//! * Tampering: a published zip replaced in storage (blob and index rewritten consistently, so
//!   registry and edge serve it without complaint) is refused by the go command with a fresh
//!   module cache; the log rewritten and re-signed with the same key is reported by a go
//!   command that kept its tree head.
//! * 20 concurrent publishes on two registry processes sharing the bucket: one log, every
//!   record once, every head seen along the way a prefix of the final one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use strata_central_registry::ledger::{Ledger, generate_key};
use strata_central_registry::storage::fs::FsStore;
use strata_central_registry::storage::{KeyPrefix, ObjectStore, body_from_bytes, read_body};
use strata_core::path::ModulePath;
use strata_core::sumdb::tlog::{Hash, stored_hashes, tree_hash};
use strata_core::sumdb::{VerifierKey, VerifierList, note, parse_tree};
use strata_core::version::Version;
use strata_e2e::go::{GoClient, write_main_module};
use strata_e2e::{CI_TOKEN, EdgeProcess, RegistryProcess, Stack, binaries};
use strata_registry_engine::test_util::swap_zip_and_index;
use strata_testkit::{FixtureModule, dependency_graph};

const LEDGER: &str = "sum.corp.test";
const APP: &str = "example.com/private/app";

/// The go command through `edge`, verifying every module against the ledger.
fn ledger_client(stack: &Stack, edge: &EdgeProcess, verifier: &str, name: &str) -> GoClient {
    GoClient::new(&edge.url(""), verifier, "", &stack.dir().join(name)).with_credentials(
        &edge.addr.to_string(),
        CI_TOKEN,
        &stack.cert.cert,
    )
}

/// Removes a session's module cache (read-only by design), keeping its GOPATH — and with it
/// the go command's remembered tree heads (`$GOPATH/pkg/sumdb`).
fn clear_modcache(modcache: &Path) {
    let _ = std::process::Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(modcache)
        .status();
    let _ = std::fs::remove_dir_all(modcache);
}

/// A main module in a new directory `dir`.
fn app_dir(stack: &Stack, dir: &str) -> std::path::PathBuf {
    let dir = stack.dir().join(dir);
    write_main_module(&dir, "example.com/e2e/client", &[], "");
    dir
}

async fn start(stack: &Stack, signer: &str, names: &[&str]) -> Vec<RegistryProcess> {
    let mut registries = Vec::new();
    for name in names {
        let spec = stack.registry_spec(name).with_ledger(signer);
        registries.push(stack.start_registry_with(&spec).await);
    }
    registries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_verifies_private_and_public_modules_against_the_ledger_and_sees_tampering() {
    let graph = dependency_graph(6);
    let top = graph.last().unwrap().clone();
    let Some(stack) = Stack::start("ledger-go", binaries!(), &graph).await else {
        return;
    };
    let (signer, verifier) = generate_key(LEDGER).unwrap();
    let registry = start(&stack, &signer, &["registry"]).await.remove(0);
    let mut spec = stack.edge_spec("edge", &[&registry]);
    spec.tls = Some(stack.cert.clone());
    let edge = stack.start_edge(&spec).await;

    let app = |version: &str| {
        FixtureModule::new(APP, version, &[(top.path.as_str(), top.version.as_str())])
    };
    registry.publish("private", app("v1.0.0").zip()).await;
    registry.publish("private", app("v1.0.1").zip()).await;

    // go get of the private module and, through it, the public graph; go mod verify.
    let go = ledger_client(&stack, &edge, &verifier, "go");
    let kept = go.session();
    // A main module requiring the whole public graph, so that every module of it is
    // downloaded and verified (not only the go.mod files a pruned graph needs).
    let first = stack.dir().join("first");
    let requires: Vec<(&str, &str)> = graph
        .iter()
        .map(|m| (m.path.as_str(), m.version.as_str()))
        .collect();
    write_main_module(&first, "example.com/e2e/client", &requires, "");
    kept.run(&first, &["get", &format!("{APP}@v1.0.0")])
        .await
        .assert_ok();
    kept.run(&first, &["mod", "download", "all"])
        .await
        .assert_ok();
    let verify = kept.run(&first, &["mod", "verify"]).await;
    verify.assert_ok();
    assert!(
        verify.stdout.contains("all modules verified"),
        "{}",
        verify.text()
    );
    let go_sum = std::fs::read_to_string(first.join("go.sum")).unwrap();
    for m in &graph {
        // Both lines of every public module, exactly the upstream database's.
        let lines = &stack.upstream.module(&m.path, &m.version).unwrap().go_sum;
        assert!(go_sum.contains(lines.as_str()), "{}:\n{go_sum}", m.path);
    }
    let (status, _, latest) = strata_e2e::get(
        &reqwest::Client::new(),
        &format!("{}/go/go/sumdb/{LEDGER}/latest", registry.http_url()),
        Some(CI_TOKEN),
    )
    .await;
    assert_eq!(status, 200);
    let latest = String::from_utf8_lossy(&latest).into_owned();
    assert!(
        latest.starts_with(&format!("go.sum database tree\n{}\n", graph.len() + 2)),
        "the two private versions and the public graph recorded: {latest}"
    );
    let tiles = kept
        .modcache()
        .join(format!("cache/download/sumdb/{LEDGER}/tile"));
    assert!(
        tiles.is_dir(),
        "the go command fetched tiles from strata: {}",
        tiles.display()
    );

    // (i) The operator (or whoever holds the bucket) swaps v1.0.1's zip for other valid bytes
    // and rewrites its index entry to match: registry and edge serve the new bytes happily.
    let store: Arc<dyn ObjectStore> = Arc::new(stack.store().await);
    let evil = FixtureModule::new(APP, "v1.0.1", &[(top.path.as_str(), top.version.as_str())])
        .with_file("backdoor.go", "package app\n\nconst Backdoor = true\n")
        .build();
    let (module, version) = (
        ModulePath::new(APP).unwrap(),
        Version::new("v1.0.1").unwrap(),
    );
    swap_zip_and_index(
        &store,
        "private",
        &module,
        &version,
        &evil.zip,
        &evil.zip_hash,
    )
    .await
    .unwrap();
    // Without the ledger (private modules exempt, as GONOSUMDB used to require) nobody
    // notices ...
    let exempt_client = stack.go_client(&edge, "", "exempt");
    let exempt = exempt_client.session();
    let dir = app_dir(&stack, "exempt");
    exempt
        .run(&dir, &["get", &format!("{APP}@v1.0.1")])
        .await
        .assert_ok();
    assert!(
        std::fs::read_to_string(dir.join("go.sum"))
            .unwrap()
            .contains(&evil.zip_hash),
        "the swapped zip was taken"
    );
    // ... with it, a fresh module cache refuses the swapped zip.
    let fresh = go.session();
    let dir = app_dir(&stack, "tampered");
    let refused = fresh.run(&dir, &["get", &format!("{APP}@v1.0.1")]).await;
    assert!(!refused.success, "{}", refused.text());
    assert!(
        refused.text().contains("checksum mismatch") && refused.text().contains("SECURITY ERROR"),
        "{}",
        refused.text()
    );

    // (ii) The log rewritten: record 0 (v1.0.0, the first publish) altered, every tile and
    // the head rebuilt and re-signed with the same key, the stored log replaced.
    let ledger = Ledger::new(store.clone(), &signer).unwrap();
    let size = ledger.recover().await.unwrap();
    let fork_dir = tempfile::tempdir().unwrap();
    let fork_store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(fork_dir.path()).unwrap());
    let fork = Ledger::new(fork_store.clone(), &signer).unwrap();
    for id in 0..size {
        let text = ledger.record_text(id).await.unwrap().unwrap();
        let text = String::from_utf8(text.to_vec()).unwrap();
        let (m, v, mut zip_h1, mod_h1) = parse_record(&text);
        if id == 0 {
            zip_h1 = evil.zip_hash.clone();
        }
        fork.append(&m, &v, &zip_h1, &mod_h1).await.unwrap();
    }
    assert_ne!(fork.latest().await.unwrap(), ledger.latest().await.unwrap());
    let prefix = KeyPrefix::new(format!("ledger/{LEDGER}/")).unwrap();
    let objects: Vec<_> = futures::StreamExt::collect::<Vec<_>>(fork_store.list(&prefix)).await;
    for meta in objects {
        let meta = meta.unwrap();
        let body = read_body(fork_store.get(&meta.key).await.unwrap().body, 1 << 20)
            .await
            .unwrap();
        store.put(&meta.key, body_from_bytes(body)).await.unwrap();
    }
    // The go command that remembers the old head (same GOPATH, fresh module cache) refuses
    // the new one.
    clear_modcache(&kept.modcache());
    let dir = app_dir(&stack, "after-rewrite");
    let detected = kept.run(&dir, &["get", &format!("{APP}@v1.0.0")]).await;
    assert!(!detected.success, "{}", detected.text());
    let text = detected.text();
    assert!(
        text.contains("SECURITY ERROR") || text.contains("misbehavior"),
        "{text}"
    );
    eprintln!("a rewritten log, as the go command reports it:\n{text}");
}

/// `module version h1:…\nmodule version/go.mod h1:…\n`.
fn parse_record(text: &str) -> (ModulePath, Version, String, String) {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
    (
        ModulePath::new(lines[0][0]).unwrap(),
        Version::new(lines[0][1]).unwrap(),
        lines[0][2].to_owned(),
        lines[1][2].to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_publishes_on_two_registries_make_one_log() {
    let Some(stack) = Stack::start("ledger-concurrency", binaries!(), &[]).await else {
        return;
    };
    let (signer, verifier) = generate_key(LEDGER).unwrap();
    let registries = Arc::new(start(&stack, &signer, &["registry-a", "registry-b"]).await);

    // Watch /latest on both while the publishes run.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watchers: Vec<_> = (0..2)
        .map(|r| {
            let (registries, done) = (registries.clone(), done.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let url = format!(
                    "{}/go/private/sumdb/{LEDGER}/latest",
                    registries[r].http_url()
                );
                let mut seen = Vec::new();
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let (status, _, body) = strata_e2e::get(&client, &url, Some(CI_TOKEN)).await;
                    assert_eq!(status, 200);
                    seen.push(body);
                }
                seen
            })
        })
        .collect();
    let publishes = (0..20).map(|i| {
        let registries = registries.clone();
        tokio::spawn(async move {
            let m = FixtureModule::new(&format!("example.com/private/m{i:02}"), "v1.0.0", &[]);
            registries[i % 2].publish("private", m.zip()).await
        })
    });
    let go_sums: Vec<String> = futures::future::join_all(publishes)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    for w in watchers {
        seen.extend(w.await.unwrap());
    }

    // The final log: 20 records, each publish's go.sum lines exactly once.
    let store: Arc<dyn ObjectStore> = Arc::new(stack.store().await);
    let ledger = Ledger::new(store, &signer).unwrap();
    let final_note = ledger.latest().await.unwrap();
    seen.push(final_note.to_vec());
    let verifiers = VerifierList::new([VerifierKey::parse(&verifier).unwrap()]);
    let final_tree =
        parse_tree(note::open(&final_note, &verifiers).unwrap().text.as_bytes()).unwrap();
    assert_eq!(final_tree.n, 20);
    let mut records = Vec::new();
    for id in 0..20 {
        records.push(ledger.record_text(id).await.unwrap().unwrap().to_vec());
    }
    let texts: HashSet<String> = records
        .iter()
        .map(|r| String::from_utf8(r.clone()).unwrap())
        .collect();
    let published: HashSet<String> = go_sums
        .iter()
        .map(|s| {
            if s.ends_with('\n') {
                s.clone()
            } else {
                format!("{s}\n")
            }
        })
        .collect();
    assert_eq!(
        texts, published,
        "every publish recorded once, nothing else"
    );

    // Every head either registry served verifies and is a prefix of the final log.
    let mut all: Vec<Hash> = Vec::new();
    for (n, r) in records.iter().enumerate() {
        let new = stored_hashes(n as u64, r, &all).unwrap();
        all.extend(new);
    }
    let mut sizes = HashSet::new();
    for body in &seen {
        let tree = parse_tree(note::open(body, &verifiers).unwrap().text.as_bytes()).unwrap();
        assert_eq!(
            tree.hash,
            tree_hash(tree.n, &all).unwrap(),
            "head of size {}",
            tree.n
        );
        sizes.insert(tree.n);
    }
    eprintln!(
        "{} heads observed, {} distinct sizes",
        seen.len(),
        sizes.len()
    );
}

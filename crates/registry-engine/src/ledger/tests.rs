//! The ledger over the file-system store in a temporary directory: signed heads, idempotence
//! and immutability, bad input. The protocol against core's verifying client and a reference
//! log is in `tests/protocol.rs`, the real go command in `tests/go_command.rs`, concurrent
//! appenders in `tests/concurrency.rs`, crashes and tampering in `tests/recovery.rs`.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod concurrency;
mod go_command;
mod protocol;
mod recovery;

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use strata_core::gosum::format_module_lines;
use strata_core::path::ModulePath;
use strata_core::protocol::ErrorKind;
use strata_core::sumdb::note;
use strata_core::sumdb::tlog::{Hash, empty_tree_hash, stored_hashes, tree_hash};
use strata_core::sumdb::{SignerKey, Tree, VerifierKey, VerifierList, parse_tree};
use strata_core::version::Version;
use strata_testkit::TestSumDb;
use tempfile::TempDir;

use super::{Ledger, LedgerError, generate_key};
use crate::storage::fs::FsStore;
use crate::storage::{ObjectKey, ObjectStore, body_from_bytes, read_body};

const NAME: &str = "sum.strata.test";

/// A ledger over a store in a temporary directory.
struct Fixture {
    dir: TempDir,
    store: Arc<dyn ObjectStore>,
    ledger: Arc<Ledger>,
    signer_key: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).unwrap());
        let signer_key = signer_key(1);
        let ledger = Arc::new(Ledger::new(store.clone(), &signer_key).unwrap());
        Fixture {
            dir,
            store,
            ledger,
            signer_key,
        }
    }

    /// Another ledger over the same directory, through its own store handle (another replica).
    fn replica(&self) -> Arc<Ledger> {
        let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(self.dir.path()).unwrap());
        Arc::new(Ledger::new(store, &self.signer_key).unwrap())
    }

    /// Appends record `i` of the fixture set.
    async fn append(&self, i: usize) -> Result<u64, LedgerError> {
        append(&self.ledger, i).await
    }

    async fn read(&self, key: &str) -> Option<Bytes> {
        let key = ObjectKey::new(key).unwrap();
        match self.store.get(&key).await {
            Ok(o) => Some(read_body(o.body, usize::MAX).await.unwrap()),
            Err(e) if e.is_not_found() => None,
            Err(e) => panic!("{e}"),
        }
    }

    async fn write(&self, key: &str, data: impl Into<Bytes>) {
        let key = ObjectKey::new(key).unwrap();
        self.store
            .put(&key, body_from_bytes(data.into()))
            .await
            .unwrap();
    }

    /// The signed tree of `latest`, verified with the ledger's verifier key.
    async fn tree(&self) -> Tree {
        open_tree(&self.ledger, &self.ledger.latest().await.unwrap())
    }

    /// Every committed record text, in order.
    async fn records(&self) -> Vec<Vec<u8>> {
        let n = self.tree().await.n;
        let mut out = Vec::new();
        for id in 0..n {
            out.push(self.ledger.record_text(id).await.unwrap().unwrap().to_vec());
        }
        assert!(self.ledger.record_text(n).await.unwrap().is_none());
        out
    }
}

fn signer_key(seed: u8) -> String {
    SignerKey::from_seed(NAME, &[seed; 32]).unwrap().encode()
}

/// Module `i` of the fixture set (every third with upper-case letters, for case-encoding).
fn module(i: usize) -> ModulePath {
    let path = if i.is_multiple_of(3) {
        format!("example.com/Team/M{i}")
    } else {
        format!("example.com/team/m{i}")
    };
    ModulePath::new(&path).unwrap()
}

fn version() -> Version {
    Version::new("v1.0.0").unwrap()
}

/// A deterministic `h1:` hash.
fn h1(what: &str) -> String {
    let raw = Sha256::digest(what.as_bytes());
    format!(
        "h1:{}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn hashes(i: usize) -> (String, String) {
    (h1(&format!("zip{i}")), h1(&format!("mod{i}")))
}

/// The record text of module `i`.
fn text(i: usize) -> String {
    let (zip, go_mod) = hashes(i);
    format_module_lines(module(i).as_str(), "v1.0.0", &zip, &go_mod)
}

async fn append(ledger: &Ledger, i: usize) -> Result<u64, LedgerError> {
    let (zip, go_mod) = hashes(i);
    ledger.append(&module(i), &version(), &zip, &go_mod).await
}

fn open_tree(ledger: &Ledger, msg: &[u8]) -> Tree {
    let verifier = VerifierKey::parse(&ledger.verifier_key()).unwrap();
    let opened = note::open(msg, &VerifierList::new([verifier])).unwrap();
    parse_tree(opened.text.as_bytes()).unwrap()
}

/// Every stored hash of a log of `records`, the simple way.
fn reference(records: &[Vec<u8>]) -> Vec<Hash> {
    let mut all = Vec::new();
    for (n, r) in records.iter().enumerate() {
        let new = stored_hashes(n as u64, r, &all).unwrap();
        all.extend(new);
    }
    all
}

#[tokio::test]
async fn latest_signs_the_tree_of_the_records() {
    let f = Fixture::new();
    assert_eq!(
        f.tree().await,
        Tree {
            n: 0,
            hash: empty_tree_hash()
        }
    );
    for i in 0..5 {
        assert_eq!(f.append(i).await.unwrap(), i as u64);
    }
    let records = f.records().await;
    let want: Vec<Vec<u8>> = (0..5).map(|i| text(i).into_bytes()).collect();
    assert_eq!(records, want);
    let tree = f.tree().await;
    assert_eq!(tree.n, 5);
    assert_eq!(tree.hash, tree_hash(5, &reference(&records)).unwrap());

    // The testkit's in-memory database, signing with the same key, serves the same note.
    let db = TestSumDb::from_seed(NAME, &[1; 32]);
    for (i, r) in want.iter().enumerate() {
        db.add(
            module(i).as_str(),
            "v1.0.0",
            std::str::from_utf8(r).unwrap(),
        );
    }
    assert_eq!(f.ledger.latest().await.unwrap().as_ref(), db.latest_note());
    assert_eq!(f.ledger.verifier_key(), db.verifier_key());
    assert_eq!(f.ledger.name(), NAME);

    let (id, lines) = f
        .ledger
        .find(&module(3), &version())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, 3);
    assert_eq!(lines.join("\n") + "\n", text(3));
    assert!(
        f.ledger
            .find(&module(9), &version())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn appending_again_is_idempotent() {
    let f = Fixture::new();
    assert_eq!(f.append(0).await.unwrap(), 0);
    assert_eq!(f.append(1).await.unwrap(), 1);
    let head = f.read("ledger/sum.strata.test/head").await;
    assert_eq!(f.append(0).await.unwrap(), 0);
    assert_eq!(f.append(1).await.unwrap(), 1);
    assert_eq!(f.read("ledger/sum.strata.test/head").await, head);
}

#[tokio::test]
async fn other_hashes_for_a_recorded_version_conflict() {
    let f = Fixture::new();
    f.append(0).await.unwrap();
    let head = f.read("ledger/sum.strata.test/head").await;
    let (zip, go_mod) = hashes(0);
    for (zip, go_mod) in [(h1("other"), go_mod), (zip, h1("other"))] {
        let err = f
            .ledger
            .append(&module(0), &version(), &zip, &go_mod)
            .await
            .unwrap_err();
        assert!(matches!(err, LedgerError::Conflict { .. }), "{err}");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.to_string().contains("other hashes"), "{err}");
    }
    assert_eq!(f.read("ledger/sum.strata.test/head").await, head);
    assert_eq!(f.records().await, vec![text(0).into_bytes()]);
}

#[tokio::test]
async fn bad_input_is_rejected() {
    let f = Fixture::new();
    let (zip, _) = hashes(0);
    for bad in [
        "",
        "h1:",
        "h1:AAAA",
        "h2:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    ] {
        let err = f
            .ledger
            .append(&module(0), &version(), &zip, bad)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    assert!(f.read("ledger/sum.strata.test/head").await.is_none());
    for bad in [
        "example.com/m",
        "example.com/m@latest",
        "example.com/M@v1.0.0",
    ] {
        let err = f.ledger.lookup(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    for bad in ["tile/8/0/0", "tile/8/0/000.p/256", "tile/8/x/000", "latest"] {
        let err = f.ledger.tile(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    let store: Arc<dyn ObjectStore> = f.store.clone();
    let verifier_key = f.ledger.verifier_key();
    let err = Ledger::new(store, &verifier_key).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn generated_keys_sign_a_working_ledger() {
    let (skey, vkey) = generate_key("sum.corp.example").unwrap();
    assert!(skey.starts_with("PRIVATE+KEY+sum.corp.example+"));
    assert!(vkey.starts_with("sum.corp.example+"));
    let (other, _) = generate_key("sum.corp.example").unwrap();
    assert_ne!(skey, other);
    for bad in ["", "a b", "a+b"] {
        assert!(generate_key(bad).is_err(), "{bad:?}");
    }

    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).unwrap());
    let ledger = Ledger::new(store, &skey).unwrap();
    assert_eq!(ledger.verifier_key(), vkey);
    append(&ledger, 0).await.unwrap();
    assert_eq!(open_tree(&ledger, &ledger.latest().await.unwrap()).n, 1);
}

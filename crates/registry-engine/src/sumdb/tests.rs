//! The checksum-database service against a test database served by a fixture upstream, with
//! the file-system store in a temporary directory: verified lookups at tile heights 2 and 8,
//! the persisted timeline across restarts, forks, wrong keys, upstream failures. The proxy's
//! tests are in `tests/proxy.rs`.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod proxy;

use std::sync::Arc;

use futures::StreamExt as _;

use strata_core::path::ModulePath;
use strata_core::protocol::ErrorKind;
use strata_core::sumdb::{ClientOps, WriteConfigError};
use strata_core::version::Version;
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tempfile::TempDir;

use super::ops::StoreOps;
use super::{ChecksumDb, SumDbConfig};
use crate::storage::fs::FsStore;
use crate::storage::{KeyPrefix, ObjectKey, ObjectStore, read_body};
use crate::upstream::{Upstream, UpstreamConfig};

const NAME: &str = "sum.strata.test";

/// A test database and the fixture upstream serving it, plus a store in a temporary directory.
struct Setup {
    db: Arc<TestSumDb>,
    up: FixtureUpstream,
    dir: TempDir,
    store: Arc<dyn ObjectStore>,
}

impl Setup {
    /// `modules` fixture modules (every third with upper-case letters) and `extra` plain
    /// records, in a database of tile height `h` with the key from `seed`.
    async fn start(h: u32, seed: u8, modules: usize, extra: usize) -> Self {
        let db = Arc::new(TestSumDb::from_seed(NAME, &[seed; 32]).with_tile_height(h));
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).unwrap());
        Self::start_with(db, dir, store, modules, extra).await
    }

    /// Like [`Setup::start`] with a given database and store (restarts, forks).
    async fn start_with(
        db: Arc<TestSumDb>,
        dir: TempDir,
        store: Arc<dyn ObjectStore>,
        modules: usize,
        extra: usize,
    ) -> Self {
        for i in 0..extra {
            let (path, version) = (extra_path(i), "v1.0.0");
            db.add(&path, version, &extra_record(&path, i));
        }
        let up = FixtureUpstream::start(&fixture_modules(modules), Some(db.clone())).await;
        Setup { db, up, dir, store }
    }

    fn config(&self) -> SumDbConfig {
        SumDbConfig {
            url: Some(format!("{}/sumdb/{NAME}", self.up.url())),
            tile_height: self.db.tile_height(),
            read_timeout_ms: Some(2_000),
            attempts: Some(1),
            ..SumDbConfig::with_key(self.db.verifier_key(), None)
        }
    }

    /// A fresh service over the shared store (a restart when one existed before).
    fn service(&self) -> ChecksumDb {
        ChecksumDb::new(&self.config(), self.store.clone()).unwrap()
    }

    /// The module of `fixture_modules` number `i`.
    fn module(&self, i: usize) -> &strata_testkit::BuiltModule {
        self.up.module(&module_path(i), "v1.0.0").unwrap()
    }

    /// The stored object under `key`, if any.
    async fn stored(&self, key: &str) -> Option<Vec<u8>> {
        let object = self.store.get(&ObjectKey::new(key).unwrap()).await.ok()?;
        Some(read_body(object.body, 1 << 20).await.unwrap().to_vec())
    }
}

fn module_path(i: usize) -> String {
    if i.is_multiple_of(3) {
        format!("example.com/Team{i}/mod")
    } else {
        format!("example.com/team{i}/mod")
    }
}

fn fixture_modules(n: usize) -> Vec<FixtureModule> {
    (0..n)
        .map(|i| FixtureModule::new(&module_path(i), "v1.0.0", &[]))
        .collect()
}

fn extra_path(i: usize) -> String {
    format!("example.com/extra/m{i}")
}

fn extra_record(path: &str, i: usize) -> String {
    format!("{path} v1.0.0 h1:zip{i}=\n{path} v1.0.0/go.mod h1:mod{i}=\n")
}

fn mp(path: &str) -> ModulePath {
    ModulePath::new(path).unwrap()
}

fn v(version: &str) -> Version {
    Version::new(version).unwrap()
}

/// Looks up fixture module `i` and checks the hashes against the ones the fixture computed.
async fn check_module(s: &Setup, service: &ChecksumDb, i: usize) {
    let m = s.module(i);
    let sums = service.lookup(&mp(m.path()), &v("v1.0.0")).await.unwrap();
    assert_eq!(sums.zip, m.zip_hash, "{}", m.path());
    assert_eq!(sums.go_mod, m.go_mod_hash, "{}", m.path());
}

async fn lookup_verifies_at_height(h: u32, extra: usize) {
    let s = Setup::start(h, 1, 5, extra).await;
    let service = Arc::new(s.service());
    for i in 0..5 {
        check_module(&s, &service, i).await;
    }
    // Many lookups at once share the one client.
    let lookups = (0..extra).step_by(7).map(|i| {
        let service = service.clone();
        tokio::spawn(async move {
            let sums = service
                .lookup(&mp(&extra_path(i)), &v("v1.0.0"))
                .await
                .unwrap();
            assert_eq!(sums.zip, format!("h1:zip{i}="));
            assert_eq!(sums.go_mod, format!("h1:mod{i}="));
        })
    });
    for lookup in futures::future::join_all(lookups).await {
        lookup.unwrap();
    }
    assert_eq!(service.name(), NAME);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_verifies_at_tile_height_2() {
    lookup_verifies_at_height(2, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_verifies_at_tile_height_8() {
    lookup_verifies_at_height(8, 600).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_timeline_and_cache() {
    let s = Setup::start(2, 2, 3, 20).await;
    check_module(&s, &s.service(), 0).await;
    let latest = s.stored(&format!("sumdb/{NAME}/latest")).await.unwrap();
    assert_eq!(latest, s.db.latest_note());
    let tiles = KeyPrefix::new(format!("sumdb/{NAME}/tile/")).unwrap();
    let cached: Vec<_> = s.store.list(&tiles).collect().await;
    assert!(!cached.is_empty());

    // A new service over the same store: the verified lookup and its tiles come from the store.
    s.up.clear_requests();
    let restarted = s.service();
    check_module(&s, &restarted, 0).await;
    assert_eq!(s.up.requests(), Vec::<String>::new());

    // The database grows; the timeline moves forward and is persisted again.
    s.db.add(
        "example.com/later",
        "v1.0.0",
        &extra_record("example.com/later", 99),
    );
    let sums = restarted
        .lookup(&mp("example.com/later"), &v("v1.0.0"))
        .await
        .unwrap();
    assert_eq!(sums.zip, "h1:zip99=");
    let latest = s.stored(&format!("sumdb/{NAME}/latest")).await.unwrap();
    assert_eq!(latest, s.db.latest_note());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_is_a_security_error() {
    let first = Setup::start(2, 3, 2, 5).await;
    check_module(&first, &first.service(), 1).await;

    // Same key, different log: as if the database showed another history to this registry.
    let forked = Arc::new(TestSumDb::from_seed(NAME, &[3; 32]).with_tile_height(2));
    forked.add(
        "example.com/other",
        "v1.0.0",
        &extra_record("example.com/other", 1),
    );
    let Setup { dir, store, .. } = first;
    let second = Setup::start_with(forked, dir, store, 4, 6).await;
    let restarted = second.service();

    let err = restarted
        .lookup(&mp("example.com/other"), &v("v1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IntegrityViolation, "{err}");
    assert!(err.is_security_error(), "{err}");
    let message = err.to_string();
    assert!(message.contains("SECURITY ERROR"), "{message}");
    assert!(message.contains("example.com/other@v1.0.0"), "{message}");

    // The proxy does not serve the forked tree head either.
    let err = restarted.proxy("/latest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IntegrityViolation, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_rejected() {
    let s = Setup::start(2, 4, 2, 0).await;
    let mut config = s.config();
    config.key = "sum.strata.test+00000000+AAAA".into();
    let err = ChecksumDb::new(&config, s.store.clone()).unwrap_err();
    assert!(err.contains("invalid sumdb key"), "{err}");
    config.key = String::new();
    assert!(config.validate().is_err());

    // A well-formed key of another database with the same name: nothing verifies.
    config.key = TestSumDb::from_seed(NAME, &[5; 32]).verifier_key();
    let service = ChecksumDb::new(&config, s.store.clone()).unwrap();
    let m = s.module(0);
    let err = service
        .lookup(&mp(m.path()), &v("v1.0.0"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IntegrityViolation, "{err}");
    assert!(err.to_string().contains("verifiable"), "{err}");
    let err = service.proxy("/latest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::IntegrityViolation, "{err}");
    assert!(s.stored(&format!("sumdb/{NAME}/latest")).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_have_kinds() {
    let s = Setup::start(2, 6, 2, 0).await;
    let mut config = s.config();
    config.read_timeout_ms = Some(300);
    let service = ChecksumDb::new(&config, s.store.clone()).unwrap();
    let m = mp(s.module(0).path());

    s.up.set_fail_status(Some(503));
    let err = service.lookup(&m, &v("v1.0.0")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnavailable, "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    let err = service.proxy("/latest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnavailable, "{err}");

    s.up.set_fail_status(None);
    s.up.set_hang(true);
    let err = service.lookup(&m, &v("v1.0.0")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamTimeout, "{err}");
    let err = service.proxy("/tile/2/0/000").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamTimeout, "{err}");

    // Nothing failed for good: the same service works once the database is back.
    s.up.set_hang(false);
    check_module(&s, &service, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_module_is_not_found() {
    let s = Setup::start(2, 7, 2, 0).await;
    let service = s.service();
    let err = service
        .lookup(&mp("example.com/private/thing"), &v("v1.2.3"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("example.com/private/thing@v1.2.3"),
        "{message}"
    );
    assert!(message.contains("no-sum patterns"), "{message}");
    let err = service
        .proxy("/lookup/example.com/private/thing@v1.2.3")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

/// `write_config` is a compare-and-swap on the stored tree head.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_head_is_replaced_by_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.path()).unwrap());
    let upstream = Upstream::new(&UpstreamConfig::with_url("http://127.0.0.1:9")).unwrap();
    let ops = StoreOps::new(NAME, upstream, store).unwrap();
    let file = format!("{NAME}/latest");
    tokio::task::spawn_blocking(move || {
        assert_eq!(ops.read_config(&file).unwrap(), b"");
        assert!(matches!(
            ops.write_config(&file, b"x", b"a"),
            Err(WriteConfigError::Conflict)
        ));
        ops.write_config(&file, b"", b"a").unwrap();
        assert!(matches!(
            ops.write_config(&file, b"", b"b"),
            Err(WriteConfigError::Conflict)
        ));
        ops.write_config(&file, b"a", b"b").unwrap();
        assert!(matches!(
            ops.write_config(&file, b"a", b"c"),
            Err(WriteConfigError::Conflict)
        ));
        assert_eq!(ops.read_config(&file).unwrap(), b"b");
        assert!(ops.read_config("other/latest").is_err());
    })
    .await
    .unwrap();
}

#[test]
fn config_defaults_and_validation() {
    let config: SumDbConfig = toml::from_str("").unwrap();
    assert_eq!(config, SumDbConfig::default());
    assert_eq!(config.base_url().unwrap(), "https://sum.golang.org");
    assert_eq!((config.tile_height, config.latest_ttl_secs), (8, 10));
    assert!(config.validate().is_ok());
    assert!(toml::from_str::<SumDbConfig>("kye = \"x\"").is_err());
    let bad_url = SumDbConfig::with_key(super::SUM_GOLANG_ORG_KEY, Some("ftp://x".into()));
    assert!(bad_url.validate().unwrap_err().contains("sumdb url"));
    let bad_height = SumDbConfig {
        tile_height: 0,
        ..SumDbConfig::default()
    };
    assert!(bad_height.validate().unwrap_err().contains("tile_height"));
}

//! Unit tests of the remote repository's bookkeeping.

use std::sync::Arc;

use super::*;
use crate::change::NoListener;
use crate::storage::fs::FsStore;

/// A verifier that is never asked (nothing here reaches the upstream).
#[derive(Debug)]
struct NoVerifier;

#[async_trait::async_trait]
impl SumVerifier for NoVerifier {
    async fn expected(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ExpectedSums, RegistryError> {
        Err(RegistryError::NotFound(format!("{module}@{version}")))
    }
}

fn repository(dir: &std::path::Path) -> RemoteRepository {
    let config: RemoteConfig = toml::from_str(
        r#"
name = "gocache"
upstream = { url = "http://127.0.0.1:9" }
"#,
    )
    .unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(dir.join("data")).unwrap());
    RemoteRepository::new(
        &config,
        store,
        Arc::new(NoVerifier),
        None,
        dir.join("spool"),
        Arc::new(NoListener),
        Arc::new(Metrics::new()),
    )
    .unwrap()
}

fn key(version: &str) -> (ModulePath, Version) {
    (
        ModulePath::new("example.com/m").unwrap(),
        Version::new(version).unwrap(),
    )
}

/// Registers a new download of `key` the way `start_fill` does and returns its entry.
fn register(inner: &Arc<Inner>, key: (ModulePath, Version)) -> FillEntry {
    let (fill, _writer) = ZipFill::create(&inner.spool_dir).unwrap();
    inner.zips.lock().unwrap().insert(key.clone(), fill.clone());
    FillEntry {
        inner: inner.clone(),
        key,
        fill,
    }
}

#[tokio::test]
async fn a_panicking_download_leaves_no_dead_entry() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    let entry = register(&repo.inner, key("v1.0.0"));
    assert_eq!(repo.fetches_in_flight(), 1);
    let task = tokio::spawn(async move {
        let _entry = entry;
        panic!("injected panic in a download task");
    });
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(
        repo.fetches_in_flight(),
        0,
        "the next caller must start a new download"
    );
}

#[tokio::test]
async fn an_entry_removes_only_its_own_download() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    let old = register(&repo.inner, key("v1.0.0"));
    // A newer download of the same version replaced it in the map (as after a failure).
    let new = register(&repo.inner, key("v1.0.0"));
    drop(old);
    assert_eq!(repo.fetches_in_flight(), 1, "the newer download stays");
    drop(new);
    assert_eq!(repo.fetches_in_flight(), 0);
}

#[test]
fn downloads_spool_in_the_repository_s_own_directory() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repository(dir.path());
    let own = repo.inner.spool_dir.clone();
    assert_eq!(own.parent(), Some(dir.path().join("spool").as_path()));
    assert!(
        own.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("strata-fills-gocache-")
    );
    drop(repo);
    assert!(!own.exists(), "removed with the repository");
}

#[test]
fn failed_fetches_are_counted_by_class() {
    let url = || "https://proxy.example/m/@v/v1.0.0.zip".to_owned();
    let status = |status| {
        RegistryError::Upstream(UpstreamError::Status {
            url: url(),
            status,
            body: String::new(),
        })
    };
    let cases = [
        (
            RegistryError::Upstream(UpstreamError::NotFound {
                url: url(),
                status: 404,
                body: String::new(),
            }),
            "not_found",
        ),
        (
            RegistryError::Upstream(UpstreamError::Timeout { url: url() }),
            "timeout",
        ),
        (status(429), "overloaded"),
        (status(503), "overloaded"),
        (status(500), "failed"),
        (
            RegistryError::Upstream(UpstreamError::Transport {
                url: url(),
                message: "connection refused".into(),
            }),
            "unreachable",
        ),
        (
            RegistryError::Integrity("h1 mismatch".into()),
            "integrity_violation",
        ),
        (RegistryError::Shared(Arc::new(status(503))), "overloaded"),
        (RegistryError::FallThrough("gone".into()), "failed"),
    ];
    for (error, want) in cases {
        assert_eq!(fetch_outcome(&error), want, "{error:?}");
    }
}

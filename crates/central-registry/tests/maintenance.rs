//! The maintenance API the sync worker uses, on a second `Registry` over the running registry's
//! storage (as the worker process has): warming remote and virtual repositories, forced
//! metadata refresh, listing modules, scrubbing (a flipped byte in a remote zip is quarantined
//! and fetched again; in a local go.mod it is quarantined and the version stops being served
//! until it is published again with identical content), and forgetting cached versions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use strata_central_registry::auth::Principal;
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::error::RegistryError;
use strata_central_registry::keys::RepoName;
use strata_central_registry::maintenance::ScrubOutcome;
use strata_central_registry::metrics::Metrics;
use strata_central_registry::registry::{Answer, Change, ChangeKind, ChangeListener, Registry};
use strata_central_registry::repository::Warmed;
use strata_central_registry::storage::{ObjectStore, open_store};
use strata_core::path::ModulePath;
use strata_core::protocol::{ArtifactKind, ProxyRequest};
use strata_core::version::Version;
use strata_registry_engine::test_util::flip_last_byte;
use strata_service::config::ServiceConfig as _;
use strata_testkit::{FixtureModule, dependency_graph};
use support::config::RemoteOptions;
use support::registry::TestRegistry;

/// Records integrity violations and list changes.
#[derive(Debug, Default)]
struct Recorder {
    violations: Mutex<Vec<String>>,
    lists: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ChangeListener for Recorder {
    async fn changed(&self, _: &Change, _: ChangeKind) {}
    async fn list_changed(&self, repo: &RepoName, module: &ModulePath) {
        self.lists.lock().unwrap().push(format!("{repo} {module}"));
    }
    async fn integrity_violation(
        &self,
        repo: &RepoName,
        module: &ModulePath,
        version: &Version,
        detail: &str,
    ) {
        self.violations
            .lock()
            .unwrap()
            .push(format!("{repo} {module}@{version}: {detail}"));
    }
}

/// A second registry over the harness's storage, as the worker builds one.
async fn worker_registry(h: &TestRegistry) -> (Registry, Arc<dyn ObjectStore>, Arc<Recorder>) {
    let config = RegistryConfig::from_toml(&h.toml, "worker", &[]).unwrap();
    let store = open_store(&config.storage).await.unwrap();
    let recorder = Arc::new(Recorder::default());
    let registry = Registry::new(
        &config,
        store.clone(),
        recorder.clone(),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    (registry, store, recorder)
}

fn mv(path: &str, version: &str) -> (ModulePath, Version) {
    (
        ModulePath::new(path).unwrap(),
        Version::new(version).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_refresh_list_and_forget() {
    let public = dependency_graph(3);
    let h = TestRegistry::remote(&public, RemoteOptions::default()).await;
    let (registry, _, _) = worker_registry(&h).await;
    let (m0, v) = mv(&public[0].path, "v1.0.0");
    let (m1, _) = mv(&public[1].path, "v1.0.0");
    let zip_path = |m: &ModulePath| format!("/{}/@v/v1.0.0.zip", m.escaped());
    let mod_path = |m: &ModulePath| format!("/{}/@v/v1.0.0.mod", m.escaped());

    // go.mod only, then everything; the second time nothing is fetched.
    assert_eq!(
        registry.warm("gocache", &m1, &v, true).await.unwrap(),
        Warmed::Fetched
    );
    assert_eq!(h.upstream().request_count(&mod_path(&m1)), 1);
    assert_eq!(h.upstream().request_count(&zip_path(&m1)), 0);
    assert_eq!(
        registry.warm("gocache", &m0, &v, false).await.unwrap(),
        Warmed::Fetched
    );
    assert_eq!(
        registry.warm("gocache", &m0, &v, false).await.unwrap(),
        Warmed::AlreadyStored
    );
    assert_eq!(h.upstream().request_count(&zip_path(&m0)), 1);
    // What was warmed is served by the running registry without asking the upstream.
    h.upstream().clear_requests();
    let (status, _, zip) = h
        .fetch("gocache", &format!("{}/@v/v1.0.0.zip", m0.escaped()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(zip, public[0].zip());
    let (status, _, _) = h
        .fetch("gocache", &format!("{}/@v/v1.0.0.info", m0.escaped()))
        .await;
    assert_eq!(status, 200);
    assert!(
        h.upstream().requests().is_empty(),
        "{:?}",
        h.upstream().requests()
    );

    // Through the virtual repository: a path the local member claims is never fetched.
    let private = FixtureModule::new("example.com/private/warm", "v1.0.0", &[]);
    assert_eq!(h.publish("private", private.zip()).await.0, 201);
    let (pm, pv) = mv("example.com/private/warm", "v1.0.0");
    assert_eq!(
        registry.warm("go", &pm, &pv, false).await.unwrap(),
        Warmed::Local
    );
    assert_eq!(
        registry.warm("go", &m1, &v, false).await.unwrap(),
        Warmed::Fetched
    );
    let missing = registry
        .warm(
            "go",
            &ModulePath::new("example.com/nowhere").unwrap(),
            &v,
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), strata_core::protocol::ErrorKind::NotFound);

    // Forced refresh asks the upstream although the TTL (600 s) has not passed.
    h.upstream().clear_requests();
    assert_eq!(
        registry.refresh_metadata("gocache", &m0).await.unwrap(),
        vec!["v1.0.0"]
    );
    assert_eq!(
        h.upstream()
            .request_count(&format!("/{}/@v/list", m0.escaped())),
        1
    );
    let refused = registry.refresh_metadata("private", &pm).await.unwrap_err();
    assert!(
        matches!(refused, RegistryError::Unsupported(_)),
        "{refused}"
    );

    let mut modules: Vec<String> = registry
        .modules("gocache")
        .await
        .unwrap()
        .iter()
        .map(|m| m.to_string())
        .collect();
    modules.sort();
    let mut expected = vec![public[0].path.clone(), public[1].path.clone()];
    expected.sort();
    assert_eq!(modules, expected);

    // Last use: the day stored until a read is recorded; reads are noted in memory and
    // written by a flush.
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let cached = registry.cached_versions("gocache").await.unwrap();
    assert_eq!(cached.len(), 2, "{cached:?}");
    assert!(
        cached
            .iter()
            .all(|c| c.last_read_day.is_none() && c.last_used_day == today)
    );
    let zip_of_m0 = ProxyRequest::Zip(m0.clone(), v.clone());
    let Answer::Artifact(_) = registry
        .read(&Principal::Anonymous, "gocache", &zip_of_m0, None)
        .await
        .unwrap()
    else {
        panic!("a zip is an artifact");
    };
    assert_eq!(registry.flush_access().await.unwrap(), 1);
    assert_eq!(
        registry.flush_access().await.unwrap(),
        0,
        "nothing new to write"
    );
    let cached = registry.cached_versions("gocache").await.unwrap();
    let read = cached.iter().find(|c| c.module == m0).unwrap();
    assert_eq!(read.last_read_day, Some(today));
    assert_eq!(
        read.bytes,
        (public[0].zip().len() + public[0].go_mod().len() + public[0].info().len()) as u64
    );
    let refused = registry.cached_versions("private").await.unwrap_err();
    assert!(matches!(refused, RegistryError::Unsupported(_)));

    // Retention: a cached version is forgotten (entry and blobs); a local one never.
    let before = h.stored_keys("gocache");
    let freed = registry.forget_cached("gocache", &m0, &v).await.unwrap();
    assert_eq!(
        freed,
        Some((public[0].zip().len() + public[0].go_mod().len() + public[0].info().len()) as u64)
    );
    let after = h.stored_keys("gocache");
    let escaped = m0.escaped();
    assert!(
        before
            .iter()
            .any(|k| k.contains(&format!("blobs/{escaped}/")))
    );
    assert!(
        !after
            .iter()
            .any(|k| k.contains(&format!("blobs/{escaped}/"))),
        "{after:?}"
    );
    assert!(
        registry
            .version_index("gocache", &m0)
            .await
            .unwrap()
            .entry(&v)
            .is_none()
    );
    assert_eq!(
        registry.forget_cached("gocache", &m0, &v).await.unwrap(),
        None
    );
    let refused = registry
        .forget_cached("private", &pm, &pv)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, RegistryError::Unsupported(_)),
        "{refused}"
    );
    // Forgotten is not lost: the next request fetches (and verifies) it again.
    h.upstream().clear_requests();
    let (status, _, again) = h
        .fetch("gocache", &format!("{}/@v/v1.0.0.zip", m0.escaped()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again, public[0].zip());
    assert_eq!(h.upstream().request_count(&zip_path(&m0)), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrub_repairs_remote_and_quarantines_local() {
    let public = dependency_graph(1);
    let h = TestRegistry::remote(&public, RemoteOptions::default()).await;
    let (registry, _store, recorder) = worker_registry(&h).await;
    let (m, v) = mv(&public[0].path, "v1.0.0");
    registry.warm("gocache", &m, &v, false).await.unwrap();

    let intact = registry.scrub_version("gocache", &m, &v).await.unwrap();
    assert_eq!(intact.outcome, ScrubOutcome::Intact);
    assert!(intact.bytes >= public[0].zip().len() as u64);

    // Remote: a flipped byte in the stored zip is found, quarantined, fetched again.
    flip_last_byte(&registry, "gocache", &m, &v, ArtifactKind::Zip)
        .await
        .unwrap();
    h.upstream().clear_requests();
    let report = registry.scrub_version("gocache", &m, &v).await.unwrap();
    let ScrubOutcome::Repaired { problems } = &report.outcome else {
        panic!("{report:?}");
    };
    assert!(problems[0].starts_with("zip: sha256"), "{problems:?}");
    assert_eq!(
        h.upstream()
            .request_count(&format!("/{}/@v/v1.0.0.zip", m.escaped())),
        1
    );
    let (status, _, zip) = h
        .fetch("gocache", &format!("{}/@v/v1.0.0.zip", m.escaped()))
        .await;
    assert_eq!((status, zip == public[0].zip()), (200, true));
    assert_eq!(
        registry
            .scrub_version("gocache", &m, &v)
            .await
            .unwrap()
            .outcome,
        ScrubOutcome::Intact
    );
    let root = h
        .fs_root
        .as_ref()
        .unwrap()
        .join("objects")
        .join("quarantine");
    assert!(root.exists(), "the damaged zip is kept in quarantine/");
    assert!(recorder.violations.lock().unwrap()[0].contains("fetched again"));

    // Local: a flipped byte in a published go.mod is quarantined, the version is no longer
    // served or listed, and publishing identical content restores it.
    let private = FixtureModule::new("example.com/private/scrubbed", "v1.0.0", &[]);
    assert_eq!(h.publish("private", private.zip()).await.0, 201);
    let (pm, pv) = mv("example.com/private/scrubbed", "v1.0.0");
    flip_last_byte(&registry, "private", &pm, &pv, ArtifactKind::Mod)
        .await
        .unwrap();
    let report = registry.scrub_version("private", &pm, &pv).await.unwrap();
    let ScrubOutcome::Quarantined { problems } = &report.outcome else {
        panic!("{report:?}");
    };
    assert!(problems[0].starts_with("mod: sha256"), "{problems:?}");
    let (status, _, body) = h
        .fetch("private", "example.com/private/scrubbed/@v/v1.0.0.mod")
        .await;
    assert_eq!(status, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("quarantined"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (_, _, list) = h
        .fetch("private", "example.com/private/scrubbed/@v/list")
        .await;
    assert_eq!(list, b"");
    assert_eq!(recorder.lists.lock().unwrap().len(), 1);
    assert_eq!(recorder.violations.lock().unwrap().len(), 2);
    let different = FixtureModule::new("example.com/private/scrubbed", "v1.0.0", &[])
        .with_file("extra.go", "package scrubbed\n");
    assert_eq!(h.publish("private", different.zip()).await.0, 409);
    assert_eq!(h.publish("private", private.zip()).await.0, 201);
    let (status, _, go_mod) = h
        .fetch("private", "example.com/private/scrubbed/@v/v1.0.0.mod")
        .await;
    assert_eq!((status, go_mod), (200, private.go_mod()));
    assert_eq!(
        registry
            .scrub_version("private", &pm, &pv)
            .await
            .unwrap()
            .outcome,
        ScrubOutcome::Intact
    );
    let virtual_refused = registry.scrub_version("go", &pm, &pv).await.unwrap_err();
    assert!(matches!(virtual_refused, RegistryError::Unsupported(_)));
}

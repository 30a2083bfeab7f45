//! The registry's own checksum database (`[ledger]`): what a publish and a remote fetch record,
//! what `/go/{repo}/sumdb/<name>/…` serves, and the real go command verifying private and
//! public modules against it with `GONOSUMDB` empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;

use strata_central_registry::ledger::generate_key;
use strata_core::sumdb::{VerifierKey, VerifierList, note};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb, dependency_graph, go_command};
use support::config::{self, ADMIN_TOKEN, CI_TOKEN, DB_NAME, Options, RemoteOptions};
use support::http::bearer;
use support::registry::TestRegistry;

const LEDGER: &str = "sum.registry.test";

/// Adds a `[ledger]` table whose key is in a 0600 file under `dir`; the verifier key.
fn with_ledger(dir: &Path) -> (impl FnOnce(String) -> String, String) {
    let (signer, verifier) = generate_key(LEDGER).unwrap();
    let path = dir.join("ledger.key");
    std::fs::write(&path, signer).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let table = format!(
        "\n[ledger]\nname = \"{LEDGER}\"\nkey_file = {:?}\n",
        path.display().to_string()
    );
    (move |text: String| format!("{text}{table}"), verifier)
}

fn lookup_path(module: &str, version: &str) -> String {
    let module = strata_core::path::escape_path(module).unwrap();
    format!("sumdb/{LEDGER}/lookup/{module}@{version}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_are_recorded_before_they_are_visible_and_never_change() {
    let dir = tempfile::tempdir().unwrap();
    let (edit, verifier) = with_ledger(dir.path());
    let h = TestRegistry::builder(config::local(&Options::default()))
        .edit(edit)
        .start()
        .await;
    let ci = bearer(CI_TOKEN);
    let lib = FixtureModule::new("example.com/lib", "v1.0.0", &[]);
    let (status, go_sum) = h.publish("private", lib.zip()).await;
    assert_eq!(status, 201, "{go_sum}");

    // The record: id, the two go.sum lines the publish answered, a signed head covering it.
    let r = h
        .get(
            "private",
            &lookup_path("example.com/lib", "v1.0.0"),
            &ci,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(text.starts_with("0\n"), "{text}");
    assert!(text.contains(&go_sum), "{text}\n---\n{go_sum}");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert!(
        r.header("cache-control").unwrap().contains("immutable"),
        "{:?}",
        r.headers
    );
    let verifiers = VerifierList::new([VerifierKey::parse(&verifier).unwrap()]);
    let note_start = text.find("\n\n").unwrap() + 2;
    let note = note::open(&text.as_bytes()[note_start..], &verifiers);
    assert!(
        note.is_ok(),
        "the head verifies with the verifier key: {note:?}"
    );

    let latest = h
        .get("private", &format!("sumdb/{LEDGER}/latest"), &ci, &[])
        .await;
    assert_eq!(latest.status, 200);
    assert!(
        latest.text().starts_with("go.sum database tree\n1\n"),
        "{}",
        latest.text()
    );
    assert!(
        latest
            .header("cache-control")
            .unwrap()
            .contains("max-age=5")
    );
    let supported = h
        .get("private", &format!("sumdb/{LEDGER}/supported"), &ci, &[])
        .await;
    assert_eq!(supported.status, 200);
    let tile = h
        .get(
            "private",
            &format!("sumdb/{LEDGER}/tile/8/0/000.p/1"),
            &ci,
            &[],
        )
        .await;
    assert_eq!((tile.status, tile.body.len()), (200, 32));
    assert!(tile.header("cache-control").unwrap().contains("immutable"));
    let data = h
        .get(
            "private",
            &format!("sumdb/{LEDGER}/tile/8/data/000.p/1"),
            &ci,
            &[],
        )
        .await;
    assert_eq!(data.status, 200);
    assert_eq!(data.text(), format!("{go_sum}\n"));
    for (path, want) in [
        (format!("sumdb/{LEDGER}/tile/8/0/000.p/2"), 404),
        (lookup_path("example.com/lib", "v9.0.0"), 404),
        (format!("sumdb/{LEDGER}/tile/8/0/zzz"), 400),
        (format!("sumdb/{LEDGER}/lookup/example.com/lib"), 400),
    ] {
        let r = h.get("private", &path, &ci, &[]).await;
        assert_eq!(r.status, want, "{path}: {}", r.text());
    }
    // Read permission of the repository, as for its modules.
    let anonymous = h
        .get(
            "private",
            &lookup_path("example.com/lib", "v1.0.0"),
            "",
            &[],
        )
        .await;
    assert_eq!(anonymous.status, 401);

    // The ledger is the registry's, not a repository's: other bytes for the same version in
    // another repository are refused, naming what is recorded, and nothing becomes visible.
    let other =
        FixtureModule::new("example.com/lib", "v1.0.0", &[]).with_file("extra.go", "package lib\n");
    let (status, body) = h.publish("public", other.zip()).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("recorded") && body.contains(go_sum.lines().next().unwrap()),
        "{body}"
    );
    let info = h
        .get("public", "example.com/lib/@v/v1.0.0.info", "", &[])
        .await;
    assert_eq!(info.status, 404, "{}", info.text());
    // The same bytes elsewhere are the same record.
    let (status, body) = h.publish("public", lib.zip()).await;
    assert_eq!(status, 201, "{body}");

    // A deleted version keeps its record: other bytes are refused, identical ones accepted.
    let deleted = h
        .art_delete(
            "private",
            "example.com/lib/@v/v1.0.0.zip",
            &bearer(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let (status, body) = h.publish("private", other.zip()).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = h.publish("private", lib.zip()).await;
    assert_eq!(status, 201, "{body}");
    let latest = h
        .get("private", &format!("sumdb/{LEDGER}/latest"), &ci, &[])
        .await;
    assert!(
        latest.text().starts_with("go.sum database tree\n1\n"),
        "one record: {}",
        latest.text()
    );
}

/// `go args…` in `dir`, verifying every module against the ledger (`GONOSUMDB` empty).
fn go(dir: &Path, home: &Path, proxy: &str, key: &str, args: &[&str]) -> std::process::Output {
    go_command::run(dir, home, proxy, key, "", args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_verifies_private_and_public_modules_against_the_registry_ledger() {
    let public = dependency_graph(6);
    let top = &public[public.len() - 1];
    // Fetched without verification (`no_sum`): recorded by its first fetch.
    let unverified = FixtureModule::new("example.com/unverified/lib", "v0.3.0", &[]);
    let mut modules = public.clone();
    modules.push(unverified.clone());
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&modules, Some(db.clone())).await;
    let options = RemoteOptions {
        no_sum: vec!["example.com/unverified".into()],
        ..RemoteOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let (edit, verifier) = with_ledger(dir.path());
    let h = TestRegistry::builder(config::remote(&upstream, &db, &options))
        .fixtures(upstream, db)
        .edit(edit)
        .start()
        .await;
    let private = FixtureModule::new(
        "example.com/private/app",
        "v1.0.0",
        &[
            (top.path.as_str(), top.version.as_str()),
            (unverified.path.as_str(), unverified.version.as_str()),
        ],
    );
    let (status, body) = h.publish("private", private.zip()).await;
    assert_eq!(status, 201, "{body}");

    let proxy = h.proxy_url("go");
    let home = dir.path().join("home");
    let client = home.join("client");
    std::fs::create_dir_all(&client).unwrap();
    let (key, home2, client2) = (verifier.clone(), home.clone(), client.clone());
    let (get, verify) = tokio::task::spawn_blocking(move || {
        let init = go(
            &client2,
            &home2,
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
            &client2,
            &home2,
            &proxy,
            &key,
            &["get", "example.com/private/app@v1.0.0"],
        );
        let download = go(&client2, &home2, &proxy, &key, &["mod", "download", "all"]);
        assert!(
            download.status.success(),
            "{}",
            String::from_utf8_lossy(&download.stderr)
        );
        (get, go(&client2, &home2, &proxy, &key, &["mod", "verify"]))
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
    // The go command read the ledger's tiles (its own cache of them) ...
    let tiles = home.join(format!("modcache/cache/download/sumdb/{LEDGER}/tile"));
    assert!(tiles.is_dir(), "{} missing", tiles.display());
    // ... and every public line it kept is the upstream database's, the unverified module's
    // is what the registry fetched.
    let go_sum = std::fs::read_to_string(client.join("go.sum")).unwrap();
    for m in &public {
        let built = h.upstream().module(&m.path, &m.version).unwrap();
        for line in go_sum
            .lines()
            .filter(|l| l.starts_with(&format!("{} ", m.path)))
        {
            assert!(built.go_sum.contains(line), "{line}");
        }
    }
    let unverified_built = h
        .upstream()
        .module(&unverified.path, &unverified.version)
        .unwrap();
    assert!(go_sum.contains(&unverified_built.go_sum), "{go_sum}");
    // The public records hold exactly the database's lines.
    let r = h
        .get("go", &lookup_path(&top.path, &top.version), "", &[])
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains(&h.upstream().module(&top.path, &top.version).unwrap().go_sum)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_of_a_public_version_not_yet_fetched_is_verified_and_recorded() {
    let public = dependency_graph(2);
    let dir = tempfile::tempdir().unwrap();
    let (edit, _) = with_ledger(dir.path());
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&public, Some(db.clone())).await;
    let h = TestRegistry::builder(config::remote(&upstream, &db, &RemoteOptions::default()))
        .fixtures(upstream, db)
        .edit(edit)
        .start()
        .await;
    let m = &public[0];
    let r = h
        .get("go", &lookup_path(&m.path, &m.version), "", &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let built = h.upstream().module(&m.path, &m.version).unwrap();
    assert!(r.text().contains(&built.go_sum), "{}", r.text());
    // Nothing but the database was asked: no artifact was fetched for it.
    let escaped = strata_core::path::escape_path(&m.path).unwrap();
    assert_eq!(
        h.upstream()
            .request_count(&format!("/{escaped}/@v/{}.zip", m.version)),
        0
    );
    // A version the upstream database does not know stays unknown.
    let r = h.get("go", &lookup_path(&m.path, "v9.9.9"), "", &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
}

/// A ledger that cannot be written (storage failing under `ledger/`) refuses publishes and
/// remote fills with 503 and makes nothing visible; once storage works, both go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_unrecorded_becomes_visible_when_the_ledger_cannot_be_written() {
    let public = dependency_graph(1);
    let m = &public[0];
    let dir = tempfile::tempdir().unwrap();
    let (edit, _) = with_ledger(dir.path());
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&public, Some(db.clone())).await;
    let h = TestRegistry::builder(config::remote(&upstream, &db, &RemoteOptions::default()))
        .fixtures(upstream, db)
        .edit(edit)
        .start()
        .await;
    // A file where the ledger's directory goes: every write of its head fails (even for
    // root).
    let blocker = h
        .fs_root
        .as_ref()
        .unwrap()
        .join(format!("objects/ledger/{LEDGER}"));
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, "not a directory").unwrap();

    let private = FixtureModule::new("example.com/private/lib", "v1.0.0", &[]);
    let (status, body) = h.publish("private", private.zip()).await;
    assert_eq!(status, 503, "{body}");
    let list = h
        .get("go", "example.com/private/lib/@v/list", "", &[])
        .await;
    assert_eq!(list.text(), "", "nothing visible");
    assert!(
        !h.stored_keys("private")
            .iter()
            .any(|k| k.starts_with("index")),
        "{:?}",
        h.stored_keys("private")
    );

    let escaped = strata_core::path::escape_path(&m.path).unwrap();
    let mod_path = format!("{escaped}/@v/{}.mod", m.version);
    let (status, _, body) = h.fetch("gocache", &mod_path).await;
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(
        h.stored_keys("gocache").is_empty(),
        "{:?}",
        h.stored_keys("gocache")
    );

    std::fs::remove_file(&blocker).unwrap();
    let (status, body) = h.publish("private", private.zip()).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = h.fetch("gocache", &mod_path).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let latest = h
        .get("go", &format!("sumdb/{LEDGER}/latest"), "", &[])
        .await;
    assert!(
        latest.text().starts_with("go.sum database tree\n2\n"),
        "{}",
        latest.text()
    );
}

/// `strata-registry --check-config` reads the ledger's key as a start would: a missing
/// variable, a key for another name or a key file others may read exit 64 with the reason
/// (never the key); a good key passes.
#[test]
fn check_config_refuses_an_unusable_ledger_key() {
    let dir = tempfile::tempdir().unwrap();
    let (signer, _) = generate_key(LEDGER).unwrap();
    let (other, _) = generate_key("sum.other.test").unwrap();
    let check = |table: &str, env: &[(&str, &str)]| {
        let path = dir.path().join("registry.toml");
        std::fs::write(&path, format!("[ledger]\nname = \"{LEDGER}\"\n{table}\n")).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata-registry"))
            .args(["--check-config", "--config"])
            .arg(&path)
            .env_remove("STRATA_TEST_LEDGER_KEY")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!text.contains("PRIVATE+KEY"), "{text}");
        (output.status.code(), text)
    };
    let var = "key_env = \"STRATA_TEST_LEDGER_KEY\"";
    let (code, text) = check(var, &[]);
    assert_eq!(code, Some(64), "{text}");
    assert!(text.contains("STRATA_TEST_LEDGER_KEY is not set"), "{text}");
    let (code, text) = check(var, &[("STRATA_TEST_LEDGER_KEY", &other)]);
    assert_eq!(code, Some(64), "{text}");
    assert!(text.contains("sum.other.test"), "{text}");
    let (code, text) = check(var, &[("STRATA_TEST_LEDGER_KEY", &signer)]);
    assert_eq!(code, Some(0), "{text}");

    let key_file = dir.path().join("ledger.key");
    std::fs::write(&key_file, &signer).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let table = format!("key_file = {:?}", key_file.display().to_string());
        let (code, text) = check(&table, &[]);
        assert_eq!(code, Some(64), "{text}");
        assert!(text.contains("chmod 600"), "{text}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let (code, text) = check(&table, &[]);
        assert_eq!(code, Some(0), "{text}");
    }
}

/// A published zip overwritten in storage (same object, other valid bytes; the registry serves
/// them without a second look) is refused by the go command with a fresh module cache: the
/// ledger's record says what was published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zip_overwritten_in_storage_is_refused_by_the_go_command() {
    let dir = tempfile::tempdir().unwrap();
    let (edit, verifier) = with_ledger(dir.path());
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&[], Some(db.clone())).await;
    let h = TestRegistry::builder(config::remote(&upstream, &db, &RemoteOptions::default()))
        .fixtures(upstream, db)
        .edit(edit)
        .start()
        .await;
    let lib = FixtureModule::new("example.com/private/lib", "v1.0.0", &[]);
    let (status, body) = h.publish("private", lib.zip()).await;
    assert_eq!(status, 201, "{body}");
    let zip_key = h
        .stored_keys("private")
        .into_iter()
        .find(|k| k.ends_with(".zip"))
        .unwrap();
    let evil = FixtureModule::new("example.com/private/lib", "v1.0.0", &[])
        .with_file("backdoor.go", "package lib\n\nconst Backdoor = true\n")
        .zip();
    let key = strata_central_registry::storage::ObjectKey::new(format!("repos/private/{zip_key}"))
        .unwrap();
    h.store
        .put(
            &key,
            strata_central_registry::storage::body_from_bytes(evil.clone()),
        )
        .await
        .unwrap();
    let served = h
        .get("go", "example.com/private/lib/@v/v1.0.0.zip", "", &[])
        .await;
    assert_eq!(
        (served.status, &served.body),
        (200, &evil),
        "served as stored"
    );

    let proxy = h.proxy_url("go");
    let root = dir.path().to_owned();
    let refused = tokio::task::spawn_blocking(move || {
        let home = root.join("home");
        let client = home.join("client");
        std::fs::create_dir_all(&client).unwrap();
        let init = go(
            &client,
            &home,
            &proxy,
            &verifier,
            &["mod", "init", "example.com/c"],
        );
        assert!(init.status.success());
        go(
            &client,
            &home,
            &proxy,
            &verifier,
            &["get", "example.com/private/lib@v1.0.0"],
        )
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("checksum mismatch") && stderr.contains("SECURITY ERROR"),
        "{stderr}"
    );
}

/// The scrub (what the sync worker runs) checks the version index against the ledger: a zip
/// swapped together with its index entry — SHA-256, size and h1 all rewritten to match, so the
/// bytes-against-index check passes — disagrees with the version's record, and is quarantined
/// and reported like any damaged artifact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_compares_the_index_with_the_ledger() {
    use strata_central_registry::config::RegistryConfig;
    use strata_central_registry::maintenance::ScrubOutcome;
    use strata_central_registry::metrics::Metrics;
    use strata_central_registry::registry::{NoListener, Registry};
    use strata_central_registry::storage::{ObjectStore, open_store};
    use strata_core::path::ModulePath;
    use strata_core::version::Version;
    use strata_registry_engine::test_util::swap_zip_and_index;
    use strata_service::config::ServiceConfig as _;

    let dir = tempfile::tempdir().unwrap();
    let (edit, _) = with_ledger(dir.path());
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&[], Some(db.clone())).await;
    let h = TestRegistry::builder(config::remote(&upstream, &db, &RemoteOptions::default()))
        .fixtures(upstream, db)
        .edit(edit)
        .start()
        .await;
    let path = "example.com/private/scrubbed";
    let lib = FixtureModule::new(path, "v1.0.0", &[]).build();
    assert_eq!(h.publish("private", lib.zip.clone()).await.0, 201);

    // A second registry over the same storage and configuration, as the worker builds one.
    let config = RegistryConfig::from_toml(&h.toml, "worker", &[]).unwrap();
    let store: Arc<dyn ObjectStore> = open_store(&config.storage).await.unwrap();
    let registry = Registry::new(
        &config,
        store.clone(),
        Arc::new(NoListener),
        Arc::new(Metrics::new()),
    )
    .unwrap();
    let (module, version) = (
        ModulePath::new(path).unwrap(),
        Version::new("v1.0.0").unwrap(),
    );
    let intact = registry.scrub_version("private", &module, &version).await;
    assert_eq!(intact.unwrap().outcome, ScrubOutcome::Intact);

    let evil = FixtureModule::new(path, "v1.0.0", &[])
        .with_file("backdoor.go", "package scrubbed\n\nconst Backdoor = true\n")
        .build();
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
    let (status, _, served) = h.fetch("private", &format!("{path}/@v/v1.0.0.zip")).await;
    assert_eq!((status, &served), (200, &evil.zip), "served as stored");

    let report = registry
        .scrub_version("private", &module, &version)
        .await
        .unwrap();
    let ScrubOutcome::Quarantined { problems } = &report.outcome else {
        panic!("{report:?}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("zip: the index records ")
            && problems[0].contains(&evil.zip_hash)
            && problems[0].contains(&format!(
                "the checksum database (record 0) {}",
                lib.zip_hash
            )),
        "{problems:?}"
    );
    let (status, _, _) = h.fetch("private", &format!("{path}/@v/v1.0.0.zip")).await;
    assert_eq!(status, 404, "no longer served");
}

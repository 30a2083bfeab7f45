//! `strata up` as a user runs it: the binary starts the registry and the edge in one process,
//! prints the GOPROXY line, the publish URL and a generated admin token; `strata publish` with
//! that token works straight away; the real go command fetches the published module and a public
//! one (through the remote repository, verified against the upstream checksum database) and
//! verifies both against strata's own checksum database (the banner's `GOSUMDB`, through the
//! edge's sumdb forward, `GONOSUMDB` empty); after a restart on the same data the token is not
//! shown again, still works, and everything published is still there, under the same checksum
//! database key. The "public" upstream is a local fixture with a test
//! checksum database, passed with --upstream/--checksum-db-*.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use strata_testkit::{FixtureUpstream, TestSumDb, dependency_graph, go_command};

const DB_NAME: &str = "sum.up.test";
const PRIVATE: &str = "example.com/private/hello";

/// What `strata up` printed.
struct Banner {
    proxy: String,
    publish_url: String,
    token_line: String,
    warm_url: String,
    /// The `GOSUMDB` value: strata's checksum database.
    sumdb: String,
}

/// A running `strata up`; killed when dropped.
struct Up {
    child: Child,
    banner: Banner,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_up(data: &Path, upstream: &FixtureUpstream, db: &TestSumDb, log: &Path) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("up")
        .arg("--data")
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .args(["--upstream", &upstream.url()])
        .args(["--checksum-db-key", &db.verifier_key()])
        .args([
            "--checksum-db-url",
            &format!("{}/sumdb/{DB_NAME}", upstream.url()),
        ])
        .env_remove("STRATA_ADMIN_TOKEN")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start strata up");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut proxy, mut publish_url, mut token_line, mut warm_url) = (None, None, None, None);
    let mut sumdb = None;
    while proxy.is_none()
        || publish_url.is_none()
        || token_line.is_none()
        || warm_url.is_none()
        || sumdb.is_none()
    {
        let line = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) => line,
            Err(e) => panic!(
                "strata up printed no banner ({e}); its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            ),
        };
        let line = line.trim().to_string();
        if let Some(p) = line.strip_prefix("GOPROXY=") {
            proxy = Some(p.to_string());
        } else if let Some(u) = line.strip_prefix("publish URL:") {
            publish_url = Some(u.trim().to_string());
        } else if let Some(t) = line.strip_prefix("admin token:") {
            token_line = Some(t.trim().to_string());
        } else if let Some(k) = line.strip_prefix("GOSUMDB=") {
            sumdb = Some(k.trim_matches('"').to_string());
        } else if let Some(w) = line.strip_prefix("sync worker:") {
            warm_url = w.split_whitespace().next().map(str::to_string);
        }
    }
    Up {
        child,
        banner: Banner {
            proxy: proxy.unwrap(),
            publish_url: publish_url.unwrap(),
            token_line: token_line.unwrap(),
            warm_url: warm_url.unwrap(),
            sumdb: sumdb.unwrap(),
        },
    }
}

/// The registry base URL from the publish URL (`…/api/repos/private/upload`).
fn registry_base(publish_url: &str) -> String {
    publish_url
        .strip_suffix("/api/repos/private/upload")
        .expect("the publish URL names the private repository")
        .to_string()
}

fn publish(registry: &str, token: &str, dir: &Path, version: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "publish",
            "--quiet",
            "--repo",
            "private",
            "--version",
            version,
        ])
        .args(["--registry", registry])
        .arg(dir)
        .env("STRATA_TOKEN", token)
        .env("HOME", dir)
        .output()
        .unwrap()
}

/// `go args…` in `dir` with private caches under `home`, verifying every module against the
/// checksum database `key` (`GONOSUMDB` empty).
fn go(dir: &Path, home: &Path, proxy: &str, key: &str, args: &[&str]) -> Output {
    go_command::run(dir, home, proxy, key, "", args)
}

/// `strata sumdb audit URL --key KEY --state STATE EXTRA…`.
fn audit(url: &str, key: &str, state: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["sumdb", "audit", url, "--key", key, "--state"])
        .arg(state)
        .args(extra)
        .env_remove("STRATA_TOKEN")
        .output()
        .expect("run strata sumdb audit")
}

/// Replaces the stored log of `strata up`'s data directory (stopped) with a fork: the same
/// records but the first one's zip hash, re-signed with the same key.
fn rewrite_log(data: &Path) {
    use strata_central_registry::ledger::Ledger;
    use strata_central_registry::storage::ObjectStore;
    use strata_central_registry::storage::fs::FsStore;
    let key = std::fs::read_to_string(data.join("sumdb.key")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fork_dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(data.join("registry")).unwrap());
        let ledger = Ledger::new(store, key.trim()).unwrap();
        let size = ledger.recover().await.unwrap();
        assert!(size >= 2, "records to rewrite: {size}");
        let fork_store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(fork_dir.path()).unwrap());
        let fork = Ledger::new(fork_store, key.trim()).unwrap();
        for id in 0..size {
            let text = ledger.record_text(id).await.unwrap().unwrap();
            let text = String::from_utf8(text.to_vec()).unwrap();
            let fields: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
            let module = strata_core::path::ModulePath::new(fields[0][0]).unwrap();
            let version = strata_core::version::Version::new(fields[0][1]).unwrap();
            let zip_h1 = if id == 0 {
                format!("h1:{}", "A".repeat(43) + "=")
            } else {
                fields[0][2].to_owned()
            };
            fork.append(&module, &version, &zip_h1, fields[1][2])
                .await
                .unwrap();
        }
    });
    let name = "sum.strata.local";
    let live = data.join("registry/objects/ledger").join(name);
    std::fs::remove_dir_all(&live).unwrap();
    copy_dir(&fork_dir.path().join("objects/ledger").join(name), &live);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn ok(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strata_up_serves_publishes_and_keeps_its_data_across_restarts() {
    let public = dependency_graph(3);
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&public, Some(db.clone())).await;
    let top = public.last().unwrap().clone();
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().to_owned();

    // Blocking work (processes, the go command) off the runtime that serves the fixture.
    let upstream_ref = Arc::new(upstream);
    let up_upstream = upstream_ref.clone();
    let up_db = db.clone();
    let up_public = public.clone();
    let zip_path = format!("/{}/@v/{}.zip", top.path, top.version);
    tokio::task::spawn_blocking(move || {
        let data = root_path.join("data");
        let log = root_path.join("up.log");
        let up = start_up(&data, &up_upstream, &up_db, &log);
        let token = up
            .banner
            .token_line
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        assert!(
            token.starts_with("strata_"),
            "a generated token is shown: {}",
            up.banner.token_line
        );
        let registry = registry_base(&up.banner.publish_url);
        let key = up.banner.sumdb.clone();
        assert!(key.starts_with("sum.strata.local+"), "{key}");

        // A private module that depends on a public one.
        let module_dir = root_path.join("hello");
        std::fs::create_dir_all(&module_dir).unwrap();
        std::fs::write(
            module_dir.join("go.mod"),
            format!(
                "module {PRIVATE}\n\ngo 1.21\n\nrequire {} {}\n",
                top.path, top.version
            ),
        )
        .unwrap();
        std::fs::write(
            module_dir.join("hello.go"),
            format!(
                "package hello\n\nimport _ \"{}\"\n\nconst Hello = 1\n",
                top.path
            ),
        )
        .unwrap();
        let refused = publish(&registry, "strata_wrong", &module_dir, "v0.1.0");
        assert!(!refused.status.success(), "a wrong token is refused");
        ok(
            "strata publish",
            &publish(&registry, &token, &module_dir, "v0.1.0"),
        );

        // The go command through the edge: the private module and its public dependency, whose
        // go.sum lines are verified against the (test) checksum database via the edge.
        let home = root_path.join("home");
        let client = home.join("client");
        std::fs::create_dir_all(&client).unwrap();
        ok(
            "go mod init",
            &go(
                &client,
                &home,
                &up.banner.proxy,
                &key,
                &["mod", "init", "example.com/client"],
            ),
        );
        ok(
            "go get",
            &go(
                &client,
                &home,
                &up.banner.proxy,
                &key,
                &["get", &format!("{PRIVATE}@v0.1.0")],
            ),
        );
        ok(
            "go mod verify",
            &go(&client, &home, &up.banner.proxy, &key, &["mod", "verify"]),
        );
        let tiles = home.join("modcache/cache/download/sumdb/sum.strata.local/tile");
        assert!(
            tiles.is_dir(),
            "the go command read strata's tiles: {}",
            tiles.display()
        );
        let go_sum = std::fs::read_to_string(client.join("go.sum")).unwrap();
        assert!(
            go_sum.contains(&format!("{} {} h1:", top.path, top.version)),
            "{go_sum}"
        );
        assert!(
            go_sum.contains(&format!("{PRIVATE} v0.1.0 h1:")),
            "{go_sum}"
        );

        // An auditor of that database through the edge: the head is kept for the next run,
        // every record re-read and re-hashed, every recorded version downloaded and re-verified.
        let audit_state = root_path.join("audit");
        let db_url = format!("{}sumdb/sum.strata.local", up.banner.proxy);
        let proxy = up.banner.proxy.trim_end_matches('/').to_owned();
        let first = audit(
            &db_url,
            &key,
            &audit_state,
            &["--records", "--proxy", &proxy],
        );
        ok("strata sumdb audit", &first);
        let said = String::from_utf8_lossy(&first.stdout).to_string();
        assert!(said.contains("signature verified"), "{said}");
        assert!(said.contains("no version recorded twice"), "{said}");
        assert!(said.contains(" 0 not served there, 0 mismatches"), "{said}");

        // The sync worker runs in the same process: a warm-up through its API fetches a public
        // module nobody asked for yet into the registry.
        let first = &up_public[0];
        let first_zip = format!("/{}/@v/{}.zip", first.path, first.version);
        assert_eq!(up_upstream.request_count(&first_zip), 0, "not fetched yet");
        let http = reqwest::blocking::Client::new();
        let refused = http
            .post(format!("{}?repository=go", up.banner.warm_url))
            .body(format!("{}@{}\n", first.path, first.version))
            .send()
            .unwrap();
        assert_eq!(
            refused.status().as_u16(),
            401,
            "the warm-up API needs a token"
        );
        let accepted = http
            .post(format!("{}?repository=go", up.banner.warm_url))
            .bearer_auth(&token)
            .body(format!("{}@{}\n", first.path, first.version))
            .send()
            .unwrap();
        assert_eq!(accepted.status().as_u16(), 202);
        let accepted: serde_json::Value =
            serde_json::from_slice(&accepted.bytes().unwrap()).unwrap();
        let base = up.banner.warm_url.trim_end_matches("/api/warm");
        let progress_url = format!("{base}{}", accepted["progress"].as_str().unwrap());
        let mut progress = serde_json::Value::Null;
        for _ in 0..600 {
            let body = http
                .get(&progress_url)
                .bearer_auth(&token)
                .send()
                .unwrap()
                .bytes()
                .unwrap();
            progress = serde_json::from_slice(&body).unwrap();
            if progress["done"] == true {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(progress["completed"], 1, "{progress}");
        assert_eq!(
            up_upstream.request_count(&first_zip),
            1,
            "fetched by the warm-up"
        );

        // SIGTERM: a clean stop.
        let mut up = up;
        let term = Command::new("kill")
            .args(["-TERM", &up.child.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        let status = up.child.wait().unwrap();
        assert!(status.success(), "strata up exits 0 on SIGTERM: {status:?}");
        drop(up);

        // Restart on the same data: the token is not shown again but still works, and the
        // published version is still listed.
        let log = root_path.join("up2.log");
        let again = start_up(&data, &up_upstream, &up_db, &log);
        assert!(
            again.banner.token_line.contains("shown at the first start"),
            "{}",
            again.banner.token_line
        );
        assert!(!again.banner.token_line.contains(&token));
        assert_eq!(
            again.banner.sumdb, key,
            "the same checksum database after a restart"
        );
        let registry = registry_base(&again.banner.publish_url);
        ok(
            "strata publish after a restart",
            &publish(&registry, &token, &module_dir, "v0.2.0"),
        );
        let list = go(
            &client,
            &home,
            &again.banner.proxy,
            &key,
            &["list", "-m", "-versions", PRIVATE],
        );
        ok("go list", &list);
        let listed = String::from_utf8_lossy(&list.stdout).to_string();
        assert_eq!(listed.trim(), format!("{PRIVATE} v0.1.0 v0.2.0"));

        // The log grew: the audit checks the new head against the one it kept.
        let db_url = format!("{}sumdb/sum.strata.local", again.banner.proxy);
        let grown = audit(&db_url, &key, &audit_state, &["--records"]);
        ok("strata sumdb audit after growth", &grown);
        let said = String::from_utf8_lossy(&grown.stdout).to_string();
        assert!(said.contains("consistent with the head kept"), "{said}");

        // The log rewritten while strata is stopped: record 0 altered, every tile and the head
        // rebuilt and signed with the very key strata uses. Consistent-looking to a newcomer,
        // but not to the auditor that kept the old head.
        drop(again);
        rewrite_log(&data);
        let log = root_path.join("up3.log");
        let third = start_up(&data, &up_upstream, &up_db, &log);
        let db_url = format!("{}sumdb/sum.strata.local", third.banner.proxy);
        let caught = audit(&db_url, &key, &audit_state, &[]);
        assert!(!caught.status.success(), "a rewritten log fails the audit");
        let said = String::from_utf8_lossy(&caught.stderr).to_string();
        assert!(said.contains("AUDIT FAILED"), "{said}");
        let again_caught = audit(&db_url, &key, &audit_state, &[]);
        assert!(
            !again_caught.status.success(),
            "the kept head does not move: every later audit fails too"
        );
        drop(third);
        let _ = Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&home)
            .status();
    })
    .await
    .unwrap();
    assert_eq!(
        upstream_ref.request_count(&zip_path),
        1,
        "the public zip was fetched from the upstream once and then served from storage"
    );
}

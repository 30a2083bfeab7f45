//! Remote-repository hygiene, end to end through the HTTP API: an upstream 400 is "not found"
//! for the client (never a 5xx, never retried); zip downloads cannot take the upstream slots
//! `list` needs; credentials in an upstream URL never reach an answer; downloads left behind by
//! a crashed registry are removed at start; an upload the client aborts is no 500 and stores
//! nothing; `.mod`/`.info` uploads are for local repositories only, and an `.info` that differs
//! from the stored one is a conflict.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use support::config::{self, CI_TOKEN, DB_NAME, RemoteOptions};
use support::http::bearer;
use support::registry::TestRegistry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MODULE: &str = "example.com/hygiene/lib";

fn modules() -> Vec<FixtureModule> {
    vec![FixtureModule::new(MODULE, "v1.0.0", &[])]
}

/// A registry over the remote layout's configuration, changed by `edit`.
async fn custom(
    upstream: &FixtureUpstream,
    db: &TestSumDb,
    edit: impl FnOnce(String) -> String,
) -> TestRegistry {
    let toml = config::remote(upstream, db, &RemoteOptions::default());
    TestRegistry::builder(toml).edit(edit).start().await
}

/// The remote layout's upstream line, `upstream = { url = "…"`, pointing at `url` instead.
fn upstream_line(upstream: &FixtureUpstream) -> String {
    format!("upstream = {{ url = \"{}\"", upstream.url())
}

// ---------------------------------------------------------------------------------------------
// 1. Upstream 4xx

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_400_is_not_found_for_the_client_and_not_retried() {
    // Unverified (no_sum), so that every answer comes from the module's own upstream paths.
    let options = RemoteOptions {
        no_sum: vec!["example.com/hygiene".into()],
        ..RemoteOptions::default()
    };
    let h = TestRegistry::remote(&modules(), options).await;
    h.upstream().set_fail_status(Some(400));
    let escaped = "example.com/hygiene/lib";
    for file in [
        "@v/list",
        "@latest",
        "@v/v1.0.0.info",
        "@v/v1.0.0.mod",
        "@v/v1.0.0.zip",
        "@v/master.info",
    ] {
        h.upstream().clear_requests();
        let (status, headers, body) = h.fetch("gocache", &format!("{escaped}/{file}")).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 404, "{file}: {body}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain"),
            "{file}"
        );
        assert!(body.contains("not found upstream (400)"), "{file}: {body}");
        // One request per upstream path: a 400 is final.
        let requests = h.upstream().requests();
        let mut unique = requests.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            requests.len(),
            unique.len(),
            "{file}: retried: {requests:?}"
        );
    }
    // The answer is remembered like a 404 (negative_ttl_secs).
    h.upstream().clear_requests();
    let (status, _, _) = h.fetch("gocache", &format!("{escaped}/@v/list")).await;
    assert_eq!(status, 404);
    assert_eq!(h.upstream().requests(), Vec::<String>::new());

    // 401/403 from the upstream are a misconfigured upstream: 502, as before.
    h.upstream().set_fail_status(Some(403));
    let (status, _, body) = h.fetch("gocache", "example.com/other/@v/list").await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert!(!h.metrics().await.contains("status=\"500\""));
}

// ---------------------------------------------------------------------------------------------
// 2. Separate slot pools

/// An upstream whose zips never answer (until released) while everything else does.
#[derive(Default)]
struct SlowZips {
    zips: AtomicUsize,
    release: tokio::sync::Notify,
    released: std::sync::atomic::AtomicBool,
}

async fn slow_zip_upstream(state: Arc<SlowZips>) -> std::net::SocketAddr {
    let module = "example.com/slow";
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let state = state.clone();
        async move {
            let path = uri.path().to_owned();
            let Some(file) = path.strip_prefix(&format!("/{module}/")) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            match file {
                "@v/list" => "v1.0.0\nv1.0.1\nv1.0.2\n".into_response(),
                f if f.ends_with(".mod") => format!("module {module}\n").into_response(),
                f if f.ends_with(".zip") => {
                    state.zips.fetch_add(1, Ordering::SeqCst);
                    loop {
                        let released = state.release.notified();
                        if state.released.load(Ordering::SeqCst) {
                            break;
                        }
                        released.await;
                    }
                    StatusCode::NOT_FOUND.into_response()
                }
                _ => StatusCode::NOT_FOUND.into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_zip_downloads_do_not_starve_list() {
    let state = Arc::new(SlowZips::default());
    let addr = slow_zip_upstream(state.clone()).await;
    let db = TestSumDb::new(DB_NAME);
    let fixture = FixtureUpstream::start(&[], None).await;
    let reg = custom(&fixture, &db, |toml| {
        toml.replacen(
            &upstream_line(&fixture),
            &format!(
                "upstream = {{ url = \"http://{addr}\", max_concurrency = 2, \
                 max_zip_concurrency = 2, read_timeout_ms = 60000"
            ),
            1,
        )
        .replace("no_sum = []", "no_sum = [\"example.com/slow\"]")
        .replace(
            "read_timeout_ms = 2000, retry_initial_ms",
            "retry_initial_ms",
        )
    })
    .await;

    // Three zips of three versions: two take both download slots and hang, one waits.
    let zips: Vec<_> = ["v1.0.0", "v1.0.1", "v1.0.2"]
        .into_iter()
        .map(|v| {
            let url = format!(
                "http://{}/go/gocache/example.com/slow/@v/{v}.zip",
                reg.running.http_addr
            );
            tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while state.zips.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "two zip downloads started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // `list` (and a .mod, same pool) still answer while every download slot is taken.
    let (status, body) = tokio::time::timeout(
        Duration::from_secs(5),
        reg.fetch_text("gocache", "example.com/slow/@v/list"),
    )
    .await
    .expect("list must not wait for zip download slots");
    assert_eq!((status, body.as_str()), (200, "v1.0.0\nv1.0.1\nv1.0.2\n"));
    assert_eq!(
        state.zips.load(Ordering::SeqCst),
        2,
        "the third zip waits for a slot"
    );

    // Released, the downloads end (404 from this upstream) and the third one gets its turn.
    state.released.store(true, Ordering::SeqCst);
    state.release.notify_waiters();
    for zip in zips {
        assert_eq!(zip.await.unwrap().unwrap(), 404);
    }
    assert_eq!(state.zips.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------------------------------------
// 5. Credentials in the upstream URL

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_credentials_never_reach_an_answer() {
    const PASSWORD: &str = "s3cret-Upstream-pw";
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&modules(), Some(db.clone())).await;
    let reg = custom(&upstream, &db, |toml| {
        toml.replacen(
            &upstream_line(&upstream),
            &format!(
                "upstream = {{ url = \"http://strata:{PASSWORD}@{}\"",
                upstream.addr()
            ),
            1,
        )
    })
    .await;
    let escaped = "example.com/hygiene/lib";
    // It works…
    let (status, body) = reg
        .fetch_text("gocache", &format!("{escaped}/@v/list"))
        .await;
    assert_eq!((status, body.as_str()), (200, "v1.0.0\n"));
    // …and no failure shows the password. (A timeout first: the 400 is remembered for the
    // version's go.mod, which .info and .zip fetch first.)
    upstream.set_hang(true);
    let (status, body) = reg
        .fetch_text("gocache", &format!("{escaped}/@v/v1.0.0.zip"))
        .await;
    upstream.set_hang(false);
    assert_eq!(status, 504, "{body}");
    assert!(
        !body.contains(PASSWORD) && body.contains("http://***@"),
        "{body}"
    );
    for (fault, path, want) in [
        (503, format!("{escaped}/@v/v1.0.0.mod"), 502),
        (403, format!("{escaped}/@latest"), 502),
        (400, format!("{escaped}/@v/v1.0.0.info"), 404),
    ] {
        upstream.set_fail_status(Some(fault));
        let (status, body) = reg.fetch_text("gocache", &path).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(
            !body.contains(PASSWORD) && body.contains("http://***@"),
            "{path}: {body}"
        );
    }
    upstream.set_fail_status(None);
    assert!(!reg.running.metrics.encode().contains(PASSWORD));
    // Nor does anything that could end up in a log line.
    let debug = format!("{:?}", reg.running.registry);
    assert!(debug.contains("***@") && !debug.contains(PASSWORD));
}

// ---------------------------------------------------------------------------------------------
// 4. Downloads left by a crash

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_left_by_a_crash_are_removed_at_start() {
    let mut h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    let spool = h.spool.clone();
    // What a registry killed mid-download leaves: its download directory (its lock died with
    // it) holding a partial zip; and a partial zip of the layout before per-repository
    // directories, hours old.
    let crashed = spool.join("strata-fills-gocache-k1LLed");
    std::fs::create_dir(&crashed).unwrap();
    std::fs::write(crashed.join("lock"), b"").unwrap();
    std::fs::write(crashed.join("strata-fill-Xy12"), b"PK\x03\x04 partial").unwrap();
    let legacy = spool.join("strata-fill-0ld");
    std::fs::write(&legacy, b"PK\x03\x04 partial").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&legacy)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(2 * 3600))
        .unwrap();
    // The directory of a registry still running on the same spool directory: its lock held.
    let alive = spool.join("strata-fills-gocache-alive");
    std::fs::create_dir(&alive).unwrap();
    std::fs::write(alive.join("strata-fill-Ab34"), b"PK\x03\x04 downloading").unwrap();
    let mut lock = fd_lock::RwLock::new(std::fs::File::create(alive.join("lock")).unwrap());
    let _held = lock.try_write().unwrap();

    h.restart(RemoteOptions::default()).await;
    assert!(
        !crashed.exists() && !legacy.exists(),
        "{:?}",
        fill_dirs(&spool)
    );
    assert!(
        alive.join("strata-fill-Ab34").exists(),
        "a live download is left alone"
    );
    // The new registry downloads through its own directory.
    let (status, _, body) = h
        .fetch("gocache", "example.com/hygiene/lib/@v/v1.0.0.zip")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, h.upstream().module(MODULE, "v1.0.0").unwrap().zip);
}

fn fill_dirs(spool: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("strata-fills-")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// 6. An upload the client aborts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_the_client_aborts_is_no_500_and_stores_nothing() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    let zip = module_zip("example.com/team/aborted", "v1.0.0");
    let sent = &zip[..zip.len() / 2];
    let mut socket = tokio::net::TcpStream::connect(h.running.http_addr)
        .await
        .unwrap();
    let head = format!(
        "PUT /api/repos/private/upload HTTP/1.1\r\nHost: registry\r\n\
         Authorization: Bearer {CI_TOKEN}\r\nContent-Length: {}\r\n\r\n",
        zip.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(sent).await.unwrap();
    // The client stops sending half-way through its body (a half-close, so that it can still
    // read the answer; a client that is gone entirely gets none, and the same happens inside).
    socket.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("upload aborted by the client") && answer.contains("nothing was stored"),
        "{answer}"
    );
    // Counted as refused input, not as a server error.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = h.metrics().await;
        if metrics.contains("strata_registry_publish_total{outcome=\"invalid\"} 1") {
            break metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the aborted upload was never counted: {answer}\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
    assert!(!metrics.contains("outcome=\"error\""), "{metrics}");
    assert_eq!(h.stored_keys("private"), Vec::<String>::new());
    let spooled: Vec<_> = std::fs::read_dir(&h.spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("strata-upload-"))
        .collect();
    assert_eq!(spooled, Vec::<String>::new());
    // The same upload, complete, publishes.
    let (status, body) = h.publish("private", zip).await;
    assert_eq!(status, 201, "{body}");
}

/// A valid module zip of `module@version` (a go.mod and one Go file).
fn module_zip(module: &str, version: &str) -> Vec<u8> {
    let go_mod = format!("module {module}\n");
    let files: [(&str, &[u8]); 2] = [("go.mod", go_mod.as_bytes()), ("lib.go", b"package lib\n")];
    support::zip::module_zip(module, version, &files).0
}

// ---------------------------------------------------------------------------------------------
// 7. Artifactory-style .mod/.info uploads

/// An Artifactory-style upload with the CI token: status and body.
async fn art_put(h: &TestRegistry, repo: &str, path: &str, body: Vec<u8>) -> (u16, String) {
    let r = h.art_put(repo, path, &bearer(CI_TOKEN), body).await;
    (r.status, r.text())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_files_are_for_local_repositories_only() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    let escaped = "example.com/hygiene/lib";
    let go_mod = format!("module {MODULE}\n").into_bytes();
    let info = br#"{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}"#.to_vec();
    let zip = module_zip(MODULE, "v1.0.0");
    // The CI token may deploy to the remote repository, so only its kind refuses.
    for (path, body) in [
        (format!("{escaped}/@v/v1.0.0.mod"), go_mod.clone()),
        (format!("{escaped}/@v/v1.0.0.info"), info.clone()),
        (format!("{escaped}/@v/v1.0.0.zip"), zip.clone()),
    ] {
        let (status, reason) = art_put(&h, "gocache", &path, body).await;
        assert_eq!(status, 403, "{path}: {reason}");
        assert!(
            reason.contains("remote repository \"gocache\"")
                && reason.contains("only local repositories"),
            "{path}: {reason}"
        );
    }
    // Nothing reached the upstream, nothing was stored.
    assert_eq!(h.upstream().requests(), Vec::<String>::new());
    assert_eq!(h.stored_keys("gocache"), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_files_on_a_virtual_repository_are_refused() {
    let db = Arc::new(TestSumDb::new(DB_NAME));
    let upstream = FixtureUpstream::start(&modules(), Some(db.clone())).await;
    // A token that may deploy to the virtual repository, so only its kind refuses.
    let reg = custom(&upstream, &db, |toml| {
        toml.replace("go = [\"read\"]", "go = [\"read\", \"deploy\"]")
    })
    .await;
    let escaped = "example.com/hygiene/lib";
    for (file, body) in [
        ("v1.0.0.mod", format!("module {MODULE}\n").into_bytes()),
        (
            "v1.0.0.info",
            br#"{"Version":"v1.0.0","Time":"2024-01-02T03:04:05Z"}"#.to_vec(),
        ),
        ("v1.0.0.zip", module_zip(MODULE, "v1.0.0")),
    ] {
        let (status, reason) = art_put(&reg, "go", &format!("{escaped}/@v/{file}"), body).await;
        assert_eq!(status, 403, "{file}: {reason}");
        assert!(
            reason.contains("virtual repository \"go\"") && reason.contains("only local"),
            "{file}: {reason}"
        );
    }
    assert_eq!(upstream.requests(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_info_that_differs_from_the_stored_one_is_a_conflict() {
    let h = TestRegistry::remote(&modules(), RemoteOptions::default()).await;
    let module = "example.com/team/info";
    let (status, body) = h.publish("private", module_zip(module, "v1.0.0")).await;
    assert_eq!(status, 201, "{body}");
    let info_path = format!("{module}/@v/v1.0.0.info");
    let (status, _, stored) = h.fetch("private", &info_path).await;
    assert_eq!(status, 200);
    let stored: serde_json::Value = serde_json::from_slice(&stored).unwrap();
    let time = stored["Time"].as_str().unwrap().to_owned();
    let keys = h.stored_keys("private");

    // The same Version and Time: acknowledged.
    let same = format!(r#"{{"Version":"v1.0.0","Time":"{time}"}}"#).into_bytes();
    let (status, reason) = art_put(&h, "private", &info_path, same).await;
    assert_eq!(status, 200, "{reason}");
    // Another Time: a conflict that says what differs.
    let other = br#"{"Version":"v1.0.0","Time":"2001-02-03T04:05:06Z"}"#.to_vec();
    let (status, reason) = art_put(&h, "private", &info_path, other).await;
    assert_eq!(status, 409, "{reason}");
    assert!(
        reason.contains("differs")
            && reason.contains("2001-02-03T04:05:06Z")
            && reason.contains(&time)
            && reason.contains("immutable"),
        "{reason}"
    );
    // Another Version stays invalid input.
    let wrong = br#"{"Version":"v1.0.1","Time":"2001-02-03T04:05:06Z"}"#.to_vec();
    let (status, reason) = art_put(&h, "private", &info_path, wrong).await;
    assert_eq!(status, 400, "{reason}");
    assert_eq!(h.stored_keys("private"), keys, "nothing stored");
}

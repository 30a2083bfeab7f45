//! The warm-up API end to end: a real-world-sized go.sum (160 lines, 80 modules of the
//! fixture upstream) posted to the worker is fetched into the registry by prefetch jobs (on
//! a Redis queue), its progress endpoint reports completion, and afterwards the real go
//! command downloads every module through an edge while the upstream sees no request at all.
//! Also: what the API refuses (bad bodies name their line and enqueue nothing; no token 401;
//! no permission 403) and how progress reports failures.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use strata_edge_proxy::config::EdgeConfig;
use strata_service::config::ServiceConfig as _;
use strata_sync_worker::QueueStats;
use strata_testkit::{FixtureModule, dependency_graph};
use support::{CI_TOKEN, OUTSIDER_TOKEN, Stack, metric, redis, redis_jobs, until, worker_toml};
use tokio_util::sync::CancellationToken;

/// `go mod download` in `dir` (which holds go.mod and go.sum) with a fresh module cache.
fn go_mod_download(dir: &Path, proxy: &str, sumdb_key: &str) -> (bool, String) {
    let home = dir.join("home");
    let modcache = home.join("modcache");
    let output = Command::new("go")
        .args(["mod", "download", "-x"])
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("GOPATH", home.join("gopath"))
        .env("GOCACHE", home.join("gocache"))
        .env("GOMODCACHE", &modcache)
        .env("GOENV", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GO111MODULE", "on")
        .env("GOPROXY", proxy)
        .env("GOSUMDB", sumdb_key)
        .env("GOFLAGS", "-mod=mod")
        .env("GONOSUMDB", "")
        .env("GOPRIVATE", "")
        .env("GONOPROXY", "")
        .output()
        .expect("the go command runs (scripts/ensure-deps.sh installs Go)");
    // The module cache is read-only by design; make it removable.
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(&modcache)
        .status();
    (
        output.status.success(),
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_warmed_go_sum_downloads_through_an_edge_without_upstream_requests() {
    let modules = dependency_graph(80);
    let stack = Stack::start(&modules).await;
    let redis = redis();
    let jobs = redis
        .as_ref()
        .map(|r| redis_jobs(&r.url(), "strata:jobs:warm"))
        .unwrap_or_default();
    let worker = stack.worker(&worker_toml(&jobs, "")).await;

    let go_sum: String = modules
        .iter()
        .map(|m| {
            stack
                .upstream
                .module(&m.path, &m.version)
                .unwrap()
                .go_sum
                .clone()
        })
        .collect();
    assert_eq!(go_sum.lines().count(), 160, "a real-world-sized go.sum");

    let progress = worker.warm("go", Some("release"), &go_sum).await;
    assert_eq!(
        (
            &progress["total"],
            &progress["completed"],
            &progress["failed"],
            &progress["pending"]
        ),
        (&80.into(), &80.into(), &0.into(), &0.into()),
        "{progress:#}"
    );
    // Every version is stored whole in the remote member of `go`, and the registry fetched
    // each zip from the upstream exactly once.
    for m in &modules {
        let (module, version) = support::mv(&m.path, &m.version);
        let index = worker
            .registry()
            .version_index("gocache", &module)
            .await
            .unwrap();
        let entry = index.entry(&version).unwrap();
        assert!(entry.zip.is_some() && entry.info.is_some(), "{}", m.path);
        let zip = format!("/{}/@v/{}.zip", module.escaped(), m.version);
        assert_eq!(stack.upstream.request_count(&zip), 1, "{zip}");
    }
    let metrics = worker.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            r#"strata_sync_jobs_total{kind="prefetch",outcome="completed"}"#
        ),
        Some(80.0),
        "{metrics}"
    );
    // The pin is stored with the set.
    let pin = worker.get_json("/api/pins/release", CI_TOKEN).await;
    assert_eq!(pin["items"].as_array().unwrap().len(), 80);
    assert_eq!(pin["repository"], "go");

    // The same warm-up again: every key has completed, nothing is fetched.
    stack.upstream.clear_requests();
    let again = worker.warm("go", None, &go_sum).await;
    assert_eq!(again["completed"], 80, "{again:#}");
    assert!(
        stack.upstream.requests().is_empty(),
        "{:?}",
        stack.upstream.requests()
    );

    // An edge in front of the registry; the go command downloads everything through it with a
    // fresh module cache, verifying against the test checksum database.
    let cache = tempfile::tempdir().unwrap();
    let edge_toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
[[routes]]
prefix = "/"
repository = "go"
[[registries]]
name = "central"
grpc = "http://{grpc}"
http = "http://{http}"
[cache]
dir = "{dir}"
"#,
        grpc = stack.registry.grpc_addr,
        http = stack.registry.http_addr,
        dir = cache.path().display(),
    );
    let edge_config = EdgeConfig::from_toml(&edge_toml, "edge.toml", &[]).unwrap();
    let edge_shutdown = CancellationToken::new();
    let edge = strata_edge_proxy::start(edge_config, edge_shutdown.clone())
        .await
        .unwrap();
    let proxy = format!("http://{}/", edge.addr);

    let client = tempfile::tempdir().unwrap();
    let mut go_mod = String::from("module example.com/ci\n\ngo 1.21\n\nrequire (\n");
    for m in &modules {
        go_mod.push_str(&format!("\t{} {}\n", m.path, m.version));
    }
    go_mod.push_str(")\n");
    std::fs::write(client.path().join("go.mod"), go_mod).unwrap();
    std::fs::write(client.path().join("go.sum"), &go_sum).unwrap();
    stack.upstream.clear_requests();
    let dir = client.path().to_owned();
    let key = stack.db.verifier_key();
    let (ok, output) = tokio::task::spawn_blocking(move || go_mod_download(&dir, &proxy, &key))
        .await
        .unwrap();
    assert!(ok, "go mod download failed:\n{output}");
    for m in &modules {
        let (module, _) = support::mv(&m.path, &m.version);
        // The go command sends `!` (case-encoding) as `%21`.
        let zip = format!("{}/@v/{}.zip", module.escaped(), m.version).replace('!', "%21");
        assert!(output.contains(&zip), "{zip} was not downloaded:\n{output}");
    }
    assert_eq!(
        stack.upstream.requests(),
        Vec::<String>::new(),
        "go mod download after the warm-up reached the upstream"
    );
    edge_shutdown.cancel();
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_callers_are_refused_and_nothing_is_enqueued() {
    let modules = dependency_graph(2);
    let stack = Stack::start(&modules).await;
    let worker = stack.worker(&worker_toml("", "")).await;
    let good = format!("{}@v1.0.0\n", modules[0].path);

    // No token, a wrong token: 401 with a challenge; no permission on the repository: 403.
    let (status, content_type, text) = worker
        .send(
            reqwest::Method::POST,
            "/api/warm?repository=go",
            None,
            &good,
        )
        .await;
    assert_eq!(status, 401, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    assert!(text.contains("token is required"), "{text}");
    let (status, text) = worker
        .post("/api/warm?repository=go", Some("not-a-token"), &good)
        .await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = worker
        .post("/api/warm?repository=gocache", Some(OUTSIDER_TOKEN), &good)
        .await;
    assert_eq!(status, 403, "{text}");
    let (status, text) = worker
        .post("/api/warm?repository=nowhere", Some(CI_TOKEN), &good)
        .await;
    assert_eq!(status, 404, "{text}");
    let (status, text) = worker.post("/api/warm", Some(CI_TOKEN), &good).await;
    assert_eq!(status, 400, "{text}");

    // Bad bodies: the first bad line is named; the good lines before it are not enqueued.
    let bad_go_sum = format!(
        "{} v1.0.0 h1:AAAA=\n{} v1.0.0/go.mod h1:BBBB=\nexample.com/broken v1.0.0\n",
        modules[0].path, modules[0].path
    );
    for (body, want) in [
        (bad_go_sum.as_str(), "go.sum line 3"),
        (
            "example.com/a@v1.0.0\nexample.com/b@latest\n",
            "module@version list line 2",
        ),
        ("example.com/a@v1.0.0\nexample.com/b\n", "line 2"),
        ("module example.com/app\nrequire (\n", "go.mod"),
        ("", "no module versions"),
        ("\u{0}\u{ff}", "line 1"),
    ] {
        let (status, content_type, text) = worker
            .send(
                reqwest::Method::POST,
                "/api/warm?repository=go",
                Some(CI_TOKEN),
                body,
            )
            .await;
        assert_eq!(status, 400, "{body:?}: {text}");
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert!(text.contains(want), "{body:?}: {text}");
    }
    // A module the repository does not serve (corp only takes corp.example.com).
    let (status, text) = worker
        .post("/api/warm?repository=corp", Some(CI_TOKEN), &good)
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("does not serve"), "{text}");
    let (status, text) = worker
        .post(
            "/api/warm?repository=go&pin=../escape",
            Some(CI_TOKEN),
            &good,
        )
        .await;
    assert_eq!(status, 400, "{text}");

    assert_eq!(
        worker.running.queue.stats().await.unwrap(),
        QueueStats::default(),
        "nothing was enqueued"
    );
    assert!(
        stack.upstream.requests().is_empty(),
        "{:?}",
        stack.upstream.requests()
    );
    let (status, _) = worker.get("/api/warm/0123abcd", Some(CI_TOKEN)).await;
    assert_eq!(status, 404);
    let (status, _) = worker.get("/api/warm/0123abcd", None).await;
    assert_eq!(status, 401);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_reports_versions_that_cannot_be_fetched() {
    let modules = dependency_graph(2);
    let stack = Stack::start(&modules).await;
    let worker = stack.worker(&worker_toml("", "")).await;
    // A private module in the local member: warmed through `go` it is "local", no fetch.
    let private = FixtureModule::new("example.com/private/app", "v1.0.0", &[]);
    stack.publish("private", &private).await;
    // The publish itself asked the remote member whether it serves the path (the shadowing
    // check); what follows is about the warm-up's own requests.
    stack.upstream.clear_requests();
    let body = format!(
        "{}@v1.0.0\nexample.com/nowhere@v1.0.0\nexample.com/private/app@v1.0.0\n",
        modules[0].path
    );
    let progress = worker.warm("go", None, &body).await;
    assert_eq!(progress["total"], 3, "{progress:#}");
    assert_eq!(progress["completed"], 2, "{progress:#}");
    assert_eq!(progress["failed"], 1, "{progress:#}");
    let failure = &progress["failures"][0];
    assert_eq!(failure["module"], "example.com/nowhere");
    assert!(
        failure["error"].as_str().unwrap().contains("not found"),
        "{failure}"
    );
    // The unknown module was dead-lettered at once (a permanent failure), not retried.
    let dead = worker.running.queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(
        dead[0]
            .reason
            .starts_with("permanent failure: prefetch go example.com/nowhere@v1.0.0"),
        "{}",
        dead[0].reason
    );
    // Nothing was asked of the upstream for the private module.
    assert!(
        !stack
            .upstream
            .requests()
            .iter()
            .any(|p| p.contains("private")),
        "{:?}",
        stack.upstream.requests()
    );
    until("the metrics to show the dead letter", || async {
        metric(&worker.metrics().await, "strata_sync_dead_letters") == Some(1.0)
    })
    .await;
    worker.stop().await;
}

/// The `strata-sync` binary with a `[registry]` section: it opens the registry its config
/// names (relative to the worker config), serves the warm-up API, and drains on SIGTERM; a
/// registry config that cannot be loaded is a configuration error (exit 64).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_embeds_the_registry_its_config_names() {
    use std::io::BufRead as _;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(
        dir.path().join("registry.toml"),
        format!(
            "storage = {{ kind = \"fs\", root = {data:?} }}\n\n[[repositories]]\nname = \"private\"\nkind = \"local\"\n\n[[tokens]]\nname = \"ci\"\nsha256 = \"{}\"\npermissions = {{ private = [\"read\"] }}\n",
            strata_central_registry::auth::hash_token(CI_TOKEN)
        ),
    )
    .unwrap();
    let worker = dir.path().join("worker.toml");
    std::fs::write(
        &worker,
        "[server]\nhttp = \"127.0.0.1:0\"\n[registry]\nconfig = \"registry.toml\"\n[scrub]\nevery_hours = 0\n",
    )
    .unwrap();
    let binary = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_strata-sync"));
        command
            .env_remove("STRATA_SYNC_CONFIG")
            .env_remove("STRATA_SYNC_REGISTRY_CONFIG")
            .env_remove("STRATA_REDIS_URL")
            .env_remove("STRATA_SYNC_REDIS_URL")
            .env("RUST_LOG", "info")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let mut child = binary().arg("--config").arg(&worker).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let addr = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                lines.read_line(&mut line).unwrap() > 0,
                "exited before listening"
            );
            if line.contains("sync worker listening") {
                let log: serde_json::Value = serde_json::from_str(&line).unwrap();
                let addr = log["fields"]["http_addr"]
                    .as_str()
                    .or_else(|| log["http_addr"].as_str())
                    .unwrap_or_else(|| panic!("no http_addr in {line}"))
                    .to_owned();
                // Keep draining stderr so the process never blocks on it.
                std::thread::spawn(move || {
                    let mut sink = String::new();
                    while lines.read_line(&mut sink).unwrap_or(0) > 0 {
                        sink.clear();
                    }
                });
                return addr;
            }
        }
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/api/warm?repository=private");
    let anonymous = client
        .post(&url)
        .body("example.com/a@v1.0.0\n")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    // Warming a local repository only confirms what it holds: the version is missing, so
    // progress reports it failed.
    let accepted = client
        .post(&url)
        .bearer_auth(CI_TOKEN)
        .body("example.com/a@v1.0.0\n")
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    let accepted: serde_json::Value =
        serde_json::from_str(&accepted.text().await.unwrap()).unwrap();
    let progress_url = format!("http://{addr}{}", accepted["progress"].as_str().unwrap());
    until("the warm-up to end", || async {
        let text = client
            .get(&progress_url)
            .bearer_auth(CI_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let progress: serde_json::Value = serde_json::from_str(&text).unwrap();
        progress["done"] == true && progress["failed"] == 1
    })
    .await;
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));

    std::fs::remove_file(dir.path().join("registry.toml")).unwrap();
    let output = binary().arg("--config").arg(&worker).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("registry configuration"), "{stderr}");
    // `--check-config` loads it too, as a start would.
    let output = binary()
        .args(["--check-config", "--config"])
        .arg(&worker)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("registry configuration"), "{stderr}");
}

/// `refresh_metadata`: the list is fetched now and the newest listed versions that are not
/// cached yet (at most `refresh.prefetch_newest`) are prefetched; older ones are left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_metadata_prefetches_the_newest_versions_not_cached() {
    use strata_central_registry::keys::RepoName;
    use strata_core::path::ModulePath;
    use strata_sync_worker::{Job, NewJob};

    let path = "example.com/fresh";
    let versions = ["v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0", "v1.4.0"];
    let modules: Vec<FixtureModule> = versions
        .iter()
        .map(|v| FixtureModule::new(path, v, &[]))
        .collect();
    let stack = Stack::start(&modules).await;
    let worker = stack.worker(&worker_toml("", "")).await;
    let cached = worker
        .warm("gocache", None, &format!("{path}@v1.3.0\n"))
        .await;
    assert_eq!(cached["completed"], 1);
    stack.upstream.clear_requests();

    let refresh = |repo: &str| {
        NewJob::new(Job::RefreshMetadata {
            repository: RepoName::new(repo).unwrap(),
            module: ModulePath::new(path).unwrap(),
        })
    };
    let queued = worker
        .running
        .queue
        .enqueue(refresh("gocache"))
        .await
        .unwrap();
    worker.completed(&queued.key).await;
    for v in ["v1.4.0", "v1.2.0"] {
        worker
            .completed(&format!("prefetch/gocache/{path}@{v}"))
            .await;
    }
    let module = ModulePath::new(path).unwrap();
    let index = worker
        .registry()
        .version_index("gocache", &module)
        .await
        .unwrap();
    let mut stored: Vec<&str> = index.available().map(|e| e.version.as_str()).collect();
    stored.sort_unstable();
    assert_eq!(stored, ["v1.2.0", "v1.3.0", "v1.4.0"]);
    let requests = stack.upstream.requests();
    assert_eq!(
        requests
            .iter()
            .filter(|p| p.as_str() == format!("/{path}/@v/list"))
            .count(),
        1,
        "{requests:?}"
    );
    assert!(
        !requests
            .iter()
            .any(|p| p.contains("v1.0.0") || p.contains("v1.1.0") || p.contains("v1.3.0.zip")),
        "{requests:?}"
    );

    // Through the virtual repository the newest three are cached now: nothing more to fetch.
    stack.upstream.clear_requests();
    let again = worker.running.queue.enqueue(refresh("go")).await.unwrap();
    worker.completed(&again.key).await;
    assert!(
        !stack
            .upstream
            .requests()
            .iter()
            .any(|p| p.ends_with(".zip")),
        "{:?}",
        stack.upstream.requests()
    );
    // A local repository has no upstream to refresh from: dead-lettered at once.
    worker
        .running
        .queue
        .enqueue(refresh("private"))
        .await
        .unwrap();
    until("the dead letter", || async {
        worker.running.queue.stats().await.unwrap().dead == 1
    })
    .await;
    let dead = worker.running.queue.dead_letters(1).await.unwrap();
    assert!(dead[0].reason.contains("no upstream"), "{}", dead[0].reason);
    worker.stop().await;
}

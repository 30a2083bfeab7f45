//! The worker process around the runtime: `/healthz`, `/readyz` (following Redis) and
//! `/metrics` through `Builder::start`, and the `strata-sync` binary's exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use strata_service::config::ServiceConfig as _;
use strata_sync_worker::config::WorkerConfig;
use strata_sync_worker::{
    Builder, Job, JobContext, JobError, JobHandler, JobKind, NewJob, Outcome,
};
use strata_testkit::redis_server;
use support::{HANG_GUARD, until};
use tokio_util::sync::CancellationToken;

async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

struct Scrubbed;

#[async_trait]
impl JobHandler for Scrubbed {
    async fn run(&self, _: &Job, _: &JobContext) -> Result<Outcome, JobError> {
        Ok(Outcome::with_detail("0 corrupt"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_readiness_and_job_metrics() {
    let config = WorkerConfig::from_toml("[server]\nhttp = \"127.0.0.1:0\"", "test", &[]).unwrap();
    let shutdown = CancellationToken::new();
    let running = Builder::new(config)
        .handler(JobKind::Scrub, Arc::new(Scrubbed))
        .start(shutdown.clone())
        .await
        .unwrap();
    let base = format!("http://{}", running.http_addr);

    let scrub = running
        .queue
        .enqueue(NewJob::new(Job::Scrub { repository: None }))
        .await
        .unwrap();
    // No handler for index polls in this worker: dead-lettered with the reason, not lost.
    running
        .queue
        .enqueue(NewJob::new(Job::IndexPoll {
            feed: "golang".into(),
        }))
        .await
        .unwrap();
    until("both jobs to end", || async {
        let stats = running.queue.stats().await.unwrap();
        stats.dead == 1 && stats.waiting == 0 && stats.pending == 0
    })
    .await;
    assert!(running.queue.is_completed(&scrub.key).await.unwrap());
    let dead = running.queue.dead_letters(1).await.unwrap();
    assert_eq!(
        dead[0].reason,
        "permanent failure: this worker has no handler for index_poll jobs"
    );

    assert_eq!(get(&format!("{base}/healthz")).await, (200, "ok".into()));
    assert_eq!(get(&format!("{base}/readyz")).await, (200, "ready".into()));
    let (status, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    for line in [
        r#"strata_sync_jobs_total{kind="scrub",outcome="completed"} 1"#,
        r#"strata_sync_jobs_total{kind="index_poll",outcome="dead_lettered"} 1"#,
        "strata_sync_queue_depth 0",
        "strata_sync_jobs_pending 0",
        "strata_sync_dead_letters 1",
        r#"strata_sync_job_duration_seconds_count{kind="scrub"} 1"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }

    shutdown.cancel();
    let report = tokio::time::timeout(HANG_GUARD, running.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!((report.completed, report.dead_lettered), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_redis() {
    if redis_server::skipped() {
        return;
    }
    let mut redis = redis_server::RedisServer::start().unwrap();
    let text = format!(
        "visibility_timeout_ms = 2000\njobs = {{ kind = \"redis\", url = \"{}\", block_ms = 100, command_timeout_ms = 1000 }}\n[server]\nhttp = \"127.0.0.1:0\"",
        redis.url()
    );
    let config = WorkerConfig::from_toml(&text, "test", &[]).unwrap();
    let shutdown = CancellationToken::new();
    let running = Builder::new(config).start(shutdown.clone()).await.unwrap();
    let readyz = format!("http://{}/readyz", running.http_addr);
    assert_eq!(get(&readyz).await, (200, "ready".into()));

    redis.stop();
    let (status, body) = get(&readyz).await;
    assert_eq!(status, 503);
    assert!(body.contains("job queue unavailable"), "{body}");
    let (status, metrics) = get(&format!("http://{}/metrics", running.http_addr)).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"strata_sync_queue_errors_total{operation="stats"}"#),
        "{metrics}"
    );

    redis.restart().unwrap();
    until("readiness after the restart", || async {
        get(&readyz).await.0 == 200
    })
    .await;
    shutdown.cancel();
    tokio::time::timeout(HANG_GUARD, running.done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

fn binary() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_strata-sync"));
    command
        .env_remove("STRATA_SYNC_CONFIG")
        .env_remove("STRATA_REDIS_URL")
        .env_remove("STRATA_SYNC_REDIS_URL")
        .env_remove("STRATA_TEST_UNSET_HOOK_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn the_binary_exits_64_on_usage_and_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "concurrency = 0\n").unwrap();
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "[server]\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let missing = dir.path().join("missing.toml");
    // A webhook whose secret variable is not set: refused when the configuration is loaded.
    let unset_secret = dir.path().join("unset-secret.toml");
    std::fs::write(
        &unset_secret,
        "[[webhooks]]\nprovider = \"gitlab\"\nsecret_env = \"STRATA_TEST_UNSET_HOOK_SECRET\"\nrepository = \"go\"\n",
    )
    .unwrap();
    for (args, want) in [
        (
            vec![],
            "usage: strata-sync [--check-config] --config FILE".to_owned(),
        ),
        (vec!["--bogus".to_owned()], "unknown argument".to_owned()),
        (
            vec!["--config".to_owned(), bad.display().to_string()],
            "concurrency: must be between 1 and 1024".to_owned(),
        ),
        (
            vec![format!("--config={}", typo.display())],
            "unknown field `listen`".to_owned(),
        ),
        (
            vec!["--config".to_owned(), missing.display().to_string()],
            missing.display().to_string(),
        ),
        (
            vec!["--config".to_owned(), unset_secret.display().to_string()],
            "STRATA_TEST_UNSET_HOOK_SECRET".to_owned(),
        ),
    ] {
        let output = binary().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(&want), "{args:?}: {stderr}");
    }
}

#[test]
fn check_config_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    // A listener nobody could bind: --check-config must not try.
    std::fs::write(
        &good,
        "concurrency = 2\n[server]\nhttp = \"203.0.113.1:1\"\n",
    )
    .unwrap();
    let output = binary()
        .stdout(Stdio::piped())
        .args(["--check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is valid"), "{stdout}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "concurrency = 0\n").unwrap();
    let output = binary()
        .args(["--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    // The tracing settings are part of the configuration.
    let output = binary()
        .args(["--check-config", "--config"])
        .arg(&good)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
        .env("OTEL_TRACES_SAMPLER", "sometimes")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("unknown sampler"), "{stderr}");
}

#[test]
fn the_binary_drains_and_exits_0_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("worker.toml");
    std::fs::write(&config, "[server]\nhttp = \"127.0.0.1:0\"\n").unwrap();
    let mut child = binary()
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .spawn()
        .unwrap();
    // Wait for the "listening" log line on stderr before signalling.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        assert!(n > 0, "the worker exited before listening");
        if line.contains("sync worker listening") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + HANG_GUARD;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
}

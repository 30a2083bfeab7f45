//! The real go command against an edge process in front of a registry process (S3 on MinIO,
//! Redis events): a 30-module graph cold then warm, the registry killed under a warm edge (with
//! a fallback GOPROXY), and a publish showing in `go list` at once despite a 1 h metadata TTL.
//!
//! The edges serve HTTPS: the go command sends `.netrc` credentials only over https, and every
//! repository here needs a token (like deploy/config/registry.toml), so the tests exercise the
//! same authenticated path a private deployment uses. Checksums are verified against the test
//! database through the edge's `sumdb/` forward (`GOSUMDB=<key>`, no URL).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use strata_e2e::go::{GoOutput, GoSession, write_main_module};
use strata_e2e::{CI_TOKEN, EdgeProcess, Stack, binaries, cache_of, get};
use strata_testkit::{FixtureModule, FixtureUpstream, dependency_graph};

/// `go mod download -json all` then `go mod verify` in `app`, both required to succeed.
async fn download_and_verify(session: &GoSession<'_>, app: &Path) -> (GoOutput, GoOutput) {
    let download = session.run(app, &["mod", "download", "-json", "all"]).await;
    download.assert_ok();
    let verify = session.run(app, &["mod", "verify"]).await;
    verify.assert_ok();
    assert!(
        verify.stdout.contains("all modules verified"),
        "{}",
        verify.text()
    );
    (download, verify)
}

/// A main module requiring every module of `graph` at its version.
fn write_app(dir: &Path, graph: &[FixtureModule], go_sum: &str) {
    let requires: Vec<(&str, &str)> = graph
        .iter()
        .map(|m| (m.path.as_str(), m.version.as_str()))
        .collect();
    write_main_module(dir, "example.com/e2e/app", &requires, go_sum);
}

/// The go.sum lines of `modules` as the checksum database has them.
fn database_lines(upstream: &FixtureUpstream, modules: &[FixtureModule]) -> String {
    modules
        .iter()
        .map(|m| upstream.module(&m.path, &m.version).unwrap().go_sum.clone())
        .collect()
}

/// The modules `go mod download -json` reported, with their `Sum`.
fn downloaded(output: &GoOutput) -> Vec<(String, String)> {
    let stream =
        serde_json::Deserializer::from_str(&output.stdout).into_iter::<serde_json::Value>();
    stream
        .map(|v| v.unwrap_or_else(|e| panic!("go mod download -json: {e}\n{}", output.stdout)))
        .map(|v| {
            assert!(v.get("Error").is_none(), "{v}");
            (
                v["Path"].as_str().unwrap_or_default().to_owned(),
                v["Sum"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn https_edge(stack: &Stack, spec: &mut strata_e2e::EdgeSpec) -> EdgeProcess {
    spec.tls = Some(stack.cert.clone());
    stack.start_edge(spec).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn go_downloads_a_30_module_graph_cold_then_warm() {
    let graph = dependency_graph(32);
    let Some(stack) = Stack::start("go-graph", binaries!(), &graph).await else {
        return;
    };
    let registry = stack.start_registry("registry").await;
    let edge = https_edge(&stack, &mut stack.edge_spec("edge", &[&registry])).await;
    let go = stack.go_client(&edge, "", "go");
    let app = stack.dir().join("app");
    write_app(&app, &graph, "");

    // Cold: every artifact through edge → registry → fixture upstream, verified against the
    // database through the edge.
    let cold = go.session();
    let started = Instant::now();
    let (download, _) = download_and_verify(&cold, &app).await;
    println!(
        "cold: go mod download all + verify of {} modules in {:?}",
        graph.len(),
        started.elapsed()
    );
    let sums = downloaded(&download);
    assert_eq!(sums.len(), graph.len(), "{}", download.stdout);
    for m in &graph {
        let built = stack.upstream.module(&m.path, &m.version).unwrap();
        assert!(
            sums.contains(&(m.path.clone(), built.zip_hash.clone())),
            "{} missing or with another hash: {sums:?}",
            m.path
        );
    }
    let go_sum = std::fs::read_to_string(app.join("go.sum")).unwrap();
    for line in database_lines(&stack.upstream, &graph).lines() {
        assert!(go_sum.lines().any(|l| l == line), "go.sum lacks {line}");
    }
    let requests = stack.upstream.requests();
    assert!(
        requests
            .iter()
            .any(|p| p.contains("/sumdb/sum.strata.test/lookup/")),
        "the go command verified through the edge's sumdb forward: {requests:#?}"
    );
    for m in &graph {
        let escaped = strata_core::path::escape_path(&m.path).unwrap();
        let zips = stack
            .upstream
            .request_count(&format!("/{escaped}/@v/{}.zip", m.version));
        assert_eq!(zips, 1, "{}: upstream zip fetches", m.path);
    }
    let cold_metrics = edge.metrics().await;
    assert_eq!(
        cold_metrics.sum("strata_edge_fills_total", &[("outcome", "ok")]),
        graph.len() as f64
    );

    // Warm: a fresh module cache; everything comes from the edge's tiers.
    stack.upstream.clear_requests();
    let warm = go.session();
    let started = Instant::now();
    let (download, _) = download_and_verify(&warm, &app).await;
    println!(
        "warm: go mod download all + verify of {} modules in {:?}",
        graph.len(),
        started.elapsed()
    );
    assert_eq!(downloaded(&download).len(), graph.len());
    assert_eq!(
        stack.upstream.requests(),
        Vec::<String>::new(),
        "the warm round reached the fixture upstream"
    );
    let warm_metrics = edge.metrics().await;
    let cache = "strata_edge_cache_lookups_total";
    let zip = ("kind", "zip");
    let delta = |labels: &[(&str, &str)]| warm_metrics.delta(&cold_metrics, cache, labels);
    let (memory_hits, disk_hits) = (
        delta(&[("tier", "memory"), zip, ("result", "hit")]),
        delta(&[("tier", "disk"), zip, ("result", "hit")]),
    );
    let disk_misses = delta(&[("tier", "disk"), zip, ("result", "miss")]);
    println!("warm zips: {memory_hits} memory hits, {disk_hits} disk hits, {disk_misses} misses");
    assert_eq!(disk_misses, 0.0, "zip misses in the warm round");
    assert_eq!(memory_hits + disk_hits, graph.len() as f64);
    assert_eq!(
        warm_metrics.delta(&cold_metrics, "strata_edge_fills_total", &[]),
        0.0,
        "zip fills in the warm round"
    );
    assert_eq!(
        warm_metrics.delta(
            &cold_metrics,
            "strata_edge_requests_total",
            &[zip, ("status", "200")]
        ),
        graph.len() as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_the_registry_keeps_warm_downloads_green() {
    let graph = dependency_graph(30);
    let uncached = FixtureModule::new("example.com/cold/Uncached", "v1.0.0", &[]);
    let rescued = FixtureModule::new("example.com/fallback/rescued", "v1.0.0", &[]);
    let mut modules = graph.clone();
    modules.extend([uncached.clone(), rescued.clone()]);
    let Some(stack) = Stack::start("registry-outage", binaries!(), &modules).await else {
        return;
    };
    let mut registry = stack.start_registry("registry").await;
    let mut spec = stack.edge_spec("edge", &[&registry]);
    spec.fallbacks = vec![(
        stack.upstream.url(),
        vec!["example.com/fallback/*".to_owned()],
    )];
    let edge = https_edge(&stack, &mut spec).await;
    let go = stack.go_client(&edge, "", "go");
    let app = stack.dir().join("app");
    write_app(&app, &graph, "");
    download_and_verify(&go.session(), &app).await;

    registry.kill();
    println!("registry killed (SIGKILL)");
    stack.upstream.clear_requests();
    for round in 1..=3 {
        let session = go.session();
        let started = Instant::now();
        let (download, _) = download_and_verify(&session, &app).await;
        assert_eq!(downloaded(&download).len(), graph.len());
        println!(
            "registry down, round {round}: {} modules downloaded and verified in {:?}",
            graph.len(),
            started.elapsed()
        );
    }

    // A module nobody fetched before: the edge has nothing to serve and says why, at once.
    let session = go.session();
    let target = format!("{}@{}", uncached.path, uncached.version);
    let failed = session
        .run(&app, &["mod", "download", "-json", &target])
        .await;
    println!(
        "uncached {target} with the registry down: failed after {:?}:\n{}",
        failed.elapsed,
        failed.text()
    );
    assert!(!failed.success, "{}", failed.text());
    assert!(
        failed.text().contains("no registry could answer"),
        "the edge's reason is in the go output: {}",
        failed.text()
    );

    // A module matching the fallback's patterns: fetched from the fallback GOPROXY, checked by
    // the go command against the go.sum a build would have committed.
    let rescue_app = stack.dir().join("rescue-app");
    write_app(
        &rescue_app,
        std::slice::from_ref(&rescued),
        &database_lines(&stack.upstream, std::slice::from_ref(&rescued)),
    );
    let session = go.session();
    let (download, _) = download_and_verify(&session, &rescue_app).await;
    let built = stack
        .upstream
        .module(&rescued.path, &rescued.version)
        .unwrap();
    assert_eq!(
        downloaded(&download),
        vec![(rescued.path.clone(), built.zip_hash.clone())]
    );
    println!(
        "fallback: {} downloaded and verified in {:?}",
        rescued.path, download.elapsed
    );
    let requests = stack.upstream.requests();
    assert!(
        requests.contains(&"/example.com/fallback/rescued/@v/v1.0.0.zip".to_owned()),
        "{requests:#?}"
    );
    assert!(
        !requests.iter().any(|p| p.contains("cold/")),
        "a module outside the fallback's patterns went to it: {requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publish_shows_in_go_list_through_the_edge_at_once() {
    const MODULE: &str = "example.com/private/notes";
    let Some(stack) = Stack::start("publish-list", binaries!(), &[]).await else {
        return;
    };
    let registry = stack.start_registry("registry").await;
    let mut spec = stack.edge_spec("edge", &[&registry]);
    spec.metadata_ttl_ms = 3_600_000;
    let edge = https_edge(&stack, &mut spec).await;
    let events = "strata_edge_events_total";
    let list_changed = [("kind", "list_changed")];
    registry
        .publish("private", FixtureModule::new(MODULE, "v1.0.0", &[]).zip())
        .await;
    // Let that publish's event land first, so the list cached next is current.
    edge.wait_for_metric(events, &list_changed, 1.0, Duration::from_secs(60))
        .await;
    let go = stack.go_client(&edge, "private/", "go");
    let app = stack.dir().join("lister");
    write_main_module(&app, "example.com/e2e/lister", &[], "");
    let first = go
        .session()
        .run(&app, &["list", "-m", "-versions", MODULE])
        .await;
    first.assert_ok();
    assert_eq!(first.stdout.trim(), format!("{MODULE} v1.0.0"));
    // The edge now holds the list for an hour: only an event can refresh it.
    let list_url = edge.url(&format!("private/{MODULE}/@v/list"));
    let (status, headers, body) = get(edge.client(), &list_url, Some(CI_TOKEN)).await;
    assert_eq!((status, body.as_slice()), (200, b"v1.0.0\n".as_slice()));
    assert_eq!(cache_of(&headers), "hit-memory");
    let applied = edge.metrics().await.sum(events, &list_changed);

    registry
        .publish("private", FixtureModule::new(MODULE, "v1.1.0", &[]).zip())
        .await;
    let published = Instant::now();
    let mut polls = 0;
    let seen = loop {
        polls += 1;
        let out = go
            .session()
            .run(&app, &["list", "-m", "-versions", MODULE])
            .await;
        out.assert_ok();
        if out.stdout.trim() == format!("{MODULE} v1.0.0 v1.1.0") {
            break published.elapsed();
        }
        assert!(
            published.elapsed() < Duration::from_secs(60),
            "v1.1.0 not listed 60 s after the publish (the edge's TTL is 1 h): {}",
            out.text()
        );
    };
    println!(
        "publish → `go list -m -versions` through the edge shows v1.1.0: {seen:?} ({polls} go list runs)"
    );
    // The new list came through the registry's event, not an expired TTL.
    edge.wait_for_metric(
        events,
        &list_changed,
        applied + 1.0,
        Duration::from_secs(60),
    )
    .await;
}

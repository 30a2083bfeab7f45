//! Load on an edge process: with two registry processes (same S3 bucket, same Redis stream),
//! one behind a forwarder adding latency, the edge's calls move to the fast one; and 200
//! clients asking at once for one cold 50 MiB zip share a single fill, each getting every byte
//! right, while the edge's memory stays flat (its peak RSS is printed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use strata_e2e::forwarder::LatencyForwarder;
use strata_e2e::{CI_TOKEN, Stack, binaries};
use strata_testkit::FixtureModule;

const MIB: f64 = 1024.0 * 1024.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn traffic_moves_to_the_faster_of_two_registries() {
    const MODULES: usize = 150;
    const WARM_UP: usize = 30;
    let modules: Vec<FixtureModule> = (0..MODULES)
        .map(|i| FixtureModule::new(&format!("example.com/spread/m{i:03}"), "v1.0.0", &[]))
        .collect();
    let Some(stack) = Stack::start("registry-choice", binaries!(), &modules).await else {
        return;
    };
    let slow = stack.start_registry("registry-slow").await;
    let fast = stack.start_registry("registry-fast").await;
    let forwarder = LatencyForwarder::start(slow.grpc, Duration::from_millis(150)).await;
    // The slow registry comes first in the configuration: the edge starts out preferring it.
    let mut spec = stack.edge_spec("edge", &[&slow, &fast]);
    spec.registries[0].grpc = format!("http://{}", forwarder.addr());
    let edge = stack.start_edge(&spec).await;

    // Distinct artifacts nobody asked for yet: every request is a registry call.
    let urls: Vec<String> = modules
        .iter()
        .flat_map(|m| {
            ["info", "mod"].map(|ext| edge.url(&format!("{}/@v/{}.{ext}", m.path, m.version)))
        })
        .collect();
    let client = edge.client().clone();
    let fetch_all = |urls: Vec<String>| {
        let client = client.clone();
        futures::stream::iter(urls)
            .map(move |url| {
                let client = client.clone();
                async move {
                    let (status, _, body) = strata_e2e::get(&client, &url, Some(CI_TOKEN)).await;
                    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
                }
            })
            .buffer_unordered(4)
            .collect::<Vec<()>>()
    };
    let calls = "strata_edge_upstream_calls_total";
    let started = Instant::now();
    let before = edge.metrics().await;
    fetch_all(urls[..WARM_UP].to_vec()).await;
    let warmed = edge.metrics().await;
    fetch_all(urls[WARM_UP..].to_vec()).await;
    let after = edge.metrics().await;
    let count =
        |later: &strata_e2e::metrics::Metrics,
         earlier: &strata_e2e::metrics::Metrics,
         registry: &str| { later.delta(earlier, calls, &[("registry", registry)]) };
    let (first_slow, first_fast) = (
        count(&warmed, &before, "registry-slow"),
        count(&warmed, &before, "registry-fast"),
    );
    let (later_slow, later_fast) = (
        count(&after, &warmed, "registry-slow"),
        count(&after, &warmed, "registry-fast"),
    );
    println!(
        "{} requests in {:?}; registry calls, first {WARM_UP} requests: slow {first_slow}, fast {first_fast}; \
         remaining {}: slow {later_slow}, fast {later_fast}",
        urls.len(),
        started.elapsed(),
        urls.len() - WARM_UP
    );
    println!("edge /readyz:\n{}", {
        let (_, _, body) = strata_e2e::get(&client, &edge.url("readyz"), None).await;
        String::from_utf8_lossy(&body).into_owned()
    });
    let later = later_slow + later_fast;
    assert!(
        later >= (urls.len() - WARM_UP) as f64,
        "every uncached request is a registry call"
    );
    assert!(
        later_fast >= 0.9 * later,
        "the fast registry got {later_fast} of {later} later calls"
    );
    assert!(
        first_slow >= 1.0,
        "the slow registry, first in the configuration, was tried"
    );
}

/// `len` bytes no compressor can shrink (xorshift64*).
fn incompressible(len: usize, mut state: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_clients_share_one_fill_of_a_cold_50_mib_zip() {
    const CLIENTS: usize = 200;
    const MODULE: &str = "example.com/private/big";
    let Some(stack) = Stack::start("cold-zip-burst", binaries!(), &[]).await else {
        return;
    };
    let registry = stack.start_registry("registry").await;
    let zip = FixtureModule::new(MODULE, "v1.0.0", &[])
        .with_file("blob.bin", incompressible(50 << 20, 0x9E37_79B9_7F4A_7C15))
        .zip();
    let size = zip.len();
    let expected = hex::encode(Sha256::digest(&zip));
    assert!(
        (size as u64) < stack.registry_spec("registry").max_upload_bytes,
        "the zip fits the registry's max_upload_bytes"
    );
    println!("zip: {:.1} MiB, sha256 {expected}", size as f64 / MIB);
    registry.publish("private", zip).await;
    let edge = stack
        .start_edge(&stack.edge_spec("edge", &[&registry]))
        .await;
    let url = edge.url(&format!("private/{MODULE}/@v/v1.0.0.zip"));
    let idle = edge
        .service
        .memory()
        .expect("/proc/<pid>/status of the edge");
    let edge_before = edge.metrics().await;
    let registry_before = registry.metrics().await;

    // 200 clients at once, each hashing its body as it streams (never holding a whole zip).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let response = client.get(&url).bearer_auth(CI_TOKEN).send().await.unwrap();
                let status = response.status().as_u16();
                let cache = strata_e2e::cache_of(response.headers());
                let mut hasher = Sha256::new();
                let mut bytes = 0usize;
                let mut body = response.bytes_stream();
                while let Some(chunk) = body.try_next().await.unwrap() {
                    bytes += chunk.len();
                    hasher.update(&chunk);
                }
                (status, cache, bytes, hex::encode(hasher.finalize()))
            })
        })
        .collect();
    let results = futures::future::join_all(tasks).await;
    let elapsed = started.elapsed();
    let mut sources = std::collections::BTreeMap::<String, usize>::new();
    for (i, result) in results.into_iter().enumerate() {
        let (status, cache, bytes, digest) = result.unwrap();
        assert_eq!(status, 200, "client {i}");
        assert_eq!(bytes, size, "client {i}: body length");
        assert_eq!(digest, expected, "client {i}: SHA-256 of the body");
        *sources.entry(cache).or_default() += 1;
    }
    let peak = edge
        .service
        .memory()
        .expect("/proc/<pid>/status of the edge");
    println!(
        "{CLIENTS} clients × {:.1} MiB in {elapsed:?} ({:.0} MiB/s); X-Strata-Cache: {sources:?}",
        size as f64 / MIB,
        (CLIENTS * size) as f64 / MIB / elapsed.as_secs_f64()
    );
    println!(
        "edge peak RSS before the burst: {:.1} MiB (RSS {:.1} MiB)",
        idle.peak_rss as f64 / MIB,
        idle.rss as f64 / MIB
    );
    println!(
        "edge peak RSS: {:.1} MiB (RSS after the burst {:.1} MiB)",
        peak.peak_rss as f64 / MIB,
        peak.rss as f64 / MIB
    );

    let edge_after = edge.metrics().await;
    let fills = edge_after.delta(&edge_before, "strata_edge_fills_total", &[]);
    let calls = edge_after.delta(&edge_before, "strata_edge_upstream_calls_total", &[]);
    let registry_after = registry.metrics().await;
    let gets = storage_gets(&registry_after) - storage_gets(&registry_before);
    println!("edge: {fills} fill(s), {calls} registry call(s); registry: {gets} storage GETs");
    assert_eq!(fills, 1.0, "one fill for {CLIENTS} clients");
    assert_eq!(
        edge_after.delta(
            &edge_before,
            "strata_edge_fills_total",
            &[("outcome", "ok")]
        ),
        1.0
    );
    assert!(
        gets < (CLIENTS / 4) as f64,
        "{gets} storage reads for {CLIENTS} clients: the zip was not read once per client"
    );
}

/// Object-store reads the registry has made (`_count` of its storage latency histogram).
fn storage_gets(metrics: &strata_e2e::metrics::Metrics) -> f64 {
    let name = "strata_registry_storage_operation_duration_seconds_count";
    assert!(
        !metrics.label_values(name, "operation").is_empty(),
        "the registry exports {name}"
    );
    metrics.sum(name, &[("operation", "get")])
}

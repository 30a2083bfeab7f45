//! `grpc.health.v1` follows readiness like `/readyz`: NOT_SERVING while storage fails, SERVING
//! again once it answers, NOT_SERVING when shutdown begins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use support::config::{PRIVATE, RegistryToml, Repo};
use support::registry::TestRegistry;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const REGISTRY_SERVICE: &str = "strata.registry.v1.Registry";

async fn status(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let answer = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(answer.status).unwrap()
}

/// Polls until both the server and the registry service report `want` (the checks run every
/// couple of seconds).
async fn wait_for(client: &mut HealthClient<Channel>, want: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = status(client, "").await;
        let registry = status(client, REGISTRY_SERVICE).await;
        if all == want && registry == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {all:?} / {registry:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_storage_readiness_and_shutdown() {
    let reg = TestRegistry::start(RegistryToml::new().repo(Repo::local(PRIVATE))).await;
    let running = &reg.running;
    let http = reqwest::Client::new();
    let readyz = |http: reqwest::Client| {
        let url = format!("http://{}/readyz", running.http_addr);
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    let channel = Channel::from_shared(format!("http://{}", running.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = HealthClient::new(channel);
    // Checked before the listener serves: SERVING from the first call.
    assert_eq!(status(&mut client, "").await, ServingStatus::Serving);
    assert_eq!(
        status(&mut client, REGISTRY_SERVICE).await,
        ServingStatus::Serving
    );

    // Storage fails: the probe object's directory becomes a symlink loop, so reading it is an
    // I/O error (ELOOP) rather than "not found" — as a broken mount would be, and unlike a
    // permission change, also when the tests run as root.
    let probe_dir = reg.fs_root.as_ref().unwrap().join("objects/readyz");
    let _ = std::fs::remove_dir_all(&probe_dir);
    std::os::unix::fs::symlink("readyz", &probe_dir).unwrap();
    assert_eq!(readyz(http.clone()).await, 503, "the HTTP check agrees");
    wait_for(&mut client, ServingStatus::NotServing).await;

    // It recovers.
    std::fs::remove_file(&probe_dir).unwrap();
    assert_eq!(readyz(http.clone()).await, 200);
    wait_for(&mut client, ServingStatus::Serving).await;

    // Shutdown: a watcher hears NOT_SERVING while open calls drain.
    let mut watch = client
        .watch(HealthCheckRequest {
            service: REGISTRY_SERVICE.into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);
    reg.shutdown.cancel();
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("a status change after shutdown began")
        .unwrap()
        .unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
}

//! Runs the storage conformance suite against every backend: fs in a temp directory, and S3
//! against a real S3-protocol server (MinIO, installed by `make deps`) started for the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use strata_central_registry::storage::fs::FsStore;
use strata_testkit::s3_server;
use support::{s3, suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs_backend_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsStore::open(dir.path()).expect("open fs store");
    suite::run_all("fs", Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_backend_conforms() {
    if s3_server::skipped() {
        eprintln!("STRATA_SKIP_S3=1: skipping the S3 conformance run");
        return;
    }
    let server = s3_server::S3Server::start().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("S3 server: {:?} at {}", server.flavor(), server.endpoint());
    // A key prefix inside the bucket exercises the prefix mapping on every operation.
    let store = s3::store(&server, "conformance", "tenant/").await;
    suite::run_all("s3", Arc::new(store)).await;

    // Failed and cancelled multipart uploads must have been aborted, not left to a lifecycle
    // rule. Cancelled ones are aborted in the background: allow a moment. (MinIO lists uploads
    // of one exact key only, hence the key list.)
    let client = s3::raw_client(&server);
    let deadline = Instant::now() + Duration::from_secs(10);
    for key in [
        "failed_put_leaves_nothing/large",
        "failed_put_leaves_nothing/existing",
        "cancelled_put_leaves_nothing/large",
    ] {
        let name = format!("tenant/conformance/{key}");
        loop {
            let uploads = client
                .list_multipart_uploads()
                .bucket("conformance")
                .prefix(&name)
                .send()
                .await
                .expect("list multipart uploads");
            if uploads.uploads().is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "multipart uploads left behind under {name}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

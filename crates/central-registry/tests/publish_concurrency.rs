//! Concurrent publishes through the HTTP API, on fs storage and on a real S3-protocol server
//! (MinIO, installed by `make deps`; `STRATA_SKIP_S3=1` skips that run):
//!
//! * 20 distinct versions of one module at once: every one is 201 and in `list` (the version
//!   index's compare-and-swap loses no update);
//! * 20 publishes of one version with different content each: exactly one 201, 19 × 409, and the
//!   stored zip is the winner's bytes with the winner's h1;
//! * the same with identical content.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use futures::future::join_all;
use strata_testkit::s3_server;
use support::config::{CI_TOKEN, Options, PRIVATE, READ_TOKEN};
use support::http::{Reply, TEXT_PLAIN, bearer};
use support::registry::TestRegistry;
use support::zip::{go_sum_hashes, simple_module, zip_h1};

const PUBLISHERS: usize = 20;

/// Publishes all `zips` at once; the replies in the same order.
async fn publish_all(reg: &TestRegistry, zips: &[Vec<u8>]) -> Vec<Reply> {
    let auth = bearer(CI_TOKEN);
    join_all(
        zips.iter()
            .map(|zip| reg.upload(PRIVATE, &auth, zip.clone())),
    )
    .await
}

async fn distinct_versions(reg: &TestRegistry, module: &str) {
    let versions: Vec<String> = (0..PUBLISHERS).map(|i| format!("v1.0.{i}")).collect();
    let zips: Vec<(Vec<u8>, String)> = versions
        .iter()
        .map(|v| simple_module(module, v, v))
        .collect();
    let bodies: Vec<Vec<u8>> = zips.iter().map(|(z, _)| z.clone()).collect();
    let replies = publish_all(reg, &bodies).await;
    for ((reply, version), (_, h1)) in replies.iter().zip(&versions).zip(&zips) {
        assert_eq!(reply.status, 201, "{module}@{version}: {}", reply.text());
        assert_eq!(&go_sum_hashes(&reply.text()).0, h1, "{module}@{version}");
    }
    let r = reg
        .get(
            PRIVATE,
            &format!("{module}/@v/list"),
            &bearer(READ_TOKEN),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let listed: Vec<&str> = text.lines().collect();
    let want: Vec<&str> = versions.iter().map(String::as_str).collect();
    assert_eq!(listed, want, "every version listed, in semver order");
    for (version, (zip, h1)) in versions.iter().zip(&zips) {
        let r = reg
            .get(
                PRIVATE,
                &format!("{module}/@v/{version}.zip"),
                &bearer(READ_TOKEN),
                &[],
            )
            .await;
        assert_eq!((r.status, &r.body), (200, zip), "{module}@{version}.zip");
        assert_eq!(&zip_h1(&r.body), h1);
    }
}

/// 20 publishes of `module@v1.0.0`; `same` makes them all the same bytes.
async fn one_version(reg: &TestRegistry, module: &str, same: bool) {
    let zips: Vec<(Vec<u8>, String)> = (0..PUBLISHERS)
        .map(|i| {
            let flavor = if same {
                "same".to_owned()
            } else {
                format!("publisher {i}")
            };
            simple_module(module, "v1.0.0", &flavor)
        })
        .collect();
    let bodies: Vec<Vec<u8>> = zips.iter().map(|(z, _)| z.clone()).collect();
    let replies = publish_all(reg, &bodies).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let winners: Vec<usize> = (0..PUBLISHERS).filter(|&i| statuses[i] == 201).collect();
    let conflicts = statuses.iter().filter(|&&s| s == 409).count();
    assert_eq!(
        (winners.len(), conflicts),
        (1, PUBLISHERS - 1),
        "{module} (same content: {same}): want one 201 and {} × 409, got {statuses:?}; bodies {:?}",
        PUBLISHERS - 1,
        replies.iter().map(Reply::text).collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status == 409) {
        assert_eq!(reply.header("content-type"), Some(TEXT_PLAIN));
        assert!(reply.text().contains("already exists"), "{}", reply.text());
    }
    let winner = winners[0];
    let (winner_zip, winner_h1) = &zips[winner];
    let returned_h1 = go_sum_hashes(&replies[winner].text()).0;
    assert_eq!(
        &returned_h1, winner_h1,
        "the winner's returned h1 is its zip's"
    );

    // How many publishers got past the early "version taken?" check and stored a blob before
    // losing the index write: a measure of how much the race was exercised (not asserted, it
    // depends on timing).
    let blobs = reg
        .storage_snapshot()
        .await
        .keys()
        .filter(|k| k.contains(&format!("/blobs/{module}/")) && k.ends_with(".zip"))
        .count();
    eprintln!("{module}: {blobs} distinct zip blob(s) stored by the {PUBLISHERS} publishers");

    let auth = bearer(READ_TOKEN);
    let r = reg
        .get(PRIVATE, &format!("{module}/@v/v1.0.0.zip"), &auth, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        zip_h1(&r.body),
        returned_h1,
        "stored zip's h1 = winner's returned h1"
    );
    assert_eq!(&r.body, winner_zip, "stored zip = the winner's bytes");
    assert_eq!(r.header("x-go-checksum"), Some(returned_h1.as_str()));
    let r = reg
        .get(PRIVATE, &format!("{module}/@v/list"), &auth, &[])
        .await;
    assert_eq!(r.text(), "v1.0.0\n");
    let r = reg
        .get(PRIVATE, &format!("{module}/@v/v1.0.0.mod"), &auth, &[])
        .await;
    assert_eq!(
        r.body,
        format!("module {module}\n\ngo 1.21\n").as_bytes(),
        "{module}@v1.0.0.mod"
    );
}

async fn all_cases(reg: &TestRegistry) {
    distinct_versions(reg, "example.com/conc/distinct").await;
    one_version(reg, "example.com/conc/different", false).await;
    one_version(reg, "example.com/conc/identical", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_publishes_on_fs() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    all_cases(&reg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_publishes_on_s3() {
    if s3_server::skipped() {
        eprintln!("STRATA_SKIP_S3=1: skipping the S3 concurrency run");
        return;
    }
    let reg = TestRegistry::start_s3("registry", Options::default()).await;
    all_cases(&reg).await;
}

//! `Range` requests on the registry's GOPROXY route, on fs storage and on a real S3-protocol
//! server (MinIO; `STRATA_SKIP_S3=1` skips that run): an inverted range is ignored (a full 200,
//! RFC 9110 §14.1.1) rather than handed to the backend, a last byte position up to `u64::MAX`
//! means "to the end", and a range past the end is a 416 — never a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use strata_testkit::s3_server;
use support::config::{CI_TOKEN, Options, PRIVATE};
use support::http::bearer;
use support::registry::TestRegistry;
use support::zip::simple_module;

/// A `Range` value, the status it gets, and for a 206 the half-open span it serves.
type Case = (&'static str, u16, Option<(usize, usize)>);

async fn check_ranges(reg: &TestRegistry) {
    let (zip, _) = simple_module("example.com/ranges", "v1.0.0", "r");
    let auth = bearer(CI_TOKEN);
    assert_eq!(reg.upload(PRIVATE, &auth, zip.clone()).await.status, 201);
    let path = "example.com/ranges/@v/v1.0.0.zip";
    let size = zip.len();
    let cases: [Case; 8] = [
        ("bytes=5-2", 200, None),
        ("bytes=0-18446744073709551615", 200, None),
        ("bytes=3-18446744073709551615", 206, Some((3, size))),
        ("bytes=0-4", 206, Some((0, 5))),
        ("bytes=-3", 206, Some((size - 3, size))),
        ("bytes=abc", 200, None),
        ("bytes=18446744073709551615-", 416, None),
        ("bytes=99999999-99999999", 416, None),
    ];
    for (range, status, part) in cases {
        let reply = reg.get(PRIVATE, path, &auth, &[("range", range)]).await;
        assert_eq!(reply.status, status, "{range}: {}", reply.text());
        match (status, part) {
            (200, _) => assert_eq!(reply.body, zip, "{range}"),
            (206, Some((start, end))) => {
                assert_eq!(reply.body, zip[start..end], "{range}");
                assert_eq!(
                    reply.header("content-range"),
                    Some(format!("bytes {start}-{}/{size}", end - 1).as_str()),
                    "{range}"
                );
            }
            _ => assert_eq!(
                reply.header("content-range"),
                Some(format!("bytes */{size}").as_str()),
                "{range}"
            ),
        }
    }
}

#[tokio::test]
async fn ranges_on_fs() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    check_ranges(&reg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_on_s3() {
    if s3_server::skipped() {
        eprintln!("STRATA_SKIP_S3=1: skipping the S3 range run");
        return;
    }
    let reg = TestRegistry::start_s3("ranges", Options::default()).await;
    check_ranges(&reg).await;
}

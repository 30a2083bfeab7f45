//! The fixture upstream's protocol answers, fault switches and request log, seen over HTTP.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_testkit::{FixtureModule, FixtureUpstream, Tamper, TestSumDb};

fn fixtures() -> Vec<FixtureModule> {
    vec![
        FixtureModule::new("example.com/Fixture/Upper", "v1.0.0", &[]),
        FixtureModule::new("example.com/Fixture/Upper", "v1.2.0", &[]),
        FixtureModule::new("example.com/plain", "v0.1.0", &[]),
    ]
}

async fn get(url: &str) -> (u16, Vec<u8>) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

async fn get_owned(url: String) -> (u16, Vec<u8>) {
    get(&url).await
}

#[tokio::test]
async fn serves_proxy_layout_and_sumdb() {
    let db = Arc::new(TestSumDb::new("sum.strata.test"));
    let up = FixtureUpstream::start(&fixtures(), Some(db.clone())).await;
    let base = up.url();
    let m = up.module("example.com/Fixture/Upper", "v1.2.0").unwrap();

    let (s, body) = get(&format!("{base}/example.com/!fixture/!upper/@v/list")).await;
    assert_eq!((s, body.as_slice()), (200, &b"v1.0.0\nv1.2.0\n"[..]));
    let (s, body) = get(&format!("{base}/example.com/%21fixture/%21upper/@latest")).await;
    assert_eq!((s, body), (200, m.info.clone()));
    let (_, body) = get(&format!("{base}/example.com/!fixture/!upper/@v/v1.2.0.mod")).await;
    assert_eq!(body, m.go_mod);
    let (_, body) = get(&format!("{base}/example.com/!fixture/!upper/@v/v1.2.0.zip")).await;
    assert_eq!(body, m.zip);
    assert_eq!(
        get(&format!("{base}/example.com/Fixture/Upper/@v/list"))
            .await
            .0,
        404
    );
    assert_eq!(
        get(&format!("{base}/example.com/plain/@v/v9.0.0.info"))
            .await
            .0,
        404
    );

    let (s, body) = get(&format!(
        "{base}/sumdb/sum.strata.test/lookup/example.com/!fixture/!upper@v1.2.0"
    ))
    .await;
    assert_eq!(s, 200);
    assert!(String::from_utf8(body).unwrap().contains(&m.go_sum));
    assert_eq!(
        get(&format!("{base}/sumdb/sum.strata.test/supported"))
            .await
            .0,
        200
    );
    assert_eq!(
        get(&format!("{base}/sumdb/other.test/supported")).await.0,
        404
    );
    assert_eq!(db.size(), 3);

    assert_eq!(
        up.request_count("/example.com/!fixture/!upper/@v/v1.2.0.zip"),
        1
    );
    assert_eq!(up.request_count("/example.com/!fixture/!upper/@latest"), 1);
    up.clear_requests();
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn fault_switches() {
    let up = FixtureUpstream::start(&fixtures(), None).await;
    let list = format!("{}/example.com/plain/@v/list", up.url());
    let zip_url = format!("{}/example.com/plain/@v/v0.1.0.zip", up.url());
    let m = up.module("example.com/plain", "v0.1.0").unwrap().clone();

    up.set_fail_status(Some(503));
    assert_eq!(get(&list).await.0, 503);
    up.set_fail_status(None);
    assert_eq!(get(&list).await.0, 200);

    up.set_delay(Some(Duration::from_millis(300)));
    let start = Instant::now();
    assert_eq!(get(&list).await.0, 200);
    assert!(start.elapsed() >= Duration::from_millis(300));
    up.set_delay(None);

    up.set_hang(true);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = client.get(&list).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // A request hanging when the switch goes off is then answered.
    let pending = tokio::spawn(get_owned(list.clone()));
    while up.request_count("/example.com/plain/@v/list") < 5 {
        tokio::task::yield_now().await;
    }
    up.set_hang(false);
    assert_eq!(pending.await.unwrap().0, 200);

    up.set_tampered("example.com/plain", Some(Tamper::Content));
    let (_, body) = get(&zip_url).await;
    assert_eq!(body, m.tampered_zip);
    up.set_tampered("example.com/plain", Some(Tamper::RawByte));
    let (_, body) = get(&zip_url).await;
    assert_eq!(body.len(), m.zip.len());
    assert_eq!(body.iter().zip(&m.zip).filter(|(a, b)| a != b).count(), 1);
    up.clear_faults();
    assert_eq!(get(&zip_url).await.1, m.zip);
    assert_eq!(up.request_count("/example.com/plain/@v/list"), 5);
}

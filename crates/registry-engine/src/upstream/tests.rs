use std::time::Duration;

use futures::TryStreamExt;
use strata_testkit::modules::FixtureModule;
use strata_testkit::upstream::FixtureUpstream;

use super::*;

fn quick(url: &str) -> UpstreamConfig {
    UpstreamConfig {
        retry_initial_ms: 1,
        read_timeout_ms: 300,
        ..UpstreamConfig::with_url(url)
    }
}

async fn fixture() -> FixtureUpstream {
    FixtureUpstream::start(&[FixtureModule::new("example.com/a", "v1.0.0", &[])], None).await
}

#[tokio::test]
async fn fetches_bytes_and_streams() {
    let up = fixture().await;
    let client = Upstream::new(&quick(&up.url())).unwrap();
    let list = client
        .get_bytes("/example.com/a/@v/list", 1024)
        .await
        .unwrap();
    assert_eq!(&list[..], b"v1.0.0\n");
    let body = client
        .get_stream("/example.com/a/@v/v1.0.0.zip")
        .await
        .unwrap();
    let expected = up.module("example.com/a", "v1.0.0").unwrap().zip.clone();
    assert_eq!(body.content_length, Some(expected.len() as u64));
    let got: Vec<Bytes> = body.stream.try_collect().await.unwrap();
    assert_eq!(got.concat(), expected);
    let e = client
        .get_bytes("/example.com/a/@v/list", 3)
        .await
        .unwrap_err();
    assert!(matches!(e, UpstreamError::TooLarge { .. }), "{e}");
}

#[tokio::test]
async fn not_found_is_final_and_failures_are_retried() {
    let up = fixture().await;
    let client = Upstream::new(&quick(&up.url())).unwrap();
    let e = client
        .get_bytes("/example.com/b/@v/list", 1024)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(up.request_count("/example.com/b/@v/list"), 1);

    up.set_fail_status(Some(503));
    let e = client
        .get_bytes("/example.com/a/@v/list", 1024)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UpstreamUnavailable);
    assert!(
        e.to_string().contains("503") && e.to_string().contains("injected failure"),
        "{e}"
    );
    assert_eq!(up.request_count("/example.com/a/@v/list"), 3);

    up.clear_requests();
    up.set_fail_status(Some(429));
    assert!(
        client
            .get_stream("/example.com/a/@v/v1.0.0.zip")
            .await
            .is_err()
    );
    assert_eq!(up.request_count("/example.com/a/@v/v1.0.0.zip"), 3);

    up.clear_requests();
    up.set_fail_status(Some(403));
    let e = client
        .get_bytes("/example.com/a/@v/list", 1024)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("403"), "{e}");
    assert_eq!(
        up.request_count("/example.com/a/@v/list"),
        1,
        "4xx other than 429 is final"
    );
}

#[tokio::test]
async fn hangs_time_out() {
    let up = fixture().await;
    let client = Upstream::new(&UpstreamConfig {
        attempts: 2,
        ..quick(&up.url())
    })
    .unwrap();
    up.set_hang(true);
    let e = client
        .get_bytes("/example.com/a/@v/list", 1024)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UpstreamTimeout, "{e}");
    assert_eq!(up.request_count("/example.com/a/@v/list"), 2);
    up.set_hang(false);
}

#[tokio::test]
async fn unreachable_is_a_transport_error() {
    // A port nothing listens on: bind, take the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Upstream::new(&quick(&format!("http://127.0.0.1:{port}"))).unwrap();
    let e = client.get_bytes("/x/@v/list", 10).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Transport { .. }), "{e}");
    assert_eq!(e.kind(), ErrorKind::UpstreamUnavailable);
}

#[tokio::test]
async fn downloads_and_metadata_have_separate_bounded_pools() {
    let up = fixture().await;
    let client = Upstream::new(&UpstreamConfig {
        max_concurrency: 1,
        max_zip_concurrency: 2,
        ..quick(&up.url())
    })
    .unwrap();
    let zip = "/example.com/a/@v/v1.0.0.zip";
    // Two open downloads hold both download slots…
    let a = client.get_stream(zip).await.unwrap();
    let _b = client.get_stream(zip).await.unwrap();
    let third = tokio::spawn({
        let client = client.clone();
        async move { client.get_stream(zip).await.map(|_| ()) }
    });
    // …and metadata requests still go through (one at a time, their own pool), many times
    // over while the third download waits.
    for _ in 0..5 {
        let list = tokio::time::timeout(
            Duration::from_secs(5),
            client.get_bytes("/example.com/a/@v/list", 1024),
        )
        .await
        .expect("list must not wait for download slots")
        .unwrap();
        assert_eq!(&list[..], b"v1.0.0\n");
    }
    assert!(
        !third.is_finished(),
        "the third download must wait for a slot"
    );
    assert_eq!(up.request_count(zip), 2, "the third download was sent");
    drop(a);
    third.await.unwrap().unwrap();
    assert_eq!(up.request_count(zip), 3);
}

#[tokio::test]
async fn metadata_pool_is_bounded() {
    let up = fixture().await;
    up.set_delay(Some(Duration::from_millis(300)));
    let client = Upstream::new(&UpstreamConfig {
        max_concurrency: 1,
        read_timeout_ms: 5_000,
        ..quick(&up.url())
    })
    .unwrap();
    let list = "/example.com/a/@v/list";
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.get_bytes(list, 1024).await }
    });
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.get_bytes(list, 1024).await }
    });
    // Poll until one request is at the upstream; the other must not follow while it is there.
    while up.request_count(list) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(up.request_count(list), 1, "one metadata slot, one request");
    assert!(first.await.unwrap().is_ok());
    assert!(second.await.unwrap().is_ok());
    assert_eq!(up.request_count(list), 2);
}

#[tokio::test]
async fn bad_request_is_not_found_and_final() {
    let up = fixture().await;
    let client = Upstream::new(&quick(&up.url())).unwrap();
    up.set_fail_status(Some(400));
    let e = client
        .get_bytes("/example.com/a/@v/list", 1024)
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("(400)"), "{e}");
    assert_eq!(up.request_count("/example.com/a/@v/list"), 1, "not retried");
    let e = client
        .get_stream("/example.com/a/@v/v1.0.0.zip")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert_eq!(up.request_count("/example.com/a/@v/v1.0.0.zip"), 1);
    for status in [404, 410] {
        up.set_fail_status(Some(status));
        let e = client
            .get_bytes("/example.com/a/@v/list", 1024)
            .await
            .unwrap_err();
        assert!(e.is_not_found(), "{status}: {e}");
    }
    for status in [401, 403] {
        up.set_fail_status(Some(status));
        let e = client
            .get_bytes("/example.com/a/@v/list", 1024)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UpstreamUnavailable, "{status}: {e}");
    }
}

#[tokio::test]
async fn credentials_in_the_url_work_but_are_never_shown() {
    let up = fixture().await;
    let url = format!("http://strata:s3cret@{}", up.addr());
    let client = Upstream::new(&quick(&url)).unwrap();
    assert_eq!(client.base(), format!("http://***@{}", up.addr()));
    assert!(!format!("{client:?}").contains("s3cret"), "{client:?}");
    let list = client
        .get_bytes("/example.com/a/@v/list", 1024)
        .await
        .unwrap();
    assert_eq!(&list[..], b"v1.0.0\n");
    for status in [400, 403, 503] {
        up.set_fail_status(Some(status));
        let e = client
            .get_bytes("/example.com/a/@v/list", 1024)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("***@") && !e.to_string().contains("s3cret"),
            "{e}"
        );
    }
    up.set_fail_status(None);
    // Transport failures quote reqwest's own message, which must not carry the URL's secret.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Upstream::new(&quick(&format!("http://strata:s3cret@127.0.0.1:{port}"))).unwrap();
    let e = client.get_bytes("/x/@v/list", 10).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Transport { .. }), "{e}");
    assert!(!format!("{e} {e:?}").contains("s3cret"), "{e:?}");
}

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
async fn concurrency_is_bounded() {
    let up = fixture().await;
    up.set_delay(Some(Duration::from_millis(100)));
    let client = Upstream::new(&UpstreamConfig {
        max_concurrency: 2,
        ..quick(&up.url())
    })
    .unwrap();
    // Two streams hold both permits; a third request waits until one is dropped.
    let a = client.get_stream("/example.com/a/@v/list").await.unwrap();
    let _b = client.get_stream("/example.com/a/@v/list").await.unwrap();
    let third = tokio::spawn({
        let client = client.clone();
        async move { client.get_bytes("/example.com/a/@v/list", 1024).await }
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(
        !third.is_finished(),
        "the third request must wait for a permit"
    );
    drop(a);
    assert!(third.await.unwrap().is_ok());
}

//! The fixture upstream's bandwidth limit: zip bodies paced in timed chunks with their
//! Content-Length, progress visible while they go out, other answers untouched.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use strata_testkit::{FixtureModule, FixtureUpstream};

/// Bytes that deflate cannot shrink (xorshift), so the zip is about as large as the file.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn rate_limited_zips_go_out_in_chunks_with_their_length() {
    let module =
        FixtureModule::new("example.com/slow", "v1.0.0", &[]).with_file("blob.bin", noise(600_000));
    let up = FixtureUpstream::start(&[module], None).await;
    let zip = up.module("example.com/slow", "v1.0.0").unwrap().zip.clone();
    let url = format!("{}/example.com/slow/@v/v1.0.0.zip", up.url());

    // Unlimited: the whole body at once, counted when the response is made.
    let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), zip.as_slice());
    assert_eq!(up.zip_bytes_sent(), zip.len() as u64);

    // 1 MB/s: about 0.6 s, the length announced up front, the first chunk while most of the
    // body has not been sent yet.
    up.set_rate(Some(1_000_000));
    let before = up.zip_bytes_sent();
    let mut response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.content_length(), Some(zip.len() as u64));
    let mut got = response.chunk().await.unwrap().unwrap().to_vec();
    let sent_at_first_chunk = up.zip_bytes_sent() - before;
    assert!(
        sent_at_first_chunk < zip.len() as u64 / 2,
        "{sent_at_first_chunk} of {} bytes were sent before the first chunk arrived",
        zip.len()
    );
    while let Some(chunk) = response.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, zip);
    assert_eq!(up.zip_bytes_sent() - before, zip.len() as u64);

    // Back to unlimited.
    up.set_rate(None);
    let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
    assert_eq!(body.as_ref(), zip.as_slice());
}

//! The GOPROXY routes (`src/http/goproxy.rs`): published versions served with their hashes,
//! validators, ranges and cache policy.

use strata_core::protocol::{CacheClass, private_cache_control};

use super::publish::publish_ok;
use super::reply::Failures;
use crate::support::config::{CI_TOKEN, Options, PRIVATE, READ_TOKEN};
use crate::support::http::{TEXT_PLAIN, bearer};
use crate::support::registry::TestRegistry;
use crate::support::zip::{module_zip, simple_module, zip_h1};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goproxy_serves_published_versions() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let module = "example.com/Acme/Lib";
    let escaped = "example.com/!acme/!lib";
    let go_mod = format!("module {module}\n\ngo 1.21\n");
    let mut zips = Vec::new();
    for (i, version) in ["v1.0.0", "v1.1.0", "v1.2.0-pre"].into_iter().enumerate() {
        let code = format!("package lib\n\nconst N = {i}\n");
        let (zip, _) = module_zip(
            module,
            version,
            &[("go.mod", go_mod.as_bytes()), ("lib.go", code.as_bytes())],
        );
        publish_ok(&reg, PRIVATE, module, version, &zip, go_mod.as_bytes()).await;
        zips.push(zip);
    }
    let zip = &zips[0];
    let auth = bearer(READ_TOKEN);
    // `private` has no anonymous read: its answers are for their reader only.
    let immutable = private_cache_control(CacheClass::Immutable.cache_control());
    let mutable = private_cache_control(CacheClass::Mutable.cache_control());

    // list
    let r = reg
        .get(PRIVATE, &format!("{escaped}/@v/list"), &auth, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "v1.0.0\nv1.1.0\nv1.2.0-pre\n");
    assert_eq!(r.header("content-type"), Some(TEXT_PLAIN));
    assert_eq!(r.header("cache-control"), Some(mutable.as_str()));

    // @latest: the highest release, not the newer pre-release.
    let r = reg
        .get(PRIVATE, &format!("{escaped}/@latest"), &auth, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some(mutable.as_str()));
    let latest: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(latest["Version"], "v1.1.0");

    // .info
    let r = reg
        .get(PRIVATE, &format!("{escaped}/@v/v1.0.0.info"), &auth, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("cache-control"), Some(immutable.as_str()));
    let info: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(info["Version"], "v1.0.0");
    let time = info["Time"].as_str().expect("Time is a string");
    assert!(
        time.len() >= 20 && time.ends_with('Z') && time.contains('T'),
        "RFC 3339 UTC time: {time:?}"
    );

    // .mod
    let r = reg
        .get(PRIVATE, &format!("{escaped}/@v/v1.0.0.mod"), &auth, &[])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, go_mod.as_bytes());
    assert_eq!(r.header("content-type"), Some(TEXT_PLAIN));
    assert_eq!(r.header("cache-control"), Some(immutable.as_str()));
    assert!(
        r.header("etag")
            .is_some_and(|e| e.starts_with('"') && e.ends_with('"'))
    );
    let mod_etag = r.header("etag").unwrap().to_owned();
    let r = reg
        .get(
            PRIVATE,
            &format!("{escaped}/@v/v1.0.0.mod"),
            &auth,
            &[("if-none-match", &mod_etag)],
        )
        .await;
    assert_eq!(r.status, 304);

    // .zip
    let zip_path = format!("{escaped}/@v/v1.0.0.zip");
    let r = reg.get(PRIVATE, &zip_path, &auth, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body, zip, "served zip bytes");
    assert_eq!(zip_h1(&r.body), zip_h1(zip));
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(r.header("cache-control"), Some(immutable.as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(
        r.header("content-length"),
        Some(zip.len().to_string().as_str())
    );
    assert_eq!(r.header("x-go-checksum"), Some(zip_h1(zip).as_str()));
    let etag = r.header("etag").expect("zip etag").to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag != mod_etag,
        "{etag}"
    );

    // HEAD: the same headers, no body.
    let r = reg.head(PRIVATE, &zip_path, &auth).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        r.header("content-length"),
        Some(zip.len().to_string().as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/zip"));
    assert_eq!(r.header("cache-control"), Some(immutable.as_str()));
    let r = reg
        .head(PRIVATE, &format!("{escaped}/@v/list"), &auth)
        .await;
    assert_eq!((r.status, r.body.is_empty()), (200, true));
    assert_eq!(r.header("cache-control"), Some(mutable.as_str()));

    // If-None-Match → 304 with the validator and no body.
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {etag}");
    for value in [etag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let r = reg
            .get(PRIVATE, &zip_path, &auth, &[("if-none-match", value)])
            .await;
        assert_eq!(r.status, 304, "If-None-Match: {value}");
        assert!(r.body.is_empty());
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("cache-control"), Some(immutable.as_str()));
    }
    let r = reg
        .get(
            PRIVATE,
            &zip_path,
            &auth,
            &[("if-none-match", "\"something-else\"")],
        )
        .await;
    assert_eq!((r.status, &r.body), (200, zip));

    // Range → 206 with Content-Range.
    let size = zip.len();
    for (range, start, end) in [
        ("bytes=0-99".to_owned(), 0, 100),
        ("bytes=-10".to_owned(), size - 10, size),
        (format!("bytes={}-", size - 7), size - 7, size),
        (format!("bytes=5-{}", size + 1000), 5, size),
    ] {
        let r = reg
            .get(PRIVATE, &zip_path, &auth, &[("range", &range)])
            .await;
        assert_eq!(r.status, 206, "Range: {range}");
        assert_eq!(r.body, &zip[start..end], "Range: {range}");
        let want = format!("bytes {start}-{}/{size}", end - 1);
        assert_eq!(
            r.header("content-range"),
            Some(want.as_str()),
            "Range: {range}"
        );
        assert_eq!(
            r.header("content-length"),
            Some((end - start).to_string().as_str())
        );
        assert_eq!(r.header("etag"), Some(etag.as_str()));
    }
    // Whole body for what a server may ignore: several ranges, other units, ranges on .mod.
    for range in ["bytes=0-1,5-6", "items=0-1"] {
        let r = reg
            .get(PRIVATE, &zip_path, &auth, &[("range", range)])
            .await;
        assert_eq!((r.status, &r.body), (200, zip), "Range: {range}");
    }
    let r = reg
        .get(
            PRIVATE,
            &format!("{escaped}/@v/v1.0.0.mod"),
            &auth,
            &[("range", "bytes=0-3")],
        )
        .await;
    assert_eq!((r.status, r.body.as_slice()), (200, go_mod.as_bytes()));

    // Not found, with reasons.
    let mut f = Failures::default();
    for (label, path, reason) in [
        (
            "unknown version .info",
            format!("{escaped}/@v/v1.9.9.info"),
            "not found",
        ),
        (
            "unknown version .zip",
            format!("{escaped}/@v/v1.9.9.zip"),
            "not found",
        ),
        (
            "unknown module @latest",
            "example.com/nothing/@latest".to_owned(),
            "not found",
        ),
        (
            "non-canonical query",
            format!("{escaped}/@v/master.info"),
            "canonical",
        ),
    ] {
        f.refused(
            &reg,
            label,
            reg.get(PRIVATE, &path, &auth, &[]),
            404,
            &[reason],
        )
        .await;
    }
    f.finish();
}

/// A range that selects nothing: RFC 9110 §15.5.17 says 416 with `Content-Range: bytes */SIZE`
/// (and nothing about the storage layout in the body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsatisfiable_range_is_416() {
    let reg = TestRegistry::start_fs(Options::default()).await;
    let (zip, _) = simple_module("example.com/m", "v1.0.0", "r");
    let r = reg.upload(PRIVATE, &bearer(CI_TOKEN), zip.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let size = zip.len();
    let range = format!("bytes={}-", size + 10);
    let r = reg
        .get(
            PRIVATE,
            "example.com/m/@v/v1.0.0.zip",
            &bearer(READ_TOKEN),
            &[("range", &range)],
        )
        .await;
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some(format!("bytes */{size}").as_str())),
        "Range: {range} on a {size}-byte zip; body {:?}",
        r.text()
    );
}

//! The proxy (`/sumdb/<name>/…`): protocol answers, what reaches the database, caching, and
//! that nothing unverified is served or kept.

use strata_core::sumdb::Tile;

use super::*;
use crate::sumdb::proxy::{BINARY, TEXT};
use crate::sumdb::tiles::authenticate;

/// The body the database itself serves at `path`.
async fn upstream_body(s: &Setup, path: &str) -> Vec<u8> {
    let r = reqwest::get(format!("{}/sumdb/{NAME}{path}", s.up.url()))
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.bytes().await.unwrap().to_vec()
}

fn upstream_path(path: &str) -> String {
    format!("/sumdb/{NAME}{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supported_and_malformed_paths_stay_local() {
    let s = Setup::start(2, 10, 2, 0).await;
    let service = s.service();
    let reply = service.proxy("/supported").await.unwrap();
    assert!(reply.body.is_empty());
    assert_eq!(reply.content_type, TEXT);
    for bad in [
        "",
        "/",
        "/nope",
        "/latest/x",
        "/lookup/example.com/m",
        "/lookup/example.com/Upper@v1.0.0",
        "/lookup/example.com/m@1.0.0",
        "/lookup/example.com/m@v1.0.0/go.mod",
        "/tile/2/0/1",
        "/tile/2/0/000.p/4",
        "/tile/2/-1/000",
        "/tile/20/0/000",
        "/tile/2/0/../000",
        "/../../etc/passwd",
        "/lookup/%2e%2e/x@v1.0.0",
    ] {
        let err = service.proxy(bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
    }
    assert_eq!(s.up.requests(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiles_are_authenticated_cached_and_served_once() {
    let s = Setup::start(2, 11, 3, 20).await; // 23 records
    let service = s.service();
    let paths = [
        "/tile/2/0/000",
        "/tile/2/0/005.p/3",
        "/tile/2/1/000",
        "/tile/2/1/001.p/1",
        "/tile/2/2/000.p/1",
        "/tile/2/data/001",
        "/tile/2/data/005.p/3",
    ];
    for path in paths {
        let want = upstream_body(&s, path).await;
        s.up.clear_requests();
        let first = service.proxy(path).await.unwrap();
        assert_eq!(first.body, want, "{path}");
        assert_eq!(first.content_type, BINARY);
        assert_eq!(first.cache_control, "public, max-age=31536000, immutable");
        let fetched = s.up.request_count(&upstream_path(path));
        assert!(fetched <= 1, "{path}: {:?}", s.up.requests());
        let second = service.proxy(path).await.unwrap();
        assert_eq!(second, first);
        assert_eq!(s.up.request_count(&upstream_path(path)), fetched, "{path}");
    }

    // After a restart every tile comes from the store; a partial tile from its full tile.
    let mut want = Vec::new();
    for path in paths {
        want.push(upstream_body(&s, path).await);
    }
    let full_000 = upstream_body(&s, "/tile/2/0/000").await;
    s.up.clear_requests();
    let restarted = s.service();
    for (path, want) in paths.iter().zip(&want) {
        assert_eq!(restarted.proxy(path).await.unwrap().body, want, "{path}");
    }
    let prefix = restarted.proxy("/tile/2/0/000.p/2").await.unwrap();
    assert_eq!(prefix.body, full_000[..64]);
    let prefix = restarted.proxy("/tile/2/data/001.p/1").await.unwrap();
    assert!(
        prefix
            .body
            .starts_with(b"example.com/extra/m4 v1.0.0 h1:zip4=\n")
    );
    assert!(prefix.body.ends_with(b"h1:mod4=\n\n"));
    assert_eq!(s.up.requests(), Vec::<String>::new());

    // Beyond the tree: the database has nothing.
    let err = service.proxy("/tile/2/0/005").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = service.proxy("/tile/2/0/009").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_tiles_do_not_authenticate() {
    let s = Setup::start(2, 12, 3, 9).await; // 12 records
    let upstream = Upstream::new(&UpstreamConfig::with_url(format!(
        "{}/sumdb/{NAME}",
        s.up.url()
    )))
    .unwrap();
    let ops = Arc::new(StoreOps::new(NAME, upstream, s.store.clone()).unwrap());
    let tree = s.db.tree();
    for path in ["/tile/2/0/001", "/tile/2/1/000.p/3", "/tile/2/data/002"] {
        let tile = Tile::parse_path(&path[1..]).unwrap();
        let good = upstream_body(&s, path).await;
        let mut bad = good.clone();
        bad[5] ^= 1;
        let ops = ops.clone();
        tokio::task::spawn_blocking(move || {
            assert!(authenticate(&ops, tree, &tile, &good).is_ok(), "{path}");
            assert!(authenticate(&ops, tree, &tile, &bad).is_err(), "{path}");
            let short = &good[..good.len() - 1];
            assert!(authenticate(&ops, tree, &tile, short).is_err(), "{path}");
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forked_database_is_not_served() {
    let first = Setup::start(2, 13, 2, 5).await;
    let note = first.service().proxy("/latest").await.unwrap();
    assert_eq!(note.body, first.db.latest_note());

    let forked = Arc::new(TestSumDb::from_seed(NAME, &[13; 32]).with_tile_height(2));
    forked.add(
        "example.com/other",
        "v1.0.0",
        &extra_record("example.com/other", 1),
    );
    let Setup { dir, store, .. } = first;
    let second = Setup::start_with(forked, dir, store, 2, 5).await;
    let service = second.service();
    // Proving the stored head needs tiles, which the fork serves inconsistently.
    for path in [
        "/tile/2/0/000",
        "/latest",
        "/lookup/example.com/other@v1.0.0",
    ] {
        let err = service.proxy(path).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IntegrityViolation, "{path}: {err}");
    }
    assert!(
        second
            .stored(&format!("sumdb/{NAME}/tile/2/0/000"))
            .await
            .is_none()
    );
    assert_eq!(
        second
            .stored(&format!("sumdb/{NAME}/latest"))
            .await
            .unwrap(),
        note.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latest_is_verified_and_cached_briefly() {
    let s = Setup::start(2, 14, 2, 5).await;
    let service = s.service();
    let first = service.proxy("/latest").await.unwrap();
    assert_eq!(first.body, s.db.latest_note());
    assert_eq!(first.content_type, TEXT);
    assert_eq!(first.cache_control, "public, max-age=10");
    s.db.add(
        "example.com/new",
        "v1.0.0",
        &extra_record("example.com/new", 1),
    );
    assert_eq!(service.proxy("/latest").await.unwrap(), first);
    assert_eq!(s.up.request_count(&upstream_path("/latest")), 1);

    // Without a TTL every request asks the database; the newer head is checked for consistency
    // with the persisted one before it is served.
    let mut config = s.config();
    config.latest_ttl_secs = 0;
    let uncached = ChecksumDb::new(&config, s.store.clone()).unwrap();
    for _ in 0..2 {
        let reply = uncached.proxy("/latest").await.unwrap();
        assert_eq!(reply.body, s.db.latest_note());
        assert_eq!(reply.cache_control, "no-cache");
    }
    assert_eq!(s.up.request_count(&upstream_path("/latest")), 3);
    assert_eq!(
        s.stored(&format!("sumdb/{NAME}/latest")).await.unwrap(),
        s.db.latest_note()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_verified_then_served_from_cache() {
    let s = Setup::start(2, 15, 3, 6).await;
    let path = "/lookup/example.com/!team0/mod@v1.0.0";
    let want = upstream_body(&s, path).await;
    s.up.clear_requests();
    let service = s.service();
    let reply = service.proxy(path).await.unwrap();
    assert_eq!(reply.body, want);
    assert_eq!(reply.content_type, TEXT);
    assert!(reply.cache_control.starts_with("public, max-age="));
    // The go command escapes `!` as `%21`.
    let again = service
        .proxy("/lookup/example.com/%21team0/mod@v1.0.0")
        .await
        .unwrap();
    assert_eq!(again.body, want);
    assert_eq!(s.up.request_count(&upstream_path(path)), 1);
    // The proxied lookup moved the timeline: the verified head is persisted.
    assert_eq!(
        s.stored(&format!("sumdb/{NAME}/latest")).await.unwrap(),
        s.db.latest_note()
    );
}

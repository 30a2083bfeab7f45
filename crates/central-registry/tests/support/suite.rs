//! The storage conformance suite (after athens' storage compliance tests): every case runs
//! against any `Arc<dyn ObjectStore>`, under its own key prefix. [`run_all`] runs every case,
//! reports each, and fails with the list of failed cases.

use std::{
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt, future::BoxFuture, stream};
use sha2::{Digest, Sha256};
use strata_central_registry::storage::{
    ByteRange, ByteStream, KeyPrefix, ObjectKey, ObjectStore, StorageError, body_from_bytes,
    read_body,
};

use super::cases_concurrency;

/// A store under test.
pub type Store = Arc<dyn ObjectStore>;

/// One case: the store and a key prefix of its own (ending in `/`).
type Case = fn(Store, String) -> BoxFuture<'static, ()>;

/// Size of the "large" object: several 8 MiB parts on S3 plus an odd tail.
pub const LARGE: u64 = 20 * 1024 * 1024 + 12_345;

/// Runs every case against `store`; panics listing the failures.
pub async fn run_all(backend: &str, store: Store) {
    let cases: &[(&str, Case)] = &[
        ("round_trip_empty_small_large", |s, p| {
            round_trip(s, p).boxed()
        }),
        ("range_reads", |s, p| range_reads(s, p).boxed()),
        ("head_and_etag", |s, p| head_and_etag(s, p).boxed()),
        ("not_found", |s, p| not_found(s, p).boxed()),
        ("create_only", |s, p| create_only(s, p).boxed()),
        ("compare_and_swap", |s, p| compare_and_swap(s, p).boxed()),
        ("concurrent_cas_counter", |s, p| {
            cases_concurrency::cas_counter(s, p).boxed()
        }),
        ("concurrent_create_only", |s, p| {
            cases_concurrency::create_only_race(s, p).boxed()
        }),
        ("delete", |s, p| delete(s, p).boxed()),
        ("list_by_prefix", |s, p| list_by_prefix(s, p).boxed()),
        ("copy", |s, p| copy(s, p).boxed()),
        ("failed_put_leaves_nothing", |s, p| {
            cases_concurrency::failed_put(s, p).boxed()
        }),
        ("cancelled_put_leaves_nothing", |s, p| {
            cases_concurrency::cancelled_put(s, p).boxed()
        }),
    ];
    let mut failed = Vec::new();
    for (name, case) in cases {
        let started = Instant::now();
        let outcome = AssertUnwindSafe(case(store.clone(), format!("conformance/{name}/")))
            .catch_unwind()
            .await;
        let elapsed = started.elapsed();
        match outcome {
            Ok(()) => eprintln!("[{backend}] {name}: ok ({elapsed:.2?})"),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                eprintln!("[{backend}] {name}: FAILED ({elapsed:.2?}): {message}");
                failed.push(*name);
            }
        }
    }
    assert!(
        failed.is_empty(),
        "[{backend}] failed conformance cases: {failed:?}"
    );
}

/// `prefix` + `name` as a key.
pub fn key(prefix: &str, name: &str) -> ObjectKey {
    ObjectKey::new(format!("{prefix}{name}")).expect("valid test key")
}

/// Deterministic pseudo-random content of `len` bytes, streamed in odd-sized chunks and never
/// held in memory whole.
pub fn generated(len: u64, seed: u64) -> ByteStream {
    const CHUNK: u64 = 64 * 1024 + 17;
    stream::unfold((0u64, seed | 1), move |(done, mut state)| async move {
        if done >= len {
            return None;
        }
        let n = CHUNK.min(len - done) as usize;
        let mut chunk = Vec::with_capacity(n);
        while chunk.len() < n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.extend_from_slice(&state.to_le_bytes()[..(n - chunk.len()).min(8)]);
        }
        Some((Ok(Bytes::from(chunk)), (done + n as u64, state)))
    })
    .boxed()
}

/// SHA-256 and length of a body, consumed as a stream.
pub async fn digest(mut body: ByteStream) -> ([u8; 32], u64) {
    let mut hasher = Sha256::new();
    let mut len = 0;
    while let Some(chunk) = body.try_next().await.expect("body chunk") {
        hasher.update(&chunk);
        len += chunk.len() as u64;
    }
    (hasher.finalize().into(), len)
}

/// The whole content of `key`, for small objects.
pub async fn content(store: &Store, key: &ObjectKey) -> Bytes {
    let got = store.get(key).await.expect("get");
    read_body(got.body, 1 << 20).await.expect("read body")
}

async fn round_trip(store: Store, prefix: String) {
    for (name, len) in [("empty", 0), ("small", 1000), ("large", LARGE)] {
        let key = key(&prefix, name);
        let stored = store.put(&key, generated(len, len)).await.expect("put");
        assert_eq!(stored.size, len, "{name}: stored size");
        let got = store.get(&key).await.expect("get");
        assert_eq!(got.meta.size, len, "{name}: size");
        assert_eq!(got.meta.etag, stored.etag, "{name}: etag");
        assert_eq!(got.range, 0..len, "{name}: range");
        assert_eq!(
            digest(got.body).await,
            digest(generated(len, len)).await,
            "{name}: content"
        );
    }
}

async fn range_reads(store: Store, prefix: String) {
    let small = key(&prefix, "small");
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    store
        .put(&small, body_from_bytes(data.clone()))
        .await
        .expect("put");
    let cases = [
        (ByteRange::Inclusive(10, 19), 10..20),
        (ByteRange::Inclusive(995, 5000), 995..1000),
        (ByteRange::From(990), 990..1000),
        (ByteRange::Suffix(5), 995..1000),
        (ByteRange::Suffix(5000), 0..1000),
        (ByteRange::Inclusive(0, 0), 0..1),
    ];
    for (range, expected) in cases {
        let got = store.get_range(&small, range).await.expect("get_range");
        assert_eq!(got.range, expected, "{range:?}: served range");
        assert_eq!(got.meta.size, 1000, "{range:?}: full size");
        let body = read_body(got.body, 1 << 20).await.expect("body");
        let (start, end) = (expected.start as usize, expected.end as usize);
        assert_eq!(&body[..], &data[start..end], "{range:?}: bytes");
    }
    for range in [ByteRange::From(1000), ByteRange::Inclusive(2000, 3000)] {
        match store.get_range(&small, range).await {
            Err(StorageError::RangeNotSatisfiable { size, .. }) => assert_eq!(size, 1000),
            other => panic!("{range:?}: expected RangeNotSatisfiable, got {other:?}"),
        }
    }
    // Across the first part boundary of a multipart object.
    let large = key(&prefix, "large");
    store
        .put(&large, generated(LARGE, 7))
        .await
        .expect("put large");
    let boundary = 8 * 1024 * 1024;
    let got = store
        .get_range(&large, ByteRange::Inclusive(boundary - 3, boundary + 4))
        .await;
    let got = got.expect("get_range large");
    assert_eq!(got.range, boundary - 3..boundary + 5);
    let body = read_body(got.body, 64).await.expect("body");
    let whole = read_body(generated(LARGE, 7), usize::MAX)
        .await
        .expect("generated");
    assert_eq!(
        &body[..],
        &whole[(boundary - 3) as usize..(boundary + 5) as usize]
    );
}

async fn head_and_etag(store: Store, prefix: String) {
    let key = key(&prefix, "object");
    let first = store.put(&key, body_from_bytes("one")).await.expect("put");
    let head = store.head(&key).await.expect("head");
    assert_eq!((head.size, &head.etag, &head.key), (3, &first.etag, &key));
    let now = SystemTime::now();
    let skew = Duration::from_secs(300);
    assert!(
        head.last_modified > now - skew && head.last_modified < now + skew,
        "{head:?}"
    );
    let second = store
        .put(&key, body_from_bytes("two!"))
        .await
        .expect("overwrite");
    assert_ne!(first.etag, second.etag, "etag must change with the content");
    let head = store.head(&key).await.expect("head");
    assert_eq!((head.size, head.etag), (4, second.etag));
    assert_eq!(content(&store, &key).await, "two!");
}

async fn not_found(store: Store, prefix: String) {
    let missing = key(&prefix, "missing");
    let other = key(&prefix, "other");
    assert!(matches!(store.head(&missing).await, Err(e) if e.is_not_found()));
    assert!(matches!(store.get(&missing).await, Err(e) if e.is_not_found()));
    let range = store.get_range(&missing, ByteRange::From(0)).await;
    assert!(matches!(range, Err(e) if e.is_not_found()));
    assert!(matches!(store.copy(&missing, &other).await, Err(e) if e.is_not_found()));
    assert!(matches!(store.head(&other).await, Err(e) if e.is_not_found()));
    store
        .delete(&missing)
        .await
        .expect("deleting a missing object succeeds");
}

async fn create_only(store: Store, prefix: String) {
    let key = key(&prefix, "object");
    let first = store
        .put_if_absent(&key, body_from_bytes("first"))
        .await
        .expect("create");
    let again = store.put_if_absent(&key, body_from_bytes("second")).await;
    assert!(matches!(again, Err(ref e) if e.is_conflict()), "{again:?}");
    assert_eq!(content(&store, &key).await, "first");
    assert_eq!(store.head(&key).await.expect("head").etag, first.etag);
    // Large bodies go through the multipart path on S3: the condition must hold there too.
    let large = store.put_if_absent(&key, generated(LARGE, 1)).await;
    assert!(matches!(large, Err(ref e) if e.is_conflict()), "{large:?}");
    let big_key = self::key(&prefix, "large");
    store
        .put_if_absent(&big_key, generated(LARGE, 1))
        .await
        .expect("create large");
}

async fn compare_and_swap(store: Store, prefix: String) {
    let key = key(&prefix, "object");
    let v1 = store.put(&key, body_from_bytes("v1")).await.expect("put");
    let v2 = store
        .put_if_match(&key, &v1.etag, body_from_bytes("v2"))
        .await
        .expect("cas");
    let stale = store
        .put_if_match(&key, &v1.etag, body_from_bytes("v3"))
        .await;
    assert!(matches!(stale, Err(ref e) if e.is_conflict()), "{stale:?}");
    assert_eq!(content(&store, &key).await, "v2");
    let large = store
        .put_if_match(&key, &v1.etag, generated(LARGE, 2))
        .await;
    assert!(matches!(large, Err(ref e) if e.is_conflict()), "{large:?}");
    let v4 = store
        .put_if_match(&key, &v2.etag, generated(LARGE, 4))
        .await
        .expect("large cas");
    assert_eq!(store.head(&key).await.expect("head").etag, v4.etag);
    let missing = self::key(&prefix, "missing");
    let absent = store
        .put_if_match(&missing, &v1.etag, body_from_bytes("x"))
        .await;
    assert!(
        matches!(absent, Err(ref e) if e.is_conflict()),
        "{absent:?}"
    );
    assert!(matches!(store.head(&missing).await, Err(e) if e.is_not_found()));
}

async fn delete(store: Store, prefix: String) {
    let key = key(&prefix, "object");
    store.put(&key, body_from_bytes("bye")).await.expect("put");
    store.delete(&key).await.expect("delete");
    assert!(matches!(store.head(&key).await, Err(e) if e.is_not_found()));
    store.delete(&key).await.expect("second delete");
    store
        .put_if_absent(&key, body_from_bytes("again"))
        .await
        .expect("recreate after delete");
}

async fn list_by_prefix(store: Store, prefix: String) {
    let names = ["a/x/1", "a/x/2", "a/x/sub/3", "a/xy/4", "a/y/5", "b/6"];
    for name in names {
        store
            .put(&key(&prefix, name), body_from_bytes(name.to_owned()))
            .await
            .expect("put");
    }
    let listed = |sub: &str| {
        let store = store.clone();
        let prefix = KeyPrefix::new(format!("{prefix}{sub}")).expect("prefix");
        async move {
            let mut metas: Vec<_> = store.list(&prefix).try_collect().await.expect("list");
            metas.sort_by(|a: &strata_central_registry::storage::ObjectMeta, b| a.key.cmp(&b.key));
            metas
        }
    };
    let keys = |metas: &[strata_central_registry::storage::ObjectMeta]| {
        metas
            .iter()
            .map(|m| m.key.as_path()[prefix.len()..].to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&listed("a/x/").await), ["a/x/1", "a/x/2", "a/x/sub/3"]);
    assert_eq!(
        keys(&listed("a/x").await),
        ["a/x/1", "a/x/2", "a/x/sub/3", "a/xy/4"]
    );
    assert_eq!(keys(&listed("").await), names);
    assert!(listed("c/").await.is_empty());
    let one = listed("a/y/").await;
    let head = store.head(&key(&prefix, "a/y/5")).await.expect("head");
    assert_eq!((one[0].size, &one[0].etag), (head.size, &head.etag));
}

async fn copy(store: Store, prefix: String) {
    let (from, to) = (key(&prefix, "from"), key(&prefix, "quarantine/to"));
    store.put(&from, generated(LARGE, 3)).await.expect("put");
    let copied = store.copy(&from, &to).await.expect("copy");
    assert_eq!(copied.size, LARGE);
    assert_eq!(store.head(&to).await.expect("head").etag, copied.etag);
    let got = store.get(&to).await.expect("get copy");
    assert_eq!(digest(got.body).await, digest(generated(LARGE, 3)).await);
    assert!(store.head(&from).await.is_ok(), "source remains");
    store
        .put(&from, body_from_bytes("small"))
        .await
        .expect("replace source");
    store.copy(&from, &to).await.expect("copy over existing");
    assert_eq!(content(&store, &to).await, "small");
}

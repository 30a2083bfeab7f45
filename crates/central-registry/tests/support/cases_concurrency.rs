//! Conformance cases about races and failures: concurrent compare-and-swap and create-only
//! writers, and writes whose body fails or whose caller gives up.

use std::{io, time::Duration};

use bytes::Bytes;
use futures::{
    StreamExt,
    future::{Either, join_all, select},
    stream,
};
use strata_central_registry::storage::{ByteStream, StorageError, body_from_bytes, read_body};
use tokio::sync::oneshot;

use super::suite::{LARGE, Store, content, generated, key};

/// Concurrent writers in the race tests.
const WRITERS: usize = 20;

/// 20 tasks increment one counter with read + `put_if_match`, retrying on conflict: no
/// increment may be lost.
pub async fn cas_counter(store: Store, prefix: String) {
    let counter = key(&prefix, "counter");
    store
        .put(&counter, body_from_bytes("0"))
        .await
        .expect("initial value");
    let tasks = (0..WRITERS).map(|_| {
        let (store, counter) = (store.clone(), counter.clone());
        tokio::spawn(async move {
            let mut conflicts = 0u32;
            loop {
                let current = store.get(&counter).await.expect("read counter");
                let etag = current.meta.etag.clone();
                let body = read_body(current.body, 64).await.expect("counter body");
                let value: u64 = std::str::from_utf8(&body)
                    .expect("utf8")
                    .parse()
                    .expect("number");
                let next = body_from_bytes((value + 1).to_string());
                match store.put_if_match(&counter, &etag, next).await {
                    Ok(_) => return conflicts,
                    Err(e) if e.is_conflict() => conflicts += 1,
                    Err(e) => panic!("cas write failed: {e}"),
                }
            }
        })
    });
    let conflicts: u32 = join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .sum();
    assert_eq!(
        content(&store, &counter).await,
        WRITERS.to_string(),
        "lost updates"
    );
    eprintln!("    {WRITERS} increments, {conflicts} conflicts retried");
}

/// 20 tasks race to create one key with different content: exactly one wins, the rest get
/// `Conflict`, and the stored bytes are the winner's.
pub async fn create_only_race(store: Store, prefix: String) {
    let target = key(&prefix, "target");
    let tasks = (0..WRITERS).map(|i| {
        let (store, target) = (store.clone(), target.clone());
        tokio::spawn(async move {
            match store
                .put_if_absent(&target, body_from_bytes(format!("writer {i}")))
                .await
            {
                Ok(_) => Some(i),
                Err(e) if e.is_conflict() => None,
                Err(e) => panic!("create-only write failed: {e}"),
            }
        })
    });
    let winners: Vec<usize> = join_all(tasks)
        .await
        .into_iter()
        .filter_map(|r| r.expect("task"))
        .collect();
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(
        content(&store, &target).await,
        format!("writer {}", winners[0])
    );
}

/// `len` bytes of content, then an I/O error: a client that disconnects mid-upload.
fn failing_body(len: u64) -> ByteStream {
    let failure = stream::once(async {
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "client went away",
        ))
    });
    generated(len, 9).chain(failure).boxed()
}

/// `len` bytes of content, then nothing, forever: a client that stalls. `reached` fires when
/// the writer has consumed every byte and waits for more.
fn stalling_body(len: u64, reached: oneshot::Sender<()>) -> ByteStream {
    let stall = stream::once(async move {
        let _ = reached.send(());
        futures::future::pending::<io::Result<Bytes>>().await
    });
    generated(len, 11).chain(stall).boxed()
}

/// Writes whose body fails, small or past the multipart threshold, leave nothing visible, and
/// a failed overwrite or CAS leaves the previous object intact.
pub async fn failed_put(store: Store, prefix: String) {
    for (name, len) in [("small", 1000), ("large", 12 * 1024 * 1024)] {
        let target = key(&prefix, name);
        let failed = store.put(&target, failing_body(len)).await;
        assert!(
            matches!(failed, Err(StorageError::Body { .. })),
            "{name}: {failed:?}"
        );
        assert!(
            matches!(store.head(&target).await, Err(e) if e.is_not_found()),
            "{name} visible"
        );
    }
    let existing = key(&prefix, "existing");
    let stored = store
        .put(&existing, body_from_bytes("keep me"))
        .await
        .expect("put");
    assert!(store.put(&existing, failing_body(LARGE)).await.is_err());
    assert!(
        store
            .put_if_match(&existing, &stored.etag, failing_body(1000))
            .await
            .is_err()
    );
    assert_eq!(content(&store, &existing).await, "keep me");
    assert_eq!(store.head(&existing).await.expect("head").etag, stored.etag);
    store
        .put_if_match(&existing, &stored.etag, body_from_bytes("new"))
        .await
        .expect("cas after failures");
}

/// Writes dropped by their caller mid-body (small, and after multipart parts went up) leave
/// nothing visible, and the key stays writable.
pub async fn cancelled_put(store: Store, prefix: String) {
    for (name, len) in [("small", 1000), ("large", 17 * 1024 * 1024)] {
        let target = key(&prefix, name);
        let (reached, stalled) = oneshot::channel();
        let put = store.put_if_absent(&target, stalling_body(len, reached));
        let outcome = tokio::time::timeout(Duration::from_secs(60), select(put, stalled)).await;
        match outcome {
            // Cancel the write by dropping it once the whole body has been consumed.
            Ok(Either::Right((Ok(()), put))) => drop(put),
            Ok(Either::Left((result, _))) => {
                panic!("{name}: a stalled write completed: {result:?}")
            }
            Ok(Either::Right((Err(_), _))) | Err(_) => panic!("{name}: the writer never stalled"),
        }
        assert!(
            matches!(store.head(&target).await, Err(e) if e.is_not_found()),
            "{name} visible"
        );
        store
            .put_if_absent(&target, body_from_bytes("later"))
            .await
            .expect("key still free");
    }
}

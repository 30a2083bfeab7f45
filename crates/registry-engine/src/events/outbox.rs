//! The durable outbox in front of Redis: [`Outbox`] keeps events as objects in the registry's
//! store, [`Deliverer`] moves them to the stream in order.
//!
//! `emit` writes `outbox/<stamp><random>.json` and returns: a publish never waits for Redis.
//! The deliverer lists the oldest entries, `XADD`s each and only then deletes it, so a crash at
//! any point re-sends rather than loses (at-least-once; consumers dedupe by event id). Keys are
//! fixed-width hex of a time-ordered stamp, so key order is emission order within a process
//! and an event that happened after another (the caller awaited the first `emit`) is always
//! delivered after it. Listing the prefix is a maintenance path (start-up, after a wake-up),
//! never a request path, and keeps only the oldest [`BATCH`] keys in memory.
//!
//! Several registry processes sharing one store also share the outbox: each delivers what it
//! finds, which can duplicate an event but never loses one.

use std::{
    collections::BinaryHeap,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};
use strata_service::backoff::Backoff;

use bytes::Bytes;
use futures::StreamExt;
use redis::{RedisError, aio::MultiplexedConnection};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    events::{Counters, RedisStream, event},
    storage::{KeyPrefix, ObjectKey, ObjectStore, StorageError, body_from_bytes, read_body},
};

/// Where entries live in the object store.
const PREFIX: &str = "outbox/";
/// Where entries go that can never be delivered (larger than [`MAX_DOCUMENT_BYTES`]).
const REJECTED_PREFIX: &str = "outbox-rejected/";
/// Largest event document accepted into the outbox and sent to Redis.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// Entries taken from one listing, oldest first: bounds the deliverer's memory.
const BATCH: usize = 256;
/// How often the deliverer looks at the outbox without being woken, to pick up entries other
/// processes left behind.
const RESCAN_INTERVAL: Duration = Duration::from_secs(30);

/// Event documents waiting for delivery, as objects under `outbox/`.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    store: Arc<dyn ObjectStore>,
}

impl Outbox {
    pub(crate) fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    /// Stores one document durably under a fresh, later-sorting key.
    pub(crate) async fn put(&self, document: Bytes) -> Result<ObjectKey, StorageError> {
        loop {
            let name = format!(
                "{PREFIX}{:016x}{:016x}.json",
                event::ordered_stamp(),
                event::random_u64()
            );
            let key = ObjectKey::new(name)?;
            match self
                .store
                .put_if_absent(&key, body_from_bytes(document.clone()))
                .await
            {
                Ok(_) => return Ok(key),
                // Another process drew the same stamp and random bits: draw again.
                Err(error) if error.is_conflict() => continue,
                Err(error) => return Err(error),
            }
        }
    }

    /// The `limit` oldest entries in delivery order, and how many entries there are in all.
    pub(crate) async fn oldest(&self, limit: usize) -> Result<(Vec<Entry>, u64), StorageError> {
        let prefix = KeyPrefix::new(PREFIX)?;
        let mut listing = self.store.list(&prefix);
        let mut heap = BinaryHeap::with_capacity(limit + 1);
        let mut total = 0u64;
        while let Some(meta) = listing.next().await {
            let meta = meta?;
            if !meta.key.as_path().ends_with(".json") {
                continue;
            }
            total += 1;
            // A max-heap of the smallest keys seen so far: pop the largest when over the bound.
            heap.push(Entry {
                key: meta.key,
                size: meta.size,
            });
            if heap.len() > limit {
                heap.pop();
            }
        }
        Ok((heap.into_sorted_vec(), total))
    }

    /// The document under `key`, or `None` if it is gone (another process delivered it).
    async fn read(&self, key: &ObjectKey) -> Result<Option<Bytes>, StorageError> {
        let object = match self.store.get(key).await {
            Ok(object) => object,
            Err(error) if error.is_not_found() => return Ok(None),
            Err(error) => return Err(error),
        };
        let document = read_body(object.body, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|source| StorageError::Io {
                op: crate::storage::Operation::Get,
                key: key.to_string(),
                context: "read outbox entry",
                source,
            })?;
        Ok(Some(document))
    }

    async fn remove(&self, key: &ObjectKey) -> Result<(), StorageError> {
        self.store.delete(key).await
    }

    /// Moves an undeliverable entry aside so it stops blocking the ones after it.
    async fn reject(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let name = key.as_path().strip_prefix(PREFIX).unwrap_or(key.as_path());
        let aside = ObjectKey::new(format!("{REJECTED_PREFIX}{name}"))?;
        self.store.copy(key, &aside).await?;
        self.store.delete(key).await
    }
}

/// One outbox entry as listed; ordered by key, which is delivery order.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Entry {
    key: ObjectKey,
    size: u64,
}

/// Why a delivery pass stopped early.
#[derive(Debug, thiserror::Error)]
enum PassError {
    #[error("redis: {0}")]
    Redis(#[from] RedisError),
    #[error("outbox: {0}")]
    Storage(#[from] StorageError),
}

/// The background task that empties the outbox into the stream.
#[derive(Debug)]
pub(crate) struct Deliverer {
    pub(crate) outbox: Outbox,
    pub(crate) redis: RedisStream,
    pub(crate) counters: Arc<Counters>,
    pub(crate) wake: Arc<Notify>,
    connection: Option<MultiplexedConnection>,
}

impl Deliverer {
    pub(crate) fn new(
        outbox: Outbox,
        redis: RedisStream,
        counters: Arc<Counters>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            outbox,
            redis,
            counters,
            wake,
            connection: None,
        }
    }

    /// Delivers until `stop` is cancelled, then makes one last attempt bounded by the
    /// configured flush deadline; what is left stays in the outbox for the next start.
    pub(crate) async fn run(mut self, stop: CancellationToken) {
        let config = self.redis.config();
        let mut backoff = Backoff::new(config.retry_initial(), config.retry_max());
        let flush_deadline = config.shutdown_flush();
        loop {
            let pass = tokio::select! {
                biased;
                () = stop.cancelled() => break,
                pass = self.deliver_all() => pass,
            };
            let pause = match pass {
                Ok(()) => {
                    backoff.reset();
                    None
                }
                Err(error) => Some(self.failed(&error, backoff.next_delay())),
            };
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                () = sleep_or_wait(pause, &self.wake) => {}
            }
        }
        match tokio::time::timeout(flush_deadline, self.deliver_all()).await {
            Ok(Ok(())) => tracing::debug!("event outbox flushed on shutdown"),
            Ok(Err(error)) => {
                tracing::warn!(%error, backlog = self.counters.backlog.load(Ordering::Relaxed),
                    "event outbox not flushed on shutdown; delivering on next start");
            }
            Err(_) => tracing::warn!(?flush_deadline, "event outbox flush timed out on shutdown"),
        }
    }

    fn failed(&mut self, error: &PassError, retry_in: Duration) -> Duration {
        self.counters.failed.fetch_add(1, Ordering::Relaxed);
        if matches!(error, PassError::Redis(_)) {
            self.connection = None;
        }
        tracing::warn!(%error, ?retry_in, backlog = self.counters.backlog.load(Ordering::Relaxed),
            "delivering events failed; they stay in the outbox");
        retry_in
    }

    /// Delivers entries oldest first until the outbox is empty or something fails.
    async fn deliver_all(&mut self) -> Result<(), PassError> {
        loop {
            let mark = self.counters.quiet_mark();
            let (entries, total) = self.outbox.oldest(BATCH).await?;
            self.counters.resync_backlog(mark, total);
            if entries.is_empty() {
                return Ok(());
            }
            for entry in entries {
                self.deliver(&entry).await?;
            }
        }
    }

    async fn deliver(&mut self, entry: &Entry) -> Result<(), PassError> {
        if entry.size > MAX_DOCUMENT_BYTES as u64 {
            tracing::error!(key = %entry.key, size = entry.size,
                "outbox entry too large to deliver; moved to {REJECTED_PREFIX}");
            self.outbox.reject(&entry.key).await?;
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.decrement_backlog();
            return Ok(());
        }
        // Gone: another process sharing the store delivered it first.
        if let Some(document) = self.outbox.read(&entry.key).await? {
            let connection = match self.connection.take() {
                Some(connection) => connection,
                None => self.redis.connect_for_commands().await?,
            };
            let connection = self.connection.insert(connection);
            self.redis.append(connection, &document).await?;
            self.outbox.remove(&entry.key).await?;
            self.counters.delivered.fetch_add(1, Ordering::Relaxed);
        }
        self.counters.decrement_backlog();
        Ok(())
    }
}

async fn sleep_or_wait(pause: Option<Duration>, wake: &Notify) {
    match pause {
        Some(delay) => tokio::time::sleep(delay).await,
        None => {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep(RESCAN_INTERVAL) => {}
            }
        }
    }
}

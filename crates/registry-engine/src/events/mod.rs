//! Change events: what the registry tells every tier after each publish and delete.
//!
//! [`Event`] is the versioned JSON document ([`event`] describes the schema). [`EventBus`] is
//! what the registry calls: [`EventBus::emit`] never fails the caller's operation, whatever
//! the transport's health. Two transports, chosen by [`EventsConfig`]:
//! - **memory**: a bounded in-process broadcast, for the embedded deployment;
//! - **redis**: a Redis Stream (`XADD … MAXLEN ~ n`), fed through a durable outbox in the
//!   object store (module `outbox`) so events emitted while Redis is down are delivered, in
//!   order, once it is back; delivery is at-least-once and consumers dedupe by [`Event::id`].
//!
//! [`EventBus::subscribe`] reads the events back as a [`Subscription`] stream of
//! `(stream id, event)`; edges use it, resuming from the last id they applied.

mod outbox;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use tokio::{sync::Notify, task::JoinHandle};
use tokio_util::sync::{CancellationToken, DropGuard};

/// The schema and transports live in `strata_service::events`, shared with the tiers that
/// only subscribe; they are re-exported here so the registry's users find them in one place.
pub use strata_service::events::{
    DecodeError, Event, EventError, EventKind, EventSource, EventsConfig, MemoryEventsConfig,
    RedisEventsConfig, SCHEMA_VERSION, StartFrom, Subscription, event,
};
use strata_service::events::{MemoryBus, RedisStream};

use self::outbox::{Deliverer, MAX_DOCUMENT_BYTES, Outbox};
use crate::storage::ObjectStore;

/// Longest an `emit` waits for the outbox write before giving up on the event.
const OUTBOX_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// A snapshot of the bus counters (all zero but `delivered` for the memory bus).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventStats {
    /// Events in the outbox, not yet in the stream.
    pub backlog: u64,
    /// Events handed to the transport (appended to the stream, or broadcast).
    pub delivered: u64,
    /// Delivery attempts that failed (each is retried later).
    pub failed: u64,
    /// Events lost: the outbox could not store them, or they were too large to deliver.
    pub dropped: u64,
}

/// The change-event bus of the registry; cheap to clone.
#[derive(Clone, Debug)]
pub struct EventBus {
    transport: Arc<Transport>,
    counters: Arc<Counters>,
}

#[derive(Debug)]
enum Transport {
    Memory(MemoryBus),
    Redis(RedisTransport),
}

#[derive(Debug)]
struct RedisTransport {
    stream: RedisStream,
    outbox: Outbox,
    wake: Arc<Notify>,
    deliverer: Mutex<Option<JoinHandle<()>>>,
    /// Stops the deliverer when the last clone of the bus goes away.
    _stop_on_drop: DropGuard,
}

impl EventBus {
    /// Builds the bus `config` asks for. The Redis transport keeps its outbox in `store` and
    /// runs a deliverer until `shutdown` is cancelled (or the bus is dropped); the deliverer
    /// first delivers what a previous run left in the outbox. Must run inside a Tokio runtime.
    pub async fn from_config(
        config: &EventsConfig,
        store: Arc<dyn ObjectStore>,
        shutdown: CancellationToken,
    ) -> Result<Self, EventError> {
        match config {
            EventsConfig::Memory(memory) => Ok(Self::memory(memory.capacity)),
            EventsConfig::Redis(redis) => Self::redis(redis.clone(), store, shutdown).await,
        }
    }

    /// An in-process bus buffering `capacity` events per subscriber.
    pub fn memory(capacity: usize) -> Self {
        Self {
            transport: Arc::new(Transport::Memory(MemoryBus::new(capacity))),
            counters: Arc::default(),
        }
    }

    /// A Redis Streams bus with its outbox in `store`; see [`EventBus::from_config`].
    pub async fn redis(
        config: RedisEventsConfig,
        store: Arc<dyn ObjectStore>,
        shutdown: CancellationToken,
    ) -> Result<Self, EventError> {
        let stream = RedisStream::open(config)?;
        let outbox = Outbox::new(store);
        let counters = Arc::new(Counters::default());
        // Known before the first delivery pass, so a fresh process reports its inherited
        // backlog at once; a store that cannot be listed now is retried by the deliverer.
        match outbox.oldest(1).await {
            Ok((_, total)) => counters.backlog.store(total, Ordering::SeqCst),
            Err(error) => tracing::warn!(%error, "cannot list the event outbox yet"),
        }
        let wake = Arc::new(Notify::new());
        let stop = shutdown.child_token();
        let deliverer = Deliverer::new(
            outbox.clone(),
            stream.clone(),
            Arc::clone(&counters),
            Arc::clone(&wake),
        );
        let handle = tokio::spawn(deliverer.run(stop.clone()));
        let transport = RedisTransport {
            stream,
            outbox,
            wake,
            deliverer: Mutex::new(Some(handle)),
            _stop_on_drop: stop.drop_guard(),
        };
        Ok(Self {
            transport: Arc::new(Transport::Redis(transport)),
            counters,
        })
    }

    /// A subscription to a Redis stream without a bus: for readers that never emit (edges,
    /// workers). Reads every event after `from` with its own connection, reconnecting with
    /// backoff and resuming after the last id it yielded; it never ends by itself. Fails only
    /// on an invalid configuration (a Redis that is down is retried, not an error).
    pub async fn subscribe_redis(
        config: RedisEventsConfig,
        from: StartFrom,
    ) -> Result<Subscription, EventError> {
        strata_service::events::subscribe_redis(config, from).await
    }

    /// Records that `event` happened. Never fails and never waits for Redis: with the Redis
    /// transport the event is first written to the outbox; if even that fails (or takes longer
    /// than 10 s) the event is logged in full, counted as dropped, and the caller carries on.
    pub async fn emit(&self, event: Event) {
        match &*self.transport {
            Transport::Memory(bus) => {
                bus.emit(event);
                self.counters.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Transport::Redis(redis) => {
                let document = match event.to_json() {
                    Ok(json) if json.len() <= MAX_DOCUMENT_BYTES => Bytes::from(json),
                    Ok(json) => return self.drop_event(&json, "event document too large"),
                    Err(error) => {
                        return self.drop_event(&format!("{event:?}"), &error.to_string());
                    }
                };
                let in_flight = WriteInFlight::start(&self.counters);
                let write = tokio::time::timeout(OUTBOX_WRITE_TIMEOUT, redis.outbox.put(document));
                let written = write.await;
                if let Ok(Ok(_)) = written {
                    self.counters.backlog.fetch_add(1, Ordering::SeqCst);
                }
                drop(in_flight);
                match written {
                    Ok(Ok(_)) => redis.wake.notify_one(),
                    Ok(Err(error)) => self.drop_event(&event_json(&event), &error.to_string()),
                    Err(_) => self.drop_event(&event_json(&event), "outbox write timed out"),
                }
            }
        }
    }

    fn drop_event(&self, event: &str, reason: &str) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::error!(event, reason, "change event lost");
    }

    /// Events from `from` on (see [`StartFrom`]). The Redis subscription has its own
    /// connection, reconnects with backoff and resumes after the last id it yielded; it never
    /// ends by itself. The memory subscription ends when the bus is dropped.
    pub async fn subscribe(&self, from: StartFrom) -> Subscription {
        match &*self.transport {
            Transport::Memory(bus) => bus.subscribe(),
            Transport::Redis(redis) => redis.stream.subscribe(from).await,
        }
    }

    /// Waits until the deliverer has stopped (after the shutdown token was cancelled and its
    /// last flush ended). Returns at once for the memory bus or if already awaited.
    pub async fn stopped(&self) {
        let Transport::Redis(redis) = &*self.transport else {
            return;
        };
        let handle = redis.deliverer.lock().ok().and_then(|mut slot| slot.take());
        if let Some(handle) = handle
            && let Err(error) = handle.await
        {
            tracing::error!(%error, "event deliverer task failed");
        }
    }

    /// Whether the transport can deliver right now: Redis answers `PING` (the in-process bus
    /// always can). Used by `/readyz`.
    pub async fn check_ready(&self) -> Result<(), String> {
        match &*self.transport {
            Transport::Memory(_) => Ok(()),
            Transport::Redis(redis) => redis.stream.ping().await.map_err(|e| format!("redis: {e}")),
        }
    }

    /// Events waiting in the outbox.
    pub fn backlog(&self) -> u64 {
        self.counters.backlog.load(Ordering::Relaxed)
    }

    /// Events handed to the transport.
    pub fn delivered(&self) -> u64 {
        self.counters.delivered.load(Ordering::Relaxed)
    }

    /// Failed delivery attempts.
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Events lost.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// All counters at once.
    pub fn stats(&self) -> EventStats {
        EventStats {
            backlog: self.backlog(),
            delivered: self.delivered(),
            failed: self.failed(),
            dropped: self.dropped(),
        }
    }
}

fn event_json(event: &Event) -> String {
    event.to_json().unwrap_or_else(|_| format!("{event:?}"))
}

/// Counters shared by a bus and its deliverer.
///
/// The backlog is kept by arithmetic (+1 per outbox write, -1 per entry the deliverer
/// removes) and reset to a listing's count only when no outbox write of this process started
/// or finished while the listing ran (`writes_started`/`writes_finished`), so that it also
/// picks up entries other processes left, without double-counting an in-flight write.
#[derive(Debug, Default)]
struct Counters {
    backlog: AtomicU64,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    writes_started: AtomicU64,
    writes_finished: AtomicU64,
}

impl Counters {
    /// A mark to take before listing the outbox, if no write is in flight.
    fn quiet_mark(&self) -> Option<u64> {
        let started = self.writes_started.load(Ordering::SeqCst);
        (self.writes_finished.load(Ordering::SeqCst) == started).then_some(started)
    }

    /// Sets the backlog to `listed` if nothing was written since `mark` was taken.
    fn resync_backlog(&self, mark: Option<u64>, listed: u64) {
        let quiet = mark.is_some_and(|mark| {
            self.writes_started.load(Ordering::SeqCst) == mark
                && self.writes_finished.load(Ordering::SeqCst) == mark
        });
        if quiet {
            self.backlog.store(listed, Ordering::SeqCst);
        }
    }

    fn decrement_backlog(&self) {
        let _ = self
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }
}

/// An outbox write of `emit` in progress; finished when dropped, even if `emit` is cancelled.
struct WriteInFlight<'a>(&'a Counters);

impl<'a> WriteInFlight<'a> {
    fn start(counters: &'a Counters) -> Self {
        counters.writes_started.fetch_add(1, Ordering::SeqCst);
        Self(counters)
    }
}

impl Drop for WriteInFlight<'_> {
    fn drop(&mut self) {
        self.0.writes_finished.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl EventSource for EventBus {
    async fn subscribe(&self, from: StartFrom) -> Subscription {
        EventBus::subscribe(self, from).await
    }
}

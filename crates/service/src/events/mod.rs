//! Change events as every tier sees them: the versioned [`Event`] document ([`event`]
//! describes the schema), its transports — [`MemoryBus`] (a bounded in-process broadcast, for
//! the all-in-one process) and [`RedisStream`] (a Redis Stream: `XADD … MAXLEN ~ n` to append,
//! `XREAD` from a given id to follow) — and the [`Subscription`] consumers read.
//!
//! The registry composes these with its durable outbox into the bus it emits on; edges and
//! workers only subscribe: to the registry's bus in one process ([`EventSource`]), or to Redis
//! with [`subscribe_redis`]. Delivery is at-least-once: consumers dedupe by [`Event::id`].

mod config;
pub mod event;
mod memory;
mod redis;

use std::{
    fmt,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use futures::{Stream, stream::BoxStream};

pub use self::{
    config::{EventsConfig, MemoryEventsConfig, RedisEventsConfig, redact_url},
    event::{DecodeError, Event, EventKind, SCHEMA_VERSION, new_event_id},
    memory::MemoryBus,
    redis::{EVENT_FIELD, RedisStream},
};

/// Why events cannot be set up. Only configuration errors: an unreachable Redis is a runtime
/// condition the transports ride out.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// A value in the events section is unusable.
    #[error("invalid events configuration: {0}")]
    Config(String),
}

/// Where a subscription starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// Only events emitted after the subscription (Redis `$`, pinned to a concrete id so that
    /// a reconnect misses nothing).
    New,
    /// Every event still in the stream (Redis `0`). The memory bus keeps no history and
    /// treats this as [`StartFrom::New`].
    Beginning,
    /// Events after this stream id: the last one a consumer applied. Memory bus: as `New`.
    After(String),
}

/// Something events can be subscribed to: the registry's bus, handed to the other tiers of an
/// all-in-one process.
#[async_trait::async_trait]
pub trait EventSource: Send + Sync {
    /// Events from `from` on.
    async fn subscribe(&self, from: StartFrom) -> Subscription;
}

#[async_trait::async_trait]
impl<T: EventSource + ?Sized> EventSource for Arc<T> {
    async fn subscribe(&self, from: StartFrom) -> Subscription {
        (**self).subscribe(from).await
    }
}

/// A subscription to a Redis stream, for readers that never emit (edges, workers). Reads every
/// event after `from` with its own connection, reconnecting with backoff and resuming after the
/// last id it yielded; it never ends by itself. Fails only on an invalid configuration (a
/// Redis that is down is retried, not an error).
pub async fn subscribe_redis(
    config: RedisEventsConfig,
    from: StartFrom,
) -> Result<Subscription, EventError> {
    let stream = RedisStream::open(config)?;
    Ok(stream.subscribe(from).await)
}

impl RedisStream {
    /// A stream handle for `config`, validated; the error names the (redacted) URL.
    pub fn open(config: RedisEventsConfig) -> Result<Self, EventError> {
        config.validate().map_err(EventError::Config)?;
        let url = redact_url(&config.url);
        RedisStream::new(config).map_err(|e| EventError::Config(format!("events.url {url:?}: {e}")))
    }
}

/// A stream of `(stream id, event)`, oldest first. Entries that are not events this build can
/// read (unknown schema, malformed) and events a slow memory subscriber missed are skipped and
/// counted in [`Subscription::skipped`], never turned into errors.
pub struct Subscription {
    inner: BoxStream<'static, (String, Event)>,
    skipped: Arc<AtomicU64>,
}

impl Subscription {
    fn new(inner: BoxStream<'static, (String, Event)>, skipped: Arc<AtomicU64>) -> Self {
        Self { inner, skipped }
    }

    /// How many entries were skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }
}

impl Stream for Subscription {
    type Item = (String, Event);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("skipped", &self.skipped())
            .finish_non_exhaustive()
    }
}

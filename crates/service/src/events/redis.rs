//! The Redis Streams side of the events: appending (`XADD … MAXLEN ~`) and reading from a last
//! seen id (`XREAD BLOCK`), reconnecting with backoff.
//!
//! Every reader sees every event (no consumer group): an edge keeps the id of the last entry it
//! applied and resumes after it. Entries carry one field, `event`, holding the JSON document.

use crate::backoff::Backoff;
use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use redis::{
    AsyncConnectionConfig, Client, RedisError,
    aio::MultiplexedConnection,
    streams::{StreamId, StreamRangeReply, StreamReadReply},
};

use crate::events::{Event, RedisEventsConfig, StartFrom, Subscription, event::DecodeError};

/// Name of the stream entry field that holds the event document.
pub const EVENT_FIELD: &str = "event";
/// Entries fetched per `XREAD`: bounds what a reader buffers.
const READ_COUNT: usize = 128;
/// A connection's time to answer beyond the command's own blocking time.
const BLOCK_MARGIN: Duration = Duration::from_secs(5);

/// A Redis client with the stream's settings; cheap to clone.
#[derive(Clone, Debug)]
pub struct RedisStream {
    client: Client,
    config: Arc<RedisEventsConfig>,
}

impl RedisStream {
    /// Parses the URL; does not connect.
    pub fn new(config: RedisEventsConfig) -> Result<Self, RedisError> {
        let client = Client::open(config.url.as_str())?;
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    pub fn config(&self) -> &RedisEventsConfig {
        &self.config
    }

    /// A new connection whose commands time out after `response` (and the connect after the
    /// configured command timeout).
    async fn connect(&self, response: Duration) -> Result<MultiplexedConnection, RedisError> {
        let settings = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.command_timeout()))
            .set_response_timeout(Some(response));
        self.client
            .get_multiplexed_async_connection_with_config(&settings)
            .await
    }

    /// A connection for short commands (`XADD`, `XREVRANGE`).
    pub async fn connect_for_commands(&self) -> Result<MultiplexedConnection, RedisError> {
        self.connect(self.config.command_timeout()).await
    }

    /// Appends one event document; returns the entry id Redis assigned.
    /// Whether Redis answers `PING` (for readiness checks).
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.connect_for_commands().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
    }

    pub async fn append(
        &self,
        connection: &mut MultiplexedConnection,
        document: &[u8],
    ) -> Result<String, RedisError> {
        redis::cmd("XADD")
            .arg(&self.config.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(self.config.maxlen)
            .arg("*")
            .arg(EVENT_FIELD)
            .arg(document)
            .query_async(connection)
            .await
    }

    /// The id of the newest entry, or `0-0` if the stream is empty or missing, so that "only
    /// new events" survives a reconnect as a concrete position.
    async fn newest_id(
        &self,
        connection: &mut MultiplexedConnection,
    ) -> Result<String, RedisError> {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(&self.config.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(connection)
            .await?;
        Ok(reply
            .ids
            .into_iter()
            .next()
            .map_or_else(|| "0-0".to_owned(), |entry| entry.id))
    }

    /// Every event after `from`. For [`StartFrom::New`] the position is pinned to the current
    /// newest entry now if Redis answers (otherwise at the first successful connection), so
    /// events appended after this call are never missed.
    pub async fn subscribe(&self, from: StartFrom) -> Subscription {
        let mut reader = Reader::new(self.clone(), from);
        if reader.last_id.is_none() {
            // Best effort; the reader retries when it first needs the position.
            let _ = reader.ensure_position().await;
        }
        let rejected = Arc::clone(&reader.rejected);
        let stream = futures::stream::unfold(reader, |mut reader| async move {
            let item = reader.next_event().await;
            Some((item, reader))
        });
        Subscription::new(stream.boxed(), rejected)
    }
}

/// State of one subscription: its own connection (a blocking read would stall a shared one),
/// the last id it yielded, and a bounded buffer of one `XREAD` batch.
struct Reader {
    stream: RedisStream,
    connection: Option<MultiplexedConnection>,
    /// `None` until "only new events" is pinned to a concrete id.
    last_id: Option<String>,
    buffer: VecDeque<(String, Event)>,
    backoff: Backoff,
    rejected: Arc<AtomicU64>,
}

impl Reader {
    fn new(stream: RedisStream, from: StartFrom) -> Self {
        let last_id = match from {
            StartFrom::New => None,
            StartFrom::Beginning => Some("0-0".to_owned()),
            StartFrom::After(id) => Some(id),
        };
        let backoff = Backoff::new(stream.config.retry_initial(), stream.config.retry_max());
        Self {
            stream,
            connection: None,
            last_id,
            buffer: VecDeque::with_capacity(READ_COUNT),
            backoff,
            rejected: Arc::new(AtomicU64::new(0)),
        }
    }

    async fn next_event(&mut self) -> (String, Event) {
        loop {
            if let Some(item) = self.buffer.pop_front() {
                return item;
            }
            if let Err(error) = self.read_batch().await {
                // Drop the connection: the next attempt reconnects, resuming after the last id.
                self.connection = None;
                let delay = self.backoff.next_delay();
                tracing::warn!(%error, retry_in = ?delay, stream = %self.stream.config.stream,
                    "reading the event stream failed");
                tokio::time::sleep(delay).await;
            }
        }
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, RedisError> {
        let connection = match self.connection.take() {
            Some(connection) => connection,
            None => {
                let response = Duration::from_millis(self.stream.config.block_ms) + BLOCK_MARGIN;
                self.stream.connect(response).await?
            }
        };
        Ok(self.connection.insert(connection))
    }

    async fn ensure_position(&mut self) -> Result<String, RedisError> {
        if let Some(id) = &self.last_id {
            return Ok(id.clone());
        }
        let stream = self.stream.clone();
        let id = stream.newest_id(self.connection().await?).await?;
        self.last_id = Some(id.clone());
        Ok(id)
    }

    /// One `XREAD BLOCK`; fills the buffer with what it returned (possibly nothing).
    async fn read_batch(&mut self) -> Result<(), RedisError> {
        let after = self.ensure_position().await?;
        let config = Arc::clone(&self.stream.config);
        let reply: Option<StreamReadReply> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(config.block_ms)
            .arg("STREAMS")
            .arg(&config.stream)
            .arg(&after)
            .query_async(self.connection().await?)
            .await?;
        self.backoff.reset();
        let entries = reply
            .into_iter()
            .flat_map(|r| r.keys)
            .flat_map(|key| key.ids);
        for entry in entries {
            self.last_id = Some(entry.id.clone());
            match decode_entry(&entry) {
                Ok(event) => self.buffer.push_back((entry.id, event)),
                Err(error) => {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%error, entry = %entry.id, "skipping an unreadable event");
                }
            }
        }
        Ok(())
    }
}

fn decode_entry(entry: &StreamId) -> Result<Event, DecodeError> {
    let document: Vec<u8> = entry.get(EVENT_FIELD).ok_or(DecodeError::MissingPayload)?;
    Event::from_json(&document)
}

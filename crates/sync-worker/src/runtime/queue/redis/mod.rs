//! The Redis Streams queue: one stream and one consumer group shared by every worker process.
//!
//! - **Enqueue**: `XADD` of the envelope document, refused past the backlog bound. The
//!   stream is not trimmed with `MAXLEN`, which would silently drop jobs nobody ran;
//!   acknowledged entries are deleted instead, so the stream's length *is* the backlog
//!   (waiting + pending) and the bound is enforced by refusing new work.
//! - **Receive**: `XREADGROUP … >` under this process's consumer name; every `visibility/4`
//!   also `XAUTOCLAIM` of entries idle longer than the visibility timeout (left by a dead or
//!   stuck worker). Workers reset the idle time of what they are still running every third
//!   of the timeout (`XCLAIM … JUSTID`), so long jobs are not stolen.
//! - **Settle**: completion sets `S:done:<key>` with `SET NX` and acknowledges in one script;
//!   a retry acknowledges and adds the next envelope to `S:retry` (due time in the score),
//!   whence any worker moves it back into the stream when due; a dead letter acknowledges and
//!   `XADD`s to `S:dead` with the reason.
//! - **Reconnect**: a failed command drops its connection; the next call reconnects (the
//!   worker loop backs off between failed receives) and recreates the group if Redis lost it.

mod consumer;
mod scripts;

use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::{AsyncConnectionConfig, Client, RedisError, aio::MultiplexedConnection};
use strata_service::events::redact_url;
use tokio::sync::Mutex;

use self::scripts::Scripts;
use super::{DeadLetter, Enqueued, JobQueue, NewJob, QueueError, QueueStats, envelopes};
use crate::runtime::envelope::Envelope;

/// A blocking read's allowance beyond its own block time before the connection gives up.
const BLOCK_MARGIN: Duration = Duration::from_secs(5);
/// How often due retries are moved back into the stream (at most; each receive checks).
const PROMOTE_INTERVAL: Duration = Duration::from_millis(200);
/// Retries moved per promotion.
const PROMOTE_BATCH: usize = 256;
/// How often idle consumers are pruned from the group.
const PRUNE_INTERVAL: Duration = Duration::from_secs(600);
/// A consumer must have been idle this long (and hold nothing) to be pruned.
const PRUNE_IDLE: Duration = Duration::from_secs(3600);

/// Where the queue lives and its limits (built from the `jobs` config section).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisQueueSettings {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// The stream key; the other keys are derived from it.
    pub stream: String,
    /// The consumer group shared by all workers.
    pub group: String,
    /// This process's consumer name, unique among live workers.
    pub consumer: String,
    /// Waiting + pending jobs before enqueue answers [`QueueError::Full`].
    pub max_backlog: u64,
    /// Approximate bound of the dead-letter stream (`MAXLEN ~`).
    pub dead_letter_maxlen: u64,
    /// Approximate bound of the completion log (`MAXLEN ~`); 0 turns the log off.
    pub completed_log_maxlen: u64,
    /// How long completion markers last.
    pub completed_ttl: Duration,
    /// A delivery idle longer than this is claimed by another worker.
    pub visibility_timeout: Duration,
    /// How long one `XREADGROUP` blocks waiting for new entries.
    pub block: Duration,
    /// Connect and command timeout.
    pub command_timeout: Duration,
}

impl std::fmt::Debug for RedisQueueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueueSettings")
            .field("url", &redact_url(&self.url))
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("max_backlog", &self.max_backlog)
            .field("visibility_timeout", &self.visibility_timeout)
            .finish_non_exhaustive()
    }
}

/// The Redis Streams queue (producer and consumer side).
#[derive(Debug)]
pub struct RedisQueue {
    settings: RedisQueueSettings,
    client: Client,
    scripts: Scripts,
    keys: Keys,
    /// Short commands, multiplexed.
    commands: Mutex<Option<MultiplexedConnection>>,
    /// The blocking `XREADGROUP` (it would stall a shared connection).
    reader: Mutex<Option<MultiplexedConnection>>,
    group_ready: AtomicBool,
    cadence: StdMutex<Cadence>,
}

#[derive(Debug)]
struct Keys {
    stream: String,
    retry: String,
    dead: String,
    completed: String,
    done_prefix: String,
}

/// When the periodic parts of `receive` last ran, and where the claim scan is.
#[derive(Debug)]
struct Cadence {
    promoted: Option<Instant>,
    claimed: Option<Instant>,
    pruned: Option<Instant>,
    claim_cursor: String,
}

impl RedisQueue {
    /// Parses the URL; does not connect (a Redis that is down is a runtime condition).
    pub fn new(settings: RedisQueueSettings) -> Result<Self, QueueError> {
        let client = Client::open(settings.url.as_str()).map_err(|e| {
            QueueError::Unavailable(format!("redis url {:?}: {e}", redact_url(&settings.url)))
        })?;
        let stream = settings.stream.clone();
        let keys = Keys {
            retry: format!("{stream}:retry"),
            dead: format!("{stream}:dead"),
            completed: format!("{stream}:completed"),
            done_prefix: format!("{stream}:done:"),
            stream,
        };
        Ok(Self {
            settings,
            client,
            scripts: Scripts::new(),
            keys,
            commands: Mutex::new(None),
            reader: Mutex::new(None),
            group_ready: AtomicBool::new(false),
            cadence: StdMutex::new(Cadence {
                promoted: None,
                claimed: None,
                pruned: None,
                claim_cursor: "0-0".into(),
            }),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &RedisQueueSettings {
        &self.settings
    }

    /// The key of the completion marker of `key`.
    pub fn marker_key(&self, key: &str) -> String {
        format!("{}{key}", self.keys.done_prefix)
    }

    /// The key of the completion log stream (fields `key`, `id`, `consumer`, `deliveries`).
    pub fn completed_log_key(&self) -> &str {
        &self.keys.completed
    }

    /// The key of the dead-letter stream (fields `job`, `reason`, `deliveries`, `consumer`).
    pub fn dead_letter_key(&self) -> &str {
        &self.keys.dead
    }

    async fn connect(&self, response: Duration) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.settings.command_timeout))
            .set_response_timeout(Some(response));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    /// The command connection, connecting (and creating the group) if there is none.
    async fn commands(&self) -> Result<MultiplexedConnection, QueueError> {
        let mut slot = self.commands.lock().await;
        let mut connection = match slot.as_ref() {
            Some(connection) => connection.clone(),
            None => {
                let connection = self
                    .connect(self.settings.command_timeout)
                    .await
                    .map_err(|e| unavailable("connecting", &e))?;
                slot.insert(connection).clone()
            }
        };
        drop(slot);
        if !self.group_ready.load(Ordering::Acquire) {
            self.create_group(&mut connection).await?;
        }
        Ok(connection)
    }

    async fn create_group(&self, connection: &mut MultiplexedConnection) -> Result<(), QueueError> {
        // From `0`: jobs enqueued before the first worker ever started are delivered too.
        let created: Result<(), RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.keys.stream)
            .arg(&self.settings.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(connection)
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(self.failed("creating the consumer group", e).await),
        }
        self.group_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Maps a Redis error, dropping the command connection if the error is the connection's
    /// (the next call reconnects) and forgetting the group if Redis lost it.
    async fn failed(&self, operation: &str, error: RedisError) -> QueueError {
        self.note_error(&error);
        if !matches!(error.kind(), redis::ErrorKind::Server(_)) {
            *self.commands.lock().await = None;
        }
        unavailable(operation, &error)
    }

    fn note_error(&self, error: &RedisError) {
        if error.code() == Some("NOGROUP") {
            self.group_ready.store(false, Ordering::Release);
        }
    }

    /// Runs a script on the command connection.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        operation: &str,
        script: &redis::Script,
        keys: &[&str],
        args: &[String],
    ) -> Result<T, QueueError> {
        let mut connection = self.commands().await?;
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        match invocation.invoke_async(&mut connection).await {
            Ok(value) => Ok(value),
            Err(e) => Err(self.failed(operation, e).await),
        }
    }

    async fn add(&self, new: Vec<Envelope>) -> Result<Vec<Enqueued>, QueueError> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = Vec::with_capacity(new.len() + 1);
        args.push(self.settings.max_backlog.to_string());
        args.extend(new.iter().map(Envelope::encode));
        let reply: Vec<String> = self
            .invoke(
                "enqueueing",
                &self.scripts.enqueue,
                &[&self.keys.stream],
                &args,
            )
            .await?;
        match reply.first().map(String::as_str) {
            Some("ok") if reply.len() == new.len() + 1 => Ok(new
                .into_iter()
                .map(|e| Enqueued {
                    id: e.id,
                    key: e.key,
                })
                .collect()),
            Some("full") => Err(QueueError::Full {
                backlog: reply.get(1).and_then(|n| n.parse().ok()).unwrap_or(0),
                limit: self.settings.max_backlog,
            }),
            _ => Err(QueueError::Unavailable(format!(
                "enqueueing: unexpected reply {reply:?}"
            ))),
        }
    }
}

fn unavailable(operation: &str, error: &RedisError) -> QueueError {
    QueueError::Unavailable(format!("{operation}: {error}"))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl JobQueue for RedisQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let envelope = job.into_envelope()?;
        let mut accepted = self.add(vec![envelope]).await?;
        accepted
            .pop()
            .ok_or_else(|| QueueError::Unavailable("nothing was enqueued".into()))
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        self.add(envelopes(jobs)?).await
    }

    async fn is_completed(&self, key: &str) -> Result<bool, QueueError> {
        let mut connection = self.commands().await?;
        match redis::cmd("EXISTS")
            .arg(self.marker_key(key))
            .query_async::<u64>(&mut connection)
            .await
        {
            Ok(n) => Ok(n > 0),
            Err(e) => Err(self.failed("checking completion", e).await),
        }
    }

    async fn forget_completed(&self, key: &str) -> Result<bool, QueueError> {
        let mut connection = self.commands().await?;
        match redis::cmd("DEL")
            .arg(self.marker_key(key))
            .query_async::<u64>(&mut connection)
            .await
        {
            Ok(n) => Ok(n > 0),
            Err(e) => Err(self.failed("forgetting a completion", e).await),
        }
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut connection = self.commands().await?;
        let mut pipe = redis::pipe();
        pipe.cmd("XLEN").arg(&self.keys.stream);
        pipe.cmd("XPENDING")
            .arg(&self.keys.stream)
            .arg(&self.settings.group);
        pipe.cmd("ZCARD").arg(&self.keys.retry);
        pipe.cmd("XLEN").arg(&self.keys.dead);
        let reply: Result<
            (
                u64,
                (u64, redis::Value, redis::Value, redis::Value),
                u64,
                u64,
            ),
            _,
        > = pipe.query_async(&mut connection).await;
        match reply {
            Ok((length, (pending, ..), delayed, dead)) => Ok(QueueStats {
                waiting: length.saturating_sub(pending),
                pending,
                delayed,
                dead,
            }),
            Err(e) => Err(self.failed("reading queue statistics", e).await),
        }
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let mut connection = self.commands().await?;
        let reply: Result<redis::streams::StreamRangeReply, _> = redis::cmd("XRANGE")
            .arg(&self.keys.dead)
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut connection)
            .await;
        match reply {
            Ok(range) => Ok(range
                .ids
                .into_iter()
                .map(|entry| DeadLetter {
                    document: entry.get("job").unwrap_or_default(),
                    reason: entry.get("reason").unwrap_or_default(),
                    deliveries: entry.get("deliveries").unwrap_or_default(),
                    consumer: entry.get("consumer").unwrap_or_default(),
                })
                .collect()),
            Err(e) => Err(self.failed("reading dead letters", e).await),
        }
    }

    async fn check_ready(&self) -> Result<(), QueueError> {
        let mut connection = self.commands().await?;
        match redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(self.failed("PING", e).await),
        }
    }
}

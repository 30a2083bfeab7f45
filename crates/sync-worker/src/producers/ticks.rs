//! Periodic producers (index feed polls, heat refresh, schedules) and how many workers agree
//! to produce each period's jobs once.
//!
//! Time is cut into periods of a fixed length counted from the Unix epoch: period `n` of a
//! 60 s interval is `[n·60 s, (n+1)·60 s)`. Every worker computes the same period numbers from
//! its clock, so a period number names "this tick" across processes. Before enqueuing a
//! period's jobs a worker *claims* the period: with Redis, `SET <stream>:tick:<key> 1 NX PX
//! <ttl>`, which exactly one worker wins; with the in-process queue there is one worker, so the
//! claim always succeeds. The jobs' idempotency keys carry the period too, so even a job
//! enqueued twice (a claim that expired, a clock far off) completes once.
//!
//! The clock is injected ([`Clock`]) so tests can place a loop at any time of day.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};
use strata_service::events::redact_url;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::runtime::queue::JobsConfig;

/// How long a loop waits before trying a failed claim or enqueue again.
const RETRY: Duration = Duration::from_secs(5);
/// Longest single sleep, so that a wall clock that jumps is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// The wall clock the periodic loops read.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(SystemTime::now)
}

/// Milliseconds since the Unix epoch (0 before it).
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The number of the period of length `every_ms` that `now_ms` falls in.
pub fn period_of(now_ms: u64, every_ms: u64) -> u64 {
    now_ms / every_ms.max(1)
}

/// When the period after the one `now_ms` falls in starts.
pub fn next_period_start(now_ms: u64, every_ms: u64) -> u64 {
    let every = every_ms.max(1);
    (now_ms / every).saturating_add(1).saturating_mul(every)
}

/// A Redis connection opened on first use and dropped after a connection error (the next
/// command reconnects).
#[derive(Debug)]
pub(crate) struct RedisLink {
    client: Client,
    url: String,
    timeout: Duration,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl RedisLink {
    /// Parses `url`; does not connect.
    pub(crate) fn new(url: &str, timeout: Duration) -> Result<Self, String> {
        let client =
            Client::open(url).map_err(|e| format!("redis url {:?}: {e}", redact_url(url)))?;
        Ok(Self {
            client,
            url: redact_url(url),
            timeout,
            connection: Mutex::new(None),
        })
    }

    /// The URL, without a password.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The shared connection, connecting if needed.
    pub(crate) async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let connection = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        Ok(slot.insert(connection).clone())
    }

    /// Forgets the connection after `error` unless Redis itself answered it.
    pub(crate) async fn failed(&self, error: &RedisError) {
        if !matches!(error.kind(), redis::ErrorKind::Server(_)) {
            *self.connection.lock().await = None;
        }
    }
}

/// Decides which worker produces a period's jobs.
#[derive(Debug, Clone)]
pub enum TickClaims {
    /// One process holds the queue (the in-process queue): every claim succeeds.
    Local,
    /// Workers share a Redis queue: the first `SET … NX` wins.
    Redis(Arc<RedisClaims>),
}

/// Claims in Redis, under `<prefix>:tick:<key>`.
#[derive(Debug)]
pub struct RedisClaims {
    link: RedisLink,
    prefix: String,
}

impl TickClaims {
    /// Claims for the queue `jobs` names: Redis next to the jobs stream, or local.
    pub fn for_jobs(jobs: &JobsConfig) -> Result<Self, String> {
        match jobs {
            JobsConfig::Memory(_) => Ok(TickClaims::Local),
            JobsConfig::Redis(redis) => Ok(Self::redis(
                &redis.url,
                &redis.stream,
                Duration::from_millis(redis.command_timeout_ms),
            )?),
        }
    }

    /// Claims in the Redis at `url`, under `<prefix>:tick:`.
    pub fn redis(url: &str, prefix: &str, timeout: Duration) -> Result<Self, String> {
        Ok(TickClaims::Redis(Arc::new(RedisClaims {
            link: RedisLink::new(url, timeout)?,
            prefix: format!("{prefix}:tick:"),
        })))
    }

    /// Whether this worker is the one to produce `key` (a period-qualified name); the claim
    /// lasts `ttl`, long enough for every other worker to have seen the period.
    pub async fn claim(&self, key: &str, ttl: Duration) -> Result<bool, String> {
        let TickClaims::Redis(redis) = self else {
            return Ok(true);
        };
        let mut connection = redis
            .link
            .connection()
            .await
            .map_err(|e| format!("connecting to redis at {}: {e}", redis.link.url()))?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Result<Option<String>, RedisError> = redis::cmd("SET")
            .arg(format!("{}{key}", redis.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut connection)
            .await;
        match set {
            Ok(answer) => Ok(answer.is_some()),
            Err(e) => {
                redis.link.failed(&e).await;
                Err(format!("claiming {key}: {e}"))
            }
        }
    }
}

/// Something that produces jobs once per period.
#[async_trait]
pub(crate) trait Periodic: Send + Sync {
    /// For logs: `index feed "golang"`.
    fn describe(&self) -> String;
    /// The period due at `now_ms`, if any (a schedule outside its window has none).
    fn due(&self, now_ms: u64) -> Option<u64>;
    /// When to look again, after `now_ms`.
    fn next_check(&self, now_ms: u64) -> u64;
    /// The claim key of `period`.
    fn claim_key(&self, period: u64) -> String;
    /// How long a claim lasts.
    fn claim_ttl(&self) -> Duration;
    /// Produces the period's jobs.
    async fn fire(&self, period: u64) -> Result<String, String>;
}

/// Runs `periodic` until `shutdown`: each due period is claimed, and fired by the worker that
/// won the claim; failures are retried within the period.
pub(crate) async fn run(
    periodic: Arc<dyn Periodic>,
    claims: TickClaims,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let what = periodic.describe();
    // The last period handled (fired here or claimed elsewhere), and the last one this worker
    // claimed (so that a failed fire is retried without claiming again).
    let mut done: Option<u64> = None;
    let mut claimed: Option<u64> = None;
    while !shutdown.is_cancelled() {
        let now = unix_ms(clock());
        let mut wake = periodic.next_check(now);
        if let Some(period) = periodic.due(now).filter(|p| done != Some(*p)) {
            let won = if claimed == Some(period) {
                Ok(true)
            } else {
                let key = periodic.claim_key(period);
                claims.claim(&key, periodic.claim_ttl()).await
            };
            match won {
                Ok(true) => {
                    claimed = Some(period);
                    match periodic.fire(period).await {
                        Ok(detail) => {
                            tracing::info!(what, period, detail, "periodic jobs enqueued");
                            done = Some(period);
                        }
                        Err(error) => {
                            tracing::warn!(what, period, %error, "enqueuing periodic jobs failed; retrying");
                            wake = wake.min(now.saturating_add(retry_ms()));
                        }
                    }
                }
                Ok(false) => {
                    tracing::debug!(what, period, "another worker has this period");
                    done = Some(period);
                }
                Err(error) => {
                    tracing::warn!(what, period, %error, "claiming a period failed; retrying");
                    wake = wake.min(now.saturating_add(retry_ms()));
                }
            }
        }
        let sleep = Duration::from_millis(wake.saturating_sub(unix_ms(clock()))).min(MAX_SLEEP);
        tokio::select! {
            () = tokio::time::sleep(sleep.max(Duration::from_millis(1))) => {}
            () = shutdown.cancelled() => {}
        }
    }
}

fn retry_ms() -> u64 {
    u64::try_from(RETRY.as_millis()).unwrap_or(5_000)
}

/// A claim lasts two periods (at least a minute), long enough for every worker to see it.
pub(crate) fn claim_ttl_for(every_ms: u64) -> Duration {
    Duration::from_millis(every_ms.saturating_mul(2).max(60_000))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn periods_count_from_the_epoch() {
        assert_eq!(period_of(0, 1000), 0);
        assert_eq!(period_of(999, 1000), 0);
        assert_eq!(period_of(1000, 1000), 1);
        assert_eq!(next_period_start(0, 1000), 1000);
        assert_eq!(next_period_start(1000, 1000), 2000);
        assert_eq!(next_period_start(1999, 1000), 2000);
        assert_eq!(period_of(5, 0), 5, "a zero length is treated as 1 ms");
        assert_eq!(unix_ms(UNIX_EPOCH + Duration::from_millis(1234)), 1234);
        assert_eq!(claim_ttl_for(1000), Duration::from_secs(60));
        assert_eq!(claim_ttl_for(600_000), Duration::from_secs(1200));
    }

    /// Fires every period of 1 s of a clock that moves 400 ms per reading.
    struct Counter {
        fired: StdMutex<Vec<u64>>,
        fail_first: AtomicU64,
    }

    #[async_trait]
    impl Periodic for Counter {
        fn describe(&self) -> String {
            "counter".into()
        }
        fn due(&self, now_ms: u64) -> Option<u64> {
            Some(period_of(now_ms, 1000))
        }
        fn next_check(&self, now_ms: u64) -> u64 {
            next_period_start(now_ms, 1000)
        }
        fn claim_key(&self, period: u64) -> String {
            format!("counter/{period}")
        }
        fn claim_ttl(&self) -> Duration {
            Duration::from_secs(1)
        }
        async fn fire(&self, period: u64) -> Result<String, String> {
            if self.fail_first.load(Ordering::SeqCst) > 0 {
                self.fail_first.fetch_sub(1, Ordering::SeqCst);
                return Err("queue full".into());
            }
            self.fired.lock().unwrap().push(period);
            Ok(String::new())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_period_fires_once_and_failures_are_retried() {
        let counter = Arc::new(Counter {
            fired: StdMutex::new(Vec::new()),
            fail_first: AtomicU64::new(1),
        });
        // A fake wall clock that advances 400 ms whenever it is read.
        let now = Arc::new(AtomicU64::new(10_000));
        let reading = now.clone();
        let clock: Clock = Arc::new(move || {
            UNIX_EPOCH + Duration::from_millis(reading.fetch_add(400, Ordering::SeqCst))
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            counter.clone(),
            TickClaims::Local,
            clock,
            shutdown.clone(),
        ));
        while now.load(Ordering::SeqCst) < 16_000 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shutdown.cancel();
        task.await.unwrap();
        let fired = counter.fired.lock().unwrap().clone();
        // Period 10 failed once and was retried; no period fired twice and none was skipped.
        assert_eq!(fired[0], 10, "{fired:?}");
        let mut sorted = fired.clone();
        sorted.dedup();
        assert_eq!(sorted, fired, "a period fired twice: {fired:?}");
        assert!(
            fired.windows(2).all(|w| w[1] == w[0] + 1),
            "a period was skipped: {fired:?}"
        );
        assert!(fired.len() >= 4, "{fired:?}");
    }
}

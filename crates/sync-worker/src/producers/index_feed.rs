//! The index follower: reads an upstream index feed in the index.golang.org format and
//! prefetches the new versions it lists into a remote repository.
//!
//! ```toml
//! [[feeds]]
//! name = "golang"                     # names the cursor and the metrics
//! url = "https://index.golang.org"    # GET <url>/index?since=<RFC 3339>&limit=<N>
//! repository = "gocache"              # remote (or virtual) repository to prefetch into
//! include = ["github.com/myorg/*"]    # GOPRIVATE-style patterns; empty = every module
//! exclude = ["github.com/myorg/big"]
//! limit = 2000                        # entries per request
//! poll_interval_ms = 60000
//! start = "2025-01-01T00:00:00Z"      # where a feed without a saved cursor starts (default: the feed's beginning)
//! timeout_ms = 30000                  # per request
//! ```
//!
//! Every `poll_interval_ms` one `index_poll` job per feed is enqueued, keyed
//! `index_poll/<feed>/<period>` and claimed (see [`super::ticks`]), so N workers poll once. The
//! job:
//! 1. loads the cursor (`sync/feeds/<name>.json`, see [`cursor`]);
//! 2. GETs `<url>/index?since=<cursor>&limit=<limit>`: newline-delimited JSON objects
//!    `{"Path","Version","Timestamp"}` in timestamp order;
//! 3. validates each line (a bad one is logged, counted as `invalid` and skipped), skips what
//!    the cursor already covers (`duplicate`) and what the patterns exclude (`filtered`);
//! 4. enqueues one `prefetch` job per remaining entry in one batch (natural keys: a version
//!    prefetched before completes at once);
//! 5. saves the cursor (the last processed entry's timestamp) with compare-and-swap;
//! 6. if the page was full (`limit` lines), enqueues the next page's poll at once, keyed
//!    `index_poll/<feed>/after/<cursor>/<entries so far>`. A full page that brings nothing
//!    new (more entries share the cursor's timestamp than `limit`) is asked for again with a
//!    doubled limit, up to 10000.
//!
//! A failure before the cursor is saved (feed unreachable, queue full, storage down) is
//! retried by the runtime from the same cursor, so nothing is skipped; what was enqueued
//! twice completes once.
//!
//! Metrics: `strata_sync_index_lag_seconds{feed}` (now − timestamp of the last processed
//! entry; it keeps growing while the feed has nothing new) and
//! `strata_sync_index_entries_total{feed,result}` (`enqueued`, `filtered`, `duplicate`,
//! `invalid`).

mod config;
pub mod cursor;
pub mod entry;
mod metrics;
mod page;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use strata_core::path::ModulePath;
use strata_core::pattern::match_prefix_patterns;
use strata_registry_engine::registry::Registry;
use strata_registry_engine::storage::ObjectStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use self::config::FeedConfig;
pub(crate) use self::config::validate;
use self::cursor::{Cursor, CursorStore, MAX_SEEN};
pub use self::metrics::{EntryLabels, FeedLabels, FeedMetrics};
use self::page::{Page, read_page};
use super::ticks::{
    self, Clock, Periodic, TickClaims, claim_ttl_for, next_period_start, period_of,
};
use crate::registry::DocError;
use crate::runtime::handler::{JobContext, JobError, JobHandler, Outcome};
use crate::runtime::job::Job;
use crate::runtime::queue::{JobQueue, NewJob, QueueError};

/// Bytes read per feed line at most (a line is ~150 bytes): the page's body limit is
/// `limit × this`, at least 1 MiB.
const BYTES_PER_LINE: usize = 4096;

/// A validated feed.
#[derive(Debug)]
struct Feed {
    config: FeedConfig,
    index_url: reqwest::Url,
    cursor: CursorStore,
}

impl Feed {
    fn accepts(&self, module: &ModulePath) -> bool {
        let path = module.as_str();
        let included = self.config.include.is_empty()
            || self
                .config
                .include
                .iter()
                .any(|p| match_prefix_patterns(p, path));
        included
            && !self
                .config
                .exclude
                .iter()
                .any(|p| match_prefix_patterns(p, path))
    }
}

/// Follows the configured feeds: the `index_poll` job handler and the poll scheduler.
#[derive(Debug)]
pub struct IndexFollower {
    feeds: BTreeMap<String, Feed>,
    queue: Arc<dyn JobQueue>,
    http: reqwest::Client,
    metrics: FeedMetrics,
}

impl IndexFollower {
    /// Follows `feeds`, keeping cursors in `registry`'s storage and enqueuing into `queue`.
    /// Every feed's repository must have an upstream.
    pub fn new(
        feeds: &[FeedConfig],
        registry: &Registry,
        queue: Arc<dyn JobQueue>,
    ) -> Result<Self, String> {
        Self::with_store(
            feeds,
            registry.store().clone(),
            queue,
            |repo| match registry.remotes_of(repo) {
                Ok(remotes) if remotes.is_empty() => Err(format!(
                    "repository {repo:?} has no upstream to prefetch from"
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            },
        )
    }

    fn with_store(
        feeds: &[FeedConfig],
        store: Arc<dyn ObjectStore>,
        queue: Arc<dyn JobQueue>,
        check_repository: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Self, String> {
        let mut by_name = BTreeMap::new();
        for config in feeds {
            let fail = |e: String| format!("feed {:?}: {e}", config.name);
            config.check().map_err(fail)?;
            check_repository(config.repository.as_str()).map_err(fail)?;
            let base = config.url.trim_end_matches('/');
            let index_url =
                reqwest::Url::parse(&format!("{base}/index")).map_err(|e| fail(e.to_string()))?;
            let cursor =
                CursorStore::new(store.clone(), &config.name).map_err(|e| fail(e.to_string()))?;
            by_name.insert(
                config.name.clone(),
                Feed {
                    config: config.clone(),
                    index_url,
                    cursor,
                },
            );
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("strata-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {e}"))?;
        let metrics = FeedMetrics::default();
        for name in by_name.keys() {
            metrics.start_at_zero(name);
        }
        Ok(Self {
            feeds: by_name,
            queue,
            http,
            metrics,
        })
    }

    /// The metric families, to register with the worker's `/metrics`.
    pub fn metrics(&self) -> &FeedMetrics {
        &self.metrics
    }

    /// The feeds' names.
    pub fn feed_names(&self) -> impl Iterator<Item = &str> {
        self.feeds.keys().map(String::as_str)
    }

    /// Starts one poll scheduler per feed; they stop with `shutdown`.
    pub fn spawn_schedulers(
        &self,
        claims: &TickClaims,
        clock: &Clock,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        self.feeds
            .values()
            .map(|feed| {
                let ticker: Arc<dyn Periodic> = Arc::new(PollTicker {
                    feed: feed.config.name.clone(),
                    every_ms: feed.config.poll_interval_ms,
                    queue: self.queue.clone(),
                });
                tokio::spawn(ticks::run(
                    ticker,
                    claims.clone(),
                    clock.clone(),
                    shutdown.clone(),
                ))
            })
            .collect()
    }

    /// Reads one page of `feed` and enqueues its new versions.
    async fn poll(&self, feed: &Feed) -> Result<Outcome, JobError> {
        let name = &feed.config.name;
        let (saved, etag) = feed
            .cursor
            .load()
            .await
            .map_err(|e| JobError::retryable(format!("feed {name:?}: {e}")))?;
        let since = saved.since.clone().or_else(|| feed.config.start.clone());
        // A full page that brings nothing new means more entries share the cursor's timestamp
        // than fit a page: ask again with a larger limit rather than stall.
        let widest = feed.config.limit.max(MAX_SEEN);
        let mut limit = feed.config.limit;
        let page = loop {
            let lines = self.fetch(feed, since.as_deref(), limit).await?;
            let page = read_page(feed, &lines, &saved, since.as_deref())?;
            let full = lines.len() >= limit;
            if full && !page.advanced(&saved) && limit < widest {
                limit = limit.saturating_mul(2).min(widest);
                tracing::info!(feed = %name, limit,
                    "a full page brought nothing new; asking for a larger page");
                continue;
            }
            break Page { full, ..page };
        };
        let Page {
            mut cursor,
            jobs,
            tally,
            full,
        } = page;
        if !jobs.is_empty() {
            self.queue.enqueue_batch(jobs).await.map_err(|e| match e {
                QueueError::InvalidJob(m) => JobError::permanent(m),
                other => JobError::retryable(format!("feed {name:?}: enqueuing: {other}")),
            })?;
        }
        let advanced = cursor.entries != saved.entries;
        if advanced {
            cursor.updated_at = crate::registry::rfc3339(crate::registry::unix_now());
            self.save(feed, &cursor, etag).await?;
        }
        self.metrics.count(name, "enqueued", tally.enqueued);
        self.metrics.count(name, "filtered", tally.filtered);
        self.metrics.count(name, "duplicate", tally.duplicate);
        self.metrics.count(name, "invalid", tally.invalid);
        if let Some(at) = cursor.at() {
            self.metrics.set_lag(name, at);
        }
        let mut detail = format!(
            "{} lines: {} enqueued, {} filtered, {} duplicate, {} invalid; since {}",
            tally.lines,
            tally.enqueued,
            tally.filtered,
            tally.duplicate,
            tally.invalid,
            cursor.since.as_deref().unwrap_or("the beginning")
        );
        if full && advanced {
            // Keyed by the position reached, so each step of a chain is its own job.
            let next = NewJob::new(Job::IndexPoll { feed: name.clone() }).with_key(format!(
                "index_poll/{name}/after/{}/{}",
                cursor.since.as_deref().unwrap_or(""),
                cursor.entries
            ));
            match self.queue.enqueue(next).await {
                Ok(_) => detail.push_str("; next page enqueued"),
                // The next tick continues from the saved cursor.
                Err(e) => tracing::warn!(feed = %name, error = %e,
                    "enqueuing the next page failed; the next poll continues"),
            }
        } else if full {
            tracing::warn!(feed = %name, limit,
                "a full page brought nothing new even at the largest limit; more entries \
                 share one timestamp than the follower can page through");
        }
        tracing::info!(feed = %name, %detail, "index feed polled");
        Ok(Outcome::with_detail(detail))
    }

    /// Saves `cursor` over the one loaded with `etag`. When another worker saved meanwhile,
    /// its cursor stands if it is at least as far; otherwise the poll is retried from it.
    async fn save(
        &self,
        feed: &Feed,
        cursor: &Cursor,
        etag: Option<strata_registry_engine::storage::ETag>,
    ) -> Result<(), JobError> {
        let name = &feed.config.name;
        match feed.cursor.save(cursor, etag).await {
            Ok(()) => Ok(()),
            Err(DocError::Conflict { .. }) => {
                let (theirs, _) = feed
                    .cursor
                    .load()
                    .await
                    .map_err(|e| JobError::retryable(format!("feed {name:?}: {e}")))?;
                if theirs.at() >= cursor.at() {
                    tracing::info!(feed = %name, "another worker advanced the cursor as far");
                    Ok(())
                } else {
                    Err(JobError::retryable(format!(
                        "feed {name:?}: the cursor was moved by another worker; polling again"
                    )))
                }
            }
            Err(e) => Err(JobError::retryable(format!(
                "feed {name:?}: saving the cursor: {e}"
            ))),
        }
    }

    /// GETs one page: its non-empty lines.
    async fn fetch(
        &self,
        feed: &Feed,
        since: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, JobError> {
        let name = &feed.config.name;
        let mut url = feed.index_url.clone();
        {
            let mut query = url.query_pairs_mut();
            if let Some(since) = since {
                query.append_pair("since", since);
            }
            query.append_pair("limit", &limit.to_string());
        }
        let failed = |e: &dyn std::fmt::Display| {
            JobError::retryable(format!("feed {name:?}: GET {url}: {e}"))
        };
        let mut response = self
            .http
            .get(url.clone())
            .timeout(Duration::from_millis(feed.config.timeout_ms))
            .send()
            .await
            .map_err(|e| failed(&e))?;
        let status = response.status();
        if !status.is_success() {
            let message = format!("feed {name:?}: GET {url}: status {status}");
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(
                if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    match retry_after {
                        Some(delay) => JobError::retry_after(message, delay),
                        None => JobError::retryable(message),
                    }
                } else {
                    JobError::permanent(message)
                },
            );
        }
        let cap = limit.saturating_mul(BYTES_PER_LINE).max(1 << 20);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| failed(&e))? {
            if body.len() + chunk.len() > cap {
                return Err(JobError::retryable(format!(
                    "feed {name:?}: GET {url}: the page is larger than {cap} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body
            .split(|b| *b == b'\n')
            .map(|line| String::from_utf8_lossy(line).trim().to_owned())
            .filter(|line| !line.is_empty())
            .collect())
    }
}

#[async_trait]
impl JobHandler for IndexFollower {
    async fn run(&self, job: &Job, _context: &JobContext) -> Result<Outcome, JobError> {
        let Job::IndexPoll { feed } = job else {
            return Err(JobError::permanent(format!(
                "the index follower does not run {} jobs",
                job.kind()
            )));
        };
        match self.feeds.get(feed) {
            Some(feed) => self.poll(feed).await,
            None => Err(JobError::permanent(format!(
                "no index feed named {feed:?} is configured"
            ))),
        }
    }
}

/// Enqueues one poll of a feed per interval.
#[derive(Debug)]
struct PollTicker {
    feed: String,
    every_ms: u64,
    queue: Arc<dyn JobQueue>,
}

#[async_trait]
impl Periodic for PollTicker {
    fn describe(&self) -> String {
        format!("index feed {:?}", self.feed)
    }

    fn due(&self, now_ms: u64) -> Option<u64> {
        Some(period_of(now_ms, self.every_ms))
    }

    fn next_check(&self, now_ms: u64) -> u64 {
        next_period_start(now_ms, self.every_ms)
    }

    fn claim_key(&self, period: u64) -> String {
        format!("index_poll/{}/{period}", self.feed)
    }

    fn claim_ttl(&self) -> Duration {
        claim_ttl_for(self.every_ms)
    }

    async fn fire(&self, period: u64) -> Result<String, String> {
        let job = NewJob::new(Job::IndexPoll {
            feed: self.feed.clone(),
        })
        .with_key(self.claim_key(period));
        let enqueued = self.queue.enqueue(job).await.map_err(|e| e.to_string())?;
        Ok(format!("poll {}", enqueued.key))
    }
}

#[cfg(test)]
mod tests;

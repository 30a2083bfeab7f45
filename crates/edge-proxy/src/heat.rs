//! Heat: how often each module is read at this edge, reported to Redis in aggregate so that the
//! sync worker can refresh the hottest modules' metadata before it expires and prefetch their
//! new versions, and so that retention does not drop what edges still serve.
//!
//! Every served `list`, `@latest`, `.info`, `.mod` and `.zip` (from any tier) counts one read
//! of its (repository, module, version) in memory; nothing on the request path talks to Redis. Every
//! `heat.flush_ms` the counts are swapped out and written in one pipeline:
//! - `ZINCRBY <prefix>:heat:<repo> <reads> <module>` — a sorted set of modules by reads (every
//!   edge adds to the same set; the worker decays it),
//! - `HSET <prefix>:last-read:<repo> <module>@<version> <unix seconds>` — when a version's
//!   `.info`/`.mod`/`.zip` was last read at any edge.
//!
//! With Redis unreachable the counts of that interval are kept (bounded) and retried with the
//! next flush; heat is advisory, so nothing else waits for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Distinct versions kept between flushes; reads of others are dropped until the next flush.
const MAX_PENDING: usize = 100_000;

/// (repository, module, version).
type VersionKey = (String, String, String);
/// Reads and the last read's time (Unix seconds) per version.
type Counts = HashMap<VersionKey, (u64, u64)>;

/// Reads counted since the last flush.
#[derive(Debug, Default)]
pub struct Heat {
    pending: Mutex<Counts>,
}

/// The Redis keys heat is written to (the worker reads the same ones).
pub use strata_service::keys::{heat_key, last_read_key};

use strata_service::clock::unix_now;

impl Heat {
    /// Counts one read of `module@version` in `repo` (`version` empty for `list`/`@latest`).
    pub fn record(&self, repo: &str, module: &str, version: &str) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = unix_now();
        let key = (repo.to_owned(), module.to_owned(), version.to_owned());
        if let Some((reads, last)) = pending.get_mut(&key) {
            *reads += 1;
            *last = now;
        } else if pending.len() < MAX_PENDING {
            pending.insert(key, (1, now));
        }
    }

    fn take(&self) -> Counts {
        std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn restore(&self, counts: Counts) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, (reads, last)) in counts {
            if pending.len() >= MAX_PENDING && !pending.contains_key(&key) {
                continue;
            }
            let slot = pending.entry(key).or_insert((0, 0));
            slot.0 += reads;
            slot.1 = slot.1.max(last);
        }
    }

    /// Writes the counts gathered so far to Redis; on failure they are kept for the next flush.
    pub async fn flush(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
        prefix: &str,
    ) -> Result<usize, redis::RedisError> {
        let counts = self.take();
        if counts.is_empty() {
            return Ok(0);
        }
        let mut by_module: HashMap<(&str, &str), u64> = HashMap::new();
        let mut pipe = redis::pipe();
        for ((repo, module, version), (reads, last)) in &counts {
            *by_module.entry((repo, module)).or_default() += reads;
            if version.is_empty() {
                // `list`/`@latest`: heat of the module, no version read.
                continue;
            }
            pipe.hset(
                last_read_key(prefix, repo),
                format!("{module}@{version}"),
                last,
            )
            .ignore();
        }
        for ((repo, module), reads) in &by_module {
            pipe.zincr(heat_key(prefix, repo), *module, *reads).ignore();
        }
        let written = counts.len();
        match pipe.query_async::<()>(connection).await {
            Ok(()) => Ok(written),
            Err(e) => {
                self.restore(counts);
                Err(e)
            }
        }
    }

    /// Flushes every `interval` (and once at shutdown) to the Redis at `url`, reconnecting as
    /// needed.
    pub fn spawn_reporter(
        self: std::sync::Arc<Self>,
        url: String,
        prefix: String,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, redis::RedisError> {
        let client = redis::Client::open(url.as_str())?;
        Ok(tokio::spawn(async move {
            let mut connection = None;
            loop {
                let stop = tokio::select! {
                    () = tokio::time::sleep(interval) => false,
                    () = shutdown.cancelled() => true,
                };
                if connection.is_none() {
                    match client.get_multiplexed_async_connection().await {
                        Ok(c) => connection = Some(c),
                        Err(error) => {
                            tracing::warn!(%error, "heat: cannot reach Redis; keeping the counts");
                        }
                    }
                }
                if let Some(c) = connection.as_mut()
                    && let Err(error) = self.flush(c, &prefix).await
                {
                    tracing::warn!(%error, "heat: report failed; keeping the counts");
                    connection = None;
                }
                if stop {
                    return;
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_aggregated_per_version_and_kept_on_failure() {
        let heat = Heat::default();
        for _ in 0..3 {
            heat.record("go", "example.com/a", "v1.0.0");
        }
        heat.record("go", "example.com/a", "v1.1.0");
        heat.record("private", "example.com/b", "v0.1.0");
        let counts = heat.take();
        assert_eq!(counts.len(), 3);
        let a = &counts[&("go".into(), "example.com/a".into(), "v1.0.0".into())];
        assert_eq!(a.0, 3);
        assert!(heat.take().is_empty(), "taken");
        heat.record("go", "example.com/a", "v1.0.0");
        heat.restore(counts);
        let again = heat.take();
        assert_eq!(
            again[&("go".into(), "example.com/a".into(), "v1.0.0".into())].0,
            4,
            "a failed flush's counts add to the new ones"
        );
    }
}

//! The follower's metrics: `strata_sync_index_lag_seconds{feed}` and
//! `strata_sync_index_entries_total{feed,result}`.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::entry::FeedTime;

/// Labels of the lag gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    /// The feed's name.
    pub feed: String,
}

/// Labels of the entries counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EntryLabels {
    /// The feed's name.
    pub feed: String,
    /// `enqueued`, `filtered`, `duplicate` or `invalid`.
    pub result: &'static str,
}

/// The follower's metric families (register them with [`FeedMetrics::register`]).
#[derive(Debug, Clone, Default)]
pub struct FeedMetrics {
    /// Seconds between now and the last processed entry's timestamp.
    pub lag: Family<FeedLabels, Gauge<f64, AtomicU64>>,
    /// Entries read, by what became of them.
    pub entries: Family<EntryLabels, Counter>,
}

impl FeedMetrics {
    /// Registers the families (under the registry's `strata_sync` prefix).
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "index_lag_seconds",
            "Seconds between now and the timestamp of the last processed index feed entry",
            self.lag.clone(),
        );
        registry.register(
            "index_entries",
            "Index feed entries read, by result",
            self.entries.clone(),
        );
    }

    /// Creates `feed`'s entry counters at zero, so that `rate()` and `increase()` see its
    /// first entries.
    pub(super) fn start_at_zero(&self, feed: &str) {
        for result in ["enqueued", "filtered", "duplicate", "invalid"] {
            let _ = self.entries.get_or_create(&EntryLabels {
                feed: feed.to_owned(),
                result,
            });
        }
    }

    pub(super) fn count(&self, feed: &str, result: &'static str, n: u64) {
        if n > 0 {
            self.entries
                .get_or_create(&EntryLabels {
                    feed: feed.to_owned(),
                    result,
                })
                .inc_by(n);
        }
    }

    pub(super) fn set_lag(&self, feed: &str, at: FeedTime) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        self.lag
            .get_or_create(&FeedLabels {
                feed: feed.to_owned(),
            })
            .set((now - at.as_secs_f64()).max(0.0));
    }
}

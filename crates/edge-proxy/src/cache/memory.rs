//! [`MemoryTier`] (L1): small answers in memory, bounded in bytes.
//!
//! moka weighs each entry by its size and admits new entries with TinyLFU: an entry only
//! displaces others if it is likely to be asked for more often, so a one-off scan (a CI job
//! downloading a thousand cold modules once) does not evict the region's hot set.

use std::sync::Arc;

use moka::future::Cache;

use super::{CacheKey, MemEntry};

/// Bytes charged per entry besides its body (key, meta, bookkeeping).
const ENTRY_OVERHEAD: u64 = 256;

/// The memory tier.
#[derive(Debug, Clone)]
pub struct MemoryTier {
    cache: Cache<CacheKey, Arc<MemEntry>>,
    zip_max: u64,
}

impl MemoryTier {
    /// A tier of at most `max_bytes`, keeping zips of at most `zip_max` bytes.
    pub fn new(max_bytes: u64, zip_max: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_key: &CacheKey, entry: &Arc<MemEntry>| {
                u32::try_from(entry.body.len() as u64 + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .build();
        Self { cache, zip_max }
    }

    /// The entry, if held.
    pub async fn get(&self, key: &CacheKey) -> Option<Arc<MemEntry>> {
        self.cache.get(key).await
    }

    /// Offers an entry (admission decides whether it stays).
    pub async fn insert(&self, key: CacheKey, entry: Arc<MemEntry>) {
        self.cache.insert(key, entry).await;
    }

    /// Drops an entry.
    pub async fn remove(&self, key: &CacheKey) {
        self.cache.invalidate(key).await;
    }

    /// Whether a zip of `size` bytes belongs in memory.
    pub fn takes_zip(&self, size: u64) -> bool {
        size <= self.zip_max
    }
}

//! A byte-bounded in-memory cache of immutable checksum-database files (authenticated tiles,
//! verified lookup responses), in front of the object store. Eviction is first-in first-out:
//! the hot tiles are the right edge of the tree, which is re-read from the store at worst.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

/// Files kept in memory, at most `budget` bytes of them.
#[derive(Debug)]
pub(super) struct MemoryCache {
    budget: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

impl MemoryCache {
    /// An empty cache holding at most `budget` bytes.
    pub(super) fn new(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::default(),
        }
    }

    /// The cached content of `file`.
    pub(super) fn get(&self, file: &str) -> Option<Bytes> {
        self.lock().files.get(file).cloned()
    }

    /// Whether `file` is cached.
    pub(super) fn contains(&self, file: &str) -> bool {
        self.lock().files.contains_key(file)
    }

    /// Caches `data` as `file` (unchanged if already there), evicting the oldest files to
    /// stay within the budget. A file larger than an eighth of the budget is not kept.
    pub(super) fn insert(&self, file: &str, data: Bytes) {
        if data.len() > self.budget / 8 {
            return;
        }
        let mut state = self.lock();
        if state.files.contains_key(file) {
            return;
        }
        while state.bytes + data.len() > self.budget {
            let Some(old) = state.order.pop_front() else {
                break;
            };
            if let Some(evicted) = state.files.remove(&old) {
                state.bytes -= evicted.len();
            }
        }
        state.bytes += data.len();
        state.order.push_back(file.to_owned());
        state.files.insert(file.to_owned(), data);
    }

    /// A poisoned cache is still consistent (every update completes under the lock).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_budget() {
        let cache = MemoryCache::new(80);
        for i in 0..20 {
            cache.insert(&format!("f{i}"), Bytes::from(vec![0u8; 10]));
        }
        assert!(cache.get("f0").is_none());
        assert!(cache.get("f19").is_some());
        assert!(cache.contains("f12"));
        assert!(!cache.contains("f11"));
        cache.insert("big", Bytes::from(vec![0u8; 11]));
        assert!(!cache.contains("big"));
    }
}

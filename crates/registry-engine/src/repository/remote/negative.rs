//! Negative caching: what an upstream just said it does not have is not asked for again until
//! the entry expires. Bounded: past the bound, expired entries go first, then everything (a
//! negative cache only saves upstream round trips; losing it is harmless).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Entries kept at most.
const MAX_ENTRIES: usize = 100_000;

/// Recent upstream "not found" answers by request path, with their message.
#[derive(Debug)]
pub(crate) struct NegativeCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl NegativeCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The upstream's message if `path` was not found within the TTL.
    pub(crate) fn get(&self, path: &str) -> Option<String> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(path) {
            Some((at, message)) if at.elapsed() < self.ttl => Some(message.clone()),
            Some(_) => {
                entries.remove(path);
                None
            }
            None => None,
        }
    }

    /// Remembers that `path` was not found.
    pub(crate) fn insert(&self, path: &str, message: String) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(path.to_owned(), (Instant::now(), message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let cache = NegativeCache::new(Duration::from_millis(30));
        cache.insert("/a", "gone".into());
        assert_eq!(cache.get("/a").as_deref(), Some("gone"));
        assert_eq!(cache.get("/b"), None);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get("/a"), None);
        let off = NegativeCache::new(Duration::ZERO);
        off.insert("/a", "x".into());
        assert_eq!(off.get("/a"), None);
    }
}

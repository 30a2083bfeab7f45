//! [`DiskTier`] (L2): entries as files under `<cache.dir>/objects/`, bounded in bytes.
//!
//! - **Atomic writes.** An entry is written to `<cache.dir>/tmp/` and renamed into place, so a
//!   crash leaves a stray temp file (removed at the next start), never a partial entry.
//! - **Index in memory.** Size and last use of every entry; rebuilt at start by scanning the
//!   directory (recency from the files' modification times). Nothing on a request path lists
//!   the directory.
//! - **Eviction.** When a commit takes the total past `cache.disk_bytes`, the least recently
//!   used entries are deleted until it fits. A reader that already opened an evicted file
//!   keeps reading it (the inode lives until closed).
//! - **Verification.** Entries found by the start-up scan are checked the first time they are
//!   read: size and SHA-256 against the meta line, and the `h1:` of `.mod` (hash of the go.mod)
//!   and `.zip` (`dirhash::hash_zip`). A mismatch deletes the entry and counts as a miss, so
//!   the artifact is fetched again. Entries written by this process were verified on the way
//!   in.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{MAX_META_LINE, Meta};
use crate::metrics::{Metrics, TierLabels};

/// An entry opened for reading.
#[derive(Debug)]
pub struct DiskEntry {
    /// Its facts.
    pub meta: Meta,
    /// The open file.
    pub file: File,
    /// Where the bytes start in the file (after the meta line).
    pub data_offset: u64,
}

#[derive(Debug, Default)]
struct Index {
    entries: HashMap<String, Slot>,
    lru: BTreeMap<u64, String>,
    tick: u64,
    total: u64,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    size: u64,
    tick: u64,
    verified: bool,
}

impl Index {
    fn touch(&mut self, rel: &str) -> Option<Slot> {
        self.tick += 1;
        let tick = self.tick;
        let slot = self.entries.get_mut(rel)?;
        self.lru.remove(&slot.tick);
        slot.tick = tick;
        self.lru.insert(tick, rel.to_owned());
        Some(*slot)
    }

    fn insert(&mut self, rel: String, size: u64, verified: bool) {
        self.remove(&rel);
        self.tick += 1;
        let slot = Slot {
            size,
            tick: self.tick,
            verified,
        };
        self.lru.insert(slot.tick, rel.clone());
        self.entries.insert(rel, slot);
        self.total += size;
    }

    fn remove(&mut self, rel: &str) -> bool {
        match self.entries.remove(rel) {
            Some(slot) => {
                self.lru.remove(&slot.tick);
                self.total -= slot.size;
                true
            }
            None => false,
        }
    }

    /// Removes least recently used entries until `total <= max`; returns them.
    fn evict(&mut self, max: u64) -> Vec<String> {
        let mut victims = Vec::new();
        while self.total > max {
            let Some((_, rel)) = self.lru.pop_first() else {
                break;
            };
            if let Some(slot) = self.entries.remove(&rel) {
                self.total -= slot.size;
            }
            victims.push(rel);
        }
        victims
    }
}

/// The disk tier.
#[derive(Debug)]
pub struct DiskTier {
    objects: PathBuf,
    tmp: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    temp_seq: AtomicU64,
    metrics: Arc<Metrics>,
}

impl DiskTier {
    /// Opens (creating) the tier in `dir`: removes temp files a previous run left, scans the
    /// entries into the index, and evicts down to `max_bytes`.
    pub async fn open(dir: &Path, max_bytes: u64, metrics: Arc<Metrics>) -> io::Result<Self> {
        let objects = dir.join("objects");
        let tmp = dir.join("tmp");
        let (o, t) = (objects.clone(), tmp.clone());
        let index = tokio::task::spawn_blocking(move || scan(&o, &t))
            .await
            .map_err(io::Error::other)??;
        let tier = Self {
            objects,
            tmp,
            max_bytes,
            index: Mutex::new(index),
            temp_seq: AtomicU64::new(0),
            metrics,
        };
        tier.evict_to_fit();
        tracing::info!(
            entries = tier.with(|i| i.entries.len()),
            bytes = tier.bytes(),
            "disk tier opened"
        );
        Ok(tier)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Index) -> T) -> T {
        match self.index.lock() {
            Ok(mut index) => f(&mut index),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.with(|i| i.total)
    }

    /// Whether an entry exists (without touching it).
    pub fn contains(&self, rel: &str) -> bool {
        self.with(|i| i.entries.contains_key(rel))
    }

    /// Whether the tier can take a write now (for `/readyz`).
    pub fn is_usable(&self) -> bool {
        let probe = self.tmp.join(".ready");
        let ok = fs::write(&probe, b"ok").is_ok();
        let _ = fs::remove_file(&probe);
        ok
    }

    /// Opens an entry, verifying it first if it came from the start-up scan. A corrupt or
    /// unreadable entry is deleted and reported as absent.
    pub async fn get(&self, rel: &str) -> Option<DiskEntry> {
        let slot = self.with(|i| i.touch(rel))?;
        let path = self.objects.join(rel);
        let verify = !slot.verified;
        let opened = tokio::task::spawn_blocking(move || open_entry(&path, verify)).await;
        match opened {
            Ok(Ok(entry)) => {
                if verify {
                    self.with(|i| {
                        if let Some(s) = i.entries.get_mut(rel) {
                            s.verified = true;
                        }
                    });
                }
                Some(entry)
            }
            Ok(Err(reason)) => {
                tracing::warn!(entry = rel, %reason, "disk cache entry is corrupt or unreadable; dropping it");
                self.metrics
                    .evictions
                    .get_or_create(&TierLabels { tier: "corrupt" })
                    .inc();
                self.remove(rel);
                None
            }
            Err(_) => None,
        }
    }

    /// Reads a whole (small) entry.
    pub async fn get_bytes(&self, rel: &str, limit: u64) -> Option<(Meta, Bytes)> {
        let entry = self.get(rel).await?;
        if entry.meta.size > limit {
            return None;
        }
        let read = tokio::task::spawn_blocking(move || {
            let DiskEntry {
                meta,
                mut file,
                data_offset,
            } = entry;
            file.seek(SeekFrom::Start(data_offset))?;
            let mut body = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
            file.take(meta.size).read_to_end(&mut body)?;
            Ok::<_, io::Error>((meta, Bytes::from(body)))
        })
        .await;
        match read {
            Ok(Ok(v)) if v.1.len() as u64 == v.0.size => Some(v),
            _ => None,
        }
    }

    /// Writes a whole entry (temp file, then rename).
    pub async fn put(&self, rel: &str, meta: &Meta, body: Bytes) -> io::Result<()> {
        let temp = self.temp_path();
        let line = meta.line();
        let t = temp.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = line;
            all.extend_from_slice(&body);
            fs::write(&t, all)
        })
        .await
        .map_err(io::Error::other)??;
        self.commit(&temp, rel).await
    }

    /// A fresh temp file path (in the tier's temp directory, on the same file system).
    pub fn temp_path(&self) -> PathBuf {
        let n = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        self.tmp.join(format!(
            "{}-{n}.part",
            strata_service::events::new_event_id()
        ))
    }

    /// Moves a finished, verified temp file into place as `rel` and evicts to fit.
    pub async fn commit(&self, temp: &Path, rel: &str) -> io::Result<()> {
        let target = self.objects.join(rel);
        let temp = temp.to_owned();
        let size = tokio::task::spawn_blocking(move || {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)?;
            }
            let size = fs::metadata(&temp)?.len();
            fs::rename(&temp, &target)?;
            Ok::<_, io::Error>(size)
        })
        .await
        .map_err(io::Error::other)??;
        self.with(|i| i.insert(rel.to_owned(), size, true));
        self.evict_to_fit();
        Ok(())
    }

    /// Deletes an entry (no-op if absent).
    pub fn remove(&self, rel: &str) {
        if self.with(|i| i.remove(rel)) {
            let _ = fs::remove_file(self.objects.join(rel));
        }
        self.metrics.disk_bytes.set(self.bytes() as i64);
    }

    fn evict_to_fit(&self) {
        let victims = self.with(|i| i.evict(self.max_bytes));
        for rel in &victims {
            let _ = fs::remove_file(self.objects.join(rel));
        }
        if !victims.is_empty() {
            self.metrics
                .evictions
                .get_or_create(&TierLabels { tier: "disk" })
                .inc_by(victims.len() as u64);
        }
        self.metrics.disk_bytes.set(self.bytes() as i64);
    }
}

/// Creates the directories, empties `tmp`, and indexes every file under `objects`, oldest
/// modification first (so they are evicted first).
fn scan(objects: &Path, tmp: &Path) -> io::Result<Index> {
    fs::create_dir_all(objects)?;
    let _ = fs::remove_dir_all(tmp);
    fs::create_dir_all(tmp)?;
    let mut found = Vec::new();
    let mut stack = vec![objects.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                let path = entry.path();
                let Some(rel) = path
                    .strip_prefix(objects)
                    .ok()
                    .and_then(|p| p.to_str())
                    .map(|s| s.replace('\\', "/"))
                else {
                    continue;
                };
                let modified = meta.modified().ok();
                found.push((modified, rel, meta.len()));
            }
        }
    }
    found.sort();
    let mut index = Index::default();
    for (_, rel, size) in found {
        index.insert(rel, size, false);
    }
    Ok(index)
}

/// Opens an entry and parses its meta line; with `verify`, checks its bytes too.
fn open_entry(path: &Path, verify: bool) -> Result<DiskEntry, String> {
    let mut file = File::open(path).map_err(|e| format!("open: {e}"))?;
    let mut head = vec![0u8; MAX_META_LINE];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let newline = head[..filled]
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("no meta line")?;
    let meta: Meta =
        serde_json::from_slice(&head[..newline]).map_err(|e| format!("meta line: {e}"))?;
    let data_offset = newline as u64 + 1;
    let len = file.metadata().map_err(|e| format!("stat: {e}"))?.len();
    if len != data_offset + meta.size {
        return Err(format!(
            "size {} does not match the recorded {}",
            len.saturating_sub(data_offset),
            meta.size
        ));
    }
    if verify {
        super::verify::verify_entry(&mut file, &meta, data_offset)?;
    }
    Ok(DiskEntry {
        meta,
        file,
        data_offset,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cache::EntryKind;
    use strata_core::dirhash::hash_go_mod;

    #[test]
    fn lru_evicts_oldest_untouched_first() {
        let mut i = Index::default();
        i.insert("a".into(), 10, true);
        i.insert("b".into(), 10, true);
        i.insert("c".into(), 10, true);
        i.touch("a");
        assert_eq!(i.evict(20), vec!["b".to_string()]);
        assert_eq!(i.total, 20);
        assert_eq!(i.evict(0), vec!["c".to_string(), "a".to_string()]);
    }

    #[tokio::test]
    async fn corrupt_entries_are_dropped_on_first_read_after_start() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(Metrics::new());
        let tier = DiskTier::open(dir.path(), 1 << 20, metrics.clone())
            .await
            .unwrap();
        let body = Bytes::from_static(b"module example.com/m\n");
        let meta = Meta::of(EntryKind::Mod, &body, Some(hash_go_mod(&body)), None);
        tier.put("r/m.mod", &meta, body.clone()).await.unwrap();
        tier.put("r/n.mod", &meta, body.clone()).await.unwrap();
        drop(tier);
        let path = dir.path().join("objects/r/n.mod");
        let mut raw = fs::read(&path).unwrap();
        let last = raw.len() - 2;
        raw[last] ^= 1;
        fs::write(&path, raw).unwrap();
        let tier = DiskTier::open(dir.path(), 1 << 20, metrics).await.unwrap();
        assert_eq!(tier.get_bytes("r/m.mod", 100).await.unwrap().1, body);
        assert!(tier.get("r/n.mod").await.is_none());
        assert!(!path.exists());
    }
}

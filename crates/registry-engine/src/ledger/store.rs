//! Where a ledger lives in the object store (the layout is in the module documentation of
//! [`super`]), and the typed reads and writes of it. Every key is built here, by one function
//! per kind of object. Tiles and index entries are written once with `put_if_absent` and are a
//! function of the signed heads' records: a writer that finds one already there compares it
//! with what it would have written ([`LedgerStore::put_once`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use strata_core::path::ModulePath;
use strata_core::sumdb::Tile;
use strata_core::version::Version;

use crate::storage::{
    ETag, ObjectKey, ObjectStore, Operation, StorageError, body_from_bytes, read_body,
};

/// Largest object read: a data tile of 256 records of long module paths stays far below.
const MAX_OBJECT_BYTES: usize = 4 << 20;

/// Bytes of tiles kept in memory (tiles are immutable, so the copy never goes stale).
const TILE_CACHE_BYTES: usize = 16 << 20;

/// One ledger's objects in an object store, with a memory cache of tiles.
#[derive(Debug)]
pub(super) struct LedgerStore {
    store: Arc<dyn ObjectStore>,
    /// `ledger/<escaped name>`.
    prefix: String,
    tiles: Mutex<TileCache>,
}

#[derive(Debug, Default)]
struct TileCache {
    tiles: HashMap<Tile, Bytes>,
    bytes: usize,
}

impl LedgerStore {
    /// The objects of the ledger `name` in `store`; fails if the name cannot be a key.
    pub(super) fn new(store: Arc<dyn ObjectStore>, name: &str) -> Result<Self, StorageError> {
        let this = LedgerStore {
            store,
            prefix: format!("ledger/{}", escape_name(name)),
            tiles: Mutex::default(),
        };
        this.head_key()?;
        Ok(this)
    }

    /// `ledger/<name>/head`.
    pub(super) fn head_key(&self) -> Result<ObjectKey, StorageError> {
        ObjectKey::new(format!("{}/head", self.prefix))
    }

    /// `ledger/<name>/index/<module>@<version>`, case-encoded.
    pub(super) fn index_key(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<ObjectKey, StorageError> {
        ObjectKey::new(format!(
            "{}/index/{}@{}",
            self.prefix,
            module.escaped(),
            version.escaped()
        ))
    }

    /// `ledger/<name>/<tile path>`.
    pub(super) fn tile_key(&self, tile: &Tile) -> Result<ObjectKey, StorageError> {
        ObjectKey::new(format!("{}/{}", self.prefix, tile.path()))
    }

    /// The object and its etag; `None` if there is none.
    pub(super) async fn read(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<(Bytes, ETag)>, StorageError> {
        let read = self.read_unless(key, None).await?;
        Ok(read.and_then(|(etag, data)| data.map(|data| (data, etag))))
    }

    /// Writes `data` under `key` unless the key is taken; `None` when written, else what the
    /// key holds (objects of a ledger are never deleted, so it is there to read).
    pub(super) async fn put_once(
        &self,
        key: &ObjectKey,
        data: Bytes,
    ) -> Result<Option<Bytes>, StorageError> {
        match self.store.put_if_absent(key, body_from_bytes(data)).await {
            Ok(_) => Ok(None),
            Err(e) if e.is_conflict() => match self.read(key).await? {
                Some((existing, _)) => Ok(Some(existing)),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Writes `data` under `key`, replacing what is there.
    pub(super) async fn put(&self, key: &ObjectKey, data: Bytes) -> Result<(), StorageError> {
        self.store.put(key, body_from_bytes(data)).await.map(drop)
    }

    /// The head object: its etag, and its bytes unless the etag is `known` (the caller has
    /// them); `None` if there is none.
    pub(super) async fn read_head(
        &self,
        known: Option<&ETag>,
    ) -> Result<Option<(ETag, Option<Bytes>)>, StorageError> {
        self.read_unless(&self.head_key()?, known).await
    }

    /// The object at `key`: its etag, and its bytes unless the etag is `known`; `None` if
    /// there is none.
    async fn read_unless(
        &self,
        key: &ObjectKey,
        known: Option<&ETag>,
    ) -> Result<Option<(ETag, Option<Bytes>)>, StorageError> {
        let object = match self.store.get(key).await {
            Ok(object) => object,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let etag = object.meta.etag.clone();
        if known == Some(&etag) {
            return Ok(Some((etag, None)));
        }
        let data = read_body(object.body, MAX_OBJECT_BYTES)
            .await
            .map_err(|source| StorageError::Body {
                op: Operation::Get,
                key: key.to_string(),
                source,
            })?;
        Ok(Some((etag, Some(data))))
    }

    /// Replaces the head: `put_if_match(expected)`, or `put_if_absent` when there was none.
    /// The new etag; `Ok(None)` when another writer replaced it first.
    pub(super) async fn swap_head(
        &self,
        expected: Option<&ETag>,
        data: Bytes,
    ) -> Result<Option<ETag>, StorageError> {
        let key = self.head_key()?;
        let body = body_from_bytes(data);
        let written = match expected {
            Some(etag) => self.store.put_if_match(&key, etag, body).await,
            None => self.store.put_if_absent(&key, body).await,
        };
        match written {
            Ok(stored) => Ok(Some(stored.etag)),
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A stored tile: the memory cache, then the store.
    pub(super) async fn tile(&self, tile: &Tile) -> Result<Option<Bytes>, StorageError> {
        if let Some(data) = self.cache().tiles.get(tile) {
            return Ok(Some(data.clone()));
        }
        let data = self
            .read(&self.tile_key(tile)?)
            .await?
            .map(|(data, _)| data);
        if let Some(data) = &data {
            self.remember(tile, data.clone());
        }
        Ok(data)
    }

    /// Remembers a tile just written or read.
    pub(super) fn remember(&self, tile: &Tile, data: Bytes) {
        let mut cache = self.cache();
        if cache.bytes + data.len() > TILE_CACHE_BYTES {
            *cache = TileCache::default();
        }
        cache.bytes += data.len();
        if let Some(old) = cache.tiles.insert(*tile, data) {
            cache.bytes -= old.len();
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, TileCache> {
        // Every update leaves the cache consistent, so a poisoned lock is still usable.
        self.tiles.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `name` as one key segment (`/` escaped too), so distinct names never share or nest a prefix.
fn escape_name(name: &str) -> String {
    crate::keys::escape_db_name(name, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fs::FsStore;

    #[test]
    fn keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsStore::open(dir.path()).unwrap());
        let s = LedgerStore::new(store.clone(), "sum.corp.example").unwrap();
        let m = ModulePath::new("example.com/Team/m").unwrap();
        let v = Version::new("v1.0.0-RC1").unwrap();
        assert_eq!(
            s.index_key(&m, &v).unwrap().as_path(),
            "ledger/sum.corp.example/index/example.com/!team/m@v1.0.0-!r!c1"
        );
        let t = Tile {
            h: 8,
            l: -1,
            n: 1234,
            w: 5,
        };
        assert_eq!(
            s.tile_key(&t).unwrap().as_path(),
            "ledger/sum.corp.example/tile/8/data/x001/234.p/5"
        );
        let s = LedgerStore::new(store, "corp.example/sum=x").unwrap();
        assert_eq!(
            s.head_key().unwrap().as_path(),
            "ledger/corp.example=2Fsum=3Dx/head"
        );
    }
}

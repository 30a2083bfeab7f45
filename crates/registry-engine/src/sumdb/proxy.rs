//! The checksum-database proxy (protocol §6.2, §6.3): what the registry answers under
//! `/go/{repo}/sumdb/{name}/…` so go commands reach the database through it.
//!
//! A request path is parsed into a [`SumDbRequest`] before anything else; the path sent upstream
//! is rebuilt from it, so nothing arbitrary reaches the database. Nothing unverified is kept:
//! `/latest` is merged into the verifier's timeline (signature and consistency) before it is
//! served, `/lookup` responses are verified by the same client, and tiles are authenticated
//! against the verified tree head before they are cached for good.

use std::time::Instant;

use bytes::Bytes;
use strata_core::path::ModulePath;
use strata_core::sumdb::{SumDbRequest, Tile};
use strata_core::version::Version;

use super::error::{classify, from_tlog};
use super::ops::MAX_FILE_BYTES;
use super::tiles::{authenticate, check_hash_tile_len, in_tree, tile_prefix};
use super::{ChecksumDb, SumDbError};

/// `Content-Type` of notes, lookups and `/supported`.
pub(super) const TEXT: &str = "text/plain; charset=UTF-8";
/// `Content-Type` of tiles.
pub(super) const BINARY: &str = "application/octet-stream";

/// Tiles never change (a partial tile is fixed for its width).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// A lookup's record never changes, but its tree note ages.
const LOOKUP_CACHE_CONTROL: &str = "public, max-age=3600";
/// A tile beyond the verified tree head, passed through unauthenticated and uncached.
const UNVERIFIED_TILE_CACHE_CONTROL: &str = "no-store";
/// `/supported`.
const SUPPORTED_CACHE_CONTROL: &str = "public, max-age=300";

/// Longest signed tree note accepted from the database.
const MAX_NOTE_BYTES: usize = 64 << 10;

/// A proxied answer: always status 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumDbReply {
    /// The body.
    pub body: Bytes,
    /// `text/plain; charset=UTF-8` or `application/octet-stream`.
    pub content_type: &'static str,
    /// The `Cache-Control` value.
    pub cache_control: String,
}

impl SumDbReply {
    fn new(body: Bytes, content_type: &'static str, cache_control: impl Into<String>) -> Self {
        Self {
            body,
            content_type,
            cache_control: cache_control.into(),
        }
    }
}

impl ChecksumDb {
    /// Answers `path`, the part of a proxied request after `/sumdb/<name>` (`/supported`,
    /// `/latest`, `/lookup/…`, `/tile/…`). A malformed path fails with an `InvalidInput`-kind
    /// error before any upstream request.
    pub async fn proxy(&self, path: &str) -> Result<SumDbReply, SumDbError> {
        let request = SumDbRequest::parse(path).map_err(|reason| SumDbError::InvalidPath {
            db: self.name().to_owned(),
            path: path.to_owned(),
            reason,
        })?;
        match &request {
            SumDbRequest::Supported => {
                Ok(SumDbReply::new(Bytes::new(), TEXT, SUPPORTED_CACHE_CONTROL))
            }
            SumDbRequest::Latest => {
                let note = self.verified_latest().await?;
                let cache_control = match self.latest_ttl.as_secs() {
                    0 => "no-cache".to_owned(),
                    secs => format!("public, max-age={secs}"),
                };
                Ok(SumDbReply::new(note, TEXT, cache_control))
            }
            SumDbRequest::Lookup { module, version } => {
                let body = self.verified_lookup(&request, module, version).await?;
                Ok(SumDbReply::new(body, TEXT, LOOKUP_CACHE_CONTROL))
            }
            SumDbRequest::Tile(tile) => self.proxy_tile(&request, tile).await,
        }
    }

    /// The latest signed tree head, verified and merged into the timeline; fetched at most
    /// once per `latest_ttl_secs`. What is served is the newest verified head, which may be
    /// newer than the database's answer if a lookup already showed one.
    async fn verified_latest(&self) -> Result<Bytes, SumDbError> {
        let mut cached = self.latest.lock().await;
        if let Some((at, note)) = cached.as_ref()
            && at.elapsed() < self.latest_ttl
        {
            return Ok(note.clone());
        }
        let fetched = self
            .ops
            .fetch("/latest", MAX_NOTE_BYTES)
            .await
            .map_err(|source| SumDbError::Upstream {
                db: self.name().to_owned(),
                source,
            })?;
        let note = fetched.clone();
        self.with_client(move |client| client.merge_latest_note(&note))
            .await?
            .map_err(|e| classify(self.name(), &e, None))?;
        let (_, ours) = self.client.latest();
        let note = if ours.is_empty() {
            fetched
        } else {
            Bytes::from(ours)
        };
        *cached = Some((Instant::now(), note.clone()));
        Ok(note)
    }

    /// The lookup response for `module@version`, served only once the client verified it
    /// (which also caches it).
    async fn verified_lookup(
        &self,
        request: &SumDbRequest,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Bytes, SumDbError> {
        let (m, v) = (module.as_str().to_owned(), version.as_str().to_owned());
        self.with_client(move |client| client.lookup(&m, &v))
            .await?
            .map_err(|e| classify(self.name(), &e, Some((module.as_str(), version.as_str()))))?;
        let file = self.ops.file(request.path().trim_start_matches('/'));
        self.ops
            .cached(&file)
            .await
            .ok_or_else(|| SumDbError::Internal {
                db: self.name().to_owned(),
                message: format!("the verified response for {module}@{version} was not kept"),
            })
    }

    /// A tile: from the cache of authenticated tiles, else fetched, authenticated against the
    /// verified tree head, cached and served.
    async fn proxy_tile(
        &self,
        request: &SumDbRequest,
        tile: &Tile,
    ) -> Result<SumDbReply, SumDbError> {
        let file = self.ops.file(&tile.path());
        if let Some(data) = self.cached_tile(tile, &file).await {
            return Ok(SumDbReply::new(data, BINARY, IMMUTABLE));
        }
        let path = request.path();
        let limit = if tile.l >= 0 {
            tile.w as usize * strata_core::sumdb::tlog::HASH_SIZE
        } else {
            MAX_FILE_BYTES
        };
        let data = self.ops.fetch(&path, limit).await.map_err(|source| {
            if source.is_not_found() {
                SumDbError::NotFound {
                    db: self.name().to_owned(),
                    path: path.clone(),
                }
            } else {
                SumDbError::Upstream {
                    db: self.name().to_owned(),
                    source,
                }
            }
        })?;
        let what = format!("tile {}", tile.path());
        if tile.l >= 0 {
            check_hash_tile_len(tile, &data).map_err(|e| from_tlog(self.name(), &e, &what))?;
        }
        if !in_tree(tile, self.client.latest().0.n) {
            // The go command may know a newer tree head than ours.
            self.verified_latest().await?;
        }
        let tree = self.client.latest().0;
        if !in_tree(tile, tree.n) {
            return Ok(SumDbReply::new(data, BINARY, UNVERIFIED_TILE_CACHE_CONTROL));
        }
        let (ops, checked, t) = (self.ops.clone(), data.clone(), *tile);
        self.blocking(move || authenticate(&ops, tree, &t, &checked))
            .await?
            .map_err(|e| from_tlog(self.name(), &e, &what))?;
        self.ops.cache(&file, data.clone()).await;
        Ok(SumDbReply::new(data, BINARY, IMMUTABLE))
    }

    /// An authenticated tile from the cache: the tile itself, or the prefix of its full tile.
    async fn cached_tile(&self, tile: &Tile, file: &str) -> Option<Bytes> {
        if let Some(data) = self.ops.cached(file).await {
            return Some(data);
        }
        let full = tile.full();
        if full == *tile {
            return None;
        }
        let data = self.ops.cached(&self.ops.file(&full.path())).await?;
        tile_prefix(tile, &data).map(Bytes::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_protocol_paths_only() {
        assert_eq!(
            SumDbRequest::parse("/supported"),
            Ok(SumDbRequest::Supported)
        );
        assert_eq!(SumDbRequest::parse("/latest"), Ok(SumDbRequest::Latest));
        let lookup =
            SumDbRequest::parse("/lookup/github.com/%21azure/go@v1.2.3-pre+incompatible").unwrap();
        assert_eq!(
            lookup.path(),
            "/lookup/github.com/!azure/go@v1.2.3-pre+incompatible"
        );
        let tile = SumDbRequest::parse("/tile/8/0/x001/234.p/5").unwrap();
        assert_eq!(tile.path(), "/tile/8/0/x001/234.p/5");
        assert!(matches!(
            SumDbRequest::parse("/tile/8/data/000"),
            Ok(SumDbRequest::Tile(Tile { l: -1, .. }))
        ));
        for bad in [
            "",
            "/",
            "latest",
            "/latest/",
            "/supported/x",
            "/lookup/",
            "/lookup/example.com/m",
            "/lookup/example.com/M@v1.0.0",
            "/lookup/example.com/m@v1.0",
            "/lookup/example.com/m@v1.0.0@v1.0.0",
            "/lookup/../etc@v1.0.0",
            "/tile/8/0/1",
            "/tile/8/0/001.p/256",
            "/tile/0/0/000",
            "/tile/13/0/000",
            "/tile/8/x/000",
            "/tile/8/0/../000",
            "/%zz",
            "/../latest",
            "/latest?x=1",
        ] {
            assert!(SumDbRequest::parse(bad).is_err(), "{bad:?}");
        }
    }
}

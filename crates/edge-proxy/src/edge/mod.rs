//! [`Edge`]: answering one GOPROXY request from the tiers, the registries, or a fallback — the
//! protocol-level logic, independent of HTTP.
//!
//! Order for every request: admit the client ([`crate::access`]), then
//! - immutable (`.info`, `.mod`, `.zip`): memory → disk → registry (zips through
//!   [`crate::fill`], the rest through one shared fetch each);
//! - mutable (`list`, `@latest`, queries): memory if fresh ([`crate::freshness`]) → registry;
//!   when no registry answers, the last answer seen (memory, else disk) marked stale.
//!
//! When no registry answers and nothing is cached, a fallback GOPROXY is asked if one is
//! configured for the module; otherwise the request fails at once with the reasons.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strata_core::dirhash::hash_go_mod;
use strata_core::protocol::ProxyRequest;
use strata_service::coalesce::Coalescer;

use crate::access::{Access, Admitted, Principal};
pub use crate::answer::{Answer, Body, Source};
use crate::answer::{InfoJson, memory_answer};

use crate::cache::disk::DiskTier;
use crate::cache::memory::MemoryTier;
use crate::cache::{CacheKey, EntryKind, MemEntry, Meta};
use crate::config::EdgeConfig;
use crate::error::EdgeError;
use crate::fallback::Fallbacks;
use crate::fill::{self, Fills, ZipTarget};
use crate::freshness::Freshness;
use crate::metrics::Metrics;
use crate::upstream::RegistryPool;

/// Largest answer read whole into memory from disk (a `.mod` may be 16 MiB).
const SMALL_LIMIT: u64 = 17 << 20;

/// The edge's state: tiers, registries, decisions.
#[derive(Debug)]
pub struct Edge {
    /// The configuration it runs with.
    pub config: EdgeConfig,
    /// The registries.
    pub pool: Arc<RegistryPool>,
    /// L2.
    pub disk: Arc<DiskTier>,
    /// L1.
    pub memory: MemoryTier,
    /// Zip downloads.
    pub fills: Arc<Fills>,
    /// Authorization decisions.
    pub access: Access,
    /// Freshness of mutable answers.
    pub freshness: Freshness,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Fallback GOPROXYs.
    pub fallbacks: Fallbacks,
    /// Read counts for the sync worker.
    pub heat: Arc<crate::heat::Heat>,
    /// Registry fetches of small answers in flight, by disk-tier path.
    small: Coalescer<String, Result<Arc<MemEntry>, EdgeError>>,
}

impl Edge {
    /// Assembles the edge from its parts.
    pub fn new(
        config: EdgeConfig,
        pool: Arc<RegistryPool>,
        disk: Arc<DiskTier>,
        metrics: Arc<Metrics>,
        fallbacks: Fallbacks,
    ) -> Self {
        let c = &config.cache;
        let memory = MemoryTier::new(c.memory_bytes, c.memory_zip_max_bytes);
        let fills = Arc::new(Fills::new(
            c.max_fills,
            Arc::clone(&disk),
            Arc::clone(&pool),
            Arc::clone(&metrics),
        ));
        let access = Access::new(
            std::time::Duration::from_millis(config.auth.decision_ttl_ms),
            std::time::Duration::from_millis(config.auth.offline_grace_ms),
        );
        let freshness = Freshness::new(c.metadata_ttl());
        Self {
            config,
            pool,
            disk,
            memory,
            fills,
            access,
            freshness,
            metrics,
            fallbacks,
            heat: Arc::default(),
            small: Coalescer::default(),
        }
    }

    /// Answers `request` for repository `repo` to a client sending `auth`.
    pub async fn serve(
        self: &Arc<Self>,
        repo: &str,
        request: &ProxyRequest,
        auth: Option<&str>,
    ) -> Result<Answer, EdgeError> {
        let principal = Principal::from_header(auth);
        let key = CacheKey::proxy(repo, request);
        let admitted = self
            .access
            .admit(&principal, repo, || self.probe(repo, request, auth))
            .await;
        let result = match admitted {
            Ok(Admitted::Confirmed) if key.is_mutable() => self.mutable(&key, request, auth).await,
            Ok(Admitted::Confirmed) => self.immutable(&key, request, auth).await,
            Ok(Admitted::Offline) => match self.cached(&key).await {
                Some(answer) => return Ok(answer),
                None => Err(EdgeError::NoUpstream {
                    what: request.path(),
                    reasons: "no registry answers and it is not cached".into(),
                    timeout: false,
                }),
            },
            Err(e) => Err(e),
        };
        match result {
            Err(e) if e.is_unreachable() => match self.fallbacks.get(request).await {
                Some(Ok(answer)) => Ok(answer),
                Some(Err(fallback)) => {
                    tracing::warn!(error = %fallback, "fallback GOPROXY failed too");
                    Err(e)
                }
                None => Err(e),
            },
            other => other,
        }
    }

    /// Asks the registry, with the client's credentials, whether it may read `repo`.
    async fn probe(
        &self,
        repo: &str,
        request: &ProxyRequest,
        auth: Option<&str>,
    ) -> Result<(), EdgeError> {
        let module = request.module().as_str();
        match request {
            ProxyRequest::Info(_, v) | ProxyRequest::Mod(_, v) | ProxyRequest::Zip(_, v) => {
                self.pool.stat(repo, module, v.as_str(), auth).await?;
            }
            _ => {
                self.pool.list(repo, module, auth).await?;
            }
        }
        Ok(())
    }

    async fn immutable(
        self: &Arc<Self>,
        key: &CacheKey,
        request: &ProxyRequest,
        auth: Option<&str>,
    ) -> Result<Answer, EdgeError> {
        if let Some(answer) = self.lookup(key).await {
            return Ok(answer);
        }
        match request {
            ProxyRequest::Zip(module, version) => {
                let target = ZipTarget {
                    repo: key.repo.clone(),
                    module: module.as_str().to_owned(),
                    version: version.as_str().to_owned(),
                    rel: key.relative_path(),
                };
                // Twice at most: a fill that finished between our lookup and the join.
                for _ in 0..2 {
                    match self.fills.join(&target, auth) {
                        Some(mut rx) => {
                            let meta = fill::header(&mut rx).await?;
                            return Ok(Answer {
                                meta: (*meta).clone(),
                                body: Body::Fill {
                                    rx,
                                    rel: target.rel.clone(),
                                },
                                source: Source::Registry,
                            });
                        }
                        None => {
                            if let Some(answer) = self.lookup(key).await {
                                return Ok(answer);
                            }
                        }
                    }
                }
                Err(EdgeError::Cache(format!(
                    "{} vanished from the disk tier",
                    target.rel
                )))
            }
            _ => {
                let entry = self.fetch_small(key, request, auth).await?;
                Ok(memory_answer(&entry, Source::Registry))
            }
        }
    }

    async fn mutable(
        self: &Arc<Self>,
        key: &CacheKey,
        request: &ProxyRequest,
        auth: Option<&str>,
    ) -> Result<Answer, EdgeError> {
        let module = request.module().as_str();
        if let Some(entry) = self.memory.get(key).await
            && self.freshness.is_fresh(&key.repo, module, &entry)
        {
            self.metrics.cache_result("memory", key.kind(), "hit");
            return Ok(memory_answer(&entry, Source::Memory));
        }
        self.metrics.cache_result("memory", key.kind(), "miss");
        match self.fetch_small(key, request, auth).await {
            Ok(entry) => Ok(memory_answer(&entry, Source::Registry)),
            Err(e) if e.is_unreachable() => match self.cached(key).await {
                Some(answer) => Ok(answer),
                None => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Whatever the tiers hold for `key`, stale or not (for when no registry answers).
    async fn cached(&self, key: &CacheKey) -> Option<Answer> {
        if !key.is_mutable() {
            return self.lookup(key).await;
        }
        let answer = match self.memory.get(key).await {
            Some(entry) => memory_answer(&entry, Source::Stale),
            None => {
                let (meta, body) = self
                    .disk
                    .get_bytes(&key.relative_path(), SMALL_LIMIT)
                    .await?;
                Answer {
                    meta,
                    body: Body::Bytes(body),
                    source: Source::Stale,
                }
            }
        };
        self.metrics.cache_result("memory", key.kind(), "stale");
        Some(answer)
    }

    /// An immutable entry from memory, else disk (promoting small ones to memory).
    async fn lookup(&self, key: &CacheKey) -> Option<Answer> {
        let kind = key.kind();
        if let Some(entry) = self.memory.get(key).await {
            self.metrics.cache_result("memory", kind, "hit");
            return Some(memory_answer(&entry, Source::Memory));
        }
        self.metrics.cache_result("memory", kind, "miss");
        let rel = key.relative_path();
        let Some(entry) = self.disk.get(&rel).await else {
            self.metrics.cache_result("disk", kind, "miss");
            return None;
        };
        self.metrics.cache_result("disk", kind, "hit");
        if entry.meta.kind == EntryKind::Zip && !self.memory.takes_zip(entry.meta.size) {
            return Some(Answer {
                meta: entry.meta,
                body: Body::File {
                    file: entry.file,
                    data_offset: entry.data_offset,
                },
                source: Source::Disk,
            });
        }
        drop(entry);
        let (meta, body) = self.disk.get_bytes(&rel, SMALL_LIMIT).await?;
        let mem = Arc::new(MemEntry {
            meta,
            body,
            stored: Instant::now(),
            seq: None,
        });
        self.memory.insert(key.clone(), Arc::clone(&mem)).await;
        Some(memory_answer(&mem, Source::Disk))
    }

    /// One shared registry fetch of a small answer, stored in both tiers. The fetch runs in a
    /// task of its own, so it finishes and fills the tiers even if every client that wanted it
    /// hangs up. (Zips have their own, streaming mechanism in [`crate::fill`].)
    async fn fetch_small(
        self: &Arc<Self>,
        key: &CacheKey,
        request: &ProxyRequest,
        auth: Option<&str>,
    ) -> Result<Arc<MemEntry>, EdgeError> {
        let edge = Arc::clone(self);
        let (key, request) = (key.clone(), request.clone());
        let auth = auth.map(str::to_owned);
        let rel = key.relative_path();
        self.small
            .run(rel.clone(), move || async move {
                edge.fetch_small_now(key, request, auth).await
            })
            .await
            .unwrap_or_else(|_abandoned| {
                Err(EdgeError::Unavailable(format!("fetching {rel} failed")))
            })
    }

    async fn fetch_small_now(
        &self,
        key: CacheKey,
        request: ProxyRequest,
        auth: Option<String>,
    ) -> Result<Arc<MemEntry>, EdgeError> {
        let seq = self.freshness.current();
        let (repo, auth) = (key.repo.as_str(), auth.as_deref());
        let module = request.module().as_str();
        let info = |i: crate::proto::VersionInfo| {
            Bytes::from(
                serde_json::to_vec(&InfoJson {
                    version: &i.version,
                    time: &i.time,
                })
                .unwrap_or_default(),
            )
        };
        let (kind, body, h1, source) = match &request {
            ProxyRequest::List(_) => {
                let (versions, up) = self.pool.list(repo, module, auth).await?;
                let mut text = versions.join("\n");
                if !text.is_empty() {
                    text.push('\n');
                }
                (EntryKind::List, Bytes::from(text), None, up)
            }
            ProxyRequest::Latest(_) => {
                let (i, up) = self.pool.latest(repo, module, auth).await?;
                (EntryKind::Info, info(i), None, up)
            }
            ProxyRequest::Query(_, q) => {
                let (i, up) = self.pool.query(repo, module, q, auth).await?;
                (EntryKind::Info, info(i), None, up)
            }
            ProxyRequest::Info(_, v) => {
                let (i, up) = self.pool.info(repo, module, v.as_str(), auth).await?;
                (EntryKind::Info, info(i), None, up)
            }
            ProxyRequest::Mod(_, v) => {
                let (m, up) = self.pool.go_mod(repo, module, v.as_str(), auth).await?;
                let computed = hash_go_mod(&m.content);
                if computed != m.h1 {
                    return Err(EdgeError::Integrity {
                        what: request.path(),
                        detail: format!("h1 {computed} does not match the registry's {}", m.h1),
                    });
                }
                (EntryKind::Mod, m.content, Some(m.h1), up)
            }
            ProxyRequest::Zip(..) => {
                return Err(EdgeError::Cache("zips are not small answers".into()));
            }
        };
        let meta = Meta::of(kind, &body, h1, Some(source.name.clone()));
        if let Err(e) = self
            .disk
            .put(&key.relative_path(), &meta, body.clone())
            .await
        {
            tracing::warn!(entry = %key.relative_path(), error = %e, "could not write to the disk tier");
        }
        let entry = Arc::new(MemEntry {
            meta,
            body,
            stored: Instant::now(),
            seq: Some(seq),
        });
        self.memory.insert(key, Arc::clone(&entry)).await;
        Ok(entry)
    }

    /// Removes an entry from both tiers (a deleted version).
    pub async fn drop_entry(&self, repo: &str, request: &ProxyRequest) {
        let key = CacheKey::proxy(repo, request);
        self.memory.remove(&key).await;
        self.disk.remove(&key.relative_path());
    }
}

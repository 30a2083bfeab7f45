//! Mutable metadata of a remote repository — `@v/list`, `@latest` and non-canonical queries:
//! kept in the object store with the time it was fetched, answered from there within
//! `metadata_ttl_secs`, refreshed from the upstream after that, and served stale (marked as
//! such) when the upstream fails. A changed `list` emits a `list_changed` event.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::semver;
use strata_core::version::Version;

use super::{FillTiming, Inner, RemoteRepository, coalesced};
use crate::error::RegistryError;
use crate::keys::{MetaName, meta_key};
use crate::metrics::MetadataLabels;
use crate::repository::InfoDoc;
use crate::storage::{body_from_bytes, read_body};

/// Largest metadata document accepted from an upstream.
const MAX_METADATA: usize = 16 << 20;

/// Whether an answer is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Within its TTL, or just fetched (local repositories are always fresh).
    Fresh,
    /// Past its TTL: the upstream failed (or the repository is offline), so the last known
    /// answer is served.
    Stale,
}

/// A stored metadata answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MetaDoc {
    /// When it was fetched, in seconds since the Unix epoch.
    fetched_at: u64,
    /// The upstream's body (UTF-8 text or JSON).
    body: String,
}

impl RemoteRepository {
    /// `@v/list`: canonical, non-pseudo versions, deduplicated and semver-sorted.
    pub async fn list(
        &self,
        module: &ModulePath,
    ) -> Result<(Vec<String>, Freshness), RegistryError> {
        let (doc, freshness) = self.inner.metadata(module, MetaName::List).await?;
        Ok((parse_list(&doc.body), freshness))
    }

    /// `@latest`, as the upstream chose it.
    pub async fn latest(&self, module: &ModulePath) -> Result<(InfoDoc, Freshness), RegistryError> {
        let (doc, freshness) = self.inner.metadata(module, MetaName::Latest).await?;
        Ok((parse_info(module, &doc.body, None)?, freshness))
    }

    /// A non-canonical `.info` query (`master`, `v1.2`, a commit prefix).
    pub async fn query(
        &self,
        module: &ModulePath,
        query: &str,
    ) -> Result<(InfoDoc, Freshness), RegistryError> {
        let name = MetaName::Query(query.to_owned());
        let (doc, freshness) = self.inner.metadata(module, name).await?;
        Ok((parse_info(module, &doc.body, None)?, freshness))
    }
}

impl RemoteRepository {
    /// Fetches `list` and `@latest` from the upstream now, whatever their TTL (the sync worker
    /// refreshes hot modules before they expire). Returns the new list. A changed list emits
    /// `list_changed` as usual; a module without tagged versions has no `@latest`, which is
    /// not an error here.
    pub async fn refresh_metadata(
        &self,
        module: &ModulePath,
    ) -> Result<Vec<String>, RegistryError> {
        let inner = &self.inner;
        if inner.config.offline {
            return Err(inner.offline(&upstream_path(module, &MetaName::List)?));
        }
        let mut list = Vec::new();
        for name in [MetaName::List, MetaName::Latest] {
            let path = upstream_path(module, &name)?;
            let this = inner.clone();
            let work = {
                let (module, name, path) = (module.clone(), name.clone(), path.clone());
                async move { this.refresh(&module, &name, &path).await }
            };
            match coalesced(&inner.metadata, (module.clone(), name.clone()), work).await {
                Ok(doc) if name == MetaName::List => list = parse_list(&doc.body),
                Ok(_) => {}
                Err(e)
                    if name == MetaName::Latest
                        && e.kind() == strata_core::protocol::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(list)
    }
}

impl Inner {
    async fn metadata(
        self: &std::sync::Arc<Self>,
        module: &ModulePath,
        name: MetaName,
    ) -> Result<(MetaDoc, Freshness), RegistryError> {
        let key = meta_key(&self.name, module, &name)?;
        let stored = self.read_doc(&key).await?;
        let ttl = self.config.metadata_ttl_secs;
        if let Some(doc) = &stored
            && now().saturating_sub(doc.fetched_at) < ttl
        {
            self.count_metadata("fresh");
            return Ok((doc.clone(), Freshness::Fresh));
        }
        let path = upstream_path(module, &name)?;
        if self.config.offline {
            self.count_metadata("offline");
            return match stored {
                Some(doc) => Ok((doc, Freshness::Stale)),
                None => Err(self.offline(&path)),
            };
        }
        if let Some(e) = self.negative(&path) {
            return Err(e);
        }
        let this = self.clone();
        let work = {
            let (module, name, path) = (module.clone(), name.clone(), path.clone());
            async move { this.refresh(&module, &name, &path).await }
        };
        let fetched = coalesced(&self.metadata, (module.clone(), name.clone()), work).await;
        match fetched {
            Ok(doc) => {
                self.count_metadata("refreshed");
                Ok((doc, Freshness::Fresh))
            }
            Err(e) if e.kind() == strata_core::protocol::ErrorKind::NotFound => Err(e),
            Err(e) => match stored {
                Some(doc) => {
                    tracing::warn!(
                        repository = %self.name, %path, error = %e,
                        "upstream failed; serving stale metadata"
                    );
                    self.count_metadata("stale");
                    Ok((doc, Freshness::Stale))
                }
                None => Err(e),
            },
        }
    }

    /// Fetches one metadata document, checks it and stores it (runs once for all waiters).
    async fn refresh(
        &self,
        module: &ModulePath,
        name: &MetaName,
        path: &str,
    ) -> Result<MetaDoc, RegistryError> {
        let artifact = match name {
            MetaName::List => "list",
            MetaName::Latest => "latest",
            MetaName::Query(_) => "query",
        };
        let query = match name {
            MetaName::Query(q) => q.as_str(),
            _ => "",
        };
        let timing = FillTiming::start(module, query);
        let result = self.upstream.get_bytes(path, MAX_METADATA).await;
        let body = match result {
            Ok(body) => body,
            Err(e) => {
                let e = self.upstream_error(path, e);
                self.count_error(artifact, &e, &timing);
                return Err(e);
            }
        };
        let body = String::from_utf8(body.to_vec()).map_err(|_| {
            RegistryError::Upstream(crate::upstream::UpstreamError::Status {
                url: self.upstream.url(path),
                status: 200,
                body: "response is not UTF-8 text".into(),
            })
        })?;
        if !matches!(name, MetaName::List) {
            let query = match name {
                MetaName::Query(q) => Some(q.as_str()),
                _ => None,
            };
            parse_info(module, &body, query)?;
        }
        let key = meta_key(&self.name, module, name)?;
        let previous = match name {
            MetaName::List => self.read_doc(&key).await.ok().flatten(),
            _ => None,
        };
        let doc = MetaDoc {
            fetched_at: now(),
            body,
        };
        let json = serde_json::to_vec(&doc).map_err(|e| RegistryError::Internal(e.to_string()))?;
        self.store.put(&key, body_from_bytes(json)).await?;
        self.count_fetch(artifact, "ok", &timing);
        if let Some(previous) = previous
            && parse_list(&previous.body) != parse_list(&doc.body)
        {
            self.listener.list_changed(&self.name, module).await;
        }
        Ok(doc)
    }

    async fn read_doc(
        &self,
        key: &crate::storage::ObjectKey,
    ) -> Result<Option<MetaDoc>, RegistryError> {
        let object = match self.store.get(key).await {
            Ok(object) => object,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = read_body(object.body, MAX_METADATA * 2)
            .await
            .map_err(|e| RegistryError::io(format!("reading {key}"), e))?;
        // An unreadable document is as good as none: it gets refetched and overwritten.
        Ok(serde_json::from_slice(&bytes).ok())
    }

    fn count_metadata(&self, result: &'static str) {
        self.metrics
            .remote_metadata
            .get_or_create(&MetadataLabels {
                repository: self.name.to_string(),
                result,
            })
            .inc();
    }
}

/// The upstream path of a metadata request.
fn upstream_path(module: &ModulePath, name: &MetaName) -> Result<String, RegistryError> {
    let m = module.escaped();
    Ok(match name {
        MetaName::List => format!("/{m}/@v/list"),
        MetaName::Latest => format!("/{m}/@latest"),
        MetaName::Query(q) => {
            let q = strata_core::path::escape_version(q)
                .map_err(|e| RegistryError::NotFound(format!("{module}@{q}: {e}")))?;
            format!("/{m}/@v/{q}.info")
        }
    })
}

/// The versions of a `list` body the go command would use: the first field of each line,
/// canonical semver and not a pseudo-version, deduplicated, semver-sorted.
pub(crate) fn parse_list(body: &str) -> Vec<String> {
    let mut versions: Vec<String> = body
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|v| Version::new(v).is_ok())
        .filter(|v| !strata_core::pseudo::is_pseudo_version(v))
        .map(str::to_owned)
        .collect();
    versions.sort_by(|a, b| semver::compare(a, b));
    versions.dedup();
    versions
}

/// Parses an `.info`/`@latest` body: `Version` must be canonical (and equal the requested
/// version when one was asked for by its canonical name). The upstream's bytes are kept so
/// that the answer is byte-identical.
pub(crate) fn parse_info(
    module: &ModulePath,
    body: &str,
    requested: Option<&str>,
) -> Result<InfoDoc, RegistryError> {
    #[derive(Deserialize)]
    struct Info {
        #[serde(rename = "Version")]
        version: String,
        #[serde(rename = "Time", default)]
        time: String,
    }
    let bad = |why: String| {
        RegistryError::Upstream(crate::upstream::UpstreamError::Status {
            url: format!("{module}"),
            status: 200,
            body: why,
        })
    };
    let info: Info =
        serde_json::from_str(body).map_err(|e| bad(format!("invalid .info JSON: {e}")))?;
    if Version::new(&info.version).is_err() {
        return Err(bad(format!(
            "upstream .info names the non-canonical version {:?}",
            info.version
        )));
    }
    if let Some(requested) = requested
        && Version::new(requested).is_ok()
        && requested != info.version
    {
        return Err(bad(format!(
            "upstream returned info for version {} instead of requested version {requested}",
            info.version
        )));
    }
    Ok(InfoDoc {
        version: info.version,
        time: info.time,
        raw: Some(Bytes::from(body.to_owned())),
    })
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_filtered_like_the_go_command() {
        let body = "v1.1.0\nv1.0.0 2020-01-01T00:00:00Z\nnot-a-version\nv1.0\n\
                    v0.0.0-20200101000000-abcdefabcdef\nv1.0.0\nv2.0.0+incompatible\n";
        assert_eq!(
            parse_list(body),
            vec!["v1.0.0", "v1.1.0", "v2.0.0+incompatible"]
        );
    }

    #[test]
    fn info_must_be_canonical_and_match() {
        let m = ModulePath::new("example.com/m").unwrap();
        let body = r#"{"Version":"v1.0.0","Time":"2020-01-01T00:00:00Z","Origin":{"VCS":"git"}}"#;
        let info = parse_info(&m, body, Some("v1.0.0")).unwrap();
        assert_eq!(info.version, "v1.0.0");
        assert_eq!(info.to_json(), Bytes::from(body));
        assert!(parse_info(&m, body, Some("v1.0.1")).is_err());
        assert!(parse_info(&m, r#"{"Version":"1.0"}"#, None).is_err());
        assert!(parse_info(&m, "{", None).is_err());
    }
}

//! The worker's embedded central registry: the registry library over the registry's own
//! storage, configured by the very file the registry runs with.
//!
//! ```toml
//! [registry]
//! config = "registry.toml"   # relative to the worker's config file
//! ```
//!
//! The worker loads that file ([`RegistryConfig::load`]), opens its storage, builds an event
//! bus from its `events` section (so the worker's `integrity_violation` and `list_changed`
//! events reach the edges exactly like the registry's own) and a [`Registry`] on top. In one
//! process with the registry (`strata up`), [`EmbeddedRegistry::from_registry`] takes the
//! registry that is already built instead.
//!
//! The worker also keeps its own small documents in that storage, under `sync/` (warm-up sets,
//! pins, scrub cursors, retention reports, prefetch failures): every worker sharing the
//! registry's storage sees the same ones. [`read_doc`] / [`write_doc`] read and write them as
//! JSON.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_core::pseudo::Timestamp;
use strata_registry_engine::config::RegistryConfig;
use strata_registry_engine::events::EventBus;
use strata_registry_engine::metrics::Metrics as RegistryMetrics;
use strata_registry_engine::registry::Registry;
use strata_registry_engine::storage::{
    ETag, ObjectKey, ObjectStore, StorageError, body_from_bytes, read_body,
};
use strata_service::config::ServiceConfig as _;
use tokio_util::sync::CancellationToken;

/// The largest `sync/` document read (a warm-up set of a very large go.sum stays far below).
const MAX_DOC: usize = 64 << 20;

/// The `[registry]` section of the worker configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistrySection {
    /// The registry's configuration file (storage, repositories, upstreams, checksum
    /// databases, events, tokens). A relative path is taken from the worker config's
    /// directory.
    pub config: PathBuf,
}

impl RegistrySection {
    /// The registry config's path, `base` being the directory of the worker's config file (the
    /// loader resolves it so when it reads that file).
    pub fn path_from(&self, base: Option<&Path>) -> PathBuf {
        match base {
            Some(base) if self.config.is_relative() => base.join(&self.config),
            _ => self.config.clone(),
        }
    }
}

/// Why the embedded registry could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The registry configuration could not be read or is invalid.
    #[error("registry configuration: {0}")]
    Config(#[from] strata_registry_engine::config::ConfigError),
    /// The engine (storage, events, repositories) could not be opened.
    #[error("registry: {0}")]
    Open(#[from] strata_registry_engine::OpenError),
}

/// The registry the handlers drive, with what came with it.
#[derive(Debug, Clone)]
pub struct EmbeddedRegistry {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The registry library's metrics (upstream fetches made by warm-ups, …); `None` when the
    /// registry was handed over by the process that owns them.
    pub metrics: Option<Arc<RegistryMetrics>>,
    /// The bus the worker's registry emits on, when the worker built it.
    pub events: Option<EventBus>,
}

impl EmbeddedRegistry {
    /// Loads the registry configuration named by `section` (a relative path was already taken
    /// from the worker configuration's directory when that was loaded) and opens the registry
    /// over its storage.
    pub async fn open(
        section: &RegistrySection,
        shutdown: CancellationToken,
    ) -> Result<Self, OpenError> {
        let config = RegistryConfig::load(&section.config)?;
        Self::from_config(&config, shutdown).await
    }

    /// Opens the registry `config` describes through the engine's one assembly
    /// ([`strata_registry_engine::open`]): its storage, an event bus from its `events` section
    /// (running until `shutdown`), and the registry.
    pub async fn from_config(
        config: &RegistryConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, OpenError> {
        let opened = strata_registry_engine::open(config, shutdown).await?;
        Ok(Self {
            registry: opened.registry,
            metrics: Some(opened.metrics),
            events: Some(opened.events),
        })
    }

    /// A registry built by the surrounding process (`strata up`).
    pub fn from_registry(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            metrics: None,
            events: None,
        }
    }

    /// The registry's object store (where the worker's `sync/` documents live too).
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        self.registry.store()
    }
}

/// A `sync/` document that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    /// Storage failed.
    #[error("{key}: {source}")]
    Storage {
        /// The document.
        key: String,
        /// The failure.
        source: StorageError,
    },
    /// The stored bytes are not the document expected.
    #[error("{key}: unreadable document: {message}")]
    Corrupt {
        /// The document.
        key: String,
        /// Why.
        message: String,
    },
    /// Another writer changed the document in between (compare-and-swap lost).
    #[error("{key}: changed concurrently")]
    Conflict {
        /// The document.
        key: String,
    },
}

/// The key `sync/<path>`.
pub fn sync_key(path: &str) -> Result<ObjectKey, StorageError> {
    ObjectKey::new(format!("sync/{path}"))
}

/// Reads a JSON document with its etag; `None` if there is none.
pub async fn read_doc<T: DeserializeOwned>(
    store: &Arc<dyn ObjectStore>,
    key: &ObjectKey,
) -> Result<Option<(T, ETag)>, DocError> {
    let object = match store.get(key).await {
        Ok(object) => object,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(source) => {
            return Err(DocError::Storage {
                key: key.to_string(),
                source,
            });
        }
    };
    let etag = object.meta.etag.clone();
    let bytes = read_body(object.body, MAX_DOC)
        .await
        .map_err(|e| DocError::Corrupt {
            key: key.to_string(),
            message: e.to_string(),
        })?;
    let doc = serde_json::from_slice(&bytes).map_err(|e| DocError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    Ok(Some((doc, etag)))
}

/// How a document is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Create or replace.
    Overwrite,
    /// Only if there is none yet.
    IfAbsent,
    /// Only if it is still at this etag.
    IfMatch(ETag),
}

/// Writes a JSON document.
pub async fn write_doc<T: Serialize>(
    store: &Arc<dyn ObjectStore>,
    key: &ObjectKey,
    doc: &T,
    how: Write,
) -> Result<(), DocError> {
    let body = serde_json::to_vec_pretty(doc).map_err(|e| DocError::Corrupt {
        key: key.to_string(),
        message: e.to_string(),
    })?;
    let body = body_from_bytes(bytes::Bytes::from(body));
    let written = match &how {
        Write::Overwrite => store.put(key, body).await,
        Write::IfAbsent => store.put_if_absent(key, body).await,
        Write::IfMatch(etag) => store.put_if_match(key, etag, body).await,
    };
    match written {
        Ok(_) => Ok(()),
        Err(e) if e.is_conflict() && how != Write::Overwrite => Err(DocError::Conflict {
            key: key.to_string(),
        }),
        Err(source) => Err(DocError::Storage {
            key: key.to_string(),
            source,
        }),
    }
}

/// Deletes a document (deleting a missing one succeeds).
pub async fn delete_doc(store: &Arc<dyn ObjectStore>, key: &ObjectKey) -> Result<(), DocError> {
    store.delete(key).await.map_err(|source| DocError::Storage {
        key: key.to_string(),
        source,
    })
}

/// Seconds since the Unix epoch.
pub use strata_service::clock::unix_now;

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds (UTC), as the documents under `sync/` record times:
/// [`Timestamp`]'s RFC 3339 form.
pub fn rfc3339(unix_secs: u64) -> String {
    Timestamp::from_unix_seconds(i64::try_from(unix_secs).unwrap_or(i64::MAX)).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_704_164_645), "2024-01-02T03:04:05Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }

    #[test]
    fn relative_registry_configs_follow_the_worker_config() {
        let section = RegistrySection {
            config: "registry.toml".into(),
        };
        assert_eq!(
            section.path_from(Some(Path::new("/etc/strata"))),
            PathBuf::from("/etc/strata/registry.toml")
        );
        assert_eq!(section.path_from(None), PathBuf::from("registry.toml"));
        let absolute = RegistrySection {
            config: "/srv/registry.toml".into(),
        };
        assert_eq!(
            absolute.path_from(Some(Path::new("/etc/strata"))),
            PathBuf::from("/srv/registry.toml")
        );
    }

    #[tokio::test]
    async fn documents_round_trip_with_compare_and_swap() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> =
            Arc::new(strata_registry_engine::storage::fs::FsStore::open(dir.path()).unwrap());
        let key = sync_key("test/doc.json").unwrap();
        assert!(
            read_doc::<Vec<u32>>(&store, &key).await.unwrap().is_none(),
            "nothing yet"
        );
        write_doc(&store, &key, &vec![1u32], Write::IfAbsent)
            .await
            .unwrap();
        let again = write_doc(&store, &key, &vec![2u32], Write::IfAbsent).await;
        assert!(matches!(again, Err(DocError::Conflict { .. })), "{again:?}");
        let (doc, etag) = read_doc::<Vec<u32>>(&store, &key).await.unwrap().unwrap();
        assert_eq!(doc, vec![1]);
        write_doc(&store, &key, &vec![3u32], Write::IfMatch(etag.clone()))
            .await
            .unwrap();
        let stale = write_doc(&store, &key, &vec![4u32], Write::IfMatch(etag)).await;
        assert!(matches!(stale, Err(DocError::Conflict { .. })), "{stale:?}");
        assert_eq!(
            read_doc::<Vec<u32>>(&store, &key).await.unwrap().unwrap().0,
            vec![3]
        );
        let corrupt = read_doc::<String>(&store, &key).await;
        assert!(matches!(corrupt, Err(DocError::Corrupt { .. })));
        delete_doc(&store, &key).await.unwrap();
        assert!(read_doc::<Vec<u32>>(&store, &key).await.unwrap().is_none());
    }
}

//! Choosing a backend from configuration: `storage = { kind = "fs", … }` or
//! `storage = { kind = "s3", … }`.

use std::sync::Arc;

use serde::Deserialize;

use crate::storage::{
    ObjectStore, StorageError,
    fs::{FsConfig, FsStore},
    s3::{S3Config, S3Store},
};

/// The storage section of the registry configuration, tagged by `kind`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StorageConfig {
    /// Files under a local directory (the embedded default).
    Fs(FsConfig),
    /// An S3-compatible bucket.
    S3(S3Config),
}

/// Opens the configured backend. For S3 this builds the client without contacting the store;
/// readiness checks belong to the caller.
pub async fn open_store(config: &StorageConfig) -> Result<Arc<dyn ObjectStore>, StorageError> {
    Ok(match config {
        StorageConfig::Fs(fs) => {
            let store = FsStore::open(&fs.root)?;
            // Writes interrupted by a crash leave temp files; an hour without progress is far
            // beyond any live upload's pause.
            match store
                .remove_stale_temp_files(std::time::Duration::from_secs(3600))
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "removed stale temp files of interrupted writes"
                ),
                Err(e) => tracing::warn!(error = %e, "could not sweep stale temp files"),
            }
            Arc::new(store)
        }
        StorageConfig::S3(s3) => Arc::new(S3Store::connect(s3).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tagged_configs() {
        let fs: Result<StorageConfig, _> = serde_json::from_str(r#"{"kind":"fs","root":"./data"}"#);
        assert!(matches!(fs, Ok(StorageConfig::Fs(_))));
        let s3: Result<StorageConfig, _> = serde_json::from_str(
            r#"{"kind":"s3","bucket":"b","endpoint":"http://127.0.0.1:9000","path_style":true}"#,
        );
        assert!(
            matches!(s3, Ok(StorageConfig::S3(ref c)) if c.path_style),
            "{s3:?}"
        );
        let typo: Result<StorageConfig, _> = serde_json::from_str(r#"{"kind":"fs","rot":"x"}"#);
        assert!(typo.is_err());
    }
}

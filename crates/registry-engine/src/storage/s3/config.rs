//! Configuration of the S3 backend: where the bucket is, how to sign, how big the parts are.

use std::fmt;

use serde::Deserialize;

use crate::storage::{KeyPrefix, StorageError};

/// Smallest part S3 accepts (all parts but the last).
pub(super) const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part S3 accepts.
pub(super) const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Configuration of the S3 backend (`storage = { kind = "s3", bucket = "…", … }`).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket holding the objects. Must exist (see
    /// [`S3Store::ensure_bucket`](super::S3Store::ensure_bucket) for dev setups).
    pub bucket: String,
    /// Region to sign for. Default `us-east-1`, which most S3-compatible stores accept.
    #[serde(default = "default_region")]
    pub region: String,
    /// Endpoint URL of an S3-compatible store (`http://127.0.0.1:9000`); AWS when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual hosts: needed by most
    /// self-hosted stores. Default false.
    #[serde(default)]
    pub path_style: bool,
    /// A key prefix inside the bucket (`"strata/"`), so several deployments can share one.
    #[serde(default)]
    pub prefix: String,
    /// Where credentials come from. Default: the AWS default chain.
    #[serde(default)]
    pub credentials: S3Credentials,
    /// Multipart part size in bytes, also the threshold above which uploads go multipart.
    /// Between 5 MiB and 5 GiB; default 8 MiB. At most two parts are held in memory per upload.
    #[serde(default = "default_part_size")]
    pub part_size: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_part_size() -> u64 {
    8 * 1024 * 1024
}

/// Where the S3 backend gets its credentials.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum S3Credentials {
    /// The AWS default chain: environment, profile, web identity, container, instance metadata.
    #[default]
    DefaultChain,
    /// A fixed access key, e.g. for a self-hosted store.
    Static {
        /// Access key id.
        access_key_id: String,
        /// Secret access key.
        secret_access_key: String,
        /// Session token, for temporary credentials.
        #[serde(default)]
        session_token: Option<String>,
    },
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DefaultChain => f.write_str("DefaultChain"),
            Self::Static { access_key_id, .. } => f
                .debug_struct("Static")
                .field("access_key_id", access_key_id)
                .finish_non_exhaustive(),
        }
    }
}

impl S3Config {
    /// Checks what serde cannot: a usable bucket name, prefix and part size.
    pub fn validate(&self) -> Result<(), StorageError> {
        let invalid = |what: String| Err(StorageError::Config(what));
        if self.bucket.is_empty() {
            return invalid("s3 bucket is empty".into());
        }
        if !(MIN_PART_SIZE..=MAX_PART_SIZE).contains(&self.part_size) {
            return invalid(format!(
                "s3 part_size {} is outside 5 MiB..=5 GiB",
                self.part_size
            ));
        }
        if !self.prefix.is_empty() && !self.prefix.ends_with('/') {
            return invalid(format!("s3 prefix {:?} must end with `/`", self.prefix));
        }
        if let Some(endpoint) = &self.endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return invalid(format!("s3 endpoint {endpoint:?} is not an http(s) URL"));
        }
        KeyPrefix::new(self.prefix.clone())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_rejects_unknown_fields_and_bad_sizes() {
        let parsed: Result<S3Config, _> = serde_json::from_str(
            r#"{"bucket":"b","credentials":{"kind":"static","access_key_id":"a","secret_access_key":"s"}}"#,
        );
        assert!(
            parsed.as_ref().is_ok_and(|c| c.validate().is_ok()),
            "{parsed:?}"
        );
        let unknown: Result<S3Config, _> = serde_json::from_str(r#"{"bucket":"b","bukket":"c"}"#);
        assert!(unknown.is_err());
        let small: Result<S3Config, _> = serde_json::from_str(r#"{"bucket":"b","part_size":1024}"#);
        assert!(small.is_ok_and(|c| c.validate().is_err()));
        let typo = r#"{"bucket":"b","credentials":{"kind":"static","access_key":"a"}}"#;
        assert!(serde_json::from_str::<S3Config>(typo).is_err());
        let endpoint: Result<S3Config, _> =
            serde_json::from_str(r#"{"bucket":"b","endpoint":"127.0.0.1:9000"}"#);
        assert!(endpoint.is_ok_and(|c| c.validate().is_err()));
        let secret = S3Credentials::Static {
            access_key_id: "a".into(),
            secret_access_key: "hunter2".into(),
            session_token: None,
        };
        assert!(!format!("{secret:?}").contains("hunter2"));
    }
}

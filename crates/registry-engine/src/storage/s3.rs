//! The S3 backend: any S3-compatible store through `aws-sdk-s3`.
//!
//! Reads stream the response body. Writes buffer at most one part to decide between a single
//! `PutObject` and a multipart upload, which keeps two parts in memory at most and is aborted on
//! any failure ([`upload`]). Conditional writes map to `If-None-Match: *` and `If-Match: <etag>`
//! on `PutObject`/`CompleteMultipartUpload`, so the store itself arbitrates races: the backend
//! holds no locks. The store must support conditional writes (AWS S3 since 2024, MinIO).
//!
//! Multipart uploads abandoned by a crashed process are invisible but hold storage: give the
//! bucket a lifecycle rule that aborts incomplete multipart uploads after a day.

mod config;
mod sdk_error;
mod upload;

use std::{ops::Range, time::SystemTime};

pub use self::config::{S3Config, S3Credentials};
use crate::storage::{
    ByteRange, ByteStream, ETag, GetObject, KeyPrefix, ObjectKey, ObjectMeta, ObjectStore,
    Operation, PutCondition, StorageError, Stored, body_from_reader,
};
use async_trait::async_trait;
use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation,
        ResponseChecksumValidation,
    },
    operation::get_object::GetObjectOutput,
    primitives::DateTime,
};
use futures::{StreamExt, stream::BoxStream};

/// Objects in an S3 bucket; see the module documentation.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    part_size: u64,
}

impl S3Store {
    /// Builds a client from `config` (no request is made).
    pub async fn connect(config: &S3Config) -> Result<Self, StorageError> {
        config.validate()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()));
        if let S3Credentials::Static {
            access_key_id,
            secret_access_key,
            session_token,
        } = &config.credentials
        {
            loader = loader.credentials_provider(Credentials::new(
                access_key_id,
                secret_access_key,
                session_token.clone(),
                None,
                "strata-config",
            ));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        // Checksums only where S3 requires them: S3-compatible stores differ in their support
        // of the newer flexible-checksum headers and trailers.
        let s3_config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.path_style)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Ok(Self {
            client: Client::from_conf(s3_config),
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            part_size: config.part_size,
        })
    }

    /// Creates the bucket if it does not exist: for development and tests; production buckets
    /// are provisioned with their lifecycle rules by the operator.
    pub async fn ensure_bucket(&self) -> Result<(), StorageError> {
        let op = Operation::Open;
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(()),
            Err(e) if sdk_error::failure(&e).status == Some(404) => {}
            Err(e) => return Err(sdk_error::backend(op, &self.bucket, e)),
        }
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error()
                        .map(|s| s.is_bucket_already_owned_by_you()),
                    Some(true)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error::backend(op, &self.bucket, e)),
        }
    }

    /// The object name of `key` in the bucket: the only key-to-name mapping of this backend.
    fn object_name(&self, key: &ObjectKey) -> String {
        format!("{}{}", self.prefix, key.as_path())
    }

    /// The key of an object name from a listing, if it is under this store's prefix.
    fn key_of(&self, name: &str) -> Option<Result<ObjectKey, StorageError>> {
        name.strip_prefix(&self.prefix).map(ObjectKey::new)
    }

    async fn get_object(
        &self,
        op: Operation,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<GetObject, StorageError> {
        if range.is_some_and(starts_past_any_object) {
            let size = self.head(key).await?.size;
            return Err(StorageError::RangeNotSatisfiable {
                op,
                key: key.as_path().to_owned(),
                size,
            });
        }
        let name = self.object_name(key);
        let request = self.client.get_object().bucket(&self.bucket).key(&name);
        let output = match request.set_range(range.map(range_header)).send().await {
            Ok(output) => output,
            Err(e) => {
                return match sdk_error::map(op, key.as_path(), e) {
                    StorageError::RangeNotSatisfiable { op, key: k, .. } => {
                        let size = self.head(key).await?.size;
                        Err(StorageError::RangeNotSatisfiable { op, key: k, size })
                    }
                    other => Err(other),
                };
            }
        };
        let (range, size) = served_range(op, key, range.is_some(), &output)?;
        let meta = ObjectMeta {
            key: key.clone(),
            size,
            etag: etag(op, key, output.e_tag())?,
            last_modified: modified(output.last_modified()),
        };
        let body = body_from_reader(output.body.into_async_read());
        Ok(GetObject { meta, range, body })
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        let op = Operation::Head;
        let request = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.object_name(key));
        let output = request
            .send()
            .await
            .map_err(|e| sdk_error::map(op, key.as_path(), e))?;
        Ok(ObjectMeta {
            key: key.clone(),
            size: length(op, key, output.content_length())?,
            etag: etag(op, key, output.e_tag())?,
            last_modified: modified(output.last_modified()),
        })
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetObject, StorageError> {
        self.get_object(Operation::Get, key, None).await
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<GetObject, StorageError> {
        self.get_object(Operation::GetRange, key, Some(range)).await
    }

    async fn put_with(
        &self,
        key: &ObjectKey,
        body: ByteStream,
        condition: PutCondition,
    ) -> Result<Stored, StorageError> {
        upload::put(self, key, body, condition).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let op = Operation::Delete;
        let request = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_name(key));
        match request
            .send()
            .await
            .map_err(|e| sdk_error::map(op, key.as_path(), e))
        {
            Ok(_) => Ok(()),
            Err(StorageError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn list(&self, prefix: &KeyPrefix) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        let store = self.clone();
        let label = prefix.to_string();
        let pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{}", self.prefix, prefix.as_str()))
            .into_paginator()
            .send();
        futures::stream::unfold(Some(pages), move |pages| {
            let (store, label) = (store.clone(), label.clone());
            async move {
                let mut pages = pages?;
                let items: Vec<_> = match pages.next().await? {
                    Ok(page) => page
                        .contents()
                        .iter()
                        .filter_map(|o| store.listed(o))
                        .collect(),
                    // Stop after reporting the error: a failed page has no continuation token.
                    Err(e) => {
                        return Some((vec![Err(sdk_error::map(Operation::List, &label, e))], None));
                    }
                };
                Some((items, Some(pages)))
            }
        })
        .flat_map(futures::stream::iter)
        .boxed()
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<Stored, StorageError> {
        let op = Operation::Copy;
        // Copy exactly the version measured, so the reported size belongs to the copied bytes.
        let source = self.head(from).await.map_err(|e| match e {
            StorageError::NotFound { key, .. } => StorageError::NotFound { op, key },
            other => other,
        })?;
        let copy_source = format!(
            "{}/{}",
            self.bucket,
            percent_encode(&self.object_name(from))
        );
        let output = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(self.object_name(to))
            .copy_source(copy_source)
            .copy_source_if_match(source.etag.quoted())
            .send()
            .await
            .map_err(|e| sdk_error::map(op, from.as_path(), e))?;
        let etag = output.copy_object_result().and_then(|r| r.e_tag());
        Ok(Stored {
            etag: self::etag(op, to, etag)?,
            size: source.size,
        })
    }
}

impl S3Store {
    fn listed(
        &self,
        object: &aws_sdk_s3::types::Object,
    ) -> Option<Result<ObjectMeta, StorageError>> {
        let op = Operation::List;
        let name = object.key()?;
        Some(self.key_of(name)?.and_then(|key| {
            Ok(ObjectMeta {
                size: length(op, &key, object.size())?,
                etag: etag(op, &key, object.e_tag())?,
                last_modified: modified(object.last_modified()),
                key,
            })
        }))
    }
}

/// Which bytes a GET response carries and the object's full size, from `Content-Range` for a
/// ranged read.
fn served_range(
    op: Operation,
    key: &ObjectKey,
    ranged: bool,
    output: &GetObjectOutput,
) -> Result<(Range<u64>, u64), StorageError> {
    let length = length(op, key, output.content_length())?;
    if !ranged {
        return Ok((0..length, length));
    }
    let header = output.content_range().ok_or_else(|| {
        sdk_error::protocol(
            op,
            key.as_path(),
            "ranged GET answered without Content-Range",
        )
    })?;
    parse_content_range(header).ok_or_else(|| {
        sdk_error::protocol(
            op,
            key.as_path(),
            format!("unparsable Content-Range {header:?}"),
        )
    })
}

/// Parses `bytes first-last/size` into (`first..last+1`, `size`).
fn parse_content_range(header: &str) -> Option<(Range<u64>, u64)> {
    let (span, size) = header.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, size) = (
        first.parse::<u64>().ok()?,
        last.parse::<u64>().ok()?,
        size.parse().ok()?,
    );
    (first <= last && last < size).then_some((first..last + 1, size))
}

fn length(op: Operation, key: &ObjectKey, length: Option<i64>) -> Result<u64, StorageError> {
    length
        .and_then(|l| u64::try_from(l).ok())
        .ok_or_else(|| sdk_error::protocol(op, key.as_path(), "response without a valid size"))
}

fn etag(op: Operation, key: &ObjectKey, etag: Option<&str>) -> Result<ETag, StorageError> {
    etag.map(ETag::new)
        .ok_or_else(|| sdk_error::protocol(op, key.as_path(), "response without an ETag"))
}

/// The object's modification time; the epoch if the store did not say (never on S3 or MinIO).
fn modified(time: Option<&DateTime>) -> SystemTime {
    time.and_then(|t| SystemTime::try_from(*t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Percent-encodes an object name for `x-amz-copy-source`, keeping `/` and RFC 3986 unreserved
/// characters.
fn percent_encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether `range` starts past any object a store can hold (an int64 size), so it can be
/// answered as not satisfiable without asking a backend that would misread it.
fn starts_past_any_object(range: ByteRange) -> bool {
    match range {
        ByteRange::From(start) | ByteRange::Inclusive(start, _) => start > i64::MAX as u64,
        ByteRange::Suffix(_) => false,
    }
}

/// `range` as an HTTP `Range` header value. A last position past what a signed 64-bit integer
/// holds is sent as "to the end", which means the same: S3-protocol servers parse positions as
/// int64 and would otherwise ignore the whole header.
fn range_header(range: ByteRange) -> String {
    match range {
        ByteRange::From(start) => format!("bytes={start}-"),
        ByteRange::Inclusive(start, end) if end > i64::MAX as u64 => format!("bytes={start}-"),
        ByteRange::Suffix(n) if n > i64::MAX as u64 => "bytes=0-".to_owned(),
        ByteRange::Inclusive(start, end) => format!("bytes={start}-{end}"),
        ByteRange::Suffix(n) => format!("bytes=-{n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_stay_within_int64() {
        assert_eq!(range_header(ByteRange::Inclusive(1, 2)), "bytes=1-2");
        assert_eq!(range_header(ByteRange::Inclusive(1, u64::MAX)), "bytes=1-");
        assert!(starts_past_any_object(ByteRange::From(u64::MAX)));
        assert!(!starts_past_any_object(ByteRange::Suffix(u64::MAX)));
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 0-99/1234"), Some((0..100, 1234)));
        assert_eq!(parse_content_range("bytes 5-4/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
    }

    #[test]
    fn copy_source_encoding() {
        assert_eq!(percent_encode("a/b!c+d@v1.0.zip"), "a/b%21c%2Bd%40v1.0.zip");
    }
}

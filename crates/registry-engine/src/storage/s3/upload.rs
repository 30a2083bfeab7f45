//! Writing to S3 with bounded memory: a body that fits in one part goes up as a single
//! `PutObject`; a longer one as a multipart upload that reads the next part while the previous
//! one uploads (two parts in memory at most) and is aborted if anything fails, including the
//! caller dropping the write. The write condition rides on the request that makes the object
//! visible, so S3 checks it atomically.

use std::io;

use aws_sdk_s3::{
    Client,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::{S3Store, etag, sdk_error};
use crate::storage::{
    ByteStream, ObjectKey, ObjectStore, Operation, PutCondition, StorageError, Stored,
};

/// S3's limit on the number of parts of one upload.
const MAX_PARTS: i32 = 10_000;

const OP: Operation = Operation::Put;

/// Writes `body` under `key` if `condition` holds; see the module documentation.
pub(super) async fn put(
    store: &S3Store,
    key: &ObjectKey,
    body: ByteStream,
    condition: PutCondition,
) -> Result<Stored, StorageError> {
    let body_err = |e| StorageError::body(OP, key, e);
    let mut parts = PartReader::new(body, store.part_size);
    let first = parts
        .next_part()
        .await
        .map_err(body_err)?
        .unwrap_or_default();
    if parts.at_end().await.map_err(body_err)? {
        return put_single(store, key, first, &condition).await;
    }
    // Fail before uploading a large body whose commit could only fail; the commit re-checks.
    precheck(store, key, &condition).await?;
    let name = store.object_name(key);
    let created = store
        .client
        .create_multipart_upload()
        .bucket(&store.bucket)
        .key(&name)
        .send()
        .await
        .map_err(|e| sdk_error::map(OP, key.as_path(), e))?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| sdk_error::protocol(OP, key.as_path(), "multipart upload without an id"))?;
    let pending = PendingUpload {
        client: store.client.clone(),
        bucket: store.bucket.clone(),
        name,
        upload_id: upload_id.to_owned(),
        armed: true,
    };
    match upload_parts(store, key, &pending, first, parts, &condition).await {
        Ok(stored) => {
            pending.disarm();
            Ok(stored)
        }
        Err(e) => {
            pending.abort().await;
            Err(e)
        }
    }
}

async fn put_single(
    store: &S3Store,
    key: &ObjectKey,
    content: Bytes,
    condition: &PutCondition,
) -> Result<Stored, StorageError> {
    let size = content.len() as u64;
    let request = store
        .client
        .put_object()
        .bucket(&store.bucket)
        .key(store.object_name(key))
        .content_length(content.len() as i64)
        .body(aws_sdk_s3::primitives::ByteStream::from(content));
    let request = match condition {
        PutCondition::Overwrite => request,
        PutCondition::IfAbsent => request.if_none_match("*"),
        PutCondition::IfMatch(expected) => request.if_match(expected.quoted()),
    };
    let output = request
        .send()
        .await
        .map_err(|e| put_error(key, condition, e))?;
    Ok(Stored {
        etag: etag(OP, key, output.e_tag())?,
        size,
    })
}

/// Uploads `first` and the rest of `parts`, then completes the upload under `condition`.
async fn upload_parts(
    store: &S3Store,
    key: &ObjectKey,
    pending: &PendingUpload,
    first: Bytes,
    mut parts: PartReader,
    condition: &PutCondition,
) -> Result<Stored, StorageError> {
    let mut completed = Vec::new();
    let mut size = 0;
    let mut current = first;
    let mut number = 1;
    loop {
        if number > MAX_PARTS {
            let message = format!(
                "body exceeds {MAX_PARTS} parts of {} bytes",
                store.part_size
            );
            return Err(sdk_error::protocol(OP, key.as_path(), message));
        }
        size += current.len() as u64;
        let upload = upload_part(pending, key, number, current);
        let read_next = async {
            parts
                .next_part()
                .await
                .map_err(|e| StorageError::body(OP, key, e))
        };
        let (part_etag, next) = futures::try_join!(upload, read_next)?;
        completed.push(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part_etag)
                .build(),
        );
        match next {
            Some(part) => current = part,
            None => break,
        }
        number += 1;
    }
    let request = pending
        .client
        .complete_multipart_upload()
        .bucket(&pending.bucket)
        .key(&pending.name)
        .upload_id(&pending.upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(completed))
                .build(),
        );
    let request = match condition {
        PutCondition::Overwrite => request,
        PutCondition::IfAbsent => request.if_none_match("*"),
        PutCondition::IfMatch(expected) => request.if_match(expected.quoted()),
    };
    let output = request
        .send()
        .await
        .map_err(|e| put_error(key, condition, e))?;
    Ok(Stored {
        etag: etag(OP, key, output.e_tag())?,
        size,
    })
}

async fn upload_part(
    pending: &PendingUpload,
    key: &ObjectKey,
    number: i32,
    content: Bytes,
) -> Result<String, StorageError> {
    let output = pending
        .client
        .upload_part()
        .bucket(&pending.bucket)
        .key(&pending.name)
        .upload_id(&pending.upload_id)
        .part_number(number)
        .content_length(content.len() as i64)
        .body(aws_sdk_s3::primitives::ByteStream::from(content))
        .send()
        .await
        .map_err(|e| sdk_error::map(OP, key.as_path(), e))?;
    output
        .e_tag()
        .map(str::to_owned)
        .ok_or_else(|| sdk_error::protocol(OP, key.as_path(), "uploaded part without an ETag"))
}

/// Fails early with `Conflict` if `condition` already does not hold.
async fn precheck(
    store: &S3Store,
    key: &ObjectKey,
    condition: &PutCondition,
) -> Result<(), StorageError> {
    let holds = match (condition, store.head(key).await) {
        (PutCondition::Overwrite, _) => true,
        (PutCondition::IfAbsent, Err(e)) if e.is_not_found() => true,
        (PutCondition::IfAbsent, Ok(_)) => false,
        (PutCondition::IfMatch(_), Err(e)) if e.is_not_found() => false,
        (PutCondition::IfMatch(expected), Ok(meta)) => meta.etag == *expected,
        (_, Err(e)) => return Err(e),
    };
    if holds {
        Ok(())
    } else {
        Err(StorageError::conflict(OP, key))
    }
}

/// Maps a failed commit: besides 412/409, S3 answers a 404 to `If-Match` on a missing object,
/// which for a compare-and-swap is a lost race like any other.
fn put_error<E>(
    key: &ObjectKey,
    condition: &PutCondition,
    e: aws_sdk_s3::error::SdkError<E>,
) -> StorageError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let failure = sdk_error::failure(&e);
    if matches!(condition, PutCondition::IfMatch(_)) && failure.is_missing_object() {
        return StorageError::conflict(OP, key);
    }
    sdk_error::map(OP, key.as_path(), e)
}

/// A multipart upload in progress, aborted unless disarmed: explicitly on errors, from `Drop`
/// when the write is cancelled.
struct PendingUpload {
    client: Client,
    bucket: String,
    name: String,
    upload_id: String,
    armed: bool,
}

impl PendingUpload {
    fn disarm(mut self) {
        self.armed = false;
    }

    async fn abort(mut self) {
        self.armed = false;
        if let Err(e) = self.abort_request().send().await {
            tracing::warn!(
                key = %self.name,
                upload_id = %self.upload_id,
                error = %aws_sdk_s3::error::DisplayErrorContext(&e),
                "aborting a failed multipart upload failed; a lifecycle rule must clean it up"
            );
        }
    }

    fn abort_request(
        &self,
    ) -> aws_sdk_s3::operation::abort_multipart_upload::builders::AbortMultipartUploadFluentBuilder
    {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.name)
            .upload_id(&self.upload_id)
    }
}

impl Drop for PendingUpload {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        // Cancelled mid-upload: abort in the background (best effort; no runtime, no abort).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let request = self.abort_request();
            runtime.spawn(async move {
                let _ = request.send().await;
            });
        }
    }
}

impl std::fmt::Debug for PendingUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingUpload")
            .field("name", &self.name)
            .field("upload_id", &self.upload_id)
            .finish_non_exhaustive()
    }
}

/// Cuts a body into parts of exactly `part_size` bytes (the last may be shorter).
struct PartReader {
    body: ByteStream,
    part_size: usize,
    /// Bytes read past the end of the previous part.
    pending: Option<Bytes>,
    ended: bool,
}

impl PartReader {
    fn new(body: ByteStream, part_size: u64) -> Self {
        let part_size = usize::try_from(part_size).unwrap_or(usize::MAX);
        Self {
            body,
            part_size,
            pending: None,
            ended: false,
        }
    }

    /// The next part, `None` once the body is exhausted.
    async fn next_part(&mut self) -> io::Result<Option<Bytes>> {
        let mut part = BytesMut::new();
        while part.len() < self.part_size {
            let mut chunk = match self.pending.take() {
                Some(chunk) => chunk,
                None if self.ended => break,
                None => match self.body.next().await {
                    Some(chunk) => chunk?,
                    None => {
                        self.ended = true;
                        break;
                    }
                },
            };
            let room = self.part_size - part.len();
            if chunk.len() > room {
                self.pending = Some(chunk.split_off(room));
            }
            part.extend_from_slice(&chunk);
        }
        Ok((!part.is_empty()).then(|| part.freeze()))
    }

    /// Whether the body has no bytes left (reads ahead one chunk to find out).
    async fn at_end(&mut self) -> io::Result<bool> {
        while self.pending.is_none() && !self.ended {
            match self.body.next().await {
                Some(chunk) => {
                    let chunk = chunk?;
                    if !chunk.is_empty() {
                        self.pending = Some(chunk);
                    }
                }
                None => self.ended = true,
            }
        }
        Ok(self.pending.is_none())
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use super::*;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    #[tokio::test]
    async fn parts_are_cut_exactly() -> io::Result<()> {
        let mut reader = PartReader::new(body(&[b"abc", b"", b"defgh", b"ij"]), 4);
        let mut parts = Vec::new();
        while let Some(part) = reader.next_part().await? {
            parts.push(part);
        }
        assert_eq!(parts, [&b"abcd"[..], b"efgh", b"ij"]);
        assert!(reader.at_end().await?);

        let mut exact = PartReader::new(body(&[b"abcd"]), 4);
        assert_eq!(exact.next_part().await?.as_deref(), Some(&b"abcd"[..]));
        assert!(exact.at_end().await?);
        assert_eq!(
            exact.next_part().await?,
            None,
            "polling past the end is safe"
        );
        let mut empty = PartReader::new(body(&[]), 4);
        assert_eq!(empty.next_part().await?, None);
        assert_eq!(empty.next_part().await?, None);
        Ok(())
    }
}

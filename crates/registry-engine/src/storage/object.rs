//! The values storage operations exchange: etags, metadata, byte ranges, bodies and write
//! conditions.

use std::{fmt, io, ops::Range, time::SystemTime};

use bytes::{Bytes, BytesMut};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use crate::storage::ObjectKey;

/// A body, read or written: a stream of chunks that may fail. Reads hand one out, writes take one,
/// so a read can be piped into a write without buffering.
pub type ByteStream = BoxStream<'static, io::Result<Bytes>>;

/// Wraps bytes already in memory as a body.
pub fn body_from_bytes(bytes: impl Into<Bytes>) -> ByteStream {
    futures::stream::once(futures::future::ready(Ok(bytes.into()))).boxed()
}

/// Wraps an [`AsyncRead`] as a body (64 KiB chunks).
pub fn body_from_reader(reader: impl AsyncRead + Send + 'static) -> ByteStream {
    ReaderStream::with_capacity(reader, 64 * 1024).boxed()
}

/// Reads a whole body into memory, failing with [`io::ErrorKind::InvalidData`] past `limit`
/// bytes. Meant for small objects such as a version index, never for zips.
pub async fn read_body(mut body: ByteStream, limit: usize) -> io::Result<Bytes> {
    let mut out = BytesMut::new();
    while let Some(chunk) = body.try_next().await? {
        if out.len() + chunk.len() > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("body is larger than the {limit}-byte limit"),
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// An entity tag: changes whenever an object's content changes. fs uses the SHA-256 of the
/// content; S3 uses its own (MD5-based) etags. Stored without the surrounding quotes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    /// Wraps an etag, dropping the quotes an HTTP header carries (`"abc"` → `abc`).
    pub fn new(etag: impl Into<String>) -> Self {
        let etag = etag.into();
        match etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
            Some(inner) => Self(inner.to_owned()),
            None => Self(etag),
        }
    }

    /// The bare etag.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The etag as an HTTP header value: `"abc"`.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ETag({:?})", self.0)
    }
}

/// What `head` reports, and what a listing yields for each object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: ObjectKey,
    /// Size of the whole object in bytes.
    pub size: u64,
    /// Entity tag of the current content.
    pub etag: ETag,
    /// When the current content was written.
    pub last_modified: SystemTime,
}

/// What a successful write reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Entity tag of the content just written: pass it to the next `put_if_match`.
    pub etag: ETag,
    /// Bytes written.
    pub size: u64,
}

/// A byte range to read, in HTTP `Range` terms (RFC 9110 §14.1.2): the one type the front
/// ends parse from a `Range` header and the backends read.
pub use strata_service::conditional::ByteRange;

/// A read in progress: metadata of the whole object, which bytes the body carries, and the body.
pub struct GetObject {
    /// Metadata of the whole object (its full size, not the range's).
    pub meta: ObjectMeta,
    /// The half-open byte range `body` carries: `0..size` for a whole-object read.
    pub range: Range<u64>,
    /// The content. The object's content is fixed when the read starts: a concurrent write or
    /// delete does not change what this body yields.
    pub body: ByteStream,
}

impl fmt::Debug for GetObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GetObject")
            .field("meta", &self.meta)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// When a write may take effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutCondition {
    /// Always: create or replace.
    Overwrite,
    /// Only if no object has the key (S3 `If-None-Match: *`).
    IfAbsent,
    /// Only if the object exists with this etag (S3 `If-Match`): compare-and-swap.
    IfMatch(ETag),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_http() {
        assert_eq!(ByteRange::From(3).resolve(10), Some(3..10));
        assert_eq!(ByteRange::From(10).resolve(10), None);
        assert_eq!(ByteRange::Inclusive(2, 4).resolve(10), Some(2..5));
        assert_eq!(ByteRange::Inclusive(2, 400).resolve(10), Some(2..10));
        assert_eq!(ByteRange::Inclusive(5, 4).resolve(10), None);
        assert_eq!(ByteRange::Inclusive(0, 0).resolve(0), None);
        assert_eq!(ByteRange::Suffix(3).resolve(10), Some(7..10));
        assert_eq!(ByteRange::Suffix(30).resolve(10), Some(0..10));
        assert_eq!(ByteRange::Suffix(0).resolve(10), None);
        assert_eq!(ByteRange::Suffix(3).resolve(0), None);
    }

    #[test]
    fn etags_drop_quotes() {
        assert_eq!(ETag::new("\"abc\"").as_str(), "abc");
        assert_eq!(ETag::new("abc").quoted(), "\"abc\"");
    }
}

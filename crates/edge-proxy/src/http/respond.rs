//! Turning answers and errors into HTTP responses: status and cache policy from
//! `strata_core::protocol`, strong ETags with `If-None-Match`, single `Range`s on zips, HEAD.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Mutex;

use bytes::Bytes;
use futures::TryStreamExt;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use strata_core::protocol::CacheClass;
use strata_service::conditional::{if_none_match, parse_range};

use crate::answer::{Answer, Body, Source};
use crate::cache::EntryKind;
use crate::error::EdgeError;
use crate::fill;

/// The response body type.
pub type ResponseBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// `X-Strata-Cache`: where the answer came from.
pub const X_CACHE: &str = "x-strata-cache";

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A plain-text response (errors, health): [`strata_service::reply::text`].
pub fn text(
    status: StatusCode,
    cache: CacheClass,
    body: impl Into<String>,
) -> Response<ResponseBody> {
    strata_service::reply::text(status, cache, body).map(full)
}

/// The response for an error: its kind's status and cache policy, its message as the body, and
/// the `Basic` challenge on 401 ([`strata_service::reply::error`]).
pub fn error(e: &EdgeError) -> Response<ResponseBody> {
    strata_service::reply::error(e.kind(), e.to_string()).map(full)
}

/// The response for an answer.
pub async fn answer(
    method: &Method,
    headers: &HeaderMap,
    cache: CacheClass,
    answer: Answer,
    disk: std::sync::Arc<crate::cache::disk::DiskTier>,
) -> Response<ResponseBody> {
    let Answer { meta, body, source } = answer;
    let stale = source == Source::Stale;
    let cache = if stale || source == Source::Fallback {
        CacheClass::UpstreamFailure
    } else {
        cache
    };
    let mut base = Response::new(full(Bytes::new()));
    let h = base.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache.cache_control()),
    );
    h.insert(X_CACHE, HeaderValue::from_static(source.as_str()));
    if stale {
        h.insert(
            header::WARNING,
            HeaderValue::from_static("110 - \"Response is Stale\""),
        );
    }
    if let Body::Stream(response) = body {
        // A fallback's body, passed through as it comes.
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(meta.kind.content_type()),
        );
        if let Some(len) = response.content_length() {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        }
        if *method != Method::HEAD {
            let stream = response.bytes_stream().map_err(std::io::Error::other);
            *base.body_mut() = stream_body(stream);
        }
        return base;
    }
    // A zip still streaming from a registry has no SHA-256 yet: no ETag rather than `""`.
    let etag = format!("\"{}\"", meta.etag);
    if !meta.etag.is_empty()
        && let Ok(v) = HeaderValue::from_str(&etag)
    {
        h.insert(header::ETAG, v);
    }
    if let Some(h1) = meta
        .h1
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert("x-go-checksum", h1);
    }
    let if_none_match_values = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok());
    if !meta.etag.is_empty() && if_none_match(if_none_match_values, &etag) {
        *base.status_mut() = StatusCode::NOT_MODIFIED;
        return base;
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(meta.kind.content_type()),
    );
    let size = meta.size;
    let (start, end) = if meta.kind == EntryKind::Zip {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            None => (0, size),
            Some(range) => match parse_range(range).map(|r| r.resolve(size)) {
                Some(Some(r)) => (r.start, r.end),
                Some(None) => {
                    let mut r = text(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        CacheClass::UpstreamFailure,
                        format!("range {range:?} not satisfiable for {size} bytes"),
                    );
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        r.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return r;
                }
                None => (0, size),
            },
        }
    } else {
        (0, size)
    };
    if (start, end) != (0, size) {
        *base.status_mut() = StatusCode::PARTIAL_CONTENT;
        let value = format!("bytes {start}-{}/{size}", end - 1);
        if let Ok(v) = HeaderValue::from_str(&value) {
            base.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    }
    base.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if *method == Method::HEAD {
        return base;
    }
    *base.body_mut() = match body {
        Body::Bytes(b) => full(b.slice(start as usize..end as usize)),
        Body::File { file, data_offset } => {
            stream_body(file_stream(file, data_offset + start, end - start))
        }
        Body::Fill { rx, rel } => stream_body(fill::follow(rx, start, end, disk, rel)),
        Body::Stream(_) => full(Bytes::new()),
    };
    base
}

fn stream_body(
    s: impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
) -> ResponseBody {
    StreamBody::new(s.map_ok(Frame::data)).boxed_unsync()
}

/// Read size when streaming a disk-tier entry. Each read is one round trip to the blocking
/// pool (a thread wake-up and a task wake-up), which costs more than copying 64 KiB, so reads
/// are larger than the fill's. A response holds one or two chunks at a time, whatever the
/// entry's size.
pub const FILE_CHUNK: usize = 256 << 10;

/// Idle chunk buffers kept for reuse (8 MiB at most).
const IDLE_CHUNKS: usize = 32;

/// Chunk buffers no response is using. A fresh buffer of [`FILE_CHUNK`] bytes is a fresh
/// mapping from the allocator (page faults as it is filled, an unmap when it is freed), which
/// cost a warm disk-tier stream a third of its CPU time; a reused one is already mapped.
static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// One chunk of a disk-tier stream: the first `len` bytes of a pooled buffer, which goes
/// back to the pool when the last `Bytes` pointing into it is dropped.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
}

impl Chunk {
    /// A buffer of [`FILE_CHUNK`] initialized bytes (stale content from earlier use).
    fn buffer() -> Vec<u8> {
        let idle = IDLE.lock().ok().and_then(|mut idle| idle.pop());
        idle.unwrap_or_else(|| vec![0; FILE_CHUNK])
    }
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.len() == FILE_CHUNK
            && let Ok(mut idle) = IDLE.lock()
            && idle.len() < IDLE_CHUNKS
        {
            idle.push(buf);
        }
    }
}

/// `len` bytes of `file` from `offset`, in [`FILE_CHUNK`]s, each read on the blocking pool.
pub fn file_stream(
    file: std::fs::File,
    offset: u64,
    len: u64,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::try_unfold(
        (file, offset, len, false),
        |(mut file, pos, left, sought)| async move {
            if left == 0 {
                return Ok(None);
            }
            let want = left.min(FILE_CHUNK as u64) as usize;
            let (file, chunk) = tokio::task::spawn_blocking(move || {
                if !sought {
                    file.seek(SeekFrom::Start(pos))?;
                }
                let mut buf = Chunk::buffer();
                file.read_exact(&mut buf[..want]).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        std::io::Error::new(
                            e.kind(),
                            "the cache entry is shorter than its meta line says",
                        )
                    } else {
                        e
                    }
                })?;
                Ok::<_, std::io::Error>((file, Chunk { buf, len: want }))
            })
            .await
            .map_err(std::io::Error::other)??;
            let next = (file, pos + want as u64, left - want as u64, true);
            Ok(Some((Bytes::from_owner(chunk), next)))
        },
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use futures::TryStreamExt;
    use std::io::Write;

    fn file_with(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        (dir, path)
    }

    async fn collect(path: &std::path::Path, offset: u64, len: u64) -> std::io::Result<Vec<Bytes>> {
        let file = std::fs::File::open(path).unwrap();
        file_stream(file, offset, len).try_collect().await
    }

    #[tokio::test]
    async fn file_streams_are_exact_across_chunks_and_reused_buffers() {
        // A meta-like prefix, then 2.5 chunks of bytes that differ from chunk to chunk.
        let body: Vec<u8> = (0..FILE_CHUNK * 5 / 2).map(|i| (i % 251) as u8).collect();
        let mut content = b"{\"meta\":1}\n".to_vec();
        let offset = content.len() as u64;
        content.extend_from_slice(&body);
        let (_dir, path) = file_with(&content);
        for _ in 0..3 {
            // Later rounds read into buffers earlier chunks left in the pool.
            let chunks = collect(&path, offset, body.len() as u64).await.unwrap();
            assert_eq!(
                chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
                [FILE_CHUNK, FILE_CHUNK, FILE_CHUNK / 2]
            );
            assert_eq!(chunks.concat(), body);
            // A range in the middle, crossing a chunk boundary.
            let start = FILE_CHUNK as u64 - 10;
            let range = collect(&path, offset + start, 30).await.unwrap();
            assert_eq!(range.concat(), &body[start as usize..start as usize + 30]);
        }
        assert!(collect(&path, offset, 0).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error() {
        let (_dir, path) = file_with(&[7; 100]);
        let e = collect(&path, 10, 200).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("shorter"), "{e}");
    }
}

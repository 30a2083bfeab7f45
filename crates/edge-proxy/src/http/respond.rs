//! Turning answers and errors into HTTP responses: status and cache policy from
//! `strata_core::protocol`, strong ETags with `If-None-Match`, single `Range`s on zips, HEAD.

use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use strata_core::protocol::CacheClass;
use strata_service::conditional::{if_none_match, parse_range};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::answer::{Answer, Body, Source};
use crate::cache::EntryKind;
use crate::error::EdgeError;
use crate::fill;
use crate::http::zerocopy::{self, ZeroCopy};

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

/// Where a response goes, besides its request: the disk tier (zips still filling are followed
/// there) and, on a plain-TCP HTTP/1 connection, the way to `sendfile` file-backed bytes.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The disk tier.
    pub disk: Arc<crate::cache::disk::DiskTier>,
    /// The connection's zero-copy regions, if bytes may go with `sendfile`.
    pub zero_copy: Option<&'a ZeroCopy>,
    /// Disk-tier bodies of at least this many bytes go with `sendfile` (when `zero_copy`
    /// allows); smaller ones are streamed through the process, which measured faster
    /// (`server.sendfile_min_bytes`).
    pub sendfile_min_bytes: u64,
}

/// The response for an answer.
pub async fn answer(
    method: &Method,
    headers: &HeaderMap,
    cache: CacheClass,
    answer: Answer,
    delivery: Delivery<'_>,
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
    let Delivery {
        disk,
        zero_copy,
        sendfile_min_bytes,
    } = delivery;
    let zero_copy = zero_copy.filter(|_| end - start >= sendfile_min_bytes);
    *base.body_mut() = match body {
        Body::Bytes(b) => full(b.slice(start as usize..end as usize)),
        Body::File { file, data_offset } => match zero_copy {
            Some(zc) => match zerocopy::map_entry(&file, data_offset + start, end - start) {
                Ok(mapped) => {
                    zc.0.register(&mapped, Arc::new(file), data_offset + start);
                    full(mapped)
                }
                Err(e) => {
                    tracing::debug!(error = %e, "mapping a disk-tier entry failed; reading it instead");
                    stream_body(file_stream(file, data_offset + start, end - start))
                }
            },
            None => stream_body(file_stream(file, data_offset + start, end - start)),
        },
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

/// Largest read when streaming a disk-tier entry (a lone stream reads this much at a time).
pub const FILE_CHUNK: usize = 256 << 10;

/// Smallest read, however many streams share [`IN_FLIGHT_BYTES`].
pub const MIN_FILE_CHUNK: usize = 16 << 10;

/// Bytes of disk-tier chunks in flight — read from a file and not yet handed to a socket — of
/// all responses together. A chunk holds its share until hyper has written it, so 200 clients
/// of one large zip cost this much memory at most, not 200 chunks (issue 15: RSS grew by
/// 40–55 MiB under that fan-out with a fixed 256 KiB chunk per stream).
pub const IN_FLIGHT_BYTES: usize = 4 << 20;

/// Reads the page cache could not serve at once, run on the blocking pool at the same time.
/// (Each one holds a blocking-pool thread, whose stack is memory too.)
const BLOCKING_READS: usize = 4;

static IN_FLIGHT: Semaphore = Semaphore::const_new(IN_FLIGHT_BYTES);
static READERS: Semaphore = Semaphore::const_new(BLOCKING_READS);

/// Disk-tier streams open now (they share [`IN_FLIGHT_BYTES`]).
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// Idle full-size chunk buffers kept for reuse (8 MiB at most).
const IDLE_CHUNKS: usize = 32;

/// Full-size chunk buffers no response is using. A fresh buffer of [`FILE_CHUNK`] bytes is a
/// fresh mapping from the allocator (page faults as it is filled, an unmap when it is freed),
/// which cost a warm disk-tier stream a third of its CPU time; a reused one is already mapped.
/// Smaller chunks (many streams at once) are plain allocations of their exact size, so that
/// memory follows the bytes in flight.
static IDLE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// The read size for the next chunk of a stream while `streams` are open: an equal share of
/// half the in-flight budget (a chunk is being written while the next one is read), whole
/// pages, between [`MIN_FILE_CHUNK`] and [`FILE_CHUNK`].
fn chunk_size(streams: usize) -> usize {
    (IN_FLIGHT_BYTES / 2 / streams.max(1)).clamp(MIN_FILE_CHUNK, FILE_CHUNK) & !4095
}

/// One chunk of a disk-tier stream: the first `len` bytes of `buf`, which goes back to the pool
/// (when full-size) once the last `Bytes` pointing into it is dropped, releasing its share of
/// the in-flight budget.
struct Chunk {
    buf: Vec<u8>,
    len: usize,
    _budget: SemaphorePermit<'static>,
    _turn: OwnedSemaphorePermit,
}

/// A buffer of at least `len` initialized bytes (stale content from earlier use).
fn chunk_buffer(len: usize) -> Vec<u8> {
    if len < FILE_CHUNK {
        return vec![0; len];
    }
    let idle = IDLE.lock().ok().and_then(|mut idle| idle.pop());
    idle.unwrap_or_else(|| vec![0; FILE_CHUNK])
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

/// Chunks one stream may have in flight: one being written, one read ahead. Without this
/// bound hyper queues up to 16 chunks of a fast connection, which then holds the shared budget
/// while slower ones wait (p99 of a 4 MiB zip at 64 connections went from 0.2 to 0.9 s).
const CHUNKS_PER_STREAM: usize = 2;

/// Counts a stream in [`STREAMS`] while it lives, and holds its [`CHUNKS_PER_STREAM`] turns.
struct Open(Arc<Semaphore>);

impl Open {
    fn new() -> Self {
        STREAMS.fetch_add(1, Ordering::Relaxed);
        Open(Arc::new(Semaphore::new(CHUNKS_PER_STREAM)))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// `len` bytes of `file` from `offset`, in chunks sized by [`chunk_size`] within the shared
/// [`IN_FLIGHT_BYTES`]. What the page cache holds is read right here without blocking
/// (`preadv2` with `RWF_NOWAIT`, Linux); the rest of a chunk on the blocking pool, at most
/// [`BLOCKING_READS`] at a time. A warm disk tier therefore streams without a thread hop per
/// chunk.
pub fn file_stream(
    file: std::fs::File,
    offset: u64,
    len: u64,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let file = Arc::new(file);
    futures::stream::try_unfold(
        (file, offset, len, Open::new()),
        |(file, pos, left, open)| async move {
            if left == 0 {
                return Ok(None);
            }
            let turn = Arc::clone(&open.0)
                .acquire_owned()
                .await
                .map_err(std::io::Error::other)?;
            let want = left.min(chunk_size(STREAMS.load(Ordering::Relaxed)) as u64) as usize;
            let budget = IN_FLIGHT
                .acquire_many(want as u32)
                .await
                .map_err(std::io::Error::other)?;
            let mut buf = chunk_buffer(want);
            let cached = read_cached(&file, &mut buf[..want], pos)?;
            if cached < want {
                let _reader = READERS.acquire().await.map_err(std::io::Error::other)?;
                let file = Arc::clone(&file);
                buf = tokio::task::spawn_blocking(move || {
                    file.read_exact_at(&mut buf[cached..want], pos + cached as u64)
                        .map(|()| buf)
                })
                .await
                .map_err(std::io::Error::other)?
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        std::io::Error::new(
                            e.kind(),
                            "the cache entry is shorter than its meta line says",
                        )
                    } else {
                        e
                    }
                })?;
            }
            let chunk = Chunk {
                buf,
                len: want,
                _budget: budget,
                _turn: turn,
            };
            let next = (file, pos + want as u64, left - want as u64, open);
            Ok(Some((Bytes::from_owner(chunk), next)))
        },
    )
}

/// Reads into `buf` from `offset` what the page cache holds, without waiting for the disk:
/// the number of bytes read (possibly 0). Where `RWF_NOWAIT` is missing (not Linux, an old
/// kernel, a file system without it), 0: everything is read on the blocking pool.
fn read_cached(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::{Errno, ReadWriteFlags, preadv2};
        use std::sync::atomic::AtomicBool;
        static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
        if UNSUPPORTED.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let mut done = 0;
        while done < buf.len() {
            let mut iov = [std::io::IoSliceMut::new(&mut buf[done..])];
            match preadv2(file, &mut iov, offset + done as u64, ReadWriteFlags::NOWAIT) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the cache entry is shorter than its meta line says",
                    ));
                }
                Ok(n) => done += n,
                Err(Errno::AGAIN) => return Ok(done),
                Err(Errno::INTR) => {}
                Err(Errno::OPNOTSUPP | Errno::NOSYS | Errno::INVAL) => {
                    UNSUPPORTED.store(true, Ordering::Relaxed);
                    return Ok(done);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(done)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, buf, offset);
        Ok(0)
    }
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

    /// The stream's chunks, copied: like a socket writer, this drops each chunk before it asks
    /// for the next but one (a stream has [`CHUNKS_PER_STREAM`] chunks in flight at most).
    async fn collect(path: &std::path::Path, offset: u64, len: u64) -> std::io::Result<Vec<Bytes>> {
        let file = std::fs::File::open(path).unwrap();
        file_stream(file, offset, len)
            .map_ok(|chunk| Bytes::copy_from_slice(&chunk))
            .try_collect()
            .await
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

    #[test]
    fn chunk_sizes_share_the_budget() {
        assert_eq!(chunk_size(0), FILE_CHUNK);
        assert_eq!(chunk_size(1), FILE_CHUNK);
        assert_eq!(chunk_size(8), FILE_CHUNK);
        assert_eq!(chunk_size(16), 128 << 10);
        assert_eq!(chunk_size(200), MIN_FILE_CHUNK);
        for n in 1..2000 {
            let c = chunk_size(n);
            assert!(
                c.is_multiple_of(4096) && (MIN_FILE_CHUNK..=FILE_CHUNK).contains(&c),
                "{n}: {c}"
            );
            if c > MIN_FILE_CHUNK {
                assert!(c * n <= IN_FLIGHT_BYTES / 2, "{n} streams of {c}");
            }
        }
    }

    #[tokio::test]
    async fn chunks_hold_their_share_of_the_budget_until_written() {
        let body = vec![9u8; FILE_CHUNK * 2];
        let (_dir, path) = file_with(&body);
        let mut stream = Box::pin(file_stream(
            std::fs::File::open(&path).unwrap(),
            0,
            body.len() as u64,
        ));
        let first = stream.try_next().await.unwrap().unwrap();
        // Other tests may hold chunks too: what is left is at most the budget less this one.
        assert!(IN_FLIGHT.available_permits() <= IN_FLIGHT_BYTES - first.len());
        let held = first.len();
        let second = stream.try_next().await.unwrap().unwrap();
        assert!(IN_FLIGHT.available_permits() <= IN_FLIGHT_BYTES - held - second.len());
        assert_eq!([first, second].concat(), body);
        assert!(stream.try_next().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_file_shorter_than_promised_is_an_error() {
        let (_dir, path) = file_with(&[7; 100]);
        let e = collect(&path, 10, 200).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("shorter"), "{e}");
    }
}

//! `sendfile(2)` under hyper: response bytes that are also in a disk-tier file go from the page
//! cache to the socket without passing through user space.
//!
//! hyper writes a response body by handing its bytes to the connection's I/O object; it has
//! no way to hand over a file. So the edge does it one layer down:
//! - on a plain-TCP connection the listener wraps the socket in a [`ZeroCopyStream`] and gives
//!   each HTTP/1 request its [`FileRegions`] (a request extension);
//! - a response whose body is a large disk-tier entry maps the file into memory instead of
//!   reading it ([`map_entry`]), registers those bytes with the file and their offset in it
//!   ([`FileRegions::register`]), and is otherwise an ordinary body;
//! - when hyper asks the stream to write a slice that lies inside a registered region, the
//!   stream `sendfile`s the same bytes from the file instead of copying the slice.
//!
//! Nothing depends on the substitution happening: the body holds the real bytes, so if hyper
//! copied or split them, they are written as they are. A region keeps its bytes alive while
//! registered, so its addresses can't be reused for other data. Entries are immutable
//! (written to a temp file, renamed into place, never modified), so file and bytes agree.
//!
//! Which bodies go this way is the caller's choice (`server.sendfile_min_bytes`): measured on
//! loopback, streaming through the process was faster for 1 and 4 MiB zips and `sendfile` for
//! 200 clients of a 64 MiB one, where the streams' shared in-flight budget is the limit.

use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Regions a connection keeps at most (a response registers one; pipelined requests a few).
/// Past that the oldest is forgotten, which only means its bytes are copied.
const MAX_REGIONS: usize = 8;

/// Bytes that are also at `offset..offset + bytes.len()` of `file`.
#[derive(Debug)]
struct Region {
    bytes: Bytes,
    file: Arc<File>,
    offset: u64,
}

impl Region {
    /// Where `slice` starts in this region, if it does.
    fn position(&self, slice: &[u8]) -> Option<usize> {
        let base = self.bytes.as_ptr() as usize;
        let start = slice.as_ptr() as usize;
        let at = start.checked_sub(base)?;
        (at < self.bytes.len() && !slice.is_empty()).then_some(at)
    }
}

/// One connection's registered regions (shared by its stream and its requests).
#[derive(Debug)]
pub struct FileRegions {
    regions: Mutex<Vec<Region>>,
    /// How many regions there are (kept with the list), so that writes of a connection with
    /// none — every `.info`, `.mod` and `list` — skip the lock.
    count: AtomicUsize,
    sent: Counter,
}

impl FileRegions {
    /// No regions yet; bytes sent with `sendfile` are counted in `sent`.
    pub fn new(sent: Counter) -> Self {
        Self {
            regions: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            sent,
        }
    }

    /// Registers `bytes` as the bytes at `offset` of `file`, for as long as it takes to send
    /// them.
    pub fn register(&self, bytes: &Bytes, file: Arc<File>, offset: u64) {
        if bytes.is_empty() {
            return;
        }
        let mut regions = self.lock();
        if regions.len() == MAX_REGIONS {
            regions.remove(0);
        }
        regions.push(Region {
            bytes: bytes.clone(),
            file,
            offset,
        });
        self.count.store(regions.len(), Ordering::Release);
    }

    /// Whether no region is registered (most writes).
    fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Region>> {
        self.regions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The file range holding `slice` (or its start), if it lies in a region.
    fn find(&self, slice: &[u8]) -> Option<SendPlan> {
        let regions = self.lock();
        regions.iter().enumerate().find_map(|(index, region)| {
            let at = region.position(slice)?;
            let left = region.bytes.len() - at;
            Some(SendPlan {
                file: Arc::clone(&region.file),
                offset: region.offset + at as u64,
                len: slice.len().min(left),
                left,
                region_end: region.bytes.as_ptr() as usize + region.bytes.len(),
                index,
            })
        })
    }

    fn contains(&self, slice: &[u8]) -> bool {
        !slice.is_empty() && self.lock().iter().any(|r| r.position(slice).is_some())
    }

    /// Notes that `n` bytes of `send` went out; a region whose last byte went is dropped.
    fn sent(&self, send: &SendPlan, n: usize) {
        self.sent.inc_by(n as u64);
        if n == send.left {
            let mut regions = self.lock();
            if let Some(r) = regions.get(send.index)
                && r.bytes.as_ptr() as usize + r.bytes.len() == send.region_end
            {
                regions.remove(send.index);
                self.count.store(regions.len(), Ordering::Release);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A `sendfile` to make: `len` bytes from `offset` of `file`.
#[derive(Debug)]
struct SendPlan {
    file: Arc<File>,
    offset: u64,
    len: usize,
    /// Bytes of the region from `offset` on: all of them sent, the region is done.
    left: usize,
    /// Where the region ends in memory and its place in the list (to find it again).
    region_end: usize,
    index: usize,
}

/// The request extension that lets a response register file-backed bytes
/// ([`FileRegions::register`]); present on plain-TCP HTTP/1 connections only.
#[derive(Debug, Clone)]
pub struct ZeroCopy(pub Arc<FileRegions>);

/// A TCP stream that sends registered regions with `sendfile(2)`; everything else is written
/// as usual.
#[derive(Debug)]
pub struct ZeroCopyStream {
    tcp: TcpStream,
    regions: Arc<FileRegions>,
}

impl ZeroCopyStream {
    /// Wraps `tcp`; responses register their regions in `regions`.
    pub fn new(tcp: TcpStream, regions: Arc<FileRegions>) -> Self {
        Self { tcp, regions }
    }

    fn poll_sendfile(&self, cx: &mut Context<'_>, send: &SendPlan) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let attempt = self.tcp.try_io(Interest::WRITABLE, || {
                let mut offset = send.offset;
                rustix::fs::sendfile(&self.tcp, &*send.file, Some(&mut offset), send.len)
                    .map_err(io::Error::from)
            });
            match attempt {
                Ok(n) => {
                    // 0 means the file ended early (it was cut short behind our back): hyper
                    // then fails the response (a write of zero bytes) instead of sending
                    // anything else.
                    self.regions.sent(send, n);
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for ZeroCopyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for ZeroCopyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.regions.is_empty() {
            return Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs);
        }
        let Some(first) = bufs.iter().position(|b| !b.is_empty()) else {
            return Poll::Ready(Ok(0));
        };
        if let Some(send) = this.regions.find(&bufs[first]) {
            return this.poll_sendfile(cx, &send);
        }
        // Everything before the next registered slice goes out in one writev.
        let end = bufs[first..]
            .iter()
            .position(|b| this.regions.contains(b))
            .map_or(bufs.len(), |p| first + p);
        Pin::new(&mut this.tcp).poll_write_vectored(cx, &bufs[first..end])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// `len` bytes at `offset` of a disk-tier entry's file, mapped into memory rather than read:
/// sent through a [`ZeroCopyStream`] they go with `sendfile`, and they are only paged in if
/// something else (h2, a range split by hyper) copies them.
pub fn map_entry(file: &File, offset: u64, len: u64) -> io::Result<Bytes> {
    let start = usize::try_from(offset).map_err(io::Error::other)?;
    let end = usize::try_from(offset + len).map_err(io::Error::other)?;
    let file_len = file.metadata()?.len();
    if file_len < offset + len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the entry file has {file_len} bytes, its meta says {}",
                offset + len
            ),
        ));
    }
    #[allow(unsafe_code)]
    // SAFETY: a mapping is undefined behaviour if the file changes under it. Disk-tier
    // entries never do: each is written to a temp file and renamed into place, then only read
    // or unlinked (an unlinked file stays intact while mapped). A file cut short by someone
    // else would raise SIGBUS on a read of the missing pages, which the sendfile path never
    // makes (it reads through the file descriptor and stops at the end, and hyper then fails
    // the response).
    let map = unsafe { memmap2::MmapOptions::new().len(end).map(file)? };
    Ok(Bytes::from_owner(map).slice(start..end))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::io::Write;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair(regions: Arc<FileRegions>) -> (ZeroCopyStream, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (
            ZeroCopyStream::new(accepted.unwrap().0, regions),
            client.unwrap(),
        )
    }

    fn file_with(content: &[u8]) -> (tempfile::NamedTempFile, Arc<File>) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(content).unwrap();
        f.flush().unwrap();
        let file = Arc::new(File::open(f.path()).unwrap());
        (f, file)
    }

    /// Reads `n` bytes from `client` while `write` runs.
    async fn exchange(
        server: &mut ZeroCopyStream,
        client: &mut TcpStream,
        bufs: Vec<Bytes>,
    ) -> Vec<u8> {
        let total: usize = bufs.iter().map(Bytes::len).sum();
        let write = async {
            for b in &bufs {
                server.write_all(b).await.unwrap();
            }
            server.flush().await.unwrap();
        };
        let read = async {
            let mut got = vec![0u8; total];
            client.read_exact(&mut got).await.unwrap();
            got
        };
        tokio::join!(write, read).1
    }

    #[tokio::test]
    async fn registered_bytes_go_with_sendfile_and_others_are_copied() {
        let sent = Counter::default();
        let regions = Arc::new(FileRegions::new(sent.clone()));
        let (mut server, mut client) = pair(Arc::clone(&regions)).await;
        // 3 MiB: more than a socket buffer, so sendfile returns short counts and resumes.
        let content: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        let (_keep, file) = file_with(&content);
        let body = Bytes::from(content[100..].to_vec());
        regions.register(&body, Arc::clone(&file), 100);
        let head = Bytes::from_static(b"HTTP/1.1 200 OK\r\n\r\n");
        let got = exchange(&mut server, &mut client, vec![head.clone(), body.clone()]).await;
        assert_eq!(&got[..head.len()], &head[..]);
        assert_eq!(&got[head.len()..], &content[100..]);
        assert_eq!(
            sent.get(),
            body.len() as u64,
            "every body byte went by sendfile"
        );
        assert_eq!(regions.len(), 0, "a region is forgotten once sent");
    }

    #[tokio::test]
    async fn vectored_writes_stop_before_a_region_and_mapped_entries_are_exact() {
        let sent = Counter::default();
        let regions = Arc::new(FileRegions::new(sent.clone()));
        let (mut server, mut client) = pair(Arc::clone(&regions)).await;
        let mut content = b"{\"v\":1}\n".to_vec();
        content.extend((0..200_000u32).map(|i| (i % 7) as u8));
        let (_keep, file) = file_with(&content);
        let mapped = map_entry(&file, 8, 200_000).unwrap();
        assert_eq!(&mapped[..], &content[8..]);
        // A range of the entry, as a 206 would send it.
        let part = mapped.slice(1000..150_000);
        regions.register(&part, Arc::clone(&file), 8 + 1000);
        let head = b"head".as_slice();
        let tail = b"tail".as_slice();
        let bufs = [IoSlice::new(head), IoSlice::new(&part), IoSlice::new(tail)];
        let write = async {
            let mut written = 0;
            let total = head.len() + part.len() + tail.len();
            while written < total {
                // Rebuild the slices past what was written, as hyper's buffer does.
                let mut rest = Vec::new();
                let mut skip = written;
                for b in &bufs {
                    if skip >= b.len() {
                        skip -= b.len();
                        continue;
                    }
                    rest.push(IoSlice::new(&b[skip..]));
                    skip = 0;
                }
                let n =
                    std::future::poll_fn(|cx| Pin::new(&mut server).poll_write_vectored(cx, &rest))
                        .await
                        .unwrap();
                assert!(n > 0);
                written += n;
            }
        };
        let read = async {
            let mut got = vec![0u8; head.len() + part.len() + tail.len()];
            client.read_exact(&mut got).await.unwrap();
            got
        };
        let got = tokio::join!(write, read).1;
        let mut want = head.to_vec();
        want.extend_from_slice(&part);
        want.extend_from_slice(tail);
        assert_eq!(got, want);
        assert_eq!(sent.get(), part.len() as u64);
    }

    #[tokio::test]
    async fn a_file_cut_short_fails_the_write_instead_of_sending_other_bytes() {
        let sent = Counter::default();
        let regions = Arc::new(FileRegions::new(sent.clone()));
        let (mut server, _client) = pair(Arc::clone(&regions)).await;
        let (keep, file) = file_with(&[7u8; 10_000]);
        let body = Bytes::from(vec![7u8; 10_000]);
        regions.register(&body, Arc::clone(&file), 0);
        std::fs::OpenOptions::new()
            .write(true)
            .open(keep.path())
            .unwrap()
            .set_len(4_000)
            .unwrap();
        let result = server.write_all(&body).await;
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::WriteZero);
        assert_eq!(sent.get(), 4_000);
    }

    #[test]
    fn a_mapping_past_the_end_of_the_file_is_refused() {
        let (_keep, file) = file_with(b"short");
        assert!(map_entry(&file, 0, 100).is_err());
    }
}

//! [`Spool`]: a file being written at its end while any number of followers stream it as it
//! grows, none of them receiving its last byte before the writer declares it done.
//!
//! It is how a download is shared while it runs (the registry's download of a remote zip, an
//! edge's fill of its disk tier): the [`SpoolWriter`] appends and publishes its progress on a
//! `tokio::sync::watch` (bytes written; done, with the final size; or failed, with an error);
//! every [`Spool::follow`] stream reads the file with a handle of the spool's own, in chunks
//! of at most [`CHUNK`] bytes, and waits on the watch for more, so memory stays flat whatever
//! the file's size and the number of followers.
//!
//! Invariants:
//! - a follower never yields the file's last byte before the writer is [done](SpoolWriter::done)
//!   (when the final size is known up front, the byte at `size - 1`; otherwise the last byte
//!   written so far), so whoever decides that the content is good (size, hashes) decides it
//!   before any follower has all of it;
//! - a follower ends at the file's size (or at the end of the span it asked for, if sooner);
//! - a failure reaches every follower, waiting or not, as the error its stream ends with (the
//!   failure type turns into the `io::Error`, so it can carry the caller's own error through to
//!   whoever serves the stream); a writer dropped without an outcome (a panic, a cancelled
//!   task) fails the spool with [`Abandoned`], so no follower waits forever;
//! - followers read positionally through a handle opened when the spool was made and kept by
//!   the [`Spool`], which every follower holds: the bytes stay readable for as long as a
//!   follower needs them, even once the file was renamed (committed) or deleted.
//!
//! A spool may start with bytes that are not its content (a header at `0..data_offset`);
//! followers' positions count from `data_offset`.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

pub use crate::coalesce::Abandoned;

/// The most a follower reads at once.
pub const CHUNK: usize = 64 << 10;

/// What a failed spool hands its followers: cloned to each, then turned into the `io::Error`
/// its stream ends with. A writer that went away without an outcome fails the spool with
/// [`Abandoned`], converted.
pub trait Failure: Clone + Into<io::Error> + From<Abandoned> + Send + Sync + 'static {}

impl<E> Failure for E where E: Clone + Into<io::Error> + From<Abandoned> + Send + Sync + 'static {}

/// Where the writing is.
#[derive(Debug, Clone)]
enum Progress<E> {
    /// This many content bytes are in the file.
    Writing(u64),
    /// Finished: the content is this many bytes, every follower may have all of them.
    Done(u64),
    /// Failed; followers end with this.
    Failed(E),
}

/// A file being written, which followers may stream (see the module comment). Followers hold
/// an `Arc` to it, which keeps the file readable.
#[derive(Debug)]
pub struct Spool<E: Failure> {
    /// Read handle, for positional reads only (its cursor is never used).
    file: Arc<File>,
    /// Where the content starts in the file.
    data_offset: u64,
    /// The content's size, if known before the end.
    final_size: Option<u64>,
    progress: watch::Sender<Progress<E>>,
}

/// The writing end of a [`Spool`], owned by whoever downloads.
#[derive(Debug)]
pub struct SpoolWriter<E: Failure> {
    spool: Arc<Spool<E>>,
    file: tokio::fs::File,
    written: u64,
}

impl<E: Failure> Spool<E> {
    /// A spool over the file at `path`, which `file` has open for writing, positioned at
    /// `data_offset` (what precedes it is the caller's and is never served). With
    /// `final_size`, the size the content will have (the writer must end with exactly that or
    /// fail), followers may have every byte but that last one as soon as it is written;
    /// without it, they stay one byte behind the writer until the end.
    pub fn new(
        file: tokio::fs::File,
        path: &Path,
        data_offset: u64,
        final_size: Option<u64>,
    ) -> io::Result<(Arc<Self>, SpoolWriter<E>)> {
        let spool = Self::build(
            File::open(path)?,
            data_offset,
            final_size,
            Progress::Writing(0),
        );
        let writer = SpoolWriter {
            spool: Arc::clone(&spool),
            file,
            written: 0,
        };
        Ok((spool, writer))
    }

    /// A spool over content written earlier: `size` bytes from `data_offset` in `file`
    /// (opened for reading), done from the start.
    pub fn complete(file: File, data_offset: u64, size: u64) -> Arc<Self> {
        Self::build(file, data_offset, Some(size), Progress::Done(size))
    }

    fn build(
        file: File,
        data_offset: u64,
        final_size: Option<u64>,
        progress: Progress<E>,
    ) -> Arc<Self> {
        Arc::new(Self {
            file: Arc::new(file),
            data_offset,
            final_size,
            progress: watch::Sender::new(progress),
        })
    }

    /// Bytes `span` of the content (cut at its end), as they are written: every byte as soon
    /// as it is in the file, except the content's last, which waits for the writer to be done.
    /// The stream ends at the end of the span or of the content, or with the spool's failure.
    pub fn follow(
        self: &Arc<Self>,
        span: Range<u64>,
    ) -> impl Stream<Item = io::Result<Bytes>> + Send + use<E> {
        let follower = Follower {
            spool: Arc::clone(self),
            progress: self.progress.subscribe(),
            pos: span.start,
            end: span.end,
        };
        futures::stream::try_unfold(follower, |mut f| async move {
            Ok(f.next_chunk().await?.map(|chunk| (chunk, f)))
        })
    }

    /// How far followers may read while `written` bytes are in the file: never to the
    /// content's last byte.
    fn releasable(&self, written: u64) -> u64 {
        match self.final_size {
            Some(size) => written.min(size.saturating_sub(1)),
            None => written.saturating_sub(1),
        }
    }
}

/// One [`Spool::follow`] stream.
struct Follower<E: Failure> {
    // Keeps the file readable while this follower reads it.
    spool: Arc<Spool<E>>,
    progress: watch::Receiver<Progress<E>>,
    /// The next content byte to yield.
    pos: u64,
    /// Where the follower stops (past the content's end: at its end).
    end: u64,
}

impl<E: Failure> Follower<E> {
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            // One look at the progress decides both how far to read and whether more can come.
            let (available, done) = match &*self.progress.borrow_and_update() {
                Progress::Writing(written) => (self.spool.releasable(*written), false),
                Progress::Done(size) => (*size, true),
                Progress::Failed(e) => return Err(e.clone().into()),
            };
            let available = available.min(self.end);
            if self.pos < available {
                return self.read(available).await.map(Some);
            }
            if done || self.pos >= self.end {
                return Ok(None);
            }
            if self.progress.changed().await.is_err() {
                // Unreachable while this follower holds the spool (and so the sender), kept
                // so that a closed channel can never mean a hang.
                return Err(E::from(Abandoned).into());
            }
        }
    }

    /// The next chunk, at most up to `available`.
    async fn read(&mut self, available: u64) -> io::Result<Bytes> {
        let want = usize::try_from(available - self.pos)
            .unwrap_or(CHUNK)
            .min(CHUNK);
        let file = Arc::clone(&self.spool.file);
        let at = self.spool.data_offset + self.pos;
        let buf = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; want];
            read_exact_at(&file, &mut buf, at).map(|()| buf)
        })
        .await
        .map_err(io::Error::other)??;
        self.pos += want as u64;
        Ok(Bytes::from(buf))
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
    // The handle is the spool's own, used only for positional reads, so moving its cursor
    // (which `seek_read` does) disturbs nobody.
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, at) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl<E: Failure> SpoolWriter<E> {
    /// Appends `chunk` to the content and lets followers see it.
    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.file.write_all(chunk).await?;
        self.file.flush().await?;
        self.written += chunk.len() as u64;
        self.spool
            .progress
            .send_replace(Progress::Writing(self.written));
        Ok(())
    }

    /// Content bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The file's writing handle, for syncing it, or for rewriting what precedes
    /// `data_offset` once the content is written; content goes through
    /// [`SpoolWriter::write`].
    pub fn file_mut(&mut self) -> &mut tokio::fs::File {
        &mut self.file
    }

    /// Releases the whole content, [`SpoolWriter::written`] bytes, to every follower.
    pub fn done(self) {
        self.spool
            .progress
            .send_replace(Progress::Done(self.written));
    }

    /// Ends every follower with `error`.
    pub fn failed(self, error: E) {
        self.spool.progress.send_replace(Progress::Failed(error));
    }
}

impl<E: Failure> Drop for SpoolWriter<E> {
    fn drop(&mut self) {
        // A writer dropped without an outcome must not leave followers waiting forever.
        self.spool.progress.send_if_modified(|progress| {
            let writing = matches!(progress, Progress::Writing(_));
            if writing {
                *progress = Progress::Failed(E::from(Abandoned));
            }
            writing
        });
    }
}

#[cfg(test)]
mod tests {
    use futures::{StreamExt, TryStreamExt};
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// A failure that says what it is.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{0}")]
    struct Oops(String);

    impl From<Abandoned> for Oops {
        fn from(a: Abandoned) -> Self {
            Oops(format!("abandoned: {a}"))
        }
    }

    impl From<Oops> for io::Error {
        fn from(e: Oops) -> Self {
            io::Error::other(e)
        }
    }

    /// A spool in a temp dir, its content starting after `header`.
    async fn spool(
        header: &[u8],
        final_size: Option<u64>,
    ) -> (tempfile::TempDir, Arc<Spool<Oops>>, SpoolWriter<Oops>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool");
        let mut file = tokio::fs::File::create(&path).await.unwrap();
        file.write_all(header).await.unwrap();
        let (spool, writer) = Spool::new(file, &path, header.len() as u64, final_size).unwrap();
        (dir, spool, writer)
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    async fn all(stream: impl Stream<Item = io::Result<Bytes>>) -> io::Result<Vec<u8>> {
        let chunks: Vec<Bytes> = stream.try_collect().await?;
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn followers_see_bytes_as_written_one_behind_without_a_final_size() {
        let (_dir, spool, mut writer) = spool(b"", None).await;
        let early = spool.follow(0..u64::MAX);
        writer.write(b"abc").await.unwrap();
        let mut follow = Box::pin(spool.follow(0..u64::MAX));
        // Two of three bytes are out; the third waits for more or for the end.
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"ab");
        writer.write(b"def").await.unwrap();
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"cde");
        writer.done();
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"f");
        assert!(follow.try_next().await.unwrap().is_none());
        assert_eq!(all(early).await.unwrap(), b"abcdef");
    }

    #[tokio::test]
    async fn with_a_final_size_followers_get_all_but_the_last_byte_before_done() {
        let (_dir, spool, mut writer) = spool(b"header\n", Some(6)).await;
        let mut follow = Box::pin(spool.follow(0..u64::MAX));
        writer.write(b"abc").await.unwrap();
        // Not the last byte: out at once, header excluded.
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"abc");
        writer.write(b"def").await.unwrap();
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"de");
        let tail = tokio::spawn(async move {
            let tail = follow.try_next().await.unwrap().unwrap();
            (tail, follow.try_next().await.unwrap())
        });
        settle().await;
        // Every byte is written, but nothing can wake the follower before the end.
        assert!(!tail.is_finished(), "the last byte went out before done");
        writer.done();
        let (tail, end) = tail.await.unwrap();
        assert_eq!(&tail[..], b"f");
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn a_range_in_the_middle_follows_and_stops_at_its_end() {
        let (_dir, spool, mut writer) = spool(b"h", None).await;
        let middle = spool.follow(2..5);
        let tail = spool.follow(4..6);
        writer.write(b"abcdef").await.unwrap();
        // The range ends before the last byte: complete without waiting for the end.
        assert_eq!(all(middle).await.unwrap(), b"cde");
        let tail = tokio::spawn(all(tail));
        settle().await;
        assert!(!tail.is_finished(), "a range got the last byte before done");
        writer.done();
        assert_eq!(tail.await.unwrap().unwrap(), b"ef");
        // A range past the end is cut at the end.
        assert_eq!(all(spool.follow(3..100)).await.unwrap(), b"def");
        assert!(all(spool.follow(6..9)).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failure_reaches_a_waiting_follower_as_its_error() {
        let (_dir, spool, mut writer) = spool(b"", Some(10)).await;
        writer.write(b"abc").await.unwrap();
        let mut follow = Box::pin(spool.follow(0..u64::MAX));
        assert_eq!(&follow.try_next().await.unwrap().unwrap()[..], b"abc");
        let waiting = tokio::spawn(async move {
            let e = follow.try_next().await.unwrap_err();
            (e, follow.next().await.is_none())
        });
        settle().await;
        writer.failed(Oops("tampered".into()));
        let (e, ended) = waiting.await.unwrap();
        // The failure itself travels in the I/O error…
        let inner = e.get_ref().and_then(|i| i.downcast_ref::<Oops>()).unwrap();
        assert_eq!(inner, &Oops("tampered".into()));
        // …and the stream ends after it.
        assert!(ended);
        // A follower made after the failure gets it too.
        assert!(all(spool.follow(0..2)).await.is_err());
    }

    #[tokio::test]
    async fn a_dropped_writer_fails_followers_with_abandoned() {
        let (_dir, spool, mut writer) = spool(b"", None).await;
        writer.write(b"abc").await.unwrap();
        let follow = spool.follow(0..u64::MAX);
        drop(writer);
        let e = all(follow).await.unwrap_err();
        assert!(e.to_string().starts_with("abandoned: "), "{e}");
    }

    #[tokio::test]
    async fn a_follower_created_after_done_reads_everything() {
        let (_dir, spool, mut writer) = spool(b"head", None).await;
        writer.write(b"abc").await.unwrap();
        writer.write(b"def").await.unwrap();
        writer.done();
        assert_eq!(all(spool.follow(0..u64::MAX)).await.unwrap(), b"abcdef");
        assert_eq!(all(spool.follow(1..3)).await.unwrap(), b"bc");
    }

    #[tokio::test]
    async fn a_complete_spool_serves_content_written_earlier() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("entry");
        let big: Vec<u8> = (0..CHUNK * 2 + 5).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, [b"meta\n".as_slice(), &big].concat()).unwrap();
        let spool: Arc<Spool<Oops>> =
            Spool::complete(File::open(&path).unwrap(), 5, big.len() as u64);
        let chunks: Vec<Bytes> = spool.follow(0..u64::MAX).try_collect().await.unwrap();
        // In chunks of at most CHUNK bytes.
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [CHUNK, CHUNK, 5]
        );
        assert_eq!(chunks.concat(), big);
        assert_eq!(
            all(spool.follow(CHUNK as u64 - 1..CHUNK as u64 + 2))
                .await
                .unwrap(),
            &big[CHUNK - 1..CHUNK + 2]
        );
    }

    #[tokio::test]
    async fn the_file_stays_readable_while_a_follower_holds_it() {
        let (dir, spool, mut writer) = spool(b"", Some(6)).await;
        let follow = spool.follow(0..u64::MAX);
        writer.write(b"abcdef").await.unwrap();
        writer.done();
        // The writer, the spool and the file's name are all gone…
        drop(spool);
        std::fs::remove_file(dir.path().join("spool")).unwrap();
        // …and the follower still reads every byte.
        assert_eq!(all(follow).await.unwrap(), b"abcdef");
    }
}

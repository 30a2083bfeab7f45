//! The two streaming bodies of the service: [`ZipBody`] turns a storage read into `Zip` data
//! messages, and [`PublishBody`] turns the `Publish` message stream into the byte stream
//! [`Registry::publish`](crate::registry::Registry::publish) spools. Neither buffers more than
//! the chunk in hand; back-pressure is HTTP/2 flow control on one side and the storage or
//! spool-file writes on the other.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use strata_core::protocol::ErrorKind;
use tonic::{Status, Streaming};

use super::MAX_ZIP_CHUNK;
use super::convert::kind_status;
use super::proto::{PublishRequest, ZipResponse, publish_request, zip_response};
use crate::storage::ByteStream;

/// The data messages of a `Zip` answer: the storage body re-cut into chunks of at most
/// [`MAX_ZIP_CHUNK`] bytes (zero-copy slices of what storage yields), ending with `DATA_LOSS`
/// if storage yields other than the announced number of bytes.
pub(crate) struct ZipBody {
    body: ByteStream,
    pending: Bytes,
    sent: u64,
    expected: u64,
    finished: bool,
}

impl ZipBody {
    /// Streams `body`, which should yield exactly `expected` bytes.
    pub(crate) fn new(body: ByteStream, expected: u64) -> Self {
        Self {
            body,
            pending: Bytes::new(),
            sent: 0,
            expected,
            finished: false,
        }
    }
}

impl Stream for ZipBody {
    type Item = Result<ZipResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                return Poll::Ready(None);
            }
            if !this.pending.is_empty() {
                let n = this.pending.len().min(MAX_ZIP_CHUNK);
                let data = this.pending.split_to(n);
                this.sent += n as u64;
                return Poll::Ready(Some(Ok(ZipResponse {
                    part: Some(zip_response::Part::Data(data)),
                })));
            }
            match ready!(this.body.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => this.pending = chunk,
                Some(Err(e)) => {
                    this.finished = true;
                    return Poll::Ready(Some(Err(kind_status(
                        ErrorKind::Unavailable,
                        format!("reading the zip from storage: {e}"),
                    ))));
                }
                None => {
                    this.finished = true;
                    if this.sent != this.expected {
                        return Poll::Ready(Some(Err(kind_status(
                            ErrorKind::IntegrityViolation,
                            format!(
                                "storage yielded {} bytes of the zip, {} were expected",
                                this.sent, this.expected
                            ),
                        ))));
                    }
                }
            }
        }
    }
}

impl std::fmt::Debug for ZipBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZipBody")
            .field("sent", &self.sent)
            .field("expected", &self.expected)
            .finish_non_exhaustive()
    }
}

/// The zip bytes of a `Publish` call after its header. A transport failure or a message that is
/// not a chunk ends the stream with an error, and the [`Status`] the client should see is kept in
/// [`PublishBody::failure`] (the registry reports a failed body as an I/O error of its own).
pub(crate) struct PublishBody {
    inbound: Streaming<PublishRequest>,
    failure: Arc<OnceLock<Status>>,
}

impl PublishBody {
    /// The chunks that follow the header in `inbound`.
    pub(crate) fn new(inbound: Streaming<PublishRequest>) -> Self {
        Self {
            inbound,
            failure: Arc::new(OnceLock::new()),
        }
    }

    /// Where the reason of a failed body is recorded.
    pub(crate) fn failure(&self) -> Arc<OnceLock<Status>> {
        self.failure.clone()
    }

    fn fail(&self, status: Status) -> Status {
        let _ = self.failure.set(status.clone());
        status
    }
}

impl Stream for PublishBody {
    type Item = Result<Bytes, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = ready!(self.inbound.poll_next_unpin(cx));
        Poll::Ready(match next {
            None => None,
            Some(Ok(PublishRequest {
                part: Some(publish_request::Part::Chunk(chunk)),
            })) => Some(Ok(chunk)),
            Some(Ok(_)) => Some(Err(self.fail(kind_status(
                ErrorKind::InvalidInput,
                "after the header, every Publish message must be a chunk",
            )))),
            Some(Err(status)) => Some(Err(self.fail(status))),
        })
    }
}

impl std::fmt::Debug for PublishBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishBody").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn body(chunks: Vec<Bytes>) -> ByteStream {
        futures::stream::iter(chunks.into_iter().map(Ok)).boxed()
    }

    fn data(r: ZipResponse) -> Bytes {
        match r.part {
            Some(zip_response::Part::Data(d)) => d,
            other => panic!("not data: {other:?}"),
        }
    }

    #[tokio::test]
    async fn recuts_large_chunks_and_keeps_small_ones() {
        let big = Bytes::from(vec![7u8; MAX_ZIP_CHUNK * 2 + 10]);
        let small = Bytes::from_static(b"tail");
        let total = (big.len() + small.len()) as u64;
        let out: Vec<Bytes> = ZipBody::new(body(vec![big, small]), total)
            .map_ok(data)
            .try_collect()
            .await
            .unwrap();
        let sizes: Vec<usize> = out.iter().map(Bytes::len).collect();
        assert_eq!(sizes, [MAX_ZIP_CHUNK, MAX_ZIP_CHUNK, 10, 4]);
    }

    #[tokio::test]
    async fn short_body_is_data_loss() {
        let e = ZipBody::new(body(vec![Bytes::from_static(b"abc")]), 4)
            .try_collect::<Vec<_>>()
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::DataLoss);
    }
}

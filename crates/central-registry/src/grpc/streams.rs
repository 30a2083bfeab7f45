//! The two streaming bodies of the service: [`ZipBody`] turns a storage read (or a remote
//! repository's download still in progress) into `Zip` data messages, ending a streaming
//! answer with its trailer, and [`PublishBody`] turns the `Publish` message stream into the
//! byte stream
//! [`Registry::publish`](crate::registry::Registry::publish) spools. Neither buffers more than
//! the chunk in hand; back-pressure is HTTP/2 flow control on one side and the storage or
//! spool-file writes on the other.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use strata_core::protocol::ErrorKind;
use tonic::{Status, Streaming};

use super::MAX_ZIP_CHUNK;
use super::convert::{kind_status, status};
use super::proto::{PublishRequest, ZipResponse, ZipTrailer, publish_request, zip_response};
use crate::error::RegistryError;
use crate::storage::ByteStream;

/// Resolves to the verified SHA-256 (lower-case hex) of a streamed zip: what
/// [`RemoteRepository::streaming_zips`](crate::repository::RemoteRepository::streaming_zips)
/// hands back with a streaming answer.
pub(crate) type ZipCompletion = BoxFuture<'static, Result<String, RegistryError>>;

/// The data messages of a `Zip` answer: the storage body re-cut into chunks of at most
/// [`MAX_ZIP_CHUNK`] bytes (zero-copy slices of what storage yields), ending with `DATA_LOSS`
/// if storage yields other than the announced number of bytes. A streaming answer (a download
/// in progress) ends with the trailer once its completion resolves, or with the status of the
/// download's failure (DATA_LOSS for a zip that failed verification).
pub(crate) struct ZipBody {
    body: ByteStream,
    pending: Bytes,
    sent: u64,
    expected: u64,
    trailer: Option<ZipCompletion>,
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
            trailer: None,
            finished: false,
        }
    }

    /// Ends the data with a trailer carrying the SHA-256 `completion` resolves to.
    pub(crate) fn with_trailer(mut self, completion: ZipCompletion) -> Self {
        self.trailer = Some(completion);
        self
    }
}

/// The status of a body that failed: the registry's own error where the body carries one (a
/// download that failed, e.g. its verification), else storage trouble.
fn body_status(e: &std::io::Error) -> Status {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<RegistryError>())
    {
        Some(error) => status(error),
        None => kind_status(
            ErrorKind::Unavailable,
            format!("reading the zip from storage: {e}"),
        ),
    }
}

impl Stream for ZipBody {
    type Item = Result<ZipResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.finished {
                let Some(trailer) = this.trailer.as_mut() else {
                    return Poll::Ready(None);
                };
                let done = ready!(trailer.poll_unpin(cx));
                this.trailer = None;
                return Poll::Ready(Some(match done {
                    Ok(etag) => Ok(ZipResponse {
                        part: Some(zip_response::Part::Trailer(ZipTrailer { etag })),
                    }),
                    Err(e) => Err(status(&e)),
                }));
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
                    this.trailer = None;
                    return Poll::Ready(Some(Err(body_status(&e))));
                }
                None => {
                    this.finished = true;
                    if this.sent != this.expected {
                        this.trailer = None;
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
            .field("streaming", &self.trailer.is_some())
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
    async fn a_streaming_answer_ends_with_its_trailer() {
        let completion: ZipCompletion = Box::pin(async { Ok("ab12".to_owned()) });
        let out: Vec<ZipResponse> = ZipBody::new(body(vec![Bytes::from_static(b"zip")]), 3)
            .with_trailer(completion)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(data(out[0].clone()), Bytes::from_static(b"zip"));
        assert!(matches!(
            &out[1].part,
            Some(zip_response::Part::Trailer(t)) if t.etag == "ab12"
        ));
        assert_eq!(out.len(), 2);
    }

    #[tokio::test]
    async fn a_failed_download_ends_the_stream_with_its_kind() {
        let failed = RegistryError::Integrity("checksum mismatch".into());
        let chunks: Vec<std::io::Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"zi")),
            Err(std::io::Error::other(failed)),
        ];
        let completion: ZipCompletion = Box::pin(async { Ok("never".to_owned()) });
        let mut stream =
            ZipBody::new(futures::stream::iter(chunks).boxed(), 3).with_trailer(completion);
        assert_eq!(
            data(stream.try_next().await.unwrap().unwrap()),
            Bytes::from_static(b"zi")
        );
        let e = stream.try_next().await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::DataLoss);
        assert!(e.message().contains("checksum mismatch"), "{e:?}");
        // No trailer after a failure.
        assert!(stream.next().await.is_none());
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

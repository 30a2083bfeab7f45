//! The registry's gRPC API as the tests call it: [`Api`] makes the calls as one caller (a token,
//! or anonymous) and unwraps the answers, checking that no `Zip` chunk is over
//! [`MAX_ZIP_CHUNK`]; the message streams of a `Publish`; and the code of a failed call.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use strata_central_registry::grpc::MAX_ZIP_CHUNK;
use strata_central_registry::grpc::proto::registry_client::RegistryClient;
use strata_central_registry::grpc::proto::{
    InfoRequest, LatestRequest, ListRequest, ModRequest, ModResponse, PublishHeader,
    PublishRequest, PublishResponse, QueryRequest, StatRequest, VersionEntry, VersionInfo,
    ZipHeader, ZipRequest, publish_request, zip_response,
};
use tonic::transport::Channel;
use tonic::{Request, Status};

/// The registry calls as one caller (a token, or anonymous) sees them, answers unwrapped.
#[derive(Debug, Clone)]
pub struct Api {
    /// The client.
    pub client: RegistryClient<Channel>,
    /// The caller's token.
    pub token: Option<&'static str>,
}

impl Api {
    /// Calls through `client` as the holder of `token`.
    pub fn new(client: RegistryClient<Channel>, token: Option<&'static str>) -> Self {
        Self { client, token }
    }

    fn req<T>(&self, message: T) -> Request<T> {
        authed(message, self.token)
    }

    /// `List`.
    pub async fn list(&mut self, repository: &str, module: &str) -> Result<Vec<String>, Status> {
        let (repository, module) = (repository.into(), module.into());
        let r = self.req(ListRequest { repository, module });
        Ok(self.client.list(r).await?.into_inner().versions)
    }

    /// `Latest`.
    pub async fn latest(&mut self, repository: &str, module: &str) -> Result<VersionInfo, Status> {
        let (repository, module) = (repository.into(), module.into());
        let r = self.req(LatestRequest { repository, module });
        Ok(self.client.latest(r).await?.into_inner().info.unwrap())
    }

    /// `Query`.
    pub async fn query(
        &mut self,
        repository: &str,
        module: &str,
        query: &str,
    ) -> Result<VersionInfo, Status> {
        let (repository, module, query) = (repository.into(), module.into(), query.into());
        let r = self.req(QueryRequest {
            repository,
            module,
            query,
        });
        Ok(self.client.query(r).await?.into_inner().info.unwrap())
    }

    /// `Info`.
    pub async fn info(
        &mut self,
        repository: &str,
        module: &str,
        version: &str,
    ) -> Result<VersionInfo, Status> {
        let (repository, module, version) = (repository.into(), module.into(), version.into());
        let r = self.req(InfoRequest {
            repository,
            module,
            version,
        });
        Ok(self.client.info(r).await?.into_inner().info.unwrap())
    }

    /// `Mod`.
    pub async fn go_mod(
        &mut self,
        repository: &str,
        module: &str,
        version: &str,
    ) -> Result<ModResponse, Status> {
        let (repository, module, version) = (repository.into(), module.into(), version.into());
        let r = self.req(ModRequest {
            repository,
            module,
            version,
        });
        Ok(self.client.r#mod(r).await?.into_inner())
    }

    /// `Stat`.
    pub async fn stat(
        &mut self,
        repository: &str,
        module: &str,
        version: &str,
    ) -> Result<VersionEntry, Status> {
        let (repository, module, version) = (repository.into(), module.into(), version.into());
        let r = self.req(StatRequest {
            repository,
            module,
            version,
        });
        Ok(self.client.stat(r).await?.into_inner().entry.unwrap())
    }

    /// `Publish` of `zip` in `chunk`-byte pieces.
    pub async fn publish(
        &mut self,
        repository: &str,
        expected: Option<(&str, &str)>,
        zip: Vec<u8>,
        chunk: usize,
    ) -> Result<PublishResponse, Status> {
        let r = self.req(publish_messages(repository, expected, chunked(zip, chunk)));
        Ok(self.client.publish(r).await?.into_inner())
    }

    /// `Zip` of `offset..offset+length` (0: to the end): the header and the concatenated data,
    /// checking that no chunk is over [`MAX_ZIP_CHUNK`].
    pub async fn zip(
        &mut self,
        repository: &str,
        module: &str,
        version: &str,
        (offset, length): (u64, u64),
    ) -> Result<(ZipHeader, Vec<u8>), Status> {
        let (repository, module, version) = (repository.into(), module.into(), version.into());
        let r = self.req(ZipRequest {
            repository,
            module,
            version,
            offset,
            length,
            accept_streaming: false,
        });
        let mut stream = self.client.zip(r).await?.into_inner();
        let header = match stream.message().await?.and_then(|m| m.part) {
            Some(zip_response::Part::Header(h)) => h,
            other => panic!("first message is not a header: {other:?}"),
        };
        let mut data = Vec::new();
        while let Some(message) = stream.message().await? {
            match message.part {
                Some(zip_response::Part::Data(chunk)) => {
                    assert!(chunk.len() <= MAX_ZIP_CHUNK, "chunk of {}", chunk.len());
                    data.extend_from_slice(&chunk);
                }
                other => panic!("unexpected message after the header: {other:?}"),
            }
        }
        Ok((header, data))
    }
}

/// `message` with `authorization: Bearer <token>` when a token is given.
pub fn authed<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// A `Publish` call's messages: the header, then `chunks` of the zip.
pub fn publish_messages(
    repository: &str,
    expected: Option<(&str, &str)>,
    chunks: impl Stream<Item = Bytes> + Send + 'static,
) -> impl Stream<Item = PublishRequest> + Send + 'static {
    let (module, version) = expected.unwrap_or(("", ""));
    let header = PublishRequest {
        part: Some(publish_request::Part::Header(PublishHeader {
            repository: repository.to_string(),
            module: module.to_string(),
            version: version.to_string(),
        })),
    };
    futures::stream::once(async move { header }).chain(chunks.map(|chunk| PublishRequest {
        part: Some(publish_request::Part::Chunk(chunk)),
    }))
}

/// `data` cut into chunks of `size` bytes.
pub fn chunked(data: Vec<u8>, size: usize) -> impl Stream<Item = Bytes> + Send + 'static {
    let data = Bytes::from(data);
    let chunks: Vec<Bytes> = (0..data.len())
        .step_by(size)
        .map(|start| data.slice(start..data.len().min(start + size)))
        .collect();
    futures::stream::iter(chunks)
}

/// The gRPC code of a failed call, with its message for assertion failures.
pub fn code<T>(result: Result<T, Status>) -> (tonic::Code, String) {
    let Err(status) = result else {
        panic!("the call should fail");
    };
    (status.code(), status.message().to_string())
}

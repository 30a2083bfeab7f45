//! [`RegistryService`]: the `strata.registry.v1.Registry` calls, each one the gRPC form of a
//! [`Registry`](crate::registry::Registry) operation. Every call authenticates from the
//! `authorization` metadata, parses its fields into a typed request, and answers errors with the
//! code of their [`ErrorKind`].

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use strata_core::protocol::{ErrorKind, GrpcCode, ProxyRequest};
use strata_core::version::ModuleVersion;
use tonic::{Request, Response, Status, Streaming};

use super::convert::{self, kind_status, status};
use super::proto::registry_server::Registry as RegistryApi;
use super::proto::{self, zip_response};
use super::streams::{PublishBody, ZipBody, ZipCompletion};
use crate::auth::{Permission, Principal};
use crate::error::RegistryError;
use crate::http::AppState;
use crate::metrics::OutcomeLabels;
use crate::registry::Answer;
use crate::repository::{Artifact, Freshness, RemoteRepository};
use crate::storage::{StorageError, read_body};

/// Largest `.mod` served (Go's limit on go.mod files).
const MAX_MOD: usize = 16 << 20;

/// The gRPC registry service over the shared [`AppState`].
#[derive(Debug, Clone)]
pub struct RegistryService {
    state: Arc<AppState>,
}

impl RegistryService {
    /// The service over `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }

    fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        let authorization = convert::authorization(request.metadata())?;
        self.state
            .registry
            .authenticate(authorization)
            .map_err(|e| status(&e))
    }

    async fn read(
        &self,
        principal: &Principal,
        repository: &str,
        request: &ProxyRequest,
    ) -> Result<Answer, Status> {
        self.state
            .registry
            .read(principal, repository, request, None)
            .await
            .map_err(|e| status(&e))
    }

    async fn info_doc(
        &self,
        principal: &Principal,
        repository: &str,
        request: &ProxyRequest,
    ) -> Result<(proto::VersionInfo, Freshness), Status> {
        match self.read(principal, repository, request).await? {
            Answer::Info(doc, freshness) => Ok((convert::info(doc), freshness)),
            other => Err(unexpected(&other)),
        }
    }

    /// The whole zip, or `offset..offset+length` of it. An offset at the very end (a resumed
    /// download that had everything) answers with the header and no data. With
    /// `accept_streaming`, a remote repository's zip still downloading is answered at once
    /// (`streaming` header, no etag) with the future of its verified SHA-256 for the trailer.
    async fn zip_artifact(
        &self,
        principal: &Principal,
        req: &proto::ZipRequest,
    ) -> Result<(proto::ZipHeader, Option<(Artifact, Option<ZipCompletion>)>), Status> {
        let request = convert::version(&req.module, &req.version, "zip")?;
        let range = convert::zip_range(req.offset, req.length);
        let read = self
            .state
            .registry
            .read(principal, &req.repository, &request, range);
        let (answer, completion) = if req.accept_streaming {
            RemoteRepository::streaming_zips(read).await
        } else {
            (read.await, None)
        };
        match answer {
            Ok(Answer::Artifact(artifact)) => {
                let object = &artifact.object;
                let header = proto::ZipHeader {
                    size: object.meta.size,
                    h1: artifact.h1.clone().unwrap_or_default(),
                    etag: artifact.etag.clone().unwrap_or_default(),
                    offset: object.range.start,
                    length: object.range.end - object.range.start,
                    streaming: completion.is_some(),
                };
                Ok((header, Some((artifact, completion))))
            }
            Ok(other) => Err(unexpected(&other)),
            Err(RegistryError::Storage(StorageError::RangeNotSatisfiable { .. })) => {
                let ProxyRequest::Zip(module, version) = &request else {
                    return Err(kind_status(ErrorKind::Internal, "zip request expected"));
                };
                let entry = self
                    .state
                    .registry
                    .stat(principal, &req.repository, module, version)
                    .await
                    .map_err(|e| status(&e))?;
                let zip = entry.zip.ok_or_else(|| {
                    kind_status(
                        ErrorKind::NotFound,
                        format!("{module}@{version}: zip not stored"),
                    )
                })?;
                if req.offset != zip.size {
                    return Err(kind_status(
                        ErrorKind::InvalidInput,
                        format!(
                            "offset {} is past the end of the {}-byte zip of {module}@{version}",
                            req.offset, zip.size
                        ),
                    ));
                }
                let header = proto::ZipHeader {
                    size: zip.size,
                    h1: zip.h1.unwrap_or_default(),
                    etag: zip.sha256.to_string(),
                    offset: zip.size,
                    length: 0,
                    streaming: false,
                };
                Ok((header, None))
            }
            Err(e) => Err(status(&e)),
        }
    }

    fn count_publish(&self, outcome: &'static str) {
        self.state
            .metrics
            .publishes
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

/// An answer of the wrong shape for the request: a bug.
fn unexpected(answer: &Answer) -> Status {
    let shape = match answer {
        Answer::List(..) => "a version list",
        Answer::Info(..) => "a version info",
        Answer::Artifact(_) => "an artifact",
    };
    status(&RegistryError::Internal(format!(
        "unexpected answer: {shape}"
    )))
}

/// Marks a stale answer with the `x-strata-stale: true` metadata entry (the HTTP API sends a
/// header of the same name).
fn marked<T>(mut response: Response<T>, freshness: Freshness) -> Response<T> {
    if freshness == Freshness::Stale {
        response.metadata_mut().insert(
            "x-strata-stale",
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    response
}

type ZipStream = Pin<Box<dyn Stream<Item = Result<proto::ZipResponse, Status>> + Send>>;

#[tonic::async_trait]
impl RegistryApi for RegistryService {
    async fn info(
        &self,
        request: Request<proto::InfoRequest>,
    ) -> Result<Response<proto::InfoResponse>, Status> {
        let principal = self.principal(&request)?;
        let req = request.into_inner();
        let parsed = convert::version(&req.module, &req.version, "info")?;
        let (info, freshness) = self.info_doc(&principal, &req.repository, &parsed).await?;
        Ok(marked(
            Response::new(proto::InfoResponse { info: Some(info) }),
            freshness,
        ))
    }

    async fn r#mod(
        &self,
        request: Request<proto::ModRequest>,
    ) -> Result<Response<proto::ModResponse>, Status> {
        let principal = self.principal(&request)?;
        let req = request.into_inner();
        let parsed = convert::version(&req.module, &req.version, "mod")?;
        let artifact = match self.read(&principal, &req.repository, &parsed).await? {
            Answer::Artifact(artifact) => artifact,
            other => return Err(unexpected(&other)),
        };
        let content = read_body(artifact.object.body, MAX_MOD)
            .await
            .map_err(|e| status(&RegistryError::io(format!("reading {}", parsed.path()), e)))?;
        Ok(Response::new(proto::ModResponse {
            content,
            h1: artifact.h1.unwrap_or_default(),
            etag: artifact.etag.unwrap_or_default(),
        }))
    }

    type ZipStream = ZipStream;

    async fn zip(
        &self,
        request: Request<proto::ZipRequest>,
    ) -> Result<Response<Self::ZipStream>, Status> {
        let principal = self.principal(&request)?;
        let req = request.into_inner();
        let (header, artifact) = self.zip_artifact(&principal, &req).await?;
        let length = header.length;
        let first = futures::stream::once(futures::future::ready(Ok::<_, Status>(
            proto::ZipResponse {
                part: Some(zip_response::Part::Header(header)),
            },
        )));
        let stream: ZipStream = match artifact {
            Some((artifact, completion)) => {
                let body = ZipBody::new(artifact.object.body, length);
                let body = match completion {
                    Some(completion) => body.with_trailer(completion),
                    None => body,
                };
                Box::pin(first.chain(body))
            }
            None => Box::pin(first),
        };
        Ok(Response::new(stream))
    }

    async fn list(
        &self,
        request: Request<proto::ListRequest>,
    ) -> Result<Response<proto::ListResponse>, Status> {
        let principal = self.principal(&request)?;
        let req = request.into_inner();
        let parsed = convert::list(&req.module)?;
        match self.read(&principal, &req.repository, &parsed).await? {
            Answer::List(versions, freshness) => Ok(marked(
                Response::new(proto::ListResponse { versions }),
                freshness,
            )),
            other => Err(unexpected(&other)),
        }
    }

    async fn latest(
        &self,
        request: Request<proto::LatestRequest>,
    ) -> Result<Response<proto::LatestResponse>, Status> {
        let principal = self.principal(&request)?;
        let req = request.into_inner();
        let parsed = convert::latest(&req.module)?;
        let (info, freshness) = self.info_doc(&principal, &req.repository, &parsed).await?;
        Ok(marked(
            Response::new(proto::LatestResponse { info: Some(info) }),
            freshness,
        ))
    }

    async fn query(
        &self,
        request: Request<proto::QueryRequest>,
    ) -> Result<Response<proto::QueryResponse>, Status> {
        let principal = self.principal(&request)?;
        let req = request.into_inner();
        let parsed = if req.query == "latest" {
            convert::latest(&req.module)?
        } else {
            convert::version(&req.module, &req.query, "info")?
        };
        let (info, freshness) = self.info_doc(&principal, &req.repository, &parsed).await?;
        Ok(marked(
            Response::new(proto::QueryResponse { info: Some(info) }),
            freshness,
        ))
    }

    async fn stat(
        &self,
        request: Request<proto::StatRequest>,
    ) -> Result<Response<proto::StatResponse>, Status> {
        let principal = self.principal(&request)?;
        let req = request.into_inner();
        // Parsed as a `.mod` request: it takes canonical versions only.
        let ProxyRequest::Mod(module, version) =
            convert::version(&req.module, &req.version, "mod")?
        else {
            return Err(kind_status(ErrorKind::Internal, "mod request expected"));
        };
        let entry = self
            .state
            .registry
            .stat(&principal, &req.repository, &module, &version)
            .await
            .map_err(|e| status(&e))?;
        Ok(Response::new(proto::StatResponse {
            entry: Some(convert::entry(entry)),
        }))
    }

    async fn publish(
        &self,
        request: Request<Streaming<proto::PublishRequest>>,
    ) -> Result<Response<proto::PublishResponse>, Status> {
        let result = self.publish_stream(request).await;
        match &result {
            Ok(_) => self.count_publish("published"),
            Err(e) => self.count_publish(crate::metrics::publish_outcome(
                ErrorKind::from_grpc_code(GrpcCode::from_i32(e.code() as i32)),
            )),
        }
        result.map(Response::new)
    }
}

impl RegistryService {
    async fn publish_stream(
        &self,
        request: Request<Streaming<proto::PublishRequest>>,
    ) -> Result<proto::PublishResponse, Status> {
        let principal = self.principal(&request)?;
        let mut inbound = request.into_inner();
        let header = match inbound.message().await? {
            Some(proto::PublishRequest {
                part: Some(proto::publish_request::Part::Header(header)),
            }) => header,
            Some(_) => {
                return Err(kind_status(
                    ErrorKind::InvalidInput,
                    "the first Publish message must be the header",
                ));
            }
            None => {
                return Err(kind_status(
                    ErrorKind::InvalidInput,
                    "empty Publish call: send a header, then the zip",
                ));
            }
        };
        let expected = match (header.module.is_empty(), header.version.is_empty()) {
            (true, true) => None,
            (false, false) => {
                // Checked before any byte is received, like a URL on the HTTP side.
                convert::version(&header.module, &header.version, "zip")?;
                Some(ModuleVersion::new(header.module, header.version))
            }
            _ => {
                return Err(kind_status(
                    ErrorKind::InvalidInput,
                    "give both module and version in the Publish header, or neither",
                ));
            }
        };
        let registry = &self.state.registry;
        // Refuse before receiving the zip, so a refused client is not made to upload it.
        registry
            .authorized(&principal, &header.repository, Permission::Deploy)
            .map_err(|e| status(&e))?;
        let body = PublishBody::new(inbound);
        let failure = body.failure();
        match registry
            .publish(&principal, &header.repository, body, expected)
            .await
        {
            Ok((published, change)) => Ok(proto::PublishResponse {
                module: change.module.to_string(),
                go_sum: published.go_sum,
                entry: Some(convert::entry(published.entry)),
            }),
            // The body failed: the client's own status (cancelled, bad message) says more than
            // the registry's "reading upload body" I/O error.
            Err(e) => Err(failure.get().cloned().unwrap_or_else(|| status(&e))),
        }
    }
}

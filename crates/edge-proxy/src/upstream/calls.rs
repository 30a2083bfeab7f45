//! The typed registry calls: each builds its request (with the client's `authorization` and a
//! `grpc-timeout`) and runs it through [`RegistryPool::call`].

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Status};

use super::{RegistryPool, Upstream, ZipOpen};
use crate::error::EdgeError;
use crate::proto::{
    LatestRequest, ListRequest, ModRequest, ModResponse, QueryRequest, StatRequest, VersionEntry,
    VersionInfo, ZipRequest, zip_response,
};

impl RegistryPool {
    /// `List`.
    pub async fn list(
        &self,
        repository: &str,
        module: &str,
        auth: Option<&str>,
    ) -> Result<(Vec<String>, Arc<Upstream>), EdgeError> {
        let what = format!("{module}/@v/list");
        let message = ListRequest {
            repository: repository.into(),
            module: module.into(),
        };
        self.call(&what, None, |mut c, t| {
            let r = request(message.clone(), auth, t);
            async move { Ok(c.list(r).await?.into_inner().versions) }
        })
        .await
    }

    /// `Latest`.
    pub async fn latest(
        &self,
        repository: &str,
        module: &str,
        auth: Option<&str>,
    ) -> Result<(VersionInfo, Arc<Upstream>), EdgeError> {
        let what = format!("{module}/@latest");
        let message = LatestRequest {
            repository: repository.into(),
            module: module.into(),
        };
        self.call(&what, None, |mut c, t| {
            let r = request(message.clone(), auth, t);
            async move { info(c.latest(r).await?.into_inner().info) }
        })
        .await
    }

    /// `Query` (also used for `.info` of canonical versions: the answer is the same document).
    pub async fn query(
        &self,
        repository: &str,
        module: &str,
        query: &str,
        auth: Option<&str>,
    ) -> Result<(VersionInfo, Arc<Upstream>), EdgeError> {
        let what = format!("{module}@{query}");
        let message = QueryRequest {
            repository: repository.into(),
            module: module.into(),
            query: query.into(),
        };
        self.call(&what, None, |mut c, t| {
            let r = request(message.clone(), auth, t);
            async move { info(c.query(r).await?.into_inner().info) }
        })
        .await
    }

    /// `Info` of a canonical version.
    pub async fn info(
        &self,
        repository: &str,
        module: &str,
        version: &str,
        auth: Option<&str>,
    ) -> Result<(VersionInfo, Arc<Upstream>), EdgeError> {
        let what = format!("{module}@{version}.info");
        let message = crate::proto::InfoRequest {
            repository: repository.into(),
            module: module.into(),
            version: version.into(),
        };
        self.call(&what, None, |mut c, t| {
            let r = request(message.clone(), auth, t);
            async move { info(c.info(r).await?.into_inner().info) }
        })
        .await
    }

    /// `Mod`.
    pub async fn go_mod(
        &self,
        repository: &str,
        module: &str,
        version: &str,
        auth: Option<&str>,
    ) -> Result<(ModResponse, Arc<Upstream>), EdgeError> {
        let what = format!("{module}@{version}.mod");
        let message = ModRequest {
            repository: repository.into(),
            module: module.into(),
            version: version.into(),
        };
        self.call(&what, None, |mut c, t| {
            let r = request(message.clone(), auth, t);
            async move { Ok(c.r#mod(r).await?.into_inner()) }
        })
        .await
    }

    /// `Stat`: the cheap call that asks whether the caller may read the version.
    pub async fn stat(
        &self,
        repository: &str,
        module: &str,
        version: &str,
        auth: Option<&str>,
    ) -> Result<(VersionEntry, Arc<Upstream>), EdgeError> {
        let what = format!("{module}@{version}");
        let message = StatRequest {
            repository: repository.into(),
            module: module.into(),
            version: version.into(),
        };
        self.call(&what, None, |mut c, t| {
            let r = request(message.clone(), auth, t);
            async move {
                c.stat(r)
                    .await?
                    .into_inner()
                    .entry
                    .ok_or_else(|| Status::internal("Stat answer without an entry"))
            }
        })
        .await
    }

    /// Opens a `Zip` stream from `offset` and waits for its header (within the call deadline;
    /// the data that follows is bounded by the zip idle timeout instead). Streaming answers are
    /// accepted: a zip the registry is still downloading starts at once, its header without an
    /// ETag (the SHA-256 comes in a trailer when the stream ends).
    pub async fn open_zip(
        &self,
        repository: &str,
        module: &str,
        version: &str,
        offset: u64,
        auth: Option<&str>,
        skip: Option<&str>,
    ) -> Result<ZipOpen, EdgeError> {
        let what = format!("{module}@{version}.zip");
        let message = ZipRequest {
            repository: repository.into(),
            module: module.into(),
            version: version.into(),
            offset,
            length: 0,
            accept_streaming: true,
        };
        let ((header, stream), upstream) = self
            .call(&what, skip, |mut c, _| {
                // No grpc-timeout: the stream lasts as long as the download; the header is
                // bounded by the call deadline around this future.
                let r = request(message.clone(), auth, Duration::ZERO);
                async move {
                    let mut stream = c.zip(r).await?.into_inner();
                    match stream.message().await?.and_then(|m| m.part) {
                        Some(zip_response::Part::Header(h)) => Ok((h, stream)),
                        _ => Err(Status::internal("Zip stream did not start with a header")),
                    }
                }
            })
            .await?;
        Ok(ZipOpen {
            header,
            stream,
            upstream,
        })
    }
}

fn info(info: Option<VersionInfo>) -> Result<VersionInfo, Status> {
    info.ok_or_else(|| Status::internal("answer without a version info"))
}

/// A request carrying the client's `authorization` and, unless zero, a `grpc-timeout`.
fn request<T>(message: T, auth: Option<&str>, timeout: Duration) -> Request<T> {
    let mut r = Request::new(message);
    if !timeout.is_zero() {
        r.set_timeout(timeout);
    }
    if let Some(value) = auth.and_then(|a| a.parse().ok()) {
        r.metadata_mut().insert("authorization", value);
    }
    // Built inside the call's span (see `RegistryPool::call`): the registry continues it.
    strata_service::trace::inject(&tracing::Span::current(), |key, value| {
        if let Ok(value) = value.parse() {
            r.metadata_mut().insert(key, value);
        }
    });
    r
}

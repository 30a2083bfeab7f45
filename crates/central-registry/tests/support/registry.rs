//! A registry for the gRPC tests: started in-process through `server::start` with fs storage
//! in a temp dir and both listeners on `127.0.0.1:0`, plus clients, module zips built with the
//! core zip rules, and peak-memory readings of the test process.

use std::io;
use std::path::Path;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use strata_central_registry::auth::hash_token;
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::grpc::MAX_ZIP_CHUNK;
use strata_central_registry::grpc::proto::registry_client::RegistryClient;
use strata_central_registry::grpc::proto::{
    InfoRequest, LatestRequest, ListRequest, ModRequest, ModResponse, PublishHeader,
    PublishRequest, PublishResponse, QueryRequest, StatRequest, VersionEntry, VersionInfo,
    ZipHeader, ZipRequest, publish_request, zip_response,
};
use strata_central_registry::server::{self, Running};
use strata_core::version::ModuleVersion;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

/// Deploy + read on both repositories.
pub const CI_TOKEN: &str = "strata_grpc-ci-token";
/// Read only.
pub const READER_TOKEN: &str = "strata_grpc-reader-token";
/// The repository that needs a token to read.
pub const PRIVATE: &str = "private";
/// The repository with anonymous read.
pub const OPEN: &str = "open";

/// A running registry; shut down when dropped.
#[derive(Debug)]
pub struct TestRegistry {
    pub running: Running,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry with repositories `private` and `open` and tokens `ci` and `reader`.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).unwrap();
        let text = format!(
            r#"
            storage = {{ kind = "fs", root = "{data}" }}
            [server]
            http = "127.0.0.1:0"
            grpc = "127.0.0.1:0"
            spool_dir = "{spool}"
            [[repositories]]
            name = "{PRIVATE}"
            kind = "local"
            include = ["example.com"]
            [[repositories]]
            name = "{OPEN}"
            kind = "local"
            anonymous_read = true
            [[tokens]]
            name = "ci"
            sha256 = "{ci}"
            permissions = {{ "*" = ["read", "deploy"] }}
            [[tokens]]
            name = "reader"
            sha256 = "{reader}"
            permissions = {{ "*" = ["read"] }}
            "#,
            data = dir.path().join("data").display(),
            spool = spool.display(),
            ci = hash_token(CI_TOKEN),
            reader = hash_token(READER_TOKEN),
        );
        let config = RegistryConfig::from_toml(&text, "grpc-test", &[]).unwrap();
        let shutdown = CancellationToken::new();
        let running = server::start(config, shutdown.clone()).await.unwrap();
        Self {
            running,
            shutdown,
            _dir: dir,
        }
    }

    /// A connected channel (1 MiB stream window, like the server's).
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.running.grpc_addr))
            .unwrap()
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .connect()
            .await
            .unwrap()
    }

    /// A registry client.
    pub async fn client(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.channel().await).max_decoding_message_size(17 << 20)
    }

    /// `http://127.0.0.1:PORT/go/{repo}/{path}`.
    pub fn http_url(&self, repo: &str, path: &str) -> String {
        format!("http://{}/go/{repo}/{path}", self.running.http_addr)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

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

/// The module zip of `module@version` with `files` (path, content), and its `h1:`.
pub fn module_zip(module: &str, version: &str, files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let mut out = Vec::new();
    let created = strata_core::zip::create_from_dir(
        &mut out,
        &ModuleVersion::new(module, version),
        dir.path(),
    )
    .unwrap();
    (out, created.hash)
}

/// Writes the module zip of `module@version` from the tree in `dir` to `zip`, streaming;
/// returns its `h1:`.
pub fn module_zip_file(module: &str, version: &str, dir: &Path, zip: &Path) -> String {
    let out = io::BufWriter::new(std::fs::File::create(zip).unwrap());
    strata_core::zip::create_from_dir(out, &ModuleVersion::new(module, version), dir)
        .unwrap()
        .hash
}

/// The gRPC code of a failed call, with its message for assertion failures.
pub fn code<T>(result: Result<T, Status>) -> (tonic::Code, String) {
    let Err(status) = result else {
        panic!("the call should fail");
    };
    (status.code(), status.message().to_string())
}

/// The test process's peak resident set (`VmHWM`) in KiB.
pub fn peak_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// The test process's current resident set (`VmRSS`) in KiB.
pub fn rss_kib() -> u64 {
    proc_status_kib("VmRSS:")
}

fn proc_status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets the peak resident set to the current one (Linux `clear_refs` 5), so a later
/// [`peak_rss_kib`] shows the peak of what ran in between. Returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

//! [`TestRegistry`]: a registry started in-process through `server::start`, in a temp
//! directory of its own (`data/` for fs storage, `spool/` for uploads), HTTP and gRPC on
//! `127.0.0.1:0`, shut down when dropped. [`Builder`] starts one from a [`RegistryToml`], on fs
//! storage or on a bucket of a MinIO server it starts, optionally owning the fixture upstream
//! and checksum database the configuration points at.
//!
//! Besides the addresses and the running server, it offers the requests the tests make
//! (publish, Artifactory-style puts and deletes, GOPROXY reads, `/metrics`), gRPC clients, and
//! snapshots of what storage and the spool directory hold.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::events::{Event, StartFrom, Subscription};
use strata_central_registry::grpc::proto::registry_client::RegistryClient;
use strata_central_registry::server::{self, Running};
use strata_central_registry::storage::fs::FsStore;
use strata_central_registry::storage::{KeyPrefix, ObjectStore, StorageConfig};
use strata_service::config::ServiceConfig as _;
use strata_testkit::s3_server::S3Server;
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use super::config::{self, CI_TOKEN, DB_NAME, Options, RegistryToml, RemoteOptions};
use super::http::{Reply, bearer, client, send, with_auth};
use super::s3;

/// The fixture upstream and checksum database a remote layout points at.
struct Fixtures {
    upstream: FixtureUpstream,
    db: Arc<TestSumDb>,
}

/// How a [`TestRegistry`] is started.
pub struct Builder<'a> {
    toml: RegistryToml,
    edit: Option<Box<dyn FnOnce(String) -> String + 'a>>,
    s3_bucket: Option<String>,
    fixtures: Option<Fixtures>,
}

impl<'a> Builder<'a> {
    /// Changes the configuration text before it is read (tests of settings the layouts lack).
    pub fn edit(mut self, edit: impl FnOnce(String) -> String + 'a) -> Self {
        self.edit = Some(Box::new(edit));
        self
    }

    /// Storage on a fresh MinIO server (started here, kept with the registry), in `bucket`.
    pub fn s3(mut self, bucket: &str) -> Self {
        self.s3_bucket = Some(bucket.to_owned());
        self
    }

    /// Keeps the fixture upstream and database the configuration points at with the registry
    /// ([`TestRegistry::upstream`], [`TestRegistry::db`], [`TestRegistry::restart`]).
    pub fn fixtures(mut self, upstream: FixtureUpstream, db: Arc<TestSumDb>) -> Self {
        self.fixtures = Some(Fixtures { upstream, db });
        self
    }

    /// Starts the registry.
    pub async fn start(self) -> TestRegistry {
        let Builder {
            toml,
            edit,
            s3_bucket,
            fixtures,
        } = self;
        let dir = tempfile::tempdir().expect("temp dir");
        let (data, spool) = (dir.path().join("data"), dir.path().join("spool"));
        std::fs::create_dir_all(&spool).expect("spool dir");
        let mut text = toml.text(&data, &spool, loopback());
        if let Some(edit) = edit {
            text = edit(text);
        }
        let (store, fs_root, s3): (Arc<dyn ObjectStore>, _, _) = match s3_bucket {
            None => {
                let store = FsStore::open(&data).expect("open fs store");
                (Arc::new(store), Some(data), None)
            }
            Some(bucket) => {
                let server = S3Server::start().unwrap_or_else(|e| panic!("{e}"));
                let store = s3::store(&server, &bucket, "").await;
                let storage = StorageConfig::S3(s3::config(&server, &bucket, ""));
                (Arc::new(store), None, Some((server, storage)))
            }
        };
        let shutdown = CancellationToken::new();
        let storage = s3.as_ref().map(|(_, storage)| storage.clone());
        let running = start_server(&text, storage, shutdown.clone()).await;
        TestRegistry {
            addr: running.http_addr,
            running,
            store,
            fs_root,
            spool,
            client: client(),
            plain_client: reqwest::Client::new(),
            shutdown,
            toml: text,
            fixtures,
            _dir: dir,
            _s3: s3.map(|(server, _)| server),
        }
    }
}

/// A registry running in this process; shut down when dropped.
pub struct TestRegistry {
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    /// The running server: both addresses, the event bus, metrics and the registry.
    pub running: Running,
    /// The store it writes to, opened separately for looking at the listing.
    pub store: Arc<dyn ObjectStore>,
    /// The fs storage root, when storage is fs.
    pub fs_root: Option<PathBuf>,
    /// Where uploads are spooled.
    pub spool: PathBuf,
    /// A client with generous timeouts.
    pub client: reqwest::Client,
    /// A default client, for [`TestRegistry::fetch`].
    plain_client: reqwest::Client,
    /// Cancelled on drop; cancel it to see the registry shut down.
    pub shutdown: CancellationToken,
    /// The configuration text it runs with (storage as fs, even when it is S3).
    pub toml: String,
    fixtures: Option<Fixtures>,
    _dir: tempfile::TempDir,
    _s3: Option<S3Server>,
}

impl TestRegistry {
    /// A builder for a registry configured by `toml`.
    pub fn builder<'a>(toml: RegistryToml) -> Builder<'a> {
        Builder {
            toml,
            edit: None,
            s3_bucket: None,
            fixtures: None,
        }
    }

    /// A registry configured by `toml` on fs storage.
    pub async fn start(toml: RegistryToml) -> Self {
        Self::builder(toml).start().await
    }

    /// The local layout with `options` on fs storage.
    pub async fn start_fs(options: Options) -> Self {
        Self::start(config::local(&options)).await
    }

    /// The local layout with `options` on bucket `bucket` of a fresh MinIO server.
    pub async fn start_s3(bucket: &str, options: Options) -> Self {
        Self::builder(config::local(&options))
            .s3(bucket)
            .start()
            .await
    }

    /// Starts a fixture upstream serving `modules` (all recorded in a new test checksum
    /// database) and the remote layout with `options` in front of it, keeping both.
    pub async fn remote(modules: &[FixtureModule], options: RemoteOptions) -> Self {
        let db = Arc::new(TestSumDb::new(DB_NAME));
        let upstream = FixtureUpstream::start(modules, Some(db.clone())).await;
        let toml = config::remote(&upstream, &db, &options);
        Self::builder(toml).fixtures(upstream, db).start().await
    }

    /// Shuts this registry down and starts the remote layout with `options` over the same
    /// storage, spool and fixtures.
    pub async fn restart(&mut self, options: RemoteOptions) {
        self.shutdown.cancel();
        let data = self.fs_root.clone().expect("restart needs fs storage");
        let toml = config::remote(self.upstream(), self.db(), &options);
        self.toml = toml.text(&data, &self.spool, loopback());
        self.shutdown = CancellationToken::new();
        self.running = start_server(&self.toml, None, self.shutdown.clone()).await;
        self.addr = self.running.http_addr;
    }

    /// The fixture upstream (registries started with fixtures only).
    pub fn upstream(&self) -> &FixtureUpstream {
        &self.owned_fixtures().upstream
    }

    /// The test checksum database (registries started with fixtures only).
    pub fn db(&self) -> &Arc<TestSumDb> {
        &self.owned_fixtures().db
    }

    fn owned_fixtures(&self) -> &Fixtures {
        self.fixtures
            .as_ref()
            .expect("a registry started with fixtures")
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `http://ADDR/go/{repo}`: the GOPROXY URL of a repository.
    pub fn proxy_url(&self, repo: &str) -> String {
        self.url(&format!("/go/{repo}"))
    }

    /// `PUT /api/repos/{repo}/upload`; `auth` is the whole `Authorization` value, "" for none.
    pub async fn upload(&self, repo: &str, auth: &str, body: Vec<u8>) -> Reply {
        let url = self.url(&format!("/api/repos/{repo}/upload"));
        send(with_auth(self.client.put(url).body(body), auth)).await
    }

    /// Publishes a module zip to `repo` with the CI token: status and body.
    pub async fn publish(&self, repo: &str, zip: Vec<u8>) -> (u16, String) {
        let reply = self.upload(repo, &bearer(CI_TOKEN), zip).await;
        (reply.status, reply.text())
    }

    /// `PUT /api/go/{repo}/{path}` (Artifactory style).
    pub async fn art_put(&self, repo: &str, path: &str, auth: &str, body: Vec<u8>) -> Reply {
        let url = self.url(&format!("/api/go/{repo}/{path}"));
        send(with_auth(self.client.put(url).body(body), auth)).await
    }

    /// `DELETE /api/go/{repo}/{path}`.
    pub async fn art_delete(&self, repo: &str, path: &str, auth: &str) -> Reply {
        let url = self.url(&format!("/api/go/{repo}/{path}"));
        send(with_auth(self.client.delete(url), auth)).await
    }

    /// `GET /go/{repo}/{path}` with extra headers.
    pub async fn get(&self, repo: &str, path: &str, auth: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.client.get(self.url(&format!("/go/{repo}/{path}")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        send(with_auth(request, auth)).await
    }

    /// `HEAD /go/{repo}/{path}`.
    pub async fn head(&self, repo: &str, path: &str, auth: &str) -> Reply {
        let request = self.client.head(self.url(&format!("/go/{repo}/{path}")));
        send(with_auth(request, auth)).await
    }

    /// `GET /go/{repo}/{path}` with the CI token: status, headers and body. Sent through a
    /// default `reqwest` client (no timeout), as the remote-repository tests always have: one
    /// of them races two upstream failures, and the timer of a client timeout changes which
    /// one wins.
    pub async fn fetch(
        &self,
        repo: &str,
        path: &str,
    ) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let url = format!("{}/{path}", self.proxy_url(repo));
        let r = self
            .plain_client
            .get(url)
            .bearer_auth(CI_TOKEN)
            .send()
            .await
            .expect("request fails to complete");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
        (status, headers, body)
    }

    /// [`TestRegistry::fetch`] with the body as text.
    pub async fn fetch_text(&self, repo: &str, path: &str) -> (u16, String) {
        let (status, _, body) = self.fetch(repo, path).await;
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        send(self.client.get(self.url("/metrics"))).await.text()
    }

    /// Subscribes to change events from now on.
    pub async fn events(&self) -> Subscription {
        self.running.events.subscribe(StartFrom::New).await
    }

    /// A connected gRPC channel (1 MiB stream window, like the server's).
    pub async fn channel(&self) -> Channel {
        Endpoint::from_shared(format!("http://{}", self.running.grpc_addr))
            .expect("endpoint")
            .initial_stream_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .connect()
            .await
            .expect("connect to the gRPC listener")
    }

    /// A gRPC registry client.
    pub async fn grpc_client(&self) -> RegistryClient<Channel> {
        RegistryClient::new(self.channel().await).max_decoding_message_size(17 << 20)
    }

    /// Every object under `repos/`: key → (size, etag).
    pub async fn storage_snapshot(&self) -> BTreeMap<String, (u64, String)> {
        storage_snapshot(self.store.as_ref()).await
    }

    /// The object keys under `repos/{repo}/` (fs storage), relative to it, sorted.
    pub fn stored_keys(&self, repo: &str) -> Vec<String> {
        let root = self.fs_root.as_ref().expect("fs storage");
        let base = root.join("objects").join("repos").join(repo);
        let mut files = BTreeMap::new();
        walk(&base, &mut files);
        let mut keys: Vec<String> = files
            .keys()
            .filter_map(|p| p.strip_prefix(&base).ok())
            .map(|p| p.display().to_string())
            .collect();
        keys.sort();
        keys
    }

    /// Every file under the fs root except the lock stripes (objects and temp files), and every
    /// file in the spool directory: path → size. Empty maps for S3 storage's part.
    pub fn files_snapshot(&self) -> BTreeMap<PathBuf, u64> {
        let mut files = BTreeMap::new();
        if let Some(root) = &self.fs_root {
            for sub in ["objects", "tmp"] {
                walk(&root.join(sub), &mut files);
            }
        }
        walk(&self.spool, &mut files);
        files
    }

    /// Everything a request could have left behind: the storage listing and the files.
    pub async fn snapshot(&self) -> Snapshot {
        Snapshot {
            objects: self.storage_snapshot().await,
            files: self.files_snapshot(),
        }
    }

    /// Cancels the registry and waits (up to 10 s) for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.running.done).await;
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// What storage and the spool directory hold at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Object key → (size, etag), under `repos/`.
    pub objects: BTreeMap<String, (u64, String)>,
    /// File path → size (fs objects, fs temp files, spooled uploads).
    pub files: BTreeMap<PathBuf, u64>,
}

/// Every object under `repos/` in `store`: key → (size, etag).
pub async fn storage_snapshot(store: &dyn ObjectStore) -> BTreeMap<String, (u64, String)> {
    store
        .list(&KeyPrefix::new("repos/").expect("prefix"))
        .map_ok(|m| (m.key.to_string(), (m.size, m.etag.to_string())))
        .try_collect()
        .await
        .expect("list storage")
}

/// Waits (up to 10 s) for the next event on `sub` matching `pred`.
pub async fn next_event(sub: &mut Subscription, pred: impl Fn(&Event) -> bool) -> Event {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match sub.next().await {
                Some((_, event)) if pred(&event) => return event,
                Some(_) => {}
                None => panic!("event stream ended"),
            }
        }
    })
    .await
    .expect("event within 10 s")
}

/// `127.0.0.1:0`.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts a registry from configuration `text`, its storage replaced by `storage` if given.
async fn start_server(
    text: &str,
    storage: Option<StorageConfig>,
    shutdown: CancellationToken,
) -> Running {
    let mut config = RegistryConfig::from_toml(text, "test", &[])
        .unwrap_or_else(|e| panic!("invalid test configuration: {e}\n{text}"));
    if let Some(storage) = storage {
        config.storage = storage;
    }
    server::start(config, shutdown)
        .await
        .expect("registry starts")
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, u64>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(m) if m.is_dir() => walk(&path, out),
            Ok(m) => {
                out.insert(path, m.len());
            }
            Err(_) => {}
        }
    }
}

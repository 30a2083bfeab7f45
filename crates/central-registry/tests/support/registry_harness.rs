//! A registry for the HTTP-level tests (`http_api`, `publish_concurrency`, `crash`): its
//! configuration (three repositories, three tokens), starting it in-process on `127.0.0.1:0`,
//! module zips built with the core zip writer, a raw HTTP/1.1 client for request targets that
//! `reqwest` would normalise (`..`, `%2e%2e`), and snapshots of what storage holds.
//!
//! Included by each test file with `#[path = "support/registry_harness.rs"] mod harness;`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::server::{self, Running};
use strata_central_registry::storage::fs::{FsConfig, FsStore};
use strata_central_registry::storage::{KeyPrefix, ObjectStore, StorageConfig};
use strata_core::version::ModuleVersion;
use strata_core::zip::{FileKind, ModuleFile, ZipWriter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// May read and deploy in every repository.
pub const CI_TOKEN: &str = "strata-test-ci";
/// May only read.
pub const READ_TOKEN: &str = "strata-test-reader";
/// May do everything, including delete.
pub const ADMIN_TOKEN: &str = "strata-test-admin";

/// Every module, token required to read.
pub const PRIVATE: &str = "private";
/// Only `example.com/team/…` (include pattern), token required to read.
pub const TEAM: &str = "team";
/// Every module, anonymous read allowed.
pub const PUBLIC: &str = "public";

/// `Content-Type` of every error and of `@v/list`.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// Knobs of one test registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// `server.max_upload_bytes`.
    pub max_upload_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_upload_bytes: 512 << 20,
        }
    }
}

/// The registry configuration as TOML: fs storage under `root`, HTTP on `http`, gRPC on a
/// kernel-chosen port, uploads spooled to `spool`.
pub fn config_toml(root: &Path, spool: &Path, http: SocketAddr, options: &Options) -> String {
    let hash = strata_central_registry::auth::hash_token;
    format!(
        r#"
storage = {{ kind = "fs", root = {root:?} }}

[server]
http = "{http}"
grpc = "127.0.0.1:0"
max_upload_bytes = {max}
spool_dir = {spool:?}

[[repositories]]
name = "{PRIVATE}"
kind = "local"

[[repositories]]
name = "{TEAM}"
kind = "local"
include = ["example.com/team"]

[[repositories]]
name = "{PUBLIC}"
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

[[tokens]]
name = "admin"
sha256 = "{admin}"
permissions = {{ "*" = ["admin"] }}
"#,
        root = root.display().to_string(),
        spool = spool.display().to_string(),
        max = options.max_upload_bytes,
        ci = hash(CI_TOKEN),
        reader = hash(READ_TOKEN),
        admin = hash(ADMIN_TOKEN),
    )
}

/// A registry running in this process; shut down when dropped.
#[derive(Debug)]
pub struct TestRegistry {
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    /// The store it writes to, opened separately for looking at the listing.
    pub store: Arc<dyn ObjectStore>,
    /// The fs storage root, when storage is fs.
    pub fs_root: Option<PathBuf>,
    /// Where uploads are spooled.
    pub spool: PathBuf,
    /// A client with generous timeouts.
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    /// A registry on fs storage in a fresh temp directory.
    pub async fn start_fs(options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("data");
        let store: Arc<dyn ObjectStore> = Arc::new(FsStore::open(&root).expect("open fs store"));
        Self::start_with(
            dir,
            StorageConfig::Fs(FsConfig { root: root.clone() }),
            store,
            options,
            Some(root),
        )
        .await
    }

    /// A registry on the given storage; `store` must address the same objects.
    pub async fn start_on(
        storage: StorageConfig,
        store: Arc<dyn ObjectStore>,
        options: Options,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_with(dir, storage, store, options, None).await
    }

    async fn start_with(
        dir: tempfile::TempDir,
        storage: StorageConfig,
        store: Arc<dyn ObjectStore>,
        options: Options,
        fs_root: Option<PathBuf>,
    ) -> Self {
        let spool = dir.path().join("spool");
        std::fs::create_dir_all(&spool).expect("spool dir");
        let http: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let text = config_toml(&dir.path().join("unused"), &spool, http, &options);
        let mut config = RegistryConfig::from_toml(&text, "test", &[]).expect("valid config");
        config.storage = storage;
        let shutdown = CancellationToken::new();
        let running = server::start(config, shutdown.clone())
            .await
            .expect("registry starts");
        Self {
            addr: running.http_addr,
            store,
            fs_root,
            spool,
            client: client(),
            shutdown,
            running: Some(running),
            _dir: dir,
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `PUT /api/repos/{repo}/upload`; `auth` is the whole `Authorization` value, "" for none.
    pub async fn upload(&self, repo: &str, auth: &str, body: Vec<u8>) -> Reply {
        let url = self.url(&format!("/api/repos/{repo}/upload"));
        send(with_auth(self.client.put(url).body(body), auth)).await
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

    /// Every object under `repos/`: key → (size, etag).
    pub async fn storage_snapshot(&self) -> BTreeMap<String, (u64, String)> {
        storage_snapshot(self.store.as_ref()).await
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

    /// Cancels the registry and waits for it to drain.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), running.done).await;
        }
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

/// A `reqwest` client with generous timeouts and no connection reuse surprises.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .expect("http client")
}

fn with_auth(request: reqwest::RequestBuilder, auth: &str) -> reqwest::RequestBuilder {
    if auth.is_empty() {
        request
    } else {
        request.header("authorization", auth)
    }
}

/// `Bearer TOKEN`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `Basic base64(user:TOKEN)`, as `.netrc` clients send it.
pub fn basic(token: &str) -> String {
    use base64::Engine as _;
    let raw = format!("someone:{token}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A module file held in memory.
#[derive(Debug, Clone)]
pub struct MemFile {
    /// Path relative to the module root.
    pub name: String,
    /// Content.
    pub data: Vec<u8>,
}

impl ModuleFile for MemFile {
    fn path(&self) -> &[u8] {
        self.name.as_bytes()
    }
    fn kind(&self) -> io::Result<FileKind> {
        Ok(FileKind::Regular {
            size: self.data.len() as u64,
        })
    }
    fn open(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.data.as_slice()))
    }
}

/// A valid module zip of `path@version` with `files` (`(name, content)`, relative to the module
/// root), built by `strata_core::zip::create`; returns the bytes and the zip's `h1:`.
pub fn module_zip(path: &str, version: &str, files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let files: Vec<MemFile> = files
        .iter()
        .map(|(name, data)| MemFile {
            name: (*name).to_owned(),
            data: data.to_vec(),
        })
        .collect();
    let mut out = Vec::new();
    let created = strata_core::zip::create(&mut out, &ModuleVersion::new(path, version), &files)
        .unwrap_or_else(|e| panic!("creating {path}@{version}: {e}"));
    (out, created.hash)
}

/// A module zip of `path@version` with a go.mod naming the module and one Go file whose
/// content depends on `flavor` (different flavors, different h1).
pub fn simple_module(path: &str, version: &str, flavor: &str) -> (Vec<u8>, String) {
    let go_mod = format!("module {path}\n\ngo 1.21\n");
    let code = format!("package lib\n\n// Flavor is {flavor:?}.\nconst Flavor = {flavor:?}\n");
    module_zip(
        path,
        version,
        &[("go.mod", go_mod.as_bytes()), ("lib.go", code.as_bytes())],
    )
}

/// A zip with entries named exactly as given (duplicates, bad names and all), no checks.
pub fn raw_zip<N: AsRef<[u8]>, D: AsRef<[u8]>>(entries: &[(N, D)]) -> Vec<u8> {
    let mut w = ZipWriter::new(Vec::new());
    for (name, data) in entries {
        w.add_file(name.as_ref(), &mut data.as_ref())
            .expect("zip entry");
    }
    w.finish().expect("finish zip")
}

/// The `h1:` hashes in a publish response's go.sum lines: (zip, go.mod).
pub fn go_sum_hashes(body: &str) -> (String, String) {
    let mut zip = None;
    let mut go_mod = None;
    for line in body.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, version, hash] = fields[..] {
            if version.ends_with("/go.mod") {
                go_mod = Some(hash.to_owned());
            } else {
                zip = Some(hash.to_owned());
            }
        }
    }
    (
        zip.unwrap_or_else(|| panic!("no zip line in {body:?}")),
        go_mod.unwrap_or_else(|| panic!("no go.mod line in {body:?}")),
    )
}

/// The `h1:` of zip bytes.
pub fn zip_h1(zip: &[u8]) -> String {
    strata_core::dirhash::hash_zip(io::Cursor::new(zip)).expect("hash zip")
}

/// A response, read whole: from [`raw_request`] or [`send`].
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The (de-chunked) body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a `reqwest` request and reads the whole answer.
pub async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request fails to complete");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = response.bytes().await.expect("response body").to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends one HTTP/1.1 request with the request target exactly as given (no normalisation of
/// `..`, `%2e%2e` or `//`) and reads the whole response.
pub async fn raw_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(head.as_bytes()).await.expect("send head");
    stream.write_all(body).await.expect("send body");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut raw))
        .await
        .expect("response within 30 s")
        .expect("read response");
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head_only: bool) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Reply {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

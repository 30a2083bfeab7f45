//! [`RegistryProcess`]: `strata-registry` (the `e2e-registry` binary) as its own process, with a
//! configuration written to the test's directory with `strata_testkit::registry_toml` that
//! mirrors deploy/config/registry.toml:
//!
//! * storage: S3 on the test's MinIO (a bucket and prefix of the test's own);
//! * events: the test's Redis stream;
//! * repositories: `private` (local, token to read), `gocache` (remote of the fixture upstream,
//!   verified against the test checksum database), `go` (virtual: `private`, then `gocache`;
//!   token to read, like the deployed example) — none sets `anonymous_read`, whose default is
//!   `false`;
//! * tokens: [`CI_TOKEN`] reads and deploys everywhere, [`OUTSIDER_TOKEN`] reads `gocache` only;
//! * with [`RegistrySpec::with_ledger`], a `[ledger]` (the registry's own checksum database)
//!   whose signer key comes from the process environment (`key_env`).

use std::net::SocketAddr;
use std::path::Path;

use strata_testkit::registry_toml::{ANY_LOOPBACK_PORT, RegistryToml, Repo, Token};

use crate::metrics::Metrics;
use crate::process::{Service, log_field};

/// May read and deploy everywhere.
pub const CI_TOKEN: &str = "strata_e2e-ci";
/// May read `gocache` only: not `private`, and not `go` (whose members include `private`).
pub const OUTSIDER_TOKEN: &str = "strata_e2e-outsider";
/// The test checksum database's name.
pub const SUMDB_NAME: &str = "sum.strata.test";

/// Where a registry keeps its objects: a bucket on the test's S3 server.
#[derive(Debug, Clone)]
pub struct S3Target {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// Bucket (exists before the registry starts).
    pub bucket: String,
    /// Key prefix inside it.
    pub prefix: String,
}

/// Where a registry sends change events.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    /// Stream key.
    pub stream: String,
}

/// What a registry's configuration says.
#[derive(Debug, Clone)]
pub struct RegistrySpec {
    /// Name of the process (logs, config file).
    pub name: String,
    /// Storage.
    pub s3: S3Target,
    /// Events.
    pub redis: RedisTarget,
    /// Base URL of the fixture GOPROXY (`gocache`'s upstream, which also serves the database).
    pub upstream: String,
    /// The test database's verifier key.
    pub sumdb_key: String,
    /// `server.max_upload_bytes`.
    pub max_upload_bytes: u64,
    /// Environment variables of the process (besides `RUST_LOG=info`).
    pub env: Vec<(String, String)>,
    /// The signer key of the registry's checksum database (`[ledger]`), if it has one.
    pub ledger_key: Option<String>,
}

/// The variable the `[ledger]` table names for its key.
const LEDGER_KEY_ENV: &str = "STRATA_E2E_LEDGER_KEY";

impl RegistrySpec {
    /// The same registry with a checksum database signing with `signer_key`
    /// (`PRIVATE+KEY+<name>+…`), handed over in the environment.
    pub fn with_ledger(mut self, signer_key: &str) -> Self {
        self.ledger_key = Some(signer_key.to_owned());
        self.env
            .push((LEDGER_KEY_ENV.to_owned(), signer_key.to_owned()));
        self
    }

    /// The configuration text.
    pub fn toml(&self, spool: &Path) -> String {
        let (s3, redis) = (&self.s3, &self.redis);
        let storage = format!(
            "{{ kind = \"s3\", bucket = \"{bucket}\", region = \"{region}\", endpoint = \"{endpoint}\", path_style = true, prefix = \"{prefix}\", credentials = {{ kind = \"static\", access_key_id = \"{access}\", secret_access_key = \"{secret}\" }} }}",
            bucket = s3.bucket,
            region = strata_testkit::s3_server::REGION,
            endpoint = s3.endpoint,
            prefix = s3.prefix,
            access = strata_testkit::s3_server::ACCESS_KEY,
            secret = strata_testkit::s3_server::SECRET_KEY,
        );
        let events = format!(
            "{{ kind = \"redis\", url = \"{url}\", stream = \"{stream}\", retry_initial_ms = 50, retry_max_ms = 1000, block_ms = 1000 }}",
            url = redis.url,
            stream = redis.stream,
        );
        let upstream = &self.upstream;
        let gocache = Repo::remote("gocache")
            .set(
                "upstream",
                format!(
                    "{{ url = \"{upstream}\", read_timeout_ms = 10000, attempts = 2, retry_initial_ms = 20 }}"
                ),
            )
            .set(
                "checksum_db",
                format!(
                    "{{ key = \"{key}\", url = \"{upstream}/sumdb/{SUMDB_NAME}\", read_timeout_ms = 10000, attempts = 2 }}",
                    key = self.sumdb_key,
                ),
            )
            .set("metadata_ttl_secs", "600")
            .set("negative_ttl_secs", "60");
        let toml = RegistryToml::new()
            .events(events)
            .max_upload_bytes(self.max_upload_bytes)
            .repo(Repo::local("private"))
            .repo(gocache)
            .repo(Repo::virtual_of("go", &["private", "gocache"]))
            .token(Token::new("ci", CI_TOKEN).grant("*", &["read", "deploy"]))
            .token(Token::new("outsider", OUTSIDER_TOKEN).grant("gocache", &["read"]));
        let ledger = match &self.ledger_key {
            Some(key) => format!(
                "\n[ledger]\nname = \"{}\"\nkey_env = \"{LEDGER_KEY_ENV}\"\n",
                key.split('+').nth(2).unwrap_or_default()
            ),
            None => String::new(),
        };
        format!(
            "# Written by the strata end-to-end tests.\n{}{ledger}",
            toml.text_with_storage(&storage, spool, ANY_LOOPBACK_PORT)
        )
    }
}

/// A running registry process (`binary` is `e2e-registry`, see [`crate::Binaries`]).
#[derive(Debug)]
pub struct RegistryProcess {
    /// The process.
    pub service: Service,
    /// Its HTTP address (GOPROXY, publish API, ops).
    pub http: SocketAddr,
    /// Its gRPC address (the edge's API).
    pub grpc: SocketAddr,
    client: reqwest::Client,
}

impl RegistryProcess {
    /// Writes the configuration under `dir`, starts the process, waits for its listening line
    /// and for `/readyz` (which probes the object store) to answer 200.
    pub async fn start(binary: &Path, dir: &Path, spec: &RegistrySpec) -> Self {
        let spool = dir.join(format!("{}-spool", spec.name));
        std::fs::create_dir_all(&spool).expect("spool dir");
        let config = dir.join(format!("{}.toml", spec.name));
        std::fs::write(&config, spec.toml(&spool)).expect("write the registry config");
        let log = dir.join(format!("{}.log", spec.name));
        let mut service = Service::spawn(
            &spec.name,
            binary,
            &["--config", &config.display().to_string()],
            &crate::process::with_log_level(&spec.env),
            &log,
        );
        let (http, grpc) = service
            .wait_for_line(|line| {
                let http = log_field(line, "central registry listening", "http_addr")?;
                let grpc = log_field(line, "central registry listening", "grpc_addr")?;
                Some((http.parse().ok()?, grpc.parse().ok()?))
            })
            .await;
        let registry = Self {
            service,
            http,
            grpc,
            client: reqwest::Client::new(),
        };
        registry.wait_ready().await;
        registry
    }

    /// Polls `/readyz` until 200 (hang guard: one minute).
    async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.http_url());
        self.service.wait_ready(&self.client, &url).await;
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `http://127.0.0.1:PORT` of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Publishes a module zip to local repository `repo` through the HTTP upload API with the
    /// CI token; panics (with the log tail) unless it answers 201. Returns the body (the go.sum
    /// lines).
    pub async fn publish(&self, repo: &str, zip: Vec<u8>) -> String {
        let url = format!("{}/api/repos/{repo}/upload", self.http_url());
        let response = match self
            .client
            .put(&url)
            .bearer_auth(CI_TOKEN)
            .body(zip)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => self.service.fail(&format!("PUT {url}: {e}")),
        };
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status != 201 {
            self.service
                .fail(&format!("publish to {repo} answered {status}: {body}"));
        }
        body
    }

    /// A scrape of `/metrics`.
    pub async fn metrics(&self) -> Metrics {
        let text = self.metrics_text().await;
        Metrics::parse(&text).unwrap_or_else(|e| self.service.fail(&e))
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        let url = format!("{}/metrics", self.http_url());
        match self.client.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => self.service.fail(&format!("GET {url}: {e}")),
        }
    }

    /// SIGKILL: the registry crashes (no graceful shutdown).
    pub fn kill(&mut self) {
        self.service.kill();
    }
}

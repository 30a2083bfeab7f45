//! [`Stack`]: what every end-to-end test stands on — a directory for configs and logs, a real
//! Redis (events), a real MinIO (storage, with the test's bucket), a test checksum database and
//! the fixture upstream GOPROXY that serves it — and the factories for registry and edge
//! processes and go clients wired to them.
//!
//! Tests run one at a time ([`Stack::start`] holds a process-wide lock): each starts several
//! processes and the go command on a small machine, and timeouts should measure the system,
//! not the neighbours.

use std::sync::Arc;

use strata_central_registry::storage::s3::{S3Config, S3Credentials, S3Store};
use strata_testkit::redis_server::{self, RedisServer};
use strata_testkit::s3_server::{self, ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use strata_testkit::{FixtureModule, FixtureUpstream, TestSumDb};
use tokio::sync::{Mutex, MutexGuard};

use crate::Binaries;
use crate::edge::{EdgeProcess, EdgeSpec, RegistryRef};
use crate::go::GoClient;
use crate::registry::{CI_TOKEN, RedisTarget, RegistryProcess, RegistrySpec, S3Target, SUMDB_NAME};
use crate::tls::TestCert;
use crate::worker::WorkerProcess;

/// Serializes the tests of one test binary.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// The shared environment of one test.
#[derive(Debug)]
pub struct Stack {
    /// The fixture GOPROXY (`gocache`'s upstream and fallback), with the database mounted.
    pub upstream: FixtureUpstream,
    /// The test checksum database.
    pub db: Arc<TestSumDb>,
    /// Storage of every registry of the test.
    pub s3: S3Target,
    /// Events of every registry and edge of the test.
    pub redis: RedisTarget,
    /// A certificate for HTTPS edges.
    pub cert: TestCert,
    binaries: Binaries,
    _s3_server: S3Server,
    _redis_server: RedisServer,
    dir: tempfile::TempDir,
    _serial: MutexGuard<'static, ()>,
}

impl Stack {
    /// Starts Redis, MinIO (creating the test's bucket) and the fixture upstream serving
    /// `modules` (each signed into a new test database). `None` (after saying so) when
    /// `STRATA_SKIP_REDIS=1` or `STRATA_SKIP_S3=1` asks to skip.
    pub async fn start(test: &str, binaries: Binaries, modules: &[FixtureModule]) -> Option<Self> {
        if redis_server::skipped() || s3_server::skipped() {
            eprintln!("{test}: skipped (STRATA_SKIP_REDIS=1 or STRATA_SKIP_S3=1)");
            return None;
        }
        let serial = SERIAL.lock().await;
        let dir = tempfile::Builder::new()
            .prefix(&format!("strata-e2e-{test}-"))
            .tempdir()
            .expect("test directory");
        let (redis_server, s3_server) = tokio::task::spawn_blocking(|| {
            let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
            let s3 = S3Server::start().unwrap_or_else(|e| panic!("{e}"));
            (redis, s3)
        })
        .await
        .expect("start Redis and MinIO");
        let bucket = test.replace('_', "-");
        let s3 = S3Target {
            endpoint: s3_server.endpoint().to_owned(),
            bucket: bucket.chars().take(63).collect(),
            prefix: format!("{test}/"),
        };
        create_bucket(&s3).await;
        let redis = RedisTarget {
            url: redis_server.url(),
            stream: format!("strata:e2e:{test}"),
        };
        let db = Arc::new(TestSumDb::new(SUMDB_NAME));
        let upstream = FixtureUpstream::start(modules, Some(Arc::clone(&db))).await;
        let cert = TestCert::generate(dir.path());
        eprintln!(
            "{test}: logs and configs in {} (kept if the test fails)",
            dir.path().display()
        );
        Some(Self {
            upstream,
            db,
            s3,
            redis,
            cert,
            binaries,
            _s3_server: s3_server,
            _redis_server: redis_server,
            dir,
            _serial: serial,
        })
    }

    /// The directory of configs, logs and caches.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The configuration of a registry named `name` on this stack.
    pub fn registry_spec(&self, name: &str) -> RegistrySpec {
        RegistrySpec {
            name: name.to_owned(),
            s3: self.s3.clone(),
            redis: self.redis.clone(),
            upstream: self.upstream.url(),
            sumdb_key: self.db.verifier_key(),
            max_upload_bytes: 512 << 20,
            env: Vec::new(),
            ledger_key: None,
        }
    }

    /// The registries' storage, as the test's own client of it (to look at or tamper with
    /// what they stored).
    pub async fn store(&self) -> S3Store {
        open_store(&self.s3).await
    }

    /// Starts a registry process named `name`.
    pub async fn start_registry(&self, name: &str) -> RegistryProcess {
        self.start_registry_with(&self.registry_spec(name)).await
    }

    /// Starts a registry process configured by `spec`.
    pub async fn start_registry_with(&self, spec: &RegistrySpec) -> RegistryProcess {
        RegistryProcess::start(&self.binaries.registry, self.dir(), spec).await
    }

    /// An edge configuration in front of `registries` (named after them), with this stack's
    /// Redis events (see [`EdgeSpec::new`]).
    pub fn edge_spec(&self, name: &str, registries: &[&RegistryProcess]) -> EdgeSpec {
        let refs = registries
            .iter()
            .map(|r| RegistryRef {
                name: r.service.name().to_owned(),
                grpc: r.grpc_url(),
                http: r.http_url(),
            })
            .collect();
        EdgeSpec::new(name, refs, Some(self.redis.clone()))
    }

    /// Starts an edge process.
    pub async fn start_edge(&self, spec: &EdgeSpec) -> EdgeProcess {
        EdgeProcess::start(&self.binaries.edge, self.dir(), spec).await
    }

    /// Starts a sync worker process embedding a registry configured like
    /// [`Stack::registry_spec`] (same storage, events and repositories), its jobs in this
    /// stack's Redis; `extra` is appended to its configuration (see [`WorkerProcess::start`]).
    pub async fn start_worker(&self, name: &str, extra: &str) -> WorkerProcess {
        WorkerProcess::start(
            &self.binaries.sync,
            self.dir(),
            name,
            &self.registry_spec(&format!("{name}-registry")),
            &self.redis,
            extra,
        )
        .await
    }

    /// The go command with GOPROXY = `edge` + `prefix`, verifying against the test database
    /// through it, `example.com/private` exempt from verification, and — for an HTTPS edge —
    /// the CI token in a `.netrc`.
    pub fn go_client(&self, edge: &EdgeProcess, prefix: &str, name: &str) -> GoClient {
        let client = GoClient::new(
            &edge.url(prefix),
            &self.db.verifier_key(),
            "example.com/private",
            &self.dir().join(name),
        );
        if edge.url("").starts_with("https://") {
            client.with_credentials(&edge.addr.to_string(), CI_TOKEN, &self.cert.cert)
        } else {
            client
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("test directory kept: {}", self.dir.path().display());
        }
    }
}

/// Creates the bucket with the registry's own S3 backend (the registry expects it to exist).
async fn create_bucket(target: &S3Target) {
    open_store(target)
        .await
        .ensure_bucket()
        .await
        .unwrap_or_else(|e| panic!("creating bucket {}: {e}", target.bucket));
}

/// The registry's own S3 backend on `target`.
async fn open_store(target: &S3Target) -> S3Store {
    let config = S3Config {
        bucket: target.bucket.clone(),
        region: REGION.to_owned(),
        endpoint: Some(target.endpoint.clone()),
        path_style: true,
        prefix: target.prefix.clone(),
        credentials: S3Credentials::Static {
            access_key_id: ACCESS_KEY.to_owned(),
            secret_access_key: SECRET_KEY.to_owned(),
            session_token: None,
        },
        part_size: 8 << 20,
    };
    S3Store::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("S3 client for {}: {e}", target.endpoint))
}

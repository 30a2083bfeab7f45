//! The gRPC link between edge and registry over TLS with client certificates (mTLS): a CA, the
//! registry's certificate and an edge's client certificate are generated here with rcgen; an
//! edge with the CA and its certificate serves GOPROXY requests through a registry that requires
//! client certificates, one without a certificate or trusting another CA does not, and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use strata_central_registry::config::RegistryConfig;
use strata_central_registry::server::{self, Running as RegistryRunning};
use strata_edge_proxy::config::EdgeConfig;
use strata_service::config::ServiceConfig as _;
use strata_testkit::modules::FixtureModule;
use strata_testkit::registry_toml::{ANY_LOOPBACK_PORT, RegistryToml, Repo, Token};
use tokio_util::sync::CancellationToken;

/// The name in the registry's certificate; the edge reaches it at 127.0.0.1 and verifies this
/// name through `domain`.
const REGISTRY_NAME: &str = "registry.strata.test";
const CI_TOKEN: &str = "strata_grpc-tls-ci";

/// PEM files of a test PKI.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        let (ca_pem, ca_params, ca_key) = ca("strata test CA");
        write("ca.pem", ca_pem);
        let issuer = Issuer::new(ca_params, ca_key);
        let server = leaf(&issuer, REGISTRY_NAME, ExtendedKeyUsagePurpose::ServerAuth);
        write("registry.pem", server.0);
        write("registry.key", server.1);
        let client = leaf(&issuer, "edge-1", ExtendedKeyUsagePurpose::ClientAuth);
        write("edge.pem", client.0);
        write("edge.key", client.1);
        let other = ca("some other CA");
        write("other-ca.pem", other.0);
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A CA: its certificate's PEM, its parameters and key (to sign with).
fn ca(name: &str) -> (String, CertificateParams, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), params, key)
}

/// A certificate for `name` signed by `issuer`: (certificate PEM, key PEM).
fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    name: &str,
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// A registry whose gRPC listener requires client certificates signed by the test CA, with
/// a public local repository `go` holding `module`.
async fn start_registry(
    pki: &Pki,
    dir: &Path,
    module: &FixtureModule,
) -> (RegistryRunning, CancellationToken) {
    let grpc_tls = format!(
        "{{ cert = {:?}, key = {:?}, client_ca = {:?} }}",
        pki.path("registry.pem").display().to_string(),
        pki.path("registry.key").display().to_string(),
        pki.path("ca.pem").display().to_string(),
    );
    let text = RegistryToml::new()
        .server("grpc_tls", grpc_tls)
        .repo(Repo::local("go").anonymous_read())
        .token(Token::new("ci", CI_TOKEN).grant("go", &["read", "deploy"]))
        .text(&dir.join("data"), dir, ANY_LOOPBACK_PORT);
    let config = RegistryConfig::from_toml(&text, "grpc-tls-test", &[]).unwrap();
    let shutdown = CancellationToken::new();
    let running = server::start(config, shutdown.clone()).await.unwrap();
    let response = reqwest::Client::new()
        .put(format!("http://{}/api/repos/go/upload", running.http_addr))
        .bearer_auth(CI_TOKEN)
        .body(module.zip())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    (running, shutdown)
}

/// An edge in front of `registry` whose `[[registries]]` entry ends with `tls` (TOML lines).
async fn start_edge(
    registry: &RegistryRunning,
    cache: &Path,
    tls: &str,
) -> (strata_edge_proxy::Running, CancellationToken) {
    let text = format!(
        r#"
        [server]
        listen = "127.0.0.1:0"
        admin_listen = ""
        shutdown_grace_ms = 1000
        [[routes]]
        prefix = "/"
        repository = "go"
        [upstream]
        request_timeout_ms = 5000
        connect_timeout_ms = 2000
        max_attempts = 1
        [cache]
        dir = {cache:?}
        [[registries]]
        name = "central"
        grpc = "https://127.0.0.1:{grpc}"
        http = "http://{http}"
        {tls}
        "#,
        cache = cache.display().to_string(),
        grpc = registry.grpc_addr.port(),
        http = registry.http_addr,
    );
    let config = EdgeConfig::from_toml(&text, "grpc-tls-test", &[]).unwrap();
    let shutdown = CancellationToken::new();
    let running = strata_edge_proxy::start(config, shutdown.clone())
        .await
        .unwrap();
    (running, shutdown)
}

async fn get(edge: &strata_edge_proxy::Running, path: &str) -> (u16, Vec<u8>) {
    let response = reqwest::get(format!("http://{}/{path}", edge.addr))
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_with_a_client_certificate_reaches_a_registry_that_requires_one() {
    let pki = Pki::generate();
    let dir = tempfile::tempdir().unwrap();
    let module = FixtureModule::new("example.com/mtls", "v1.0.0", &[]);
    let (registry, _registry_shutdown) = start_registry(&pki, dir.path(), &module).await;
    let cache = tempfile::tempdir().unwrap();
    let tls = format!(
        "ca = {:?}\ncert = {:?}\nkey = {:?}\ndomain = \"{REGISTRY_NAME}\"",
        pki.path("ca.pem").display().to_string(),
        pki.path("edge.pem").display().to_string(),
        pki.path("edge.key").display().to_string(),
    );
    let (edge, _edge_shutdown) = start_edge(&registry, cache.path(), &tls).await;
    let (status, list) = get(&edge, "example.com/mtls/@v/list").await;
    assert_eq!(
        (status, String::from_utf8_lossy(&list).as_ref()),
        (200, "v1.0.0\n")
    );
    let (status, zip) = get(&edge, "example.com/mtls/@v/v1.0.0.zip").await;
    assert_eq!(status, 200);
    assert_eq!(zip, module.zip());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_client_certificate_or_with_another_ca_the_call_fails_and_says_why() {
    let pki = Pki::generate();
    let dir = tempfile::tempdir().unwrap();
    let module = FixtureModule::new("example.com/mtls", "v1.0.0", &[]);
    let (registry, _registry_shutdown) = start_registry(&pki, dir.path(), &module).await;
    let ca = pki.path("ca.pem").display().to_string();
    let other_ca = pki.path("other-ca.pem").display().to_string();
    let cases = [
        (
            format!("ca = {ca:?}\ndomain = \"{REGISTRY_NAME}\""),
            "no client certificate",
        ),
        (
            format!(
                "ca = {other_ca:?}\ncert = {:?}\nkey = {:?}\ndomain = \"{REGISTRY_NAME}\"",
                pki.path("edge.pem").display().to_string(),
                pki.path("edge.key").display().to_string(),
            ),
            "registry certificate from an untrusted CA",
        ),
    ];
    for (tls, case) in cases {
        let cache = tempfile::tempdir().unwrap();
        let (edge, shutdown) = start_edge(&registry, cache.path(), &tls).await;
        let (status, body) = get(&edge, "example.com/mtls/@v/list").await;
        let body = String::from_utf8_lossy(&body).to_string();
        assert!(status >= 500, "{case}: {status} {body}");
        assert!(
            body.contains("central") && !body.contains("v1.0.0"),
            "{case}: the answer names the registry that failed: {body}"
        );
        println!("{case}: {status} {body}");
        shutdown.cancel();
    }
}

/// Log lines of the whole test binary (the registry's handshake tasks run on any thread).
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        logs
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_refuses_a_client_without_a_certificate_and_logs_why() {
    use strata_edge_proxy::proto::ListRequest;
    use strata_edge_proxy::proto::registry_client::RegistryClient;
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let logs = captured_logs();
    let pki = Pki::generate();
    let dir = tempfile::tempdir().unwrap();
    let module = FixtureModule::new("example.com/mtls", "v1.0.0", &[]);
    let (registry, _registry_shutdown) = start_registry(&pki, dir.path(), &module).await;
    let list = |identity: Option<Identity>| {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(pki.path("ca.pem")).unwrap(),
            ))
            .domain_name(REGISTRY_NAME);
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        let url = format!("https://127.0.0.1:{}", registry.grpc_addr.port());
        let channel = Endpoint::from_shared(url)
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_lazy();
        async move {
            RegistryClient::new(channel)
                .list(ListRequest {
                    repository: "go".into(),
                    module: "example.com/mtls".into(),
                })
                .await
        }
    };
    let identity = Identity::from_pem(
        std::fs::read(pki.path("edge.pem")).unwrap(),
        std::fs::read(pki.path("edge.key")).unwrap(),
    );
    let answer = list(Some(identity)).await.unwrap().into_inner();
    assert_eq!(answer.versions, ["v1.0.0"]);

    let status = list(None).await.unwrap_err();
    assert_ne!(status.code(), tonic::Code::Ok);
    // The client sees little more than a closed connection; the registry's log says why.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
        if text.contains("gRPC TLS handshake failed") && text.contains("no certificates") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status:?}\n{text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

//! End to end: `strata publish` a module whose path has upper-case letters into a private local
//! repository (token from `STRATA_TOKEN`, then from `.netrc`), then the real go command —
//! authenticating through the same `.netrc`, which it only does over https, hence a registry
//! serving TLS with a generated certificate — runs `go get` and `go build` against the registry
//! in a fresh module, and the h1 lines in its go.sum equal the ones the publish API returned.
//! Runs on file-system storage and on a real S3 server (MinIO).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};

use strata_central_registry::config::{RegistryConfig, TlsConfig};
use strata_central_registry::server;
use strata_central_registry::storage::StorageConfig;
use strata_central_registry::storage::fs::FsConfig;
use strata_central_registry::storage::s3::{S3Config, S3Credentials, S3Store};
use strata_service::config::ServiceConfig as _;
use strata_testkit::s3_server::{self, ACCESS_KEY, REGION, S3Server, SECRET_KEY};
use tokio_util::sync::CancellationToken;

const MODULE: &str = "example.com/Acme/Widgets";
const TOKEN: &str = "strata_e2e-token";

/// A self-signed certificate for 127.0.0.1, written as PEM files under `dir`.
fn certificate(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let generated = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    fs::write(&cert, generated.cert.pem()).unwrap();
    fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

fn registry_config(storage: StorageConfig, cert: &Path, key: &Path) -> RegistryConfig {
    let hash = strata_central_registry::auth::hash_token(TOKEN);
    let text = format!(
        r#"
        [server]
        http = "127.0.0.1:0"
        grpc = "127.0.0.1:0"
        [[repositories]]
        name = "private"
        kind = "local"
        include = ["example.com/Acme"]
        [[tokens]]
        name = "ci"
        sha256 = "{hash}"
        permissions = {{ private = ["read", "deploy"] }}
        "#
    );
    let mut config = RegistryConfig::from_toml(&text, "e2e", &[]).unwrap();
    config.storage = storage;
    config.server.tls = Some(TlsConfig {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
    });
    config
}

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

fn fixture_module(root: &Path) {
    write(root, "go.mod", &format!("module {MODULE}\n\ngo 1.21\n"));
    write(
        root,
        "widgets.go",
        "package widgets\n\n// Count is how many widgets there are.\nfunc Count() int { return 7 }\n",
    );
    write(
        root,
        "internal/gear/gear.go",
        "package gear\n\nconst Teeth = 12\n",
    );
    write(root, ".git/config", "[core]\n");
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The whole scenario against a registry listening on `addr`.
fn publish_then_go_build(addr: SocketAddr, work: &Path) {
    let src = work.join("widgets");
    fixture_module(&src);
    let registry = format!("https://{addr}");
    let ca = work.join("cert.pem");

    // Publish with the token from the environment.
    let out = run(Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "publish",
            src.to_str().unwrap(),
            "--repo",
            "private",
            "--version",
            "v1.0.0",
            "--registry",
            &registry,
        ])
        .env("STRATA_TOKEN", TOKEN)
        .env("SSL_CERT_FILE", &ca)
        .env("NETRC", work.join("no-netrc")));
    let published = String::from_utf8(out.stdout).unwrap();
    assert!(
        published.starts_with(&format!("{MODULE} v1.0.0 h1:")),
        "{published}"
    );

    // A second version, with credentials from .netrc this time.
    let netrc = work.join("netrc");
    // The go command looks credentials up by host and port.
    fs::write(
        &netrc,
        format!("machine {addr} login ci password {TOKEN}\n"),
    )
    .unwrap();
    write(
        &src,
        "widgets.go",
        "package widgets\n\n// Count is how many widgets there are.\nfunc Count() int { return 8 }\n",
    );
    run(Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "publish",
            src.to_str().unwrap(),
            "--repo",
            "private",
            "--version",
            "v1.1.0",
            "--registry",
            &registry,
        ])
        .env_remove("STRATA_TOKEN")
        .env("SSL_CERT_FILE", &ca)
        .env("NETRC", &netrc));

    // Re-publishing a version is refused, and the CLI says why.
    let again = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "publish",
            src.to_str().unwrap(),
            "--repo",
            "private",
            "--version",
            "v1.0.0",
            "--registry",
            &registry,
        ])
        .env("STRATA_TOKEN", TOKEN)
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("409"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    // A fresh module that depends on the published one, built by the real go command.
    let app = work.join("app");
    write(&app, "go.mod", "module example.com/app\n\ngo 1.21\n");
    write(
        &app,
        "main.go",
        &format!(
            "package main\n\nimport (\n\t\"fmt\"\n\n\t\"{MODULE}\"\n)\n\nfunc main() {{ fmt.Println(widgets.Count()) }}\n"
        ),
    );
    let go = |args: &[&str]| {
        run(Command::new("go")
            .args(args)
            .current_dir(&app)
            .env("GOPROXY", format!("{registry}/go/private"))
            .env("SSL_CERT_FILE", &ca)
            .env("GONOSUMDB", "example.com")
            .env("GOFLAGS", "-mod=mod")
            .env("GOMODCACHE", work.join("gomodcache"))
            .env("NETRC", &netrc))
    };
    go(&["get", &format!("{MODULE}@v1.0.0")]);
    go(&["build", "-o", work.join("app-bin").to_str().unwrap(), "."]);
    let printed = run(&mut Command::new(work.join("app-bin")));
    assert_eq!(String::from_utf8_lossy(&printed.stdout).trim(), "7");

    let go_sum = fs::read_to_string(app.join("go.sum")).unwrap();
    for line in published.lines() {
        assert!(
            go_sum.lines().any(|l| l == line),
            "go.sum lacks {line:?}:\n{go_sum}"
        );
    }
    // `go list -m -versions` sees both versions.
    let versions = go(&["list", "-m", "-versions", MODULE]);
    assert_eq!(
        String::from_utf8_lossy(&versions.stdout).trim(),
        format!("{MODULE} v1.0.0 v1.1.0")
    );
    let _ = Command::new("chmod")
        .args(["-R", "u+w"])
        .arg(work.join("gomodcache"))
        .status();
}

async fn scenario(storage: StorageConfig, work: &Path) {
    let shutdown = CancellationToken::new();
    let (cert, key) = certificate(work);
    let running = server::start(registry_config(storage, &cert, &key), shutdown.clone())
        .await
        .unwrap();
    let addr = running.http_addr;
    let work = work.to_path_buf();
    tokio::task::spawn_blocking(move || publish_then_go_build(addr, &work))
        .await
        .unwrap();
    shutdown.cancel();
    let _ = running.done.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_go_build_on_fs() {
    let work = tempfile::tempdir().unwrap();
    let storage = StorageConfig::Fs(FsConfig {
        root: work.path().join("data"),
    });
    scenario(storage, work.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_and_go_build_on_s3() {
    if s3_server::skipped() {
        eprintln!("skipped: STRATA_SKIP_S3=1");
        return;
    }
    let s3 = S3Server::start().unwrap_or_else(|e| panic!("{e}"));
    let config = S3Config {
        bucket: "e2e".into(),
        region: REGION.into(),
        endpoint: Some(s3.endpoint().into()),
        path_style: true,
        prefix: "strata/".into(),
        credentials: S3Credentials::Static {
            access_key_id: ACCESS_KEY.into(),
            secret_access_key: SECRET_KEY.into(),
            session_token: None,
        },
        part_size: 8 * 1024 * 1024,
    };
    let store = S3Store::connect(&config).await.unwrap();
    store.ensure_bucket().await.unwrap();
    let work = tempfile::tempdir().unwrap();
    scenario(StorageConfig::S3(config), work.path()).await;
}

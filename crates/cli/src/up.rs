//! `strata up`: every tier in one process with embedded defaults — the central registry
//! (filesystem storage under `--data`, in-process events), an edge in front of it, talking to
//! it over real gRPC on loopback exactly as the separate binaries do, and the sync worker
//! (in-process job queue, the same registry) with its warm-up API.
//!
//! Repositories: `private` (local, the publish target), `gocache` (remote of proxy.golang.org,
//! verified against sum.golang.org) and `go` (virtual over both, what `/` of the edge serves).
//!
//! The registry's own checksum database (its ledger) is on unless `--no-sumdb`: named by
//! `--sumdb-name`, signed with a key generated at the first start and kept in
//! `<data>/sumdb.key` (mode 0600). Every published and every fetched version is recorded in
//! it, so clients set `GOSUMDB` to its verifier key and need no `GONOSUMDB`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use sha2::{Digest, Sha256};
use strata_central_registry::config::RegistryConfig;
use strata_edge_proxy::config::EdgeConfig;
use strata_service::config::ServiceConfig as _;
use strata_sync_worker::config::WorkerConfig;
use strata_sync_worker::registry::EmbeddedRegistry;
use tokio_util::sync::CancellationToken;

use crate::{Failure, shown};

/// The public key of sum.golang.org (the go command's built-in default).
const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// Arguments of `strata up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where everything is kept: registry storage, the edge's disk cache, upload spool.
    #[arg(long, default_value = "./data")]
    pub data: PathBuf,
    /// The edge's listen address: the GOPROXY URL clients use.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,
    /// The registry's HTTP address (publish API, /go/{repo}/); a free loopback port if not given.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub registry_http: SocketAddr,
    /// The registry's gRPC address (what the edge calls); a free loopback port if not given.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub registry_grpc: SocketAddr,
    /// The sync worker's HTTP address (warm-up API, health, metrics); a free loopback port if
    /// not given.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub worker_http: SocketAddr,
    /// The upstream GOPROXY of the `gocache` remote repository.
    #[arg(long, default_value = "https://proxy.golang.org")]
    pub upstream: String,
    /// The checksum database key every fetched module is verified against.
    #[arg(long, default_value = SUM_GOLANG_ORG_KEY)]
    pub checksum_db_key: String,
    /// Where that database is read. proxy.golang.org proxies sum.golang.org (the go command uses
    /// the same path); answers are verified against the key, so the proxy cannot forge them.
    #[arg(long, default_value = "https://proxy.golang.org/sumdb/sum.golang.org")]
    pub checksum_db_url: String,
    /// The name of strata's own checksum database (the GOSUMDB clients set). Its key is
    /// generated at the first start and kept in <data>/sumdb.key; a key of another name there
    /// is refused (remove the file to start a new log under a new name).
    #[arg(long, default_value = DEFAULT_SUMDB_NAME)]
    pub sumdb_name: String,
    /// Run without strata's checksum database (clients then need GONOSUMDB for private modules).
    #[arg(long)]
    pub no_sumdb: bool,
}

/// The default name of `strata up`'s checksum database.
const DEFAULT_SUMDB_NAME: &str = "sum.strata.local";

/// The file under `--data` holding the checksum database's signer key.
const SUMDB_KEY_FILE: &str = "sumdb.key";

/// The addresses and token `strata up` prints.
struct Banner<'a> {
    data: &'a Path,
    edge: SocketAddr,
    registry_http: SocketAddr,
    registry_grpc: SocketAddr,
    worker: SocketAddr,
    token: &'a AdminToken,
    /// The verifier key of the registry's checksum database, when it is on.
    sumdb: Option<String>,
}

/// The admin token: given, freshly generated (shown once), or generated at an earlier start.
enum AdminToken {
    FromEnv,
    Generated(String),
    Stored(PathBuf),
}

/// Runs `strata up` until SIGINT/SIGTERM.
pub fn run(args: &UpArgs) -> Result<(), Failure> {
    std::fs::create_dir_all(&args.data)
        .map_err(|e| Failure::msg(format!("--data {}: {e}", shown(&args.data))))?;
    let data = std::fs::canonicalize(&args.data)
        .map_err(|e| Failure::msg(format!("--data {}: {e}", shown(&args.data))))?;
    for dir in ["registry", "spool", "edge-cache"] {
        std::fs::create_dir_all(data.join(dir))
            .map_err(|e| Failure::msg(format!("{}: {e}", shown(&data.join(dir)))))?;
    }
    let (token, token_sha256) = admin_token(&data)?;
    let sumdb_key = if args.no_sumdb {
        None
    } else {
        Some(sumdb_key_file(&data, &args.sumdb_name)?)
    };
    let registry_config = RegistryConfig::from_toml(
        &registry_toml(args, &data, &token_sha256, sumdb_key.as_deref()),
        "strata up defaults",
        &[],
    )
    .map_err(|e| Failure::msg(format!("registry defaults: {e}")))?;

    // All tiers share one process, so one set of spans: `service.name` is `strata` unless
    // OTEL_SERVICE_NAME says otherwise (the OTEL_* variables of the services apply).
    let traces = strata_service::trace::TraceSettings::from_env(None, "strata")
        .map_err(|e| Failure::msg(format!("tracing: {e}")))?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::msg(format!("starting the runtime: {e}")))?;
    let _traces = runtime
        .block_on(async { strata_service::telemetry::init_with_traces(traces.as_ref()) })
        .map_err(|e| Failure::msg(format!("tracing: {e}")))?;
    let outcome = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        // Installed before anything starts: a SIGTERM after the banner drains every tier.
        let signal = strata_service::telemetry::shutdown_signal();
        let registry = strata_central_registry::server::start(registry_config, shutdown.clone())
            .await
            .map_err(|e| Failure::msg(format!("starting the registry: {e}")))?;
        let edge_config = EdgeConfig::from_toml(
            &edge_toml(args.listen, &data, registry.grpc_addr, registry.http_addr),
            "strata up defaults",
            &[],
        )
        .map_err(|e| Failure::msg(format!("edge defaults: {e}")))?;
        let edge = match strata_edge_proxy::start_with_events(
            edge_config,
            Some(registry.events.clone()),
            shutdown.clone(),
        )
        .await
        {
            Ok(edge) => edge,
            Err(e) => {
                shutdown.cancel();
                let _ = registry.done.await;
                return Err(Failure::msg(format!("starting the edge: {e}")));
            }
        };
        let worker_config =
            WorkerConfig::from_toml(&worker_toml(args.worker_http), "strata up defaults", &[])
                .map_err(|e| Failure::msg(format!("worker defaults: {e}")))?;
        let worker = match strata_sync_worker::Builder::new(worker_config)
            .registry(EmbeddedRegistry::from_registry(registry.registry.clone()))
            .start(shutdown.clone())
            .await
        {
            Ok(worker) => worker,
            Err(e) => {
                shutdown.cancel();
                let _ = registry.done.await;
                return Err(Failure::msg(format!("starting the sync worker: {e}")));
            }
        };
        print_banner(&Banner {
            data: &data,
            edge: edge.addr,
            registry_http: registry.http_addr,
            registry_grpc: registry.grpc_addr,
            worker: worker.http_addr,
            token: &token,
            sumdb: registry.registry.ledger().map(|l| l.verifier_key()),
        });
        // Any tier stopping on its own (a failed listener) ends the process, like a signal.
        let mut registry_done = registry.done;
        let mut edge_done = edge.done;
        let mut worker_done = worker.done;
        let mut failure = None;
        tokio::select! {
            () = signal => {}
            result = &mut registry_done => {
                failure = Some(format!("the registry stopped: {}", describe_exit(result)));
            }
            result = &mut edge_done => {
                failure = Some(format!("the edge stopped: {}", describe_joined(result)));
            }
            result = &mut worker_done => {
                failure = Some(format!("the sync worker stopped: {}", describe_worker(result)));
            }
        }
        shutdown.cancel();
        eprintln!("strata: shutting down");
        if !worker_done.is_finished() {
            let _ = worker_done.await;
        }
        if !registry_done.is_finished() {
            let _ = registry_done.await;
        }
        if !edge_done.is_finished() {
            let _ = edge_done.await;
        }
        match failure {
            Some(reason) => Err(Failure::msg(reason)),
            None => Ok(()),
        }
    });
    strata_service::telemetry::flush();
    outcome
}

fn describe_exit(result: Result<std::io::Result<()>, tokio::task::JoinError>) -> String {
    match result {
        Ok(Ok(())) => "without an error".into(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    }
}

fn describe_worker(
    result: Result<
        Result<strata_sync_worker::WorkerReport, strata_sync_worker::RunError>,
        tokio::task::JoinError,
    >,
) -> String {
    match result {
        Ok(Ok(_)) => "without an error".into(),
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    }
}

fn describe_joined(result: Result<(), tokio::task::JoinError>) -> String {
    match result {
        Ok(()) => "without an error".into(),
        Err(e) => e.to_string(),
    }
}

/// `STRATA_ADMIN_TOKEN`, else the hash stored at an earlier start, else a new token whose hash
/// is stored (mode 0600) and which is shown once. Returns the token's SHA-256 (hex).
fn admin_token(data: &Path) -> Result<(AdminToken, String), Failure> {
    if let Ok(token) = std::env::var("STRATA_ADMIN_TOKEN") {
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(Failure::msg("STRATA_ADMIN_TOKEN is set but empty"));
        }
        return Ok((AdminToken::FromEnv, hex::encode(Sha256::digest(token))));
    }
    let path = data.join("admin-token.sha256");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let hash = text.trim().to_string();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Failure::msg(format!(
                    "{}: not a SHA-256 in hex (delete it to get a new admin token)",
                    shown(&path)
                )));
            }
            Ok((AdminToken::Stored(path), hash.to_ascii_lowercase()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (token, hash) = crate::token::generate()?;
            write_private(&path, format!("{hash}\n").as_bytes())
                .map_err(|e| Failure::msg(format!("{}: {e}", shown(&path))))?;
            Ok((AdminToken::Generated(token), hash))
        }
        Err(e) => Err(Failure::msg(format!("{}: {e}", shown(&path)))),
    }
}

/// The checksum database's key file under `data`, generated for `name` (mode 0600) if there is
/// none. The registry's configuration loader then reads it (and refuses a key of another name
/// or a file others may read).
fn sumdb_key_file(data: &Path, name: &str) -> Result<PathBuf, Failure> {
    let path = data.join(SUMDB_KEY_FILE);
    if !path.exists() {
        let (signer, _) = strata_central_registry::ledger::generate_key(name)
            .map_err(|e| Failure::msg(format!("--sumdb-name: {e}")))?;
        write_private(&path, format!("{signer}\n").as_bytes())
            .map_err(|e| Failure::msg(format!("{}: {e}", shown(&path))))?;
    }
    Ok(path)
}

/// Writes a file readable by its owner only, atomically.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// The embedded registry configuration.
fn registry_toml(
    args: &UpArgs,
    data: &Path,
    token_sha256: &str,
    sumdb_key: Option<&Path>,
) -> String {
    let q = |s: &str| toml_string(s);
    let ledger = match sumdb_key {
        Some(path) => format!(
            "\n[ledger]\nname = {}\nkey_file = {}\n",
            q(&args.sumdb_name),
            q(&path.display().to_string())
        ),
        None => String::new(),
    };
    let text = format!(
        r#"storage = {{ kind = "fs", root = {root} }}
events = {{ kind = "memory" }}

[server]
http = "{http}"
grpc = "{grpc}"
spool_dir = {spool}

[[repositories]]
name = "private"
kind = "local"
anonymous_read = true

[[repositories]]
name = "gocache"
kind = "remote"
anonymous_read = true
upstream = {{ url = {upstream} }}
checksum_db = {{ key = {key}, url = {sumdb} }}

[[repositories]]
name = "go"
kind = "virtual"
anonymous_read = true
members = [{{ repository = "private" }}, {{ repository = "gocache" }}]

[[tokens]]
name = "admin"
sha256 = "{token_sha256}"
permissions = {{ "*" = ["read", "deploy", "delete", "admin"] }}
"#,
        root = q(&data.join("registry").display().to_string()),
        http = args.registry_http,
        grpc = args.registry_grpc,
        spool = q(&data.join("spool").display().to_string()),
        upstream = q(&args.upstream),
        key = q(&args.checksum_db_key),
        sumdb = q(&args.checksum_db_url),
    );
    text + &ledger
}

/// The embedded edge configuration: `/` → `go`, `/private/` → `private`.
fn edge_toml(listen: SocketAddr, data: &Path, grpc: SocketAddr, http: SocketAddr) -> String {
    format!(
        r#"events = {{ kind = "memory" }}

[server]
listen = "{listen}"
# All in one process on a laptop: the ops endpoints stay on the GOPROXY port.
admin_listen = ""

[[routes]]
prefix = "/"
repository = "go"

[[routes]]
prefix = "/private/"
repository = "private"

[[registries]]
name = "local"
grpc = "http://{grpc}"
http = "http://{http}"

[cache]
dir = {dir}
"#,
        dir = toml_string(&data.join("edge-cache").display().to_string()),
    )
}

/// The embedded sync worker configuration: the in-process queue, the registry handed over.
fn worker_toml(http: SocketAddr) -> String {
    format!(
        r#"[jobs]
kind = "memory"

[server]
http = "{http}"
"#
    )
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn print_banner(b: &Banner<'_>) {
    let proxy = format!("http://{}/", b.edge);
    let registry = format!("http://{}", b.registry_http);
    println!("strata is up: registry, edge (and their gRPC link) in one process");
    println!("  data:        {}", b.data.display());
    println!("  GOPROXY={proxy}");
    println!("  publish URL: {registry}/api/repos/private/upload");
    println!(
        "  registry:    {registry} (HTTP), {} (gRPC)",
        b.registry_grpc
    );
    println!(
        "  sync worker: http://{}/api/warm (warm-up API; /metrics, /healthz)",
        b.worker
    );
    match b.token {
        AdminToken::FromEnv => println!("  admin token: from STRATA_ADMIN_TOKEN"),
        AdminToken::Generated(token) => {
            println!("  admin token: {token}");
            println!(
                "               (shown once; only its SHA-256 is kept in {})",
                b.data.join("admin-token.sha256").display()
            );
        }
        AdminToken::Stored(path) => println!(
            "  admin token: the one shown at the first start (hash in {}; delete it for a new \
             one, or set STRATA_ADMIN_TOKEN)",
            path.display()
        ),
    }
    if let Some(key) = &b.sumdb {
        println!("  GOSUMDB=\"{key}\"");
    }
    println!();
    println!("  export GOPROXY={proxy}");
    println!(
        "  STRATA_TOKEN=<admin token> strata publish --registry {registry} --repo private \
         --version v0.1.0 ./your/module"
    );
    match &b.sumdb {
        Some(key) => {
            println!("  export GOSUMDB=\"{key}\"");
            println!(
                "  Every module, public and private, is verified against strata's checksum \
                 database (the go command reads it at {proxy}sumdb/{name}/): leave GONOSUMDB \
                 empty.",
                name = key.split('+').next().unwrap_or_default()
            );
        }
        None => println!(
            "  Privately published modules are not in sum.golang.org: set GONOSUMDB=<their \
             path prefix> for them."
        ),
    }
    if !b.edge.ip().is_loopback() {
        println!(
            "  Note: every repository allows anonymous reads and the edge listens on {}.",
            b.edge
        );
    }
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn args() -> UpArgs {
        UpArgs {
            data: PathBuf::from("./data"),
            listen: "127.0.0.1:8081".parse().unwrap(),
            registry_http: "127.0.0.1:0".parse().unwrap(),
            registry_grpc: "127.0.0.1:0".parse().unwrap(),
            worker_http: "127.0.0.1:0".parse().unwrap(),
            upstream: "https://proxy.golang.org".into(),
            checksum_db_key: SUM_GOLANG_ORG_KEY.into(),
            checksum_db_url: "https://proxy.golang.org/sumdb/sum.golang.org".into(),
            sumdb_name: DEFAULT_SUMDB_NAME.into(),
            no_sumdb: false,
        }
    }

    #[test]
    fn the_embedded_configurations_validate() {
        let dir = Path::new("/tmp/with \"quote\" and \\ backslash");
        let registry = RegistryConfig::from_toml(
            &registry_toml(&args(), dir, &"a".repeat(64), None),
            "t",
            &[],
        )
        .unwrap();
        assert_eq!(registry.repositories.len(), 3);
        assert!(registry.ledger.is_none());
        let data = tempfile::tempdir().unwrap();
        let key = sumdb_key_file(data.path(), DEFAULT_SUMDB_NAME).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = registry_toml(&args(), data.path(), &"a".repeat(64), Some(&key));
        let registry = RegistryConfig::from_toml(&text, "t", &[]).unwrap();
        let ledger = registry.ledger.unwrap();
        assert_eq!(ledger.name, DEFAULT_SUMDB_NAME);
        let signer = ledger.signer_key().unwrap().to_owned();
        // Kept: a second start signs with the same key.
        sumdb_key_file(data.path(), DEFAULT_SUMDB_NAME).unwrap();
        let again = RegistryConfig::from_toml(&text, "t", &[]).unwrap();
        assert_eq!(again.ledger.unwrap().signer_key(), Some(signer.as_str()));
        // Another name over the same data is refused, not silently re-keyed.
        let renamed = UpArgs {
            sumdb_name: "sum.other.local".into(),
            ..args()
        };
        let e = RegistryConfig::from_toml(
            &registry_toml(&renamed, data.path(), &"a".repeat(64), Some(&key)),
            "t",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sum.other.local"), "{e}");
        WorkerConfig::from_toml(&worker_toml("127.0.0.1:0".parse().unwrap()), "t", &[]).unwrap();
        let edge = EdgeConfig::from_toml(
            &edge_toml(
                "127.0.0.1:8081".parse().unwrap(),
                dir,
                "127.0.0.1:9".parse().unwrap(),
                "127.0.0.1:8".parse().unwrap(),
            ),
            "t",
            &[],
        )
        .unwrap();
        assert_eq!(edge.cache.dir, dir.join("edge-cache"));
        assert_eq!(
            edge.route("/example.com/m/@v/list"),
            Some(("go", "example.com/m/@v/list"))
        );
        assert_eq!(
            edge.route("/private/example.com/m/@v/list"),
            Some(("private", "example.com/m/@v/list"))
        );
    }

    #[test]
    fn a_generated_token_is_stored_hashed_and_not_shown_again() {
        // SAFETY of the environment: this test does not set STRATA_ADMIN_TOKEN; skip if the
        // developer's shell does.
        if std::env::var_os("STRATA_ADMIN_TOKEN").is_some() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let (first, hash) = admin_token(dir.path()).unwrap();
        let AdminToken::Generated(token) = first else {
            panic!("a first start generates a token");
        };
        assert_eq!(hash, hex::encode(Sha256::digest(token.as_bytes())));
        let stored = std::fs::read_to_string(dir.path().join("admin-token.sha256")).unwrap();
        assert_eq!(stored.trim(), hash);
        assert!(!stored.contains(&token));
        let (second, again) = admin_token(dir.path()).unwrap();
        assert!(matches!(second, AdminToken::Stored(_)));
        assert_eq!(again, hash);

        std::fs::write(dir.path().join("admin-token.sha256"), "garbage\n").unwrap();
        let Err(Failure(lines)) = admin_token(dir.path()) else {
            panic!("a damaged token file is an error");
        };
        assert!(lines[0].contains("not a SHA-256"), "{lines:?}");
    }
}

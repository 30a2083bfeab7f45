//! The real go command as the client: [`GoClient`] holds what every run shares (GOPROXY, the
//! test database's key, credentials, the trusted certificate); a [`GoSession`] is one fresh
//! GOMODCACHE/GOPATH/GOCACHE (a developer machine or CI job with an empty cache), in which
//! several commands may run (`go mod download`, then `go mod verify` of what it downloaded).
//!
//! The environment is cleared and rebuilt: `GOTOOLCHAIN=local` (never download a toolchain),
//! `GOFLAGS=-mod=mod`, `GOSUMDB=<test key>` without a URL, so the database is reached through
//! `GOPROXY` (`<proxy>/sumdb/<name>/…`, the edge's forward), and `GONOSUMDB` for private modules.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Longest a single go command may run before it counts as hung.
const HANG_GUARD: Duration = Duration::from_secs(180);

/// Settings shared by every run.
#[derive(Debug)]
pub struct GoClient {
    proxy: String,
    sumdb_key: String,
    nosumdb: String,
    netrc: Option<PathBuf>,
    ca: Option<PathBuf>,
    root: PathBuf,
    sessions: AtomicUsize,
}

impl GoClient {
    /// A client of `proxy` (GOPROXY), verifying against the database with verifier key
    /// `sumdb_key` through the proxy, skipping verification for `nosumdb` (GONOSUMDB patterns);
    /// sessions live under `root`.
    pub fn new(proxy: &str, sumdb_key: &str, nosumdb: &str, root: &Path) -> Self {
        std::fs::create_dir_all(root).expect("go client root");
        Self {
            proxy: proxy.to_owned(),
            sumdb_key: sumdb_key.to_owned(),
            nosumdb: nosumdb.to_owned(),
            netrc: None,
            ca: None,
            root: root.to_owned(),
            sessions: AtomicUsize::new(0),
        }
    }

    /// Sends `token` as the password for `host` (`127.0.0.1:PORT`) from a `.netrc` — which the
    /// go command does only over https — and trusts `ca` (`SSL_CERT_FILE`).
    pub fn with_credentials(mut self, host: &str, token: &str, ca: &Path) -> Self {
        let netrc = self.root.join("netrc");
        // Older go commands match the host name, newer ones may include the port: list both.
        let hostname = host.rsplit_once(':').map_or(host, |(h, _)| h);
        let text = format!(
            "machine {host} login e2e password {token}\nmachine {hostname} login e2e password {token}\n"
        );
        std::fs::write(&netrc, text).expect("write netrc");
        self.netrc = Some(netrc);
        self.ca = Some(ca.to_owned());
        self
    }

    /// A fresh module cache, GOPATH and build cache.
    pub fn session(&self) -> GoSession<'_> {
        let n = self.sessions.fetch_add(1, Ordering::Relaxed);
        let home = self.root.join(format!("session-{n}"));
        std::fs::create_dir_all(&home).expect("session dir");
        GoSession { client: self, home }
    }
}

/// One fresh set of caches; made removable again when dropped (the module cache is read-only
/// by design).
#[derive(Debug)]
pub struct GoSession<'a> {
    client: &'a GoClient,
    home: PathBuf,
}

impl GoSession<'_> {
    /// The module cache.
    pub fn modcache(&self) -> PathBuf {
        self.home.join("modcache")
    }

    /// Runs `go args…` in `dir`.
    pub async fn run(&self, dir: &Path, args: &[&str]) -> GoOutput {
        let c = self.client;
        let mut command = tokio::process::Command::new("go");
        command
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GOPATH", self.home.join("gopath"))
            .env("GOMODCACHE", self.modcache())
            .env("GOCACHE", self.home.join("gocache"))
            .env("GOENV", "off")
            .env("GOTOOLCHAIN", "local")
            .env("GO111MODULE", "on")
            .env("GOFLAGS", "-mod=mod")
            .env("GOPROXY", &c.proxy)
            .env("GOSUMDB", &c.sumdb_key)
            .env("GONOSUMDB", &c.nosumdb)
            .env("GOPRIVATE", "")
            .env("GONOPROXY", "")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        match (&c.netrc, &c.ca) {
            (Some(netrc), Some(ca)) => {
                command.env("NETRC", netrc).env("SSL_CERT_FILE", ca);
            }
            _ => {
                command.env("NETRC", self.home.join("no-netrc"));
            }
        }
        let started = Instant::now();
        let output = match tokio::time::timeout(HANG_GUARD, command.output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => {
                panic!("running the go command (installed by scripts/ensure-deps.sh?): {e}")
            }
            Err(_) => panic!("go {} hung for {HANG_GUARD:?}", args.join(" ")),
        };
        GoOutput {
            command: format!("go {}", args.join(" ")),
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }
}

impl Drop for GoSession<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&self.home)
            .status();
    }
}

/// What a go command did.
#[derive(Debug, Clone)]
pub struct GoOutput {
    /// `go …`.
    pub command: String,
    /// Exit status 0.
    pub success: bool,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
    /// Wall time.
    pub elapsed: Duration,
}

impl GoOutput {
    /// Panics with the output unless it succeeded.
    pub fn assert_ok(&self) -> &Self {
        assert!(
            self.success,
            "{} failed after {:?}:\n{}\n{}",
            self.command, self.elapsed, self.stderr, self.stdout
        );
        self
    }

    /// Stdout and stderr together.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Writes a main module `module` (go 1.21) requiring every `(path, version)` in `requires`,
/// with `go_sum` as its go.sum (may be empty), into `dir`.
pub fn write_main_module(dir: &Path, module: &str, requires: &[(&str, &str)], go_sum: &str) {
    std::fs::create_dir_all(dir).expect("main module dir");
    let mut go_mod = format!("module {module}\n\ngo 1.21\n");
    if !requires.is_empty() {
        go_mod.push_str("\nrequire (\n");
        for (p, v) in requires {
            go_mod.push_str(&format!("\t{p} {v}\n"));
        }
        go_mod.push_str(")\n");
    }
    std::fs::write(dir.join("go.mod"), go_mod).expect("write go.mod");
    std::fs::write(dir.join("go.sum"), go_sum).expect("write go.sum");
}

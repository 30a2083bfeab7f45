//! A real S3-protocol server for the tests: MinIO by default (`STRATA_S3_SERVER=s3s-fs` picks
//! s3s-fs), started on a kernel-chosen port (`127.0.0.1:0`) with a temp data directory, ready
//! once its health endpoint answers, killed on drop.
//!
//! The binary comes from `PATH`, `$GOBIN`, `$GOPATH/bin`, `~/go/bin` or `~/.cargo/bin`
//! (`make deps` / scripts/ensure-deps.sh installs MinIO); when it is missing,
//! [`S3Server::start`] fails with a message saying so. `STRATA_SKIP_S3=1` lets tests skip
//! themselves ([`skipped`]). The server knows nothing of strata: callers build their backend
//! configuration from [`S3Server::endpoint`], [`ACCESS_KEY`], [`SECRET_KEY`] and [`REGION`].

use std::{
    env,
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The access key id the server is started with.
pub const ACCESS_KEY: &str = "strata-test";
/// The secret access key the server is started with.
pub const SECRET_KEY: &str = "strata-test-secret";
/// The region to sign requests for (the servers accept any; this is what clients should say).
pub const REGION: &str = "us-east-1";
const STARTUP_DEADLINE: Duration = Duration::from_secs(60);

/// Which server binary to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// MinIO (atomic conditional writes; the default).
    MinIo,
    /// s3s-fs.
    S3sFs,
}

impl Flavor {
    /// From `STRATA_S3_SERVER` (`minio`, the default, or `s3s-fs`).
    pub fn from_env() -> Self {
        match env::var("STRATA_S3_SERVER").as_deref() {
            Ok("s3s-fs") => Self::S3sFs,
            _ => Self::MinIo,
        }
    }

    fn binary(self) -> &'static str {
        match self {
            Self::MinIo => "minio",
            Self::S3sFs => "s3s-fs",
        }
    }
}

/// A running server; killed when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    endpoint: String,
    flavor: Flavor,
    _dir: tempfile::TempDir,
}

/// Whether the S3 tests were switched off with `STRATA_SKIP_S3=1`.
pub fn skipped() -> bool {
    env::var("STRATA_SKIP_S3").is_ok_and(|v| v == "1")
}

impl S3Server {
    /// Starts the server, or fails with a message saying how to install it.
    pub fn start() -> Result<Self, String> {
        let flavor = Flavor::from_env();
        let binary = find_binary(flavor.binary()).ok_or_else(|| {
            format!(
                "the S3-protocol server `{}` was not found on PATH, in $GOBIN, ~/go/bin or \
                 ~/.cargo/bin: run `make deps` (scripts/ensure-deps.sh) to install it, or set \
                 STRATA_SKIP_S3=1 to skip the S3 tests",
                flavor.binary()
            )
        })?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let mut command = Command::new(&binary);
        match flavor {
            Flavor::MinIo => {
                command
                    .arg("server")
                    .arg(dir.path().join("data"))
                    .args(["--address", "127.0.0.1:0", "--certs-dir"])
                    .arg(dir.path().join("certs"))
                    .env("MINIO_ROOT_USER", ACCESS_KEY)
                    .env("MINIO_ROOT_PASSWORD", SECRET_KEY)
                    .env("MINIO_BROWSER", "off")
                    .env("MINIO_UPDATE", "off");
            }
            Flavor::S3sFs => {
                let data = dir.path().join("data");
                std::fs::create_dir_all(&data).map_err(|e| format!("data dir: {e}"))?;
                command
                    .args(["--host", "127.0.0.1", "--port", "0"])
                    .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                    .arg(data)
                    .env("RUST_LOG", "info");
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let mut server = Self {
            child,
            endpoint: String::new(),
            flavor,
            _dir: dir,
        };
        server.endpoint = server.wait_ready(&log_path)?;
        Ok(server)
    }

    /// The server's URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Which server this is.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Waits for the listening address to appear in the log, then for the server to answer HTTP.
    fn wait_ready(&mut self, log_path: &Path) -> Result<String, String> {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        let mut endpoint = None;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "S3 server exited with {status}:\n{}",
                    read_log(log_path)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "S3 server not ready after 60 s:\n{}",
                    read_log(log_path)
                ));
            }
            if endpoint.is_none() {
                endpoint = listening_address(&read_log(log_path));
            }
            if let Some(addr) = &endpoint
                && self.answers(addr)
            {
                return Ok(format!("http://{addr}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the server answers a health probe: MinIO's readiness endpoint must say 200;
    /// s3s-fs has none, so any HTTP response will do.
    fn answers(&self, addr: &str) -> bool {
        let path = match self.flavor {
            Flavor::MinIo => "/minio/health/ready",
            Flavor::S3sFs => "/",
        };
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut response = [0u8; 12];
        if stream.read_exact(&mut response).is_err() {
            return false;
        }
        match self.flavor {
            Flavor::MinIo => {
                response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200")
            }
            Flavor::S3sFs => response.starts_with(b"HTTP/"),
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `127.0.0.1:PORT` from a banner line such as `API: http://127.0.0.1:41234`.
fn listening_address(log: &str) -> Option<String> {
    let start = log.find("http://127.0.0.1:")? + "http://".len();
    let rest = &log[start..];
    let port_start = "127.0.0.1:".len();
    let port_len = rest[port_start..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    (port_len > 0).then(|| rest[..port_start + port_len].to_owned())
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Looks for `name` on PATH, then where `go install` and `cargo install` put binaries.
fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = env::var_os("PATH")
        .map(|p| env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(gobin) = env::var_os("GOBIN") {
        dirs.push(gobin.into());
    }
    if let Some(gopath) = env::var_os("GOPATH") {
        dirs.extend(env::split_paths(&gopath).map(|p| p.join("bin")));
    }
    if let Some(home) = env::var_os("HOME") {
        let home = PathBuf::from(home);
        dirs.push(home.join("go/bin"));
        dirs.push(home.join(".cargo/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

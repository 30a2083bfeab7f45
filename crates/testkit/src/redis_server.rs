//! A real `redis-server` for the tests: started on a free loopback port with a temp directory
//! and no persistence, ready once it answers `PING`, killed on drop. It can be stopped and
//! restarted on the same port to play "Redis went down".
//!
//! The binary comes from `PATH` (`make deps` / scripts/ensure-deps.sh installs it); when it is
//! missing, [`RedisServer::start`] fails with a message saying so. `STRATA_SKIP_REDIS=1` lets
//! tests skip themselves ([`skipped`]).

use std::{
    env,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const STARTUP_DEADLINE: Duration = Duration::from_secs(20);
const START_ATTEMPTS: usize = 5;

/// Whether the Redis tests were switched off with `STRATA_SKIP_REDIS=1`.
pub fn skipped() -> bool {
    env::var("STRATA_SKIP_REDIS").is_ok_and(|v| v == "1")
}

/// A running (or deliberately stopped) server.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts a server on a free port, or fails with a message saying how to install Redis.
    pub fn start() -> Result<Self, String> {
        let binary = find_on_path("redis-server").ok_or_else(|| {
            "redis-server was not found on PATH: run `make deps` (scripts/ensure-deps.sh) to \
             install it, or set STRATA_SKIP_REDIS=1 to skip the Redis tests"
                .to_owned()
        })?;
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let mut last_error = String::new();
        // Redis refuses `--port 0`, so a port is picked by binding `127.0.0.1:0` and released;
        // another process may grab it in between, hence a few attempts.
        for _ in 0..START_ATTEMPTS {
            let port = free_port().map_err(|e| format!("picking a free port: {e}"))?;
            match launch(&binary, port, dir.path()) {
                Ok(child) => {
                    return Ok(Self {
                        binary,
                        port,
                        child: Some(child),
                        dir,
                    });
                }
                Err(error) => last_error = error,
            }
        }
        Err(format!(
            "redis-server did not start after {START_ATTEMPTS} attempts: {last_error}"
        ))
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL, like a crash) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (and so the same URL), empty (there is no persistence).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.child = Some(launch(&self.binary, self.port, self.dir.path())?);
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Spawns the server and waits until it answers `PING`; kills it if it does not in time.
fn launch(binary: &Path, port: u16, dir: &Path) -> Result<Child, String> {
    let log_path = dir.join(format!("redis-{port}.log"));
    let mut child = Command::new(binary)
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--daemonize", "no", "--logfile"])
        .arg(&log_path)
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("spawning {}: {e}", binary.display()))?;
    let deadline = Instant::now() + STARTUP_DEADLINE;
    loop {
        if ping(port) {
            return Ok(child);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "redis-server exited with {status}: {}",
                read_log(&log_path)
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "redis-server not ready on port {port} within {STARTUP_DEADLINE:?}: {}",
                read_log(&log_path)
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A port nothing listens on right now (also useful as "a Redis that is down").
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

fn ping(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}

/// The executable `name` on `PATH`, if any (for the server processes tests start).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"))
}

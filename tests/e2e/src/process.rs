//! [`Service`]: one child process of a test (a registry, an edge) whose stdout and stderr go to
//! a log file in the test's directory. It is killed when dropped, and when that happens while
//! the test is panicking, the tail of its log is printed first, so a failed assertion comes with
//! what the process was saying.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a process may take to print its "listening" line.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Log lines printed when a test fails.
const TAIL_LINES: usize = 40;

/// A child process with its log file.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Option<Child>,
    pid: u32,
    log: PathBuf,
}

impl Service {
    /// Starts `program args…` with `envs` added to the environment, stdout and stderr appended
    /// to `log`. `STRATA_*` and `OTEL_*` variables of the test's environment are not passed on:
    /// they would override the configuration file (or export the test's spans somewhere).
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Self {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("{name}: log file {}: {e}", log.display()));
        let err = out.try_clone().expect("clone the log file handle");
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, _) in std::env::vars_os() {
            let k_text = k.to_string_lossy();
            if k_text.starts_with("STRATA_") || k_text.starts_with("OTEL_") {
                command.env_remove(k);
            }
        }
        for (k, v) in envs {
            command.env(k, v);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: starting {}: {e}", program.display()));
        Self {
            name: name.to_owned(),
            pid: child.id(),
            child: Some(child),
            log: log.to_owned(),
        }
    }

    /// Polls `url` with `client` until it answers 2xx (hang guard: one minute), failing with
    /// this process's log tail otherwise: the readiness wait of every process a test starts.
    pub async fn wait_ready(&self, client: &reqwest::Client, url: &str) {
        for _ in 0..1200 {
            if let Ok(r) = client.get(url).send().await
                && r.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.fail(&format!("{url} did not answer 2xx within 60 s"));
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name given at start.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Panics with `message` and the tail of the log.
    pub fn fail(&self, message: &str) -> ! {
        panic!(
            "{}: {message}\n--- last lines of {} ---\n{}",
            self.name,
            self.log.display(),
            self.log_tail(TAIL_LINES)
        )
    }

    /// Waits until a log line satisfies `pick`, and returns what it picked; fails if the
    /// process exits first or nothing comes within a minute (hang protection).
    pub async fn wait_for_line<T>(&mut self, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(found) = self.log().lines().find_map(&mut pick) {
                return found;
            }
            if let Some(status) = self.exit_status() {
                self.fail(&format!("exited with {status} before it was ready"));
            }
            if Instant::now() > deadline {
                self.fail("not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The exit status, if the process has exited.
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL (a crash: no shutdown, no flushing), then reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `VmHWM` (peak resident set) and `VmRSS` from `/proc/<pid>/status`, in bytes.
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        };
        Some(Memory {
            peak_rss: field("VmHWM:")?,
            rss: field("VmRSS:")?,
        })
    }
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss: u64,
    /// Current resident set size (`VmRSS`), bytes.
    pub rss: u64,
}

impl Drop for Service {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- {} (pid {}): last lines of {} ---\n{}\n--- end of {} ---",
                self.name,
                self.pid,
                self.log.display(),
                self.log_tail(TAIL_LINES),
                self.name
            );
        }
        self.kill();
    }
}

/// `RUST_LOG=info` and `env`, as [`Service::spawn`] takes them.
pub fn with_log_level(env: &[(String, String)]) -> Vec<(&str, &str)> {
    std::iter::once(("RUST_LOG", "info"))
        .chain(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect()
}

/// The value of `fields.<key>` in a JSON log line whose message is `message`.
pub fn log_field(line: &str, message: &str, key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = value.get("fields")?;
    if fields.get("message")?.as_str()? != message {
        return None;
    }
    Some(fields.get(key)?.as_str()?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_fields_of_the_listening_line() {
        let line = r#"{"timestamp":"t","level":"INFO","fields":{"message":"central registry listening","http_addr":"127.0.0.1:1","grpc_addr":"127.0.0.1:2"},"target":"x"}"#;
        assert_eq!(
            log_field(line, "central registry listening", "grpc_addr").as_deref(),
            Some("127.0.0.1:2")
        );
        assert_eq!(log_field(line, "other", "grpc_addr"), None);
        assert_eq!(log_field("not json", "x", "y"), None);
    }
}

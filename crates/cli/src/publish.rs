//! `strata publish`: package a module tree with the go command's rules and upload it to a
//! strata registry's publish API, showing progress for large uploads.

use std::fs::File;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clap::Args;
use strata_core::gomod::GoMod;
use strata_core::version::ModuleVersion;

use crate::netrc;
use crate::package::package_dir;
use crate::{Failure, shown};

/// Arguments of `strata publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The module's root directory (the one holding go.mod).
    pub dir: PathBuf,
    /// The repository to publish to.
    #[arg(long)]
    pub repo: String,
    /// The canonical version to publish, e.g. v1.2.0.
    #[arg(long)]
    pub version: String,
    /// The registry's base URL, e.g. https://registry.example.com [env: STRATA_REGISTRY].
    #[arg(long, env = "STRATA_REGISTRY")]
    pub registry: String,
    /// The module path [default: the module directive of DIR/go.mod].
    #[arg(long)]
    pub module: Option<String>,
    /// Do not list omitted files or show progress.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `strata publish`.
pub fn run(args: &PublishArgs) -> Result<(), Failure> {
    let module_path = match &args.module {
        Some(m) => m.clone(),
        None => module_from_go_mod(&args.dir)?,
    };
    let module = ModuleVersion::new(&module_path, &args.version);
    let base = args.registry.trim_end_matches('/');
    let url = format!("{base}/api/repos/{}/upload", args.repo);
    let authorization = authorization(base)?;

    let mut zip = tempfile::tempfile()
        .map_err(|e| Failure::msg(format!("creating a temporary file: {e}")))?;
    let packaged = package_dir(&args.dir, &module, &mut zip)?;
    if !args.quiet {
        for omitted in &packaged.omitted {
            eprintln!("omitted {omitted}");
        }
    }
    let size = zip
        .metadata()
        .map_err(|e| Failure::msg(format!("temporary zip: {e}")))?
        .len();
    std::io::Seek::rewind(&mut zip).map_err(|e| Failure::msg(format!("temporary zip: {e}")))?;
    let reader: File = zip;
    let show = !args.quiet && (size > 4 << 20 || std::io::stderr().is_terminal());
    let body = Progress {
        inner: reader,
        sent: 0,
        total: size,
        show,
        last: Instant::now(),
        started: Instant::now(),
    };

    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| Failure::msg(format!("HTTP client: {e}")))?;
    let mut request = client
        .put(&url)
        .header("Content-Type", "application/zip")
        .body(reqwest::blocking::Body::sized(body, size));
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    eprintln!("publishing {module} ({size} bytes) to {url}");
    let response = request
        .send()
        .map_err(|e| Failure::msg(format!("uploading to {url}: {e}")))?;
    let status = response.status();
    let text = response.text().unwrap_or_default();
    if status.as_u16() == 201 {
        print!("{text}");
        return Ok(());
    }
    let mut lines = vec![format!("publish of {module} failed: HTTP {status}")];
    lines.extend(text.lines().map(str::to_string));
    Err(Failure(lines))
}

fn module_from_go_mod(dir: &std::path::Path) -> Result<String, Failure> {
    let path = dir.join("go.mod");
    let data = std::fs::read(&path).map_err(|e| {
        Failure::msg(format!(
            "{}: {e} (pass --module for a tree without go.mod)",
            shown(&path)
        ))
    })?;
    let go_mod =
        GoMod::parse_lax(&data).map_err(|e| Failure::msg(format!("{}: {e}", shown(&path))))?;
    go_mod.module_path().map(str::to_string).ok_or_else(|| {
        Failure::msg(format!(
            "{}: no module directive (pass --module)",
            shown(&path)
        ))
    })
}

/// `Bearer $STRATA_TOKEN`, else Basic credentials from `.netrc` for the registry's host, else
/// none (the registry answers 401 if it needs them).
pub(crate) fn authorization(base: &str) -> Result<Option<String>, Failure> {
    if let Ok(token) = std::env::var("STRATA_TOKEN")
        && !token.is_empty()
    {
        return Ok(Some(format!("Bearer {token}")));
    }
    let url =
        reqwest::Url::parse(base).map_err(|e| Failure::msg(format!("--registry {base:?}: {e}")))?;
    let Some(host) = url.host_str() else {
        return Ok(None);
    };
    let Some(path) = netrc::default_path() else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    // The go command matches `machine host:port` when the URL has a port; accept that spelling
    // first, then the plain host.
    let with_port = url.port().map(|p| format!("{host}:{p}"));
    let found = with_port
        .and_then(|h| netrc::lookup(&text, &h))
        .or_else(|| netrc::lookup(&text, host));
    Ok(found.map(|c| {
        let raw = format!("{}:{}", c.login, c.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }))
}

/// A reader that reports upload progress on stderr.
struct Progress<R> {
    inner: R,
    sent: u64,
    total: u64,
    show: bool,
    last: Instant,
    started: Instant,
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sent += n as u64;
        if self.show
            && (self.last.elapsed() >= Duration::from_millis(500)
                || (n == 0 && self.sent == self.total))
        {
            self.last = Instant::now();
            let pct = (self.sent * 100).checked_div(self.total).unwrap_or(100);
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            eprintln!(
                "  uploaded {} of {} bytes ({pct}%, {:.1} MiB/s)",
                self.sent,
                self.total,
                self.sent as f64 / secs / 1048576.0
            );
        }
        Ok(n)
    }
}

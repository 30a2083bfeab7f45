//! `strata probe URL`: one HTTP GET, exit 0 on a 2xx answer — the health check of a container
//! image that has no shell and no curl (the distroless image runs
//! `strata probe http://127.0.0.1:8080/readyz`).

use std::time::Duration;

use crate::Failure;

/// `strata probe` arguments.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The URL to GET, e.g. http://127.0.0.1:8080/readyz (http only: probes stay inside the
    /// container or pod).
    pub url: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
}

/// Runs the probe: Ok on 2xx; the status and the start of the body otherwise.
pub fn run(args: &ProbeArgs) -> Result<(), Failure> {
    let url = reqwest::Url::parse(&args.url)
        .map_err(|e| Failure::msg(format!("probe: {:?} is not a URL: {e}", args.url)))?;
    if url.scheme() != "http" {
        return Err(Failure::msg(format!(
            "probe: {url}: only http:// URLs are probed (a container checks itself over loopback)"
        )));
    }
    if args.timeout_ms == 0 {
        return Err(Failure::msg("probe: --timeout-ms must be above 0"));
    }
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(args.timeout_ms))
        .no_proxy()
        .build()
        .map_err(|e| Failure::msg(format!("probe: building the HTTP client: {e}")))?;
    let response = client
        .get(url.clone())
        .send()
        .map_err(|e| Failure::msg(format!("probe: GET {url}: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    Err(Failure::msg(format!(
        "probe: GET {url}: {status}: {}",
        body.trim()
    )))
}

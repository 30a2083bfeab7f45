//! A real Prometheus server (Debian's `prometheus`, which scripts/ensure-deps.sh installs with
//! promtool) scraping the test's processes every second and evaluating the rule files of
//! `deploy/prometheus/` every second, with its HTTP query API.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::Service;

/// A scrape job: its name (`strata-edge`, …) and its targets' `host:port`.
#[derive(Debug, Clone)]
pub struct ScrapeJob {
    /// `job` label.
    pub name: String,
    /// `host:port` of each target (`/metrics` on it).
    pub targets: Vec<SocketAddr>,
}

/// A running Prometheus.
#[derive(Debug)]
pub struct PrometheusProcess {
    /// The process.
    pub service: Service,
    /// Its HTTP address.
    pub addr: SocketAddr,
    client: reqwest::Client,
}

/// `deploy/prometheus/` of this checkout.
pub fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus")
}

impl PrometheusProcess {
    /// Writes a configuration scraping `jobs` (targets labelled `namespace="e2e"`,
    /// `region="test"`) and loading `rule_files`, starts `prometheus` from `PATH` with its data
    /// under `dir`, and waits for `/-/ready`. Panics with a clear reason when `prometheus` is
    /// missing (scripts/ensure-deps.sh installs it).
    pub async fn start(dir: &Path, jobs: &[ScrapeJob], rule_files: &[PathBuf]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut config = String::from(
            "# Written by the strata end-to-end tests.\n\
             global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\nrule_files:\n",
        );
        for file in rule_files {
            config += &format!("  - {:?}\n", file.display().to_string());
        }
        config += "\nscrape_configs:\n";
        for job in jobs {
            let targets: Vec<String> = job.targets.iter().map(|t| format!("\"{t}\"")).collect();
            config += &format!(
                "  - job_name: {}\n    static_configs:\n      - targets: [{}]\n        labels: {{namespace: e2e, region: test}}\n",
                job.name,
                targets.join(", ")
            );
        }
        let file = dir.join("prometheus.yml");
        std::fs::write(&file, config).expect("write prometheus.yml");
        let program =
            strata_testkit::redis_server::find_on_path("prometheus").unwrap_or_else(|| {
                panic!("prometheus is not on PATH: scripts/ensure-deps.sh (make deps) installs it")
            });
        let service = Service::spawn(
            "prometheus",
            &program,
            &[
                &format!("--config.file={}", file.display()),
                &format!(
                    "--storage.tsdb.path={}",
                    dir.join("prometheus-data").display()
                ),
                &format!("--web.listen-address={addr}"),
                "--log.level=warn",
            ],
            &[],
            &dir.join("prometheus.log"),
        );
        let prometheus = Self {
            service,
            addr,
            client: reqwest::Client::new(),
        };
        let ready = format!("http://{addr}/-/ready");
        prometheus
            .service
            .wait_ready(&prometheus.client, &ready)
            .await;
        prometheus
    }

    /// The result vector of an instant query (`data.result`), or the error Prometheus gave.
    pub async fn query(&self, promql: &str) -> Result<Vec<serde_json::Value>, String> {
        let url = format!("http://{}/api/v1/query?query={}", self.addr, encode(promql));
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let text = response.text().await.map_err(|e| e.to_string())?;
        let body: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{e}: {text}"))?;
        if body["status"] != "success" {
            return Err(format!("{promql}: {body}"));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Waits (up to `within`) until `promql` returns at least one series; the series, or the
    /// last error or an empty vector when it never did.
    pub async fn wait_for_series(
        &self,
        promql: &str,
        within: Duration,
    ) -> Result<Vec<serde_json::Value>, String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let result = self.query(promql).await;
            match &result {
                Ok(series) if !series.is_empty() => return result,
                _ if std::time::Instant::now() >= deadline => return result,
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// `text` percent-encoded for a query string (everything but unreserved characters).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

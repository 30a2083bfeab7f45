//! The sync worker as its own process (`e2e-sync`, the code of `strata-sync`): its
//! configuration (Redis Streams jobs, the registry it embeds), readiness, and the warm-up API.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::process::{Service, log_field};
use crate::registry::{CI_TOKEN, RedisTarget, RegistrySpec};

/// A running sync worker process.
#[derive(Debug)]
pub struct WorkerProcess {
    /// The process.
    pub service: Service,
    /// Its HTTP address (warm-up API, ops).
    pub http: SocketAddr,
    client: reqwest::Client,
}

impl WorkerProcess {
    /// Writes the worker's configuration and its own copy of `registry`'s (the same storage,
    /// events and repositories; its own spool) under `dir`, starts `binary`, waits for its
    /// listening line and `/readyz`. Jobs go through Redis Streams at `redis` (stream
    /// `<redis.stream>:jobs`); a scrub pass of every repository runs hourly (one at start), heat is off; `extra` (TOML, e.g. `[[feeds]]`)
    /// is appended to the configuration.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        name: &str,
        registry: &RegistrySpec,
        redis: &RedisTarget,
        extra: &str,
    ) -> Self {
        let spool = dir.join(format!("{name}-registry-spool"));
        std::fs::create_dir_all(&spool).expect("spool dir");
        let registry_config = dir.join(format!("{name}-registry.toml"));
        std::fs::write(&registry_config, registry.toml(&spool)).expect("write the registry config");
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "# Written by the strata end-to-end tests.\nconcurrency = 2\nretry_initial_ms = 50\n\n\
                 [server]\nhttp = \"127.0.0.1:0\"\n\n[registry]\nconfig = {:?}\n\n\
                 [jobs]\nkind = \"redis\"\nurl = \"{}\"\nstream = \"{}:jobs\"\nblock_ms = 200\n\n\
                 [scrub]\nevery_hours = 1\n\n[heat]\nenabled = false\n{}",
                registry_config.display().to_string(),
                redis.url,
                redis.stream,
                extra
            ),
        )
        .expect("write the worker config");
        let log = dir.join(format!("{name}.log"));
        let mut service = Service::spawn(
            name,
            binary,
            &["--config", &config.display().to_string()],
            &[("RUST_LOG", "info")],
            &log,
        );
        let http = service
            .wait_for_line(|line| {
                log_field(line, "sync worker listening", "http_addr")?
                    .parse()
                    .ok()
            })
            .await;
        let worker = Self {
            service,
            http,
            client: reqwest::Client::new(),
        };
        worker.wait_ready().await;
        worker
    }

    async fn wait_ready(&self) {
        let url = format!("{}/readyz", self.url());
        self.service.wait_ready(&self.client, &url).await;
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Posts a warm-up of `body` (go.sum, go.mod or `module@version` lines) into `repo` with
    /// the CI token and waits until its progress says done; returns the final progress.
    pub async fn warm(&self, repo: &str, body: &str) -> serde_json::Value {
        let url = format!("{}/api/warm?repository={repo}", self.url());
        let response = self
            .client
            .post(&url)
            .bearer_auth(CI_TOKEN)
            .body(body.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| self.service.fail(&format!("POST {url}: {e}")));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 202 {
            self.service
                .fail(&format!("warm-up answered {status}: {text}"));
        }
        let accepted: serde_json::Value = serde_json::from_str(&text).expect("warm-up JSON");
        let progress = format!(
            "{}{}",
            self.url(),
            accepted["progress"].as_str().expect("progress path")
        );
        for _ in 0..1200 {
            let text = self
                .client
                .get(&progress)
                .bearer_auth(CI_TOKEN)
                .send()
                .await
                .expect("progress")
                .text()
                .await
                .expect("progress body");
            let now: serde_json::Value = serde_json::from_str(&text).expect("progress JSON");
            if now["done"] == true {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.service.fail("the warm-up did not finish within 60 s");
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        let url = format!("{}/metrics", self.url());
        match self.client.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => self.service.fail(&format!("GET {url}: {e}")),
        }
    }
}

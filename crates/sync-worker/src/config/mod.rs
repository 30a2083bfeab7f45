//! Worker configuration, loaded the way every service's is ([`strata_service::config`]): TOML,
//! then the `STRATA_SYNC_…` environment overrides [`WorkerConfig`] declares, then validation into
//! typed values. Each section's type lives with the module it configures (the queue's `jobs`,
//! the jobs', the producers', the registry's); this module puts them together and uses them,
//! never the other way round.
//!
//! ```toml
//! concurrency = 8                # jobs run at once by this process
//! max_deliveries = 5             # deliveries before a failing job is dead-lettered
//! retry_initial_ms = 1000        # first retry delay; doubles per failure (with jitter) …
//! retry_max_ms = 300000          # … up to this
//! visibility_timeout_ms = 60000  # Redis: a delivery idle this long is claimed by another worker
//! shutdown_grace_ms = 30000      # on shutdown, how long running jobs may finish
//! completed_ttl_secs = 604800    # how long completion markers (idempotency) last
//! jobs = { kind = "redis", url = "redis://127.0.0.1:6379", stream = "strata:jobs", group = "strata-sync" }
//!
//! [server]
//! http = "127.0.0.1:8090"        # /healthz, /readyz, /metrics
//! ```
//!
//! Environment: `STRATA_SYNC_CONFIG` (the file, when `--config` is not given),
//! `STRATA_SYNC_HTTP_LISTEN`, `STRATA_SYNC_CONCURRENCY`, `STRATA_SYNC_REDIS_URL` (switches `jobs`
//! to Redis at that URL; the unprefixed `STRATA_REDIS_URL` still works, deprecated),
//! `STRATA_SYNC_REGISTRY_CONFIG`, `STRATA_SYNC_CONSUMER` (e.g. the pod name). A relative
//! `registry.config` is taken from the directory of the worker's configuration file. A webhook's
//! `secret_env` is read with the overrides, when the configuration is loaded (and again when
//! the worker starts, for a configuration built another way: [`WorkerConfig::resolve_secrets`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use strata_service::config::{self, ConfigError, Override, ServiceConfig};

use crate::jobs::refresh::RefreshConfig;
use crate::jobs::retention::{self, RetentionPolicy};
use crate::jobs::scrub::ScrubConfig;
use crate::producers::ProducerConfig;
use crate::producers::heat::HeatConfig;
use crate::producers::index_feed::{self, FeedConfig};
use crate::producers::schedule::{self, ScheduleConfig};
use crate::producers::webhooks::{self, WebhookConfig};
use crate::registry::RegistrySection;
use crate::runtime::backoff::RetryPolicy;
use crate::runtime::queue::memory::{MemoryQueue, MemoryQueueSettings};
use crate::runtime::queue::redis::{RedisQueue, RedisQueueSettings};
use crate::runtime::queue::{Broker, QueueError};
pub use crate::runtime::queue::{JobsConfig, MemoryJobsConfig, RedisJobsConfig};
use crate::runtime::worker::WorkerSettings;

/// The whole worker configuration.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Jobs this process runs at once. Default 8.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Deliveries of a failing job before it is dead-lettered (a permanent failure is
    /// dead-lettered at once). Default 5.
    #[serde(default = "default_max_deliveries")]
    pub max_deliveries: u32,
    /// Delay before the first retry, doubling per failure with jitter. Default 1000 ms.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Cap of the retry delay (also used for reconnecting to Redis). Default 300000 ms.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Redis: a delivery not acknowledged and not kept alive for this long is claimed by
    /// another worker (running jobs are kept alive every third of it). Default 60000 ms.
    #[serde(default = "default_visibility_timeout_ms")]
    pub visibility_timeout_ms: u64,
    /// On shutdown, how long running jobs may finish before they are abandoned to other
    /// workers. Default 30000 ms.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// How long a completion marker keeps a key from running again. Default 7 days.
    #[serde(default = "default_completed_ttl_secs")]
    pub completed_ttl_secs: u64,
    /// Listeners.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where jobs are queued (default: in-process).
    #[serde(default)]
    pub jobs: JobsConfig,
    /// The embedded central registry (`[registry] config = "registry.toml"`, or
    /// `STRATA_SYNC_REGISTRY_CONFIG`); without it the worker has no job handlers.
    #[serde(default)]
    pub registry: Option<RegistrySection>,
    /// What `RefreshMetadata` prefetches (`[refresh]`).
    #[serde(default)]
    pub refresh: RefreshConfig,
    /// The scrubber's rate and schedule (`[scrub]`).
    #[serde(default)]
    pub scrub: ScrubConfig,
    /// Retention policies of remote repositories (`[[retention]]`).
    #[serde(default)]
    pub retention: Vec<RetentionPolicy>,
    /// Index feeds followed (`[[feeds]]`, see [`index_feed`]).
    #[serde(default)]
    pub feeds: Vec<FeedConfig>,
    /// Tag-push webhooks (`[[webhooks]]`, see [`webhooks`]).
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Heat-driven refresh (`[heat]`, see [`crate::producers::heat`]).
    #[serde(default)]
    pub heat: HeatConfig,
    /// Scheduled refreshes of module sets (`[[schedules]]`, see [`schedule`]).
    #[serde(default)]
    pub schedules: Vec<ScheduleConfig>,
    /// `[tracing]`: OpenTelemetry traces (off unless an OTLP endpoint is set).
    #[serde(default)]
    pub tracing: strata_service::trace::TracingConfig,
}

/// The `[server]` section.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP listen address: `/healthz`, `/readyz`, `/metrics` (and, later, the warm-up API
    /// and webhooks). Default `127.0.0.1:8090`.
    #[serde(default = "default_http")]
    pub http: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: default_http(),
        }
    }
}

impl ServiceConfig for WorkerConfig {
    const SERVICE: &'static str = "SYNC";
    const BINARY: &'static str = "strata-sync";

    fn tracing(&self) -> Option<&strata_service::trace::TracingConfig> {
        Some(&self.tracing)
    }
    const OVERRIDES: &'static [Override] = &[
        Override {
            name: "HTTP_LISTEN",
            key: "server.http",
            note: "",
            was: &[],
        },
        Override {
            name: "CONCURRENCY",
            key: "concurrency",
            note: "",
            was: &[],
        },
        // Before CONSUMER, which only applies to a Redis queue.
        Override {
            name: "REDIS_URL",
            key: "jobs.url",
            note: "switches `jobs` to Redis if it was memory",
            was: &["STRATA_REDIS_URL"],
        },
        Override {
            name: "REGISTRY_CONFIG",
            key: "registry.config",
            note: "",
            was: &[],
        },
        Override {
            name: "CONSUMER",
            key: "jobs.consumer",
            note: "",
            was: &[],
        },
    ];

    fn apply_override(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "HTTP_LISTEN" => self.server.http = config::parse(value)?,
            "CONCURRENCY" => self.concurrency = config::parse(value)?,
            // The rest of a Redis section is kept.
            "REDIS_URL" => match &mut self.jobs {
                JobsConfig::Redis(redis) => value.clone_into(&mut redis.url),
                JobsConfig::Memory(_) => {
                    self.jobs = JobsConfig::Redis(RedisJobsConfig::with_url(value));
                }
            },
            "REGISTRY_CONFIG" => {
                self.registry = Some(RegistrySection {
                    config: PathBuf::from(value),
                });
            }
            "CONSUMER" => {
                if let JobsConfig::Redis(redis) = &mut self.jobs {
                    redis.consumer = Some(value.to_owned());
                }
            }
            other => return Err(format!("{other} is not a sync worker setting")),
        }
        Ok(())
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        self.check()
    }

    /// A relative `registry.config` is taken from `file`'s directory.
    fn loaded_from(&mut self, file: &Path) {
        if let Some(section) = &mut self.registry {
            section.config = section.path_from(file.parent());
        }
    }

    /// Each webhook's `secret_env` must be set (a configuration error otherwise, exit 64).
    fn read_named_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        self.resolve_secrets(env)
    }

    /// The registry configuration the worker embeds must load as the registry's own start
    /// would load it (its ledger key, its named variables): the worker opens that registry
    /// when it starts, so `--check-config` checks it too.
    fn check_references(&self) -> Result<(), ConfigError> {
        if let Some(section) = &self.registry {
            strata_service::config::load::<strata_registry_engine::config::RegistryConfig>(
                &section.config,
            )
            .map_err(|e| {
                ConfigError::Invalid(format!(
                    "registry configuration {}: {e}",
                    section.config.display()
                ))
            })?;
        }
        Ok(())
    }
}

impl WorkerConfig {
    /// Takes each webhook secret named by `secret_env` from `env` (`(name, value)` pairs). The
    /// worker does so with the process environment when it starts, for the secrets not taken
    /// yet.
    pub fn resolve_secrets(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        webhooks::resolve_secrets(&mut self.webhooks, env)
    }

    /// Checks the values serde cannot, section by section.
    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::invalid(key, reason));
        if !(1..=1024).contains(&self.concurrency) {
            return invalid("concurrency", "must be between 1 and 1024");
        }
        if self.max_deliveries == 0 {
            return invalid("max_deliveries", "must be at least 1");
        }
        if self.retry_initial_ms == 0 {
            return invalid("retry_initial_ms", "must be positive");
        }
        if self.retry_max_ms < self.retry_initial_ms {
            return invalid("retry_max_ms", "must be at least retry_initial_ms");
        }
        if self.visibility_timeout_ms < 100 {
            return invalid(
                "visibility_timeout_ms",
                "must be at least 100 (running jobs are kept alive every third of it)",
            );
        }
        if self.completed_ttl_secs == 0 {
            return invalid("completed_ttl_secs", "must be positive");
        }
        self.refresh.validate()?;
        self.scrub.validate()?;
        retention::validate_policies(&self.retention)?;
        index_feed::validate(&self.feeds)?;
        webhooks::validate(&self.webhooks)?;
        self.heat.validate()?;
        schedule::validate(&self.schedules)?;
        self.jobs.validate(self.visibility_timeout_ms)
    }

    /// The worker loop's settings.
    pub fn worker_settings(&self) -> WorkerSettings {
        WorkerSettings {
            concurrency: self.concurrency,
            max_deliveries: self.max_deliveries,
            retry: RetryPolicy::new(
                Duration::from_millis(self.retry_initial_ms),
                Duration::from_millis(self.retry_max_ms),
            ),
            reconnect: RetryPolicy::new(
                Duration::from_millis(100),
                Duration::from_millis(self.retry_max_ms.min(10_000)),
            ),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
        }
    }

    /// The in-process queue's settings (whatever `jobs` says; `strata up` uses them).
    pub fn memory_settings(&self) -> MemoryQueueSettings {
        self.jobs
            .memory_settings(Duration::from_secs(self.completed_ttl_secs))
    }

    /// The Redis queue's settings, if `jobs` is Redis; a missing consumer name is generated.
    pub fn redis_settings(&self) -> Option<RedisQueueSettings> {
        self.jobs.redis_settings(
            Duration::from_secs(self.completed_ttl_secs),
            Duration::from_millis(self.visibility_timeout_ms),
        )
    }

    /// The queue `jobs` names: Redis (connects lazily) or in-process.
    pub fn open_queue(&self) -> Result<Arc<dyn Broker>, QueueError> {
        Ok(match self.redis_settings() {
            Some(settings) => Arc::new(RedisQueue::new(settings)?),
            None => Arc::new(MemoryQueue::new(self.memory_settings())),
        })
    }

    /// The producers' sections.
    pub fn producers(&self) -> ProducerConfig<'_> {
        ProducerConfig {
            feeds: &self.feeds,
            webhooks: &self.webhooks,
            heat: &self.heat,
            schedules: &self.schedules,
            jobs: &self.jobs,
        }
    }
}

fn default_concurrency() -> usize {
    8
}
fn default_max_deliveries() -> u32 {
    5
}
fn default_retry_initial_ms() -> u64 {
    1_000
}
fn default_retry_max_ms() -> u64 {
    300_000
}
fn default_visibility_timeout_ms() -> u64 {
    60_000
}
fn default_shutdown_grace_ms() -> u64 {
    30_000
}
fn default_completed_ttl_secs() -> u64 {
    7 * 24 * 3600
}
fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8090))
}

#[cfg(test)]
mod tests;

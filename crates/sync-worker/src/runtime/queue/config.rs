//! The queue's section of the worker configuration: `jobs = { kind = "memory" }` (the
//! default) or `jobs = { kind = "redis", url = …, stream = …, group = …, … }`, and the
//! queue settings it turns into.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use strata_service::config::ConfigError;
use strata_service::events::redact_url;

use super::memory::MemoryQueueSettings;
use super::redis::RedisQueueSettings;
use crate::runtime::envelope::random_u64;

/// `jobs = { kind = "memory" }` (default) or `jobs = { kind = "redis", … }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum JobsConfig {
    /// In-process: for `strata up`, where every tier runs in one process.
    Memory(MemoryJobsConfig),
    /// A Redis Stream with a consumer group, shared by every worker.
    Redis(RedisJobsConfig),
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig::Memory(MemoryJobsConfig::default())
    }
}

impl JobsConfig {
    /// Checks the values serde cannot; `visibility_timeout_ms` bounds the Redis block time.
    pub fn validate(&self, visibility_timeout_ms: u64) -> Result<(), ConfigError> {
        let invalid = |key, reason: &str| Err(ConfigError::invalid(key, reason));
        match self {
            JobsConfig::Memory(memory) => {
                if memory.max_backlog == 0 {
                    return invalid("jobs.max_backlog", "must be at least 1");
                }
                if memory.dead_letter_max == 0 {
                    return invalid("jobs.dead_letter_max", "must be at least 1");
                }
            }
            JobsConfig::Redis(redis) => {
                if let Err(e) = redis::Client::open(redis.url.as_str()) {
                    return invalid("jobs.url", &format!("{:?}: {e}", redact_url(&redis.url)));
                }
                let names = [
                    ("jobs.stream", Some(&redis.stream)),
                    ("jobs.group", Some(&redis.group)),
                    ("jobs.consumer", redis.consumer.as_ref()),
                ];
                for (key, value) in names {
                    if value
                        .is_some_and(|v| v.trim().is_empty() || v.chars().any(char::is_whitespace))
                    {
                        return invalid(key, "must be non-empty without spaces");
                    }
                }
                for (key, value) in [
                    ("jobs.max_backlog", redis.max_backlog),
                    ("jobs.dead_letter_maxlen", redis.dead_letter_maxlen),
                    ("jobs.block_ms", redis.block_ms),
                    ("jobs.command_timeout_ms", redis.command_timeout_ms),
                ] {
                    if value == 0 {
                        return invalid(key, "must be at least 1");
                    }
                }
                if redis.block_ms >= visibility_timeout_ms {
                    return invalid("jobs.block_ms", "must be below visibility_timeout_ms");
                }
            }
        }
        Ok(())
    }

    /// The in-process queue's settings (whatever `jobs` says: `strata up` runs in-process);
    /// completion markers last `completed_ttl`.
    pub fn memory_settings(&self, completed_ttl: Duration) -> MemoryQueueSettings {
        let (max_backlog, dead_letter_max) = match self {
            JobsConfig::Memory(m) => (m.max_backlog, m.dead_letter_max),
            JobsConfig::Redis(_) => (default_memory_backlog(), default_dead_letter_max()),
        };
        MemoryQueueSettings {
            max_backlog,
            dead_letter_max: usize::try_from(dead_letter_max).unwrap_or(usize::MAX),
            completed_ttl,
        }
    }

    /// The Redis queue's settings, if this is Redis; a missing consumer name is generated.
    /// Completion markers last `completed_ttl`; a delivery idle for `visibility_timeout` is
    /// claimed by another worker.
    pub fn redis_settings(
        &self,
        completed_ttl: Duration,
        visibility_timeout: Duration,
    ) -> Option<RedisQueueSettings> {
        let JobsConfig::Redis(redis) = self else {
            return None;
        };
        Some(RedisQueueSettings {
            url: redis.url.clone(),
            stream: redis.stream.clone(),
            group: redis.group.clone(),
            consumer: redis.consumer.clone().unwrap_or_else(generated_consumer),
            max_backlog: redis.max_backlog,
            dead_letter_maxlen: redis.dead_letter_maxlen,
            completed_log_maxlen: redis.completed_log_maxlen,
            completed_ttl,
            visibility_timeout,
            block: Duration::from_millis(redis.block_ms),
            command_timeout: Duration::from_millis(redis.command_timeout_ms),
        })
    }
}

/// `kind = "memory"`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemoryJobsConfig {
    /// Jobs waiting, delayed or running before enqueues are refused. Default 100000.
    #[serde(default = "default_memory_backlog")]
    pub max_backlog: u64,
    /// Dead letters kept. Default 10000.
    #[serde(default = "default_dead_letter_max")]
    pub dead_letter_max: u64,
}

impl Default for MemoryJobsConfig {
    fn default() -> Self {
        Self {
            max_backlog: default_memory_backlog(),
            dead_letter_max: default_dead_letter_max(),
        }
    }
}

/// `kind = "redis"`.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisJobsConfig {
    /// `redis://[user:password@]host:port[/db]`. Default `redis://127.0.0.1:6379`.
    #[serde(default = "default_url")]
    pub url: String,
    /// The jobs stream; `<stream>:retry`, `:dead`, `:completed` and `:done:<key>` are derived
    /// from it. Default `strata:jobs`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// The consumer group every worker joins. Default `strata-sync`.
    #[serde(default = "default_group")]
    pub group: String,
    /// This process's consumer name; must be unique among running workers. Default:
    /// host name, process id and a random suffix.
    #[serde(default)]
    pub consumer: Option<String>,
    /// Jobs waiting or running before enqueues are refused (the stream is never trimmed, so
    /// no job is dropped). Default 1000000.
    #[serde(default = "default_redis_backlog")]
    pub max_backlog: u64,
    /// Approximate bound of the dead-letter stream. Default 10000.
    #[serde(default = "default_dead_letter_max")]
    pub dead_letter_maxlen: u64,
    /// Approximate bound of the completion log (`<stream>:completed`); 0 = no log.
    /// Default 100000.
    #[serde(default = "default_completed_log_maxlen")]
    pub completed_log_maxlen: u64,
    /// How long one read blocks waiting for new jobs. Default 1000 ms.
    #[serde(default = "default_block_ms")]
    pub block_ms: u64,
    /// Connect and command timeout. Default 5000 ms.
    #[serde(default = "default_command_timeout_ms")]
    pub command_timeout_ms: u64,
}

impl Default for RedisJobsConfig {
    fn default() -> Self {
        Self::with_url(default_url())
    }
}

impl RedisJobsConfig {
    /// The defaults, pointing at `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: default_stream(),
            group: default_group(),
            consumer: None,
            max_backlog: default_redis_backlog(),
            dead_letter_maxlen: default_dead_letter_max(),
            completed_log_maxlen: default_completed_log_maxlen(),
            block_ms: default_block_ms(),
            command_timeout_ms: default_command_timeout_ms(),
        }
    }
}

/// Hides a password in the URL.
impl fmt::Debug for RedisJobsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisJobsConfig")
            .field("url", &redact_url(&self.url))
            .field("stream", &self.stream)
            .field("group", &self.group)
            .field("consumer", &self.consumer)
            .field("max_backlog", &self.max_backlog)
            .field("dead_letter_maxlen", &self.dead_letter_maxlen)
            .field("completed_log_maxlen", &self.completed_log_maxlen)
            .field("block_ms", &self.block_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .finish()
    }
}

/// `host-pid-xxxx`: the random part keeps names unique when containers all run as pid 1.
fn generated_consumer() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().replace(char::is_whitespace, "-"))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        random_u64() & 0xffff
    )
}

fn default_memory_backlog() -> u64 {
    100_000
}
fn default_redis_backlog() -> u64 {
    1_000_000
}
fn default_dead_letter_max() -> u64 {
    10_000
}
fn default_completed_log_maxlen() -> u64 {
    100_000
}
fn default_url() -> String {
    "redis://127.0.0.1:6379".to_owned()
}
fn default_stream() -> String {
    "strata:jobs".to_owned()
}
fn default_group() -> String {
    "strata-sync".to_owned()
}
fn default_block_ms() -> u64 {
    1_000
}
fn default_command_timeout_ms() -> u64 {
    5_000
}

//! The events section of the registry configuration:
//! `events = { kind = "memory" }` (the default) or
//! `events = { kind = "redis", url = "redis://127.0.0.1:6379", stream = "strata:events" }`.

use std::{fmt, time::Duration};

use serde::Deserialize;

/// Where change events go, tagged by `kind`. Default: [`EventsConfig::Memory`].
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum EventsConfig {
    /// An in-process broadcast: the embedded default (`strata up`), when every tier runs in one
    /// process and nothing outlives it.
    Memory(MemoryEventsConfig),
    /// A Redis Stream, fed through a durable outbox in the object store.
    Redis(RedisEventsConfig),
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self::Memory(MemoryEventsConfig::default())
    }
}

/// Settings of the in-process bus.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MemoryEventsConfig {
    /// Events buffered per subscriber before a slow one starts missing the oldest (it is told
    /// how many it missed). Default 1024.
    #[serde(default = "default_capacity")]
    pub capacity: usize,
}

impl Default for MemoryEventsConfig {
    fn default() -> Self {
        Self {
            capacity: default_capacity(),
        }
    }
}

/// Settings of the Redis Streams transport. Durations are in milliseconds.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RedisEventsConfig {
    /// Redis URL (`redis://[user:password@]host:port[/db]`, `rediss://` is not supported by
    /// this build). Default `redis://127.0.0.1:6379`.
    #[serde(default = "default_url")]
    pub url: String,
    /// Stream key. Default `strata:events`.
    #[serde(default = "default_stream")]
    pub stream: String,
    /// Approximate bound on the stream length (`XADD … MAXLEN ~ maxlen`): edges that fall
    /// further behind resynchronise from the version index. Default 100000.
    #[serde(default = "default_maxlen")]
    pub maxlen: u64,
    /// First delay before retrying after Redis failed. Default 100 ms.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Cap of the exponentially growing retry delay (jitter is applied below it). Default 10 s.
    #[serde(default = "default_retry_max_ms")]
    pub retry_max_ms: u64,
    /// Timeout of connecting and of each command (the blocking read adds `block_ms` to it).
    /// Default 5 s.
    #[serde(default = "default_command_timeout_ms")]
    pub command_timeout_ms: u64,
    /// How long a subscriber's `XREAD BLOCK` waits before asking again. Default 5 s.
    #[serde(default = "default_block_ms")]
    pub block_ms: u64,
    /// On shutdown, how long the outbox deliverer may keep flushing; whatever is left stays in
    /// the outbox for the next start. Default 5 s.
    #[serde(default = "default_shutdown_flush_ms")]
    pub shutdown_flush_ms: u64,
}

impl RedisEventsConfig {
    /// The defaults, pointing at `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: default_stream(),
            maxlen: default_maxlen(),
            retry_initial_ms: default_retry_initial_ms(),
            retry_max_ms: default_retry_max_ms(),
            command_timeout_ms: default_command_timeout_ms(),
            block_ms: default_block_ms(),
            shutdown_flush_ms: default_shutdown_flush_ms(),
        }
    }

    /// Checks the values that serde cannot (the URL is checked when the bus is built).
    pub fn validate(&self) -> Result<(), String> {
        if self.stream.is_empty() {
            return Err("events.stream must not be empty".into());
        }
        if self.maxlen == 0 {
            return Err("events.maxlen must be at least 1".into());
        }
        if self.retry_initial_ms == 0 || self.retry_max_ms < self.retry_initial_ms {
            return Err("events.retry_initial_ms must be positive and at most retry_max_ms".into());
        }
        if self.command_timeout_ms == 0 || self.block_ms == 0 {
            return Err("events.command_timeout_ms and events.block_ms must be positive".into());
        }
        Ok(())
    }

    pub fn retry_initial(&self) -> Duration {
        Duration::from_millis(self.retry_initial_ms)
    }

    pub fn retry_max(&self) -> Duration {
        Duration::from_millis(self.retry_max_ms)
    }

    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    pub fn shutdown_flush(&self) -> Duration {
        Duration::from_millis(self.shutdown_flush_ms)
    }
}

impl Default for RedisEventsConfig {
    fn default() -> Self {
        Self::with_url(default_url())
    }
}

/// Hides a password in the URL.
impl fmt::Debug for RedisEventsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEventsConfig")
            .field("url", &redact_url(&self.url))
            .field("stream", &self.stream)
            .field("maxlen", &self.maxlen)
            .field("retry_initial_ms", &self.retry_initial_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("block_ms", &self.block_ms)
            .field("shutdown_flush_ms", &self.shutdown_flush_ms)
            .finish()
    }
}

/// The URL with any `user:password@` part replaced, for logs and debug output.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

fn default_capacity() -> usize {
    1024
}
fn default_url() -> String {
    "redis://127.0.0.1:6379".to_owned()
}
fn default_stream() -> String {
    crate::keys::DEFAULT_EVENT_STREAM.to_owned()
}
fn default_maxlen() -> u64 {
    100_000
}
fn default_retry_initial_ms() -> u64 {
    100
}
fn default_retry_max_ms() -> u64 {
    10_000
}
fn default_command_timeout_ms() -> u64 {
    5_000
}
fn default_block_ms() -> u64 {
    5_000
}
fn default_shutdown_flush_ms() -> u64 {
    5_000
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_tagged_configs_with_defaults() {
        let memory: EventsConfig = serde_json::from_str(r#"{"kind":"memory"}"#).unwrap();
        assert_eq!(memory, EventsConfig::default());
        let redis: EventsConfig =
            serde_json::from_str(r#"{"kind":"redis","url":"redis://h:1","maxlen":10}"#).unwrap();
        let EventsConfig::Redis(redis) = redis else {
            panic!("{redis:?}")
        };
        assert_eq!((redis.url.as_str(), redis.maxlen), ("redis://h:1", 10));
        assert_eq!(redis.stream, "strata:events");
        assert!(redis.validate().is_ok());
        let typo = serde_json::from_str::<EventsConfig>(r#"{"kind":"redis","stream_name":"x"}"#);
        assert!(typo.is_err());
        let zero = RedisEventsConfig {
            maxlen: 0,
            ..RedisEventsConfig::default()
        };
        assert!(zero.validate().is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let config = RedisEventsConfig::with_url("redis://user:s3cret@host:6379/0");
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("***@host:6379/0"),
            "{shown}"
        );
        assert_eq!(redact_url("redis://host:1"), "redis://host:1");
    }
}

//! What every strata service shares, so that no service crate needs another:
//! - [`bootstrap`]: how every service binary starts (command line, configuration, logging,
//!   runtime, shutdown signal, exit status) before its one `run(config, shutdown)`;
//! - [`config`]: loading a configuration (TOML, then `STRATA_<SERVICE>_*` environment
//!   overrides, then validation) with one [`config::ConfigError`];
//! - [`telemetry`]: logging and the shutdown signal; [`access_log`]: the access lines' buffered
//!   fast path;
//! - [`events`]: the change-event schema every tier agrees on, its two transports (an
//!   in-process broadcast and Redis Streams) and the subscription consumers read;
//! - [`tls`]: server TLS configurations from PEM files (optionally requiring client certificates);
//! - [`keys`]: the event stream and heat key names tiers agree on;
//! - [`backoff`]: capped exponential backoff with jitter; [`clock`]: Unix time;
//! - [`coalesce`]: concurrent requests for one key share one piece of work, which outlives them;
//! - [`conditional`]: `If-None-Match` and single `Range` requests, over header values;
//! - [`reply`]: plain-text replies and error answers (status, cache policy, the `Basic`
//!   challenge) every service sends alike;
//! - [`trace`]: OpenTelemetry traces over OTLP (off by default) and W3C trace context in and
//!   out: the [`span!`] macro, propagation helpers;
//! - [`spool`]: a file being downloaded, streamed to any number of followers as it arrives, none
//!   of them getting its last byte before it is declared good.
//!
//! The registry composes the transports with its durable outbox into its event bus; edges and
//! workers only subscribe.

pub mod access_log;
pub mod backoff;
pub mod bootstrap;
pub mod clock;
pub mod coalesce;
pub mod conditional;
pub mod config;
pub mod events;
pub mod keys;
pub mod reply;
pub mod spool;
pub mod telemetry;
pub mod tls;
pub mod trace;

//! The strata sync worker: background work as jobs that any number of worker processes share.
//!
//! Layers, bottom up: the [`job`] model and its [`envelope`]; [`handler`]s that run jobs; the
//! [`queue`] with two implementations of the same semantics — a Redis Streams consumer group
//! ([`queue::redis`]) and an in-process queue ([`queue::memory`]) for `strata up`; the
//! [`worker`] loop that drives either (bounded concurrency, retries with [`backoff`], dead
//! letters, idempotent completion, graceful drain); and the process around it: [`config`],
//! [`metrics`], [`http`] endpoints, [`server`] and the [`cli`]. Jobs come from the HTTP API,
//! and from the [`producers`]: the [`index_feed`] follower, [`webhooks`], [`heat`]-driven
//! refresh and [`schedule`]s (the periodic ones claim each period once, see [`ticks`]).
//!
//! Guarantees: delivery is at-least-once; completion is exactly-once per idempotency key
//! (the completion marker is set only if absent, atomically with the acknowledgement).

pub mod api;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod envelope;
pub mod handler;
pub mod handlers;
pub mod heat;
pub mod http;
pub mod index_feed;
pub mod job;
pub mod metrics;
pub mod producers;
pub mod queue;
pub mod registry;
pub mod schedule;
pub mod server;
pub mod ticks;
pub mod webhooks;
pub mod worker;

pub use envelope::{Envelope, JobId};
pub use handler::{Handlers, JobContext, JobError, JobHandler, Outcome};
pub use job::{Job, JobKind};
pub use queue::{Broker, JobQueue, NewJob, QueueError, QueueStats};
pub use worker::{Worker, WorkerReport};

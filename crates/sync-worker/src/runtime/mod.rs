//! The job runtime, independent of what the jobs do: the [`job`] model and the [`envelope`] it
//! travels in; [`handler`]s and the [`handler::Handlers`] registry that routes each kind to one;
//! the [`queue`] with two implementations of the same semantics — a Redis Streams consumer group
//! ([`queue::redis`]) and an in-process queue ([`queue::memory`]) for `strata up` — and its
//! configuration section ([`queue::JobsConfig`]); the [`worker`] loop that drives either (bounded
//! concurrency, retries spaced by [`backoff`], dead letters, idempotent completion, graceful
//! drain); and its [`metrics`].
//!
//! Nothing here uses another module of the crate: jobs, producers and the API build on it.
//!
//! Guarantees: delivery is at-least-once; completion is exactly-once per idempotency key (the
//! completion marker is set only if absent, atomically with the acknowledgement).

pub mod backoff;
pub mod envelope;
pub mod handler;
pub mod job;
pub mod metrics;
pub mod queue;
pub mod worker;

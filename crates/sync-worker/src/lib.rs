//! The strata sync worker: background work as jobs that any number of worker processes share.
//!
//! Modules by role; each uses only those listed before it (no cycles, doc links included):
//! - [`registry`]: the embedded central registry (the engine over the registry's storage) and
//!   the worker's own documents there, under `sync/`;
//! - [`runtime`]: jobs, their envelope, handlers, the queue (Redis or in-process), the worker
//!   loop with its retry backoff, and the runtime's metrics; it uses nothing else here;
//! - [`jobs`]: what the registry-backed jobs do (prefetch, refresh, scrub, retention) and the
//!   warm-up sets and pins they read;
//! - [`api`]: the HTTP layer: operational endpoints, the warm-up, pin and retention API, and the
//!   replies every endpoint uses;
//! - [`producers`]: where jobs come from besides the API: the index feed follower, webhooks,
//!   heat-driven refresh and schedules (the webhook endpoint answers with the API's replies);
//! - [`config`]: the whole configuration, made of the sections the modules above define;
//! - [`server`] and [`cli`]: the process around all of it.

pub mod api;
pub mod cli;
pub mod config;
pub mod jobs;
pub mod producers;
pub mod registry;
pub mod runtime;
pub mod server;

pub use runtime::envelope::{Envelope, JobId};
pub use runtime::handler::{Handlers, JobContext, JobError, JobHandler, Outcome};
pub use runtime::job::{Job, JobKind};
pub use runtime::queue::{Broker, JobQueue, NewJob, QueueError, QueueStats};
pub use runtime::worker::{Worker, WorkerReport};

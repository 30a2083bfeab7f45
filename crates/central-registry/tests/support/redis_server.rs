//! A real `redis-server` for the tests: the launcher lives in `strata_testkit::redis_server`;
//! this file keeps the `#[path = "support/redis_server.rs"] mod redis_server;` includes working.

// Each including test uses its own subset.
#[allow(unused_imports)]
pub use strata_testkit::redis_server::{RedisServer, free_port, skipped};

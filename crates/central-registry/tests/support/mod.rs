//! Test support shared by the storage integration tests: the conformance suite and a real
//! S3-protocol server.

pub mod cases_concurrency;
pub mod s3_server;
pub mod suite;

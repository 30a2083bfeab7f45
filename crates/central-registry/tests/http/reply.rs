//! Checking error answers (`src/http/reply.rs` writes them): the status, a plain-text reason,
//! the cache policy of `strata_core::protocol`, the Basic challenge on 401, and storage left
//! exactly as it was; failures are collected over a test and reported together.

use std::future::Future;

use strata_core::protocol::{CacheClass, private_cache_control};

use crate::support::http::{Reply, TEXT_PLAIN};
use crate::support::registry::TestRegistry;

/// What an error answer must look like; returns the problems found.
fn error_problems(r: &Reply, status: u16, reasons: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let body = r.text();
    if r.status != status {
        problems.push(format!(
            "status {} (want {status}), body {body:?}",
            r.status
        ));
    }
    if r.header("content-type") != Some(TEXT_PLAIN) {
        problems.push(format!(
            "content-type {:?} (want {TEXT_PLAIN:?})",
            r.header("content-type")
        ));
    }
    if body.trim().is_empty() {
        problems.push("empty body: no reason given".into());
    }
    for reason in reasons {
        if !body.contains(reason) {
            problems.push(format!("body {body:?} does not name {reason:?}"));
        }
    }
    // Policy: a definite "not here" may be cached briefly, any other refusal must not be.
    let class = if status == 404 {
        CacheClass::NotFound
    } else {
        CacheClass::UpstreamFailure
    };
    // A repository without anonymous read answers for its reader only (`Vary: Authorization`):
    // the same policy, `private` instead of `public`.
    let want = if r
        .header("vary")
        .is_some_and(|v| v.to_ascii_lowercase().contains("authorization"))
    {
        private_cache_control(class.cache_control())
    } else {
        class.cache_control().to_owned()
    };
    if r.header("cache-control") != Some(want.as_str()) {
        problems.push(format!(
            "cache-control {:?} (want {want:?})",
            r.header("cache-control"),
        ));
    }
    if status == 401
        && !r
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("Basic "))
    {
        problems.push(format!(
            "401 without a Basic WWW-Authenticate challenge: {:?}",
            r.header("www-authenticate")
        ));
    }
    problems
}

/// Failures collected over one test.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Runs one request that must be refused with `status` and a body naming every reason, and
    /// must change nothing in storage.
    pub async fn refused(
        &mut self,
        reg: &TestRegistry,
        label: &str,
        request: impl Future<Output = Reply>,
        status: u16,
        reasons: &[&str],
    ) {
        let before = reg.snapshot().await;
        let reply = request.await;
        for problem in error_problems(&reply, status, reasons) {
            self.0.push(format!("{label}: {problem}"));
        }
        let after = reg.snapshot().await;
        if after != before {
            self.0.push(format!(
                "{label}: storage changed:\n  before {before:?}\n  after  {after:?}"
            ));
        }
    }

    pub fn push(&mut self, failure: String) {
        self.0.push(failure);
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failure(s):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

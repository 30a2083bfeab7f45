//! Audit events: one JSON log line per write and per security event, apart from the access
//! log, for a log pipeline to keep (target `strata::audit`, message `audit`).
//!
//! Schema (the `fields` of the line; names follow Elastic Common Schema where one exists):
//!
//! | field | values |
//! |---|---|
//! | `event.action` | `publish`, `delete`, `quarantine`, `integrity_violation` |
//! | `event.outcome` | `success` or `failure` |
//! | `user.name` | the token's configured name, `anonymous`, `unauthenticated` (credentials missing, unknown or malformed), or `system` (scrubber, upstream verification); never a token |
//! | `repository` | the repository name |
//! | `module`, `version` | when known (a publish refused before its zip was read has none) |
//! | `reason` | why it failed, or what was found (quarantine, integrity) |
//!
//! Invariants: every publish and delete the engine is asked for writes exactly one line, refused
//! ones included (a write refused for its token is the "token use on write" an auditor looks
//! for); the HTTP front end adds one for a write refused before authentication; a secret never
//! reaches a line (principals are names, never credentials).

use crate::auth::Principal;
use crate::error::RegistryError;

/// The log target of audit lines.
pub const TARGET: &str = "strata::audit";

/// The `user.name` of what the registry does by itself.
pub const SYSTEM: &str = "system";

/// The `user.name` of a write refused for its credentials.
pub const UNAUTHENTICATED: &str = "unauthenticated";

/// What a write was about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The repository.
    pub repository: &'a str,
    /// The module, if known.
    pub module: Option<&'a str>,
    /// The version, if known.
    pub version: Option<&'a str>,
}

/// Logs `action` by `principal` on `subject` with its `result`.
pub fn write<T>(
    action: &'static str,
    principal: &Principal,
    subject: Subject<'_>,
    result: &Result<T, RegistryError>,
) {
    let (outcome, reason) = match result {
        Ok(_) => ("success", String::new()),
        Err(e) => ("failure", e.to_string()),
    };
    line(action, outcome, principal.label(), subject, &reason);
}

/// Logs a write refused before anyone was identified: credentials missing, unknown or
/// malformed (`user.name` = `unauthenticated`).
pub fn unauthenticated(action: &'static str, repository: &str, reason: &str) {
    let subject = Subject {
        repository,
        module: None,
        version: None,
    };
    line(action, "failure", UNAUTHENTICATED, subject, reason);
}

/// Logs a security event the registry found by itself (`user.name` = `system`).
pub fn found(action: &'static str, subject: Subject<'_>, reason: &str) {
    line(action, "success", SYSTEM, subject, reason);
}

fn line(action: &str, outcome: &str, user: &str, subject: Subject<'_>, reason: &str) {
    tracing::info!(
        target: "strata::audit",
        repository = subject.repository,
        event.action = action,
        event.outcome = outcome,
        user.name = user,
        module = subject.module.unwrap_or(""),
        version = subject.version.unwrap_or(""),
        reason = reason,
        "audit"
    );
}

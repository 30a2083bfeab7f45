//! Who may read what: the edge never serves a cached artifact of a repository to a client the
//! registry would refuse.
//!
//! The registry decides; the edge remembers its "yes" briefly. A client is identified by the
//! SHA-256 of its `Authorization` header (or as anonymous), and a decision is per
//! (client, repository), because read permission in the registry is per repository and the
//! registry checks it before it looks at the module. Before anything is served from a cache,
//! [`Access::admit`] needs a "yes" for the pair that is at most `auth.decision_ttl_ms` old;
//! without one it asks the registry with the client's own credentials (a `Stat` for a version,
//! a `List` otherwise: any answer but 401/403 means the registry let the caller in, including
//! NOT_FOUND). Concurrent askers for the same pair share one question. A refusal is never
//! remembered: the next request asks again, so a token that gains access works at once, and
//! one that loses it stops working within the decision TTL.
//!
//! Anonymous clients are one more principal: they get cached content of a repository only
//! after the registry answered an anonymous request for it (which it does only for
//! repositories with anonymous read), i.e. the fact "anonymous may read R" is cached like any
//! other decision.
//!
//! When no registry can be reached, a "yes" given within `auth.offline_grace_ms` still admits
//! the client (to cached content only: there is nothing else to serve). A pair the registry
//! never confirmed, or confirmed longer ago, is refused with the upstream error. Set the grace
//! to 0 to refuse everything the registry cannot confirm.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use sha2::{Digest, Sha256};
use strata_core::protocol::ErrorKind;

use crate::error::EdgeError;

/// The caller: anonymous, or the SHA-256 of its `Authorization` header (tokens are never kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal(Option<[u8; 32]>);

impl Principal {
    /// The principal for an `Authorization` header value.
    pub fn from_header(authorization: Option<&str>) -> Self {
        Self(authorization.map(|a| Sha256::digest(a.as_bytes()).into()))
    }

    /// Whether the caller sent no credentials.
    pub fn is_anonymous(&self) -> bool {
        self.0.is_none()
    }
}

/// How a client was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// The registry said yes within the decision TTL.
    Confirmed,
    /// No registry answered; the last yes is within the offline grace.
    Offline,
}

/// Cached authorization decisions.
#[derive(Debug, Clone)]
pub struct Access {
    decisions: Cache<(Principal, String), ()>,
    last_yes: Cache<(Principal, String), ()>,
}

impl Access {
    /// Decisions live `ttl`; a yes admits offline for `offline_grace`.
    pub fn new(ttl: Duration, offline_grace: Duration) -> Self {
        let decisions = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(ttl.max(Duration::from_millis(1)))
            .build();
        let last_yes = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(offline_grace.max(Duration::from_millis(1)))
            .build();
        Self {
            decisions,
            last_yes,
        }
    }

    /// Admits `principal` to repository `repo`, asking the registry through `probe` (run with
    /// the principal's credentials) unless a recent yes is cached.
    pub async fn admit<F, Fut>(
        &self,
        principal: &Principal,
        repo: &str,
        probe: F,
    ) -> Result<Admitted, EdgeError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), EdgeError>>,
    {
        let key = (principal.clone(), repo.to_owned());
        let last_yes = &self.last_yes;
        let asked = self
            .decisions
            .try_get_with(key.clone(), async move {
                let answer = match probe().await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e),
                };
                // The offline grace counts from the registry's answer, so the yes is recorded
                // when it is given (once per decision), not on every request it admits (a
                // cache write per request was ~40% of a warm hit's time in `Edge::serve`).
                if answer.is_ok() {
                    last_yes
                        .insert((principal.clone(), repo.to_owned()), ())
                        .await;
                }
                answer
            })
            .await;
        match asked {
            Ok(()) => Ok(Admitted::Confirmed),
            Err(e) => {
                let e: Arc<EdgeError> = e;
                if e.is_unreachable() && self.last_yes.get(&key).await.is_some() {
                    Ok(Admitted::Offline)
                } else {
                    Err((*e).clone())
                }
            }
        }
    }

    /// Whether a yes for the pair is cached (without asking).
    pub async fn knows(&self, principal: &Principal, repo: &str) -> bool {
        let key = (principal.clone(), repo.to_owned());
        self.decisions.get(&key).await.is_some()
    }

    /// Whether a yes for the pair is within the offline grace.
    pub async fn offline_ok(&self, principal: &Principal, repo: &str) -> bool {
        let key = (principal.clone(), repo.to_owned());
        self.last_yes.get(&key).await.is_some()
    }

    /// Records a yes: the registry just answered this principal's request for `repo`.
    pub async fn allow(&self, principal: &Principal, repo: &str) {
        let key = (principal.clone(), repo.to_owned());
        self.decisions.insert(key.clone(), ()).await;
        self.last_yes.insert(key, ()).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refusal() -> EdgeError {
        EdgeError::Registry {
            kind: ErrorKind::Unauthenticated,
            registry: "r".into(),
            message: "no".into(),
        }
    }

    fn unreachable() -> EdgeError {
        EdgeError::NoUpstream {
            what: "x".into(),
            reasons: "down".into(),
            timeout: false,
        }
    }

    #[tokio::test]
    async fn refusals_are_not_cached_and_yes_is() {
        let a = Access::new(Duration::from_secs(60), Duration::from_secs(60));
        let p = Principal::from_header(Some("Bearer t"));
        assert!(a.admit(&p, "r", || async { Err(refusal()) }).await.is_err());
        // Asked again (refusal not remembered), now yes.
        assert_eq!(
            a.admit(&p, "r", || async { Ok(()) }).await.unwrap(),
            Admitted::Confirmed
        );
        // Remembered: the probe is not run.
        assert_eq!(
            a.admit(&p, "r", || async { Err(refusal()) }).await.unwrap(),
            Admitted::Confirmed
        );
        // Another principal and another repository are separate.
        let anon = Principal::from_header(None);
        assert!(
            a.admit(&anon, "r", || async { Err(refusal()) })
                .await
                .is_err()
        );
        assert!(a.admit(&p, "s", || async { Err(refusal()) }).await.is_err());
    }

    #[tokio::test]
    async fn offline_grace_admits_only_previously_confirmed() {
        let a = Access::new(Duration::from_millis(1), Duration::from_secs(60));
        let p = Principal::from_header(None);
        let q = Principal::from_header(Some("Bearer other"));
        a.allow(&p, "r").await;
        a.decisions.invalidate_all();
        assert_eq!(
            a.admit(&p, "r", || async { Err(unreachable()) })
                .await
                .unwrap(),
            Admitted::Offline
        );
        assert!(
            a.admit(&q, "r", || async { Err(unreachable()) })
                .await
                .is_err()
        );
        // A refusal while reachable wins over the grace.
        assert!(a.admit(&p, "r", || async { Err(refusal()) }).await.is_err());
    }

    #[tokio::test]
    async fn the_offline_grace_counts_from_the_registrys_answer() {
        let a = Access::new(Duration::from_secs(60), Duration::from_millis(200));
        let p = Principal::from_header(Some("Bearer t"));
        // The registry says yes: within the grace, an outage still admits.
        assert_eq!(
            a.admit(&p, "r", || async { Ok(()) }).await.unwrap(),
            Admitted::Confirmed
        );
        assert!(a.offline_ok(&p, "r").await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Admitted from the cached decision (the probe does not run): that is not a new answer
        // from the registry, so it does not renew the grace.
        assert_eq!(
            a.admit(&p, "r", || async { Err(refusal()) }).await.unwrap(),
            Admitted::Confirmed
        );
        assert!(!a.offline_ok(&p, "r").await);
        a.decisions.invalidate_all();
        assert!(
            a.admit(&p, "r", || async { Err(unreachable()) })
                .await
                .is_err()
        );
        // A new answer renews it.
        a.admit(&p, "r", || async { Ok(()) }).await.unwrap();
        assert!(a.offline_ok(&p, "r").await);
    }
}

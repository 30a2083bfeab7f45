//! `grpc.health.v1` that follows readiness: the same checks as the HTTP `/readyz` (the object
//! store answers; Redis answers `PING` when events go to Redis), re-run every
//! [`CHECK_INTERVAL`], set for the whole server (`""`) and for `strata.registry.v1.Registry`.
//! Both turn NOT_SERVING when shutdown begins, so health-checking clients stop sending new
//! calls while open ones drain.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::RegistryService;
use super::proto::registry_server::RegistryServer;
use crate::http::AppState;
use crate::http::ops::readiness;

/// How often readiness is checked again.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Longest one check may take; a store or Redis slower than this counts as not ready.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The services whose status follows readiness: the server as a whole and the registry API.
const SERVICES: [&str; 2] = ["", <RegistryServer<RegistryService> as NamedService>::NAME];

/// Sets the health status from one readiness check now, then keeps it current in a task until
/// `shutdown`, when everything turns NOT_SERVING.
pub async fn follow_readiness(
    reporter: HealthReporter,
    state: Arc<AppState>,
    shutdown: CancellationToken,
) {
    let mut ready = check(&reporter, &state, None).await;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(CHECK_INTERVAL) => {}
                () = shutdown.cancelled() => break,
            }
            ready = check(&reporter, &state, Some(ready)).await;
        }
        set(&reporter, ServingStatus::NotServing).await;
    });
}

/// Runs one check, publishes its outcome and logs a change from `before`.
async fn check(reporter: &HealthReporter, state: &AppState, before: Option<bool>) -> bool {
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, readiness(state)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "readiness check took longer than {CHECK_TIMEOUT:?}"
        )),
    };
    let ready = outcome.is_ok();
    match (&outcome, before) {
        (Err(reason), Some(true) | None) => {
            tracing::warn!(%reason, "gRPC health: NOT_SERVING");
        }
        (Ok(()), Some(false)) => tracing::info!("gRPC health: SERVING again"),
        _ => {}
    }
    let status = if ready {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    set(reporter, status).await;
    ready
}

async fn set(reporter: &HealthReporter, status: ServingStatus) {
    for service in SERVICES {
        reporter.set_service_status(service, status).await;
    }
}

//! `/healthz`, `/readyz`, `/metrics`.
//!
//! Readiness means "this edge can serve what it has": the disk tier takes writes. It does
//! *not* require a healthy registry — an edge whose registries are all down still serves every
//! cached artifact (and stale metadata), which is exactly when taking it out of a load
//! balancer would hurt most. The body lists each registry's circuit state for operators.

use std::fmt::Write;
use std::sync::Arc;

use http::{HeaderValue, Response, StatusCode, header};
use strata_core::protocol::CacheClass;

use super::respond::{self, ResponseBody};
use crate::edge::Edge;

pub(super) fn handle(edge: &Arc<Edge>, path: &str) -> Response<ResponseBody> {
    match path {
        "/healthz" => respond::text(StatusCode::OK, CacheClass::UpstreamFailure, "ok"),
        "/readyz" => {
            let disk = edge.disk.is_usable();
            let mut body = String::new();
            let _ = writeln!(
                body,
                "disk cache: {}",
                if disk { "ok" } else { "NOT WRITABLE" }
            );
            for u in edge.pool.upstreams() {
                let state = if u.health.is_closed() {
                    "healthy"
                } else {
                    "circuit open"
                };
                let _ = writeln!(
                    body,
                    "registry {}: {state}, latency {:.1} ms",
                    u.name,
                    u.health.latency_ms()
                );
            }
            let status = if disk {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            respond::text(status, CacheClass::UpstreamFailure, body)
        }
        _ => {
            let mut r = respond::text(
                StatusCode::OK,
                CacheClass::UpstreamFailure,
                edge.metrics.encode(),
            );
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
    }
}

//! Traces across the tiers, exported to a real Jaeger (v1.75.0, OTLP/gRPC, memory storage):
//! the edge, the registry and the sync worker run as separate processes, the edge and the
//! registry configured by the standard `OTEL_*` variables, the worker by its file's `[tracing]`
//! table.
//!
//! - `go mod download` of an uncached module through the edge: the zip request is one trace —
//!   edge request → registry call (gRPC client) → the registry's gRPC server span → the fill,
//!   the upstream fetch, the checksum-database verification and the storage write — parented
//!   in that order, and the edge's access-log line of that request carries the trace id.
//! - A warm-up request to the worker: one trace covering the HTTP request, the jobs it
//!   enqueued (the trace context travels in the Redis Streams job entry) and their fetches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use strata_e2e::jaeger::{JaegerProcess, Span, Trace};
use strata_e2e::{Stack, binaries};
use strata_testkit::FixtureModule;

const WAIT: Duration = Duration::from_secs(60);

/// The one span of `trace` that `pick` selects, or a failure showing the trace.
fn one<'t>(trace: &'t Trace, what: &str, pick: impl Fn(&Span) -> bool) -> &'t Span {
    let found: Vec<&Span> = trace.spans.iter().filter(|s| pick(s)).collect();
    assert!(
        !found.is_empty(),
        "no {what} span in trace {}:\n{}",
        trace.trace_id,
        trace.tree()
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_per_request_across_edge_registry_and_worker() {
    let modules = vec![
        FixtureModule::new("example.com/trace/cold", "v1.0.0", &[]),
        FixtureModule::new("example.com/trace/warm", "v1.0.0", &[]),
    ];
    let Some(stack) = Stack::start("tracing", binaries!(), &modules).await else {
        return;
    };
    let jaeger = JaegerProcess::start(stack.dir()).await;
    let otel_env = |service: &str| {
        vec![
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
                jaeger.otlp_grpc_endpoint(),
            ),
            ("OTEL_SERVICE_NAME".to_owned(), service.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "200".to_owned()),
        ]
    };
    let mut registry_spec = stack.registry_spec("registry");
    registry_spec.env = otel_env("strata-registry");
    let registry = stack.start_registry_with(&registry_spec).await;
    let mut edge_spec = stack.edge_spec("edge", &[&registry]);
    edge_spec.env = otel_env("strata-edge");
    // HTTPS, so that the go command sends the CI token (the virtual repository at `/` is not
    // anonymous).
    edge_spec.tls = Some(stack.cert.clone());
    let edge = stack.start_edge(&edge_spec).await;
    // The worker takes its settings from the file (and exports on the SDK's default schedule).
    let worker = stack
        .start_worker(
            "worker",
            &format!(
                "\n[tracing]\notlp_endpoint = \"{}\"\nservice_name = \"strata-sync\"\nsampler = \"parentbased_always_on\"\n",
                jaeger.otlp_grpc_endpoint()
            ),
        )
        .await;

    // ---- a cold module through the edge ----------------------------------------------------
    let cold = &modules[0];
    let go = stack.go_client(&edge, "", "go");
    let session = go.session();
    let app = stack.dir().join("app");
    std::fs::create_dir_all(&app).unwrap();
    session
        .run(
            &app,
            &[
                "mod",
                "download",
                "-json",
                &format!("{}@{}", cold.path, cold.version),
            ],
        )
        .await
        .assert_ok();
    let zip_path = format!("/{}/@v/{}.zip", cold.path, cold.version);
    let trace = jaeger
        .wait_for_trace("strata-edge", WAIT, |t| {
            // The whole chain has arrived: the registry's storage write is in it too.
            t.spans
                .iter()
                .any(|s| s.tag("url.path") == Some(zip_path.as_str()))
                && t.spans
                    .iter()
                    .any(|s| s.operation_name.starts_with("storage put"))
                && t.spans.iter().any(|s| s.operation_name == "sumdb lookup")
        })
        .await;
    println!("the zip request's trace:\n{}", trace.tree());

    let request = one(&trace, "edge request", |s| {
        s.service_name == "strata-edge" && s.tag("url.path") == Some(zip_path.as_str())
    });
    assert_eq!(request.parent_span_id, None, "the edge request is the root");
    assert_eq!(request.tag("span.kind"), Some("server"));
    assert_eq!(request.tag("http.response.status_code"), Some("200"));
    let call = one(&trace, "registry call", |s| {
        s.service_name == "strata-edge" && s.operation_name.starts_with("registry ")
    });
    assert!(
        trace.has_ancestor(call, &request.span_id),
        "{}",
        trace.tree()
    );
    assert_eq!(call.tag("span.kind"), Some("client"));
    let grpc = one(&trace, "registry gRPC server", |s| {
        s.service_name == "strata-registry" && s.operation_name.ends_with("/Zip")
    });
    assert_eq!(
        grpc.parent_span_id.as_deref(),
        Some(call.span_id.as_str()),
        "the registry continues the edge's call (traceparent in gRPC metadata):\n{}",
        trace.tree()
    );
    for (what, pick) in [
        (
            "upstream zip fetch",
            Box::new(|s: &Span| {
                s.operation_name == "GET upstream"
                    && s.tag("url.full").is_some_and(|u| u.ends_with(".zip"))
            }) as Box<dyn Fn(&Span) -> bool>,
        ),
        (
            "checksum database verification",
            Box::new(|s: &Span| s.operation_name == "sumdb lookup"),
        ),
        (
            "storage write",
            Box::new(|s: &Span| s.operation_name.starts_with("storage put")),
        ),
    ] {
        let span = one(&trace, what, pick);
        assert_eq!(span.service_name, "strata-registry", "{what}");
        assert!(
            trace.has_ancestor(span, &grpc.span_id),
            "the {what} belongs to the registry's call:\n{}",
            trace.tree()
        );
    }

    // The edge's access-log line of that request carries the same trace id.
    let log = edge.service.log();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["target"] == "strata_edge::access" && v["fields"]["path"] == zip_path.as_str())
        .unwrap_or_else(|| panic!("no access line for {zip_path} in the edge's log:\n{log}"));
    assert_eq!(
        line["trace.id"].as_str(),
        Some(trace.trace_id.as_str()),
        "access line {line}"
    );
    assert_eq!(line["fields"]["client.address"], "127.0.0.1", "{line}");

    // ---- a warm-up through the worker ------------------------------------------------------
    let warmed = &modules[1];
    let progress = worker
        .warm("gocache", &format!("{}@{}\n", warmed.path, warmed.version))
        .await;
    println!("warm-up progress: {progress}");
    let trace = jaeger
        .wait_for_trace("strata-sync", WAIT, |t| {
            t.spans.iter().any(|s| s.operation_name == "POST /api/warm")
                && t.spans
                    .iter()
                    .any(|s| s.operation_name.starts_with("storage put"))
        })
        .await;
    println!("the warm-up's trace:\n{}", trace.tree());
    let post = one(&trace, "warm-up request", |s| {
        s.operation_name == "POST /api/warm"
    });
    assert_eq!(post.parent_span_id, None, "{}", trace.tree());
    let jobs: Vec<&Span> = trace
        .spans
        .iter()
        .filter(|s| s.operation_name.starts_with("job "))
        .collect();
    assert!(!jobs.is_empty(), "no job span:\n{}", trace.tree());
    for job in &jobs {
        assert!(
            trace.has_ancestor(job, &post.span_id),
            "job span {} is not under the request:\n{}",
            job.operation_name,
            trace.tree()
        );
    }
    let fetch = one(&trace, "upstream fetch of the warmed module", |s| {
        s.operation_name == "GET upstream"
            && s.tag("url.full")
                .is_some_and(|u| u.contains(&warmed.path) && u.ends_with(".zip"))
    });
    assert!(
        jobs.iter().any(|j| trace.has_ancestor(fetch, &j.span_id)),
        "the fetch belongs to a job:\n{}",
        trace.tree()
    );
    assert!(
        trace.services().iter().all(|s| s == "strata-sync"),
        "{:?}",
        trace.services()
    );
}

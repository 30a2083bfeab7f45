//! The Jaeger harness on its own, without strata's services: a real Jaeger v2 (built by
//! scripts/ensure-deps.sh) receives a root span and its child as OTLP/JSON on its OTLP/HTTP
//! endpoint, and `wait_for_trace` reads them back from the query API with their service,
//! operation names, tags, parent link (links into another trace are not parents) and a trace id
//! whose high half is zero (which Jaeger writes as 16 hex digits).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use strata_e2e::jaeger::JaegerProcess;

const SERVICE: &str = "jaeger-harness-smoke";
const TRACE_ID: &str = "00000000000000004bf92f3577b34da6";
const ROOT_ID: &str = "00f067aa0ba902b7";
const CHILD_ID: &str = "53995c3f42cd8ad8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_span_sent_over_otlp_http_comes_back_from_the_query_api() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let jaeger = JaegerProcess::start(dir.path()).await;
    eprintln!("jaeger ready after {:?}", started.elapsed());

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let span = |id: &str, parent: &str, name: &str, kind: u8, start: u128, end: u128| {
        serde_json::json!({
            "traceId": TRACE_ID,
            "spanId": id,
            "parentSpanId": parent,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": start.to_string(),
            "endTimeUnixNano": end.to_string(),
            "attributes": [
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "answer", "value": {"intValue": "42"}}
            ],
            // A link into another trace: a FOLLOWS_FROM reference in Jaeger, but no parent.
            "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331"}]
        })
    };
    let body = serde_json::json!({
        "resourceSpans": [{
            "resource": {"attributes": [
                {"key": "service.name", "value": {"stringValue": SERVICE}},
                {"key": "service.version", "value": {"stringValue": "1.2.3"}}
            ]},
            "scopeSpans": [{
                "scope": {"name": "strata-e2e"},
                "spans": [
                    // SPAN_KIND_SERVER, 5 ms; its child SPAN_KIND_CLIENT, 2 ms.
                    span(ROOT_ID, "", "GET /smoke", 2, now, now + 5_000_000),
                    span(CHILD_ID, ROOT_ID, "fetch upstream", 3, now + 1_000_000, now + 3_000_000)
                ]
            }]
        }]
    });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .post(jaeger.otlp_http_traces_url())
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "POST /v1/traces: {status}: {text}");
    let sent = Instant::now();

    let trace = jaeger
        .wait_for_trace(SERVICE, Duration::from_secs(20), |t| {
            t.trace_id == TRACE_ID && t.spans.len() == 2
        })
        .await;
    eprintln!(
        "queryable {:?} after the OTLP answer:\n{}",
        sent.elapsed(),
        trace.tree()
    );

    assert_eq!(trace.services().into_iter().collect::<Vec<_>>(), [SERVICE]);
    let root = trace.span(ROOT_ID).expect("the root span");
    assert_eq!(root.operation_name, "GET /smoke");
    assert_eq!(root.service_name, SERVICE);
    assert_eq!(root.trace_id, TRACE_ID);
    assert_eq!(root.parent_span_id, None);
    assert_eq!(root.tag("span.kind"), Some("server"));
    assert_eq!(root.tag("http.request.method"), Some("GET"));
    assert_eq!(root.tag("answer"), Some("42"));
    assert_eq!(root.tag("otel.scope.name"), Some("strata-e2e"));
    assert_eq!(
        root.process_tags.get("service.version").map(String::as_str),
        Some("1.2.3")
    );
    assert_eq!(root.start_time_us, (now / 1000) as u64);
    assert_eq!(root.duration_us, 5000);

    let child = trace.spans_named("fetch upstream");
    assert_eq!(child.len(), 1);
    let child = child[0];
    assert_eq!(child.span_id, CHILD_ID);
    assert_eq!(child.tag("span.kind"), Some("client"));
    assert_eq!(
        trace.parent_of(child).map(|p| p.span_id.as_str()),
        Some(ROOT_ID)
    );
    assert!(trace.has_ancestor(child, ROOT_ID));
    assert_eq!(
        trace.tree(),
        format!("{SERVICE}: GET /smoke [5000 µs]\n  {SERVICE}: fetch upstream [2000 µs]\n")
    );
    assert_eq!(jaeger.services().await.unwrap(), [SERVICE]);
    assert_eq!(
        jaeger.trace(TRACE_ID).await.unwrap().map(|t| t.spans.len()),
        Some(2)
    );
    assert_eq!(jaeger.trace("1").await.unwrap(), None);
}

/// On timeout `wait_for_trace` names the service, the traces it saw and the services Jaeger knows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(
    expected = "no trace of service \"nobody\" matched within 0.5 s; 0 trace(s) seen:\nservices Jaeger knows: []"
)]
async fn waiting_for_a_trace_that_never_comes_fails_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let jaeger = JaegerProcess::start(dir.path()).await;
    jaeger
        .wait_for_trace("nobody", Duration::from_millis(500), |_| true)
        .await;
}

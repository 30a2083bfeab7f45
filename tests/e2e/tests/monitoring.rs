//! The monitoring configuration against a live stack: a real Prometheus scrapes the registry,
//! the edge and the sync worker (separate processes on MinIO and Redis) every second and
//! evaluates `deploy/prometheus/*.rules.yml`, while scripted load runs — cold and warm fetches
//! through the edge, a publish, a failed fetch (the upstream answers 503: 502 at the edge and at
//! the registry), a warm-up job on the worker. Afterwards every recording rule and every query of
//! the Grafana dashboards (`grafana/dashboards/*.json`, panels and variables) returns at least
//! one series, every alert expression evaluates without error, and every `strata_*` metric the
//! rule files and dashboards name is one a service declares on its `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use strata_e2e::prometheus::{PrometheusProcess, ScrapeJob, rules_dir};
use strata_e2e::{CI_TOKEN, OUTSIDER_TOKEN, Stack, binaries, get};
use strata_testkit::index_feed::FeedServer;
use strata_testkit::{FixtureModule, Tamper};

/// The `record:` names of a rule file, and the `expr:` of each `alert:`.
fn rules(text: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut records = Vec::new();
    let mut alerts = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_start().trim_start_matches("- ");
        if let Some(name) = line.strip_prefix("record: ") {
            records.push(name.trim().to_owned());
        }
        if let Some(name) = line.strip_prefix("alert: ") {
            // The expression: a one-line `expr: …` or an indented block after `expr: |`.
            let expr_line = lines[i + 1].trim();
            let expr = if expr_line == "expr: |" {
                let indent = lines[i + 2].len() - lines[i + 2].trim_start().len();
                lines[i + 2..]
                    .iter()
                    .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
                    .map(|l| l.trim())
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                expr_line.strip_prefix("expr: ").unwrap().to_owned()
            };
            alerts.push((name.trim().to_owned(), expr));
        }
    }
    (records, alerts)
}

/// The metric names a `/metrics` text declares (`# TYPE name kind`), with the sample names
/// each kind adds (`_total`; `_bucket`, `_count`, `_sum`).
fn declared(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        names.insert(name.to_owned());
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_count", "_sum"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {}
        }
    }
    names
}

/// The `fields` of the JSON log lines in `log` whose target is `target`.
fn log_fields(log: &str, target: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["target"] == target)
        .map(|l| l["fields"].clone())
        .collect()
}

/// Every `strata_…` metric name in a rule file (recording-rule names are `strata:…`).
fn referenced(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("strata_") {
        let start = i + at;
        let boundary = start == 0
            || !(bytes[start - 1].is_ascii_alphanumeric()
                || bytes[start - 1] == b'_'
                || bytes[start - 1] == b':');
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(text.len() - start);
        if boundary {
            names.insert(text[start..end].to_owned());
        }
        i = end;
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_recording_rule_has_series_from_a_live_stack() {
    let modules = vec![
        FixtureModule::new("example.com/mon/cold", "v1.0.0", &[]),
        FixtureModule::new("example.com/mon/warmed", "v1.0.0", &[]),
        FixtureModule::new("example.com/mon/failing", "v1.0.0", &[]),
        FixtureModule::new("example.com/mon/direct", "v1.0.0", &[]),
        FixtureModule::new("example.com/mon/tampered", "v1.0.0", &[]),
    ];
    let Some(stack) = Stack::start("monitoring", binaries!(), &modules).await else {
        return;
    };
    let registry = stack.start_registry("registry").await;
    let edge = stack
        .start_edge(&stack.edge_spec("edge", &[&registry]))
        .await;
    // An index feed listing one module, so that the worker's feed metrics exist.
    let feed = FeedServer::start().await;
    feed.push(&modules[1].path, "v1.0.0", "2026-01-01T00:00:00.000001Z");
    let worker = stack
        .start_worker(
            "worker",
            &format!(
                "\n[[feeds]]\nname = \"fixture\"\nurl = \"{}\"\nrepository = \"gocache\"\npoll_interval_ms = 1000\n",
                feed.url()
            ),
        )
        .await;
    let dir = rules_dir();
    let rule_files = [
        dir.join("recording.rules.yml"),
        dir.join("alerts.rules.yml"),
    ];
    let prometheus = PrometheusProcess::start(
        stack.dir(),
        &[
            ScrapeJob {
                name: "strata-registry".into(),
                targets: vec![registry.http],
            },
            ScrapeJob {
                name: "strata-edge".into(),
                targets: vec![edge.addr],
            },
            ScrapeJob {
                name: "strata-sync".into(),
                targets: vec![worker.http],
            },
        ],
        &rule_files,
    )
    .await;
    let up = prometheus
        .wait_for_series("count(up == 1) == 3", Duration::from_secs(30))
        .await;
    assert!(
        up.as_ref().is_ok_and(|s| !s.is_empty()),
        "all three targets up: {up:?}"
    );

    // The load.
    let client = reqwest::Client::new();
    let cold = &modules[0];
    for ext in ["info", "mod", "zip"] {
        let url = edge.url(&format!("{}/@v/v1.0.0.{ext}", cold.path));
        let (status, _, _) = get(&client, &url, Some(CI_TOKEN)).await;
        assert_eq!(status, 200, "cold {url}");
        let (status, _, _) = get(&client, &url, Some(CI_TOKEN)).await;
        assert_eq!(status, 200, "warm {url}");
    }
    let list = edge.url(&format!("{}/@v/list", cold.path));
    let (status, _, _) = get(&client, &list, Some(CI_TOKEN)).await;
    assert_eq!(status, 200, "{list}");
    let published = FixtureModule::new("example.com/private/mon", "v1.0.0", &[]);
    registry.publish("private", published.zip()).await;
    let read_back = format!(
        "{}/go/private/{}/@v/v1.0.0.zip",
        registry.http_url(),
        published.path
    );
    let (status, _, body) = get(&client, &read_back, Some(CI_TOKEN)).await;
    assert_eq!((status, body), (200, published.zip()), "{read_back}");
    // A token without deploy permission tries to publish: refused, and audited.
    let refused = client
        .put(format!("{}/api/repos/private/upload", registry.http_url()))
        .bearer_auth(OUTSIDER_TOKEN)
        .body(FixtureModule::new("example.com/private/mon", "v1.0.1", &[]).zip())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);
    // And an unknown token.
    let unknown = client
        .put(format!("{}/api/repos/private/upload", registry.http_url()))
        .bearer_auth("strata_e2e-not-a-token")
        .body(FixtureModule::new("example.com/private/mon", "v1.0.2", &[]).zip())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 401);
    // A delete by a token that may publish but not delete: refused, and audited.
    let delete = client
        .delete(format!(
            "{}/api/go/private/{}/@v/v1.0.0.zip",
            registry.http_url(),
            published.path
        ))
        .bearer_auth(CI_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status().as_u16(), 403);
    stack.upstream.set_fail_status(Some(503));
    let failing = &modules[2];
    let (status, _, _) = get(
        &client,
        &edge.url(&format!("{}/@v/v1.0.0.info", failing.path)),
        Some(CI_TOKEN),
    )
    .await;
    assert!(
        status >= 500,
        "a failing upstream is a 5xx at the edge: {status}"
    );
    let (status, _, _) = get(
        &client,
        &format!(
            "{}/go/gocache/{}/@v/v1.0.0.info",
            registry.http_url(),
            modules[3].path
        ),
        Some(CI_TOKEN),
    )
    .await;
    assert!(
        status >= 500,
        "a failing upstream is a 5xx at the registry: {status}"
    );
    // A 503 from the upstream is counted as overload, a class proxy benchmarks count.
    let overloaded = registry.metrics().await.sum(
        "strata_registry_upstream_fetches_total",
        &[("repository", "gocache"), ("outcome", "overloaded")],
    );
    assert!(
        overloaded >= 1.0,
        "upstream 503s counted as overloaded: {overloaded}"
    );
    stack.upstream.set_fail_status(None);
    // An upstream serving a zip whose hash the checksum database does not vouch for.
    stack
        .upstream
        .set_tampered(&modules[4].path, Some(Tamper::Content));
    let tampered = format!(
        "{}/go/gocache/{}/@v/v1.0.0.zip",
        registry.http_url(),
        modules[4].path
    );
    let (status, _, _) = get(&client, &tampered, Some(CI_TOKEN)).await;
    assert!(status >= 400, "a tampered zip is refused: {status}");
    let progress = worker
        .warm("gocache", &format!("{}@v1.0.0\n", modules[1].path))
        .await;
    assert_eq!(progress["completed"], 1, "{progress:#}");

    // Every recording rule has series once the rules have been evaluated over the load.
    let recording = std::fs::read_to_string(&rule_files[0]).unwrap();
    let alerting = std::fs::read_to_string(&rule_files[1]).unwrap();
    let (records, _) = rules(&recording);
    let (_, alerts) = rules(&alerting);
    assert!(
        records.len() >= 10 && alerts.len() >= 10,
        "{records:?} {alerts:?}"
    );
    let mut empty = Vec::new();
    for record in &records {
        match prometheus
            .wait_for_series(record, Duration::from_secs(30))
            .await
        {
            Ok(series) if !series.is_empty() => {
                eprintln!("{record}: {} series", series.len());
            }
            other => empty.push(format!("{record}: {other:?}")),
        }
    }
    assert!(
        empty.is_empty(),
        "recording rules without series:\n{}",
        empty.join("\n")
    );
    // Alert expressions are valid PromQL against this data (most are rightly empty).
    for (alert, expr) in &alerts {
        prometheus
            .query(expr)
            .await
            .unwrap_or_else(|e| panic!("{alert}: {e}"));
    }

    // The registry's audit log: one line per publish attempt, with the token's name (never the
    // token) and the outcome.
    let audit = log_fields(&registry.service.log(), "strata::audit");
    let publishes: Vec<(String, String, String, String, String)> = audit
        .iter()
        .filter(|f| f["event.action"] == "publish")
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (
                s("event.outcome"),
                s("user.name"),
                s("repository"),
                s("module"),
                s("version"),
            )
        })
        .collect();
    assert_eq!(
        publishes,
        [
            (
                "success".to_owned(),
                "ci".to_owned(),
                "private".to_owned(),
                "example.com/private/mon".to_owned(),
                "v1.0.0".to_owned()
            ),
            (
                "failure".to_owned(),
                "outsider".to_owned(),
                "private".to_owned(),
                String::new(),
                String::new()
            ),
            (
                "failure".to_owned(),
                "unauthenticated".to_owned(),
                "private".to_owned(),
                String::new(),
                String::new()
            ),
        ],
        "{audit:#?}"
    );
    assert!(audit.iter().all(|f| f["reason"].is_string()), "{audit:#?}");
    let deletes: Vec<_> = audit
        .iter()
        .filter(|f| f["event.action"] == "delete")
        .collect();
    assert_eq!(deletes.len(), 1, "{audit:#?}");
    assert_eq!(
        (
            &deletes[0]["event.outcome"],
            &deletes[0]["user.name"],
            &deletes[0]["repository"],
            &deletes[0]["module"],
            &deletes[0]["version"]
        ),
        (
            &serde_json::json!("failure"),
            &serde_json::json!("ci"),
            &serde_json::json!("private"),
            &serde_json::json!(published.path),
            &serde_json::json!("v1.0.0")
        ),
        "{audit:#?}"
    );
    let violation = audit
        .iter()
        .find(|f| f["event.action"] == "integrity_violation")
        .unwrap_or_else(|| panic!("no integrity_violation audit line: {audit:#?}"));
    assert_eq!(
        (
            &violation["user.name"],
            &violation["repository"],
            &violation["module"],
            &violation["version"]
        ),
        (
            &serde_json::json!("system"),
            &serde_json::json!("gocache"),
            &serde_json::json!(modules[4].path),
            &serde_json::json!("v1.0.0")
        ),
        "{violation:#}"
    );
    assert!(
        !violation["reason"].as_str().unwrap().is_empty(),
        "{violation:#}"
    );
    // And the alert for it fires in the real Prometheus.
    let firing = prometheus
        .wait_for_series(
            r#"ALERTS{alertname="StrataIntegrityViolation",alertstate="firing",repository="gocache"}"#,
            Duration::from_secs(30),
        )
        .await;
    assert!(
        firing.as_ref().is_ok_and(|s| !s.is_empty()),
        "StrataIntegrityViolation did not fire: {firing:?}"
    );
    // The registry's access log line of the read-back.
    let access = log_fields(&registry.service.log(), "strata::access");
    let read_back_path = format!("/go/private/{}/@v/v1.0.0.zip", published.path);
    let line = access
        .iter()
        .find(|f| f["path"] == read_back_path.as_str())
        .unwrap_or_else(|| panic!("no access line for {read_back_path}: {access:#?}"));
    assert_eq!(
        (
            &line["method"],
            &line["repository"],
            &line["module"],
            &line["version"],
            &line["kind"],
            &line["status"],
            &line["bytes"],
            &line["user.name"]
        ),
        (
            &serde_json::json!("GET"),
            &serde_json::json!("private"),
            &serde_json::json!(published.path),
            &serde_json::json!("v1.0.0"),
            &serde_json::json!("zip"),
            &serde_json::json!(200),
            &serde_json::json!(published.zip().len()),
            &serde_json::json!("ci")
        ),
        "{line:#}"
    );
    assert!(
        access
            .iter()
            .any(|f| f["user.name"] == "unauthenticated" && f["status"] == 401),
        "the unknown token's request is logged as unauthenticated: {access:#?}"
    );
    let log = registry.service.log();
    assert!(
        !log.contains(CI_TOKEN)
            && !log.contains(OUTSIDER_TOKEN)
            && !log.contains("strata_e2e-not-a-token"),
        "a token reached the registry's log"
    );

    // Every dashboard panel query and variable query returns series, with every variable at
    // "All" and `$__rate_interval` at one minute.
    let grafana = rules_dir().join("../../grafana/dashboards");
    let mut boards: Vec<_> = std::fs::read_dir(&grafana)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    boards.sort();
    assert!(boards.len() >= 4, "{boards:?}");
    let mut dashboard_text = String::new();
    let mut no_series = Vec::new();
    let mut queries = 0;
    for board in &boards {
        let text = std::fs::read_to_string(board).unwrap();
        dashboard_text.push_str(&text);
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut exprs: Vec<(String, String)> = Vec::new();
        for panel in json["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                exprs.push((
                    panel["title"].as_str().unwrap().to_owned(),
                    target["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
        for variable in json["templating"]["list"].as_array().unwrap() {
            // label_values(metric{…}, label) → count by (label) (metric{…})
            if let Some(query) = variable["query"]["query"].as_str()
                && let Some(args) = query
                    .strip_prefix("label_values(")
                    .and_then(|q| q.strip_suffix(')'))
                && let Some((metric, label)) = args.rsplit_once(',')
            {
                exprs.push((
                    format!("variable {}", variable["name"]),
                    format!("count by ({}) ({metric})", label.trim()),
                ));
            }
        }
        for (title, expr) in exprs {
            queries += 1;
            let promql = expr
                .replace("$__rate_interval", "1m")
                .replace("$namespace", ".*")
                .replace("$region", ".*")
                .replace("$instance", ".*");
            match prometheus
                .wait_for_series(&promql, Duration::from_secs(20))
                .await
            {
                Ok(series) if !series.is_empty() => {}
                other => no_series.push(format!(
                    "{} / {title}: {promql}: {other:?}",
                    board.file_name().unwrap().to_string_lossy()
                )),
            }
        }
    }
    assert!(
        no_series.is_empty(),
        "dashboard queries without series:\n{}",
        no_series.join("\n")
    );

    // Nothing in the rule files or dashboards names a metric no service declares.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !worker
        .metrics_text()
        .await
        .contains("strata_sync_index_lag_seconds{")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the worker never read the index feed: {:?}",
            feed.asked()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut exported = declared(&registry.metrics_text().await);
    exported.extend(declared(&edge.metrics_text().await));
    exported.extend(declared(&worker.metrics_text().await));
    let mut named = referenced(&recording);
    named.extend(referenced(&alerting));
    named.extend(referenced(&dashboard_text));
    let unknown: Vec<&String> = named.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "metrics the rules name that no service declares: {unknown:?}"
    );
    eprintln!(
        "{} recording rules with series, {} alert expressions valid, {} dashboard queries with series, {} metric names all declared",
        records.len(),
        alerts.len(),
        queries,
        named.len()
    );
}

#!/usr/bin/env python3
"""Writes strata's Grafana dashboards (grafana/dashboards/*.json) from the panel lists below.

Dashboards as code: edit this file, run `python3 grafana/generate.py`, commit both.
`make monitoring-check` fails when the JSON is not what this file generates, checks the
dashboards' structure, and the end-to-end test tests/e2e/tests/monitoring.rs runs every panel
query against a real Prometheus scraping a live stack.

Every query filters by the dashboard's template variables with regex matchers
(`namespace=~"$namespace"`), so "All" (`.*`) works, and uses `$__rate_interval` for rates.
"""
import json
import pathlib
import sys

DS = {"type": "prometheus", "uid": "${datasource}"}
OUT = pathlib.Path(__file__).resolve().parent / "dashboards"


def sel(*labels):
    """The label matchers of the dashboard variables named."""
    return ",".join(f'{label}=~"${label}"' for label in labels)


def var(name, metric, label, *, parent=()):
    matchers = "{" + sel(*parent) + "}" if parent else ""
    query = f"label_values({metric}{matchers}, {label})"
    return {
        "name": name,
        "label": name.capitalize(),
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"{name}-variable"},
        "definition": query,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "refresh": 2,
        "sort": 1,
    }


def datasource_var():
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "refresh": 1,
    }


def panel(title, question, targets, unit="short", kind="timeseries", width=12, height=8):
    """`targets`: (expr, legend) pairs. `question`: what the panel answers (its description).
    A `table` panel runs its queries as instant queries in table format."""
    extra = {"instant": True, "range": False, "format": "table"} if kind == "table" else {}
    return {
        "type": kind,
        "title": title,
        "description": question,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "datasource": DS, **extra}
            for i, (expr, legend) in enumerate(targets)
        ],
        "_size": (width, height),
    }


def dashboard(uid, title, description, variables, panels):
    x = y = row_height = 0
    laid_out = []
    for i, p in enumerate(panels, start=1):
        w, h = p.pop("_size")
        if x + w > 24:
            x, y = 0, y + row_height
            row_height = 0
        p["id"] = i
        p["gridPos"] = {"x": x, "y": y, "w": w, "h": h}
        x += w
        row_height = max(row_height, h)
        laid_out.append(p)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["strata"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_var(), *variables]},
        "annotations": {"list": []},
        "links": [{"title": "strata", "type": "dashboards", "tags": ["strata"], "asDropdown": True}],
        "panels": laid_out,
    }


RI = "$__rate_interval"
E = sel("namespace", "region", "instance")
R = sel("namespace", "instance")
W = sel("namespace", "instance")

fleet = dashboard(
    "strata-fleet",
    "strata / Fleet overview",
    "Every region's edge, the registry and the sync workers at a glance.",
    [var("namespace", "strata_edge_requests_total", "namespace")],
    [
        panel("GOPROXY requests by region", "How much traffic does each region serve?",
              [(f'sum by (region) (rate(strata_edge_requests_total{{namespace=~"$namespace"}}[{RI}]))', "{{region}}")], "reqps"),
        panel("Edge availability by region", "What share of answers is not a 5xx (SLO 99.9 %)?",
              [('1 - strata:edge_request_errors:ratio_rate5m{namespace=~"$namespace"}', "{{region}}")], "percentunit"),
        panel("Cache hit ratio by region", "How often does an edge answer from its own memory or disk?",
              [('strata:edge_cache_hit:ratio_rate15m{namespace=~"$namespace"}', "{{region}}")], "percentunit"),
        panel("Edge p95 latency by region", "How long do 95 % of clients wait for the answer to start?",
              [(f'histogram_quantile(0.95, sum by (region, le) (rate(strata_edge_request_duration_seconds_bucket{{namespace=~"$namespace"}}[{RI}])))', "{{region}}")], "s"),
        panel("Registry 5xx ratio", "Is the central registry failing requests?",
              [("strata:registry_http_errors:ratio_rate5m", "{{namespace}}")], "percentunit"),
        panel("Registries reachable from each region", "Which edges have an open circuit to which registry (1 = reachable)?",
              [('min by (region, registry) (strata_edge_registry_healthy{namespace=~"$namespace"})', "{{region}} → {{registry}}")], "short"),
        panel("Sync queue depth", "Are warm-ups and syncs keeping up?",
              [("sum(strata_sync_queue_depth)", "waiting"), ("sum(strata_sync_jobs_pending)", "running")], "short"),
        panel("Dead letters", "How many jobs failed for good?",
              [("sum(strata_sync_dead_letters)", "dead letters")], "short", kind="stat", width=6),
        panel("Integrity violations (1 h)", "Did any upstream serve bytes the checksum database does not vouch for?",
              [("sum(increase(strata_registry_integrity_violations_total[1h]))", "violations")], "short", kind="stat", width=6),
        panel("Index lag by feed", "How far behind its index feed is each follower?",
              [("max by (feed) (strata_sync_index_lag_seconds)", "{{feed}}")], "s"),
    ],
)

edge = dashboard(
    "strata-edge",
    "strata / Edge",
    "One region's GOPROXY edges: traffic, cache tiers, latency, fills, registry circuits, change events.",
    [
        var("namespace", "strata_edge_requests_total", "namespace"),
        var("region", "strata_edge_requests_total", "region", parent=("namespace",)),
        var("instance", "strata_edge_requests_total", "instance", parent=("namespace", "region")),
    ],
    [
        panel("Requests by kind", "What are clients asking for (list, info, mod, zip, sumdb)?",
              [(f"sum by (kind) (rate(strata_edge_requests_total{{{E}}}[{RI}]))", "{{kind}}")], "reqps"),
        panel("Responses by status", "Which statuses do clients get?",
              [(f"sum by (status) (rate(strata_edge_requests_total{{{E}}}[{RI}]))", "{{status}}")], "reqps"),
        panel("Hit ratio per tier", "Of the lookups each tier sees, how many does it answer?",
              [(f'sum by (tier) (rate(strata_edge_cache_lookups_total{{{E},result="hit"}}[{RI}])) / sum by (tier) (rate(strata_edge_cache_lookups_total{{{E}}}[{RI}]))', "{{tier}}")], "percentunit"),
        panel("Cache lookups by tier and result", "Hits, misses and stale answers per tier.",
              [(f"sum by (tier, result) (rate(strata_edge_cache_lookups_total{{{E}}}[{RI}]))", "{{tier}} {{result}}")], "ops"),
        panel("Latency p50 / p95 / p99 by kind", "How long until the answer starts, per request kind?",
              [(f"histogram_quantile({q}, sum by (kind, le) (rate(strata_edge_request_duration_seconds_bucket{{{E}}}[{RI}])))", f"{{{{kind}}}} p{int(q * 100)}")
               for q in (0.5, 0.95, 0.99)], "s", width=24),
        panel("Bytes served by kind", "How much does the edge send?",
              [(f"sum by (kind) (rate(strata_edge_served_bytes_total{{{E}}}[{RI}]))", "{{kind}}")], "Bps"),
        panel("Zip fills", "Cold zips downloaded into the disk tier, by outcome, and how many run now.",
              [(f"sum by (outcome) (rate(strata_edge_fills_total{{{E}}}[{RI}]))", "{{outcome}}"),
               (f"sum(strata_edge_fills_in_flight{{{E}}})", "in flight")], "short"),
        panel("Zip fill duration p95", "How long does a cold zip take to download and verify into the disk tier?",
              [(f"histogram_quantile(0.95, sum by (outcome, le) (rate(strata_edge_fill_duration_seconds_bucket{{{E}}}[{RI}])))", "{{outcome}}")], "s"),
        panel("Registry circuits", "Is each registry reachable from each edge (1 = closed circuit)?",
              [(f"strata_edge_registry_healthy{{{E}}}", "{{instance}} → {{registry}}")], "short"),
        panel("Registry calls by outcome", "How do calls to the registries end?",
              [(f"sum by (registry, outcome) (rate(strata_edge_upstream_calls_total{{{E}}}[{RI}]))", "{{registry}} {{outcome}}")], "ops"),
        panel("Registry call latency p95", "How fast does each registry answer the edge?",
              [(f"histogram_quantile(0.95, sum by (registry, le) (rate(strata_edge_upstream_duration_seconds_bucket{{{E}}}[{RI}])))", "{{registry}}")], "s"),
        panel("Change-event lag", "How late did the last publish/delete/quarantine event arrive?",
              [(f"max by (instance) (strata_edge_event_lag_seconds{{{E}}})", "{{instance}}")], "s"),
        panel("Change events applied", "Which changes reach this region?",
              [(f"sum by (kind) (rate(strata_edge_events_total{{{E}}}[{RI}]))", "{{kind}}")], "ops"),
        panel("Disk tier size", "How full is each edge's disk tier?",
              [(f"strata_edge_disk_bytes{{{E}}}", "{{instance}}")], "bytes"),
        panel("Evictions", "Entries evicted for space (disk) or invalidated by events (event).",
              [(f"sum by (tier) (rate(strata_edge_evictions_total{{{E}}}[{RI}]))", "{{tier}}")], "ops"),
    ],
)

registry = dashboard(
    "strata-registry",
    "strata / Registry",
    "The central registry: HTTP answers, publishes, upstream fetches and verification, storage, the event outbox.",
    [
        var("namespace", "strata_registry_http_requests_total", "namespace"),
        var("instance", "strata_registry_http_requests_total", "instance", parent=("namespace",)),
    ],
    [
        panel("HTTP requests by endpoint", "What is the registry asked for over HTTP?",
              [(f"sum by (endpoint) (rate(strata_registry_http_requests_total{{{R}}}[{RI}]))", "{{endpoint}}")], "reqps"),
        panel("HTTP responses by status", "Which statuses does it answer?",
              [(f"sum by (status) (rate(strata_registry_http_requests_total{{{R}}}[{RI}]))", "{{status}}")], "reqps"),
        panel("HTTP latency p95 by endpoint", "How long until its answers start?",
              [(f"histogram_quantile(0.95, sum by (endpoint, le) (rate(strata_registry_http_request_duration_seconds_bucket{{{R}}}[{RI}])))", "{{endpoint}}")], "s"),
        panel("Response bytes by endpoint", "How much does it send over HTTP?",
              [(f"sum by (endpoint) (rate(strata_registry_http_response_bytes_total{{{R}}}[{RI}]))", "{{endpoint}}")], "Bps"),
        panel("Publishes by outcome", "Are teams' publishes going through, and why not?",
              [(f"sum by (outcome) (increase(strata_registry_publish_total{{{R}}}[1h]))", "{{outcome}}")], "short"),
        panel("Upstream fetches by outcome", "How do fetches from the public mirror end, per remote repository: ok, not found, timeout, overloaded (429/503), unreachable, integrity violation, other failure?",
              [(f"sum by (repository, outcome) (rate(strata_registry_upstream_fetches_total{{{R}}}[{RI}]))", "{{repository}} {{outcome}}")], "ops"),
        panel("Remote metadata answers", "Are list/latest answers fresh, refreshed, stale or offline?",
              [(f"sum by (repository, result) (rate(strata_registry_remote_metadata_total{{{R}}}[{RI}]))", "{{repository}} {{result}}")], "ops"),
        panel("Integrity violations", "Which remote repositories received bytes that failed verification?",
              [(f"sum by (repository) (increase(strata_registry_integrity_violations_total{{{R}}}[1h]))", "{{repository}}")], "short"),
        panel("Fill duration p95 by artifact", "How long does a remote repository take to fetch, verify and store what it did not have?",
              [(f"histogram_quantile(0.95, sum by (artifact, le) (rate(strata_registry_fill_duration_seconds_bucket{{{R}}}[{RI}])))", "{{artifact}}")], "s"),
        panel("Checksum verification p95", "How long do checksum-database lookups take before an artifact may be stored, and do they fail?",
              [(f"histogram_quantile(0.95, sum by (repository, outcome, le) (rate(strata_registry_checksum_verify_duration_seconds_bucket{{{R}}}[{RI}])))", "{{repository}} {{outcome}}")], "s"),
        panel("Slowest modules (top 10)", "Which modules took longest to fill from the upstream in the last 15 to 30 minutes?",
              [(f"topk(10, max by (repository, module, version, artifact) (strata_registry_slowest_fill_seconds{{{R}}}))", "")], "s", kind="table", width=24),
        panel("Storage latency p95 by operation", "Is the object store (fs or S3) slow?",
              [(f"histogram_quantile(0.95, sum by (operation, le) (rate(strata_registry_storage_operation_duration_seconds_bucket{{{R}}}[{RI}])))", "{{operation}}")], "s"),
        panel("Event outbox backlog", "Are change events waiting to reach Redis (and the edges)?",
              [(f"strata_registry_event_outbox_backlog{{{R}}}", "{{instance}}")], "short"),
    ],
)

sync = dashboard(
    "strata-sync",
    "strata / Sync workers",
    "The sync worker pool: the job queue, outcomes, index feeds, dead letters, scrub progress.",
    [
        var("namespace", "strata_sync_queue_depth", "namespace"),
        var("instance", "strata_sync_queue_depth", "instance", parent=("namespace",)),
    ],
    [
        panel("Queue", "Jobs waiting, running, waiting to be retried, in flight here.",
              [(f"max(strata_sync_queue_depth{{{W}}})", "waiting"),
               (f"max(strata_sync_jobs_pending{{{W}}})", "delivered, not acknowledged"),
               (f"max(strata_sync_jobs_delayed{{{W}}})", "waiting to retry"),
               (f"sum(strata_sync_jobs_in_flight{{{W}}})", "running here")], "short"),
        panel("Job outcomes by kind", "Are prefetches, refreshes, scrubs and polls completing?",
              [(f"sum by (kind, outcome) (rate(strata_sync_jobs_total{{{W}}}[{RI}]))", "{{kind}} {{outcome}}")], "ops"),
        panel("Job duration p95 by kind", "How long does a job of each kind take?",
              [(f"histogram_quantile(0.95, sum by (kind, le) (rate(strata_sync_job_duration_seconds_bucket{{{W}}}[{RI}])))", "{{kind}}")], "s"),
        panel("Dead letters", "Jobs that failed every attempt (see the alert's runbook).",
              [(f"max(strata_sync_dead_letters{{{W}}})", "dead letters")], "short"),
        panel("Reclaimed deliveries", "Jobs taken over from a worker that died or stalled.",
              [(f"sum(rate(strata_sync_jobs_reclaimed_total{{{W}}}[{RI}]))", "reclaimed")], "ops"),
        panel("Index lag by feed", "How far behind each index feed is the follower?",
              [(f"max by (feed) (strata_sync_index_lag_seconds{{{W}}})", "{{feed}}")], "s"),
        panel("Index entries by result", "What becomes of each feed's entries?",
              [(f"sum by (feed, result) (rate(strata_sync_index_entries_total{{{W}}}[{RI}]))", "{{feed}} {{result}}")], "ops"),
        panel("Scrub progress", "How far is the current scrub pass of each repository?",
              [(f"max by (repository) (strata_sync_scrub_progress_ratio{{{W}}})", "{{repository}}")], "percentunit"),
    ],
)

DASHBOARDS = {"strata-fleet.json": fleet, "strata-edge.json": edge,
              "strata-registry.json": registry, "strata-sync.json": sync}


def render(board):
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    check = "--check" in sys.argv
    stale = []
    for name, board in DASHBOARDS.items():
        path = OUT / name
        text = render(board)
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        sys.exit("grafana: dashboards differ from grafana/generate.py (run python3 grafana/generate.py): " + ", ".join(stale))

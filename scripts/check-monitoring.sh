#!/usr/bin/env bash
# Checks the monitoring configuration in deploy/ and grafana/ (issue 13) with the real tools: promtool (rules
# syntax, the rules' unit tests, the example Prometheus config) and amtool (the example
# Alertmanager config); and that every alert rule has a unit test in which it fires.
# `make monitoring-check` runs it; scripts/ensure-deps.sh installs the tools.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v promtool >/dev/null || { echo "check-monitoring: promtool missing (scripts/ensure-deps.sh installs it)" >&2; exit 1; }
command -v amtool >/dev/null || { echo "check-monitoring: amtool missing (scripts/ensure-deps.sh installs it)" >&2; exit 1; }

promtool check rules deploy/prometheus/recording.rules.yml deploy/prometheus/alerts.rules.yml
promtool check config deploy/prometheus/prometheus.yml
promtool test rules deploy/prometheus/tests/*.test.yml
amtool check-config deploy/alertmanager/alertmanager.yml

# Every alert must fire in at least one test case (silence is checked by the neighbouring
# cases: promtool compares the full list of firing alerts at each evaluation).
python3 - <<'PY'
import glob, re, sys
rules = open("deploy/prometheus/alerts.rules.yml").read()
alerts = set(re.findall(r"^\s*- alert: (\S+)", rules, re.M))
fired = set()
for path in glob.glob("deploy/prometheus/tests/*.test.yml"):
    text = open(path).read()
    # an alert_rule_test entry whose exp_alerts is not the empty list
    for m in re.finditer(r"alertname: (\S+)\n\s+exp_alerts:(.*?)(?=\n\s+- eval_time:|\n\s+- interval:|\Z)", text, re.S):
        if m.group(2).strip() != "[]":
            fired.add(m.group(1))
missing = sorted(alerts - fired)
if missing:
    sys.exit("check-monitoring: alerts without a firing unit test: " + ", ".join(missing))
print(f"check-monitoring: {len(alerts)} alerts, each fires in a unit test")
PY

# Grafana: the dashboards are what grafana/generate.py writes, and their structure holds
# (unique ids, the datasource variable everywhere, a query per target). Their queries run
# against a real Prometheus in tests/e2e/tests/monitoring.rs.
python3 grafana/generate.py --check
python3 - <<'PY'
import glob, json, sys
problems, uids, panels = [], set(), 0
for path in sorted(glob.glob("grafana/dashboards/*.json")):
    board = json.load(open(path))
    where = path.rsplit("/", 1)[-1]
    if board.get("schemaVersion", 0) < 36:
        problems.append(f"{where}: schemaVersion below 36")
    if board["uid"] in uids:
        problems.append(f"{where}: uid {board['uid']} used twice")
    uids.add(board["uid"])
    variables = {v["name"]: v for v in board["templating"]["list"]}
    if variables.get("datasource", {}).get("type") != "datasource":
        problems.append(f"{where}: no datasource variable")
    if "namespace" not in variables:
        problems.append(f"{where}: no namespace variable")
    ids = [p["id"] for p in board["panels"]]
    if len(ids) != len(set(ids)):
        problems.append(f"{where}: panel ids repeat")
    for p in board["panels"]:
        panels += 1
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{where}: panel {p['title']!r} does not use the datasource variable")
        if not p.get("description"):
            problems.append(f"{where}: panel {p['title']!r} says no question it answers")
        if not p.get("targets") or any(not t.get("expr") for t in p["targets"]):
            problems.append(f"{where}: panel {p['title']!r} has a target without a query")
        g = p["gridPos"]
        if g["x"] + g["w"] > 24:
            problems.append(f"{where}: panel {p['title']!r} is wider than the grid")
if problems:
    sys.exit("check-monitoring: " + "; ".join(problems))
print(f"check-monitoring: {len(uids)} dashboards, {panels} panels, structure ok")
PY

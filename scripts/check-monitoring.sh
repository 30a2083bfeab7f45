#!/usr/bin/env bash
# Checks the monitoring configuration in deploy/ (issue 13) with the real tools: promtool (rules
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

#!/usr/bin/env bash
# Proves the example log-shipping configuration (deploy/logging/otel-collector.yaml) with a real
# OpenTelemetry Collector: deploy/logging/collector, contrib v0.139.0, built by
# scripts/ensure-deps.sh. `make logging-check` runs it.
#
#  1. `otelcol-strata validate` on the configuration as deployed (Elasticsearch sink, the
#     Kubernetes defaults) and as the run below uses it (file sink).
#  2. The collector runs on deploy/logging/testdata/sample.log, laid out as the kubelet writes
#     it: /var/log/pods/strata_<pod>_<uid>/<container>/0.log in the CRI format, one container per
#     service (a line goes to the service its target names; a line that is not JSON to the
#     registry), one line split by the runtime into a partial and a final part. With the file
#     sink it writes OTLP JSON, and every input line must come out as exactly one record, in the
#     right output (access, audit, service), with the ECS attributes, severity, timestamp,
#     trace context and service.name the mapping table in deploy/logging/README.md promises.
#  3. It runs again with the Elasticsearch sink against a stub of the bulk API, which must
#     receive every record as an ECS document in strata-access-*, strata-audit-* or strata-logs-*.
#
# Exits non-zero with the mismatches on any difference. STRATA_OTELCOL=/path/to/otelcol-strata
# uses another build; STRATA_KEEP_TMP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."

tools_dir=${STRATA_TOOLS_DIR:-/var/tmp/strata-tools}
# The same directory name as ensure_otelcol in scripts/ensure-deps.sh.
hash=$(cat deploy/logging/collector/main.go deploy/logging/collector/go.mod deploy/logging/collector/go.sum | sha256sum | cut -c1-12)
otelcol=${STRATA_OTELCOL:-$tools_dir/otelcol-strata-0.139.0-$hash/otelcol-strata}
if [ ! -x "$otelcol" ]; then
  echo "check-logging: no collector at $otelcol (scripts/ensure-deps.sh builds it from deploy/logging/collector)" >&2
  exit 1
fi
command -v python3 >/dev/null || { echo "check-logging: python3 is required" >&2; exit 1; }

config=deploy/logging/otel-collector.yaml
work=$(mktemp -d "${TMPDIR:-/tmp}/strata-check-logging.XXXXXX")
if [ -z "${STRATA_KEEP_TMP:-}" ]; then trap 'rm -rf "$work"' EXIT; else echo "check-logging: work directory $work"; fi

# 1. validate, as deployed and as run below.
validate() {
  local what=$1; shift
  if ! out=$(env "$@" "$otelcol" validate --config "$config" 2>&1); then
    echo "$out" >&2
    echo "check-logging: otelcol-strata validate failed ($what)" >&2
    exit 1
  fi
  echo "check-logging: validate ok ($what)"
}
validate "elasticsearch sink, Kubernetes defaults" STRATA_OTELCOL_STORAGE_DIR="$work/validate-storage"
validate "file sink" STRATA_LOG_SINK=file STRATA_LOG_FILE_DIR="$work/validate-out" \
  STRATA_OTELCOL_STORAGE_DIR="$work/validate-storage" STRATA_LOG_GLOB="$work/pods/*/*/*.log"
validate "debug sink" STRATA_LOG_SINK=debug STRATA_OTELCOL_STORAGE_DIR="$work/validate-storage"

# 2. and 3. run it.
python3 - "$otelcol" "$config" deploy/logging/testdata/sample.log "$work" <<'PY'
import gzip, http.server, json, os, re, signal, socket, subprocess, sys, threading, time, urllib.request

otelcol, config, sample_path, work = sys.argv[1:5]
problems = []

def fail(msg):
    sys.exit("check-logging: " + msg)

# ---- the fixture, laid out like a Kubernetes node ------------------------------------------------
NAMESPACE = "strata"
PODS = {  # container -> pod name, pod uid
    "strata-registry": ("strata-registry-7d9f8c6b5-abcde", "0d5c7a52-3f7e-4b8e-9f6a-2c1b0e9d8a71"),
    "strata-edge": ("strata-edge-5b7c9d8f6-fghij", "8e2f4a61-9b3c-4d5e-a6f7-1b2c3d4e5f60"),
    "strata-sync": ("strata-sync-6c9f7d8b5-x2k4q", "4a3b2c1d-0e9f-4a8b-b7c6-d5e4f3a2b1c0"),
}
TS = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$")

def ts_ns(text):
    m = TS.match(text)
    if not m:
        fail(f"sample.log: timestamp {text!r} is not RFC 3339 UTC")
    import calendar
    secs = calendar.timegm(tuple(int(g) for g in m.groups()[:6]))
    return secs * 10**9 + int((m.group(7) or "0").ljust(9, "0"))

def ns_text(ns):
    secs, frac = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"

def container_of(target):
    if target.startswith("strata_edge"):
        return "strata-edge"
    if target.startswith("strata_sync"):
        return "strata-sync"
    return "strata-registry"

lines = [l for l in open(sample_path, encoding="utf-8").read().split("\n") if l]
inputs = []  # (container, raw line, parsed or None, runtime time in ns)
last_ns = 0
for raw in lines:
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if parsed is not None:
        # The runtime reads the line a little after the service wrote it: a record whose time is
        # the service's own timestamp proves the timestamp was promoted.
        runtime_ns = ts_ns(parsed["timestamp"]) + 183_417
        container = container_of(parsed["target"])
    else:
        runtime_ns = last_ns + 1_000_000_007
        container = "strata-registry"
    last_ns = runtime_ns
    inputs.append((container, raw, parsed, runtime_ns))
json_inputs = [i for i in inputs if i[2] is not None]
if len({i[2]["timestamp"] for i in json_inputs}) != len(json_inputs):
    fail("sample.log: every JSON line needs its own timestamp (records are matched by it)")
if not any(i[2] is None for i in inputs) or not any("trace.id" in (i[2] or {}) for i in inputs):
    fail("sample.log lost its plain-text line or its line with a trace.id")

# The longest line is written as the runtime writes lines over its buffer: a P part, then F.
split_at = max(range(len(inputs)), key=lambda k: len(inputs[k][1]))
pod_logs = {}
for k, (container, raw, parsed, runtime_ns) in enumerate(inputs):
    t = ns_text(runtime_ns)
    if k == split_at:
        half = len(raw) // 2
        cri = [f"{t} stderr P {raw[:half]}", f"{t} stderr F {raw[half:]}"]
    else:
        cri = [f"{t} stderr F {raw}"]
    pod_logs.setdefault(container, []).extend(cri)
paths = {}
for container, cri in pod_logs.items():
    pod, uid = PODS[container]
    d = os.path.join(work, "pods", f"{NAMESPACE}_{pod}_{uid}", container)
    os.makedirs(d)
    paths[container] = os.path.join(d, "0.log")
    with open(paths[container], "w", encoding="utf-8") as f:
        f.write("\n".join(cri) + "\n")

# ---- what the configuration promises (deploy/logging/README.md, "Field mapping") -----------------
SEVERITY = {"TRACE": 1, "DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17}
ACCESS_TARGETS = ("strata::access", "strata_edge::access")
RENAMED = {"message", "method", "path", "status", "bytes", "duration_ms", "reason",
           "user.name", "event.action", "event.outcome", "client.address"}

def flatten(prefix, value, out):
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}.{k}", v, out)
    elif isinstance(value, list):
        for n, v in enumerate(value):
            flatten(f"{prefix}.{n}", v, out)
    else:
        out[prefix] = value

def expected(container, raw, parsed, runtime_ns):
    pod, uid = PODS[container]
    e = {
        "output": "service",
        "resource": {"service.name": container, "k8s.container.name": container,
                     "k8s.namespace.name": NAMESPACE, "k8s.pod.name": pod, "k8s.pod.uid": uid,
                     "k8s.container.restart_count": "0"},
        "attributes": {"event.dataset": "strata.log"},
        "time": runtime_ns, "severity_text": "", "severity_number": 0,
        "trace_id": "", "span_id": "", "body": raw,
    }
    if parsed is None:
        return e
    f, target = parsed["fields"], parsed["target"]
    a = e["attributes"]
    a["log.logger"] = target
    e["time"] = ts_ns(parsed["timestamp"])
    e["severity_text"] = parsed["level"]
    e["severity_number"] = SEVERITY[parsed["level"]]
    e["trace_id"] = parsed.get("trace.id", "")
    e["span_id"] = parsed.get("span.id", "")
    e["body"] = f.get("message", target)
    if target in ACCESS_TARGETS:
        e["output"], a["event.dataset"] = "access", "strata.access"
    elif target == "strata::audit":
        e["output"], a["event.dataset"] = "audit", "strata.audit"
    if "method" in f: a["http.request.method"] = f["method"]
    if "path" in f: a["url.path"] = f["path"]
    if "status" in f: a["http.response.status_code"] = int(f["status"])
    if "bytes" in f: a["http.response.body.bytes"] = int(f["bytes"])
    if "duration_ms" in f: a["event.duration"] = int(float(f["duration_ms"]) * 1000000.0 + 0.5)
    for k in ("user.name", "event.action", "event.outcome"):
        if k in f: a[k] = f[k]
    if f.get("reason"): a["event.reason"] = f["reason"]
    if f.get("client.address"): a["client.address"] = f["client.address"]
    rest = {k: v for k, v in f.items() if k not in RENAMED
            and not (k in ("repository", "module", "version", "upstream") and v == "")}
    if isinstance(parsed.get("span"), dict):  # its name and undotted fields
        rest["span"] = {k: v for k, v in parsed["span"].items() if "." not in k}
    flat = {}
    for k, v in rest.items():
        flatten(f"strata.{k}", v, flat)
    for k, v in flat.items():
        a.setdefault(k, v)
    if e["output"] == "access":
        e["body"] = f"{f['method']} {f['path']} {f['status']}"
    return e

# ---- running the collector ------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def metric_sum(port, name):
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    except OSError:
        return None
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name):len(name) + 1] in ("{", " ", "_"):
            total += float(line.rsplit(" ", 1)[1])
    return total

def run_collector(name, extra_env, done, timeout=90):
    """Runs the collector until done() is true (or the timeout), then stops it with SIGTERM."""
    metrics_port = free_port()
    env = dict(os.environ)
    env.update({
        "STRATA_LOG_GLOB": os.path.join(work, "pods", "*", "*", "*.log"),
        "STRATA_LOG_START_AT": "beginning",
        "STRATA_OTELCOL_STORAGE_DIR": os.path.join(work, f"storage-{name}"),
        "STRATA_OTELCOL_HEALTH_ENDPOINT": f"127.0.0.1:{free_port()}",
        "STRATA_OTELCOL_METRICS_HOST": "127.0.0.1",
        "STRATA_OTELCOL_METRICS_PORT": str(metrics_port),
    })
    env.update(extra_env)
    log_path = os.path.join(work, f"collector-{name}.log")
    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen([otelcol, "--config", config], env=env, stdout=log, stderr=log)
        try:
            ok, exited_early = False, None
            while time.monotonic() - started < timeout:
                if proc.poll() is not None:
                    exited_early = proc.returncode
                    break
                if done(metrics_port):
                    ok = True
                    break
                time.sleep(0.25)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    problems.append(f"{name} run: the collector did not stop within 30 s of SIGTERM")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = open(log_path).read()
    if not ok:
        sys.stderr.write(text[-6000:])
        what = (f"exited with status {proc.returncode}" if exited_early is not None
                else f"did not deliver all {N} records within {timeout} s")
        fail(f"{name} run: the collector {what} (its log is above; {log_path})")
    if proc.returncode != 0:
        sys.stderr.write(text[-6000:])
        problems.append(f"{name} run: the collector exited with {proc.returncode} after SIGTERM")
    bad = [l for l in text.splitlines() if re.search(r'\t(error|warn)\t|"level":"(error|warn)"', l)]
    if bad:
        problems.append(f"{name} run: the collector logged warnings or errors:\n    " + "\n    ".join(bad[:10]))
    return time.monotonic() - started

# ---- OTLP JSON ------------------------------------------------------------------------------------
def value(v):
    if "stringValue" in v: return v["stringValue"]
    if "intValue" in v: return int(v["intValue"])
    if "boolValue" in v: return bool(v["boolValue"])
    if "doubleValue" in v: return float(v["doubleValue"])
    if "kvlistValue" in v: return {kv["key"]: value(kv["value"]) for kv in v["kvlistValue"].get("values", [])}
    if "arrayValue" in v: return [value(x) for x in v["arrayValue"].get("values", [])]
    if "bytesValue" in v: return v["bytesValue"]
    return None

def attrs(kvs):
    return {kv["key"]: value(kv.get("value", {})) for kv in kvs or []}

def same(a, b):
    """Equal, and of the same JSON type (200 is not 200.0, True is not 1)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b

N = len(inputs)
want = [expected(*i) for i in inputs]

# ---- 2. file sink ---------------------------------------------------------------------------------
out_dir = os.path.join(work, "out")
os.makedirs(out_dir)  # the file exporter creates files, not directories
secs = run_collector("file", {"STRATA_LOG_SINK": "file", "STRATA_LOG_FILE_DIR": out_dir},
                     lambda port: metric_sum(port, "otelcol_exporter_sent_log_records") == N)
records = []  # (output, resource attributes, record)
for output in ("access", "audit", "service"):
    path = os.path.join(out_dir, f"{output}.json")
    if not os.path.exists(path):
        continue
    for line in open(path, encoding="utf-8"):
        if not line.strip():
            continue
        for rl in json.loads(line).get("resourceLogs", []):
            res = attrs(rl.get("resource", {}).get("attributes"))
            for sl in rl.get("scopeLogs", []):
                for r in sl.get("logRecords", []):
                    records.append((output, res, r))
if len(records) != N:
    problems.append(f"file run: {N} input lines but {len(records)} records came out")

def describe(e):
    return (e["attributes"].get("log.logger") or e["body"])[:60] + f" @{e['time']}"

for e in want:
    key = ("time", str(e["time"])) if "log.logger" in e["attributes"] else ("body", e["body"])
    found = [rec for rec in records
             if (str(rec[2].get("timeUnixNano")) if key[0] == "time" else value(rec[2].get("body", {}))) == key[1]]
    where = describe(e)
    if len(found) != 1:
        problems.append(f"{where}: {len(found)} records instead of one"
                        + ("" if key[0] == "body" else " (timeUnixNano is not the line's own timestamp?)"))
        continue
    output, res, r = found[0]
    if output != e["output"]:
        problems.append(f"{where}: went to the {output} output, not {e['output']}")
    for k, v in e["resource"].items():
        if not same(res.get(k), v):
            problems.append(f"{where}: resource {k} is {res.get(k)!r}, expected {v!r}")
    got = attrs(r.get("attributes"))
    want_path = paths[e["resource"]["k8s.container.name"]]
    got_path = got.pop("log.file.path", None)
    if got_path != want_path:
        problems.append(f"{where}: log.file.path is {got_path!r}, expected {want_path!r}")
    if got.pop("log.iostream", None) != "stderr":
        problems.append(f"{where}: log.iostream is not stderr")
    if not same(got, e["attributes"]):
        missing = {k: v for k, v in e["attributes"].items() if k not in got}
        extra = {k: v for k, v in got.items() if k not in e["attributes"]}
        differ = {k: (got[k], v) for k, v in e["attributes"].items() if k in got and not same(got[k], v)}
        problems.append(f"{where}: attributes differ: missing {missing}, unexpected {extra}, "
                        f"different (got, expected) {differ}")
    checks = [
        ("body", value(r.get("body", {})), e["body"]),
        ("timeUnixNano", int(r.get("timeUnixNano", 0)), e["time"]),
        ("severityText", r.get("severityText", ""), e["severity_text"]),
        ("severityNumber", r.get("severityNumber", 0), e["severity_number"]),
        ("traceId", r.get("traceId", ""), e["trace_id"]),
        ("spanId", r.get("spanId", ""), e["span_id"]),
    ]
    for name, got_v, want_v in checks:
        if not same(got_v, want_v):
            problems.append(f"{where}: {name} is {got_v!r}, expected {want_v!r}")
by_output = {o: sum(1 for e in want if e["output"] == o) for o in ("access", "audit", "service")}
print(f"check-logging: file run ok in {secs:.1f} s: {N} lines -> {len(records)} records "
      f"(access {by_output['access']}, audit {by_output['audit']}, service {by_output['service']})"
      if not problems else f"check-logging: file run: {len(problems)} problem(s)")

# ---- 3. Elasticsearch sink against a stub of the bulk API ----------------------------------------
docs = []  # (index, document)
lock = threading.Lock()

class StubElasticsearch(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, body, status=200):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply({"name": "stub", "cluster_name": "strata-check", "version": {"number": "8.19.0"},
                    "tagline": "You Know, for Search"})

    do_HEAD = do_GET

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if not self.path.split("?")[0].endswith("/_bulk"):
            return self.reply({"error": f"unexpected {self.path}"}, 400)
        rows = [json.loads(l) for l in body.decode().splitlines() if l.strip()]
        items = []
        for action, doc in zip(rows[0::2], rows[1::2]):
            (op, meta), = action.items()
            with lock:
                docs.append((meta.get("_index"), doc))
            items.append({op: {"_index": meta.get("_index"), "_id": str(len(docs)), "status": 201,
                               "result": "created"}})
        self.reply({"took": 1, "errors": False, "items": items})

    do_PUT = do_POST

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubElasticsearch)
threading.Thread(target=server.serve_forever, daemon=True).start()
def all_indexed(_port):
    with lock:
        return len(docs) >= N
secs = run_collector("elasticsearch", {
    "STRATA_LOG_SINK": "elasticsearch",
    "ELASTICSEARCH_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
    "ELASTICSEARCH_USERNAME": "strata-check", "ELASTICSEARCH_PASSWORD": "not-a-secret",
}, all_indexed)
server.shutdown()
with open(os.path.join(work, "elasticsearch-docs.ndjson"), "w") as f:  # for STRATA_KEEP_TMP=1
    for index, doc in docs:
        f.write(json.dumps({"_index": index, "_source": doc}) + "\n")

def get(doc, dotted):
    """A field of an ECS document, whether written nested ({"url":{"path":…}}) or dotted."""
    if dotted in doc:
        return doc[dotted]
    head, _, tail = dotted.partition(".")
    if tail and isinstance(doc.get(head), dict):
        return get(doc[head], tail)
    return None

INDEX = re.compile(r"^strata-(access|audit|logs)-\d{4}\.\d{2}\.\d{2}$")
if len(docs) != N:
    problems.append(f"elasticsearch run: {N} input lines but {len(docs)} documents were indexed")
for e in want:
    match = [(i, d) for i, d in docs
             if get(d, "log.logger") == e["attributes"].get("log.logger")
             and get(d, "message") == e["body"]
             and str(get(d, "@timestamp")).startswith(ns_text(e["time"])[:23])]
    where = describe(e)
    if len(match) != 1:
        problems.append(f"elasticsearch run: {where}: {len(match)} documents instead of one")
        continue
    index, d = match[0]
    m = INDEX.match(index or "")
    want_index = {"access": "access", "audit": "audit", "service": "logs"}[e["output"]]
    if not m or m.group(1) != want_index:
        problems.append(f"elasticsearch run: {where}: indexed into {index!r}, not strata-{want_index}-YYYY.MM.DD")
    checks = {"service.name": e["resource"]["service.name"],
              "log.level": e["severity_text"] or None,
              "trace.id": e["trace_id"] or None,
              "span.id": e["span_id"] or None}
    for k in ("url.path", "http.response.status_code", "user.name", "event.action", "event.outcome",
              "event.duration", "client.address", "strata.repository", "strata.span.name"):
        if k in e["attributes"]:
            checks[k] = e["attributes"][k]
    for k, v in checks.items():
        got = get(d, k)
        if got in ("", None) and v is None:
            continue
        if not same(got, v):
            problems.append(f"elasticsearch run: {where}: {k} is {got!r}, expected {v!r}")
if not [p for p in problems if p.startswith("elasticsearch run")]:
    indices = sorted({i for i, _ in docs})
    print(f"check-logging: elasticsearch run ok in {secs:.1f} s: {len(docs)} ECS documents into {', '.join(indices)}")

if problems:
    sys.exit("check-logging: the collector's output does not match the configuration's promise:\n  - "
             + "\n  - ".join(problems))
print("check-logging: ok")
PY

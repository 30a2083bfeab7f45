#!/usr/bin/env bash
# Checks the Helm chart deploy/helm/strata with the real tools (scripts/deploy-tools.sh):
#   1. the chart's copies of the Prometheus rules and Grafana dashboards (files/) are identical
#      to deploy/prometheus/*.rules.yml and grafana/dashboards/*.json;
#   2. `helm lint --strict` with each example values file;
#   3. `helm template` of each example, with and without the monitoring.coreos.com/v1 API,
#      validated by kubeconform -strict against every Kubernetes version in $K8S_VERSIONS
#      (and the prometheus-operator CRD schemas), no missing schema allowed;
#      Each render's content is asserted too: locked-down pods, no credential in a ConfigMap,
#      and the checksum database ([ledger]) wired where the values turn it on — `[ledger]` with
#      key_env = "STRATA_LEDGER_KEY" in the registry.toml Secret that the registry and the worker
#      mount, STRATA_LEDGER_KEY from the ledger's Secret (secretKeyRef, never a mounted key file:
#      the pods' fsGroup would make it group-readable) in both containers, nothing in the edge's;
#   4. values.schema.json refuses a misspelt key and a wrong type (helm lint and template fail,
#      naming the key), ledger.* included, and the templates refuse an incomplete [ledger];
#   5. the rendered configuration files and container environments are written to
#      $OUT_DIR/<release>/<component>.toml and <component>.env.json (for the boot test), and each
#      TOML is loaded by the real service binary (a debug build in ${CARGO_TARGET_DIR:-target},
#      built here if needed), with `--check-config` and as a start: a configuration error (exit
#      64 before the service logs anything) fails the check; backend errors (no S3, no Redis) do
#      not. The ledger's signer key comes from the render (the ci/ case: a key made by
#      `strata sumdb keygen`, given as ledger.signerKey) or, for an operator's Secret
#      (existingSecret), from a `strata sumdb keygen` stand-in; without it the registry and the
#      worker must refuse to start.
#
#   scripts/check-helm.sh [OUT_DIR]      # OUT_DIR also from $OUT_DIR; default: a temp dir
#
# <component>.env.json: {"release", "component", "binary", "args", "config", "mounts",
# "env": [the container's env entries as rendered], "resolved": {NAME: value or null},
# "services": {"<svc>.<namespace>.svc": {port name: port}}} where `resolved` has the values the
# chart's own Secrets and the pod's fields give (null: from a Secret the chart does not create,
# e.g. externalRedis.existingSecret), `mounts` maps paths inside the pod to files in the same
# directory (the worker reads /etc/strata/registry.toml), and `services` lists the release's
# in-cluster addresses the files and variables may name (the bundled Redis and MinIO, the
# registry an all-in-one edge uses; the edge's, worker's and registry's short Service names
# resolve in the release's namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CHART=deploy/helm/strata
EXAMPLES=deploy/helm/examples

fail() { echo "check-helm: FAIL: $*" >&2; exit 1; }
step() { echo "check-helm: $*"; }

# shellcheck source=scripts/deploy-tools.sh
source scripts/deploy-tools.sh
for tool in "$HELM" "$KUBECONFORM" "$DEPLOY_PY"; do
  [ -x "$tool" ] || fail "$tool is missing: run scripts/deploy-tools.sh ensure"
done
for v in $K8S_VERSIONS; do
  [ -f "$K8S_SCHEMAS/v$v/.done" ] || fail "no Kubernetes $v schemas in $K8S_SCHEMAS: run scripts/deploy-tools.sh ensure"
done
for kind in servicemonitor prometheusrule; do
  [ -s "$CRD_SCHEMAS/$kind-monitoring-v1.json" ] || fail "no $kind schema in $CRD_SCHEMAS: run scripts/deploy-tools.sh ensure"
done

OUT_DIR=${1:-${OUT_DIR:-}}
if [ -z "$OUT_DIR" ]; then
  OUT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/check-helm.XXXXXX")
fi
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-helm-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# helm keeps its caches and config out of $HOME.
export HELM_CACHE_HOME="$WORK/helm-cache" HELM_CONFIG_HOME="$WORK/helm-config" HELM_DATA_HOME="$WORK/helm-data"

# --- 1. copies in sync ----------------------------------------------------------------------
REFRESH="cp deploy/prometheus/recording.rules.yml deploy/prometheus/alerts.rules.yml $CHART/files/prometheus/ && rm -f $CHART/files/dashboards/*.json && cp grafana/dashboards/*.json $CHART/files/dashboards/"
drift=()
for f in recording.rules.yml alerts.rules.yml; do
  cmp -s "deploy/prometheus/$f" "$CHART/files/prometheus/$f" || drift+=("$CHART/files/prometheus/$f differs from deploy/prometheus/$f")
done
for f in grafana/dashboards/*.json; do
  cmp -s "$f" "$CHART/files/dashboards/$(basename "$f")" || drift+=("$CHART/files/dashboards/$(basename "$f") differs from $f (or is missing)")
done
for f in "$CHART"/files/dashboards/*.json; do
  [ -f "grafana/dashboards/$(basename "$f")" ] || drift+=("$f has no original in grafana/dashboards/")
done
if [ ${#drift[@]} -gt 0 ]; then
  printf 'check-helm:   %s\n' "${drift[@]}" >&2
  fail "the chart's copies of the rules/dashboards are stale; refresh them with:
  $REFRESH"
fi
step "rules and dashboards: the chart's copies match the originals"

# The service binaries (the boot checks below; `strata sumdb keygen` for the ledger's keys).
TARGET=$(scripts/service-bins.sh) || fail "the service binaries could not be built"
for bin in strata-registry strata-sync strata-edge strata; do
  [ -x "$TARGET/$bin" ] || fail "$TARGET/$bin was not built"
done
# keygen NAME: a new signer key of checksum database NAME (stdout; the verifier key goes to stderr).
keygen() { "$TARGET/strata" sumdb keygen "$1" 2>/dev/null || fail "strata sumdb keygen $1 failed"; }
# The ci/ case's ledger.signerKey (its file holds a stand-in that is no key): a real key, so the chart-made
# Secret's value reaches the registry and the worker and is accepted there.
mkdir -p "$WORK/values"
printf 'ledger:\n  signerKey: "%s"\n' "$(keygen sum.ci.example)" >"$WORK/values/ledger-key.yaml"

# --- 2. helm lint ---------------------------------------------------------------------------
# name|release|namespace|values files (comma-separated)
CASES=(
  "central|central|strata|$EXAMPLES/central.yaml"
  "central-no-crds|central|strata|$EXAMPLES/central.yaml,$EXAMPLES/no-monitoring-crds.yaml"
  "edge-eu|edge-eu|strata-edge|$EXAMPLES/edge-eu.yaml"
  "trial|trial|strata-trial|$EXAMPLES/trial.yaml"
  "full|full|strata|$CHART/ci/full-values.yaml,$WORK/values/ledger-key.yaml"
)
values_args() { local IFS=,; for f in $1; do printf -- '-f\n%s\n' "$f"; done; }
# ledger_name FILES: ledger.name when the values files (merged in order) turn the ledger on.
ledger_name() {
  "$DEPLOY_PY" -c 'import sys, yaml
l = {}
for f in sys.argv[1].split(","):
    l.update((yaml.safe_load(open(f)) or {}).get("ledger") or {})
print(l.get("name", "") if l.get("enabled") else "")' "$1"
}

for c in "${CASES[@]}"; do
  IFS='|' read -r name release ns files <<<"$c"
  mapfile -t vargs < <(values_args "$files")
  if ! "$HELM" lint --strict "$CHART" --namespace "$ns" "${vargs[@]}" >"$WORK/lint.out" 2>&1; then
    cat "$WORK/lint.out" >&2
    fail "helm lint --strict with $files"
  fi
done
step "helm lint --strict: ${#CASES[@]} value sets pass"

# --- 3. helm template + kubeconform -----------------------------------------------------------
for c in "${CASES[@]}"; do
  IFS='|' read -r name release ns files <<<"$c"
  mapfile -t vargs < <(values_args "$files")
  for api in with-crds without-crds; do
    api_args=()
    [ "$api" = with-crds ] && api_args=(--api-versions monitoring.coreos.com/v1)
    for v in $K8S_VERSIONS; do
      out="$WORK/$name-$api-$v.yaml"
      "$HELM" template "$release" "$CHART" --namespace "$ns" --kube-version "$v" "${api_args[@]}" "${vargs[@]}" >"$out" 2>"$WORK/template.err" \
        || { cat "$WORK/template.err" >&2; fail "helm template $name ($api, Kubernetes $v)"; }
      echo "check-helm: kubeconform $name $api Kubernetes $v:"
      "$KUBECONFORM" -strict -summary -kubernetes-version "$v" \
        -schema-location "$K8S_SCHEMAS/v$v/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
        -schema-location "$CRD_SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
        "$out" || fail "kubeconform: $name ($api) is not valid for Kubernetes $v"
    done
    # What each case must (not) contain.
    "$DEPLOY_PY" - "$out" "$name" "$api" "$files" "$release" <<'PY' || fail "rendered objects of $name ($api) are not as expected"
import base64, sys, tomllib, yaml
path, name, api, files, release = sys.argv[1:]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
kinds = {}
for d in docs:
    kinds.setdefault(d["kind"], []).append(d["metadata"]["name"])
problems = []
def want(kind, n=None, present=True):
    have = len(kinds.get(kind, []))
    if present and (have == 0 or (n is not None and have != n)):
        problems.append(f"expected {n if n is not None else 'some'} {kind}, found {have}")
    if not present and have:
        problems.append(f"expected no {kind}, found {kinds[kind]}")
crds = api == "with-crds"
if name.startswith("central"):
    want("Deployment", 2); want("StatefulSet", present=False)
    want("ServiceMonitor", 2, present=crds and name == "central")
    want("PrometheusRule", 1, present=crds and name == "central")
    want("ConfigMap")  # worker.toml + dashboards
    if not any(n.endswith("-dashboards") for n in kinds.get("ConfigMap", [])):
        problems.append("no Grafana dashboards ConfigMap")
elif name == "edge-eu":
    want("StatefulSet", 1); want("Deployment", present=False)
    want("ServiceMonitor", 1, present=crds); want("PrometheusRule", present=False)
elif name == "trial":
    want("Deployment", 2); want("StatefulSet", 3)  # edge, redis, minio
    want("ServiceMonitor", present=False); want("PrometheusRule", present=False)
for d in docs:
    if d["kind"] == "ConfigMap":
        for key, text in (d.get("data") or {}).items():
            low = text.lower()
            for needle in ("secret_access_key", "password", "sha256 =", "redis://:", "private+key+"):
                if needle in low and not key.endswith(".json"):
                    problems.append(f"ConfigMap {d['metadata']['name']} key {key} holds {needle!r}")
    if d["kind"] in ("Deployment", "StatefulSet"):
        spec = d["spec"]["template"]["spec"]
        for ctr in spec.get("containers", []) + spec.get("initContainers", []):
            sc = ctr.get("securityContext", {})
            if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
                    and sc.get("capabilities", {}).get("drop") == ["ALL"] and sc.get("runAsNonRoot")):
                problems.append(f"{d['kind']} {d['metadata']['name']} container {ctr['name']}: securityContext not locked down")
        if d["metadata"]["labels"].get("app.kubernetes.io/component") in ("registry", "worker", "edge"):
            ann = d["spec"]["template"]["metadata"].get("annotations", {})
            if "checksum/config" not in ann:
                problems.append(f"{d['kind']} {d['metadata']['name']}: no checksum/config annotation")
            ctr = spec["containers"][0]
            for probe in ("livenessProbe", "readinessProbe"):
                if probe not in ctr:
                    problems.append(f"{d['metadata']['name']}: no {probe}")
# The checksum database ([ledger]), as the values files (merged in order) ask for it.
ledger = {}
for f in files.split(","):
    ledger.update((yaml.safe_load(open(f)) or {}).get("ledger") or {})
secrets = {}
for d in docs:
    if d["kind"] == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
        data.update(d.get("stringData") or {})
        secrets[d["metadata"]["name"]] = data
workloads = {d["metadata"]["labels"].get("app.kubernetes.io/component"): d for d in docs
             if d["kind"] in ("Deployment", "StatefulSet")}
def registry_toml_of(w):
    # The registry.toml a registry or worker pod mounts: the Secret behind its config volume.
    for v in w["spec"]["template"]["spec"].get("volumes", []):
        for src in ([v] if "secret" in v else []) + [s for s in v.get("projected", {}).get("sources", []) if "secret" in s]:
            ref = src["secret"]
            sname = ref.get("secretName", ref.get("name"))
            if "registry.toml" in secrets.get(sname, {}):
                return sname, tomllib.loads(secrets[sname]["registry.toml"])
    return None, None
if ledger.get("enabled"):
    want_secret = ledger.get("existingSecret") or f"{release}-strata-ledger"
    want_key = ledger.get("existingSecretKey", "signer-key") if ledger.get("existingSecret") else "signer-key"
    if not ledger.get("existingSecret"):
        got = secrets.get(want_secret, {}).get("signer-key")
        if got is None:
            problems.append(f"no chart-made Secret {want_secret} with key signer-key")
        elif got != ledger.get("signerKey"):
            problems.append(f"Secret {want_secret} does not hold ledger.signerKey")
    elif any(s.endswith("-strata-ledger") for s in secrets):
        problems.append("a chart-made ledger Secret next to ledger.existingSecret")
    for comp in ("registry", "worker"):
        w = workloads.get(comp)
        if w is None:
            problems.append(f"ledger on, but no {comp} workload")
            continue
        ctr = w["spec"]["template"]["spec"]["containers"][0]
        env = [e for e in ctr.get("env", []) if e["name"] == "STRATA_LEDGER_KEY"]
        ref = env[0].get("valueFrom", {}).get("secretKeyRef", {}) if len(env) == 1 else {}
        if (ref.get("name"), ref.get("key")) != (want_secret, want_key):
            problems.append(f"{comp}: STRATA_LEDGER_KEY is not from Secret {want_secret} key {want_key}: {env}")
        sname, reg = registry_toml_of(w)
        table = (reg or {}).get("ledger")
        if table != {"name": ledger["name"], "key_env": "STRATA_LEDGER_KEY"}:
            problems.append(f"{comp}: the registry.toml it mounts (Secret {sname}) has [ledger] {table!r}, "
                            f"not name = {ledger['name']!r}, key_env = \"STRATA_LEDGER_KEY\"")
        for v in w["spec"]["template"]["spec"].get("volumes", []):
            srcs = ([v] if "secret" in v else []) + [s for s in v.get("projected", {}).get("sources", []) if "secret" in s]
            for src in srcs:
                if src["secret"].get("secretName", src["secret"].get("name")) == want_secret:
                    problems.append(f"{comp}: mounts the ledger's Secret as a file (fsGroup makes it group-readable; the registry refuses that)")
else:
    for comp, w in workloads.items():
        ctr = w["spec"]["template"]["spec"]["containers"][0]
        if any(e["name"] == "STRATA_LEDGER_KEY" for e in ctr.get("env", [])):
            problems.append(f"{comp}: STRATA_LEDGER_KEY without ledger.enabled")
        _, reg = registry_toml_of(w)
        if reg and "ledger" in reg:
            problems.append(f"{comp}: [ledger] without ledger.enabled")
    if any(s.endswith("-strata-ledger") for s in secrets):
        problems.append("a ledger Secret without ledger.enabled")
# Edges forward sumdb/<name>/ and need neither the key nor a [ledger] table.
if "edge" in workloads:
    ctr = workloads["edge"]["spec"]["template"]["spec"]["containers"][0]
    if any(e["name"] == "STRATA_LEDGER_KEY" for e in ctr.get("env", [])):
        problems.append("edge: has STRATA_LEDGER_KEY")
    for d in docs:
        if d["kind"] == "ConfigMap" and "edge.toml" in (d.get("data") or {}):
            if "ledger" in tomllib.loads(d["data"]["edge.toml"]):
                problems.append("edge.toml has a [ledger] table")
if problems:
    sys.exit("\n".join(f"check-helm:   {name} ({api}): {p}" for p in problems))
PY
  done
done
step "helm template + kubeconform: every example, with and without the monitoring CRDs, Kubernetes $K8S_VERSIONS"

# NOTES.txt: the GOPROXY URL, and the publish command where the release has a registry.
for c in "${CASES[@]}"; do
  IFS='|' read -r name release ns files <<<"$c"
  mapfile -t vargs < <(values_args "$files")
  "$HELM" install "$release" "$CHART" --namespace "$ns" --dry-run=client "${vargs[@]}" >"$WORK/notes.out" 2>&1 \
    || { cat "$WORK/notes.out" >&2; fail "helm install --dry-run=client $name"; }
  sed -n '/^NOTES:/,$p' "$WORK/notes.out" >"$WORK/notes.txt"
  grep -q 'export GOPROXY=http' "$WORK/notes.txt" || { cat "$WORK/notes.txt" >&2; fail "NOTES of $name print no GOPROXY URL"; }
  if grep -q 'kind: Deployment' "$WORK/notes.out" && grep -q 'strata-registry"\]' "$WORK/notes.out"; then
    grep -Eq 'strata publish \S+ --repo [a-z0-9._-]+ --version v\S+ --registry http' "$WORK/notes.txt" \
      || { cat "$WORK/notes.txt" >&2; fail "NOTES of $name print no publish command"; }
  fi
  # With the checksum database: how clients set GOSUMDB, and where the verifier key is.
  db=$(ledger_name "$files")
  if [ -n "$db" ]; then
    grep -qF "export GOSUMDB=\"$db+" "$WORK/notes.txt" && grep -q 'verifier_key' "$WORK/notes.txt" \
      && grep -q "strata sumdb keygen $db" "$WORK/notes.txt" \
      || { cat "$WORK/notes.txt" >&2; fail "NOTES of $name (ledger on) do not say how clients set GOSUMDB for $db"; }
  fi
done
step "NOTES.txt: GOPROXY URL and publish command in every example; GOSUMDB where the ledger is on"

# A new chart-made signer key (ledger.signerKey) rolls the registry and the worker.
printf 'ledger:\n  signerKey: "%s"\n' "$(keygen sum.ci.example)" >"$WORK/values/ledger-key-2.yaml"
"$HELM" template full "$CHART" --namespace strata -f "$CHART/ci/full-values.yaml" -f "$WORK/values/ledger-key-2.yaml" \
  >"$WORK/full-key-2.yaml" 2>"$WORK/template.err" || { cat "$WORK/template.err" >&2; fail "helm template full (second key)"; }
"$DEPLOY_PY" - "$WORK/full-without-crds-${K8S_VERSIONS##* }.yaml" "$WORK/full-key-2.yaml" <<'PY' || fail "a new ledger.signerKey does not roll the registry and the worker"
import sys, yaml
def sums(path):
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/secrets"]
            for d in yaml.safe_load_all(open(path)) if d and d["kind"] == "Deployment"}
a, b = sums(sys.argv[1]), sums(sys.argv[2])
same = [c for c in ("registry", "worker") if a.get(c) is None or a.get(c) == b.get(c)]
if same:
    sys.exit(f"check-helm:   checksum/secrets of {same} unchanged by a new ledger.signerKey")
PY
step "a new ledger.signerKey changes checksum/secrets of the registry and the worker (they roll)"

# --- 4. the schema refuses mistakes ---------------------------------------------------------
cat >"$WORK/typo.yaml" <<'EOF'
s3: {bucket: b}
registry:
  replica: 3
EOF
cat >"$WORK/typo-deep.yaml" <<'EOF'
s3: {bucket: b}
registry:
  config:
    repositories:
      - name: private
        kind: local
        anonymus_read: true
EOF
cat >"$WORK/wrong-type.yaml" <<'EOF'
s3: {bucket: b}
registry:
  replicas: three
EOF
cat >"$WORK/wrong-type-nested.yaml" <<'EOF'
s3: {bucket: b}
edge:
  cache:
    persistence:
      enabled: "yes"
EOF
# The checksum database's values: misspelt, mistyped, misplaced, incomplete.
cat >"$WORK/ledger-typo.yaml" <<'EOF'
s3: {bucket: b}
ledger:
  enabled: true
  name: sum.corp.example
  existingSecret: strata-ledger
  existingSecertKey: signer-key
EOF
cat >"$WORK/ledger-wrong-type.yaml" <<'EOF'
s3: {bucket: b}
ledger:
  enabled: "true"
  name: sum.corp.example
  existingSecret: strata-ledger
EOF
cat >"$WORK/ledger-wrong-type-key.yaml" <<'EOF'
s3: {bucket: b}
ledger:
  enabled: true
  name: sum.corp.example
  signerKey: 12345
EOF
cat >"$WORK/ledger-bad-name.yaml" <<'EOF'
s3: {bucket: b}
ledger:
  enabled: true
  name: sum corp example
  existingSecret: strata-ledger
EOF
cat >"$WORK/ledger-in-config.yaml" <<'EOF'
s3: {bucket: b}
registry:
  config:
    ledger:
      name: sum.corp.example
      key_env: STRATA_LEDGER_KEY
EOF
cat >"$WORK/ledger-no-name.yaml" <<'EOF'
s3: {bucket: b}
ledger:
  enabled: true
  existingSecret: strata-ledger
EOF
cat >"$WORK/ledger-no-key.yaml" <<'EOF'
s3: {bucket: b}
ledger:
  enabled: true
  name: sum.corp.example
EOF
cat >"$WORK/ledger-two-keys.yaml" <<'EOF'
s3: {bucket: b}
ledger:
  enabled: true
  name: sum.corp.example
  existingSecret: strata-ledger
  signerKey: PRIVATE+KEY+sum.corp.example+00000000+AAAA
EOF
printf 's3: {bucket: b}\nledger:\n  enabled: true\n  name: sum.corp.example\n  signerKey: "%s"\n' \
  "$(keygen sum.other.example)" >"$WORK/ledger-other-key.yaml"
expect_refusal() { # file, regex the message must match (case-insensitive)[, commands]
  local file=$1 pattern=$2 cmd
  # `helm lint` only logs a template's `fail` (lint mode): what no schema can express (a value
  # compared with another) is refused by `helm template` and install only.
  for cmd in ${3:-lint template}; do
    local args=("$cmd" "$CHART" -f "$file")
    [ "$cmd" = lint ] && args=(lint --strict "$CHART" -f "$file")
    [ "$cmd" = template ] && args=(template neg "$CHART" -f "$file")
    if "$HELM" "${args[@]}" >"$WORK/neg.out" 2>&1; then
      cat "$WORK/neg.out" >&2
      fail "helm $cmd accepted $(basename "$file") (the schema should refuse it)"
    fi
    grep -Eiq -- "$pattern" "$WORK/neg.out" || {
      cat "$WORK/neg.out" >&2
      fail "helm $cmd refused $(basename "$file") but its message does not match /$pattern/"
    }
  done
  echo "check-helm:   $(basename "$file"): refused ($(grep -Eio -m1 -- "$pattern" "$WORK/neg.out"))"
}
expect_refusal "$WORK/typo.yaml" "additional propert(y|ies) .?'?replica'? .*not allowed"
expect_refusal "$WORK/typo-deep.yaml" "additional propert(y|ies) .?'?anonymus_read'? .*not allowed"
expect_refusal "$WORK/wrong-type.yaml" "/registry/replicas.*(got string, want integer|expected integer)"
expect_refusal "$WORK/wrong-type-nested.yaml" "/edge/cache/persistence/enabled.*(got string, want boolean|expected boolean)"
expect_refusal "$WORK/ledger-typo.yaml" "additional propert(y|ies) .?'?existingSecertKey'? .*not allowed"
expect_refusal "$WORK/ledger-wrong-type.yaml" "/ledger/enabled.*(got string, want boolean|expected boolean)"
expect_refusal "$WORK/ledger-wrong-type-key.yaml" "/ledger/signerKey.*(got number, want string|expected string)"
expect_refusal "$WORK/ledger-bad-name.yaml" "/ledger/name.*does not match pattern"
expect_refusal "$WORK/ledger-in-config.yaml" "additional propert(y|ies) .?'?ledger'? .*not allowed"
expect_refusal "$WORK/ledger-no-name.yaml" "/ledger/name.*minLength: got 0, want 1"
expect_refusal "$WORK/ledger-no-key.yaml" "/ledger/signerKey.*minLength: got 0, want 1"
expect_refusal "$WORK/ledger-two-keys.yaml" "at '/ledger': 'not' failed"
expect_refusal "$WORK/ledger-other-key.yaml" "ledger.signerKey is not a signer key of .sum.corp.example." template
step "values.schema.json refuses misspelt keys and wrong types (ledger.* too); the templates an incomplete ledger"

# --- 5. rendered configuration files and environments ---------------------------------------
# The examples go to $OUT_DIR (the boot test's input); the ci/ case only to the work directory.
for c in "${CASES[@]}"; do
  IFS='|' read -r name release ns files <<<"$c"
  [ "$name" = central-no-crds ] && continue
  dest="$OUT_DIR/$release"
  [ "$name" = full ] && dest="$WORK/configs/$release"
  "$DEPLOY_PY" - "$WORK/$name-without-crds-${K8S_VERSIONS##* }.yaml" "$dest" "$release" <<'PY' || fail "extracting the configuration of $name"
import base64, json, pathlib, sys, yaml
path, out, release = sys.argv[1:]
out = pathlib.Path(out)
out.mkdir(parents=True, exist_ok=True)
docs = [d for d in yaml.safe_load_all(open(path)) if d]
secrets = {}
for d in docs:
    if d["kind"] == "Secret":
        data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
        data.update(d.get("stringData") or {})
        secrets[d["metadata"]["name"]] = data
files = {}
for d in docs:
    if d["kind"] in ("ConfigMap", "Secret"):
        data = (d.get("data") or {}) if d["kind"] == "ConfigMap" else secrets[d["metadata"]["name"]]
        for key, text in data.items():
            if key.endswith(".toml"):
                (out / key).write_text(text)
                files[key] = text
# In-cluster addresses the files and variables name (a boot test maps them to local servers).
services = {}
for d in docs:
    if d["kind"] == "Service":
        meta = d["metadata"]
        host = f"{meta['name']}.{meta.get('namespace', 'default')}.svc"
        services[host] = {p["name"]: p["port"] for p in d["spec"]["ports"]}
written = []
for d in docs:
    if d["kind"] not in ("Deployment", "StatefulSet"):
        continue
    component = d["metadata"]["labels"].get("app.kubernetes.io/component")
    if component not in ("registry", "worker", "edge"):
        continue
    pod = d["spec"]["template"]["spec"]
    ctr = pod["containers"][0]
    resolved = {}
    for e in ctr.get("env", []):
        if "value" in e:
            resolved[e["name"]] = e["value"]
        elif "secretKeyRef" in e.get("valueFrom", {}):
            ref = e["valueFrom"]["secretKeyRef"]
            resolved[e["name"]] = secrets.get(ref["name"], {}).get(ref["key"])
        elif "fieldRef" in e.get("valueFrom", {}):
            resolved[e["name"]] = f"{release}-{component}-0" if e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name" else None
        else:
            resolved[e["name"]] = None
    config = ctr["args"][ctr["args"].index("--config") + 1]
    mounts = {config: pathlib.Path(config).name}
    if component == "worker":
        mounts["/etc/strata/registry.toml"] = "registry.toml"
    for target in mounts.values():
        if target not in files:
            sys.exit(f"{component}: {target} is not rendered by this release")
    (out / f"{component}.env.json").write_text(json.dumps({
        "release": release, "component": component, "binary": ctr["command"][0],
        "args": ctr["args"], "config": config, "mounts": mounts,
        "env": ctr.get("env", []), "resolved": resolved, "services": services}, indent=2) + "\n")
    written.append(component)
print(f"check-helm:   {out}: " + ", ".join(f"{c}.toml + {c}.env.json" for c in sorted(written)))
PY
done

boot_check() { # release dir, component
  local dir=$1 component=$2 bin scratch status
  case $component in
    registry) bin=strata-registry ;;
    worker) bin=strata-sync ;;
    edge) bin=strata-edge ;;
  esac
  scratch=$(mktemp -d "$WORK/boot.XXXXXX")
  # The pod's paths and listen addresses, moved into a scratch directory and onto free ports.
  for f in "$dir"/*.toml; do
    sed -e "s#/etc/strata/#$scratch/etc/#g" -e "s#/var/lib/strata/#$scratch/var/#g" \
        -e "s#/var/cache/strata#$scratch/cache#g" -e 's#"0\.0\.0\.0:[0-9]*"#"127.0.0.1:0"#g' \
        "$f" >"$scratch/$(basename "$f")"
  done
  mkdir -p "$scratch/etc" "$scratch/var/spool" "$scratch/cache"
  cp "$scratch"/*.toml "$scratch/etc/"
  # TLS files where the pod mounts its Secrets (a self-signed certificate for localhost).
  if [ -d "$WORK/pki" ]; then
    for d in tls grpc-tls registry-tls; do
      mkdir -p "$scratch/etc/$d" && cp "$WORK/pki/tls.crt" "$WORK/pki/tls.key" "$scratch/etc/$d/"
      cp "$WORK/pki/tls.crt" "$scratch/etc/$d/ca.crt"
    done
  fi
  local config env_args
  config=$("$DEPLOY_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["config"])' "$dir/$component.env.json")
  mapfile -t env_args < <("$DEPLOY_PY" - "$dir/$component.env.json" "$dir/registry.toml" "$TARGET/strata" <<'PY'
import json, os, subprocess, sys, tomllib
spec_path, registry_toml, strata = sys.argv[1:]
spec = json.load(open(spec_path))
for name, value in spec["resolved"].items():
    if value is None and name.endswith("_REDIS_URL"):
        value = "redis://127.0.0.1:1/0"     # from a Secret outside the chart: nothing listening
    if value is None and name == "STRATA_LEDGER_KEY":
        # The operator's Secret (ledger.existingSecret): a stand-in key of the rendered name.
        db = tomllib.load(open(registry_toml, "rb"))["ledger"]["name"]
        value = subprocess.run([strata, "sumdb", "keygen", db], capture_output=True, text=True,
                               check=True).stdout.strip()
        print(f"check-helm:   {spec['release']}/{spec['component']}: STRATA_LEDGER_KEY from the "
              f"operator's Secret -> a stand-in from `strata sumdb keygen {db}`", file=sys.stderr)
    if value is not None:
        print(f"{name}={value}")
PY
)
  # `--check-config`: loads and validates exactly as a start would, binds and touches nothing.
  set +e
  (cd "$scratch" && exec env -i PATH="$PATH" HOME="$scratch" AWS_EC2_METADATA_DISABLED=true \
      "${env_args[@]}" "$TARGET/$bin" --check-config --config "$scratch/etc/$(basename "$config")") \
      >"$scratch/check.out" 2>&1
  status=$?
  set -e
  if [ "$status" != 0 ]; then
    cat "$scratch/check.out" >&2
    fail "$bin --check-config refuses $dir/$component.toml (exit $status)"
  fi
  set +e
  (cd "$scratch" && exec env -i PATH="$PATH" HOME="$scratch" AWS_EC2_METADATA_DISABLED=true \
      "${env_args[@]}" timeout -s TERM 4 "$TARGET/$bin" --config "$scratch/etc/$(basename "$config")") \
      >"$scratch/stdout" 2>"$scratch/stderr"
  status=$?
  set -e
  # A configuration error: exit 64 with the loader's message, before any JSON log line — or,
  # for the worker, once it loads the embedded engine's registry.toml (which its
  # --check-config does not read): exit 64 naming the registry configuration.
  if [ "$status" = 64 ] && { ! grep -q '^{' "$scratch/stderr" || grep -q '^strata-sync: registry configuration:' "$scratch/stderr"; }; then
    cat "$scratch/stderr" >&2
    fail "$bin refuses $dir/$component.toml (exit 64, configuration error)"
  fi
  local how="ran until stopped"
  [ "$status" = 124 ] || how="exited $status after starting: $(grep -v '^{' "$scratch/stderr" | head -1 | cut -c1-120)"
  # The same file with one unknown key must be refused, or this check proves nothing.
  local cfg="$scratch/etc/$component-selftest.toml"
  { echo 'chart_selftest_unknown_key = 1'; cat "$scratch/etc/$(basename "$config")"; } >"$cfg"
  set +e
  (cd "$scratch" && exec env -i PATH="$PATH" HOME="$scratch" AWS_EC2_METADATA_DISABLED=true \
      "${env_args[@]}" timeout -s TERM 4 "$TARGET/$bin" --config "$cfg") >/dev/null 2>"$scratch/stderr.neg"
  status=$?
  set -e
  if [ "$status" != 64 ] || ! grep -q 'chart_selftest_unknown_key' "$scratch/stderr.neg"; then
    cat "$scratch/stderr.neg" >&2
    fail "$bin did not refuse an unknown key (exit $status): the boot check cannot tell a bad configuration"
  fi
  # With [ledger] on, the signer key is what the pod's STRATA_LEDGER_KEY brings: without it the
  # registry and the worker (its embedded engine) must refuse to start (a real start; the
  # --check-config runs above check the same configuration without starting).
  local ledger_note=""
  if printf '%s\n' "${env_args[@]}" | grep -q '^STRATA_LEDGER_KEY='; then
    local no_key=()
    mapfile -t no_key < <(printf '%s\n' "${env_args[@]}" | grep -v '^STRATA_LEDGER_KEY=')
    set +e
    (cd "$scratch" && exec env -i PATH="$PATH" HOME="$scratch" AWS_EC2_METADATA_DISABLED=true \
        "${no_key[@]}" timeout -s TERM 8 "$TARGET/$bin" --config "$scratch/etc/$(basename "$config")") \
        >"$scratch/nokey.out" 2>&1
    status=$?
    set -e
    if [ "$status" != 64 ] || ! grep -q 'ledger: key_env: the variable STRATA_LEDGER_KEY is not set' "$scratch/nokey.out"; then
      cat "$scratch/nokey.out" >&2
      fail "$bin accepted $dir/$component.toml without STRATA_LEDGER_KEY (exit $status)"
    fi
    ledger_note="; [ledger] with STRATA_LEDGER_KEY, refused without it"
  fi
  echo "check-helm:   $bin loads $(basename "$dir")/$component.toml (--check-config ok; $how; refuses an unknown key with exit 64$ledger_note)"
}

if command -v openssl >/dev/null; then
  mkdir -p "$WORK/pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -keyout "$WORK/pki/tls.key" -out "$WORK/pki/tls.crt" >/dev/null 2>&1 \
    || fail "openssl could not make a test certificate"
fi
for dir in "$OUT_DIR"/*/ "$WORK/configs"/*/; do
  dir=${dir%/}
  for envfile in "$dir"/*.env.json; do
    component=$(basename "$envfile" .env.json)
    boot_check "$dir" "$component"
  done
done
step "ok: configuration files and environments in $OUT_DIR"

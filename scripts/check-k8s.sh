#!/usr/bin/env bash
# The kustomize manifests in k8s/, checked three ways:
#   1. the bases are what the Helm chart renders today (scripts/gen-k8s.sh into a temporary
#      directory, compared file by file with k8s/base): the plain manifests cannot drift from the
#      chart;
#   2. `kustomize build` of every base and overlay is valid Kubernetes, by kubeconform in strict
#      mode against the offline schemas of each supported Kubernetes version
#      (scripts/deploy-tools.sh: K8S_VERSIONS) and prometheus-operator's CRDs;
#   3. every service configuration the overlays produce (the TOML in their ConfigMaps and
#      Secrets, with the containers' environment) is accepted by the real binary:
#      `<binary> --check-config`.
# Needs the deploy tools (scripts/deploy-tools.sh ensure) and builds the service binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/deploy-tools.sh
source scripts/deploy-tools.sh
fail() { echo "check-k8s: $*" >&2; exit 1; }
for t in "$HELM" "$KUSTOMIZE" "$KUBECONFORM" "$DEPLOY_PY"; do
  [ -x "$t" ] || fail "$t is missing: run scripts/deploy-tools.sh ensure"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-check-k8s.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The committed bases are a fresh render of the chart.
scripts/gen-k8s.sh "$work/base" >/dev/null
if ! diff -ru k8s/base "$work/base" >"$work/base.diff"; then
  head -40 "$work/base.diff" >&2
  fail "k8s/base differs from what the chart renders now: run scripts/gen-k8s.sh and commit k8s/base"
fi
echo "check-k8s: k8s/base is the chart's render"

# 2. Every kustomization builds and validates.
targets=(base/central base/edge)
for overlay in k8s/overlays/*/; do
  targets+=("overlays/$(basename "$overlay")")
done
for target in "${targets[@]}"; do
  out="$work/$(echo "$target" | tr / -).yaml"
  "$KUSTOMIZE" build "k8s/$target" >"$out" || fail "kustomize build k8s/$target failed"
  for version in $K8S_VERSIONS; do
    "$KUBECONFORM" -strict -summary \
      -schema-location "$K8S_SCHEMAS/v$version/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -schema-location "$CRD_SCHEMAS/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      "$out" >"$work/kubeconform.out" 2>&1 \
      || { cat "$work/kubeconform.out" >&2; fail "k8s/$target is not valid Kubernetes $version"; }
    echo "check-k8s: k8s/$target, Kubernetes $version: $(tail -1 "$work/kubeconform.out")"
  done
done

# 3. The configurations load in the real services.
bin=$(scripts/service-bins.sh) || fail "the service binaries could not be built"
for overlay in k8s/overlays/*/; do
  name=$(basename "$overlay")
  "$DEPLOY_PY" scripts/deploy_configs.py check "$work/overlays-$name.yaml" "$work/configs-$name" "$bin" \
    || fail "a configuration of k8s/overlays/$name does not load (see above)"
done
echo "check-k8s: ok"

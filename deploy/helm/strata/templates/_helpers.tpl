{{/* ---------------------------------------------------------------------------------------
  Names and labels
--------------------------------------------------------------------------------------- */}}

{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>", e.g. strata-central-registry. Argument: (dict "root" $ "component" "registry") */}}
{{- define "strata.componentName" -}}
{{- printf "%s-%s" (include "strata.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strata.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "strata.labels" -}}
helm.sh/chart: {{ include "strata.chart" . }}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: strata
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Argument: (dict "root" $ "component" "registry") */}}
{{- define "strata.componentLabels" -}}
{{ include "strata.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "strata.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end }}

{{- define "strata.serviceAccountName" -}}
{{- $sa := index .root.Values .component "serviceAccount" -}}
{{- if $sa.create -}}
{{ default (include "strata.componentName" .) $sa.name }}
{{- else -}}
{{ default "default" $sa.name }}
{{- end -}}
{{- end }}

{{/* ---------------------------------------------------------------------------------------
  Backends: Redis URL and S3 credentials (Secrets, never ConfigMaps)
--------------------------------------------------------------------------------------- */}}

{{/* True ("true") when some Redis is configured: bundled, external URL, or an existing Secret. */}}
{{- define "strata.redis.configured" -}}
{{- if or .Values.redis.enabled .Values.externalRedis.url .Values.externalRedis.existingSecret -}}true{{- end -}}
{{- end }}

{{- define "strata.redis.secretName" -}}
{{- if .Values.externalRedis.existingSecret -}}
{{ .Values.externalRedis.existingSecret }}
{{- else -}}
{{ include "strata.fullname" . }}-redis-url
{{- end -}}
{{- end }}

{{- define "strata.redis.secretKey" -}}
{{- if .Values.externalRedis.existingSecret -}}
{{ .Values.externalRedis.existingSecretKey }}
{{- else -}}
url
{{- end -}}
{{- end }}

{{/* The Redis URL the chart writes into its own Secret (bundled Redis or externalRedis.url). */}}
{{- define "strata.redis.url" -}}
{{- if .Values.redis.enabled -}}
{{- $host := printf "%s-redis.%s.svc:%d" (include "strata.fullname" .) .Release.Namespace (int .Values.redis.port) -}}
{{- if .Values.redis.password -}}
redis://:{{ .Values.redis.password | urlquery }}@{{ $host }}/0
{{- else -}}
redis://{{ $host }}/0
{{- end -}}
{{- else -}}
{{ .Values.externalRedis.url }}
{{- end -}}
{{- end }}

{{/* env entries: STRATA_<SERVICE>_REDIS_URL from the Redis Secret. Argument: (dict "root" $ "vars" (list "STRATA_SYNC_REDIS_URL" …)) */}}
{{- define "strata.redis.env" -}}
{{- if include "strata.redis.configured" .root }}
{{- range .vars }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "strata.redis.secretName" $.root }}
      key: {{ include "strata.redis.secretKey" $.root }}
{{- end }}
{{- end }}
{{- end }}

{{/* S3 credentials, as the AWS default chain's environment variables; nothing when the pods
     get credentials otherwise (IRSA / EKS Pod Identity / instance profile). */}}
{{- define "strata.s3.env" -}}
{{- $s3 := .Values.s3 -}}
{{- $name := "" -}}{{- $idKey := "" -}}{{- $secretKey := "" -}}{{- $tokenKey := "" -}}
{{- if $s3.existingSecret -}}
{{- $name = $s3.existingSecret -}}{{- $idKey = $s3.existingSecretKeys.accessKeyId -}}{{- $secretKey = $s3.existingSecretKeys.secretAccessKey -}}{{- $tokenKey = $s3.existingSecretKeys.sessionToken -}}
{{- else if $s3.accessKeyId -}}
{{- $name = printf "%s-s3" (include "strata.fullname" .) -}}{{- $idKey = "AWS_ACCESS_KEY_ID" -}}{{- $secretKey = "AWS_SECRET_ACCESS_KEY" -}}{{- if $s3.sessionToken }}{{ $tokenKey = "AWS_SESSION_TOKEN" }}{{ end -}}
{{- else if .Values.minio.enabled -}}
{{- $name = printf "%s-minio" (include "strata.fullname" .) -}}{{- $idKey = "root-user" -}}{{- $secretKey = "root-password" -}}
{{- end -}}
{{- if $name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $idKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $secretKey }}
{{- if $tokenKey }}
- name: AWS_SESSION_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $tokenKey }}
{{- end }}
{{- end }}
{{- end }}

{{/* ---------------------------------------------------------------------------------------
  The registry's checksum database ([ledger]): its signer key reaches the registry and the
  worker as STRATA_LEDGER_KEY (key_env) from a Secret — never as a mounted file, which the pods'
  fsGroup would make group-readable and the registry would refuse.
--------------------------------------------------------------------------------------- */}}

{{- define "strata.ledger.keyEnv" -}}STRATA_LEDGER_KEY{{- end }}

{{- define "strata.ledger.secretName" -}}
{{- if .Values.ledger.existingSecret -}}
{{ .Values.ledger.existingSecret }}
{{- else -}}
{{ include "strata.fullname" . }}-ledger
{{- end -}}
{{- end }}

{{- define "strata.ledger.secretKey" -}}
{{- if .Values.ledger.existingSecret -}}
{{ .Values.ledger.existingSecretKey }}
{{- else -}}
signer-key
{{- end -}}
{{- end }}

{{/* The [ledger] table of registry.toml (JSON), after checking the values; "" when off. */}}
{{- define "strata.ledger.table" -}}
{{- $l := .Values.ledger -}}
{{- if $l.enabled -}}
{{- $name := $l.name -}}
{{- if not $name -}}
{{- fail "ledger.name: the checksum database's name (a host name such as sum.corp.example) is required with ledger.enabled" -}}
{{- end -}}
{{- if and $l.existingSecret $l.signerKey -}}
{{- fail "ledger: set ledger.existingSecret or ledger.signerKey, not both" -}}
{{- end -}}
{{- if not (or $l.existingSecret $l.signerKey) -}}
{{- fail "ledger: the signer key is missing: ledger.existingSecret (a Secret holding `strata sumdb keygen` output) or ledger.signerKey" -}}
{{- end -}}
{{- if and $l.signerKey (not (hasPrefix (printf "PRIVATE+KEY+%s+" $name) $l.signerKey)) -}}
{{- fail (printf "ledger.signerKey is not a signer key of %q (it must start with PRIVATE+KEY+%s+; `strata sumdb keygen %s` makes one)" $name $name $name) -}}
{{- end -}}
{{- dict "name" $name "key_env" (include "strata.ledger.keyEnv" .) | toJson -}}
{{- end -}}
{{- end }}

{{/* env entry: STRATA_LEDGER_KEY from the ledger's Secret (registry and worker). */}}
{{- define "strata.ledger.env" -}}
{{- if .Values.ledger.enabled }}
- name: {{ include "strata.ledger.keyEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "strata.ledger.secretName" . }}
      key: {{ include "strata.ledger.secretKey" . }}
{{- end }}
{{- end }}

{{/* The registry's storage table (S3 only: registry and worker pods share it). */}}
{{- define "strata.storage" -}}
{{- $s3 := .Values.s3 -}}
{{- $st := dict "kind" "s3" "region" $s3.region "path_style" $s3.pathStyle -}}
{{- if .Values.minio.enabled -}}
{{- $_ := set $st "bucket" .Values.minio.bucket -}}
{{- $_ := set $st "endpoint" (printf "http://%s-minio.%s.svc:%d" (include "strata.fullname" .) .Release.Namespace (int .Values.minio.port)) -}}
{{- $_ := set $st "path_style" true -}}
{{- else -}}
{{- $_ := set $st "bucket" (required "s3.bucket is required (or minio.enabled=true for a trial)" $s3.bucket) -}}
{{- if $s3.endpoint }}{{ $_ := set $st "endpoint" $s3.endpoint }}{{ end -}}
{{- end -}}
{{- if $s3.prefix }}{{ $_ := set $st "prefix" $s3.prefix }}{{ end -}}
{{- if $s3.partSize }}{{ $_ := set $st "part_size" $s3.partSize }}{{ end -}}
{{- toJson $st -}}
{{- end }}

{{/* ---------------------------------------------------------------------------------------
  TOML rendering. Values arrive as YAML numbers (float64 in Helm), so integers are printed
  without a fraction (the services' u64 fields refuse 1.0); strings are JSON-quoted (a valid
  TOML basic string); maps nested below a table become inline tables.
--------------------------------------------------------------------------------------- */}}

{{- define "strata.toml.key" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end -}}
{{- end }}

{{- define "strata.toml.value" -}}
{{- if eq (typeOf .) "json.Number" -}}{{ . }}
{{- else if kindIs "string" . -}}{{ toJson . }}
{{- else if kindIs "bool" . -}}{{ ternary "true" "false" . }}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 (floor .)) (float64 .) }}{{ int64 . }}{{ else }}{{ . }}{{ end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) -}}{{ . }}
{{- else if kindIs "slice" . -}}
[{{ range $i, $v := . }}{{ if $i }}, {{ end }}{{ include "strata.toml.value" $v }}{{ end }}]
{{- else if kindIs "map" . -}}
{{- $m := . -}}
{ {{- range $i, $k := keys $m | sortAlpha }}{{ if $i }},{{ end }} {{ include "strata.toml.key" $k }} = {{ include "strata.toml.value" (index $m $k) }}{{ end }} }
{{- else -}}
{{- fail (printf "cannot render %v (%s) as TOML" . (typeOf .)) -}}
{{- end -}}
{{- end }}

{{/* "key = value" lines of a map (nil values left out, so a default can be unset with null). */}}
{{- define "strata.toml.table" -}}
{{- $m := . -}}
{{- range $k := keys $m | sortAlpha }}{{ $v := index $m $k }}{{ if not (kindIs "invalid" $v) }}
{{ include "strata.toml.key" $k }} = {{ include "strata.toml.value" $v }}
{{- end }}{{ end }}
{{- end }}

{{- define "strata.toml.isTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) -}}
{{- $all := true -}}{{- range . }}{{ if not (kindIs "map" .) }}{{ $all = false }}{{ end }}{{ end -}}
{{- if $all }}true{{ end -}}
{{- end -}}
{{- end }}

{{/* A whole TOML document from a map: top-level values first (TOML puts later keys inside the
     last table), then [tables], then [[arrays of tables]]. */}}
{{- define "strata.toml.document" -}}
{{- $doc := . -}}
{{- range $k := keys $doc | sortAlpha }}{{ $v := index $doc $k }}
{{- if not (or (kindIs "invalid" $v) (kindIs "map" $v) (include "strata.toml.isTableArray" $v)) }}
{{ include "strata.toml.key" $k }} = {{ include "strata.toml.value" $v }}
{{- end }}{{ end }}
{{- range $k := keys $doc | sortAlpha }}{{ $v := index $doc $k }}
{{- if kindIs "map" $v }}

[{{ include "strata.toml.key" $k }}]
{{- include "strata.toml.table" $v }}
{{- end }}{{ end }}
{{- range $k := keys $doc | sortAlpha }}{{ $v := index $doc $k }}
{{- if include "strata.toml.isTableArray" $v }}
{{- range $item := $v }}

[[{{ include "strata.toml.key" $k }}]]
{{- include "strata.toml.table" $item }}
{{- end }}
{{- end }}{{ end }}
{{- end }}

{{/* ---------------------------------------------------------------------------------------
  Rendered configuration files
--------------------------------------------------------------------------------------- */}}

{{- define "strata.registry.toml" -}}
{{- $v := .Values.registry -}}
{{- $c := deepCopy ($v.config | default dict) -}}
{{- $server := deepCopy ($c.server | default dict) -}}
{{- $_ := set $server "http" (printf "0.0.0.0:%d" (int $v.ports.http)) -}}
{{- $_ := set $server "grpc" (printf "0.0.0.0:%d" (int $v.ports.grpc)) -}}
{{- $_ := set $server "spool_dir" "/var/lib/strata/spool" -}}
{{- if $v.tls.enabled -}}
{{- $_ := set $server "tls" (dict "cert" "/etc/strata/tls/tls.crt" "key" "/etc/strata/tls/tls.key") -}}
{{- end -}}
{{- if $v.grpcTls.enabled -}}
{{- $g := dict "cert" "/etc/strata/grpc-tls/tls.crt" "key" "/etc/strata/grpc-tls/tls.key" -}}
{{- if $v.grpcTls.requireClientCertificates }}{{ $_ := set $g "client_ca" "/etc/strata/grpc-tls/ca.crt" }}{{ end -}}
{{- $_ := set $server "grpc_tls" $g -}}
{{- end -}}
{{- $_ := set $c "server" $server -}}
{{- $_ := set $c "storage" (include "strata.storage" . | fromJson) -}}
{{- $_ := set $c "events" (dict "kind" "memory") -}}
{{- if not (hasKey $c "repositories") }}{{ $_ := set $c "repositories" list }}{{ end -}}
{{- if not (hasKey $c "tokens") }}{{ $_ := set $c "tokens" list }}{{ end -}}
{{- with include "strata.ledger.table" . }}{{ $_ := set $c "ledger" (fromJson .) }}{{ end -}}
# strata-registry configuration, rendered by the strata Helm chart from .Values.registry.config
# (and s3, minio, registry.tls, registry.grpcTls). Edit the values, not this Secret.
# Credentials are not in this file: S3 keys come from AWS_* variables (the default chain), and
{{- if include "strata.redis.configured" . }}
# events go to Redis Streams: STRATA_REGISTRY_REDIS_URL (from Secret {{ include "strata.redis.secretName" . }})
# replaces `events` below with { kind = "redis", url = <it>, stream = "strata:events" }.
{{- else }}
# no Redis is configured: events stay in-process (edges fall back to TTL-based freshness).
{{- end }}
{{- if .Values.ledger.enabled }}
# [ledger]: the checksum database's signer key comes from STRATA_LEDGER_KEY (Secret
# {{ include "strata.ledger.secretName" . }}, key {{ include "strata.ledger.secretKey" . }}) in the registry and the worker.
{{- end }}
{{ include "strata.toml.document" $c }}
{{ end }}

{{- define "strata.worker.toml" -}}
{{- $v := .Values.worker -}}
{{- $c := deepCopy ($v.config | default dict) -}}
{{- $_ := set $c "server" (dict "http" (printf "0.0.0.0:%d" (int $v.ports.http))) -}}
{{- $_ := set $c "registry" (dict "config" "/etc/strata/registry.toml") -}}
{{- $jobs := deepCopy ($c.jobs | default dict) -}}
{{- if include "strata.redis.configured" . -}}
{{- $_ := set $jobs "kind" "redis" -}}
{{- else -}}
{{- $jobs = dict "kind" "memory" -}}
{{- end -}}
{{- $_ := set $c "jobs" $jobs -}}
# strata-sync configuration, rendered by the strata Helm chart from .Values.worker.config.
# The embedded registry engine reads /etc/strata/registry.toml (the registry's own Secret).
{{- if include "strata.redis.configured" . }}
# jobs.url comes from STRATA_SYNC_REDIS_URL (Secret {{ include "strata.redis.secretName" . }}); the
# embedded engine's events from STRATA_REGISTRY_REDIS_URL; jobs.consumer from STRATA_SYNC_CONSUMER (the pod name).
{{- else }}
# No Redis: jobs run in an in-process queue (one worker replica only).
{{- end }}
{{ include "strata.toml.document" $c }}
{{ end }}

{{- define "strata.edge.toml" -}}
{{- $v := .Values.edge -}}
{{- $c := deepCopy ($v.config | default dict) -}}
{{- $server := deepCopy ($c.server | default dict) -}}
{{- $_ := set $server "listen" (printf "0.0.0.0:%d" (int $v.ports.http)) -}}
{{- $_ := set $server "admin_listen" (printf "0.0.0.0:%d" (int $v.ports.admin)) -}}
{{- if $v.tls.enabled -}}
{{- $_ := set $server "tls" (dict "cert" "/etc/strata/tls/tls.crt" "key" "/etc/strata/tls/tls.key") -}}
{{- end -}}
{{- $_ := set $c "server" $server -}}
{{- $cache := deepCopy ($c.cache | default dict) -}}
{{- $_ := set $cache "dir" "/var/cache/strata" -}}
{{- $_ := set $c "cache" $cache -}}
{{- if include "strata.redis.configured" . -}}
{{- $_ := set $c "events" (dict "kind" "redis" "stream" "strata:events") -}}
{{- else -}}
{{- $_ := set $c "events" (dict "kind" "none") -}}
{{- end -}}
{{- $declared := $c.registries | default list -}}
{{- if and (not $declared) .Values.registry.enabled -}}
{{- /* All-in-one release: the registry of this release. */ -}}
{{- $svc := printf "%s-registry.%s.svc" (include "strata.fullname" .) .Release.Namespace -}}
{{- $declared = list (dict "name" .Release.Name "grpc" (printf "%s://%s:%d" (ternary "https" "http" .Values.registry.grpcTls.enabled) $svc (int .Values.registry.service.grpcPort)) "http" (printf "%s://%s:%d" (ternary "https" "http" .Values.registry.tls.enabled) $svc (int .Values.registry.service.httpPort))) -}}
{{- end -}}
{{- $regs := list -}}
{{- range (required "edge.config.registries: at least one central registry (its gRPC and HTTP URLs)" $declared) -}}
{{- $r := deepCopy . -}}
{{- if $v.registryTls.enabled -}}
{{- if $v.registryTls.trustCA }}{{ $_ := set $r "ca" "/etc/strata/registry-tls/ca.crt" }}{{ end -}}
{{- if $v.registryTls.clientCertificate }}{{ $_ := set $r "cert" "/etc/strata/registry-tls/tls.crt" }}{{ $_ := set $r "key" "/etc/strata/registry-tls/tls.key" }}{{ end -}}
{{- end -}}
{{- $regs = append $regs $r -}}
{{- end -}}
{{- $_ := set $c "registries" $regs -}}
# strata-edge configuration, rendered by the strata Helm chart from .Values.edge.config.
{{- if include "strata.redis.configured" . }}
# events.url (and the heat reports' Redis) come from STRATA_EDGE_REDIS_URL (Secret {{ include "strata.redis.secretName" . }}).
{{- else }}
# No Redis: freshness by TTL only (cache.metadata_ttl_ms), no heat reports.
{{- end }}
{{ include "strata.toml.document" $c }}
{{ end }}

{{/* ---------------------------------------------------------------------------------------
  Pod pieces shared by the components
--------------------------------------------------------------------------------------- */}}

{{- define "strata.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "strata.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Scheduling: nodeSelector, tolerations, affinity, topologySpreadConstraints (a default
     zone + hostname spread when none is given). Argument: (dict "root" $ "component" "edge") */}}
{{- define "strata.scheduling" -}}
{{- $v := index .root.Values .component -}}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $v.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml $v.topologySpreadConstraints | nindent 2 }}
{{- else if .root.Values.defaultTopologySpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "strata.selectorLabels" . | nindent 8 }}
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "strata.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end }}

{{- define "strata.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "strata.probes" -}}
{{- $scheme := .scheme | default "HTTP" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
    scheme: {{ $scheme }}
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 6
startupProbe:
  httpGet:
    path: /healthz
    port: {{ .port }}
    scheme: {{ $scheme }}
  periodSeconds: 2
  failureThreshold: 60
readinessProbe:
  httpGet:
    path: /readyz
    port: {{ .port }}
    scheme: {{ $scheme }}
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 3
{{- end }}

{{/* A checksum of the Secrets the chart itself writes (Redis URL, S3 keys, TLS, the ledger's
     signer key), so changing one of them rolls the pods. Secrets named by existingSecret are
     not seen: restart the workloads after rotating those (README, "Rotate a token"). */}}
{{- define "strata.secretsChecksum" -}}
{{- $v := .Values -}}
{{- $parts := list (include "strata.redis.url" .) $v.s3.accessKeyId $v.s3.secretAccessKey $v.s3.sessionToken $v.minio.rootUser $v.minio.rootPassword $v.registry.tls $v.registry.grpcTls $v.edge.tls $v.edge.registryTls -}}
{{- /* Only when on: releases without the ledger keep their checksum (no roll on upgrade). */ -}}
{{- if $v.ledger.enabled }}{{ $parts = append $parts $v.ledger }}{{ end -}}
{{- $parts | toJson | sha256sum -}}
{{- end }}

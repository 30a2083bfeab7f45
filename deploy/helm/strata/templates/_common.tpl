{{/* Resources every component has in the same shape. Argument of each:
     (dict "root" $ "component" "registry" "kind" "Deployment") */}}

{{- define "strata.common.serviceAccount" -}}
{{- $v := index .root.Values .component -}}
{{- if $v.serviceAccount.create }}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "strata.serviceAccountName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with $v.serviceAccount.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
{{- end }}
{{- end }}

{{- define "strata.common.hpa" -}}
{{- $v := index .root.Values .component -}}
{{- if $v.autoscaling.enabled }}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: {{ .kind }}
    name: {{ include "strata.componentName" . }}
  minReplicas: {{ $v.autoscaling.minReplicas }}
  maxReplicas: {{ $v.autoscaling.maxReplicas }}
  metrics:
    {{- if $v.autoscaling.targetCPUUtilizationPercentage }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetCPUUtilizationPercentage }}
    {{- end }}
    {{- if $v.autoscaling.targetMemoryUtilizationPercentage }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ $v.autoscaling.targetMemoryUtilizationPercentage }}
    {{- end }}
  {{- with $v.autoscaling.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{- define "strata.common.pdb" -}}
{{- $v := index .root.Values .component -}}
{{- if $v.podDisruptionBudget.enabled }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
spec:
  {{- if $v.podDisruptionBudget.minAvailable }}
  minAvailable: {{ $v.podDisruptionBudget.minAvailable }}
  {{- else }}
  maxUnavailable: {{ $v.podDisruptionBudget.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "strata.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/* Ingress to the component's HTTP port. */}}
{{- define "strata.common.ingress" -}}
{{- $v := index .root.Values .component -}}
{{- $ing := $v.ingress -}}
{{- if $ing.enabled }}
{{- $svc := include "strata.componentName" . }}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ $svc }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
  {{- with $ing.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $ing.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- with $ing.tls }}
  tls:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- range $ing.hosts }}
    - host: {{ . | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ $svc }}
                port:
                  name: http
    {{- end }}
{{- end }}
{{- end }}

{{/* NetworkPolicy: ingress to the listed ports from anywhere in `from` (default: any source),
     metrics port from the monitoring namespace selector; egress open unless restricted. */}}
{{- define "strata.common.networkPolicy" -}}
{{- $v := index .root.Values .component -}}
{{- $np := $v.networkPolicy -}}
{{- if $np.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "strata.componentName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "strata.componentLabels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "strata.selectorLabels" . | nindent 6 }}
  policyTypes: ["Ingress"{{ if $np.egress }}, "Egress"{{ end }}]
  ingress:
    {{- range .ports }}
    - ports:
        - port: {{ .port }}
          protocol: TCP
      {{- if .from }}
      from:
        {{- toYaml .from | nindent 8 }}
      {{- end }}
    {{- end }}
  {{- with $np.egress }}
  egress:
    # DNS
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Names, labels and the pieces every Baton container shares. */}}

{{- define "baton.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "baton.fullname" -}}
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

{{- define "baton.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "baton.selectorLabels" -}}
app.kubernetes.io/name: {{ include "baton.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "baton.labels" -}}
helm.sh/chart: {{ include "baton.chart" . }}
{{ include "baton.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: baton
{{- end }}

{{/* Selector labels of one service's pods: (dict "root" $ "component" "gateway"). */}}
{{- define "baton.componentSelectorLabels" -}}
{{ include "baton.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "baton.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "baton.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "baton.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the shared secrets: the chart's own or existingSecret. */}}
{{- define "baton.secretName" -}}
{{- default (include "baton.fullname" .) .Values.existingSecret }}
{{- end }}

{{- define "baton.httpServiceName" -}}
{{- printf "%s-http" (include "baton.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "baton.grpcServiceName" -}}
{{- printf "%s-grpc" (include "baton.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The services that run in this mode, each with the values block that configures it. */}}
{{- define "baton.components" -}}
{{- if eq .Values.mode "combined" }}
{{- list "server" | toJson }}
{{- else if eq .Values.mode "split" }}
{{- list "gateway" "dispatcher" "scheduler" | toJson }}
{{- else }}
{{- fail (printf "mode must be \"split\" or \"combined\", not %q" .Values.mode) }}
{{- end }}
{{- end }}

{{/* Which component serves HTTP, and which one runners dial over gRPC. */}}
{{- define "baton.httpComponent" -}}
{{- if eq .Values.mode "combined" }}server{{ else }}gateway{{ end }}
{{- end }}

{{- define "baton.schedulerServiceName" -}}
{{- printf "%s-scheduler" (include "baton.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "baton.grpcComponent" -}}
{{- if eq .Values.mode "combined" }}server{{ else }}dispatcher{{ end }}
{{- end }}

{{- define "baton.shutdownGraceSeconds" -}}
{{- int (dig "shutdown" "grace_seconds" 30 .Values.config) }}
{{- end }}

{{/*
`config` as BATON_… variables: nested keys are joined with "_" and upper-cased (dots in a key
work the same), lists become comma-separated, and whole numbers are printed without an exponent.
Called as (dict "prefix" "BATON" "values" .Values.config).
*/}}
{{- define "baton.configEnv" -}}
{{- $prefix := .prefix }}
{{- range $key, $value := .values }}
{{- $name := printf "%s_%s" $prefix ($key | replace "." "_" | upper) }}
{{- if kindIs "map" $value }}
{{- include "baton.configEnv" (dict "prefix" $name "values" $value) }}
{{- else if kindIs "invalid" $value }}
{{- /* null: leave the key at its default */}}
{{- else }}
- name: {{ $name }}
  {{- if kindIs "slice" $value }}
  value: {{ join "," $value | quote }}
  {{- else if and (kindIs "float64" $value) (eq $value (floor $value)) }}
  value: {{ int64 $value | quote }}
  {{- else }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Environment of every Baton container that joins the cluster: (dict "root" $ "component" "gateway").
The node id is the pod's name (downward API): stable for the pod's life and unique in the cluster.
*/}}
{{- define "baton.env" -}}
{{- $root := .root }}
{{- $values := index $root.Values .component }}
{{- include "baton.configEnv" (dict "prefix" "BATON" "values" $root.Values.config) }}
- name: BATON_HA_ENABLED
  value: "true"
- name: BATON_HA_NODE_ID
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: BATON_HTTP_LISTEN
  value: "0.0.0.0:3000"
- name: BATON_GRPC_LISTEN
  value: "0.0.0.0:7000"
- name: BATON_DATA_DIR
  value: /var/lib/baton
{{- if has .component (list "gateway" "scheduler") }}
# Split mode: this service calls the dispatchers' gRPC through their Service.
- name: BATON_CLUSTER_DISPATCHER_URL
  value: {{ printf "http://%s:%d" (include "baton.grpcServiceName" $root) (int $root.Values.service.grpc.port) | quote }}
{{- end }}
{{- if eq .component "gateway" }}
# Split mode: schedules are changed through the schedulers' internal gRPC service.
- name: BATON_CLUSTER_SCHEDULER_URL
  value: {{ printf "http://%s:%d" (include "baton.schedulerServiceName" $root) (int $root.Values.service.grpc.port) | quote }}
{{- end }}
- name: BATON_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ include "baton.secretName" $root }}, key: database-url}
- name: BATON_HA_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ include "baton.secretName" $root }}, key: redis-url}
- name: BATON_CLUSTER_SECRET
  valueFrom:
    secretKeyRef: {name: {{ include "baton.secretName" $root }}, key: cluster-secret}
- name: BATON_SECRETS_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "baton.secretName" $root }}, key: encryption-key}
- name: BATON_ADMIN_USERNAME
  value: {{ $root.Values.admin.username | quote }}
- name: BATON_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "baton.secretName" $root }}, key: admin-password, optional: true}
{{- with $root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- with $values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

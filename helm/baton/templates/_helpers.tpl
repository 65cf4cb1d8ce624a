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

{{- define "baton.grpcComponent" -}}
{{- if eq .Values.mode "combined" }}server{{ else }}dispatcher{{ end }}
{{- end }}

{{/*
The ports a component listens on: every one serves HTTP; the dispatcher (and `server`) the
runner port; the dispatcher, the scheduler (and `server`) the internal port. The gateway has no
gRPC port at all.
*/}}
{{- define "baton.servesRunnerPort" -}}
{{- if has . (list "dispatcher" "server") }}true{{ end }}
{{- end }}

{{- define "baton.servesInternalPort" -}}
{{- if has . (list "dispatcher" "scheduler" "server") }}true{{ end }}
{{- end }}

{{/* Split mode: the ClusterIP Service of one role's internal port (7001), e.g. "dispatcher". */}}
{{- define "baton.internalServiceName" -}}
{{- printf "%s-%s-internal" (include "baton.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The URL other Baton pods dial for one role's internal port: https:// with tls.internal. */}}
{{- define "baton.internalUrl" -}}
{{- printf "%s://%s:7001" (ternary "https" "http" .root.Values.tls.internal.enabled) (include "baton.internalServiceName" .) }}
{{- end }}

{{/* Labels of every pod that is a Baton node (not runners, hooks or tests). */}}
{{- define "baton.nodePodSelector" -}}
matchLabels:
  {{- include "baton.selectorLabels" . | nindent 2 }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values: {{ include "baton.components" . }}
{{- end }}

{{/*
The port a `probe: grpc` checks, (dict "root" $ "component" "dispatcher"): the runner port, else
the internal port, whichever the component serves in cleartext (the kubelet's gRPC probe speaks
no TLS).
*/}}
{{- define "baton.grpcProbePort" -}}
{{- $tls := .root.Values.tls }}
{{- if and (include "baton.servesRunnerPort" .component) (not $tls.grpc.enabled) }}7000
{{- else if and (include "baton.servesInternalPort" .component) (not $tls.internal.enabled) }}7001
{{- else if eq .component "gateway" }}
{{- fail "gateway.probe must be \"http\": the gateway serves no gRPC port" }}
{{- else }}
{{- fail (printf "%s.probe=grpc: every gRPC port of the %s uses TLS (tls.grpc, tls.internal), which the kubelet's gRPC probe cannot speak: use probe: http" .component .component) }}
{{- end }}
{{- end }}

{{/*
The runners' registration token, base64: the live Secret's on upgrade, else one generated once
per render. Both the chart's Secret and the hook Secret include it, so the generated value is
kept in .Values (shared by every template of the render) for them to agree.
*/}}
{{- define "baton.runnerTokenB64" -}}
{{- $live := (lookup "v1" "Secret" .Release.Namespace (include "baton.fullname" .)) | default dict }}
{{- $old := get (get $live "data" | default dict) "runner-token" }}
{{- if $old }}
{{- $old }}
{{- else }}
{{- if not (hasKey .Values "__generatedRunnerToken") }}
{{- $_ := set .Values "__generatedRunnerToken" (randAlphaNum 48) }}
{{- end }}
{{- get .Values "__generatedRunnerToken" | b64enc }}
{{- end }}
{{- end }}

{{/* The Secret the hooks read: their own (hooks run before the chart's Secret exists), or existingSecret. */}}
{{- define "baton.hookSecretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- printf "%s-hooks" (include "baton.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
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
- name: BATON_CLUSTER_LISTEN
  value: "0.0.0.0:7001"
- name: BATON_DATA_DIR
  value: /var/lib/baton
{{- if has .component (list "gateway" "scheduler") }}
# Split mode: this service calls the dispatchers' internal port through their internal Service.
- name: BATON_CLUSTER_DISPATCHER_URL
  value: {{ include "baton.internalUrl" (dict "root" $root "component" "dispatcher") | quote }}
{{- end }}
{{- if eq .component "gateway" }}
# Split mode: schedules are changed through the schedulers' internal port.
- name: BATON_CLUSTER_SCHEDULER_URL
  value: {{ include "baton.internalUrl" (dict "root" $root "component" "scheduler") | quote }}
{{- end }}
{{- if and $root.Values.tls.grpc.enabled (include "baton.servesRunnerPort" .component) }}
- name: BATON_GRPC_TLS_CERT_FILE
  value: /etc/baton/tls/grpc/tls.crt
- name: BATON_GRPC_TLS_KEY_FILE
  value: /etc/baton/tls/grpc/tls.key
{{- end }}
{{- if $root.Values.tls.internal.enabled }}
{{- if include "baton.servesInternalPort" .component }}
- name: BATON_CLUSTER_TLS_CERT_FILE
  value: /etc/baton/tls/internal/tls.crt
- name: BATON_CLUSTER_TLS_KEY_FILE
  value: /etc/baton/tls/internal/tls.key
{{- end }}
{{- if $root.Values.tls.internal.caKey }}
- name: BATON_CLUSTER_TLS_CA_FILE
  value: /etc/baton/tls/internal/ca.crt
{{- end }}
{{- end }}
{{- if and $root.Values.ingress.enabled $root.Values.ingress.tls (not (hasKey (get $root.Values.config "http" | default dict) "secure_cookies")) }}
# TLS ends at the Ingress: the session cookie must only travel over HTTPS.
- name: BATON_HTTP_SECURE_COOKIES
  value: "true"
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

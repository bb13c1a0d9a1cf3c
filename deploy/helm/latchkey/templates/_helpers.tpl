{{/* Chart name, at most 63 characters (a DNS label). */}}
{{- define "latchkey.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name, with the chart's name unless it holds it already. */}}
{{- define "latchkey.fullname" -}}
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

{{- define "latchkey.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the pods: they never change across upgrades. */}}
{{- define "latchkey.selectorLabels" -}}
app.kubernetes.io/name: {{ include "latchkey.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "latchkey.labels" -}}
helm.sh/chart: {{ include "latchkey.chart" . }}
{{ include "latchkey.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "latchkey.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "latchkey.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "latchkey.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
latchkey.validate fails the render on settings that cannot work, with a
message that says what to change. values.schema.json catches unknown keys
and wrong types before this runs.
*/}}
{{- define "latchkey.validate" -}}
{{- if and (eq .Values.database.type "sqlite") (gt (int .Values.replicaCount) 1) }}
{{- fail (printf "replicaCount is %d but database.type is sqlite: SQLite is one process on one file, so it runs one replica only. Set replicaCount: 1, or database.type: postgres with database.existingSecret for replicas." (int .Values.replicaCount)) }}
{{- end }}
{{- if and (eq .Values.database.type "postgres") (not .Values.database.existingSecret) }}
{{- fail "database.type is postgres but database.existingSecret is empty: create a Secret holding the postgres:// URL (kubectl create secret generic latchkey-db --from-file=database-url=FILE) and name it in database.existingSecret." }}
{{- end }}
{{- if and .Values.metrics.serviceMonitor.enabled (not .Values.metrics.enabled) }}
{{- fail "metrics.serviceMonitor.enabled needs metrics.enabled: the ServiceMonitor scrapes the metrics port." }}
{{- end }}
{{- if and .Values.metrics.enabled (eq (int .Values.metrics.port) (int .Values.service.port)) }}
{{- fail "metrics.port and service.port are the same port: give /metrics a port of its own." }}
{{- end }}
{{- if .Values.forwardAuth.enabled }}
{{- $p := int .Values.forwardAuth.port }}
{{- if or (eq $p 8080) (eq $p (int .Values.service.port)) (and .Values.metrics.enabled (eq $p (int .Values.metrics.port))) }}
{{- fail (printf "forwardAuth.port %d is already the API's or the metrics' port: give forward auth a port of its own." $p) }}
{{- end }}
{{- end }}
{{- end }}

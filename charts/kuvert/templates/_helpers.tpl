{{/* The chart's name, or nameOverride. */}}
{{- define "kuvert.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The name of the release's resources: fullnameOverride, else the release name when it already
holds the chart name (`helm install kuvert ...` gives `kuvert`, not `kuvert-kuvert`), else
RELEASE-CHART. Truncated to 63 characters, the limit of a DNS label.
*/}}
{{- define "kuvert.fullname" -}}
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

{{/* The metrics Service's name (a suffix, so it never clashes with the Deployment's). */}}
{{- define "kuvert.metricsServiceName" -}}
{{- printf "%s-metrics" (include "kuvert.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every resource of the release carries. */}}
{{- define "kuvert.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kuvert.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels that select the release's Pods. */}}
{{- define "kuvert.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kuvert.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount kuvert runs as. */}}
{{- define "kuvert.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kuvert.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* "true" when leader election is on: asked for, or more than one replica. */}}
{{- define "kuvert.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) }}true{{ end }}
{{- end }}

{{/* The namespace of the leader Lease: the watched namespace when scoped (its Role covers
Leases there and nowhere else), else the release's. */}}
{{- define "kuvert.leaseNamespace" -}}
{{- default .Release.Namespace .Values.scope.namespace }}
{{- end }}

{{/* The image reference; the tag defaults to the chart's appVersion. */}}
{{- define "kuvert.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

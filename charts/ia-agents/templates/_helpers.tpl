{{/* The release's full name, within Kubernetes' 63 characters. */}}
{{- define "ia-agents.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object of the chart. */}}
{{- define "ia-agents.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ia-agents.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ia-agents
{{- end -}}

{{/* Labels selecting the operator's pods (stable across upgrades). The name label is the one the
     managed NATS NetworkPolicy lets in. */}}
{{- define "ia-agents.selectorLabels" -}}
app.kubernetes.io/name: trading-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ia-agents.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ia-agents.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ia-agents.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

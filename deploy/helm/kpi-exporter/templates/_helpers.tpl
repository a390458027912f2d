{{- define "kpi-exporter.labels" -}}
app.kubernetes.io/name: kpi-exporter
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "kpi-exporter.selector" -}}
app.kubernetes.io/name: kpi-exporter
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* "true" when the state is kept in PostgreSQL (replicas). */}}
{{- define "kpi-exporter.postgres" -}}
{{- if eq .Values.state.backend "postgres" -}}true{{- else if eq .Values.state.backend "file" -}}false{{- else -}}{{- fail (printf "state.backend: %q is neither file nor postgres" .Values.state.backend) -}}{{- end -}}
{{- end }}

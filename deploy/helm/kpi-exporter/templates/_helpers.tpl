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

module github.com/bakhmach-hub/kpi_exporter

go 1.26.8

require (
	github.com/goccy/go-yaml v1.19.2
	github.com/prometheus/common v0.74.0
)

require (
	github.com/prometheus/client_model v0.6.3 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)

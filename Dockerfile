# syntax=docker/dockerfile:1
# Multi-stage build: a static binary on distroless, running as nonroot.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0-dev
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION}" \
      -o /out/kpi_exporter ./cmd/kpi_exporter \
 && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kpi_exporter /bin/kpi_exporter
# The embedded catalogue's file source reads examples/values.yaml relative to
# the working directory; mount your own catalogue and values over these.
COPY examples/kpis.yaml examples/values.yaml /etc/kpi_exporter/examples/
COPY --from=build --chown=65532:65532 /out/state /var/lib/kpi_exporter
WORKDIR /etc/kpi_exporter
ENV KPI_STATE_DIR=/var/lib/kpi_exporter
USER 65532:65532
EXPOSE 10050
VOLUME ["/var/lib/kpi_exporter"]
ENTRYPOINT ["/bin/kpi_exporter"]

# kpi_exporter: `make test` is the whole check, and installs what it needs.
GO        ?= go
BIN       := $(CURDIR)/bin
PROMTOOL  := $(BIN)/promtool
PROMETHEUS := $(BIN)/prometheus
STRIPE_MOCK := $(BIN)/stripe-mock
# Fuzzing budgets are execution counts: a duration races Go 1.26's fuzz
# coordinator at its deadline (golang/go#75804) and fails without a finding.
FUZZTIME  ?= 30000x
VERSION   ?= $(shell cat VERSION 2>/dev/null || echo 0.1.0-dev)
REVISION  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS   := -s -w -X github.com/prometheus/common/version.Version=$(VERSION) -X github.com/prometheus/common/version.Revision=$(REVISION)
# GitHub's public GraphQL schema: shared/github/schema.graphql beside the
# checkout, else the same file from the npm package @octokit/graphql-schema.
SCHEMA_SHARED := $(abspath $(CURDIR)/../shared/github/schema.graphql)
SCHEMA    := $(if $(wildcard $(SCHEMA_SHARED)),$(SCHEMA_SHARED),$(BIN)/schema.graphql)
# golangci-lint is run with `go run` at a pinned version (make lint).
GOLANGCI_LINT_VERSION ?= v2.15.0

.PHONY: all build test tools deps vet fmt-check unit test-dates fuzz bench lint clean try-sql

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o kpi_exporter ./cmd/kpi_exporter

# Tools pinned in the separate tools module (tools/go.mod), built into bin/.
tools: $(PROMTOOL) $(PROMETHEUS) $(STRIPE_MOCK) $(SCHEMA)

$(PROMTOOL): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(PROMTOOL) github.com/prometheus/prometheus/cmd/promtool

$(PROMETHEUS): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(PROMETHEUS) github.com/prometheus/prometheus/cmd/prometheus

$(STRIPE_MOCK): tools/go.mod tools/go.sum
	cd tools && $(GO) build -o $(STRIPE_MOCK) github.com/stripe/stripe-mock

$(BIN)/schema.graphql:
	./scripts/ensure-deb.sh npm npm
	./scripts/fetch-schema.sh $@

# Debian packages the tests need: gcc (the race detector, and the C program
# whose coverage lcov captures), lcov, Chromium for the browser test, and
# Alertmanager (with amtool) for the alert routing tests.
deps:
	./scripts/ensure-deb.sh gcc gcc
	./scripts/ensure-deb.sh lcov lcov
	./scripts/ensure-deb.sh chromium chromium
	./scripts/ensure-deb.sh prometheus-alertmanager prometheus-alertmanager
	./scripts/ensure-deb.sh amtool prometheus-alertmanager
	./scripts/ensure-deb.sh '/usr/lib/postgresql/*/bin/initdb' postgresql
	./scripts/ensure-deb.sh /usr/sbin/mariadbd mariadb-server

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	cd tools && $(GO) vet ./...

unit: tools deps
	PROMTOOL=$(PROMTOOL) PROMETHEUS=$(PROMETHEUS) STRIPE_MOCK=$(STRIPE_MOCK) KPI_GITHUB_SCHEMA=$(SCHEMA) $(GO) test -race -count=1 ./...
	# The deployment, PromQL, end-to-end (real Prometheus) and browser (headless
	# Chromium) tests in the tools module.
	cd tools && PROMETHEUS=$(PROMETHEUS) ALERTMANAGER=$$(command -v prometheus-alertmanager) CHROMIUM=$$(command -v chromium) $(GO) test -count=1 ./...

# The packages that evaluate and render dates, run with the test clock
# (internal/testclock) ten and a half years ahead and one year back: no test
# may depend on the date it runs. internal/testclock's own test fails on any
# wall-clock read in those packages.
DATE_SHIFTS ?= 92000h -8760h
test-dates:
	for s in $(DATE_SHIFTS); do \
		echo "test clock moved by $$s"; \
		KPI_TEST_CLOCK_SHIFT=$$s $(GO) test -count=1 ./internal/testclock ./kpi ./exporter ./report ./app ./collectors || exit 1; \
	done

# Every parser of outside input is fuzzed for FUZZTIME each, and the forecast on
# any history a push can store.
fuzz:
	$(GO) test -run='^$$' -fuzz='^FuzzParse$$' -fuzztime=$(FUZZTIME) ./kpi
	$(GO) test -run='^$$' -fuzz='^FuzzForecast$$' -fuzztime=$(FUZZTIME) ./kpi
	$(GO) test -run='^$$' -fuzz='^FuzzBind$$' -fuzztime=$(FUZZTIME) ./collectors/sql
	$(GO) test -run='^$$' -fuzz='^FuzzParseYAML$$' -fuzztime=$(FUZZTIME) ./collectors/file
	$(GO) test -run='^$$' -fuzz='^FuzzParseCSV$$' -fuzztime=$(FUZZTIME) ./collectors/file
	for f in FuzzLCOV FuzzCobertura FuzzJaCoCo FuzzClover FuzzGoProfile FuzzDetect; do \
		$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) ./collectors/coverage || exit 1; \
	done

test: fmt-check vet unit test-dates fuzz

# Try the sql source on SQLite: synthetic product events that keep coming in,
# and the daemon on examples/sql/kpis.yaml reading them (state in memory).
try-sql:
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/kpi_exporter ./cmd/kpi_exporter
	$(GO) build -o $(BIN)/fill-events ./examples/sql/fill
	rm -f $(BIN)/product.db.ready
	$(BIN)/fill-events -out $(BIN)/product.db -ready $(BIN)/product.db.ready -live & fill=$$!; \
	  trap "kill $$fill 2>/dev/null" EXIT INT TERM; \
	  while [ ! -e $(BIN)/product.db.ready ]; do kill -0 $$fill || exit 1; sleep 0.2; done; \
	  KPI_PRODUCT_DB_DSN=$(BIN)/product.db $(BIN)/kpi_exporter --config examples/sql/kpis.yaml --state-dir= --log.format=console

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

lint:
	$(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) run ./...

clean:
	rm -rf bin kpi_exporter

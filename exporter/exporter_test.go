package exporter

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

var update = flag.Bool("update", false, "rewrite golden files")

const smallCatalogue = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: manual, type: file, interval: 1m}
  - {name: gh, type: github, enabled: false}
kpis:
  - id: nps
    name: Net Promoter Score
    domain: workflow
    dashboard: product
    owner: product
    unit: score
    direction: higher
    source: {name: manual, measurement: net_promoter_score}
    targets: [{period: M1, value: 45}, {period: M12, value: 75}]
  - id: review_time
    name: Avg Code Review Time
    domain: code_optimization
    dashboard: technical
    owner: engineering
    unit: seconds
    direction: lower
    source: {name: manual, measurement: review_seconds, labels: {stat: mean}}
    targets: [{period: Q1, value: 86400}, {period: Q4, value: 14400}]
  - id: incidents
    name: Security Incident Count
    domain: safety_compliance
    dashboard: executive
    owner: security
    unit: count
    direction: lower
    source: {name: manual, measurement: security_incidents}
    targets: [{period: Q1, value: 0}]
  - id: stars
    name: GitHub Stars
    domain: business_health
    dashboard: community
    owner: founders
    unit: count
    direction: higher
    source: {name: gh, measurement: stars}
    targets: [{period: Q1, value: 50}]
`

var goldenNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func goldenSnapshot(t testing.TB) *Snapshot {
	t.Helper()
	c, err := kpi.Parse("small.yml", []byte(smallCatalogue), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	readAt := goldenNow.Add(-30 * time.Second)
	readings := map[string]kpi.Reading{"manual": {At: readAt, Measurements: []kpi.Measurement{
		{Name: "net_promoter_score", Value: 58},
		{Name: "review_seconds", Labels: kpi.Labels{{Name: "stat", Value: "mean"}}, Value: 20000},
		{Name: "review_seconds", Labels: kpi.Labels{{Name: "stat", Value: "median"}}, Value: 9000},
		{Name: "security_incidents", Value: 1},
		{Name: "rows_read_total", Value: 12, Kind: kpi.Counter},
	}}}
	history := goldenHistory()
	sc := kpi.Evaluate(c, kpi.Inputs{Readings: readings, History: history}, goldenNow)
	for i, r := range sc.Results { // as the daemon sets it
		sc.Results[i].ZoneSince = c.ZoneSince(r, history[r.KPI.ID], goldenNow)
	}
	sources := []SourceState{
		{Source: c.Sources[0], LastSuccess: readAt, Status: collectors.Status{Name: "manual", Type: "file", Runs: 3, Errors: 1, Success: true, LastDuration: 1500 * time.Microsecond, LastSuccess: readAt}},
		{Source: c.Sources[1]},
	}
	s, err := NewSnapshot(c, sc, sources, readings)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goldenHistory is two weeks of hourly history up to the readings: NPS
// climbing from 50 to 58 (on track for M12's 75: green at the horizon,
// with an ETA), review time worsening from 15,000 s to 20,000 s (yellow now,
// red at the end of Q4: off track).
func goldenHistory() map[string][]kpi.Point {
	const n = 14 * 24
	h := map[string][]kpi.Point{}
	for i := 0; i < n; i++ {
		t := goldenNow.Add(-30*time.Second - time.Duration(n-i)*time.Hour)
		f := float64(i) / n
		wob := math.Sin(float64(i) * 2.4)
		h["nps"] = append(h["nps"], kpi.Point{T: t, V: math.Round((50+8*f+0.3*wob)*100) / 100})
		h["review_time"] = append(h["review_time"], kpi.Point{T: t, V: math.Round(15000 + 5000*f + 100*wob)})
	}
	return h
}

type famGatherer struct{ s *Snapshot }

func (g famGatherer) Gather() ([]*dto.MetricFamily, error) { return g.s.Families(), nil }

func TestSnapshotGolden(t *testing.T) {
	s := goldenSnapshot(t)
	const golden = "testdata/small.golden.prom"
	if *update {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, f := range s.Families() {
			if err := enc.Encode(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if err := testutil.GatherAndCompare(prometheus.GathererFunc(famGatherer{s}.Gather), want); err != nil {
		t.Error(err)
	}
	problems, err := testutil.GatherAndLint(prometheus.GathererFunc(famGatherer{s}.Gather))
	if err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %+v", err, problems)
	}
}

func TestZoneIsAStateSet(t *testing.T) {
	s := goldenSnapshot(t)
	ones := map[string]int{}
	for _, f := range s.Families() {
		if f.GetName() != "kpi_zone" {
			continue
		}
		for _, m := range f.GetMetric() {
			var id string
			for _, l := range m.GetLabel() {
				if l.GetName() == "kpi" {
					id = l.GetValue()
				}
			}
			ones[id] += int(m.GetGauge().GetValue())
		}
	}
	if len(ones) != 4 {
		t.Fatalf("zone series for %d KPIs", len(ones))
	}
	for id, n := range ones {
		if n != 1 {
			t.Errorf("KPI %s has %d zones set", id, n)
		}
	}
}

func TestHandlers(t *testing.T) {
	reloadErr := errors.New("kpis.yaml:3:5: unknown field \"colour\"")
	e := New(Options{Reload: func(context.Context) error { return reloadErr }})
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()

	get := func(path string, hdr ...string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		for i := 0; i < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, _ := get("/-/ready"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ready before SetReady: %d", resp.StatusCode)
	}
	e.SetReady()
	if resp, _ := get("/-/ready"); resp.StatusCode != http.StatusOK {
		t.Errorf("ready after SetReady: %d", resp.StatusCode)
	}
	if resp, _ := get("/-/healthy"); resp.StatusCode != http.StatusOK {
		t.Errorf("healthy: %d", resp.StatusCode)
	}

	e.SetReloadResult(true, goldenNow)
	e.Publish(goldenSnapshot(t))
	_, body := get("/metrics")
	for _, want := range []string{
		`kpi_exporter_build_info{goversion="go`, "kpi_config_last_reload_successful 1",
		"kpi_config_last_reload_success_timestamp_seconds 1.79604e+09", `kpi_value{domain="workflow",kpi="nps"} 58`,
		"go_goroutines ", "process_resident_memory_bytes ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	resp, body := get("/metrics", "Accept", "application/openmetrics-text; version=1.0.0")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text") || !strings.HasSuffix(body, "# EOF\n") {
		t.Errorf("OpenMetrics not negotiated: %s", resp.Header.Get("Content-Type"))
	}

	resp, err := http.Post(srv.URL+"/-/reload", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `unknown field \"colour\"`) {
		t.Errorf("reload failure: %d %s", resp.StatusCode, b)
	}
	if resp, _ := get("/-/reload"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload: %d", resp.StatusCode)
	}

	_, page := get("/")
	for _, want := range []string{"0 green", "2 yellow", "1 red", "1 unknown", "<td>manual</td>", "disabled", `href="metrics"`} {
		if !strings.Contains(page, want) {
			t.Errorf("landing page lacks %q", want)
		}
	}
	if resp, _ := get("/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %d", resp.StatusCode)
	}
}

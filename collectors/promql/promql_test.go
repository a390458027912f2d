package promql

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func newFromYAML(t *testing.T, settings string) (collectors.Collector, error) {
	t.Helper()
	c, err := kpi.Parse("kpis.yaml", []byte("sources:\n  - name: prom\n    type: prometheus\n    settings:\n"+settings), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return New(c.Sources[0], collectors.Env{})
}

// target exposes fixed series, so that every query has a hand-computed
// answer: 990 of 1,000 requests succeeded; the duration histogram's 99th
// percentile lies in the (0.25, 0.5] bucket.
const target = `# TYPE http_requests_total counter
http_requests_total{code="200"} 990
http_requests_total{code="500"} 10
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.1"} 900
http_request_duration_seconds_bucket{le="0.25"} 980
http_request_duration_seconds_bucket{le="0.5"} 995
http_request_duration_seconds_bucket{le="1"} 1000
http_request_duration_seconds_bucket{le="+Inf"} 1000
http_request_duration_seconds_sum 120
http_request_duration_seconds_count 1000
`

// startPrometheus runs a real Prometheus scraping the target every second.
func startPrometheus(t *testing.T) string {
	t.Helper()
	tgt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, target)
	}))
	t.Cleanup(tgt.Close)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(fmt.Sprintf(
		"global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: api\n    static_configs: [{targets: [%q]}]\n", strings.TrimPrefix(tgt.URL, "http://"))), 0o644)
	addr := testproc.FreeAddr(t)
	testproc.Start(t, dir, nil, testproc.Tool(t, "PROMETHEUS", "prometheus"),
		"--config.file=prometheus.yml", "--storage.tsdb.path=tsdb", "--web.listen-address="+addr, "--log.level=warn")
	base := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/query?query=count_over_time(up%7Bjob%3D%22api%22%7D%5B1m%5D)")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Three scrapes, so that range queries see several samples.
			if strings.Contains(string(b), `"value":[`) && !strings.Contains(string(b), `"1"]`) && !strings.Contains(string(b), `"2"]`) {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never scraped the target: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestAgainstRealPrometheus(t *testing.T) {
	base := startPrometheus(t)
	c, err := newFromYAML(t, fmt.Sprintf(`      url: %s
      headers: {X-Scope-OrgID: tenant-1}
      queries:
        - name: availability_ratio
          query: sum(http_requests_total{code!~"5.."}) / sum(http_requests_total)
        - name: p99_latency_seconds
          query: histogram_quantile(0.99, sum by (le) (http_request_duration_seconds_bucket))
        - name: uptime_ratio
          query: up{job="api"}
          range: 1m
        - name: requests
          query: http_requests_total
        - name: nothing
          query: http_requests_total{code="418"}
        - name: answer
          query: scalar(vector(42))
`, base))
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range ms {
		got[m.Name+m.Labels.String()] = m.Value
	}
	// 0.25 + (0.5-0.25) × (990-980)/(995-980)
	want := map[string]float64{
		`availability_ratio{}`:  0.99,
		`p99_latency_seconds{}`: 0.25 + 0.25*10/15,
		`uptime_ratio{instance="` + strings.TrimPrefix(base, "http://") + `"}`: 0, // replaced below
		`answer{}`: 42,
	}
	delete(want, `uptime_ratio{instance="`+strings.TrimPrefix(base, "http://")+`"}`)
	for k, w := range want {
		if v, ok := got[k]; !ok || math.Abs(v-w) > 1e-9 {
			t.Errorf("%s = %v (%v), want %v", k, v, ok, w)
		}
	}
	uptime, requests := 0, 0
	for _, m := range ms {
		switch m.Name {
		case "uptime_ratio":
			uptime++
			if m.Value != 1 || m.Labels.Get("job") != "api" {
				t.Errorf("uptime %v %v", m.Value, m.Labels)
			}
		case "requests":
			requests++
			if m.Labels.Get("code") == "" || m.Labels.Get("job") != "api" {
				t.Errorf("requests labels %v", m.Labels)
			}
		case "nothing":
			t.Error("an empty result must be no value, never 0")
		}
	}
	if uptime != 1 || requests != 2 {
		t.Errorf("uptime series %d, requests series %d", uptime, requests)
	}
}

func TestErrorsAreTheSourcesOwn(t *testing.T) {
	base := startPrometheus(t)
	bad, err := newFromYAML(t, "      url: "+base+"\n      queries: [{name: broken, query: \"sum(\"}]\n")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Collect(context.Background()); err == nil || !strings.HasPrefix(err.Error(), "query broken: bad_data: ") {
		t.Errorf("bad query: %v", err)
	}
	many, _ := newFromYAML(t, "      url: "+base+"\n      max_series: 1\n      queries: [{name: requests, query: http_requests_total}]\n")
	if _, err := many.Collect(context.Background()); err == nil || err.Error() != "query requests returned 2 series, more than max_series 1" {
		t.Errorf("too many series: %v", err)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { time.Sleep(2 * time.Second) }))
	defer slow.Close()
	timeout, _ := newFromYAML(t, "      url: "+slow.URL+"\n      queries: [{name: q, query: up}]\n")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := timeout.Collect(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", err)
	}
}

func TestHeadersAndAuth(t *testing.T) {
	var hdr http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr = r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","Source":"x","source":"y"},"value":[1700000000,"1"]}]}}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte("hunter2\n"), 0o600)
	c, err := newFromYAML(t, "      url: "+srv.URL+"\n      headers: {X-Scope-OrgID: t1}\n      basic_auth: {username: u, password_file: "+filepath.Join(dir, "pw")+"}\n      queries: [{name: up, query: up}]\n")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if user, pw, ok := (&http.Request{Header: hdr}).BasicAuth(); !ok || user != "u" || pw != "hunter2" || hdr.Get("X-Scope-OrgID") != "t1" {
		t.Errorf("headers %v", hdr)
	}
	if err := collectors.CheckMeasurement(ms[0]); err != nil || ms[0].Labels.Get("exported_source") != "x" || ms[0].Labels.Get("exported_source_") != "y" {
		t.Errorf("labels %v: %v", ms[0].Labels, err)
	}
}

func TestSettingsErrors(t *testing.T) {
	for settings, want := range map[string]string{
		"      queries: [{name: a, query: up}]\n":                                      `needs url, the Prometheus API's base URL`,
		"      url: http://p\n":                                                        `has no queries`,
		"      url: http://p\n      queries: [{name: A, query: up}]\n":                 `query name "A" must be a unique [a-z_][a-z0-9_]*`,
		"      url: http://p\n      queries: [{name: a, query: up, range: x}]\n":       `range "x" is not a positive duration`,
		"      url: http://p\n      queries: [{name: a, query: up, over_time: avg}]\n": `over_time needs range`,
	} {
		_, err := newFromYAML(t, settings)
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%q: %v, want …%s", settings, err, want)
		}
	}
}

// TestDefaultCatalogueQueries: every KPI of the embedded catalogue bound to
// the prometheus source has a query of that name, and the settings build.
func TestDefaultCatalogueQueries(t *testing.T) {
	cat, err := kpi.Parse("kpis.yaml", examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src, ok := cat.Source("prometheus")
	if !ok {
		t.Fatal("no prometheus source")
	}
	col, err := New(src, collectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, q := range col.(*Collector).s.Queries {
		names[q.Name] = true
	}
	n := 0
	for _, k := range cat.KPIs {
		if k.Source.Source != "prometheus" {
			continue
		}
		n++
		if !names[k.Source.Measurement] {
			t.Errorf("KPI %s reads %s, which has no query", k.ID, k.Source.Measurement)
		}
	}
	if n != len(names) || n < 12 {
		t.Errorf("%d KPIs bound, %d queries", n, len(names))
	}
}

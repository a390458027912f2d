package tools

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	promrules "github.com/bakhmach-hub/kpi_exporter/deploy/prometheus"
	"github.com/bakhmach-hub/kpi_exporter/grafana"
	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// buildExporter builds the daemon into dir.
func buildExporter(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kpi_exporter")
	build := exec.Command("go", "build", "-o", bin, "./cmd/kpi_exporter")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building kpi_exporter: %v\n%s", err, out)
	}
	return bin
}

// waitReady waits until the daemon at addr answers /-/ready with 200.
func waitReady(t *testing.T, addr string, logs *testproc.Output) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kpi_exporter not ready after 20s:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type promResult struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"` // [time, "value"] of an instant query
		} `json:"result"`
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	} `json:"data"`
	Error string `json:"error"`
}

func promGet(t *testing.T, base, path string) promResult {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		return promResult{Status: "unreachable"}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r promResult
	json.Unmarshal(b, &r)
	return r
}

// PLAN is ten days before the test runs, so that Q1 is in force and ahead
// (the forecast's horizon) whatever the date.
const e2eCatalogue = `
calendar: {plan_start: PLAN, launch: PLAN}
sources:
  - {name: manual, type: file, interval: 1s, settings: {path: values.yaml}}
kpis:
  - {id: nps, name: Net Promoter Score, domain: product_health, dashboard: product, owner: product, unit: score,
     direction: higher, source: {name: manual, measurement: nps}, targets: [{period: Q1, value: 50}], alert_for: 2s}
  - {id: review_time, name: Review Time, domain: engineering, dashboard: technical, owner: engineering, unit: seconds,
     direction: lower, source: {name: manual, measurement: review_seconds}, targets: [{period: Q1, value: 3600}], alert_for: 2s}
  - {id: coverage, name: Coverage, domain: engineering, dashboard: technical, owner: engineering, unit: ratio,
     direction: higher, source: {name: manual, measurement: coverage}, targets: [{period: Q1, value: 0.8}], alert_for: 2s, critical: true}
`

// TestEndToEndWithPrometheus runs the built daemon and a real Prometheus
// server with the generated rules on loopback, moves one KPI into the red
// zone through its file source, and checks through Prometheus's API that
// KpiRedZone fires for that KPI and no other, and that every panel of the
// generated dashboards gets data.
func TestEndToEndWithPrometheus(t *testing.T) {
	dir := t.TempDir()
	exporterBin := buildExporter(t, dir)
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	e2eCatalogue := strings.ReplaceAll(e2eCatalogue, "PLAN", time.Now().UTC().AddDate(0, 0, -10).Format(time.DateOnly)) // wallclock: the daemon runs on it
	write("kpis.yaml", e2eCatalogue)
	write("values.yaml", "nps: 55\nreview_seconds: 1800\ncoverage: 0.85\n") // all green
	// Two weeks of history, as a daemon that ran before left it, so that
	// the forecast panels have data too.
	seedHistory(t, filepath.Join(dir, "state"), map[string]func(float64) float64{
		"nps": func(float64) float64 { return 55 }, "review_time": func(float64) float64 { return 1800 },
		"coverage": func(float64) float64 { return 0.85 },
	})
	c, err := kpi.Parse("kpis.yaml", []byte(e2eCatalogue), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := promrules.Marshal(promrules.Rules(promrules.Options{JobSelector: `job="kpi"`}))
	if err != nil {
		t.Fatal(err)
	}
	write("rules.yaml", string(rules))

	exporterAddr, promAddr := testproc.FreeAddr(t), testproc.FreeAddr(t)
	_, exLogs := testproc.Start(t, dir, nil, exporterBin, "--config=kpis.yaml", "--state-dir=state", "--web.listen-address="+exporterAddr)
	write("prometheus.yml", fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: kpi
    static_configs: [{targets: ["%s"]}]
`, exporterAddr))
	_, promLogs := testproc.Start(t, dir, nil, testproc.Tool(t, "PROMETHEUS", "prometheus"), "--config.file=prometheus.yml", "--storage.tsdb.path=tsdb",
		"--web.listen-address="+promAddr, "--log.level=warn")
	base := "http://" + promAddr

	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nexporter:\n%s\nprometheus:\n%s", what, exLogs, promLogs)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	query := func(q string) promResult { return promGet(t, base, "/api/v1/query?query="+url.QueryEscape(q)) }
	waitFor("Prometheus to scrape the exporter", 60*time.Second, func() bool {
		return len(query(`kpi_zone{kpi_zone="green"} == 1`).Data.Result) == 3
	})

	// Coverage drops to 0.4 of 0.8: attainment 0.5, red.
	write("values.yaml", "nps: 55\nreview_seconds: 1800\ncoverage: 0.4\n")
	var firing []map[string]string
	waitFor("KpiRedZone to fire", 60*time.Second, func() bool {
		firing = nil
		for _, a := range promGet(t, base, "/api/v1/alerts").Data.Alerts {
			if a.Labels["alertname"] == "KpiRedZone" && a.State == "firing" {
				firing = append(firing, a.Labels)
			}
		}
		return len(firing) > 0
	})
	time.Sleep(3 * time.Second) // let any wrong alert catch up
	for _, a := range promGet(t, base, "/api/v1/alerts").Data.Alerts {
		if a.Labels["alertname"] == "KpiRedZone" && a.Labels["kpi"] != "coverage" {
			t.Errorf("KpiRedZone for %s (%s)", a.Labels["kpi"], a.State)
		}
	}
	if a := firing[0]; a["kpi"] != "coverage" || a["severity"] != "critical" || a["owner"] != "engineering" || a["domain"] != "engineering" {
		t.Errorf("KpiRedZone labels: %v", a)
	}

	// Every panel of the generated dashboards has data.
	ds, err := grafana.Dashboards(c)
	if err != nil {
		t.Fatal(err)
	}
	panels := 0
	for _, d := range ds {
		var x dashboardJSON
		json.Unmarshal(d.JSON, &x)
		for _, p := range x.Panels {
			if len(p.Targets) == 0 {
				continue // a row
			}
			panels++
			data := false
			for _, tg := range p.Targets {
				r := query(grafanaVars.Replace(tg.Expr))
				if r.Status != "success" {
					t.Errorf("%s %q: %s: %s", d.File, p.Title, tg.Expr, r.Error)
				}
				data = data || len(r.Data.Result) > 0
			}
			if !data {
				t.Errorf("%s: panel %q has no data", d.File, p.Title)
			}
		}
	}
	t.Logf("%d panels of %d dashboards have data; KpiRedZone fired for coverage only", panels, len(ds))
}

package tools

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"

	"github.com/bakhmach-hub/kpi_exporter/deploy/alertmanager"
	"github.com/bakhmach-hub/kpi_exporter/grafana"
	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
	"github.com/bakhmach-hub/kpi_exporter/store"
)

// Two catalogues, neither the default, for two exporters scraped by one
// Prometheus. "shared" is in both, with the same owner. PLAN is replaced
// with a date ten days before the test runs, so that Q1 is the period in
// force (and ahead: the forecast's horizon) whatever the date.
const catalogueA = `
calendar: {plan_start: PLAN, launch: PLAN}
alerts: {red_for: 2s, yellow_for: 2s}
sources:
  - {name: manual, type: file, interval: 1s, settings: {path: values.yaml}}
kpis:
  - {id: latency, name: Checkout Latency, domain: platform_health, dashboard: technical, owner: platform, unit: seconds,
     direction: lower, source: {name: manual, measurement: latency}, targets: [{period: Q1, value: 0.3}], critical: true,
     trend_demotes: false}
  - {id: signups, name: Signups, domain: growth, dashboard: executive, owner: growth, unit: count,
     direction: higher, source: {name: manual, measurement: signups}, targets: [{period: Q1, value: 100}]}
  - {id: shared, name: Shared KPI, domain: platform_health, dashboard: technical, owner: platform, unit: ratio,
     direction: higher, source: {name: manual, measurement: shared}, targets: [{period: Q1, value: 0.9}]}
`

const catalogueB = `
calendar: {plan_start: PLAN, launch: PLAN}
alerts: {red_for: 2s, yellow_for: 2s}
sources:
  - {name: manual, type: file, interval: 1s, settings: {path: values.yaml}}
  - {name: desk, type: file, interval: 1s, settings: {path: tickets.yaml}}
kpis:
  - {id: shared, name: Shared KPI, domain: platform_health, dashboard: technical, owner: platform, unit: ratio,
     direction: higher, source: {name: manual, measurement: shared}, targets: [{period: Q1, value: 0.9}]}
  - {id: tickets, name: Open Tickets, domain: support, dashboard: product, owner: support, unit: count,
     direction: lower, source: {name: desk, measurement: tickets}, targets: [{period: Q1, value: 20}], max_age: 3s}
  - {id: quiet, name: Quiet KPI, domain: support, dashboard: product, owner: support, unit: count,
     direction: higher, source: {name: manual, measurement: quiet}, targets: [{period: Q1, value: 10}], alerts: false,
     trend_demotes: false}
`

// webhooks records what Alertmanager delivers, by receiver path.
type webhooks struct {
	mu  sync.Mutex
	got map[string][]map[string]string // path → alerts' labels plus "status"
}

func (w *webhooks) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var msg struct {
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	b, _ := io.ReadAll(r.Body)
	json.Unmarshal(b, &msg)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range msg.Alerts {
		l := map[string]string{"status": a.Status}
		for k, v := range a.Labels {
			l[k] = v
		}
		w.got[r.URL.Path] = append(w.got[r.URL.Path], l)
	}
}

// find returns the receivers (paths) that got an alert matching labels.
func (w *webhooks) find(labels map[string]string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[string]bool{}
	for path, as := range w.got {
	next:
		for _, a := range as {
			for k, v := range labels {
				if a[k] != v {
					continue next
				}
			}
			seen[path] = true
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// helmRules renders the chart with the user's catalogue and shortened
// delays, as `helm template --set-file catalogue=… --set prometheusRule.for…`
// does, and returns its PrometheusRule's spec as a Prometheus rule file.
func helmRules(t *testing.T, catalogue string) []byte {
	t.Helper()
	ch, err := loader.Load("../deploy/helm/kpi-exporter")
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{"catalogue": catalogue, "prometheusRule": map[string]any{"enabled": true, "for": map[string]any{
		"KpiOffTrack": "1s", "KpiValueStale": "1s", "KpiCollectorFailing": "1s", "KpiExporterDown": "1s", "KpiConfigReloadFailed": "1s", "KpiAbsent": "1s"}}}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "kpi", Namespace: "monitoring", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Spec map[string]any `json:"spec"`
	}
	for name, s := range out {
		if strings.HasSuffix(name, "prometheusrule.yaml") {
			if err := yaml.Unmarshal([]byte(s), &doc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if doc.Spec == nil {
		t.Fatal("the chart rendered no PrometheusRule")
	}
	b, err := yaml.Marshal(doc.Spec)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAlertsReachOwnersWithTwoExporters runs two exporters on different
// catalogues (neither the default), one Prometheus with the Helm chart's
// rules (rendered with the first exporter's catalogue; only the delays
// shortened through the chart's values and the catalogues' alerts
// settings) and Debian's Alertmanager with the generated configuration,
// all on loopback. Each alert must fire once per KPI and instance, resolve
// when the value recovers, and reach its owner's webhook and no other.
func TestAlertsReachOwnersWithTwoExporters(t *testing.T) {
	dir := t.TempDir()
	bin := buildExporter(t, dir)
	plan := time.Now().UTC().AddDate(0, 0, -10).Format(time.DateOnly) // wallclock: the daemons run on it
	catalogueA := strings.ReplaceAll(catalogueA, "PLAN", plan)
	catalogueB := strings.ReplaceAll(catalogueB, "PLAN", plan)
	write := func(name, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/kpis.yaml", catalogueA)
	write("a/values.yaml", "latency: 0.2\nsignups: 120\nshared: 0.95\n")
	write("b/kpis.yaml", catalogueB)
	write("b/values.yaml", "shared: 0.95\nquiet: 15\n")
	write("b/tickets.yaml", "tickets: 10\n")
	write("rules.yaml", string(helmRules(t, catalogueA)))
	// Two weeks of hourly history up to an hour ago, as an earlier run of
	// each daemon left it: production's latency worsening from 0.05 s to
	// 0.2 s (green now, red at the end of Q1 at that pace: KpiOffTrack,
	// critical), the others flat, and staging's quiet KPI (alerts: false)
	// falling from 30 to 15 (red at the end of Q1, and no alert).
	seedHistory(t, filepath.Join(dir, "a", "state"), map[string]func(f float64) float64{
		"latency": func(f float64) float64 { return 0.05 + 0.15*f },
		"signups": func(float64) float64 { return 120 },
		"shared":  func(float64) float64 { return 0.95 },
	})
	seedHistory(t, filepath.Join(dir, "b", "state"), map[string]func(f float64) float64{
		"shared":  func(float64) float64 { return 0.95 },
		"tickets": func(float64) float64 { return 10 },
		"quiet":   func(f float64) float64 { return 30 - 15*f },
	})

	hooks := &webhooks{got: map[string][]map[string]string{}}
	hookSrv := httptest.NewServer(hooks)
	defer hookSrv.Close()
	var cats []*kpi.Catalogue
	for _, c := range []string{catalogueA, catalogueB} {
		parsed, err := kpi.Parse("kpis.yaml", []byte(c), kpi.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cats = append(cats, parsed)
	}
	amConfig, err := alertmanager.Marshal(alertmanager.Generate(alertmanager.Options{OwnerURL: hookSrv.URL + "/{owner}", DefaultURL: hookSrv.URL + "/default",
		GroupWait: time.Second, GroupInterval: time.Second, RepeatInterval: time.Hour}, cats...))
	if err != nil {
		t.Fatal(err)
	}
	write("alertmanager.yml", string(amConfig))

	addrA, addrB, promAddr, amAddr := testproc.FreeAddr(t), testproc.FreeAddr(t), testproc.FreeAddr(t), testproc.FreeAddr(t)
	procA, logsA := testproc.Start(t, filepath.Join(dir, "a"), nil, bin, "--config=kpis.yaml", "--state-dir=state", "--web.listen-address="+addrA)
	_, logsB := testproc.Start(t, filepath.Join(dir, "b"), nil, bin, "--config=kpis.yaml", "--state-dir=state", "--web.listen-address="+addrB)
	_, amLogs := testproc.Start(t, dir, nil, testproc.Tool(t, "ALERTMANAGER", "prometheus-alertmanager"), "--config.file=alertmanager.yml",
		"--storage.path=am", "--web.listen-address="+amAddr, "--cluster.listen-address=", "--log.level=warn")
	write("prometheus.yml", fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["%s"]}]}]
scrape_configs:
  - job_name: kpi-production
    static_configs: [{targets: ["%s"]}]
  - job_name: kpi-staging
    static_configs: [{targets: ["%s"]}]
`, amAddr, addrA, addrB))
	_, promLogs := testproc.Start(t, dir, nil, testproc.Tool(t, "PROMETHEUS", "prometheus"), "--config.file=prometheus.yml", "--storage.tsdb.path=tsdb",
		"--web.listen-address="+promAddr, "--rules.alert.resend-delay=1s", "--log.level=warn")
	base := "http://" + promAddr

	waitFor := func(what string, limit time.Duration, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\nexporter a:\n%s\nexporter b:\n%s\nprometheus:\n%s\nalertmanager:\n%s\nwebhooks: %v",
					what, logsA, logsB, promLogs, amLogs, hooks.got)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	query := func(q string) promResult { return promGet(t, base, "/api/v1/query?query="+url.QueryEscape(q)) }
	firing := func(alert string) []map[string]string {
		var out []map[string]string
		for _, a := range promGet(t, base, "/api/v1/alerts").Data.Alerts {
			if a.Labels["alertname"] == alert && a.State == "firing" {
				out = append(out, a.Labels)
			}
		}
		return out
	}
	key := func(as []map[string]string) string {
		var ks []string
		for _, a := range as {
			ks = append(ks, a["job"]+"/"+a["kpi"]+a["collector"])
		}
		sort.Strings(ks)
		return strings.Join(ks, " ")
	}
	waitFor("Prometheus to scrape both exporters", 60*time.Second, func() bool {
		return len(query(`kpi_zone{kpi_zone="green"} == 1`).Data.Result) == 6 && len(query(`kpi_zone_since_timestamp_seconds`).Data.Result) == 6
	})

	// Production's latency is green now and off track: KpiOffTrack, critical,
	// to its owner; staging's quiet KPI is as off track but has alerts: false.
	waitFor("KpiOffTrack for production's latency", 60*time.Second, func() bool {
		return key(firing("KpiOffTrack")) == "kpi-production/latency"
	})
	for _, a := range firing("KpiOffTrack") {
		if a["severity"] != "critical" || a["owner"] != "platform" || a["kpi_zone"] != "" {
			t.Errorf("KpiOffTrack labels %v", a)
		}
	}
	waitFor("KpiOffTrack at the platform webhook", 30*time.Second, func() bool {
		return strings.Join(hooks.find(map[string]string{"alertname": "KpiOffTrack", "kpi": "latency", "status": "firing"}), " ") == "/platform"
	})
	if r := query(`kpi_forecast_zone{job="kpi-staging",kpi="quiet",kpi_zone="red"} == 1`); len(r.Data.Result) != 1 {
		t.Errorf("staging's quiet KPI should be forecast red: %+v", r)
	}
	if got := hooks.find(map[string]string{"alertname": "KpiOffTrack", "kpi": "quiet"}); len(got) != 0 {
		t.Errorf("the quiet KPI (alerts: false) alerted to %v", got)
	}

	// signups goes red on production, shared on staging only.
	write("a/values.yaml", "latency: 0.2\nsignups: 40\nshared: 0.95\n")
	write("b/values.yaml", "shared: 0.3\nquiet: 0\n")
	waitFor("KpiRedZone for exactly the two red KPIs", 60*time.Second, func() bool {
		return key(firing("KpiRedZone")) == "kpi-production/signups kpi-staging/shared"
	})
	waitFor("the owners' webhooks", 30*time.Second, func() bool {
		return len(hooks.find(map[string]string{"alertname": "KpiRedZone", "kpi": "signups", "status": "firing"})) > 0 &&
			len(hooks.find(map[string]string{"alertname": "KpiRedZone", "kpi": "shared", "status": "firing"})) > 0
	})
	time.Sleep(3 * time.Second) // let any wrong alert catch up
	if got := key(firing("KpiRedZone")); got != "kpi-production/signups kpi-staging/shared" {
		t.Errorf("KpiRedZone fires for %s", got)
	}
	for _, a := range firing("KpiRedZone") {
		if a["severity"] != "warning" || a["kpi_zone"] != "red" || a["owner"] == "" {
			t.Errorf("KpiRedZone labels %v", a)
		}
	}
	if got := hooks.find(map[string]string{"alertname": "KpiRedZone", "kpi": "signups"}); strings.Join(got, " ") != "/growth" {
		t.Errorf("signups' alert reached %v, want only /growth", got)
	}
	if got := hooks.find(map[string]string{"alertname": "KpiRedZone", "kpi": "shared", "job": "kpi-staging"}); strings.Join(got, " ") != "/platform" {
		t.Errorf("shared's alert reached %v, want only /platform", got)
	}
	if got := hooks.find(map[string]string{"alertname": "KpiRedZone", "job": "kpi-production", "kpi": "shared"}); len(got) != 0 {
		t.Errorf("production's green shared KPI alerted to %v", got)
	}
	// quiet is red on staging but opted out with alerts: false.
	if r := query(`kpi_zone{kpi="quiet",kpi_zone="red"} == 1`); len(r.Data.Result) != 1 {
		t.Errorf("the quiet KPI should be red: %+v", r)
	}

	// Each exporter's dashboards, filtered to its job, show its own KPIs
	// with the right zones, within the query budget.
	// Forecasts: latency red at the horizon; signups and staging's shared
	// have one new value far off two weeks of history, which the robust
	// line takes for an outlier until more points confirm it (their zone
	// there is not asserted, only that they have a forecast).
	nan := math.NaN()
	checkDashboards(t, query, cats[0], "kpi-production", map[string]float64{"latency": 0, "signups": 2, "shared": 0},
		map[string]float64{"latency": 2, "signups": nan, "shared": 0})
	checkDashboards(t, query, cats[1], "kpi-staging", map[string]float64{"shared": 2, "tickets": 0, "quiet": 2},
		map[string]float64{"shared": nan, "tickets": 0, "quiet": 2})

	// signups recovers: its alert resolves, and the owner hears so.
	write("a/values.yaml", "latency: 0.2\nsignups: 150\nshared: 0.95\n")
	waitFor("KpiRedZone for signups to resolve", 60*time.Second, func() bool {
		return key(firing("KpiRedZone")) == "kpi-staging/shared" &&
			len(hooks.find(map[string]string{"alertname": "KpiRedZone", "kpi": "signups", "status": "resolved"})) > 0
	})

	// Staging's ticket desk breaks: tickets goes stale and the source fails.
	write("b/tickets.yaml", "tickets: [broken\n")
	waitFor("KpiValueStale and KpiCollectorFailing on staging", 60*time.Second, func() bool {
		return key(firing("KpiValueStale")) == "kpi-staging/tickets" && key(firing("KpiCollectorFailing")) == "kpi-staging/desk"
	})
	// The scorecard shows the stale KPI as stale, with its last value.
	checkDashboards(t, query, cats[1], "kpi-staging", map[string]float64{"shared": 2, "tickets": -3, "quiet": 2},
		map[string]float64{"shared": nan, "quiet": 2})
	if r := query(`last_over_time(kpi_value{kpi="tickets",job="kpi-staging"}[30d])`); len(r.Data.Result) != 1 || fmt.Sprint(r.Data.Result[0].Value[1]) != "10" {
		t.Errorf("the stale KPI's last value: %+v", r.Data.Result)
	}
	waitFor("their webhooks", 30*time.Second, func() bool {
		return strings.Join(hooks.find(map[string]string{"alertname": "KpiValueStale", "kpi": "tickets"}), " ") == "/support" &&
			strings.Join(hooks.find(map[string]string{"alertname": "KpiCollectorFailing", "collector": "desk"}), " ") == "/default"
	})

	// Production loses latency from its catalogue: KpiAbsent there, to its
	// owner. Staging gets a broken catalogue: KpiConfigReloadFailed there.
	write("a/kpis.yaml", strings.Replace(catalogueA, "  - {id: latency,", "  - {id: gone_latency,", 1))
	write("b/kpis.yaml", catalogueB+"  - {id: broken\n")
	for _, addr := range []string{addrA, addrB} {
		resp, err := http.Post("http://"+addr+"/-/reload", "", bytes.NewReader(nil))
		if err == nil {
			resp.Body.Close()
		}
	}
	waitFor("KpiAbsent on production and KpiConfigReloadFailed on staging", 60*time.Second, func() bool {
		return key(firing("KpiAbsent")) == "kpi-production/latency" && key(firing("KpiConfigReloadFailed")) == "kpi-staging/"
	})
	waitFor("their webhooks", 30*time.Second, func() bool {
		return strings.Join(hooks.find(map[string]string{"alertname": "KpiAbsent", "kpi": "latency"}), " ") == "/platform" &&
			strings.Join(hooks.find(map[string]string{"alertname": "KpiConfigReloadFailed", "job": "kpi-staging"}), " ") == "/default"
	})

	// Production goes down: KpiExporterDown for it alone, to the default
	// receiver; its per-KPI alerts are inhibited meanwhile.
	procA.Process.Kill()
	waitFor("KpiExporterDown for production", 60*time.Second, func() bool {
		return key(firing("KpiExporterDown")) == "kpi-production/"
	})
	waitFor("its webhook", 30*time.Second, func() bool {
		return strings.Join(hooks.find(map[string]string{"alertname": "KpiExporterDown", "job": "kpi-production"}), " ") == "/default"
	})
	if got := hooks.find(map[string]string{"alertname": "KpiExporterDown", "job": "kpi-staging"}); len(got) != 0 {
		t.Errorf("staging reported down to %v", got)
	}
	t.Logf("webhooks: %v", hooks.got)
}

// seedHistory writes a state directory holding two weeks of hourly
// history, up to an hour ago, of each KPI: f of the share of the span
// passed (0 to 1), with a small deterministic wobble.
func seedHistory(t *testing.T, dir string, kpis map[string]func(f float64) float64) {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 14 * 24
	end := time.Now().Add(-time.Hour).Truncate(time.Second) // wallclock: the daemons run on it
	for id, f := range kpis {
		for i := 0; i < n; i++ {
			v := f(float64(i) / (n - 1))
			st.Record(id, kpi.Point{T: end.Add(-time.Duration(n-1-i) * time.Hour), V: v * (1 + 0.002*math.Sin(float64(i)*2.4))})
		}
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
}

var kpiMatcher = regexp.MustCompile(`kpi=~"([^"]*)"`)

// checkDashboards runs every query of the catalogue's dashboards against
// Prometheus as Grafana would with the job variable set to job (instance:
// all) and checks that each returns the series it is meant to: only that
// job's series, every KPI its matcher names, the dashboard's own sources,
// the zone each KPI is in (the scorecard's Zone column), the zone counts,
// and exactly grafana.QueriesPerRefresh queries per dashboard.
//
// forecasts lists the KPIs that have a forecast, with the zone code it ends
// in (NaN: not checked): the forecast table shows those and no other, and
// the "Green from" column (the ETA) exactly those forecast green.
func checkDashboards(t *testing.T, query func(string) promResult, c *kpi.Catalogue, job string, zones, forecasts map[string]float64) {
	t.Helper()
	ds, err := grafana.Dashboards(c)
	if err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$job", job, "$instance", ".*", "${datasource}", "prom")
	for _, d := range ds {
		var x dashboardJSON
		if err := json.Unmarshal(d.JSON, &x); err != nil {
			t.Fatal(err)
		}
		mine, units, sources := map[string]bool{}, map[kpi.Unit]bool{}, map[string]bool{}
		for _, k := range c.KPIs {
			if "kpi-"+k.Dashboard+".json" == d.File || "kpi-domain-"+strings.ReplaceAll(k.Domain, "_", "-")+".json" == d.File {
				mine[k.ID], units[k.Unit], sources[k.Source.Source] = true, true, true
			}
		}
		n := 0
		for _, p := range x.Panels {
			for _, tg := range p.Targets {
				n++
				expr := vars.Replace(tg.Expr)
				r := query(expr)
				where := d.File + ": " + p.Title + ": " + expr
				// The forecast table's columns name only KPIs with a
				// forecast, and its ETA only those forecast green.
				forecastCol := strings.Contains(expr, "kpi_forecast_") || strings.Contains(expr, "kpi_target_eta_")
				wantForecast := func(id string) bool {
					z, ok := forecasts[id]
					return ok && (!strings.Contains(expr, "kpi_target_eta_") || z == 0) // NaN: neither
				}
				if forecastCol {
					var want, have []string
					for id := range mine {
						if wantForecast(id) {
							want = append(want, id)
						}
					}
					for _, res := range r.Data.Result {
						if z, ok := forecasts[res.Metric["kpi"]]; ok && math.IsNaN(z) && strings.Contains(expr, "kpi_target_eta_") {
							continue // its zone, and so its ETA, is not asserted
						}
						have = append(have, res.Metric["kpi"])
						if z := forecasts[res.Metric["kpi"]]; strings.Contains(expr, "kpi_forecast_zone") && !math.IsNaN(z) {
							if v, _ := strconv.ParseFloat(fmt.Sprint(res.Value[1]), 64); v != z {
								t.Errorf("%s: the zone at the horizon of %s is %v, want %v", where, res.Metric["kpi"], v, z)
							}
						}
					}
					sort.Strings(want)
					sort.Strings(have)
					if strings.Join(want, " ") != strings.Join(have, " ") {
						t.Errorf("%s: forecasts for %v, want %v", where, have, want)
					}
					if len(want) == 0 {
						continue
					}
				}
				if r.Status != "success" || len(r.Data.Result) == 0 {
					t.Errorf("%s: %s, %d series %s", where, r.Status, len(r.Data.Result), r.Error)
					continue
				}
				got := map[string]float64{}
				for _, res := range r.Data.Result {
					m := res.Metric
					if j, ok := m["job"]; ok && j != job {
						t.Errorf("%s: a series of job %s", where, j)
					}
					if col, ok := m["collector"]; ok && !sources[col] {
						t.Errorf("%s: source %s is not this dashboard's", where, col)
					}
					if id, ok := m["kpi"]; ok {
						if !mine[id] {
							t.Errorf("%s: KPI %s is not this dashboard's", where, id)
						}
						v, _ := strconv.ParseFloat(fmt.Sprint(res.Value[1]), 64)
						got[id] = v
					}
					if z, ok := m["kpi_zone"]; ok && strings.HasPrefix(expr, "sum by (kpi_zone)") {
						v, _ := strconv.ParseFloat(fmt.Sprint(res.Value[1]), 64)
						got["zone:"+z] = v
					}
				}
				if mm := kpiMatcher.FindStringSubmatch(expr); mm != nil && !strings.HasPrefix(expr, "sum by (kpi_zone)") {
					for _, id := range strings.Split(mm[1], "|") {
						// A stale KPI (zone -3) has no value and no attainment now.
						if zones[id] < -1 && (strings.Contains(expr, "kpi_attainment_ratio{") || strings.HasPrefix(expr, "kpi_value{")) {
							continue
						}
						if forecastCol && !wantForecast(id) {
							continue
						}
						if _, ok := got[id]; !ok {
							t.Errorf("%s: no series for KPI %s", where, id)
						}
					}
				}
				if strings.Contains(expr, "kpi:zone:code") {
					for id, v := range got {
						if v != zones[id] {
							t.Errorf("%s: the Zone column says %v for %s, want %v", where, v, id, zones[id])
						}
					}
				}
				if strings.HasPrefix(expr, "sum by (kpi_zone)") {
					var total, red float64
					for id := range mine {
						total++
						if zones[id] == 2 {
							red++
						}
					}
					if got["zone:green"]+got["zone:yellow"]+got["zone:red"]+got["zone:unknown"] != total || got["zone:red"] != red {
						t.Errorf("%s: zone counts %v, want %v KPIs, %v red", where, got, total, red)
					}
				}
			}
		}
		if want := grafana.QueriesPerRefresh(len(units)); n != want {
			t.Errorf("%s: %d queries, want %d", d.File, n, want)
		}
	}
}

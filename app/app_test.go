package app

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/derived"
	"github.com/bakhmach-hub/kpi_exporter/collectors/file"
	"github.com/bakhmach-hub/kpi_exporter/exporter"
	"github.com/bakhmach-hub/kpi_exporter/internal/testclock"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
	"github.com/bakhmach-hub/kpi_exporter/store"
)

// blocking is a source type whose runs hang until cancelled, like a source
// stuck on a slow API.
var (
	blockingStarted = make(chan struct{}, 16)
)

func init() {
	collectors.Register("blocking", func(kpi.Source, collectors.Env) (collectors.Collector, error) {
		return collectors.CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
			blockingStarted <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}), nil
	})
}

const catalogue = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: manual, type: file, interval: 1h, settings: {path: values.yaml}}
  - {name: stuck, type: blocking, interval: 1h, timeout: 1h}
kpis:
  - id: nps
    name: Net Promoter Score
    domain: workflow
    dashboard: product
    unit: score
    direction: higher
    source: {name: manual, measurement: nps}
    targets: [{period: Q1, value: 50}]
  - id: stuck_kpi
    name: Stuck
    domain: workflow
    dashboard: product
    unit: count
    direction: higher
    source: {name: stuck, measurement: x}
    targets: [{period: Q1, value: 1}]
`

type fixture struct {
	dir  string
	exp  *exporter.Exporter
	app  *App
	stop func()
}

func start(t testing.TB, cat string) *fixture {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "kpis.yaml"), cat)
	write(t, filepath.Join(dir, "values.yaml"), "nps: 40\n")
	st, err := store.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	exp := exporter.New(exporter.Options{Now: testclock.Now})
	a, err := New(Config{CatalogueFile: filepath.Join(dir, "kpis.yaml"), Store: st, Exporter: exp, Logger: zap.NewNop(),
		EvalInterval: 20 * time.Millisecond, SaveInterval: 20 * time.Millisecond, Now: testclock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Run(ctx) }()
	f := &fixture{dir: dir, exp: exp, app: a, stop: func() { cancel(); wg.Wait() }}
	t.Cleanup(f.stop)
	return f
}

func write(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) result(id string) kpi.Result {
	for _, r := range f.exp.Snapshot().Scorecard.Results {
		if r.KPI.ID == id {
			return r
		}
	}
	return kpi.Result{}
}

func (f *fixture) waitValue(t *testing.T, id string, v float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := f.result(id)
		if r.HasValue && r.Value == v {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("KPI %s never reached %v (now %+v)", id, v, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *fixture) scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	f.exp.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestScrapeNeverWaitsForARunningCollector(t *testing.T) {
	f := start(t, catalogue)
	<-blockingStarted // the stuck source is inside Collect now
	f.waitValue(t, "nps", 40)
	for i := 0; i < 20; i++ {
		begin := time.Now()
		body := f.scrape(t)
		if d := time.Since(begin); d > time.Second {
			t.Fatalf("a scrape took %s while a source was stuck", d)
		}
		if !strings.Contains(body, `kpi_value{domain="workflow",kpi="nps"} 40`) {
			t.Fatalf("scrape lacks the value of the healthy source: %+v", f.result("nps"))
		}
	}
	if r := f.result("stuck_kpi"); r.Zone != kpi.Unknown {
		t.Errorf("the stuck source's KPI should be unknown, got %s", r.Zone)
	}
}

func TestFailingSourceKeepsLastGoodValue(t *testing.T) {
	// max_age is set so that the kept value cannot go stale while the
	// failures back off (the default, three 30 ms intervals, raced them).
	cat := strings.Replace(catalogue, "interval: 1h, settings", "interval: 30ms, settings", 1)
	cat = strings.Replace(cat, "source: {name: manual, measurement: nps}", "source: {name: manual, measurement: nps}\n    max_age: 1h", 1)
	f := start(t, cat)
	f.waitValue(t, "nps", 40)
	write(t, filepath.Join(f.dir, "values.yaml"), "nps: [broken\n")
	// Let several runs fail.
	deadline := time.Now().Add(5 * time.Second)
	for {
		var failing bool
		for _, s := range f.exp.Snapshot().Sources {
			if s.Source.Name == "manual" && s.Status.Errors >= 2 {
				failing = true
				if !strings.Contains(s.Status.LastError, "values.yaml:1:6") {
					t.Errorf("last error does not name the place: %s", s.Status.LastError)
				}
			}
		}
		if failing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the broken file never failed a run")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := f.result("nps"); !r.HasValue || r.Value != 40 || r.Zone != kpi.Yellow {
		t.Errorf("after failures: %+v, want the last good 40 in yellow", r)
	}
	body := f.scrape(t)
	if !strings.Contains(body, `kpi_value{domain="workflow",kpi="nps"} 40`) || !strings.Contains(body, `kpi_collector_success{collector="manual"} 0`) {
		t.Error("scrape should show the last good value and the failing source")
	}
	write(t, filepath.Join(f.dir, "values.yaml"), "nps: 51\n")
	f.waitValue(t, "nps", 51)
}

func TestReload(t *testing.T) {
	f := start(t, catalogue)
	f.waitValue(t, "nps", 40)
	good := filepath.Join(f.dir, "kpis.yaml")

	write(t, good, strings.Replace(catalogue, "    unit: score", "    unit: score\n    colour: blue", 1))
	err := f.app.Reload(context.Background())
	if err == nil || err.Error() != good+`:12:5: unknown field "colour"` {
		t.Fatalf("reload of a bad catalogue: %v", err)
	}
	if body := f.scrape(t); !strings.Contains(body, "kpi_config_last_reload_successful 0") ||
		!strings.Contains(body, `kpi_value{domain="workflow",kpi="nps"} 40`) {
		t.Error("a failed reload must keep the old catalogue and report 0")
	}

	write(t, good, strings.Replace(catalogue, "value: 50}", "value: 40}", 1))
	if err := f.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := f.result("nps"); r.Target != 40 || r.Zone != kpi.Green {
		t.Errorf("after reload: target %v zone %s", r.Target, r.Zone)
	}
	if body := f.scrape(t); !strings.Contains(body, "kpi_config_last_reload_successful 1") {
		t.Error("a good reload must report 1")
	}
}

func TestShutdownSavesState(t *testing.T) {
	f := start(t, catalogue)
	f.waitValue(t, "nps", 40)
	f.stop()
	st, err := store.Open(filepath.Join(f.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	in := st.Inputs()
	if r := in.Readings["manual"]; len(r.Measurements) != 1 || r.Measurements[0].Value != 40 {
		t.Errorf("saved reading: %+v", r)
	}
	if len(in.History["nps"]) == 0 {
		t.Error("no history saved")
	}
}

func TestLoadEmbeddedCatalogue(t *testing.T) {
	l, err := Load("", "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Catalogue.KPIs) < 80 {
		t.Errorf("embedded catalogue has %d KPIs", len(l.Catalogue.KPIs))
	}
	if len(l.Jobs) != 2 || l.Jobs[0].Source.Name != "manual" || l.Jobs[1].Source.Name != "derived" {
		t.Errorf("embedded catalogue should enable the manual and derived sources, got %d jobs", len(l.Jobs))
	}
}

// TestEmbeddedCatalogueValuesFile checks that the example values file has a
// value for every KPI of the embedded catalogue bound to the file source.
func TestEmbeddedCatalogueValuesFile(t *testing.T) {
	l, err := Load("", "", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("../examples/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := file.ParseYAML("values.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, m := range ms {
		have[m.Name] = true
	}
	used := map[string]bool{}
	// The derived source's inputs read the values file too.
	if src, ok := l.Catalogue.Source("derived"); ok {
		var s derived.Settings
		if err := src.Settings.Decode(&s); err != nil {
			t.Fatal(err)
		}
		for _, m := range s.Measurements {
			for _, in := range m.Inputs {
				if in.Source == "manual" {
					used[in.Measurement] = true
					if !have[in.Measurement] {
						t.Errorf("the derived source reads %s, which examples/values.yaml lacks", in.Measurement)
					}
				}
			}
		}
	}
	for _, k := range l.Catalogue.KPIs {
		if k.Source.Source != "manual" {
			continue
		}
		used[k.Source.Measurement] = true
		if !have[k.Source.Measurement] {
			t.Errorf("KPI %s reads %s, which examples/values.yaml lacks", k.ID, k.Source.Measurement)
		}
	}
	for name := range have {
		if !used[name] {
			t.Errorf("examples/values.yaml has %s, which no KPI reads", name)
		}
	}
}

// TestUnchangedEvaluationKeepsTheSnapshot: re-evaluating without news must
// not publish a new snapshot, so the encodings scrapes cached stay valid.
func TestUnchangedEvaluationKeepsTheSnapshot(t *testing.T) {
	f := start(t, catalogue)
	f.waitValue(t, "nps", 40)
	time.Sleep(50 * time.Millisecond) // let the first run's effects settle
	before := f.exp.Snapshot()
	time.Sleep(150 * time.Millisecond) // several evaluation ticks of 20ms
	if f.exp.Snapshot() != before {
		t.Error("an evaluation that changed nothing published a new snapshot")
	}
	write(t, filepath.Join(f.dir, "values.yaml"), "nps: 41\n")
	if err := f.app.Reload(context.Background()); err != nil { // a reload publishes
		t.Fatal(err)
	}
	if f.exp.Snapshot() == before {
		t.Error("a reload did not publish a new snapshot")
	}
}

// A derived source runs as soon as the sources it reads have a reading, and
// again after each of their runs, not an interval later: both intervals here
// are an hour, yet the derived KPI has its value at once and follows an edit.
func TestDerivedRunsWhenItsInputsHaveRun(t *testing.T) {
	const cat = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: manual, type: file, interval: 1h, settings: {path: values.yaml}}
  - name: calc
    type: derived
    interval: 1h
    settings:
      measurements:
        - {name: double, expr: "x * 2", inputs: {x: {source: manual, measurement: nps}}}
        - {name: via_kpi, expr: "x + 1", inputs: {x: {kpi: nps}}}
kpis:
  - {id: nps, name: NPS, domain: workflow, dashboard: product, unit: score, direction: higher,
     source: {name: manual, measurement: nps}, targets: [{period: Q1, value: 50}]}
  - {id: double, name: Double, domain: workflow, dashboard: product, unit: score, direction: higher,
     source: {name: calc, measurement: double}, targets: [{period: Q1, value: 50}]}
  - {id: via_kpi, name: Via KPI, domain: workflow, dashboard: product, unit: score, direction: higher,
     source: {name: calc, measurement: via_kpi}, targets: [{period: Q1, value: 50}]}
`
	f := start(t, cat)
	f.waitValue(t, "double", 80)
	f.waitValue(t, "via_kpi", 41)
	write(t, filepath.Join(f.dir, "values.yaml"), "nps: 45\n")
	// The file source re-reads on its interval; run it as a reload would.
	f.app.scheduler.Trigger("manual")
	f.waitValue(t, "double", 90)
	f.waitValue(t, "via_kpi", 46)
}

// A catalogue that loses KPIs and sources (an empty file is refused outright;
// a truncated one may parse) never deletes their state at once: it is kept,
// orphaned, logged and counted, and restoring the file brings it back. Only
// past the retention is it dropped.
func TestCatalogueEditsKeepState(t *testing.T) {
	f := start(t, catalogue)
	f.waitValue(t, "nps", 40)
	// A push-free way to a history: the file source's value is recorded.
	deadline := time.Now().Add(5 * time.Second)
	for len(f.app.cfg.Store.History("nps")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no history recorded")
		}
		time.Sleep(10 * time.Millisecond)
	}
	path := filepath.Join(f.dir, "kpis.yaml")

	// A 0-byte catalogue is an error, and changes nothing.
	write(t, path, "")
	if err := f.app.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "no KPIs") {
		t.Fatalf("an empty catalogue was accepted: %v", err)
	}
	if body := f.scrape(t); !strings.Contains(body, "kpi_config_last_reload_successful 0") {
		t.Error("the failed reload is not reported")
	}

	// A catalogue that lost nps and its source: their state is kept.
	stuckOnly := catalogue[:strings.Index(catalogue, "kpis:")] + "kpis:\n" + catalogue[strings.Index(catalogue, "  - id: stuck_kpi"):]
	stuckOnly = strings.Replace(stuckOnly, "  - {name: manual, type: file, interval: 1h, settings: {path: values.yaml}}\n", "", 1)
	write(t, path, stuckOnly)
	if err := f.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.app.cfg.Store.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Load(filepath.Join(f.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	in := st.Inputs()
	if len(in.History["nps"]) == 0 || len(in.Readings["manual"].Measurements) == 0 {
		t.Fatalf("state of the removed KPI and source is gone: %+v", in)
	}
	if body := f.scrape(t); !strings.Contains(body, `kpi_state_orphaned{kind="kpi"} 1`) || !strings.Contains(body, `kpi_state_orphaned{kind="source"} 1`) {
		t.Error("the orphaned state is not counted")
	}

	// Restoring the file brings everything back.
	write(t, path, catalogue)
	if err := f.app.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := f.result("nps"); !r.HasValue || r.Value != 40 || len(f.app.cfg.Store.History("nps")) == 0 {
		t.Errorf("after restoring the catalogue: %+v", r)
	}
	if body := f.scrape(t); !strings.Contains(body, `kpi_state_orphaned{kind="kpi"} 0`) {
		t.Error("adopted state still counted as orphaned")
	}
}

// Orphaned state is dropped only past its retention.
func TestOrphanRetention(t *testing.T) {
	st, err := store.Open("")
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st.SetReading("gone", kpi.Reading{At: t0, Measurements: []kpi.Measurement{{Name: "x", Value: 1}}})
	st.Record("gone_kpi", kpi.Point{T: t0, V: 1})
	keep := map[string]bool{}
	if r := st.Retain(keep, keep, t0, 30*24*time.Hour); len(r.Orphaned) != 2 || r.Sources != 1 || r.KPIs != 1 {
		t.Fatalf("first retain: %+v", r)
	}
	if r := st.Retain(keep, keep, t0.Add(29*24*time.Hour), 30*24*time.Hour); len(r.Dropped) != 0 || len(st.History("gone_kpi")) != 1 {
		t.Fatalf("dropped before the retention: %+v", r)
	}
	r := st.Retain(keep, keep, t0.Add(30*24*time.Hour), 30*24*time.Hour)
	if strings.Join(r.Dropped, " ") != "kpi/gone_kpi source/gone" || len(st.History("gone_kpi")) != 0 || len(st.Inputs().Readings) != 0 {
		t.Fatalf("after the retention: %+v", r)
	}
}

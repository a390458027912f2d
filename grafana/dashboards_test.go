package grafana

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	promrules "github.com/bakhmach-hub/kpi_exporter/deploy/prometheus"
	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/exporter"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

var update = flag.Bool("update", false, "rewrite the checked-in dashboards")

func defaultCatalogue(t *testing.T) *kpi.Catalogue {
	t.Helper()
	c, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCheckedInDashboardsAreCurrent: grafana/dashboards holds exactly what
// the generator makes of the default catalogue now.
func TestCheckedInDashboardsAreCurrent(t *testing.T) {
	ds, err := Dashboards(defaultCatalogue(t))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		old, _ := filepath.Glob("dashboards/*.json")
		for _, f := range old {
			os.Remove(f)
		}
		for _, d := range ds {
			os.WriteFile(filepath.Join("dashboards", d.File), d.JSON, 0o644)
		}
	}
	files, _ := filepath.Glob("dashboards/*.json")
	if len(files) != len(ds) {
		t.Errorf("%d checked-in dashboards, the generator makes %d", len(files), len(ds))
	}
	for _, d := range ds {
		got, err := os.ReadFile(filepath.Join("dashboards", d.File))
		if err != nil || !bytes.Equal(got, d.JSON) {
			t.Errorf("grafana/dashboards/%s is stale: run `go run ./cmd/kpi_exporter generate dashboards --out grafana/dashboards`", d.File)
		}
	}
}

type dash struct {
	UID        string `json:"uid"`
	Templating struct {
		List []struct{ Name, Type string } `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type, Title string
		FieldConfig struct {
			Defaults struct{ Unit string } `json:"defaults"`
		} `json:"fieldConfig"`
		Targets []struct{ Expr string } `json:"targets"`
	} `json:"panels"`
}

// TestDashboardShape checks the conventions: fixed uids, the datasource,
// job and instance variables, a unit on every panel, the five framework
// dashboards and one per domain.
func TestDashboardShape(t *testing.T) {
	c := defaultCatalogue(t)
	ds, err := Dashboards(c)
	if err != nil {
		t.Fatal(err)
	}
	domains := map[string]bool{}
	for _, k := range c.KPIs {
		domains[k.Domain] = true
	}
	if len(ds) != len(kpi.Dashboards)+len(domains) {
		t.Errorf("%d dashboards, want %d framework + %d domain ones", len(ds), len(kpi.Dashboards), len(domains))
	}
	for _, d := range ds {
		var x dash
		if err := json.Unmarshal(d.JSON, &x); err != nil {
			t.Fatal(err)
		}
		if x.UID == "" || x.UID+".json" != d.File || len(x.UID) > 40 {
			t.Errorf("%s: uid %q", d.File, x.UID)
		}
		var vars []string
		for _, v := range x.Templating.List {
			vars = append(vars, v.Name)
		}
		if len(vars) != 3 || vars[0] != "datasource" || vars[1] != "job" || vars[2] != "instance" {
			t.Errorf("%s: variables %v", d.File, vars)
		}
		for _, p := range x.Panels {
			if p.Type != "row" && p.Type != "table" && p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: panel %q has no unit", d.File, p.Title)
			}
		}
	}
	for u, want := range map[kpi.Unit]string{kpi.UnitRatio: "percentunit", kpi.UnitSeconds: "s", kpi.UnitUSD: "currencyUSD", kpi.UnitCount: "short"} {
		if Unit(u) != want {
			t.Errorf("Unit(%s) = %s", u, Unit(u))
		}
	}
}

var selectorName = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)

// TestQueriesNameExposedMetrics checks every metric a dashboard or rule
// queries against what the exporter exposes (and the recording rules).
func TestQueriesNameExposedMetrics(t *testing.T) {
	y := `
calendar: {plan_start: 2026-01-01}
sources: [{name: s, type: file}]
kpis: [{id: k, name: K, domain: d, dashboard: technical, unit: ratio, direction: higher, source: {name: s, measurement: m}, targets: [{period: Q1, value: 1}]}]
`
	c, err := kpi.Parse("t.yml", []byte(y), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	readings := map[string]kpi.Reading{"s": {At: now, Measurements: []kpi.Measurement{{Name: "m", Value: 0.5}}}}
	// Two weeks climbing from 0.3 to 0.5: a forecast, green at the end of
	// Q1, with an ETA, so that every forecast family is there.
	var hist []kpi.Point
	for i := 0; i < 14*24; i++ {
		hist = append(hist, kpi.Point{T: now.Add(-time.Duration(14*24-i) * time.Hour), V: 0.3 + 0.2*float64(i)/(14*24)})
	}
	sc := kpi.Evaluate(c, kpi.Inputs{Readings: readings, History: map[string][]kpi.Point{"k": hist}}, now)
	if f := sc.Results[0].Forecast; !f.OK || f.ETA.IsZero() {
		t.Fatalf("no forecast with an ETA: %+v", f)
	}
	snap, err := exporter.NewSnapshot(c, sc,
		[]exporter.SourceState{{Source: c.Sources[0], LastSuccess: now}}, readings)
	if err != nil {
		t.Fatal(err)
	}
	e := exporter.New(exporter.Options{})
	e.Publish(snap)
	fams, _ := e.Gather()
	known := map[string]bool{"up": true, "kpi_collector_success": true, "kpi_collector_duration_seconds": true}
	for _, f := range fams {
		known[f.GetName()] = true
	}
	rules := promrules.Rules(promrules.Options{})
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				known[r.Record] = true
			}
			exprs = append(exprs, r.Expr)
		}
	}
	ds, err := Dashboards(defaultCatalogue(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		var x dash
		json.Unmarshal(d.JSON, &x)
		for _, p := range x.Panels {
			for _, tg := range p.Targets {
				exprs = append(exprs, tg.Expr)
			}
		}
	}
	unknown := map[string]bool{}
	for _, e := range exprs {
		for _, m := range selectorName.FindAllStringSubmatch(e, -1) {
			if !known[m[1]] {
				unknown[m[1]] = true
			}
		}
	}
	var names []string
	for n := range unknown {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) > 0 {
		t.Errorf("queries name metrics the exporter does not expose: %v", names)
	}
	if len(exprs) < 100 {
		t.Errorf("only %d expressions checked", len(exprs))
	}
}

// TestQueryBudget: no dashboard of the default catalogue runs more than 60
// queries per refresh, and each runs exactly QueriesPerRefresh of its units
// (the README's table lists them). Time series show their legends.
func TestQueryBudget(t *testing.T) {
	c := defaultCatalogue(t)
	ds, err := Dashboards(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		var x struct {
			Panels []struct {
				Type    string
				Targets []struct{ Expr string }
				Options struct {
					Legend struct{ ShowLegend bool }
				}
			}
		}
		if err := json.Unmarshal(d.JSON, &x); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range x.Panels {
			n += len(p.Targets)
			if p.Type == "timeseries" && !p.Options.Legend.ShowLegend {
				t.Errorf("%s: a time series hides its legend", d.File)
			}
		}
		units := map[kpi.Unit]bool{}
		for _, k := range c.KPIs {
			if "kpi-"+k.Dashboard+".json" == d.File || "kpi-domain-"+strings.ReplaceAll(k.Domain, "_", "-")+".json" == d.File {
				units[k.Unit] = true
			}
		}
		if want := QueriesPerRefresh(len(units)); n != want || n > 60 {
			t.Errorf("%s: %d queries per refresh, want %d and at most 60", d.File, n, want)
		}
		t.Logf("%s: %d queries", d.File, n)
	}
}

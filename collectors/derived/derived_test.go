package derived

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/app"
	"github.com/bakhmach-hub/kpi_exporter/collectors"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/file"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func build(t *testing.T, settings string, latest collectors.Latest) (*Collector, error) {
	t.Helper()
	y := "sources:\n  - name: calc\n    type: derived\n    settings:\n" + settings
	c, err := kpi.Parse("kpis.yaml", []byte(y), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := New(c.Sources[0], collectors.Env{Latest: func() collectors.Latest { return latest }})
	if err != nil {
		return nil, err
	}
	return col.(*Collector), nil
}

func latest() collectors.Latest {
	return collectors.Latest{
		Readings: map[string]kpi.Reading{
			"billing": {At: t0.Add(-time.Hour), Measurements: []kpi.Measurement{
				{Name: "cost_usd", Value: 300, Labels: kpi.Labels{{Name: "product", Value: "actions"}}},
				{Name: "cost_usd", Value: 100, Labels: kpi.Labels{{Name: "product", Value: "packages"}}},
				{Name: "zero", Value: 0},
			}},
			"prom": {At: t0.Add(-10 * time.Minute), Measurements: []kpi.Measurement{{Name: "requests", Value: 200000}}},
		},
		KPIs: map[string]kpi.Point{"arr": {T: t0.Add(-2 * time.Hour), V: 600000}},
	}
}

func run(t *testing.T, c *Collector) map[string]kpi.Measurement {
	t.Helper()
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]kpi.Measurement{}
	for _, m := range ms {
		out[m.Name] = m
	}
	return out
}

func TestEvaluationOrderAndTimes(t *testing.T) {
	// per_request is listed before total, which it reads: it must still be
	// computed after it.
	c, err := build(t, `      measurements:
        - name: cost_per_request_usd
          expr: div(total, requests)
          inputs:
            total: {source: calc, measurement: total_cost_usd}
            requests: {source: prom, measurement: requests}
        - name: total_cost_usd
          expr: cost
          inputs:
            cost: {source: billing, measurement: cost_usd, aggregate: sum}
        - name: revenue_per_employee_usd
          expr: arr / 4
          inputs:
            arr: {kpi: arr}
`, latest())
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, c)
	if got["total_cost_usd"].Value != 400 || got["cost_per_request_usd"].Value != 0.002 || got["revenue_per_employee_usd"].Value != 150000 {
		t.Errorf("values: %+v", got)
	}
	// A value is as old as its oldest input.
	if !got["cost_per_request_usd"].Time.Equal(t0.Add(-time.Hour)) || !got["revenue_per_employee_usd"].Time.Equal(t0.Add(-2*time.Hour)) {
		t.Errorf("times: %v %v", got["cost_per_request_usd"].Time, got["revenue_per_employee_usd"].Time)
	}
	if deps := c.DependsOn(); strings.Join(deps, ",") != "billing,kpi:arr,prom" {
		t.Errorf("depends on %v", deps)
	}
}

func TestUnknownPropagates(t *testing.T) {
	c, err := build(t, `      measurements:
        - name: by_zero
          expr: div(requests, z)
          inputs:
            requests: {source: prom, measurement: requests}
            z: {source: billing, measurement: zero}
        - name: from_missing
          expr: x * 2
          inputs:
            x: {source: stripe, measurement: mrr}
        - name: downstream
          expr: y + 1
          inputs:
            y: {source: calc, measurement: from_missing}
        - name: ambiguous
          expr: cost
          inputs:
            cost: {source: billing, measurement: cost_usd}
        - name: fine
          expr: requests / 1000
          inputs:
            requests: {source: prom, measurement: requests}
`, latest())
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, c)
	for _, name := range []string{"by_zero", "from_missing", "downstream", "ambiguous"} {
		if m, ok := got[name]; ok {
			t.Errorf("%s = %v: a missing or undefined input must give no value, never 0", name, m.Value)
		}
	}
	if got["fine"].Value != 200 {
		t.Errorf("fine = %v", got["fine"].Value)
	}
}

func TestRejectedAtLoad(t *testing.T) {
	cases := map[string]string{
		// A cycle between two measurements of the source.
		`      measurements:
        - name: a
          expr: b + 1
          inputs: {b: {source: calc, measurement: b}}
        - name: b
          expr: a + 1
          inputs: {a: {source: calc, measurement: a}}
`: "kpis.yaml:5:7: derived measurements form a cycle: a → b → a",
		// A name the inputs do not declare.
		`      measurements:
        - name: a
          expr: undeclared * 2
          inputs: {x: {kpi: arr}}
`: "kpis.yaml:7:17: a: unknown name undeclared (1:1)",
		// Division by a term that may be 0.
		`      measurements:
        - name: margin
          expr: (revenue - cost) / revenue
          inputs: {revenue: {kpi: mrr}, cost: {kpi: cogs}}
`: `kpis.yaml:7:17: margin: division by "revenue", which may be 0: write div(revenue - cost, revenue), which has no value then`,
		`      measurements:
        - name: a
          expr: x
          inputs: {x: {kpi: arr, source: billing}}
`: "kpis.yaml:8:24: input x is either {source, measurement[, labels, aggregate]} or {kpi}",
		`      measurements:
        - name: a
          expr: x
          inputs: {x: {source: calc, measurement: nope}}
`: "kpis.yaml:5:7: input x of a reads calc/nope, which this source does not define",
	}
	for settings, want := range cases {
		_, err := build(t, settings, collectors.Latest{})
		if err == nil || err.Error() != want {
			t.Errorf("got %v\nwant %s", err, want)
		}
	}
}

// TestCycleAcrossSources: two derived sources reading each other are
// rejected when the catalogue loads, with the place.
func TestCycleAcrossSources(t *testing.T) {
	dir := t.TempDir()
	y := `sources:
  - name: one
    type: derived
    settings:
      measurements: [{name: a, expr: x, inputs: {x: {source: two, measurement: b}}}]
  - name: two
    type: derived
    settings:
      measurements: [{name: b, expr: x, inputs: {x: {source: one, measurement: a}}}]
kpis:
  - {id: k, name: K, domain: d, dashboard: technical, unit: count, direction: higher, source: {name: one, measurement: a}, targets: [{period: M1, value: 1}]}
calendar: {launch: 2026-01-01}
`
	path := filepath.Join(dir, "kpis.yaml")
	os.WriteFile(path, []byte(y), 0o644)
	_, err := app.Load(path, "", zap.NewNop())
	if err == nil || err.Error() != path+":2:5: sources read each other in a cycle: one → two → one" {
		t.Errorf("cycle across sources: %v", err)
	}
	y2 := strings.Replace(y, "source: one", "source: ghost", 1)
	os.WriteFile(path, []byte(y2), 0o644)
	if _, err := app.Load(path, "", zap.NewNop()); err == nil || !strings.Contains(err.Error(), `reads source "ghost", which the catalogue does not declare`) {
		t.Errorf("undeclared source: %v", err)
	}
}

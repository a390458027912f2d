// Package bindingtest checks, for the tests of a source type, that every
// KPI of the embedded default catalogue bound to a source of that type
// names exactly one series the source reports.
package bindingtest

import (
	"testing"

	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Check fails t for every KPI bound to a source of type typ that matches
// no series, or several, of ms; and when fewer than want KPIs are bound.
func Check(t *testing.T, typ string, ms []kpi.Measurement, want int) {
	t.Helper()
	cat, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range cat.KPIs {
		if src, _ := cat.Source(k.Source.Source); src.Type != typ {
			continue
		}
		n++
		found := 0
		for _, m := range ms {
			if m.Name == k.Source.Measurement && m.Labels.Matches(k.Source.Labels) {
				found++
			}
		}
		if found != 1 {
			t.Errorf("KPI %s binds %s: %d series match, want exactly 1", k.ID, k.Source, found)
		}
	}
	if n < want {
		t.Errorf("%d KPIs bound to %s sources, want at least %d", n, typ, want)
	}
}

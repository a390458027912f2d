package push

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func source(t *testing.T, settings string) (collectors.Collector, error) {
	t.Helper()
	c, err := kpi.Parse("kpis.yaml", []byte(`
sources:
  - {name: survey, type: push, interval: 24h`+settings+`}
kpis: []
`), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return New(c.Sources[0], collectors.Env{})
}

func TestSettings(t *testing.T) {
	col, err := source(t, ", settings: {measurements: [responses, nps_raw]}")
	if err != nil {
		t.Fatal(err)
	}
	p, ok := col.(collectors.Passive)
	if !ok || strings.Join(p.Measurements(), " ") != "responses nps_raw" {
		t.Errorf("a push source is passive and lists its measurements: %v", col)
	}
	if _, err := col.Collect(context.Background()); !errors.Is(err, ErrNotPolled) {
		t.Errorf("Collect: %v", err)
	}
	if col, err := source(t, ""); err != nil || len(col.(collectors.Passive).Measurements()) != 0 {
		t.Errorf("no settings: %v", err)
	}
	for settings, want := range map[string]string{
		", settings: {measurements: [Bad-Name]}": `kpis.yaml:3:`,
		", settings: {measurement: [x]}":         `unknown field "measurement"`,
	} {
		if _, err := source(t, settings); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", settings, err, want)
		}
	}
}

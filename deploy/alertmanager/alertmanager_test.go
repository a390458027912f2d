package alertmanager

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

var update = flag.Bool("update", false, "rewrite the checked-in configuration")

func amtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("amtool")
	if err != nil {
		t.Fatal("amtool is needed: make test installs Debian's prometheus-alertmanager")
	}
	return p
}

// The checked-in configuration is the default catalogue's, and Alertmanager's
// own amtool accepts it.
func TestCheckedInConfigIsCurrent(t *testing.T) {
	c, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(Generate(Options{}, c))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		os.WriteFile("alertmanager.yml", got, 0o644)
	}
	want, _ := os.ReadFile("alertmanager.yml")
	if !bytes.Equal(got, want) {
		t.Error("deploy/alertmanager/alertmanager.yml is stale: run `go run ./cmd/kpi_exporter generate alertmanager --out deploy/alertmanager/alertmanager.yml`")
	}
	if out, err := exec.Command(amtool(t), "check-config", "alertmanager.yml").CombinedOutput(); err != nil {
		t.Errorf("amtool check-config: %v\n%s", err, out)
	}
}

// amtool's route test, on a catalogue that is not the default: each alert
// reaches its owner's receiver and no other; an owner with odd characters
// gets a usable receiver name; an alert without an owner goes to default.
func TestRoutesByOwner(t *testing.T) {
	const cat = `sources: [{name: s, type: file}]
calendar: {launch: 2026-01-01}
kpis:
  - {id: a, name: A, domain: d, dashboard: technical, owner: data-team, unit: count, direction: higher, source: {name: s, measurement: a}, targets: [{period: M1, value: 1}]}
  - {id: b, name: B, domain: d, dashboard: technical, owner: "sales ops", unit: count, direction: higher, source: {name: s, measurement: b}, targets: [{period: M1, value: 1}]}
`
	c, err := kpi.Parse("c.yml", []byte(cat), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Marshal(Generate(Options{OwnerURL: "http://127.0.0.1:1/{owner}"}, c))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "am.yml")
	os.WriteFile(path, b, 0o644)
	for labels, want := range map[string]string{
		`alertname=KpiRedZone owner=data-team kpi=a`:       "owner-data-team",
		`alertname=KpiRedZone owner="sales ops" kpi=b`:     "owner-sales_ops",
		`alertname=KpiExporterDown instance=x job=kpi`:     "default",
		`alertname=KpiYellowZone owner=someone-else kpi=z`: "default",
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + path}, splitLabels(labels)...)
		out, err := exec.Command(amtool(t), args...).Output() // stderr has a warning about --alertmanager.url
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("%s: routed to %q (%v), want %s", labels, got, err, want)
		}
	}
}

// splitLabels splits name=value pairs on spaces outside quotes.
func splitLabels(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteRune(r)
		}
	}
	return append(out, cur.String())
}

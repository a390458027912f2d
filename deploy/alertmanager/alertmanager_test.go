package alertmanager

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
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

// TestReplicasNotifyOnce runs Alertmanager (Debian's) with the generated
// configuration: the same KPI's alert from two replicas of one job (they
// differ by instance only) makes one notification holding both; another
// KPI, or another job's exporter, makes its own.
func TestReplicasNotifyOnce(t *testing.T) {
	bin, err := exec.LookPath("prometheus-alertmanager")
	if err != nil {
		t.Fatal("prometheus-alertmanager is needed: make test installs Debian's prometheus-alertmanager")
	}
	type notification struct {
		GroupLabels map[string]string `json:"groupLabels"`
		Alerts      []struct {
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	got := make(chan notification, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var n notification
		if err := json.NewDecoder(r.Body).Decode(&n); err == nil {
			got <- n
		}
	}))
	defer hook.Close()
	c, err := kpi.Parse("c.yml", []byte(`sources: [{name: s, type: file}]
calendar: {launch: 2026-01-01}
kpis:
  - {id: a, name: A, domain: d, dashboard: technical, owner: team, unit: count, direction: higher, source: {name: s, measurement: a}, targets: [{period: M1, value: 1}]}
  - {id: b, name: B, domain: d, dashboard: technical, owner: team, unit: count, direction: higher, source: {name: s, measurement: b}, targets: [{period: M1, value: 1}]}
`), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Marshal(Generate(Options{OwnerURL: hook.URL + "/{owner}", DefaultURL: hook.URL + "/default", GroupWait: time.Second,
		GroupInterval: time.Minute, RepeatInterval: time.Hour}, c))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "am.yml"), cfg, 0o644)
	addr := testproc.FreeAddr(t)
	_, out := testproc.Start(t, dir, nil, bin, "--config.file=am.yml", "--storage.path="+dir, "--web.listen-address="+addr,
		"--cluster.listen-address=")
	alerts := `[` +
		`{"labels":{"alertname":"KpiRedZone","job":"kpi","instance":"10.0.0.1:10050","kpi":"a","domain":"d","owner":"team"}},` +
		`{"labels":{"alertname":"KpiRedZone","job":"kpi","instance":"10.0.0.2:10050","kpi":"a","domain":"d","owner":"team"}},` +
		`{"labels":{"alertname":"KpiRedZone","job":"kpi","instance":"10.0.0.1:10050","kpi":"b","domain":"d","owner":"team"}},` +
		`{"labels":{"alertname":"KpiRedZone","job":"other","instance":"10.0.1.1:10050","kpi":"a","domain":"d","owner":"team"}}]`
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/api/v2/alerts", "application/json", strings.NewReader(alerts))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("alertmanager did not take the alerts: %v\n%s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	groups := map[string]int{}
	timeout := time.After(20 * time.Second)
	for len(groups) < 3 {
		select {
		case n := <-got:
			key := n.GroupLabels["job"] + "/" + n.GroupLabels["kpi"]
			if _, dup := groups[key]; dup {
				t.Errorf("a second notification for %s", key)
			}
			groups[key] = len(n.Alerts)
		case <-timeout:
			t.Fatalf("notifications %v, want three\n%s", groups, out)
		}
	}
	if groups["kpi/a"] != 2 || groups["kpi/b"] != 1 || groups["other/a"] != 1 {
		t.Errorf("notifications (job/kpi: alerts) %v, want kpi/a: 2 (both replicas), kpi/b: 1, other/a: 1", groups)
	}
}

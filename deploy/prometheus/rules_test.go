package prometheus

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the checked-in rules")

func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../../bin/promtool"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is needed: run `make tools` (or set PROMTOOL)")
	}
	return p
}

// TestCheckedInRulesAreCurrent is the golden check: deploy/prometheus/
// rules.yaml equals what the generator makes now, and promtool accepts it.
func TestCheckedInRulesAreCurrent(t *testing.T) {
	got, err := Marshal(Rules(Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		os.WriteFile("rules.yaml", got, 0o644)
	}
	want, err := os.ReadFile("rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("deploy/prometheus/rules.yaml is stale: run `go run ./cmd/kpi_exporter generate rules --out deploy/prometheus/rules.yaml`")
	}
	out, err := exec.Command(promtool(t), "check", "rules", "rules.yaml").CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}

// TestRuleUnitTests drives the series of three exporters into red, yellow,
// stale, absent and down states and asserts with `promtool test rules`
// which alerts fire, with which labels. x and y export the same KPI id
// (staging and production): each alerts once, on its own delay. Nothing in
// the rules names a KPI; promtool's clock starts at 0, so a zone entered at
// 0 is as old as the evaluation time.
func TestRuleUnitTests(t *testing.T) {
	var in strings.Builder
	series := seriesTo(&in)
	kpiSeries := func(inst, job, id, domain, zone, owner, name string, since int, red, yellow, sev string) {
		l := `kpi="` + id + `",domain="` + domain + `",instance="` + inst + `",job="` + job + `"`
		for _, z := range []string{"green", "yellow", "red", "unknown"} {
			v := "0x400"
			if z == zone {
				v = "1x400"
			}
			series(`kpi_zone{`+l+`,kpi_zone="`+z+`"}`, v)
		}
		series(`kpi_definition_info{`+l+`,owner="`+owner+`",name="`+name+`",unit="ratio",direction="higher",dashboard="technical",source="s1"}`, "1x400")
		if since >= 0 {
			series(`kpi_zone_since_timestamp_seconds{`+l+`}`, strconv.Itoa(since)+"x400")
		}
		if red != "" {
			series(`kpi_alert_delay_seconds{`+l+`,kpi_zone="red",severity="`+sev+`"}`, red+"x400")
			series(`kpi_alert_delay_seconds{`+l+`,kpi_zone="yellow",severity="warning"}`, yellow+"x400")
		}
	}
	kpiSeries("x:10050", "kpi", "red_kpi", "d", "red", "alice", "Red KPI", 0, "1800", "14400", "critical")
	kpiSeries("y:10050", "kpi-staging", "red_kpi", "d", "red", "alice", "Red KPI", 10800, "1800", "14400", "critical")
	kpiSeries("x:10050", "kpi", "yellow_kpi", "d", "yellow", "bob", "Yellow KPI", 0, "3600", "14400", "warning")
	kpiSeries("x:10050", "kpi", "quiet_kpi", "d", "red", "bob", "Quiet KPI", 0, "", "", "") // alerts: false
	kpiSeries("x:10050", "kpi", "stale_kpi", "e", "unknown", "carol", "Stale KPI", -1, "3600", "14400", "warning")
	series(`kpi_value_timestamp_seconds{kpi="stale_kpi",domain="e",instance="x:10050",job="kpi"}`, "1700000000x400")
	kpiSeries("x:10050", "kpi", "green_kpi", "e", "green", "carol", "Green KPI", 0, "3600", "14400", "warning")
	series(`kpi_value{kpi="green_kpi",domain="e",instance="x:10050",job="kpi"}`, "5x400")
	series(`kpi_trend{kpi="green_kpi",domain="e",instance="x:10050",job="kpi"}`, "0x400")
	// y stops exporting absent_kpi after two hours while it stays up.
	series(`kpi_definition_info{kpi="absent_kpi",domain="e",instance="y:10050",job="kpi-staging",owner="dave",name="Absent KPI",unit="count",direction="higher",dashboard="product",source="s1"}`, "1x120 _x280")
	series(`kpi_collector_success{collector="s1",instance="x:10050",job="kpi"}`, "0x400")
	series(`kpi_config_last_reload_successful{instance="x:10050",job="kpi"}`, "0x400")
	series(`up{instance="x:10050",job="kpi"}`, "1x400")
	series(`up{instance="y:10050",job="kpi-staging"}`, "1x400")
	// z ran for ten minutes and went down; w is some other job, down.
	series(`kpi_exporter_build_info{instance="z:10050",job="kpi-eu",version="1",revision="a",goversion="go1.26"}`, "1x10 _x390")
	series(`up{instance="z:10050",job="kpi-eu"}`, "1x10 0x390")
	series(`up{instance="w:9100",job="node"}`, "0x400")

	tests := `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
` + in.String() + `
    alert_rule_test:
      - eval_time: 20m
        alertname: KpiRedZone
        exp_alerts: []
      - eval_time: 200m
        alertname: KpiRedZone
        exp_alerts:
          - exp_labels: {severity: critical, kpi: red_kpi, domain: d, kpi_zone: red, owner: alice, name: Red KPI, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A KPI is in the red zone.
              description: KPI Red KPI (red_kpi, domain d, owner alice) on x:10050 has been below its red threshold for longer than its alert delay.
              runbook_url: https://example.com/README.md#kpiredzone
      - eval_time: 5h
        alertname: KpiRedZone
        exp_alerts:
          - exp_labels: {severity: critical, kpi: red_kpi, domain: d, kpi_zone: red, owner: alice, name: Red KPI, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A KPI is in the red zone.
              description: KPI Red KPI (red_kpi, domain d, owner alice) on x:10050 has been below its red threshold for longer than its alert delay.
              runbook_url: https://example.com/README.md#kpiredzone
          - exp_labels: {severity: critical, kpi: red_kpi, domain: d, kpi_zone: red, owner: alice, name: Red KPI, instance: "y:10050", job: kpi-staging}
            exp_annotations:
              summary: A KPI is in the red zone.
              description: KPI Red KPI (red_kpi, domain d, owner alice) on y:10050 has been below its red threshold for longer than its alert delay.
              runbook_url: https://example.com/README.md#kpiredzone
      - eval_time: 3h
        alertname: KpiYellowZone
        exp_alerts: []
      - eval_time: 5h
        alertname: KpiYellowZone
        exp_alerts:
          - exp_labels: {severity: warning, kpi: yellow_kpi, domain: d, kpi_zone: yellow, owner: bob, name: Yellow KPI, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A KPI is at risk (yellow zone).
              description: KPI Yellow KPI (yellow_kpi, owner bob) on x:10050 has been in the yellow zone for longer than its alert delay.
              runbook_url: https://example.com/README.md#kpiyellowzone
      - eval_time: 5h
        alertname: KpiValueStale
        exp_alerts:
          - exp_labels: {severity: warning, kpi: stale_kpi, domain: e, kpi_zone: unknown, owner: carol, name: Stale KPI, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A KPI's value is too old to score.
              description: KPI Stale KPI (stale_kpi, owner carol) on x:10050 has had no fresh value for 15m; its source may be failing.
              runbook_url: https://example.com/README.md#kpivaluestale
      - eval_time: 150m
        alertname: KpiAbsent
        exp_alerts:
          - exp_labels: {severity: warning, kpi: absent_kpi, domain: e, owner: dave, name: Absent KPI, unit: count, direction: higher, dashboard: product, source: s1, instance: "y:10050", job: kpi-staging}
            exp_annotations:
              summary: A KPI is no longer exported.
              description: "KPI Absent KPI (absent_kpi, owner dave) was exported by y:10050 in the last hour and no longer is, while the exporter is up: was it removed from the catalogue, or is the exporter running the wrong one?"
              runbook_url: https://example.com/README.md#kpiabsent
      - eval_time: 5h
        alertname: KpiAbsent
        exp_alerts: []
      - eval_time: 5h
        alertname: KpiWorseningTrend
        exp_alerts: []
      - eval_time: 5h
        alertname: KpiCollectorFailing
        exp_alerts:
          - exp_labels: {severity: warning, collector: s1, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A kpi_exporter source is failing.
              description: Source s1 on x:10050 has failed every run for 30m; its KPIs keep their last values until they go stale.
              runbook_url: https://example.com/README.md#kpicollectorfailing
      - eval_time: 5h
        alertname: KpiConfigReloadFailed
        exp_alerts:
          - exp_labels: {severity: warning, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: The KPI catalogue failed to load.
              description: kpi_exporter on x:10050 could not load its catalogue; the previous one is still in use. See its logs or run kpi_exporter check.
              runbook_url: https://example.com/README.md#kpiconfigreloadfailed
      - eval_time: 5h
        alertname: KpiExporterDown
        exp_alerts:
          - exp_labels: {severity: critical, instance: "z:10050", job: kpi-eu}
            exp_annotations:
              summary: kpi_exporter is down.
              description: kpi_exporter on z:10050 (job kpi-eu) has not been scraped successfully for 5m.
              runbook_url: https://example.com/README.md#kpiexporterdown
    promql_expr_test:
      - expr: kpi:zone:code
        eval_time: 10m
        exp_samples:
          - {labels: 'kpi:zone:code{kpi="red_kpi",domain="d",instance="x:10050",job="kpi"}', value: 2}
          - {labels: 'kpi:zone:code{kpi="red_kpi",domain="d",instance="y:10050",job="kpi-staging"}', value: 2}
          - {labels: 'kpi:zone:code{kpi="yellow_kpi",domain="d",instance="x:10050",job="kpi"}', value: 1}
          - {labels: 'kpi:zone:code{kpi="quiet_kpi",domain="d",instance="x:10050",job="kpi"}', value: 2}
          - {labels: 'kpi:zone:code{kpi="stale_kpi",domain="e",instance="x:10050",job="kpi"}', value: -1}
          - {labels: 'kpi:zone:code{kpi="green_kpi",domain="e",instance="x:10050",job="kpi"}', value: 0}
`
	promtoolTest(t, Options{RunbookBase: "https://example.com/README.md"}, tests)
}

// TestOffTrackRuleUnitTests asserts KpiOffTrack with `promtool test rules`:
// it fires for a KPI green or yellow now whose forecast zone at the horizon
// is red for the rule's delay, per exporter, with the red-zone severity the
// exporter gives the KPI and the forecast's attainment as its value; not for
// a KPI already red, one projected green, one with alerts: false, one
// without a forecast, nor one whose forecast was red for less than the delay.
func TestOffTrackRuleUnitTests(t *testing.T) {
	var in strings.Builder
	series := seriesTo(&in)
	// kpi exports a KPI of one exporter: its zone now (values per zone
	// over time), its forecast zone ("" for none) and attainment, and its
	// alert delays (sev "" for alerts: false).
	kpi := func(inst, id, zoneNow, forecast, sev string, attainment string) {
		l := `kpi="` + id + `",domain="d",instance="` + inst + `",job="kpi"`
		for _, z := range []string{"green", "yellow", "red", "unknown"} {
			v := "0x600"
			if z == zoneNow {
				v = "1x600"
			}
			series(`kpi_zone{`+l+`,kpi_zone="`+z+`"}`, v)
		}
		series(`kpi_definition_info{`+l+`,owner="ann",name="`+id+` name",unit="ratio",direction="higher",dashboard="product",source="s"}`, "1x600")
		if sev != "" {
			series(`kpi_alert_delay_seconds{`+l+`,kpi_zone="red",severity="`+sev+`"}`, "3600x600")
			series(`kpi_alert_delay_seconds{`+l+`,kpi_zone="yellow",severity="warning"}`, "14400x600")
		}
		if forecast == "" {
			return
		}
		for _, z := range []string{"green", "yellow", "red"} {
			v := "0x600"
			switch {
			case forecast == z:
				v = "1x600"
			case forecast == "red-briefly" && z == "red":
				v = "1x60 0x540" // red for an hour, then green
			case forecast == "red-briefly" && z == "green":
				v = "0x60 1x540"
			}
			series(`kpi_forecast_zone{`+l+`,kpi_zone="`+z+`"}`, v)
		}
		series(`kpi_forecast_attainment_ratio{`+l+`}`, attainment+"x600")
	}
	kpi("x:1", "green_off", "green", "red", "critical", "0.5")
	kpi("x:1", "yellow_off", "yellow", "red", "warning", "0.625")
	kpi("y:1", "yellow_off", "yellow", "green", "warning", "1.1") // the same KPI on track elsewhere
	kpi("x:1", "red_now", "red", "red", "warning", "0.4")
	kpi("x:1", "on_track", "yellow", "green", "warning", "0.95")
	kpi("x:1", "quiet", "green", "red", "", "0.5")
	kpi("x:1", "no_forecast", "green", "", "warning", "")
	kpi("x:1", "brief", "green", "red-briefly", "warning", "0.6")

	tests := `rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
` + in.String() + `
    alert_rule_test:
      - eval_time: 90m
        alertname: KpiOffTrack
        exp_alerts: []
      - eval_time: 3h
        alertname: KpiOffTrack
        exp_alerts:
          - exp_labels: {severity: critical, kpi: green_off, domain: d, owner: ann, name: green_off name, instance: "x:1", job: kpi}
            exp_annotations:
              summary: "A KPI is off track: at its pace it ends its target period in the red zone."
              description: "KPI green_off name (green_off, owner ann) on x:1 is not red now, but its forecast reaches only 50% of the target at the end of the target period (see kpi_forecast_value and its page)."
              runbook_url: https://example.com/README.md#kpiofftrack
          - exp_labels: {severity: warning, kpi: yellow_off, domain: d, owner: ann, name: yellow_off name, instance: "x:1", job: kpi}
            exp_annotations:
              summary: "A KPI is off track: at its pace it ends its target period in the red zone."
              description: "KPI yellow_off name (yellow_off, owner ann) on x:1 is not red now, but its forecast reaches only 62.5% of the target at the end of the target period (see kpi_forecast_value and its page)."
              runbook_url: https://example.com/README.md#kpiofftrack
`
	promtoolTest(t, Options{RunbookBase: "https://example.com/README.md", OffTrackFor: 2 * time.Hour}, tests)
}

// seriesTo returns a writer of promtool input series into b.
func seriesTo(b *strings.Builder) func(series, values string) {
	return func(series, values string) {
		b.WriteString("      - series: '" + series + "'\n        values: '" + values + "'\n")
	}
}

// promtoolTest runs `promtool test rules` on the rules of o and the tests
// (a file naming rules.yaml), in a directory of their own.
func promtoolTest(t *testing.T, o Options, tests string) {
	t.Helper()
	rules, err := Marshal(Rules(o))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"rules.yaml": rules, "tests.yaml": []byte(tests)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool(t), "test", "rules", "tests.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

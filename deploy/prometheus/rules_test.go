package prometheus

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
// rules.yaml equals what the generator makes of the default catalogue now,
// and promtool accepts it.
func TestCheckedInRulesAreCurrent(t *testing.T) {
	c, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Marshal(Rules(c, Options{}))
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

const testCatalogue = `
calendar: {plan_start: 2026-01-01}
sources: [{name: s1, type: file}]
kpis:
  - {id: red_kpi, name: Red KPI, domain: d, dashboard: technical, owner: alice, unit: ratio, direction: higher,
     source: {name: s1, measurement: m}, targets: [{period: Q1, value: 1}], critical: true, alert_for: 30m}
  - {id: yellow_kpi, name: Yellow KPI, domain: d, dashboard: technical, owner: bob, unit: ratio, direction: higher,
     source: {name: s1, measurement: m}, targets: [{period: Q1, value: 1}]}
  - {id: stale_kpi, name: Stale KPI, domain: e, dashboard: product, owner: carol, unit: count, direction: higher,
     source: {name: s1, measurement: m}, targets: [{period: Q1, value: 1}]}
  - {id: green_kpi, name: Green KPI, domain: e, dashboard: product, owner: carol, unit: count, direction: higher,
     source: {name: s1, measurement: m}, targets: [{period: Q1, value: 1}]}
  - {id: absent_kpi, name: Absent KPI, domain: e, dashboard: product, owner: dave, unit: count, direction: higher,
     source: {name: s1, measurement: m}, targets: [{period: Q1, value: 1}]}
`

// TestRuleUnitTests drives series into red, yellow, stale and absent states
// (and a failing source, a failed reload, a down target) and asserts with
// `promtool test rules` which alerts fire, with which labels.
func TestRuleUnitTests(t *testing.T) {
	c, err := kpi.Parse("test.yml", []byte(testCatalogue), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := Marshal(Rules(c, Options{JobSelector: `job="kpi"`, RunbookBase: "https://example.com/README.md"}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644)

	var in strings.Builder
	zones := func(id, domain, zone string) {
		for _, z := range []string{"green", "yellow", "red", "unknown"} {
			v := "0x400"
			if z == zone {
				v = "1x400"
			}
			in.WriteString("      - series: 'kpi_zone{kpi=\"" + id + "\",domain=\"" + domain + "\",kpi_zone=\"" + z + "\",instance=\"x:10050\",job=\"kpi\"}'\n        values: '" + v + "'\n")
		}
	}
	infoSeries := func(id, domain, owner, name string) {
		in.WriteString("      - series: 'kpi_definition_info{kpi=\"" + id + "\",domain=\"" + domain + "\",owner=\"" + owner + "\",name=\"" + name + "\",unit=\"ratio\",direction=\"higher\",dashboard=\"technical\",source=\"s1\",instance=\"x:10050\",job=\"kpi\"}'\n        values: '1x400'\n")
	}
	zones("red_kpi", "d", "red")
	infoSeries("red_kpi", "d", "alice", "Red KPI")
	zones("yellow_kpi", "d", "yellow")
	infoSeries("yellow_kpi", "d", "bob", "Yellow KPI")
	zones("stale_kpi", "e", "unknown")
	infoSeries("stale_kpi", "e", "carol", "Stale KPI")
	in.WriteString("      - series: 'kpi_value_timestamp_seconds{kpi=\"stale_kpi\",domain=\"e\",instance=\"x:10050\",job=\"kpi\"}'\n        values: '1700000000x400'\n")
	zones("green_kpi", "e", "green")
	infoSeries("green_kpi", "e", "carol", "Green KPI")
	in.WriteString("      - series: 'kpi_value{kpi=\"green_kpi\",domain=\"e\",instance=\"x:10050\",job=\"kpi\"}'\n        values: '5x400'\n")
	in.WriteString("      - series: 'kpi_trend{kpi=\"green_kpi\",domain=\"e\",instance=\"x:10050\",job=\"kpi\"}'\n        values: '0x400'\n")
	in.WriteString("      - series: 'kpi_collector_success{collector=\"s1\",instance=\"x:10050\",job=\"kpi\"}'\n        values: '0x400'\n")
	in.WriteString("      - series: 'kpi_config_last_reload_successful{instance=\"x:10050\",job=\"kpi\"}'\n        values: '0x400'\n")
	in.WriteString("      - series: 'up{instance=\"x:10050\",job=\"kpi\"}'\n        values: '0x400'\n")

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
      - eval_time: 5h
        alertname: KpiRedZone
        exp_alerts:
          - exp_labels: {severity: critical, kpi: red_kpi, domain: d, kpi_zone: red, owner: alice, name: Red KPI, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A KPI is in the red zone.
              description: KPI Red KPI (red_kpi, domain d, owner alice) has been below its red threshold for 30m.
              runbook_url: https://example.com/README.md#kpiredzone
      - eval_time: 5h
        alertname: KpiYellowZone
        exp_alerts:
          - exp_labels: {severity: warning, kpi: yellow_kpi, domain: d, kpi_zone: yellow, owner: bob, name: Yellow KPI, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A KPI is at risk (yellow zone).
              description: KPI Yellow KPI (yellow_kpi, owner bob) has been in the yellow zone for 4h.
              runbook_url: https://example.com/README.md#kpiyellowzone
      - eval_time: 5h
        alertname: KpiValueStale
        exp_alerts:
          - exp_labels: {severity: warning, kpi: stale_kpi, domain: e, kpi_zone: unknown, owner: carol, name: Stale KPI, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: A KPI's value is too old to score.
              description: KPI Stale KPI (stale_kpi, owner carol) has had no fresh value for 15m; its source may be failing.
              runbook_url: https://example.com/README.md#kpivaluestale
      - eval_time: 5h
        alertname: KpiAbsent
        exp_alerts:
          - exp_labels: {severity: warning, kpi: absent_kpi}
            exp_annotations:
              summary: A KPI of the catalogue is not exported.
              description: "KPI absent_kpi is in the catalogue but has no kpi_zone series: is the exporter running the catalogue the rules were generated from?"
              runbook_url: https://example.com/README.md#kpiabsent
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
          - exp_labels: {severity: critical, instance: "x:10050", job: kpi}
            exp_annotations:
              summary: kpi_exporter is down.
              description: kpi_exporter on x:10050 has not been scraped successfully for 5m.
              runbook_url: https://example.com/README.md#kpiexporterdown
    promql_expr_test:
      - expr: kpi:zone:code
        eval_time: 10m
        exp_samples:
          - {labels: 'kpi:zone:code{kpi="red_kpi",domain="d"}', value: 2}
          - {labels: 'kpi:zone:code{kpi="yellow_kpi",domain="d"}', value: 1}
          - {labels: 'kpi:zone:code{kpi="stale_kpi",domain="e"}', value: -1}
          - {labels: 'kpi:zone:code{kpi="green_kpi",domain="e"}', value: 0}
`
	os.WriteFile(filepath.Join(dir, "tests.yaml"), []byte(tests), 0o644)
	cmd := exec.Command(promtool(t), "test", "rules", "tests.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

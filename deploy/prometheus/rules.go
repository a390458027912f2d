// Package prometheus generates the Prometheus recording and alerting rules
// of kpi_exporter — one file for any catalogue — following the
// monitoring-mixin conventions:
// CamelCase alert names, severity critical/warning/info, summary and
// templated description annotations, owner and domain labels for routing,
// and a runbook_url per alert.
package prometheus

import (
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/common/model"
)

// Options tune the rules. The zero value gives the defaults.
type Options struct {
	// JobSelector, when set, selects the exporter's scrape targets for
	// KpiExporterDown (`up{<selector>} == 0`). Empty: any target that
	// exported kpi_exporter_build_info in the last day and is down, which
	// needs no knowledge of the job's name.
	JobSelector string
	// RunbookBase is the README the runbook anchors are in.
	RunbookBase string
	// The delays of the alerts that are not per KPI (the red and yellow
	// zone delays are the catalogue's, exported by the exporter).
	TrendFor, OffTrackFor, StaleFor, CollectorFor, AbsentFor, DownFor, ReloadFor time.Duration
}

func (o *Options) defaults() {
	if o.RunbookBase == "" {
		o.RunbookBase = "https://github.com/bakhmach-hub/kpi_exporter/blob/main/README.md"
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&o.TrendFor, 24*time.Hour)
	set(&o.OffTrackFor, 6*time.Hour)
	set(&o.StaleFor, 15*time.Minute)
	set(&o.CollectorFor, 30*time.Minute)
	set(&o.AbsentFor, 15*time.Minute)
	set(&o.DownFor, 5*time.Minute)
	set(&o.ReloadFor, 10*time.Minute)
}

// RuleFile is the rule file's shape.
type RuleFile struct {
	Groups []Group `yaml:"groups"`
}

// Group is a rule group.
type Group struct {
	Name  string `yaml:"name"`
	Rules []Rule `yaml:"rules"`
}

// Rule is a recording or alerting rule.
type Rule struct {
	Record      string            `yaml:"record,omitempty"`
	Alert       string            `yaml:"alert,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

func dur(d time.Duration) string { return model.Duration(d).String() }

// on matches a KPI's series of one exporter: several exporters (staging and
// production, replicas) scraped by one Prometheus each keep their own.
const on = `on(job, instance, kpi, domain)`

// info joins a KPI series with its definition for the owner and name labels.
const info = ` * ` + on + ` group_left(owner, name) kpi_definition_info`

// zoneAlert is a KPI in zone z for at least its own delay for that zone,
// with the severity the exporter gives it. The zone's age comes from the
// exporter (kpi_zone_since_timestamp_seconds), so the rule needs no `for`
// and fires on time even after Prometheus restarts.
func zoneAlert(z string) string {
	return `((kpi_zone{kpi_zone="` + z + `"} == 1)` +
		` and ` + on + ` ((time() - kpi_zone_since_timestamp_seconds) >= ` + on + ` kpi_alert_delay_seconds{kpi_zone="` + z + `"}))` +
		info +
		` * ` + on + ` group_left(severity) (0 * kpi_alert_delay_seconds{kpi_zone="` + z + `"} + 1)`
}

// Rules builds the rule file. It is the same for every catalogue: what is
// per KPI (delays, severity, opting out) the exporter exports, and the rules
// compare; every rule keeps job and instance.
func Rules(o Options) RuleFile {
	o.defaults()
	runbook := func(alert string) string { return o.RunbookBase + "#" + strings.ToLower(alert) }

	recording := Group{Name: "kpi_exporter.rules", Rules: []Rule{
		{Record: "kpi:zone:code", Expr: `max by (job, instance, kpi, domain) (` +
			`(kpi_zone{kpi_zone="red"} == 1) * 2 or (kpi_zone{kpi_zone="yellow"} == 1) * 1 or ` +
			`(kpi_zone{kpi_zone="green"} == 1) * 0 or (kpi_zone{kpi_zone="unknown"} == 1) * -1)`},
		{Record: "kpi:kpi_zone:avg_over_time_7d", Expr: `avg_over_time(kpi_zone[7d])`},
		{Record: "kpi:kpi_zone:avg_over_time_30d", Expr: `avg_over_time(kpi_zone[30d])`},
	}}
	down := `(up == 0) and on(job, instance) max_over_time(kpi_exporter_build_info[1d])`
	if o.JobSelector != "" {
		down = fmt.Sprintf(`up{%s} == 0`, o.JobSelector)
	}
	alerts := []Rule{
		{Alert: "KpiRedZone", Expr: zoneAlert("red"),
			Annotations: map[string]string{
				"summary":     "A KPI is in the red zone.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, domain {{ $labels.domain }}, owner {{ $labels.owner }}) on {{ $labels.instance }} has been below its red threshold for longer than its alert delay.`,
				"runbook_url": runbook("KpiRedZone"),
			}},
		{Alert: "KpiYellowZone", Expr: zoneAlert("yellow"),
			Annotations: map[string]string{"summary": "A KPI is at risk (yellow zone).",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) on {{ $labels.instance }} has been in the yellow zone for longer than its alert delay.`,
				"runbook_url": runbook("KpiYellowZone")}},
		{Alert: "KpiWorseningTrend",
			Expr: `((kpi_trend == -1) and ` + on + ` kpi_alert_delay_seconds{kpi_zone="red"})` + info, For: dur(o.TrendFor),
			Labels: map[string]string{"severity": "info"},
			Annotations: map[string]string{"summary": "A KPI is trending the wrong way.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) on {{ $labels.instance }} has been worsening for ` + dur(o.TrendFor) + `.`,
				"runbook_url": runbook("KpiWorseningTrend")}},
		{Alert: "KpiOffTrack",
			// The value is the forecast's attainment; kpi_zone is left out,
			// so that a KPI going from green to yellow stays one alert.
			Expr: `((kpi_forecast_attainment_ratio and ` + on + ` (kpi_forecast_zone{kpi_zone="red"} == 1))` +
				` and ` + on + ` (kpi_zone{kpi_zone=~"green|yellow"} == 1))` + info +
				` * ` + on + ` group_left(severity) (0 * kpi_alert_delay_seconds{kpi_zone="red"} + 1)`,
			For: dur(o.OffTrackFor),
			Annotations: map[string]string{"summary": "A KPI is off track: at its pace it ends its target period in the red zone.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) on {{ $labels.instance }} is not red now, but its forecast reaches only {{ $value | humanizePercentage }} of the target at the end of the target period (see kpi_forecast_value and its page).`,
				"runbook_url": runbook("KpiOffTrack")}},
		{Alert: "KpiValueStale",
			Expr: `((kpi_zone{kpi_zone="unknown"} == 1) and ` + on + ` kpi_value_timestamp_seconds unless ` + on + ` kpi_value` +
				` and ` + on + ` kpi_alert_delay_seconds{kpi_zone="red"})` + info,
			For: dur(o.StaleFor), Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "A KPI's value is too old to score.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) on {{ $labels.instance }} has had no fresh value for ` + dur(o.StaleFor) + `; its source may be failing.`,
				"runbook_url": runbook("KpiValueStale")}},
		{Alert: "KpiCollectorFailing", Expr: `kpi_collector_success == 0`, For: dur(o.CollectorFor),
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "A kpi_exporter source is failing.",
				"description": `Source {{ $labels.collector }} on {{ $labels.instance }} has failed every run for ` + dur(o.CollectorFor) + `; its KPIs keep their last values until they go stale.`,
				"runbook_url": runbook("KpiCollectorFailing")}},
		{Alert: "KpiExporterDown", Expr: down, For: dur(o.DownFor),
			Labels: map[string]string{"severity": "critical"},
			Annotations: map[string]string{"summary": "kpi_exporter is down.",
				"description": `kpi_exporter on {{ $labels.instance }} (job {{ $labels.job }}) has not been scraped successfully for ` + dur(o.DownFor) + `.`,
				"runbook_url": runbook("KpiExporterDown")}},
		{Alert: "KpiConfigReloadFailed", Expr: `kpi_config_last_reload_successful == 0`, For: dur(o.ReloadFor),
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "The KPI catalogue failed to load.",
				"description": `kpi_exporter on {{ $labels.instance }} could not load its catalogue; the previous one is still in use. See its logs or run kpi_exporter check.`,
				"runbook_url": runbook("KpiConfigReloadFailed")}},
		{Alert: "KpiAbsent",
			Expr: `(max_over_time(kpi_definition_info[1h]) unless ` + on + ` kpi_definition_info) and on(job, instance) (up == 1)`,
			For:  dur(o.AbsentFor), Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "A KPI is no longer exported.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) was exported by {{ $labels.instance }} in the last hour and no longer is, while the exporter is up: was it removed from the catalogue, or is the exporter running the wrong one?`,
				"runbook_url": runbook("KpiAbsent")}},
	}
	return RuleFile{Groups: []Group{recording, {Name: "kpi_exporter.alerts", Rules: alerts}}}
}

// Header heads a generated rule file.
const Header = "# Generated by `kpi_exporter generate rules`; do not edit: set the delays with its flags (or the Helm\n# values), and per KPI in the catalogue. The same rules serve any catalogue and any number of exporters.\n"

// Marshal renders a rule file as YAML with the header.
func Marshal(f RuleFile) ([]byte, error) {
	b, err := yaml.MarshalWithOptions(f, yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return nil, err
	}
	return append([]byte(Header), b...), nil
}

// PrometheusRule renders a rule file as a Prometheus Operator PrometheusRule
// named name, with labels (the ones the Prometheus selects rules by).
func PrometheusRule(f RuleFile, name string, labels map[string]string) ([]byte, error) {
	type meta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels,omitempty"`
	}
	doc := struct {
		APIVersion string   `yaml:"apiVersion"`
		Kind       string   `yaml:"kind"`
		Metadata   meta     `yaml:"metadata"`
		Spec       RuleFile `yaml:"spec"`
	}{"monitoring.coreos.com/v1", "PrometheusRule", meta{name, labels}, f}
	b, err := yaml.MarshalWithOptions(doc, yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		return nil, err
	}
	return append([]byte(Header), b...), nil
}

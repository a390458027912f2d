// Package prometheus generates the Prometheus recording and alerting rules
// of a KPI catalogue, following the monitoring-mixin conventions:
// CamelCase alert names, severity critical/warning/info, summary and
// templated description annotations, owner and domain labels for routing,
// and a runbook_url per alert.
package prometheus

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/common/model"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Options tune the rules. The zero value gives the defaults.
type Options struct {
	// JobSelector selects the exporter's targets for KpiExporterDown
	// (default job=~".*kpi.*").
	JobSelector string
	// RunbookBase is the README the runbook anchors are in.
	RunbookBase string
	// YellowFor, TrendFor, StaleFor, CollectorFor and AbsentFor are the
	// other alerts' durations.
	YellowFor, TrendFor, StaleFor, CollectorFor, AbsentFor, DownFor, ReloadFor time.Duration
}

func (o *Options) defaults() {
	if o.JobSelector == "" {
		o.JobSelector = `job=~".*kpi.*"`
	}
	if o.RunbookBase == "" {
		o.RunbookBase = "https://github.com/bakhmach-hub/kpi_exporter/blob/main/README.md"
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&o.YellowFor, 4*time.Hour)
	set(&o.TrendFor, 24*time.Hour)
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

// info joins a KPI series with its definition for the owner and name labels.
const info = ` * on(kpi, domain) group_left(owner, name) kpi_definition_info`

// Rules builds the rule file of a catalogue.
func Rules(c *kpi.Catalogue, o Options) RuleFile {
	o.defaults()
	runbook := func(alert string) string { return o.RunbookBase + "#" + strings.ToLower(alert) }

	recording := Group{Name: "kpi_exporter.rules", Rules: []Rule{
		{Record: "kpi:zone:code", Expr: `max by (kpi, domain) (` +
			`(kpi_zone{kpi_zone="red"} == 1) * 2 or (kpi_zone{kpi_zone="yellow"} == 1) * 1 or ` +
			`(kpi_zone{kpi_zone="green"} == 1) * 0 or (kpi_zone{kpi_zone="unknown"} == 1) * -1)`},
		{Record: "kpi:kpi_zone:avg_over_time_7d", Expr: `avg_over_time(kpi_zone[7d])`},
		{Record: "kpi:kpi_zone:avg_over_time_30d", Expr: `avg_over_time(kpi_zone[30d])`},
	}}

	// KpiRedZone: one rule per (for, critical), each selecting its KPIs.
	type key struct {
		forDur   time.Duration
		critical bool
	}
	groups := map[key][]string{}
	for _, k := range c.KPIs {
		kk := key{k.AlertFor, k.Critical}
		groups[kk] = append(groups[kk], k.ID)
	}
	keys := make([]key, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].critical != keys[j].critical {
			return keys[i].critical
		}
		return keys[i].forDur < keys[j].forDur
	})
	var alerts []Rule
	for _, k := range keys {
		ids := groups[k]
		sort.Strings(ids)
		sev := "warning"
		if k.critical {
			sev = "critical"
		}
		alerts = append(alerts, Rule{
			Alert: "KpiRedZone",
			Expr:  fmt.Sprintf(`(kpi_zone{kpi_zone="red", kpi=~"%s"} == 1)`, strings.Join(ids, "|")) + info,
			For:   dur(k.forDur), Labels: map[string]string{"severity": sev},
			Annotations: map[string]string{
				"summary":     "A KPI is in the red zone.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, domain {{ $labels.domain }}, owner {{ $labels.owner }}) has been below its red threshold for ` + dur(k.forDur) + `.`,
				"runbook_url": runbook("KpiRedZone"),
			},
		})
	}
	alerts = append(alerts,
		Rule{Alert: "KpiYellowZone", Expr: `(kpi_zone{kpi_zone="yellow"} == 1)` + info, For: dur(o.YellowFor),
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "A KPI is at risk (yellow zone).",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) has been in the yellow zone for ` + dur(o.YellowFor) + `.`,
				"runbook_url": runbook("KpiYellowZone")}},
		Rule{Alert: "KpiWorseningTrend", Expr: `(kpi_trend == -1)` + info, For: dur(o.TrendFor),
			Labels: map[string]string{"severity": "info"},
			Annotations: map[string]string{"summary": "A KPI is trending the wrong way.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) has been worsening for ` + dur(o.TrendFor) + `.`,
				"runbook_url": runbook("KpiWorseningTrend")}},
		Rule{Alert: "KpiValueStale",
			Expr: `((kpi_zone{kpi_zone="unknown"} == 1) and on(kpi, domain) kpi_value_timestamp_seconds unless on(kpi, domain) kpi_value)` + info,
			For:  dur(o.StaleFor), Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "A KPI's value is too old to score.",
				"description": `KPI {{ $labels.name }} ({{ $labels.kpi }}, owner {{ $labels.owner }}) has had no fresh value for ` + dur(o.StaleFor) + `; its source may be failing.`,
				"runbook_url": runbook("KpiValueStale")}},
		Rule{Alert: "KpiCollectorFailing", Expr: `kpi_collector_success == 0`, For: dur(o.CollectorFor),
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "A kpi_exporter source is failing.",
				"description": `Source {{ $labels.collector }} on {{ $labels.instance }} has failed every run for ` + dur(o.CollectorFor) + `; its KPIs keep their last values until they go stale.`,
				"runbook_url": runbook("KpiCollectorFailing")}},
		Rule{Alert: "KpiExporterDown", Expr: fmt.Sprintf(`up{%s} == 0`, o.JobSelector), For: dur(o.DownFor),
			Labels: map[string]string{"severity": "critical"},
			Annotations: map[string]string{"summary": "kpi_exporter is down.",
				"description": `kpi_exporter on {{ $labels.instance }} has not been scraped successfully for ` + dur(o.DownFor) + `.`,
				"runbook_url": runbook("KpiExporterDown")}},
		Rule{Alert: "KpiConfigReloadFailed", Expr: `kpi_config_last_reload_successful == 0`, For: dur(o.ReloadFor),
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "The KPI catalogue failed to load.",
				"description": `kpi_exporter on {{ $labels.instance }} could not load its catalogue; the previous one is still in use. See its logs or run kpi_exporter check.`,
				"runbook_url": runbook("KpiConfigReloadFailed")}},
	)
	if len(c.KPIs) > 0 {
		var absent []string
		for _, k := range c.KPIs {
			absent = append(absent, fmt.Sprintf(`absent(kpi_zone{kpi=%q})`, k.ID))
		}
		alerts = append(alerts, Rule{Alert: "KpiAbsent", Expr: strings.Join(absent, " or "), For: dur(o.AbsentFor),
			Labels: map[string]string{"severity": "warning"},
			Annotations: map[string]string{"summary": "A KPI of the catalogue is not exported.",
				"description": `KPI {{ $labels.kpi }} is in the catalogue but has no kpi_zone series: is the exporter running the catalogue the rules were generated from?`,
				"runbook_url": runbook("KpiAbsent")}})
	}
	return RuleFile{Groups: []Group{recording, {Name: "kpi_exporter.alerts", Rules: alerts}}}
}

// Header heads a generated rule file.
const Header = "# Generated by `kpi_exporter generate rules` from the KPI catalogue; do not edit.\n# Regenerate after changing the catalogue.\n"

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

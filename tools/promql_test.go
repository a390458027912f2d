package tools

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/promql"
	promrules "github.com/bakhmach-hub/kpi_exporter/deploy/prometheus"
	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/grafana"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// exposed are the metric families the exporter serves (its README's table,
// checked there against the real output) that queries may name.
var exposed = []string{
	"kpi_value", "kpi_target", "kpi_target_milestone", "kpi_attainment_ratio", "kpi_zone", "kpi_trend",
	"kpi_value_timestamp_seconds", "kpi_zone_since_timestamp_seconds", "kpi_alert_delay_seconds", "kpi_definition_info", "kpi_collector_enabled", "kpi_collector_success",
	"kpi_forecast_value", "kpi_forecast_timestamp_seconds", "kpi_forecast_attainment_ratio", "kpi_forecast_zone", "kpi_target_eta_timestamp_seconds",
	"kpi_collector_duration_seconds", "kpi_collector_last_success_timestamp_seconds", "kpi_collector_interval_seconds",
	"kpi_collector_runs_total", "kpi_collector_errors_total", "kpi_exporter_build_info", "kpi_config_last_reload_successful",
	"kpi_config_last_reload_success_timestamp_seconds", "up",
}

// grafanaVars replaces dashboard variables with values, as Grafana does.
var grafanaVars = strings.NewReplacer("$job", "kpi", "$instance", ".*", "${datasource}", "prom")

type dashboardJSON struct {
	Panels []struct {
		Title   string
		Targets []struct{ Expr string }
	}
}

// allQueries returns every PromQL expression of the default catalogue's
// rules and dashboards.
func allQueries(t *testing.T, c *kpi.Catalogue) (rules []string, dashboards map[string][]string, records map[string]bool) {
	t.Helper()
	records = map[string]bool{}
	for _, g := range promrules.Rules(promrules.Options{}).Groups {
		for _, r := range g.Rules {
			rules = append(rules, r.Expr)
			if r.Record != "" {
				records[r.Record] = true
			}
		}
	}
	ds, err := grafana.Dashboards(c)
	if err != nil {
		t.Fatal(err)
	}
	dashboards = map[string][]string{}
	for _, d := range ds {
		var x dashboardJSON
		if err := json.Unmarshal(d.JSON, &x); err != nil {
			t.Fatal(err)
		}
		for _, p := range x.Panels {
			for _, tg := range p.Targets {
				dashboards[d.File+": "+p.Title] = append(dashboards[d.File+": "+p.Title], grafanaVars.Replace(tg.Expr))
			}
		}
	}
	return rules, dashboards, records
}

// TestEveryExpressionParses parses every expression of the rules and the
// dashboards with Prometheus's own parser and checks each metric it names.
func TestEveryExpressionParses(t *testing.T) {
	c, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules, dashboards, records := allQueries(t, c)
	known := map[string]bool{}
	for _, n := range exposed {
		known[n] = true
	}
	for n := range records {
		known[n] = true
	}
	exprs := append([]string(nil), rules...)
	for _, es := range dashboards {
		exprs = append(exprs, es...)
	}
	for _, e := range exprs {
		expr, err := promqlParser.ParseExpr(e)
		if err != nil {
			t.Errorf("does not parse: %s\n%v", e, err)
			continue
		}
		parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				name := vs.Name
				if !known[name] {
					t.Errorf("%s names %q, which the exporter does not expose", e, name)
				}
			}
			return nil
		})
	}
	if len(exprs) < 500 {
		t.Errorf("only %d expressions", len(exprs))
	}
}

// promqlParser is Prometheus's parser with its standard functions.
var promqlParser = parser.NewParser(parser.Options{Functions: parser.Functions})

// TestCatalogueQueriesParse parses the default catalogue's prometheus source
// queries (with their range wrappers) with Prometheus's parser.
func TestCatalogueQueriesParse(t *testing.T) {
	c, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src, _ := c.Source("prometheus")
	col, err := promql.New(src, collectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	exprs := col.(*promql.Collector).Exprs()
	if len(exprs) < 12 {
		t.Fatalf("%d queries", len(exprs))
	}
	for _, e := range exprs {
		if _, err := promqlParser.ParseExpr(e); err != nil {
			t.Errorf("does not parse: %s\n%v", e, err)
		}
	}
}

// Package grafana generates the Grafana dashboards of a KPI catalogue with
// the Grafana Foundation SDK: the framework's five dashboards (executive,
// technical, community, financial, product) and one overview per domain.
package grafana

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// grafanaCurrencies are the currencies Grafana has a unit of its own for
// (currencyEUR, …); others get a prefix with their code.
var grafanaCurrencies = map[string]bool{"usd": true, "gbp": true, "eur": true, "jpy": true, "rub": true, "uah": true,
	"brl": true, "dkk": true, "isk": true, "nok": true, "sek": true, "czk": true, "chf": true, "pln": true, "inr": true,
	"krw": true, "idr": true, "php": true, "vnd": true, "try": true, "myr": true, "xpf": true, "bgn": true, "pyg": true,
	"uyu": true, "ils": true, "zar": true}

// Unit maps a KPI unit to Grafana's unit: percentunit for ratios, s for
// durations, currencyUSD (or the KPI's currency) for money.
func Unit(u kpi.Unit) string {
	if code, ok := kpi.Currency(u); ok {
		if grafanaCurrencies[code] {
			return "currency" + strings.ToUpper(code)
		}
		return "prefix:" + strings.ToUpper(code) + " "
	}
	switch u {
	case kpi.UnitRatio:
		return "percentunit"
	case kpi.UnitSeconds:
		return "s"
	case kpi.UnitPerSecond:
		return "reqps"
	case kpi.UnitBytes:
		return "bytes"
	}
	return "short"
}

// zoneColors are the zones in display order with their colours.
var zoneColors = []struct{ zone, color string }{
	{"green", "green"}, {"yellow", "yellow"}, {"red", "red"}, {"unknown", "text"},
}

// sel filters every query by the dashboard's job and instance variables,
// both multi-select.
const sel = `job=~"$job", instance=~"$instance"`

// by is the label set that names one KPI of one exporter.
const by = `on(job, instance, kpi, domain)`

// Zone codes of the scorecard's Zone column: kpi:zone:code's, and -3 for a
// stale KPI (a value, too old to score).
const staleCode = -3

func ds() common.DataSourceRef {
	t, uid := "prometheus", "${datasource}"
	return common.DataSourceRef{Type: &t, Uid: &uid}
}

func query(ref, expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().RefId(ref).Expr(expr).LegendFormat(legend).Datasource(ds())
}

func ptr[T any](v T) *T { return &v }

func thresholds(steps ...dashboard.Threshold) map[string]any {
	return map[string]any{"mode": "absolute", "steps": steps}
}

// legend shows a time series' legend as a list below it.
func legend() *common.VizLegendOptionsBuilder {
	return common.NewVizLegendOptionsBuilder().ShowLegend(true).DisplayMode(common.LegendDisplayModeList).Placement(common.LegendPlacementBottom)
}

// Dashboard is one generated dashboard: its file name and JSON.
type Dashboard struct {
	File string
	JSON []byte
}

// Dashboards generates every dashboard of the catalogue, sorted by file: the
// framework dashboards that have KPIs, and one per domain.
func Dashboards(c *kpi.Catalogue) ([]Dashboard, error) {
	var out []Dashboard
	for _, name := range kpi.Dashboards {
		var ks []*kpi.KPI
		for i := range c.KPIs {
			if c.KPIs[i].Dashboard == name {
				ks = append(ks, &c.KPIs[i])
			}
		}
		if len(ks) == 0 {
			continue // a catalogue without KPIs for this dashboard gets none
		}
		d, err := build("kpi-"+name, "KPIs: "+strings.ToUpper(name[:1])+name[1:], name, ks)
		if err != nil {
			return nil, err
		}
		out = append(out, Dashboard{File: "kpi-" + name + ".json", JSON: d})
	}
	domains := map[string][]*kpi.KPI{}
	for i := range c.KPIs {
		domains[c.KPIs[i].Domain] = append(domains[c.KPIs[i].Domain], &c.KPIs[i])
	}
	names := make([]string, 0, len(domains))
	for d := range domains {
		names = append(names, d)
	}
	sort.Strings(names)
	for _, d := range names {
		uid := "kpi-domain-" + strings.ReplaceAll(d, "_", "-")
		if len(uid) > 40 {
			uid = uid[:40]
		}
		j, err := build(uid, "KPI domain: "+strings.ReplaceAll(d, "_", " "), "domain", domains[d])
		if err != nil {
			return nil, err
		}
		out = append(out, Dashboard{File: uid + ".json", JSON: j})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, nil
}

// QueriesPerRefresh is how many queries a dashboard of KPIs in units
// different units runs per refresh: the zone counts and the attainment grid
// (one each), per unit a scorecard table (seven) and a history panel (one),
// the forecast table (four), the attainment history (one) and the
// collector health (two).
func QueriesPerRefresh(units int) int { return 9 + 8*units }

func build(uid, title, tag string, ks []*kpi.KPI) ([]byte, error) {
	ids := make([]string, len(ks))
	var sources []string
	seenSrc := map[string]bool{}
	byUnit := map[kpi.Unit][]*kpi.KPI{}
	var units []kpi.Unit
	for i, k := range ks {
		ids[i] = k.ID
		if !seenSrc[k.Source.Source] {
			seenSrc[k.Source.Source] = true
			sources = append(sources, k.Source.Source)
		}
		if _, ok := byUnit[k.Unit]; !ok {
			units = append(units, k.Unit)
		}
		byUnit[k.Unit] = append(byUnit[k.Unit], k)
	}
	sort.Strings(sources)
	kpiRe := strings.Join(ids, "|")
	if kpiRe == "" {
		kpiRe = "^$"
	}
	tsel := fmt.Sprintf(`kpi=~"%s", %s`, kpiRe, sel)
	// The v1 dashboard schema is what file provisioning loads on every
	// Grafana in use; the v2 schema the SDK prefers needs Grafana 12 with a
	// feature flag.
	//nolint:staticcheck // the v1 builder, deliberately (see above)
	b := dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Tags([]string{"kpi_exporter", tag}).
		Description("Generated by `kpi_exporter generate dashboards` from the KPI catalogue; regenerate rather than edit.").
		Refresh("1m").
		Time("now-30d", "now").
		Timezone("utc").
		Readonly().
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("job").Label("Job").Datasource(ds()).
			Query(dashboard.StringOrMap{String: ptr("label_values(kpi_exporter_build_info, job)")}).
			Refresh(dashboard.VariableRefreshOnDashboardLoad).Multi(true).IncludeAll(true).AllValue(".*")).
		WithVariable(dashboard.NewQueryVariableBuilder("instance").Label("Instance").Datasource(ds()).
			Query(dashboard.StringOrMap{String: ptr(`label_values(kpi_exporter_build_info{job=~"$job"}, instance)`)}).
			Refresh(dashboard.VariableRefreshOnDashboardLoad).Multi(true).IncludeAll(true).AllValue(".*"))

	// How many KPIs are in each zone: one query over the zone state set. A
	// zone with no KPI shows 0 uncoloured.
	b.WithRow(dashboard.NewRowBuilder("Zones"))
	zones := stat.NewPanelBuilder().Title("KPIs by zone").Datasource(ds()).Height(4).Span(24).
		WithTarget(query("A", fmt.Sprintf(`sum by (kpi_zone) (kpi_zone{%s})`, tsel), "{{kpi_zone}}").Instant()).
		Unit("short").ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName)
	for _, z := range zoneColors {
		zones.OverrideByName(z.zone, []dashboard.DynamicConfigValue{{Id: "thresholds", Value: thresholds(
			dashboard.Threshold{Color: "transparent"}, dashboard.Threshold{Value: ptr(1.0), Color: z.color})}})
	}
	b.WithPanel(zones)

	// Every KPI's attainment, coloured by its own zone thresholds: one query.
	b.WithRow(dashboard.NewRowBuilder("Attainment"))
	grid := stat.NewPanelBuilder().Title("Attainment of the target in force").Datasource(ds()).Height(8).Span(24).
		Description("Value ÷ target (target ÷ value where lower is better), coloured by the KPI's zone thresholds. Unknown KPIs are left out: see the scorecard.").
		WithTarget(query("A", fmt.Sprintf(`kpi_attainment_ratio{%s}`, tsel), "{{kpi}}").Instant()).
		Unit("percentunit").ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone).
		TextMode(common.BigValueTextModeValueAndName)
	for _, k := range ks {
		grid.OverrideByName(k.ID, []dashboard.DynamicConfigValue{{Id: "displayName", Value: k.Name},
			{Id: "thresholds", Value: thresholds(dashboard.Threshold{Color: "red"},
				dashboard.Threshold{Value: ptr(k.Yellow), Color: "yellow"}, dashboard.Threshold{Value: ptr(k.Green), Color: "green"})}})
	}
	b.WithPanel(grid)

	// The scorecard, one table per unit, so that Value and Target carry the
	// KPI's unit. A stale KPI shows its last value, its age and "stale".
	zoneMap := dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
		"0": {Text: ptr("green"), Color: ptr("green")}, "1": {Text: ptr("yellow"), Color: ptr("yellow")},
		"2": {Text: ptr("red"), Color: ptr("red")}, "-1": {Text: ptr("unknown"), Color: ptr("text")},
		fmt.Sprint(staleCode): {Text: ptr("stale"), Color: ptr("purple")},
	}}}
	trendMap := dashboard.ValueMapping{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
		"1": {Text: ptr("↑ improving"), Color: ptr("green")}, "0": {Text: ptr("→ flat")}, "-1": {Text: ptr("↓ worsening"), Color: ptr("red")},
	}}}
	tq := func(ref, expr string) *prometheus.DataqueryBuilder {
		return query(ref, expr, "").Instant().Format(prometheus.PromQueryFormatTable)
	}
	stale := func(s string) string {
		return fmt.Sprintf(`(kpi_value_timestamp_seconds{%s} unless %s kpi_value)`, s, by)
	}
	b.WithRow(dashboard.NewRowBuilder("Scorecard"))
	for _, u := range units {
		var uids []string
		for _, k := range byUnit[u] {
			uids = append(uids, k.ID)
		}
		usel := fmt.Sprintf(`kpi=~"%s", %s`, strings.Join(uids, "|"), sel)
		b.WithPanel(table.NewPanelBuilder().Title("Scorecard: "+string(u)).Datasource(ds()).Height(uint32(3+len(uids))).Span(24).
			WithTarget(tq("A", fmt.Sprintf(`kpi_definition_info{%s}`, usel))).
			WithTarget(tq("B", fmt.Sprintf(`last_over_time(kpi_value{%s}[30d])`, usel))).
			WithTarget(tq("C", fmt.Sprintf(`kpi_target{%s}`, usel))).
			WithTarget(tq("D", fmt.Sprintf(`kpi_attainment_ratio{%s}`, usel))).
			WithTarget(tq("E", fmt.Sprintf(`(kpi:zone:code{%s} unless %s %s) or (0 * %s - %d)`, usel, by, stale(usel), stale(usel), -staleCode))).
			WithTarget(tq("F", fmt.Sprintf(`kpi_trend{%s}`, usel))).
			WithTarget(tq("G", fmt.Sprintf(`time() - kpi_value_timestamp_seconds{%s}`, usel))).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true, "Value #A": true, "__name__": true, "unit": true, "direction": true, "dashboard": true, "source": true},
				"renameByName": map[string]any{"Value #B": "Value", "Value #C": "Target", "Value #D": "Attainment", "Value #E": "Zone", "Value #F": "Trend",
					"Value #G": "Age", "name": "KPI", "kpi": "Id"},
			}}).
			OverrideByName("Value", []dashboard.DynamicConfigValue{{Id: "unit", Value: Unit(u)}}).
			OverrideByName("Target", []dashboard.DynamicConfigValue{{Id: "unit", Value: Unit(u)}}).
			OverrideByName("Attainment", []dashboard.DynamicConfigValue{{Id: "unit", Value: "percentunit"}}).
			OverrideByName("Age", []dashboard.DynamicConfigValue{{Id: "unit", Value: "s"}}).
			OverrideByName("Zone", []dashboard.DynamicConfigValue{{Id: "mappings", Value: []dashboard.ValueMapping{zoneMap}},
				{Id: "custom.cellOptions", Value: map[string]any{"type": "color-background"}}}).
			OverrideByName("Trend", []dashboard.DynamicConfigValue{{Id: "mappings", Value: []dashboard.ValueMapping{trendMap}}}))
	}

	// The forecast: where each KPI ends its target period at its pace,
	// against that period's target, with the zone there and when it turns
	// green. KPIs without a forecast (too little history) are left out.
	fzone := func(z string, code int) string {
		return fmt.Sprintf(`(kpi_forecast_zone{kpi_zone="%s", %s} == 1) * %d`, z, tsel, code)
	}
	dateCol := []dashboard.DynamicConfigValue{{Id: "unit", Value: "dateTimeAsIsoNoDateIfToday"}}
	b.WithRow(dashboard.NewRowBuilder("Forecast"))
	b.WithPanel(table.NewPanelBuilder().Title("Forecast to the end of the target period").Datasource(ds()).Height(uint32(3+len(ks))).Span(24).
		Description("Each KPI projected from its history (robust line over its fit window) to the end of the period of its target in force, scored against that target: Attainment and Zone at the horizon, and when the projection turns green. KpiOffTrack fires for a KPI green or yellow now and red here. See the README's Forecast section.").
		WithTarget(tq("A", fmt.Sprintf(`kpi_forecast_attainment_ratio{%s} * %s group_left(name) kpi_definition_info`, tsel, by))).
		WithTarget(tq("B", fmt.Sprintf(`max by (job, instance, kpi, domain) (%s or %s or %s)`, fzone("red", 2), fzone("yellow", 1), fzone("green", 0)))).
		WithTarget(tq("C", fmt.Sprintf(`kpi_forecast_timestamp_seconds{%s} * 1000`, tsel))).
		WithTarget(tq("D", fmt.Sprintf(`kpi_target_eta_timestamp_seconds{%s} * 1000`, tsel))).
		WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
		WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
			"excludeByName": map[string]any{"Time": true, "__name__": true},
			"renameByName": map[string]any{"Value #A": "Attainment at the horizon", "Value #B": "Zone at the horizon", "Value #C": "Horizon",
				"Value #D": "Green from", "name": "KPI", "kpi": "Id"},
		}}).
		OverrideByName("Attainment at the horizon", []dashboard.DynamicConfigValue{{Id: "unit", Value: "percentunit"}}).
		OverrideByName("Zone at the horizon", []dashboard.DynamicConfigValue{{Id: "mappings", Value: []dashboard.ValueMapping{zoneMap}},
			{Id: "custom.cellOptions", Value: map[string]any{"type": "color-background"}}}).
		OverrideByName("Horizon", dateCol).
		OverrideByName("Green from", dateCol))

	// History: attainment of every KPI, and values per unit.
	b.WithRow(dashboard.NewRowBuilder("History"))
	b.WithPanel(timeseries.NewPanelBuilder().Title("Attainment over time").Datasource(ds()).Height(8).Span(24).Unit("percentunit").
		Legend(legend()).
		WithTarget(query("A", fmt.Sprintf(`kpi_attainment_ratio{%s} * %s group_left(name) kpi_definition_info`, tsel, by), "{{name}} ({{instance}})")))
	for _, u := range units {
		var uids []string
		for _, k := range byUnit[u] {
			uids = append(uids, k.ID)
		}
		usel := fmt.Sprintf(`kpi=~"%s", %s`, strings.Join(uids, "|"), sel)
		b.WithPanel(timeseries.NewPanelBuilder().Title("Values: " + string(u)).Datasource(ds()).Height(7).Span(12).Unit(Unit(u)).
			Legend(legend()).
			WithTarget(query("A", fmt.Sprintf(`kpi_value{%s} * %s group_left(name) kpi_definition_info`, usel, by), "{{name}} ({{instance}})")))
	}

	// Collector health of this dashboard's own sources.
	csel := fmt.Sprintf(`collector=~"%s", %s`, strings.Join(sources, "|"), sel)
	b.WithRow(dashboard.NewRowBuilder("Collector health"))
	b.WithPanel(stat.NewPanelBuilder().Title("Sources succeeding").Datasource(ds()).Height(5).Span(12).Unit("bool").
		WithTarget(query("A", fmt.Sprintf(`kpi_collector_success{%s}`, csel), "{{collector}} ({{instance}})").Instant()).
		Mappings([]dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: map[string]dashboard.ValueMappingResult{
			"1": {Text: ptr("ok"), Color: ptr("green")}, "0": {Text: ptr("failing"), Color: ptr("red")}}}}}).
		ColorMode(common.BigValueColorModeBackground).GraphMode(common.BigValueGraphModeNone))
	b.WithPanel(timeseries.NewPanelBuilder().Title("Time since last success").Datasource(ds()).Height(5).Span(12).Unit("s").
		Legend(legend()).
		WithTarget(query("A", fmt.Sprintf(`time() - kpi_collector_last_success_timestamp_seconds{%s}`, csel), "{{collector}} ({{instance}})")))

	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", uid, err)
	}
	j, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(j, '\n'), nil
}

var _ cog.Builder[dashboard.Panel] = stat.NewPanelBuilder()

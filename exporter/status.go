package exporter

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/version"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// The status page and a KPI's detail page are rendered on the server from
// the snapshot, with no external assets: they work offline and behind the
// web config's TLS and basic auth. Links are relative, so a route prefix in
// front of the daemon keeps working.

const pageStyle = `
body{font-family:system-ui,sans-serif;margin:1rem;color:#1f2328;max-width:90rem}
a{color:#0969da}h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}
.wrap{overflow-x:auto}table{border-collapse:collapse;width:100%}
td,th{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:middle}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.zone{display:inline-block;font-weight:600;padding:.05rem .5rem;border-radius:.6rem;color:#fff;font-size:.85em}
.green{background:#1a7f37}.yellow{background:#9a6700}.red{background:#cf222e}.unknown{background:#6e7781}
.bar{width:6rem;height:.6rem;background:#eaeef2;border-radius:.3rem;overflow:hidden;display:inline-block}
.bar span{display:block;height:100%}
.muted{color:#57606a;font-size:.85em}.ok{color:#1a7f37}.failing{color:#cf222e}.not_run,.disabled{color:#6e7781}
.counts a{text-decoration:none;margin-right:.4rem}
.fc{white-space:nowrap}.fc .zone{font-size:.75em}
form{margin:.8rem 0}select,button{font:inherit;margin-right:.4rem}
@media (max-width:40rem){.wide{display:none}body{margin:.5rem}}
`

var pageFuncs = template.FuncMap{
	"ago": func(sec *float64) string {
		if sec == nil {
			return "–"
		}
		return humanDuration(time.Duration(*sec*float64(time.Second))) + " ago"
	},
	"percent": func(a *float64) string {
		if a == nil {
			return "–"
		}
		return kpi.FormatAttainment(*a)
	},
	"barWidth": func(a *float64) string {
		if a == nil {
			return "0"
		}
		return strconv.FormatFloat(math.Round(math.Min(math.Max(*a, 0), 1)*1000)/10, 'f', -1, 64)
	},
	"arrow":       kpi.TrendText,
	"day":         func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"lastDay":     func(end time.Time) string { return end.Add(-time.Nanosecond).UTC().Format(time.DateOnly) }, // of a period ending at end (exclusive)
	"health":      func(h string) string { return strings.ReplaceAll(h, "_", " ") },
	"domainTitle": kpi.DomainTitle,
}

var statusPage = template.Must(template.New("status").Funcs(pageFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>KPI scorecard · kpi_exporter</title><style>` + pageStyle + `</style></head><body>
<h1>KPI scorecard</h1>
<p class="counts" id="counts">{{range .Zones}}<a href="{{.Link}}" data-zone="{{.Zone}}" data-count="{{.Count}}"><span class="zone {{.Zone}}">{{.Count}} {{.Zone}}</span></a>{{end}}
<span class="muted">{{.Total}} KPIs shown · evaluated {{.At}}</span></p>
<p><a href="metrics">Metrics</a> · <a href="api/v1/kpis">JSON API</a> · <a href="-/healthy">Health</a> · <a href="-/ready">Readiness</a> · <span class="muted">kpi_exporter {{.Version}}</span></p>
<form method="get" action="">
<label>Dashboard <select name="dashboard"><option value="">all</option>{{range .Dashboards}}<option{{if eq . $.Filter.Dashboard}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Owner <select name="owner"><option value="">all</option>{{range .Owners}}<option{{if eq . $.Filter.Owner}} selected{{end}}>{{.}}</option>{{end}}</select></label>
<label>Zone <select name="zone"><option value="">all</option>{{range .Zones}}<option{{if eq .Zone $.Filter.Zone}} selected{{end}}>{{.Zone}}</option>{{end}}</select></label>
<button type="submit">Filter</button> <a href="./">clear</a></form>
{{range .Domains}}<h2>{{domainTitle .Name}}</h2>
<div class="wrap"><table><thead><tr><th>KPI</th><th>Value</th><th>Target</th><th class="wide">Next milestone</th><th>Attainment</th><th>Zone</th><th class="wide">Forecast</th><th class="wide">Trend</th><th class="wide">Age</th><th class="wide">Source</th></tr></thead><tbody>
{{range .KPIs}}<tr class="kpi" data-kpi="{{.ID}}" data-zone="{{.Zone}}">
<td><a href="kpi/{{.ID}}">{{.Name}}</a>{{if .Owner}} <span class="muted">{{.Owner}}</span>{{end}}</td>
<td class="n">{{.ValueText}}</td><td class="n">{{.TargetText}}</td>
<td class="n wide">{{with .NextMilestone}}{{.ValueText}} <span class="muted">{{.Period}}</span>{{else}}–{{end}}</td>
<td class="n"><span class="bar" title="{{percent .Attainment}}"><span class="{{.Zone}}" style="width:{{barWidth .Attainment}}%"></span></span> {{percent .Attainment}}</td>
<td><span class="zone {{.Zone}}">{{.Zone}}</span>{{if .Reason}} <span class="muted">{{.Reason}}</span>{{end}}</td>
<td class="wide forecast"{{with .Forecast}} data-forecast-zone="{{.Zone}}"{{end}}>{{with .Forecast}}<span class="fc" title="80 % interval {{.RangeText}}; target {{.TargetText}} at the end of {{.Period}} ({{lastDay .Horizon}})">{{.ValueText}} <span class="zone {{.Zone}}">{{.Zone}}</span></span> <span class="muted">{{.Period}}{{with .ETA}} · green {{day .}}{{end}}</span>{{else}}<span class="muted" title="{{.ForecastReason}}">–</span>{{end}}</td>
<td class="wide">{{arrow .Trend}}</td><td class="wide">{{ago .AgeSeconds}}</td>
<td class="wide">{{.Source.Name}} <span class="{{.Source.Health}}">{{health .Source.Health}}</span></td></tr>
{{end}}</tbody></table></div>
{{else}}<p>No KPI matches the filter.</p>{{end}}
<h2>Sources</h2>
<div class="wrap"><table><thead><tr><th>Source</th><th>Type</th><th>Health</th><th>Last success</th><th class="wide">Runs</th><th class="wide">Errors</th><th>Last error</th></tr></thead><tbody>
{{range .Sources}}<tr><td>{{.Source.Name}}</td><td>{{.Source.Type}}</td>
{{if .Source.Enabled}}<td>{{if eq .Status.Runs 0}}<span class="not_run">not run yet</span>{{else if .Status.Success}}<span class="ok">ok</span>{{else}}<span class="failing">failing</span>{{end}}</td>
<td>{{if .LastSuccess.IsZero}}never{{else}}{{.LastSuccess.UTC.Format "2006-01-02 15:04:05Z"}}{{end}}</td><td class="wide">{{.Status.Runs}}</td><td class="wide">{{.Status.Errors}}</td><td>{{.Status.LastError}}</td>
{{else}}<td colspan="5"><span class="disabled">disabled</span></td>{{end}}</tr>
{{end}}</tbody></table></div>
</body></html>
`))

var kpiPage = template.Must(template.New("kpi").Funcs(pageFuncs).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.KPI.Name}} · kpi_exporter</title><style>` + pageStyle + `</style></head><body>
<p><a href="../">← Scorecard</a> · <a href="../api/v1/kpis/{{.KPI.ID}}">JSON</a></p>
<h1>{{.KPI.Name}} <span class="zone {{.KPI.Zone}}">{{.KPI.Zone}}</span></h1>
{{if .KPI.Description}}<p>{{.KPI.Description}}</p>{{end}}
<p>Value <strong>{{.KPI.ValueText}}</strong> ({{ago .KPI.AgeSeconds}}) · target {{.KPI.TargetText}} · attainment {{percent .KPI.Attainment}} · trend {{arrow .KPI.Trend}}{{if .KPI.Reason}} · <span class="muted">{{.KPI.Reason}}</span>{{end}}</p>
<p class="muted">{{domainTitle .KPI.Domain}} · dashboard {{.KPI.Dashboard}}{{if .KPI.Owner}} · owner {{.KPI.Owner}}{{end}} · {{.KPI.Unit}}, {{.KPI.Direction}} is better · source {{.KPI.Source.Measurement}} <span class="{{.KPI.Source.Health}}">{{health .KPI.Source.Health}}</span>{{with .KPI.Source.LastError}}: {{.}}{{end}}</p>
<p id="forecast">{{with .KPI.Forecast}}Forecast: <strong>{{.ValueText}}</strong> (80 % interval {{.RangeText}}) at the end of {{.Period}} ({{lastDay .Horizon}}), against a target of {{.TargetText}}: {{percent .Attainment}} <span class="zone {{.Zone}}">{{.Zone}}</span>{{with .ETA}} · green from {{day .}}{{end}} <span class="muted">· fitted on {{.Points}} points{{if .Damped}}, slowing{{end}}{{with .LevelShift}}, since a level shift at {{day .}}{{end}}</span>{{else}}<span class="muted">No forecast: {{.KPI.ForecastReason}}.</span>{{end}}</p>
<figure id="history">{{.Chart}}<figcaption class="muted">History ({{len .KPI.History}} points) with the target in force (dashed){{if .KPI.Forecast}} and the forecast to the end of the target period with its 80 % interval (dotted, shaded){{end}}.</figcaption></figure>
<h2>Milestones</h2>
<div class="wrap"><table><thead><tr><th>Period</th><th>From</th><th>To</th><th>Target</th></tr></thead><tbody>
{{range .KPI.Milestones}}<tr><td>{{.Period}}</td><td>{{.Start.Format "2006-01-02"}}</td><td>{{(.End.AddDate 0 0 -1).Format "2006-01-02"}}</td><td class="n">{{.ValueText}}</td></tr>
{{end}}</tbody></table></div>
</body></html>
`))

type zoneCount struct {
	Zone  kpi.Zone
	Count int
	// Link filters on the zone, keeping the other filters.
	Link string
}

type domainRows struct {
	Name string
	KPIs []KPIView
}

func (e *Exporter) handleStatus(w http.ResponseWriter, r *http.Request) {
	snap := e.snap.Load()
	f := filterOf(r.URL.Query())
	now := e.opts.Now()
	sc := snap.ScorecardView(f, now)
	// The header counts every zone under the other filters, so that it
	// still says how many are red while showing the yellow ones.
	counts := sc.Counts
	if f.Zone != "" {
		others := f
		others.Zone = ""
		counts = snap.ScorecardView(others, now).Counts
	}
	zones := make([]zoneCount, 0, len(kpi.Zones))
	for _, z := range kpi.Zones {
		q := url.Values{}
		for k, v := range map[string]string{"dashboard": f.Dashboard, "owner": f.Owner, "domain": f.Domain, "zone": string(z)} {
			if v != "" {
				q.Set(k, v)
			}
		}
		zones = append(zones, zoneCount{z, counts[z], "?" + q.Encode()})
	}
	var domains []domainRows
	index := map[string]int{}
	for _, v := range sc.KPIs {
		i, ok := index[v.Domain]
		if !ok {
			i = len(domains)
			index[v.Domain] = i
			domains = append(domains, domainRows{Name: v.Domain})
		}
		domains[i].KPIs = append(domains[i].KPIs, v)
	}
	dashboards, owners := snap.facets()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	statusPage.Execute(w, struct {
		Version            string
		At                 string
		Total              int
		Zones              []zoneCount
		Filter             Filter
		Dashboards, Owners []string
		Domains            []domainRows
		Sources            []SourceState
	}{version.Version, sc.At.UTC().Format("2006-01-02 15:04:05Z"), len(sc.KPIs), zones, f, dashboards, owners, domains, snap.Sources})
}

func (e *Exporter) handleKPIPage(w http.ResponseWriter, r *http.Request) {
	snap := e.snap.Load()
	id := r.PathValue("id")
	v, ok := snap.KPIDetail(id, e.history(id), e.opts.Now())
	if !ok {
		http.Error(w, "No KPI with id "+strconv.Quote(id)+".", http.StatusNotFound)
		return
	}
	k := snap.kpiByID(id)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	kpiPage.Execute(w, struct {
		KPI   KPIView
		Chart template.HTML
	}{v, historyChart(snap.Catalogue, k, v, snap.forecastOf(id), snap.Scorecard.At)})
}

func (s *Snapshot) forecastOf(id string) kpi.Forecast {
	for _, r := range s.Scorecard.Results {
		if r.KPI.ID == id {
			return r.Forecast
		}
	}
	return kpi.Forecast{}
}

func (s *Snapshot) kpiByID(id string) *kpi.KPI {
	for i := range s.Catalogue.KPIs {
		if s.Catalogue.KPIs[i].ID == id {
			return &s.Catalogue.KPIs[i]
		}
	}
	return nil
}

// historyChart draws the KPI's history and the target in force as an
// inline SVG, up to the snapshot's evaluation time at, and its forecast
// with the interval up to the horizon. Only numbers and escaped text go
// into it.
func historyChart(c *kpi.Catalogue, k *kpi.KPI, v KPIView, f kpi.Forecast, at time.Time) template.HTML {
	const width, height, left, right, top, bottom = 720.0, 220.0, 64.0, 12.0, 12.0, 28.0
	pts := append([]PointView(nil), v.History...)
	if v.Value != nil && v.ValueTime != nil && (len(pts) == 0 || v.ValueTime.After(pts[len(pts)-1].T)) {
		pts = append(pts, PointView{T: *v.ValueTime, V: *v.Value})
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" role="img" aria-label="History of %s" viewBox="0 0 %g %g" width="100%%" style="max-width:%gpx" xmlns="http://www.w3.org/2000/svg">`,
		html.EscapeString(k.Name), width, height, width)
	if len(pts) == 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle" fill="#57606a">No history yet.</text></svg>`, width/2, height/2)
		return template.HTML(b.String())
	}
	t0, t1 := pts[0].T, at
	if last := pts[len(pts)-1].T; last.After(t1) {
		t1 = last
	}
	// The forecast, sampled from its start to the horizon (a damped one
	// bends).
	type band struct {
		t             time.Time
		v, low, upper float64
	}
	var fc []band
	if f.OK && f.Horizon.After(f.From) {
		const steps = 24
		for i := 0; i <= steps; i++ {
			t := f.From.Add(time.Duration(float64(f.Horizon.Sub(f.From)) * float64(i) / steps))
			fv, lo, up := f.At(t)
			fc = append(fc, band{t, fv, lo, up})
		}
		if f.Horizon.After(t1) {
			t1 = f.Horizon
		}
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Hour)
	}
	// The target line is sampled where it can change: at the history's
	// points, the milestones' borders and the ends.
	times := []time.Time{t0}
	for _, p := range pts {
		times = append(times, p.T)
	}
	for _, m := range k.Targets {
		for _, t := range []time.Time{m.Period.Start, m.Period.End.Add(-time.Second)} {
			if t.After(t0) && t.Before(t1) {
				times = append(times, t)
			}
		}
	}
	times = append(times, t1)
	slices.SortFunc(times, time.Time.Compare)
	type tp struct {
		t time.Time
		v float64
	}
	var target []tp
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		lo, hi = math.Min(lo, p.V), math.Max(hi, p.V)
	}
	for _, p := range fc {
		lo, hi = math.Min(lo, p.low), math.Max(hi, p.upper)
	}
	for _, t := range times {
		if tv, ok := c.TargetAt(k, t); ok {
			target = append(target, tp{t, tv})
			lo, hi = math.Min(lo, tv), math.Max(hi, tv)
		}
	}
	if hi == lo {
		hi, lo = hi+math.Max(math.Abs(hi)*0.1, 1), lo-math.Max(math.Abs(lo)*0.1, 1)
	}
	pad := (hi - lo) * 0.08
	lo, hi = lo-pad, hi+pad
	x := func(t time.Time) float64 {
		return left + (width-left-right)*float64(t.Sub(t0))/float64(t1.Sub(t0))
	}
	y := func(v float64) float64 { return top + (height-top-bottom)*(hi-v)/(hi-lo) }
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="#f6f8fa"/>`, left, top, width-left-right, height-top-bottom)
	for _, v := range []float64{hi - pad, (hi + lo) / 2, lo + pad} {
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" font-size="11" fill="#57606a">%s</text>`, left-4, y(v)+4, html.EscapeString(kpi.FormatValue(k.Unit, v)))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" fill="#57606a">%s</text>`, left, height-8, t0.UTC().Format(time.DateOnly))
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="end" font-size="11" fill="#57606a">%s</text>`, width-right, height-8, t1.UTC().Format(time.DateOnly))
	if len(target) > 0 {
		b.WriteString(`<polyline class="target" fill="none" stroke="#cf222e" stroke-width="1.5" stroke-dasharray="6 4" points="`)
		for i, p := range target {
			if i > 0 && !k.Interpolate {
				// Stepwise: hold the previous target until this time.
				fmt.Fprintf(&b, "%.1f,%.1f ", x(p.t), y(target[i-1].v))
			}
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.t), y(p.v))
		}
		b.WriteString(`"/>`)
	}
	if len(fc) > 0 {
		// The interval as a shaded band (upper edge forward, lower edge
		// back), the projection dotted over it, a mark at the horizon.
		b.WriteString(`<polygon class="forecast-band" fill="#0969da" fill-opacity="0.12" stroke="none" points="`)
		for _, p := range fc {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.t), y(p.upper))
		}
		for i := len(fc) - 1; i >= 0; i-- {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(fc[i].t), y(fc[i].low))
		}
		b.WriteString(`"/><polyline class="forecast" fill="none" stroke="#0969da" stroke-width="2" stroke-dasharray="2 3" points="`)
		for _, p := range fc {
			fmt.Fprintf(&b, "%.1f,%.1f ", x(p.t), y(p.v))
		}
		end := fc[len(fc)-1]
		fmt.Fprintf(&b, `"/><line class="horizon" x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#57606a" stroke-width="1" stroke-dasharray="1 3"/>`, x(end.t), top, x(end.t), height-bottom)
	}
	b.WriteString(`<polyline class="value" fill="none" stroke="#0969da" stroke-width="2" points="`)
	for _, p := range pts {
		fmt.Fprintf(&b, "%.1f,%.1f ", x(p.T), y(p.V))
	}
	b.WriteString(`"/>`)
	last := pts[len(pts)-1]
	fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#0969da"/></svg>`, x(last.T), y(last.V))
	return template.HTML(b.String())
}

// humanDuration renders a duration coarsely: 45s, 12m, 3h, 4d.
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

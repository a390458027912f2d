package exporter

import (
	"html/template"
	"net/http"
	"time"

	"github.com/prometheus/common/version"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

var landing = template.Must(template.New("landing").Funcs(template.FuncMap{
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return now.Sub(t).Round(time.Second).String() + " ago"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>kpi_exporter</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}table{border-collapse:collapse}
td,th{padding:.25rem .6rem;border-bottom:1px solid #ddd;text-align:left}
.green{color:#1a7f37}.yellow{color:#9a6700}.red{color:#cf222e}.unknown{color:#6e7781}
</style></head><body>
<h1>kpi_exporter</h1>
<p>Version {{.Version}}. KPIs: {{len .Snap.Scorecard.Results}}{{range .Zones}} · <span class="{{.Zone}}">{{.Zone}} {{.Count}}</span>{{end}}</p>
<ul><li><a href="metrics">Metrics</a></li><li><a href="-/healthy">Health</a></li><li><a href="-/ready">Readiness</a></li></ul>
<h2>Sources</h2>
<table><thead><tr><th>Source</th><th>Type</th><th>Interval</th><th>Health</th><th>Last success</th><th>Runs</th><th>Errors</th><th>Last error</th></tr></thead><tbody>
{{range .Snap.Sources}}<tr><td>{{.Source.Name}}</td><td>{{.Source.Type}}</td>
{{if .Source.Enabled}}<td>{{.Source.Interval}}</td>
<td>{{if eq .Status.Runs 0}}<span class="unknown">not run yet</span>{{else if .Status.Success}}<span class="green">ok</span>{{else}}<span class="red">failing</span>{{end}}</td>
<td>{{ago $.Now .LastSuccess}}</td><td>{{.Status.Runs}}</td><td>{{.Status.Errors}}</td><td>{{.Status.LastError}}</td>
{{else}}<td colspan="6"><span class="unknown">disabled</span></td>{{end}}</tr>
{{end}}</tbody></table>
</body></html>
`))

type zoneCount struct {
	Zone  kpi.Zone
	Count int
}

func (e *Exporter) handleLanding(w http.ResponseWriter, r *http.Request) {
	snap := e.snap.Load()
	counts := map[kpi.Zone]int{}
	for _, res := range snap.Scorecard.Results {
		counts[res.Zone]++
	}
	zones := make([]zoneCount, 0, len(kpi.Zones))
	for _, z := range kpi.Zones {
		zones = append(zones, zoneCount{z, counts[z]})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	landing.Execute(w, struct {
		Version string
		Snap    *Snapshot
		Zones   []zoneCount
		Now     time.Time
	}{version.Version, snap, zones, time.Now()})
}

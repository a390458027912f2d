package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Formats lists the output formats.
var Formats = []string{"markdown", "html"}

// Render writes the report in the format ("markdown" or "html").
func Render(w io.Writer, rep Report, format string) error {
	switch format {
	case "markdown", "md":
		return Markdown(w, rep)
	case "html":
		return HTML(w, rep)
	}
	return fmt.Errorf("unknown report format %q: want markdown or html", format)
}

// Title is the report's heading.
func (rep Report) Title() string {
	name := map[Period]string{Week: "Weekly review", Month: "Monthly business review", Quarter: "Quarterly review"}[rep.Span.Period]
	return name + ": " + rep.Span.Label
}

// Summary is the one-line count per zone.
func (rep Report) Summary() string {
	parts := make([]string, 0, len(kpi.Zones))
	for _, z := range kpi.Zones {
		parts = append(parts, fmt.Sprintf("%d %s", rep.Counts[z], z))
	}
	return strings.Join(parts, " · ")
}

// FormatValue renders the row's value, or "–" when there is none.
func (r Row) FormatValue() string {
	if !r.HasValue {
		return "–"
	}
	return kpi.FormatValue(r.KPI.Unit, r.Value)
}

// FormatTarget renders the target in force, or "–".
func (r Row) FormatTarget() string {
	if !r.HasTarget {
		return "–"
	}
	return kpi.FormatValue(r.KPI.Unit, r.Target)
}

// FormatAttainment renders the attainment in percent to a tenth, or "–".
func (r Row) FormatAttainment() string {
	if !r.HasAttainment {
		return "–"
	}
	return kpi.FormatAttainment(r.Attainment)
}

// FormatChange renders the change against the previous period: percentage
// points for ratios, the unit's own form otherwise with the relative change,
// and whether it was for the better.
func (r Row) FormatChange() string {
	if !r.HasChange {
		return "–"
	}
	if r.Change == 0 {
		return "no change"
	}
	sign := "+"
	if r.Change < 0 {
		sign = "−"
	}
	abs := math.Abs(r.Change)
	var s string
	if r.KPI.Unit == kpi.UnitRatio {
		s = sign + strconv.FormatFloat(math.Round(abs*1000)/10, 'f', -1, 64) + " pp"
	} else {
		s = sign + kpi.FormatValue(r.KPI.Unit, abs)
		if r.Previous != 0 {
			s += fmt.Sprintf(" (%s%s%%)", sign, strconv.FormatFloat(math.Round(abs/math.Abs(r.Previous)*1000)/10, 'f', -1, 64))
		}
	}
	switch r.Better {
	case 1:
		s += ", better"
	case -1:
		s += ", worse"
	}
	return s
}

// Title is the domain's name for people (see kpi.DomainTitle).
func (d Domain) Title() string { return kpi.DomainTitle(d.Name) }

// Markdown writes the report as a Markdown document.
func Markdown(w io.Writer, rep Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", rep.Title())
	fmt.Fprintf(&b, "Compared with %s. Values are the last recorded in each period; targets those in force at the period's end.\n\n", rep.PreviousSpan.Label)
	fmt.Fprintf(&b, "**Summary:** %s\n", rep.Summary())
	for _, d := range rep.Domains {
		fmt.Fprintf(&b, "\n## %s\n\n", mdCell(d.Title()))
		b.WriteString("| KPI | Value | Target | Attainment | Zone | Change |\n|---|---:|---:|---:|---|---|\n")
		for _, r := range d.Rows {
			zone := string(r.Zone)
			if r.Reason != "" {
				zone += " (" + r.Reason + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdCell(r.KPI.Name), r.FormatValue(), r.FormatTarget(),
				r.FormatAttainment(), mdCell(zone), r.FormatChange())
		}
	}
	if rep.HasForecastSection {
		b.WriteString("\n## Off track by forecast\n\n")
		b.WriteString(rep.ForecastSummary() + "\n")
		if len(rep.OffTrack) > 0 {
			b.WriteString("\n| KPI | Owner | Zone now | Forecast (80 % interval) | Target at the horizon | Attainment there |\n|---|---|---|---:|---:|---:|\n")
			for _, o := range rep.OffTrack {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdCell(o.KPI.Name), mdCell(o.KPI.Owner), o.Zone, o.FormatForecast(), o.FormatTarget(), o.FormatAttainment())
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// ForecastSummary says what the forecast section covers.
func (rep Report) ForecastSummary() string {
	return fmt.Sprintf("Forecast at the end of the week, from the history then, to the end of each KPI's target period: %d off track (red at the end of the period), %d on track or at risk, %d without a forecast (too little history, or no target ahead).",
		len(rep.OffTrack), rep.OnTrack, rep.NoForecast)
}

// mdCell escapes what would break a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

var htmlReport = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2328}
table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}
th,td{padding:.35rem .6rem;border-bottom:1px solid #d0d7de;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.zone{font-weight:600;padding:.1rem .5rem;border-radius:.6rem;color:#fff}
.green{background:#1a7f37}.yellow{background:#bf8700}.red{background:#cf222e}.unknown{background:#6e7781}
.why{color:#57606a;font-size:.85em}
</style></head><body>
<h1>{{.Title}}</h1>
<p>Compared with {{.PreviousSpan.Label}}. Values are the last recorded in each period; targets those in force at the period's end.</p>
<p><strong>Summary:</strong>{{range $i, $z := .Zones}} <span class="zone {{$z}}">{{index $.Counts $z}} {{$z}}</span>{{end}}</p>
{{range .Domains}}<h2>{{.Title}}</h2>
<table><thead><tr><th>KPI</th><th>Value</th><th>Target</th><th>Attainment</th><th>Zone</th><th>Change</th></tr></thead><tbody>
{{range .Rows}}<tr><td>{{.KPI.Name}}</td><td class="n">{{.FormatValue}}</td><td class="n">{{.FormatTarget}}</td><td class="n">{{.FormatAttainment}}</td><td><span class="zone {{.Zone}}">{{.Zone}}</span>{{if .Reason}} <span class="why">{{.Reason}}</span>{{end}}</td><td>{{.FormatChange}}</td></tr>
{{end}}</tbody></table>
{{end}}{{if .HasForecastSection}}<h2 id="off-track">Off track by forecast</h2>
<p>{{.ForecastSummary}}</p>
{{if .OffTrack}}<table><thead><tr><th>KPI</th><th>Owner</th><th>Zone now</th><th>Forecast (80 % interval)</th><th>Target at the horizon</th><th>Attainment there</th></tr></thead><tbody>
{{range .OffTrack}}<tr><td>{{.KPI.Name}}</td><td>{{.KPI.Owner}}</td><td><span class="zone {{.Zone}}">{{.Zone}}</span></td><td class="n">{{.FormatForecast}}</td><td class="n">{{.FormatTarget}}</td><td class="n">{{.FormatAttainment}}</td></tr>
{{end}}</tbody></table>{{end}}
{{end}}</body></html>
`))

// HTML writes the report as a self-contained HTML page.
func HTML(w io.Writer, rep Report) error {
	return htmlReport.Execute(w, struct {
		Report
		Zones []kpi.Zone
	}{rep, kpi.Zones})
}

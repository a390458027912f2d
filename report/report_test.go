package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bakhmach-hub/kpi_exporter/internal/testclock"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

const testCatalogue = `
calendar: {plan_start: 2026-01-01}
sources: [{name: s, type: file}]
kpis:
  - {id: uptime, name: Uptime, domain: production, dashboard: technical, owner: ops, unit: ratio, direction: higher,
     source: {name: s, measurement: uptime}, targets: [{period: Q1, value: 0.99}, {period: Q4, value: 0.999}],
     zones: {green: 0.999, yellow: 0.98}}
  - {id: p99, name: "P99 | latency", domain: production, dashboard: technical, owner: ops, unit: seconds, direction: lower,
     source: {name: s, measurement: p99}, targets: [{period: Q1, value: 0.5}]}
  - {id: mrr, name: MRR, domain: financial, dashboard: financial, owner: cfo, unit: usd, direction: higher,
     source: {name: s, measurement: mrr}, targets: [{period: Q3, value: 30000}, {period: Q4, value: 40000}]}
  - {id: nps, name: NPS, domain: product, dashboard: product, owner: pm, unit: score, direction: higher,
     source: {name: s, measurement: nps}, targets: [{period: Q1, value: 50}]}
  - {id: headcount, name: Headcount, domain: financial, dashboard: financial, owner: cfo, unit: count, direction: higher,
     source: {name: s, measurement: headcount}, targets: [{period: Q1, value: 10}]}
`

func catalogue(t *testing.T, src string) *kpi.Catalogue {
	t.Helper()
	c, err := kpi.Parse("test.yml", []byte(src), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestSpans(t *testing.T) {
	c := catalogue(t, testCatalogue)
	shifted := catalogue(t, strings.Replace(testCatalogue, "plan_start: 2026-01-01", "plan_start: 2026-02-15", 1))
	tests := []struct {
		c          *kpi.Catalogue
		p          Period
		at         string
		start, end string
		label      string
	}{
		{c, Week, "2026-11-25T13:00:00Z", "2026-11-23", "2026-11-30", "2026-W48 (2026-11-23 – 2026-11-29)"},
		{c, Week, "2026-11-29T23:59:59Z", "2026-11-23", "2026-11-30", "2026-W48 (2026-11-23 – 2026-11-29)"},
		{c, Week, "2026-01-01T00:00:00Z", "2025-12-29", "2026-01-05", "2026-W01 (2025-12-29 – 2026-01-04)"},
		{c, Month, "2026-02-15T08:00:00Z", "2026-02-01", "2026-03-01", "February 2026"},
		{c, Quarter, "2026-05-10T00:00:00Z", "2026-04-01", "2026-07-01", "Q2 (2026-04-01 – 2026-06-30)"},
		{c, Quarter, "2025-11-05T00:00:00Z", "2025-10-01", "2026-01-01", "2025-10-01 – 2025-12-31"},
		{c, Quarter, "2027-01-01T00:00:00Z", "2027-01-01", "2027-04-01", "2027-01-01 – 2027-03-31"},
		{shifted, Quarter, "2026-05-14T23:00:00Z", "2026-02-15", "2026-05-15", "Q1 (2026-02-15 – 2026-05-14)"},
		{shifted, Quarter, "2026-05-15T00:00:00Z", "2026-05-15", "2026-08-15", "Q2 (2026-05-15 – 2026-08-14)"},
		{shifted, Quarter, "2026-01-20T00:00:00Z", "2025-11-15", "2026-02-15", "2025-11-15 – 2026-02-14"},
	}
	for _, tt := range tests {
		s, err := SpanOf(tt.c, tt.p, day(tt.at))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Start.Format(time.DateOnly) + " " + s.End.Format(time.DateOnly); got != tt.start+" "+tt.end {
			t.Errorf("%s of %s: span %s, want %s %s", tt.p, tt.at, got, tt.start, tt.end)
		}
		if s.Label != tt.label {
			t.Errorf("%s of %s: label %q, want %q", tt.p, tt.at, s.Label, tt.label)
		}
	}
	if _, err := SpanOf(c, "fortnight", testclock.Now()); err == nil || !strings.Contains(err.Error(), `"fortnight"`) {
		t.Errorf("unknown period: %v", err)
	}
	last, _ := LastComplete(c, Month, day("2026-11-30T10:00:00Z"))
	if last.Label != "October 2026" {
		t.Errorf("last complete month on 30 November: %s", last.Label)
	}
	lastWeek, _ := LastComplete(c, Week, day("2026-11-30T10:00:00Z")) // a Monday
	if !strings.HasPrefix(lastWeek.Label, "2026-W48") {
		t.Errorf("last complete week on Monday 30 November: %s", lastWeek.Label)
	}
}

// history is the stored history the month report of October 2026 reads:
// September is the previous period, points on the borders test [start, end).
func history() map[string][]kpi.Point {
	p := func(ts string, v float64) kpi.Point { return kpi.Point{T: day(ts), V: v} }
	return map[string][]kpi.Point{
		"uptime": {p("2026-09-10T00:00:00Z", 0.995), p("2026-09-30T23:00:00Z", 0.99), p("2026-10-01T00:00:00Z", 0.97),
			p("2026-10-31T22:00:00Z", 0.985), p("2026-11-01T00:00:00Z", 0.5)},
		"p99":       {p("2026-09-15T00:00:00Z", 0.6), p("2026-10-20T00:00:00Z", 0.4)},
		"mrr":       {p("2026-08-31T00:00:00Z", 5000), p("2026-09-30T00:00:00Z", 10000), p("2026-10-31T23:59:00Z", 12000)},
		"headcount": {p("2026-10-03T00:00:00Z", 10)},
		"nps":       {p("2026-08-01T00:00:00Z", 60), p("2026-11-01T00:00:00Z", 70)},
	}
}

func octoberReport(t *testing.T) Report {
	c := catalogue(t, testCatalogue)
	span, err := SpanOf(c, Month, day("2026-10-15T00:00:00Z"))
	if err != nil {
		t.Fatal(err)
	}
	return Build(c, history(), span)
}

func TestBuildValuesZonesAndChanges(t *testing.T) {
	rep := octoberReport(t)
	if rep.PreviousSpan.Label != "September 2026" {
		t.Errorf("previous period %s", rep.PreviousSpan.Label)
	}
	rows := map[string]Row{}
	var order []string
	for _, d := range rep.Domains {
		for _, r := range d.Rows {
			rows[r.KPI.ID] = r
			order = append(order, d.Name+"/"+r.KPI.ID)
		}
	}
	if got := strings.Join(order, " "); got != "production/uptime production/p99 financial/mrr financial/headcount product/nps" {
		t.Errorf("domains and rows in catalogue order: %s", got)
	}
	const eps = 1e-12
	near := func(a, b float64) bool { return a-b < eps && b-a < eps }
	tests := []struct {
		id                       string
		value, target, att, prev float64
		zone                     kpi.Zone
		hasPrev                  bool
		change                   float64
		better                   int
	}{
		// Last October point (the 1 November midnight one belongs to November);
		// Q4's target; 0.985/0.999 = 0.98599 is under green 0.999, over yellow 0.98.
		{"uptime", 0.985, 0.999, 0.985 / 0.999, 0.99, kpi.Yellow, true, 0.985 - 0.99, -1},
		// Lower is better: 0.5/0.4 = 1.25, and a drop is an improvement.
		{"p99", 0.4, 0.5, 1.25, 0.6, kpi.Green, true, 0.4 - 0.6, 1},
		{"mrr", 12000, 40000, 0.3, 10000, kpi.Red, true, 2000, 1},
		{"headcount", 10, 10, 1, 0, kpi.Green, false, 0, 0},
	}
	for _, tt := range tests {
		r := rows[tt.id]
		if !r.HasValue || !near(r.Value, tt.value) || !r.HasTarget || !near(r.Target, tt.target) ||
			!r.HasAttainment || !near(r.Attainment, tt.att) || r.Zone != tt.zone {
			t.Errorf("%s: value %v (%v) target %v attainment %v zone %s; want %v %v %v %s",
				tt.id, r.Value, r.HasValue, r.Target, r.Attainment, r.Zone, tt.value, tt.target, tt.att, tt.zone)
		}
		if r.HasPrevious != tt.hasPrev || r.HasChange != tt.hasPrev || (tt.hasPrev && (!near(r.Previous, tt.prev) || !near(r.Change, tt.change))) || r.Better != tt.better {
			t.Errorf("%s: previous %v (%v) change %v better %d; want %v %v %d", tt.id, r.Previous, r.HasPrevious, r.Change, r.Better, tt.prev, tt.change, tt.better)
		}
	}
	nps := rows["nps"]
	if nps.HasValue || nps.HasPrevious || nps.Zone != kpi.Unknown || nps.Reason != "no value recorded in the period" {
		t.Errorf("nps has no point in September or October: %+v", nps)
	}
	want := map[kpi.Zone]int{kpi.Green: 2, kpi.Yellow: 1, kpi.Red: 1, kpi.Unknown: 1}
	for z, n := range want {
		if rep.Counts[z] != n {
			t.Errorf("%s: %d KPIs, want %d", z, rep.Counts[z], n)
		}
	}
}

func TestMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, octoberReport(t), "markdown"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# Monthly business review: October 2026\n",
		"Compared with September 2026.",
		"**Summary:** 2 green · 1 yellow · 1 red · 1 unknown\n",
		"\n## Production\n",
		"| Uptime | 98.5% | 99.9% | 98.6% | yellow | −0.5 pp, worse |\n",
		"| P99 \\| latency | 400ms | 500ms | 125% | green | −200ms (−33.3%), better |\n",
		"| MRR | $12K | $40K | 30% | red | +$2K (+20%), better |\n",
		"| Headcount | 10 | 10 | 100% | green | – |\n",
		"| NPS | – | 50 | – | unknown (no value recorded in the period) | – |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestHTML(t *testing.T) {
	var b bytes.Buffer
	if err := Render(&b, octoberReport(t), "html"); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	var text func(*html.Node) string
	text = func(n *html.Node) string {
		if n.Type == html.TextNode {
			return n.Data
		}
		var s string
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			s += text(c)
		}
		return s
	}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			var cells []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && c.Data == "td" {
					cells = append(cells, strings.TrimSpace(text(c)))
				}
			}
			if cells != nil {
				rows = append(rows, cells)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	if len(rows) != 5 {
		t.Fatalf("%d KPI rows, want 5: %v", len(rows), rows)
	}
	if got := strings.Join(rows[2], "|"); got != "MRR|$12K|$40K|30%|red|+$2K (+20%), better" {
		t.Errorf("MRR row: %s", got)
	}
	if err := Render(&b, Report{}, "pdf"); err == nil || !strings.Contains(err.Error(), `"pdf"`) {
		t.Errorf("unknown format: %v", err)
	}
}

func TestDomainTitle(t *testing.T) {
	for name, want := range map[string]string{"production_service": "Production service", "ml_pipeline": "ML pipeline", "workflow": "Workflow", "": ""} {
		if got := (Domain{Name: name}).Title(); got != want {
			t.Errorf("%q: %q, want %q", name, got, want)
		}
	}
}

// TestWeeklyOffTrack: a weekly report lists the KPIs whose forecast, made
// at the week's end from the history then, ends their target period red —
// those not red yet first — and counts the others; monthly reports have no
// such section.
func TestWeeklyOffTrack(t *testing.T) {
	c := catalogue(t, `
calendar: {plan_start: 2026-01-01}
sources: [{name: s, type: file}]
kpis:
  - {id: falling, name: Falling | signups, domain: growth, dashboard: executive, owner: growth, unit: count, direction: higher,
     source: {name: s, measurement: a}, targets: [{period: Q1, value: 100}], trend_demotes: false}
  - {id: red_now, name: Red now, domain: growth, dashboard: executive, owner: growth, unit: count, direction: higher,
     source: {name: s, measurement: b}, targets: [{period: Q1, value: 100}]}
  - {id: fine, name: Fine, domain: growth, dashboard: executive, owner: growth, unit: count, direction: higher,
     source: {name: s, measurement: c}, targets: [{period: Q1, value: 100}]}
  - {id: new, name: New, domain: growth, dashboard: executive, owner: growth, unit: count, direction: higher,
     source: {name: s, measurement: d}, targets: [{period: Q1, value: 100}]}
`)
	// Three weeks of hourly history to Sunday 2026-02-15 (week 7); the
	// forecast at its end runs to the end of Q1, 2026-04-01 (45 days).
	end := day("2026-02-16T00:00:00Z")
	h := map[string][]kpi.Point{}
	for i := 0; i < 21*24; i++ {
		tt := end.Add(-time.Duration(21*24-i) * time.Hour)
		d := float64(i) / 24
		h["falling"] = append(h["falling"], kpi.Point{T: tt, V: 140 - 1.5*d}) // 108.5 now, ≈ 41 at the horizon
		h["red_now"] = append(h["red_now"], kpi.Point{T: tt, V: 60 - 0.5*d})
		h["fine"] = append(h["fine"], kpi.Point{T: tt, V: 100 + 0.1*d})
	}
	h["new"] = []kpi.Point{{T: end.Add(-2 * time.Hour), V: 50}}
	span, _ := SpanOf(c, Week, day("2026-02-12T00:00:00Z"))
	rep := Build(c, h, span)
	if !rep.HasForecastSection || len(rep.OffTrack) != 2 || rep.OnTrack != 1 || rep.NoForecast != 1 {
		t.Fatalf("off track %d, on track %d, none %d", len(rep.OffTrack), rep.OnTrack, rep.NoForecast)
	}
	if o := rep.OffTrack[0]; o.KPI.ID != "falling" || o.Zone != kpi.Green || o.Forecast.Period != "Q1" || o.Forecast.Value > 50 || o.Forecast.Value < 30 {
		t.Errorf("first: %s %s %+v", o.KPI.ID, o.Zone, o.Forecast)
	}
	if o := rep.OffTrack[1]; o.KPI.ID != "red_now" || o.Zone != kpi.Red {
		t.Errorf("second: %s %s", o.KPI.ID, o.Zone)
	}
	var md bytes.Buffer
	if err := Render(&md, rep, "markdown"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"## Off track by forecast", "2 off track (red at the end of the period), 1 on track or at risk, 1 without a forecast",
		"| Falling \\| signups | growth | green | ", "| 100 (Q1, 2026-03-31) |"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if strings.Index(md.String(), "Falling") > strings.Index(md.String(), "| Red now | growth | red |") {
		t.Error("the KPI not red yet comes first")
	}
	var page bytes.Buffer
	if err := Render(&page, rep, "html"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), `<h2 id="off-track">Off track by forecast</h2>`) || !strings.Contains(page.String(), `<td>Falling | signups</td><td>growth</td><td><span class="zone green">green</span></td>`) {
		t.Errorf("html:\n%s", page.String())
	}
	if _, err := html.Parse(&page); err != nil {
		t.Error(err)
	}
	month, _ := SpanOf(c, Month, day("2026-02-12T00:00:00Z"))
	var mm bytes.Buffer
	Render(&mm, Build(c, h, month), "markdown")
	if strings.Contains(mm.String(), "Off track") {
		t.Error("a monthly report has the weekly check-in")
	}
}

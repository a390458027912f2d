package exporter

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/bakhmach-hub/kpi_exporter/internal/testclock"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func TestScorecardView(t *testing.T) {
	s := goldenSnapshot(t)
	sc := s.ScorecardView(Filter{}, goldenNow)
	if len(sc.KPIs) != 4 || sc.Counts[kpi.Green] != 0 || sc.Counts[kpi.Yellow] != 2 || sc.Counts[kpi.Red] != 1 || sc.Counts[kpi.Unknown] != 1 {
		t.Fatalf("counts %v of %d KPIs", sc.Counts, len(sc.KPIs))
	}
	nps := sc.KPIs[0]
	// M11 of the launch calendar: the target in force is the next milestone
	// ahead, M12's 75, which starts tomorrow.
	if nps.ID != "nps" || *nps.Value != 58 || nps.ValueText != "58" || *nps.Target != 75 || *nps.AgeSeconds != 30 ||
		nps.NextMilestone == nil || nps.NextMilestone.Period != "M12" || nps.NextMilestone.Value != 75 ||
		nps.Source.Health != "ok" || nps.Source.Measurement != "manual/net_promoter_score" || nps.Zone != kpi.Yellow {
		t.Errorf("nps view: %+v", nps)
	}
	if a := *nps.Attainment; a < 0.7733 || a > 0.7734 {
		t.Errorf("nps attainment %v, want 58/75", a)
	}
	stars := sc.KPIs[3]
	if stars.Value != nil || stars.Attainment != nil || stars.Source.Health != "disabled" || stars.Zone != kpi.Unknown || stars.ValueText != "–" {
		t.Errorf("stars view: %+v", stars)
	}

	for _, tt := range []struct {
		f   Filter
		ids string
	}{
		{Filter{Dashboard: "technical"}, "review_time"},
		{Filter{Zone: kpi.Yellow}, "nps review_time"},
		{Filter{Owner: "security"}, "incidents"},
		{Filter{Domain: "workflow", Zone: kpi.Red}, ""},
	} {
		sc := s.ScorecardView(tt.f, goldenNow)
		var ids []string
		for _, v := range sc.KPIs {
			ids = append(ids, v.ID)
		}
		n := 0
		for _, c := range sc.Counts {
			n += c
		}
		if strings.Join(ids, " ") != tt.ids || n != len(ids) {
			t.Errorf("%+v: %v, counts %v", tt.f, ids, sc.Counts)
		}
	}
}

func statusServer(t *testing.T) *httptest.Server {
	t.Helper()
	history := map[string][]kpi.Point{"nps": {
		{T: goldenNow.Add(-72 * time.Hour), V: 40}, {T: goldenNow.Add(-48 * time.Hour), V: 50}, {T: goldenNow.Add(-24 * time.Hour), V: 55},
	}}
	e := New(Options{History: func(id string) []kpi.Point { return history[id] }, Now: testclock.Now})
	e.Publish(goldenSnapshot(t))
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestKPIsAPI(t *testing.T) {
	srv := statusServer(t)
	resp, body := get(t, srv.URL+"/api/v1/kpis?zone=yellow")
	var sc ScorecardView
	if err := json.Unmarshal([]byte(body), &sc); err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %v: %s", resp.StatusCode, err, body)
	}
	if len(sc.KPIs) != 2 || sc.KPIs[0].ID != "nps" || sc.KPIs[1].ID != "review_time" || sc.Counts[kpi.Yellow] != 2 || sc.Counts[kpi.Red] != 0 {
		t.Errorf("yellow KPIs: %s", body)
	}
	// An unknown value is null, never 0.
	_, body = get(t, srv.URL+"/api/v1/kpis?dashboard=community")
	if !regexp.MustCompile(`"value": null,\s+"value_text": "–"`).MatchString(body) || !strings.Contains(body, `"attainment": null`) {
		t.Errorf("stars without value:\n%s", body)
	}
	resp, body = get(t, srv.URL+"/api/v1/kpis?zone=purple")
	if resp.StatusCode != 400 || !strings.Contains(body, `"field": "zone"`) {
		t.Errorf("bad zone: %d %s", resp.StatusCode, body)
	}

	resp, body = get(t, srv.URL+"/api/v1/kpis/nps")
	var v KPIView
	if err := json.Unmarshal([]byte(body), &v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v: %s", resp.StatusCode, err, body)
	}
	if len(v.History) != 3 || v.History[2].V != 55 || !v.History[0].T.Equal(goldenNow.Add(-72*time.Hour)) ||
		len(v.Milestones) != 2 || v.Milestones[1].Period != "M12" || v.Milestones[1].ValueText != "75" {
		t.Errorf("nps detail: %s", body)
	}
	// The forecast: NPS climbing to the end of M12, review time off track,
	// stars without a value and so without a forecast.
	if f := v.Forecast; f == nil || f.Period != "M12" || !f.Horizon.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) ||
		f.Zone != kpi.Green || f.ETA == nil || !f.ETA.After(goldenNow) || !f.ETA.Before(f.Horizon) || f.Target != 75 ||
		!(f.Lower <= f.Value && f.Value <= f.Upper) || f.Points != 14*24 || f.IntervalShare != 0.8 || f.SlopePerDay <= 0 {
		t.Errorf("nps forecast: %+v", f)
	}
	_, body = get(t, srv.URL+"/api/v1/kpis")
	var all ScorecardView
	json.Unmarshal([]byte(body), &all)
	for _, k := range all.KPIs {
		switch k.ID {
		case "review_time":
			if k.Forecast == nil || k.Forecast.Zone != kpi.Red || k.Forecast.ETA != nil || k.Zone != kpi.Yellow {
				t.Errorf("review_time: zone %s, forecast %+v", k.Zone, k.Forecast)
			}
		case "stars":
			if k.Forecast != nil || k.ForecastReason != "no value" {
				t.Errorf("stars: forecast %+v (%q)", k.Forecast, k.ForecastReason)
			}
		}
	}
	if !strings.Contains(body, `"forecast": null,
      "forecast_reason": "no value"`) {
		t.Errorf("a KPI without a forecast has forecast null:\n%s", body)
	}

	resp, body = get(t, srv.URL+"/api/v1/kpis/nope")
	if resp.StatusCode != 404 || !strings.Contains(body, `no KPI with id \"nope\"`) {
		t.Errorf("unknown KPI: %d %s", resp.StatusCode, body)
	}
}

// rows returns the data-kpi attribute of every KPI row of a page.
func rows(t *testing.T, page string) []string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "tr" {
			for _, a := range n.Attr {
				if a.Key == "data-kpi" {
					ids = append(ids, a.Val)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return ids
}

func TestStatusPage(t *testing.T) {
	srv := statusServer(t)
	resp, page := get(t, srv.URL+"/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status page: %d", resp.StatusCode)
	}
	if got := strings.Join(rows(t, page), " "); got != "nps review_time incidents stars" {
		t.Errorf("rows: %s", got)
	}
	for _, want := range []string{`data-zone="yellow" data-count="2"`, `data-zone="red" data-count="1"`, "<h2>Safety compliance</h2>",
		`href="kpi/nps"`, `href="metrics"`, `href="api/v1/kpis"`, `style="width:77.3%"`, "M12", "<span class=\"disabled\">disabled</span>"} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	if strings.Contains(page, "http://") && !strings.Contains(page, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("status page refers to an external asset")
	}
	// The Forecast column: the projection, its zone at the horizon and
	// the period, with the day it turns green; "–" and why not otherwise.
	for _, want := range []string{`data-forecast-zone="green">`, `data-forecast-zone="red">`, `76 <span class="zone green">green</span></span> <span class="muted">M12 · green 2026-12-`,
		`<span class="muted" title="no value">–</span>`, `title="80 % interval 75.54 – 76.45; target 75 at the end of M12 (2026-12-31)"`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %q", want)
		}
	}
	_, page = get(t, srv.URL+"/?owner=security&zone=")
	if got := strings.Join(rows(t, page), " "); got != "incidents" {
		t.Errorf("owner filter rows: %s", got)
	}
	// Filtered by zone, the header still counts every zone, and its links
	// keep the other filters.
	_, page = get(t, srv.URL+"/?zone=red&dashboard=executive")
	if got := strings.Join(rows(t, page), " "); got != "incidents" || !strings.Contains(page, `data-zone="red" data-count="1"`) ||
		!strings.Contains(page, `data-zone="yellow" data-count="0"`) || !strings.Contains(page, `href="?dashboard=executive&amp;zone=yellow"`) {
		t.Errorf("zone and dashboard filter: %s\n%s", got, page)
	}
	_, page = get(t, srv.URL+"/?zone=yellow")
	if got := strings.Join(rows(t, page), " "); got != "nps review_time" || !strings.Contains(page, `data-zone="red" data-count="1"`) {
		t.Errorf("zone filter keeps the header's counts: %s", got)
	}
	_, page = get(t, srv.URL+"/?zone=green")
	if len(rows(t, page)) != 0 || !strings.Contains(page, "No KPI matches the filter.") {
		t.Error("an empty filter result")
	}
}

// Until the state and the catalogue are loaded (the first snapshot), the
// scorecard surfaces answer 503 with Retry-After, never an empty scorecard
// with a year-1 timestamp; health answers at once.
func TestPagesBeforeTheFirstSnapshot(t *testing.T) {
	srv := httptest.NewServer(New(Options{}).Handler())
	defer srv.Close()
	for path, code := range map[string]int{"/": 503, "/metrics": 503, "/api/v1/kpis": 503, "/kpi/nps": 503, "/api/v1/kpis/nps": 503, "/-/healthy": 200, "/-/ready": 503} {
		resp, body := get(t, srv.URL+path)
		if resp.StatusCode != code || code == 503 && path != "/-/ready" && resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
}

func TestKPIPageChart(t *testing.T) {
	srv := statusServer(t)
	resp, page := get(t, srv.URL+"/kpi/nps")
	if resp.StatusCode != 200 {
		t.Fatalf("detail page: %d", resp.StatusCode)
	}
	svg := regexp.MustCompile(`(?s)<svg class="chart".*?</svg>`).FindString(page)
	if svg == "" {
		t.Fatalf("no chart:\n%s", page)
	}
	// Three stored points and the current value, inside the plot area.
	values := regexp.MustCompile(`class="value"[^>]*points="([^"]*)"`).FindStringSubmatch(svg)
	if values == nil {
		t.Fatal("no value line")
	}
	pts := strings.Fields(values[1])
	if len(pts) != 4 {
		t.Errorf("value line has %d points, want 4: %s", len(pts), values[1])
	}
	for _, p := range pts {
		xy := strings.Split(p, ",")
		x, _ := strconv.ParseFloat(xy[0], 64)
		y, _ := strconv.ParseFloat(xy[1], 64)
		if x < 64 || x > 708 || y < 12 || y > 192 {
			t.Errorf("point %s outside the plot", p)
		}
	}
	// Higher values are drawn higher: 40 three days ago is below 58 now.
	first, _ := strconv.ParseFloat(strings.Split(pts[0], ",")[1], 64)
	last, _ := strconv.ParseFloat(strings.Split(pts[3], ",")[1], 64)
	if !(first > last) {
		t.Errorf("40 drawn at y=%v, 58 at y=%v", first, last)
	}
	if !strings.Contains(svg, `class="target"`) {
		t.Error("no target line")
	}
	// The forecast: from the current value to the horizon, the chart's
	// right edge, above it (NPS climbs), inside its shaded interval.
	fc := regexp.MustCompile(`class="forecast"[^>]*points="([^"]*)"`).FindStringSubmatch(svg)
	band := regexp.MustCompile(`class="forecast-band"[^>]*points="([^"]*)"`).FindStringSubmatch(svg)
	if fc == nil || band == nil {
		t.Fatalf("no forecast on the chart:\n%s", svg)
	}
	fpts, bpts := strings.Fields(fc[1]), strings.Fields(band[1])
	if len(fpts) != 25 || len(bpts) != 50 || fpts[0] != pts[3] {
		t.Errorf("forecast %d points from %s (the value ends at %s), band %d points", len(fpts), fpts[0], pts[3], len(bpts))
	}
	end := strings.Split(fpts[len(fpts)-1], ",")
	endX, _ := strconv.ParseFloat(end[0], 64)
	endY, _ := strconv.ParseFloat(end[1], 64)
	upperY, _ := strconv.ParseFloat(strings.Split(bpts[24], ",")[1], 64)
	lowerY, _ := strconv.ParseFloat(strings.Split(bpts[25], ",")[1], 64)
	if endX != 708 || !(endY < last) || !(upperY <= endY && endY <= lowerY) {
		t.Errorf("forecast ends at %v,%v (value now at y=%v), interval %v–%v", endX, endY, last, upperY, lowerY)
	}
	if !strings.Contains(page, `Forecast: <strong>76</strong> (80 % interval 75.54 – 76.45) at the end of M12 (2026-12-31)`) {
		t.Errorf("the page does not state the forecast:\n%s", page)
	}
	if resp, _ := get(t, srv.URL+"/kpi/nope"); resp.StatusCode != 404 {
		t.Errorf("unknown KPI page: %d", resp.StatusCode)
	}
	_, page = get(t, srv.URL+"/kpi/stars")
	if !strings.Contains(page, "No history yet.") || !strings.Contains(page, "No forecast: no value.") || strings.Contains(page, `class="forecast"`) {
		t.Error("a KPI without history says so, and has no forecast")
	}
}

// What the page says about an evaluation is taken at the snapshot's time;
// only the age of a value follows the wall clock. With the wall clock five
// years after the snapshot, the next milestone is still the one after the
// snapshot's time, and the age says five years.
func TestStatusPageUsesSnapshotTime(t *testing.T) {
	later := goldenNow.AddDate(5, 0, 0)
	e := New(Options{Now: func() time.Time { return later }})
	e.Publish(goldenSnapshot(t))
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	_, page := get(t, srv.URL+"/")
	if !strings.Contains(page, "M12") {
		t.Error("the next milestone was computed at the wall clock, not at the snapshot's time")
	}
	_, body := get(t, srv.URL+"/api/v1/kpis")
	var sc ScorecardView
	if err := json.Unmarshal([]byte(body), &sc); err != nil {
		t.Fatal(err)
	}
	for _, v := range sc.KPIs {
		if v.ValueTime == nil {
			continue
		}
		if want := later.Sub(*v.ValueTime).Seconds(); v.AgeSeconds == nil || *v.AgeSeconds != want {
			t.Errorf("%s: age %v, want %v (from the wall clock)", v.ID, v.AgeSeconds, want)
		}
		if v.NextMilestone != nil && !v.NextMilestone.Start.After(goldenNow) {
			t.Errorf("%s: next milestone %+v", v.ID, v.NextMilestone)
		}
	}
	if !strings.Contains(body, `"period": "M12"`) {
		t.Errorf("the API's next milestone was computed at the wall clock:\n%s", body)
	}
}

// One KPI's answer always has history and description, [] and "" when
// empty, so clients need not guess whether a field was forgotten.
func TestKPIDetailAlwaysHasHistoryAndDescription(t *testing.T) {
	srv := statusServer(t)
	_, body := get(t, srv.URL+"/api/v1/kpis/stars") // no history in the fixture
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	if string(m["history"]) != "[]" || m["description"] == nil || m["milestones"] == nil {
		t.Errorf("history %s, description %s, milestones %s", m["history"], m["description"], m["milestones"])
	}
	_, body = get(t, srv.URL+"/api/v1/kpis/nps")
	var d struct{ History []PointView }
	json.Unmarshal([]byte(body), &d)
	if len(d.History) != 3 {
		t.Errorf("nps history: %s", body)
	}
}

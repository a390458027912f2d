package tools

import (
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
)

// chromium returns Debian's Chromium, or the one CHROMIUM names. The test
// fails, never skips, when there is none: `make test` installs it.
func chromium(t *testing.T) string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is needed for the browser test: run `make test` (it installs Debian's chromium) or set CHROMIUM")
	return ""
}

// PLAN is ten days before the test runs: Q1 is in force and ahead, the
// forecasts' horizon, whatever the date.
const browserCatalogue = `
calendar: {plan_start: PLAN, launch: PLAN}
sources:
  - {name: manual, type: file, interval: 1s, settings: {path: values.yaml}}
  - {name: gh, type: github, enabled: false}
kpis:
  - {id: nps, name: Net Promoter Score, domain: product_health, dashboard: product, owner: product, unit: score,
     direction: higher, source: {name: manual, measurement: nps}, targets: [{period: Q1, value: 50}]}
  - {id: review_time, name: Review Time, domain: engineering, dashboard: technical, owner: engineering, unit: seconds,
     direction: lower, source: {name: manual, measurement: review_seconds}, targets: [{period: Q1, value: 3600}]}
  - {id: coverage, name: Coverage, domain: engineering, dashboard: technical, owner: engineering, unit: ratio,
     direction: higher, source: {name: manual, measurement: coverage}, targets: [{period: Q1, value: 0.8}]}
  - {id: stars, name: GitHub Stars, domain: community, dashboard: community, owner: founders, unit: count,
     direction: higher, source: {name: gh, measurement: stars}, targets: [{period: Q1, value: 100}]}
`

// TestStatusPageInChromium drives headless Chromium against the running
// daemon: the scorecard's zone counts and one row per KPI, then a KPI's
// detail page with its chart; screenshots go to the test's temp dir.
func TestStatusPageInChromium(t *testing.T) {
	browser := chromium(t)
	dir := t.TempDir()
	bin := buildExporter(t, dir)
	plan := time.Now().UTC().AddDate(0, 0, -10).Format(time.DateOnly) // wallclock: the daemon runs on it
	os.WriteFile(filepath.Join(dir, "kpis.yaml"), []byte(strings.ReplaceAll(browserCatalogue, "PLAN", plan)), 0o644)
	// Two weeks of history: coverage climbing from 45 % to 60 % (green by
	// the end of Q1 at that pace), the others flat; stars none.
	seedHistory(t, filepath.Join(dir, "state"), map[string]func(f float64) float64{
		"nps":         func(float64) float64 { return 55 },
		"review_time": func(float64) float64 { return 5400 },
		"coverage":    func(f float64) float64 { return 0.45 + 0.15*f },
	})
	// nps 55/50 green, review 5400s against 3600s is 67 %: red, coverage
	// 0.6/0.8 = 75 %: yellow, stars unknown (its source is disabled).
	os.WriteFile(filepath.Join(dir, "values.yaml"), []byte("nps: 55\nreview_seconds: 5400\ncoverage: 0.6\n"), 0o644)
	addr := testproc.FreeAddr(t)
	_, logs := testproc.Start(t, dir, nil, bin, "--config=kpis.yaml", "--state-dir=state", "--web.listen-address="+addr)
	waitReady(t, addr, logs)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.UserDataDir(filepath.Join(dir, "chromium-profile")),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()

	base := "http://" + addr + "/"
	// The file source runs at start; wait until the scorecard has scored
	// the three file-backed KPIs.
	var counts map[string]string
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := chromedp.Do(ctx, chromedp.Navigate(base)); err != nil {
			t.Fatalf("loading %s: %v\n%s", base, err, logs)
		}
		nodes, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("#counts a[data-zone]")))
		if err != nil {
			t.Fatal(err)
		}
		counts = map[string]string{}
		for _, n := range nodes {
			counts[n.AttributeValue("data-zone")] = n.AttributeValue("data-count")
		}
		if counts["green"] == "1" || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	want := map[string]string{"green": "1", "yellow": "1", "red": "1", "unknown": "1"}
	for z, n := range want {
		if counts[z] != n {
			t.Errorf("zone count %s = %q, want %s (all: %v)", z, counts[z], n, counts)
		}
	}
	rows, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("tr.kpi")))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range rows {
		ids[r.AttributeValue("data-kpi")] = r.AttributeValue("data-zone")
	}
	if len(rows) != 4 || ids["nps"] != "green" || ids["review_time"] != "red" || ids["coverage"] != "yellow" || ids["stars"] != "unknown" {
		t.Errorf("%d rows: %v", len(rows), ids)
	}
	writeShot(t, "status.png", shot)

	// The Forecast column: coverage green at the end of Q1, with the day
	// it turns green; review time red there; stars without one ("–").
	cells, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("tr.kpi td.forecast")))
	if err != nil || len(cells) != 4 {
		t.Fatalf("%d forecast cells (%v)", len(cells), err)
	}
	if header, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`thead`))); err != nil || !strings.Contains(header, "Forecast") {
		t.Errorf("the scorecard's header %q has no Forecast column (%v)", header, err)
	}
	forecast := map[string]string{}
	for _, id := range []string{"nps", "review_time", "coverage", "stars"} {
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`tr[data-kpi="`+id+`"] td.forecast`)))
		if err != nil {
			t.Fatal(err)
		}
		forecast[id] = strings.Join(strings.Fields(text), " ")
	}
	zoneOf := func(id string) string {
		n, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSS(`tr[data-kpi="`+id+`"] td.forecast`)))
		if err != nil || len(n) == 0 {
			return "?"
		}
		return n[0].AttributeValue("data-forecast-zone")
	}
	if zoneOf("coverage") != "green" || !strings.Contains(forecast["coverage"], "100% green Q1 · green 20") {
		t.Errorf("coverage's forecast: %q (zone %s)", forecast["coverage"], zoneOf("coverage"))
	}
	if zoneOf("review_time") != "red" || !strings.Contains(forecast["review_time"], "1h30m red Q1") || strings.Contains(forecast["review_time"], "· green") {
		t.Errorf("review time's forecast: %q (zone %s)", forecast["review_time"], zoneOf("review_time"))
	}
	if forecast["stars"] != "–" || zoneOf("stars") != "" {
		t.Errorf("stars' forecast: %q", forecast["stars"])
	}

	// Filter by zone through the form, as a person would.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`select[name="zone"]`), "red"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	// While the form's page loads, a query can meet the old page going
	// ("Inspected target navigated or closed"): ask again until the new
	// one is there.
	var filtered []*chromedp.Node
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && strings.Contains(loc, "zone=red") {
			if err = chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(`#counts`))); err == nil {
				if filtered, err = chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("tr.kpi"))); err == nil {
					break
				}
			}
		}
		if time.Now().After(end) {
			t.Fatalf("the filtered page (%s): %v", loc, err)
		}
	}
	if len(filtered) != 1 || filtered[0].AttributeValue("data-kpi") != "review_time" {
		t.Errorf("zone=red shows %d rows", len(filtered))
	}

	// One KPI's detail page and its chart.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(base),
		chromedp.Click(chromedp.CSS(`tr[data-kpi="coverage"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`svg.chart`)),
	); err != nil {
		t.Fatalf("detail page: %v", err)
	}
	points, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`svg.chart polyline.value`), "points"))
	if err != nil || points.Value == "" {
		t.Errorf("the chart has no value line (%v)", err)
	}
	// The projection: a dotted line from the last value to the horizon at
	// the chart's right edge, drawn over its shaded interval.
	fc, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`svg.chart polyline.forecast`), "points"))
	if err != nil {
		t.Fatalf("the chart has no forecast (%v)", err)
	}
	// It starts at the latest value's time, at the line's level there
	// (within a few pixels of the value itself).
	vpts, fpts := strings.Fields(points.Value), strings.Fields(fc.Value)
	xy := func(p string) (x, y float64) {
		a, b, _ := strings.Cut(p, ",")
		x, _ = strconv.ParseFloat(a, 64)
		y, _ = strconv.ParseFloat(b, 64)
		return x, y
	}
	if len(fpts) != 25 || len(vpts) == 0 {
		t.Fatalf("forecast %v, value %v", fpts, vpts)
	}
	fx, fy := xy(fpts[0])
	vx, vy := xy(vpts[len(vpts)-1])
	ex, ey := xy(fpts[24])
	if fx != vx || math.Abs(fy-vy) > 3 || ex != 708 || !(ey < fy) {
		t.Errorf("forecast %v does not run from the last value %v up to the horizon", fpts, vpts[len(vpts)-1:])
	}
	bandWidth, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("svg.chart polygon.forecast-band").getBoundingClientRect().width`))
	if err != nil || bandWidth < 50 {
		t.Errorf("the forecast's interval is %v px wide (%v)", bandWidth, err)
	}
	if statement, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#forecast`))); err != nil || !strings.Contains(statement, "at the end of Q1") {
		t.Errorf("the page states %q (%v)", statement, err)
	}
	chartWidth, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("svg.chart").getBoundingClientRect().width`))
	if err != nil || chartWidth < 300 {
		t.Errorf("chart is %v px wide (%v)", chartWidth, err)
	}
	if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	writeShot(t, "kpi-coverage.png", shot)

	// Readable on a phone: the page fits a 390 px wide screen.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base)); err != nil {
		t.Fatal(err)
	}
	scrollWidth, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
	if err != nil || scrollWidth > 390 {
		t.Errorf("on a 390 px screen the page is %v px wide (%v)", scrollWidth, err)
	}
	if shot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		t.Fatal(err)
	}
	writeShot(t, "status-phone.png", shot)
}

func writeShot(t *testing.T, name string, png []byte) {
	t.Helper()
	if len(png) == 0 {
		t.Errorf("empty screenshot %s", name)
		return
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s (%d bytes)", path, len(png))
	// SCREENSHOT_DIR keeps a copy for people (CI artefacts, reviews).
	if keep := os.Getenv("SCREENSHOT_DIR"); keep != "" {
		if err := os.WriteFile(filepath.Join(keep, name), png, 0o644); err != nil {
			t.Error(err)
		}
	}
}

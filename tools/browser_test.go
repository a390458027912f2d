package tools

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

const browserCatalogue = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
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
	os.WriteFile(filepath.Join(dir, "kpis.yaml"), []byte(browserCatalogue), 0o644)
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

	// Filter by zone through the form, as a person would.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`select[name="zone"]`), "red"),
		chromedp.Click(chromedp.CSS(`form button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	for loc := ""; !strings.Contains(loc, "zone=red"); time.Sleep(50 * time.Millisecond) {
		if loc, err = chromedp.Run(ctx, chromedp.Location()); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(`#counts`))); err != nil {
		t.Fatal(err)
	}
	filtered, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.CSSAll("tr.kpi")))
	if err != nil {
		t.Fatal(err)
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

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
	"github.com/bakhmach-hub/kpi_exporter/store"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kpi_exporter-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "kpi_exporter")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building kpi_exporter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

type daemon struct {
	cmd  *exec.Cmd
	addr string
	logs *testproc.Output
}

// startDaemon runs the built binary in dir with env and waits until it
// answers /-/ready.
func startDaemon(t testing.TB, dir string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{addr: testproc.FreeAddr(t)}
	d.cmd, d.logs = testproc.Start(t, dir, append([]string{"KPI_LISTEN_ADDRESS=" + d.addr}, env...), binary, args...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + d.addr + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon not ready: %v\n%s", err, d.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *daemon) get(t testing.TB, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + d.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (d *daemon) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	d.cmd.Process.Signal(sig)
	d.cmd.Wait()
}

// waitMetric polls /metrics until it contains want.
func (d *daemon) waitMetric(t *testing.T, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		body := d.get(t, "/metrics")
		if strings.Contains(body, want) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics never showed %q\nlogs:\n%s", want, d.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDefaultCatalogueServedWithin2s(t *testing.T) {
	c, err := kpi.Parse("embedded", examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	d := startDaemon(t, repoRoot(t), []string{"KPI_STATE_DIR=" + t.TempDir()})
	body := d.get(t, "/metrics")
	elapsed := time.Since(begin)
	for _, k := range c.KPIs {
		if !strings.Contains(body, fmt.Sprintf(`kpi_definition_info{dashboard="%s",direction="%s",domain="%s",kpi="%s"`, k.Dashboard, k.Direction, k.Domain, k.ID)) {
			t.Errorf("KPI %s is not on /metrics", k.ID)
		}
	}
	if elapsed > 2*time.Second {
		t.Errorf("every KPI on /metrics took %s, want ≤ 2s", elapsed)
	}
	t.Logf("%d KPIs on /metrics %s after start", len(c.KPIs), elapsed.Round(time.Millisecond))
	// The file source of the embedded catalogue reads examples/values.yaml.
	d.waitMetric(t, `kpi_value{domain="workflow",kpi="net_promoter_score"} 58`)
}

func promtool(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	if p := filepath.Join(repoRoot(t), "bin", "promtool"); fileExists(p) {
		return p
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is needed: run `make tools` (or set PROMTOOL)")
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestPromtoolCheckMetricsOnRealOutput(t *testing.T) {
	pt := promtool(t)
	d := startDaemon(t, repoRoot(t), []string{"KPI_STATE_DIR=" + t.TempDir()})
	body := d.waitMetric(t, `kpi_file_net_promoter_score{source="manual"} 58`)
	cmd := exec.Command(pt, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	req, _ := http.NewRequest("GET", "http://"+d.addr+"/metrics", nil)
	req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/openmetrics-text") || !strings.HasSuffix(string(b), "# EOF\n") {
		t.Errorf("OpenMetrics was not served: %s", resp.Header.Get("Content-Type"))
	}
}

const restartCatalogue = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: manual, type: file, interval: 50ms, settings: {path: values.yaml}}
kpis:
  - id: nps
    name: Net Promoter Score
    domain: workflow
    dashboard: product
    unit: score
    direction: higher
    source: {name: manual, measurement: nps}
    targets: [{period: Q1, value: 50}]
    max_age: 1h
`

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRestartServesLastValuesBeforeAnySourceRuns(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), restartCatalogue)
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 47\n")
	env := []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state", "KPI_STATE_SAVE_INTERVAL=20ms"}

	d := startDaemon(t, dir, env)
	d.waitMetric(t, `kpi_value{domain="workflow",kpi="nps"} 47`)
	// Wait for the value to reach the state file, then kill -9.
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := store.Open(filepath.Join(dir, "state"))
		if err == nil && len(st.Inputs().Readings["manual"].Measurements) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("state never saved")
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.stop(t, syscall.SIGKILL)

	// Without its file the source can only fail: what is served comes from
	// the state directory.
	os.Remove(filepath.Join(dir, "values.yaml"))
	d = startDaemon(t, dir, env)
	body := d.get(t, "/metrics")
	if !strings.Contains(body, `kpi_value{domain="workflow",kpi="nps"} 47`) {
		t.Fatalf("after restart the last value is not served at once:\n%s", grep(body, "nps"))
	}
	if !strings.Contains(body, `kpi_zone{domain="workflow",kpi="nps",kpi_zone="yellow"} 0`) ||
		!strings.Contains(body, `kpi_zone{domain="workflow",kpi="nps",kpi_zone="green"} 1`) {
		t.Errorf("zone after restart:\n%s", grep(body, "kpi_zone"))
	}
	d.waitMetric(t, `kpi_collector_success{collector="manual"} 0`)
	if body := d.get(t, "/metrics"); !strings.Contains(body, `kpi_value{domain="workflow",kpi="nps"} 47`) {
		t.Error("the failing source lost the restored value")
	}

	// SIGTERM flushes state; the next start still has it.
	d.stop(t, syscall.SIGTERM)
	if !strings.Contains(d.logs.String(), "stopped; state saved") {
		t.Errorf("no clean shutdown:\n%s", d.logs)
	}
	d = startDaemon(t, dir, env)
	if body := d.get(t, "/metrics"); !strings.Contains(body, `kpi_value{domain="workflow",kpi="nps"} 47`) {
		t.Error("value lost after SIGTERM and restart")
	}
}

func grep(s, sub string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), sub) {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestKillWhileWritingState kills the daemon with SIGKILL at random moments
// while it rewrites a large state file many times a second, and checks that
// every restart finds a readable state.
func TestKillWhileWritingState(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), strings.Replace(restartCatalogue, "interval: 50ms", "interval: 5ms", 1))
	var values strings.Builder
	values.WriteString("nps: 47\nbulk:\n")
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&values, "  - {value: %d, labels: {i: \"%d\"}}\n", i, i)
	}
	writeFile(t, filepath.Join(dir, "values.yaml"), values.String())
	env := []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state", "KPI_STATE_SAVE_INTERVAL=1ms"}
	for i := 0; i < 6; i++ {
		d := startDaemon(t, dir, env)
		if i > 0 && strings.Contains(d.logs.String(), "corrupt") {
			t.Fatalf("restart %d found a corrupt state:\n%s", i, d.logs)
		}
		d.waitMetric(t, `kpi_value{domain="workflow",kpi="nps"} 47`)
		// Touch the file so the source re-reads and the state changes.
		now := time.Now()
		os.Chtimes(filepath.Join(dir, "values.yaml"), now, now)
		time.Sleep(time.Duration(20+rand.IntN(80)) * time.Millisecond)
		d.stop(t, syscall.SIGKILL)
		if _, err := store.Open(filepath.Join(dir, "state")); err != nil {
			t.Fatalf("kill %d: state unreadable: %v", i, err)
		}
	}
}

func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), restartCatalogue)
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 47\n")
	d := startDaemon(t, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state"})
	d.waitMetric(t, `kpi_target{domain="workflow",kpi="nps"} 50`)

	writeFile(t, filepath.Join(dir, "kpis.yaml"), strings.Replace(restartCatalogue, "value: 50}", "value: 60}", 1)+"    bogus: 1\n")
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitMetric(t, "kpi_config_last_reload_successful 0")
	if body := d.get(t, "/metrics"); !strings.Contains(body, `kpi_target{domain="workflow",kpi="nps"} 50`) {
		t.Error("a bad catalogue replaced the running one")
	}
	writeFile(t, filepath.Join(dir, "kpis.yaml"), strings.Replace(restartCatalogue, "value: 50}", "value: 60}", 1))
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitMetric(t, `kpi_target{domain="workflow",kpi="nps"} 60`)
	d.waitMetric(t, "kpi_config_last_reload_successful 1")
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, restartCatalogue)
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "--config", good}, &out, &errOut); code != 0 {
		t.Fatalf("check of a good catalogue: %d %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "OK: 1 KPIs, 1 sources (1 enabled)") {
		t.Errorf("check output: %s", out.String())
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, strings.Replace(restartCatalogue, "direction: higher", "direction: upwards", 1))
	out.Reset()
	errOut.Reset()
	if code := run([]string{"check", "--config", bad}, &out, &errOut); code != 1 {
		t.Fatalf("check of a bad catalogue exited %d", code)
	}
	if want := bad + `:11:16: direction "upwards" is not higher or lower`; strings.TrimSpace(errOut.String()) != want {
		t.Errorf("check error:\n got %s\nwant %s", errOut.String(), want)
	}
	badSettings := filepath.Join(dir, "bad-settings.yaml")
	writeFile(t, badSettings, strings.Replace(restartCatalogue, "settings: {path: values.yaml}", "settings: {file: values.yaml}", 1))
	errOut.Reset()
	if code := run([]string{"check", "--config", badSettings}, &out, &errOut); code != 1 ||
		strings.TrimSpace(errOut.String()) != badSettings+`:4:59: unknown field "file"` {
		t.Errorf("check of bad source settings: %d %s", code, errOut.String())
	}
	out.Reset()
	t.Setenv("KPI_PRODUCT_DB_DSN", "")
	if code := run([]string{"check"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "embedded default catalogue: OK: 91 KPIs, 10 sources (2 enabled)") ||
		!strings.Contains(out.String(), "waiting for their environment variable (their KPIs read their fallback, or unknown): product_db (when KPI_PRODUCT_DB_DSN is set)") {
		t.Errorf("check of the embedded catalogue: %d %s", code, out.String())
	}
	// With the DSN set, product_db is enabled (check does not connect).
	t.Setenv("KPI_PRODUCT_DB_DSN", "postgres://kpi@db.invalid/product")
	out.Reset()
	if code := run([]string{"check"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "10 sources (3 enabled)") || strings.Contains(out.String(), "product_db") {
		t.Errorf("check with the DSN: %d %s", code, out.String())
	}
}

func TestOnceFailOnRed(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "kpis.yaml")
	writeFile(t, cat, restartCatalogue)
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 30\n") // 30/50 = 60 %: red
	var out, errOut bytes.Buffer
	args := []string{"once", "--config", cat, "--state-dir", "", "--log.level", "error"}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("once without --fail-on exited %d: %s", code, errOut.String())
	}
	if !regexp.MustCompile(`workflow\s+Net Promoter Score\s+30\s+50\s+60%\s+red`).MatchString(out.String()) {
		t.Errorf("scorecard table:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "1 KPIs: 0 green, 0 yellow, 1 red, 0 unknown") {
		t.Errorf("summary:\n%s", out.String())
	}
	out.Reset()
	if code := run(append(args, "--fail-on", "red"), &out, &errOut); code != 1 {
		t.Errorf("once --fail-on red with a red KPI exited %d", code)
	}
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 40\n") // 80 %: yellow
	out.Reset()
	if code := run(append(args, "--fail-on", "red"), &out, &errOut); code != 0 {
		t.Errorf("once --fail-on red with no red KPI exited %d", code)
	}
	if code := run(append(args, "--fail-on", "yellow"), &out, &errOut); code != 1 {
		t.Errorf("once --fail-on yellow with a yellow KPI exited %d", code)
	}
	if code := run([]string{"once", "--fail-on", "purple"}, &out, &errOut); code != 2 {
		t.Errorf("a bad flag value exited %d", code)
	}
}

// TestReportCommand prints the month report from a state directory the
// daemon's store wrote, and checks that the state is only read.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "kpis.yaml")
	writeFile(t, cat, restartCatalogue)
	stateDir := filepath.Join(dir, "state")
	st, err := store.Open(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		at string
		v  float64
	}{{"2026-09-20T10:00:00Z", 40}, {"2026-10-02T10:00:00Z", 30}, {"2026-10-30T10:00:00Z", 45}, {"2026-11-02T10:00:00Z", 10}} {
		at, _ := time.Parse(time.RFC3339, p.at)
		st.Record("nps", kpi.Point{T: at, V: p.v})
	}
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(stateDir, store.FileName))

	var out, errOut bytes.Buffer
	args := []string{"report", "--config", cat, "--state-dir", stateDir, "--period", "month", "--at", "2026-10-15"}
	if code := run(args, &out, &errOut); code != 0 {
		t.Fatalf("report exited %d: %s", code, errOut.String())
	}
	// October's last value 45 against 50 is 90 %: green; +5 on September's 40.
	for _, want := range []string{"# Monthly business review: October 2026", "**Summary:** 1 green · 0 yellow · 0 red · 0 unknown",
		"## Workflow", "| Net Promoter Score | 45 | 50 | 90% | green | +5 (+12.5%), better |"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(append(args, "--format", "html"), &out, &errOut); code != 0 || !strings.Contains(out.String(), "<td>Net Promoter Score</td><td class=\"n\">45</td>") {
		t.Errorf("html report (exit %d):\n%s", code, out.String())
	}
	if after, _ := os.ReadFile(filepath.Join(stateDir, store.FileName)); !bytes.Equal(before, after) {
		t.Error("report changed the state file")
	}
	for _, bad := range [][]string{
		{"report", "--config", cat, "--state-dir", ""},
		{"report", "--config", cat, "--state-dir", stateDir, "--at", "last tuesday"},
		{"report", "--config", cat, "--state-dir", stateDir, "--period", "fortnight"},
	} {
		errOut.Reset()
		if code := run(bad, &out, &errOut); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v exited %d: %s", bad, code, errOut.String())
		}
	}
}

// TestWebConfigBasicAuth checks that the exporter-toolkit web config puts
// basic auth in front of every endpoint.
func TestWebConfigBasicAuth(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "web.yml"), "basic_auth_users:\n  prom: "+string(hash)+"\n")
	writeFile(t, filepath.Join(dir, "kpis.yaml"), restartCatalogue)
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 47\n")
	addr := testproc.FreeAddr(t)
	_, logs := testproc.Start(t, dir, []string{"KPI_LISTEN_ADDRESS=" + addr, "KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state"},
		binary, "--web.config.file=web.yml")

	do := func(path, user, pass string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(10 * time.Second)
	for do("/-/ready", "prom", "s3cret-pass") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("daemon with web config never became ready:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, path := range []string{"/metrics", "/", "/-/healthy", "/-/ready"} {
		if code := do(path, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d", path, code)
		}
		if code := do(path, "prom", "wrong"); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password: %d", path, code)
		}
		if code := do(path, "prom", "s3cret-pass"); code != http.StatusOK {
			t.Errorf("%s with credentials: %d", path, code)
		}
	}
	if strings.Contains(logs.String(), "s3cret-pass") || strings.Contains(logs.String(), string(hash)) {
		t.Error("a secret reached the logs")
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "--config", filepath.Join(dir, "kpis.yaml"), "--web.config.file", filepath.Join(dir, "web.yml")}, &out, &errOut); code != 0 {
		t.Errorf("check with a good web config: %d %s", code, errOut.String())
	}
	writeFile(t, filepath.Join(dir, "bad-web.yml"), "basic_auth_users: [\n")
	if code := run([]string{"check", "--config", filepath.Join(dir, "kpis.yaml"), "--web.config.file", filepath.Join(dir, "bad-web.yml")}, &out, &errOut); code != 1 {
		t.Errorf("check with a bad web config exited %d", code)
	}
}

// TestREADMEDocumentsEveryMetricAndKPI is the doc check: every metric family
// the daemon serves, and every KPI of the default catalogue, is in the README.
func TestREADMEDocumentsEveryMetricAndKPI(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	d := startDaemon(t, repoRoot(t), []string{"KPI_STATE_DIR=" + t.TempDir()})
	body := d.waitMetric(t, `kpi_collector_success{collector="manual"} 1`)
	families := regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(body, -1)
	if len(families) < 20 {
		t.Fatalf("only %d families on /metrics", len(families))
	}
	for _, f := range families {
		name := f[1]
		switch {
		case strings.HasPrefix(name, "go_"), strings.HasPrefix(name, "process_"):
			continue // documented as go_* and process_*
		case strings.HasPrefix(name, "kpi_file_"), strings.HasPrefix(name, "kpi_derived_"):
			continue // documented as kpi_<type>_<measurement>
		}
		if !strings.Contains(doc, "`"+name+"`") {
			t.Errorf("metric %s is not documented in README.md", name)
		}
	}
	// Families a fresh daemon does not serve yet (a forecast needs days of
	// history) are checked in the code that declares them.
	declared := regexp.MustCompile(`(?:NewDesc\(|Name: +)"(kpi_[a-z0-9_]+)"`)
	for _, dir := range []string{"exporter", "app"} {
		files, _ := filepath.Glob(filepath.Join(repoRoot(t), dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range declared.FindAllStringSubmatch(string(src), -1) {
				if !strings.Contains(doc, "`"+m[1]+"`") {
					t.Errorf("metric %s (declared in %s) is not documented in README.md", m[1], filepath.Base(f))
				}
			}
		}
	}
	c, err := kpi.Parse("embedded", examples.Catalogue, kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range c.KPIs {
		if !strings.Contains(doc, "| `"+k.ID+"` |") {
			t.Errorf("KPI %s is not in README.md's table of the default catalogue", k.ID)
		}
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p := progressBar(&b)
	p("github", 3, 12, "300 items")
	p("github", 12, 12, "1200 items")
	want := "\rgithub [#######                       ] 3/12 repositories, 300 items" +
		"\rgithub [##############################] 12/12 repositories, 1200 items\n"
	if b.String() != want {
		t.Errorf("progress bar:\n%q\nwant\n%q", b.String(), want)
	}
	if isTerminal(&b) {
		t.Error("a buffer is no terminal")
	}
}

// A SIGHUP that arrives while the daemon starts (here a burst from its
// first log line, through loading a large state) must not end it (Go's
// default for SIGHUP is to exit 129); the reload it asks for runs once
// start-up is done. (Before serve runs at all the process is still the
// runtime's, as with any Go program.)
func TestSIGHUPDuringStartUp(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), restartCatalogue)
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 47\n")
	// A state file of a few MB, so that loading it takes a while.
	var b strings.Builder
	b.WriteString(`{"version":1,"readings":{},"history":{`)
	for k := 0; k < 40; k++ {
		if k > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"k%d":[`, k)
		for i := 0; i < 5000; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "[%d,%d.5]", 1700000000000+int64(i)*3600000, i)
		}
		b.WriteString("]")
	}
	b.WriteString("}}")
	os.MkdirAll(filepath.Join(dir, "state"), 0o750)
	writeFile(t, filepath.Join(dir, "state", "state.json"), b.String())
	addr := testproc.FreeAddr(t)
	cmd, logs := testproc.Start(t, dir, []string{"KPI_LISTEN_ADDRESS=" + addr, "KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state"}, binary)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for !strings.Contains(logs.String(), "starting kpi_exporter") {
		select {
		case err := <-exited:
			t.Fatalf("the daemon ended: %v\n%s", err, logs)
		default:
		}
		time.Sleep(100 * time.Microsecond)
	}
	for i := 0; i < 200; i++ {
		cmd.Process.Signal(syscall.SIGHUP)
		select {
		case err := <-exited:
			t.Fatalf("a SIGHUP during start-up ended the daemon: %v\n%s", err, logs)
		default:
		}
		time.Sleep(time.Millisecond)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("the daemon ended: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	deadline = time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "catalogue reloaded on SIGHUP") {
		if time.Now().After(deadline) {
			t.Fatalf("the reload asked for during start-up never ran:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	<-exited
}

// "stopped; state saved" is said only when the state was saved: with the
// state directory made read-only while running, the daemon says the state
// could not be saved and exits 1.
func TestStopSaysWhetherStateWasSaved(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), restartCatalogue)
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 47\n")
	d := startDaemon(t, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state"})
	d.waitMetric(t, `kpi_value{domain="workflow",kpi="nps"} 47`)
	// Replace the state directory by a file: every save fails, for root too.
	if err := os.RemoveAll(filepath.Join(dir, "state")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "state"), "not a directory")
	d.cmd.Process.Signal(syscall.SIGTERM)
	err := d.cmd.Wait()
	logs := d.logs.String()
	if strings.Contains(logs, "stopped; state saved") || !strings.Contains(logs, "could NOT be saved") {
		t.Errorf("the log claims a save that failed:\n%s", logs)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("exit %v, want 1", err)
	}
}

// An upstream that echoes the request's headers in its error body must not
// put the token into the logs, the status page or the JSON API: every
// configured secret is masked there, and the body is cut.
func TestEchoedTokenNeverShown(t *testing.T) {
	const secret = "prom-bearer-SECRET-0123456789"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"status":"error","errorType":"bad_data","error":"rejected request with headers Authorization=%s %s"}`,
			r.Header.Get("Authorization"), strings.Repeat("padding ", 1000))
	}))
	defer echo.Close()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "token"), secret+"\n")
	writeFile(t, filepath.Join(dir, "kpis.yaml"), `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - name: prom
    type: prometheus
    interval: 1s
    settings:
      url: `+echo.URL+`
      bearer_token_file: token
      queries: [{name: up_ratio, query: avg(up)}]
kpis:
  - {id: up, name: Up, domain: platform, dashboard: technical, unit: ratio, direction: higher,
     source: {name: prom, measurement: up_ratio}, targets: [{period: Q1, value: 0.99}]}
`)
	d := startDaemon(t, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state"})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(d.get(t, "/api/v1/kpis"), "rejected request") {
		if time.Now().After(deadline) {
			t.Fatalf("the source never failed:\n%s", d.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	api, page := d.get(t, "/api/v1/kpis"), d.get(t, "/")
	for where, text := range map[string]string{"logs": d.logs.String(), "JSON API": api, "status page": page} {
		if strings.Contains(text, secret) {
			t.Errorf("the token is in the %s", where)
		}
		if strings.Count(text, "padding") > 200 {
			t.Errorf("the upstream body is shown whole in the %s", where)
		}
	}
	if !strings.Contains(api, "&lt;secret&gt;") && !strings.Contains(api, `\u003csecret\u003e`) && !strings.Contains(api, "<secret>") {
		t.Errorf("the mask is not shown in the API:\n%s", api)
	}
}

// report on a state directory that does not exist is an error (a wrong
// path), not a report of unknowns; check counts push sources as enabled.
func TestReportMissingStateAndCheckCountsPush(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), pushDaemonCatalogue)
	var out, errOut bytes.Buffer
	code := run([]string{"report", "--config", filepath.Join(dir, "kpis.yaml"), "--state-dir", filepath.Join(dir, "no-such-dir")}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "no-such-dir") || out.Len() != 0 {
		t.Errorf("report on a missing state dir: exit %d, %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"check", "--config", filepath.Join(dir, "kpis.yaml")}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "1 sources (1 enabled)") {
		t.Errorf("check: %d %q", code, out.String())
	}
}

// Idle keep-alive connections are closed (KPI_WEB_IDLE_TIMEOUT), and a
// request body that does not arrive in time ends the request
// (KPI_WEB_READ_TIMEOUT): a client cannot hold a connection for ever.
func TestIdleAndSlowConnectionsTimeOut(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), restartCatalogue)
	writeFile(t, filepath.Join(dir, "values.yaml"), "nps: 47\n")
	d := startDaemon(t, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state", "KPI_WEB_IDLE_TIMEOUT=1s", "KPI_WEB_READ_TIMEOUT=1s"})
	conn, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 4096)
	if n, err := conn.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "200 OK") {
		t.Fatalf("first request: %v %q", err, buf[:n])
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(buf); err == nil {
		t.Error("an idle keep-alive connection stayed open")
	} else if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Error("an idle keep-alive connection was not closed within 5 s")
	}
	// A body announced and never sent.
	slow, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	begin := time.Now()
	for {
		if _, err := slow.Read(buf); err != nil {
			if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
				t.Error("a request whose body never arrived held its connection for 5 s")
			}
			break
		}
	}
	if time.Since(begin) > 4*time.Second {
		t.Errorf("the slow request took %s to end", time.Since(begin))
	}
}

package coverage

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/internal/bindingtest"
	"github.com/bakhmach-hub/kpi_exporter/internal/fakegithub"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func newFromYAML(t *testing.T, dir, settings string) (collectors.Collector, error) {
	t.Helper()
	y := "sources:\n  - name: cov\n    type: coverage\n    settings:\n" + settings
	c, err := kpi.Parse(filepath.Join(dir, "kpis.yaml"), []byte(y), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return New(c.Sources[0], collectors.Env{BaseDir: dir})
}

func vals(ms []kpi.Measurement) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		out[m.Name+m.Labels.String()] = m.Value
	}
	return out
}

func TestFilesAreMergedIntoOneReport(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "cov"), 0o755)
	os.WriteFile(filepath.Join(dir, "cov", "unit.info"), []byte("SF:/ci/src/a.c\nDA:1,1\nDA:2,0\nend_of_record\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "cov", "e2e.info"), []byte("SF:src/a.c\nDA:2,5\nDA:3,0\nend_of_record\n"), 0o644)
	c, err := newFromYAML(t, dir, "      reports:\n        - name: backend\n          strip_prefix: [/ci/]\n          inputs:\n            - path: cov/*.info\n")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := vals(ms)
	// Lines 1 2 3 of src/a.c: 1 and 2 hit.
	for k, want := range map[string]float64{
		`lines_covered{report="backend"}`: 2, `lines_total{report="backend"}`: 3, `lines_ratio{report="backend"}`: 2.0 / 3,
		`codecov_hits{report="backend"}`: 2, `codecov_misses{report="backend"}`: 1, `header_mismatch{report="backend"}`: 0,
		`parse_errors_total{report="backend"}`: 0,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
}

func TestMalformedReportKeepsLastGoodNumbers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.info")
	os.WriteFile(path, []byte("SF:a.c\nDA:1,1\nend_of_record\n"), 0o644)
	c, err := newFromYAML(t, dir, "      reports:\n        - name: r\n          inputs: [{path: c.info}]\n")
	if err != nil {
		t.Fatal(err)
	}
	first, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	goodAt := first[1].Time
	later := time.Now().Add(time.Second)
	os.WriteFile(path, []byte("SF:a.c\nDA:1,1\nDA:oops\nend_of_record\n"), 0o644)
	os.Chtimes(path, later, later)
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := vals(ms)
	if got[`lines_ratio{report="r"}`] != 1 || got[`parse_errors_total{report="r"}`] != 1 {
		t.Errorf("after a malformed report: %v", got)
	}
	for _, m := range ms {
		if m.Name == "lines_ratio" && !m.Time.Equal(goodAt) {
			t.Errorf("the kept numbers must keep their time (%v), not %v", goodAt, m.Time)
		}
	}
}

func TestSettingsErrors(t *testing.T) {
	dir := t.TempDir()
	for settings, want := range map[string]string{
		"      reports: []\n": `source "cov" (type coverage) needs reports`,
		"      reports:\n        - name: r\n          format: xml\n          inputs: [{path: a}]\n":                     `format "xml" is not one of [lcov cobertura jacoco go clover]`,
		"      reports:\n        - name: r\n          inputs: [{path: a, url: http://x}]\n":                             `an input is exactly one of path, url or artifact`,
		"      reports:\n        - name: r\n          inputs: [{artifact: {repo: a/b, workflow: ci.yml, name: cov}}]\n": `artifact inputs need the github settings (token_env, token_file or app)`,
		"      reports:\n        - name: r\n          inputs: [{url: ftp://x}]\n":                                       `url "ftp://x" is not http(s)`,
	} {
		_, err := newFromYAML(t, dir, settings)
		if err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%q:\n got %v\nwant …%s", settings, err, want)
		}
	}
}

func TestURLInputWithTokenAndETag(t *testing.T) {
	body := "SF:a.c\nDA:1,1\nDA:2,1\nend_of_record\n"
	var auth string
	var served, notModified int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if r.Header.Get("If-None-Match") == `"v1"` {
			notModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		served++
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte(body))
	}))
	defer srv.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tok"), []byte("s3cret\n"), 0o600)
	c, err := newFromYAML(t, dir, "      reports:\n        - name: r\n          inputs:\n            - url: "+srv.URL+"/cov.info?x=1\n              bearer_token_file: "+filepath.Join(dir, "tok")+"\n")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		ms, err := c.Collect(context.Background())
		if err != nil || vals(ms)[`lines_ratio{report="r"}`] != 1 {
			t.Fatalf("run %d: %v %v", i, err, vals(ms))
		}
	}
	if auth != "Bearer s3cret" || served != 1 || notModified != 1 {
		t.Errorf("auth %q, served %d, 304s %d", auth, served, notModified)
	}
}

func zipOf(t *testing.T, files map[string]string) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, body := range files {
		w, _ := zw.Create(name)
		w.Write([]byte(body))
	}
	zw.Close()
	return b.Bytes()
}

func TestArtifactInput(t *testing.T) {
	f := fakegithub.Start(t)
	now := time.Now()
	repo := &fakegithub.Repo{Owner: "acme", Name: "api",
		Workflows: []*fakegithub.Workflow{{ID: 1, Name: "CI", Path: ".github/workflows/ci.yml"}},
		Runs: []*fakegithub.WorkflowRun{
			{ID: 10, WorkflowID: 1, Branch: "main", Status: "completed", Conclusion: "success", Created: now.Add(-3 * time.Hour), Started: now.Add(-3 * time.Hour), Updated: now.Add(-2 * time.Hour)},
			{ID: 11, WorkflowID: 1, Branch: "main", Status: "completed", Conclusion: "success", Created: now.Add(-time.Hour), Started: now.Add(-time.Hour), Updated: now.Add(-30 * time.Minute)},
			{ID: 12, WorkflowID: 1, Branch: "feature", Status: "completed", Conclusion: "success", Created: now, Started: now, Updated: now},
		},
		Artifacts: []*fakegithub.Artifact{
			{ID: 100, RunID: 10, Name: "coverage", Zip: zipOf(t, map[string]string{"lcov.info": "SF:a.c\nDA:1,0\nend_of_record\n"})},
			{ID: 101, RunID: 11, Name: "coverage", Zip: zipOf(t, map[string]string{
				"lcov.info":  "SF:a.c\nDA:1,1\nDA:2,0\nend_of_record\n",
				"go/c.out":   "mode: set\nexample.com/m/x.go:1.1,3.2 2 1\n",
				"index.html": "<html><body>report</body></html>",
			})},
			{ID: 102, RunID: 12, Name: "coverage", Zip: zipOf(t, map[string]string{"lcov.info": "SF:a.c\nDA:1,1\nDA:2,1\nend_of_record\n"})},
		}}
	f.Update(func() { f.Repos = []*fakegithub.Repo{repo} })
	os.Setenv("COV_GH_TOKEN", "ghp_x")
	dir := t.TempDir()
	c, err := newFromYAML(t, dir, "      github: {token_env: COV_GH_TOKEN, base_url: \""+f.URL+"/\"}\n      reports:\n        - name: ci\n          inputs:\n            - artifact: {repo: acme/api, workflow: ci.yml, name: coverage}\n")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := vals(ms)
	// The newest default-branch run's artifact (101): lines 1 of 2 from
	// LCOV, statements 2 of 2 from the Go profile; the HTML file is skipped.
	if got[`statements_covered{report="ci"}`] != 2 || got[`statements_total{report="ci"}`] != 2 {
		t.Errorf("statements from the Go profile: %v", got)
	}
	// Lines come from LCOV only (a.c lines 1, hit, and 2): a Go profile has
	// statements, not lines.
	if got[`lines_covered{report="ci"}`] != 1 || got[`lines_total{report="ci"}`] != 2 {
		t.Errorf("lines %v of %v, want 1 of 2", got[`lines_covered{report="ci"}`], got[`lines_total{report="ci"}`])
	}
	// A second run with the same newest artifact downloads nothing.
	f.ResetStats()
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs, _ := f.Stats()
	if reqs["rest 302"] != 0 {
		t.Errorf("an unchanged artifact was downloaded again: %v", reqs)
	}
}

func TestDefaultCatalogueBindings(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "c.info"), []byte("SF:a.c\nDA:1,1\nend_of_record\n"), 0o644)
	c, err := newFromYAML(t, dir, "      reports:\n        - name: main\n          inputs: [{path: c.info}]\n")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bindingtest.Check(t, Type, ms, 2) // both Test Coverage lines
}

package actions

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	"github.com/bakhmach-hub/kpi_exporter/internal/bindingtest"
	"github.com/bakhmach-hub/kpi_exporter/internal/fakegithub"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

var T = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func ago(days float64) time.Time { return T.Add(-time.Duration(days * 24 * float64(time.Hour))) }

func startFake(t *testing.T) *fakegithub.Server {
	t.Helper()
	return fakegithub.Start(t)
}

// run makes a completed run: started and completed given, created a minute
// before it started.
func run(id, wf int64, branch, conclusion string, started, completed time.Time) *fakegithub.WorkflowRun {
	return &fakegithub.WorkflowRun{ID: id, WorkflowID: wf, Branch: branch, Event: "push", Status: "completed", Conclusion: conclusion,
		Attempt: 1, Created: started.Add(-time.Minute), Started: started, Updated: completed}
}

// dataset: CI (workflow 1) and Train (workflow 2) on acme/api; expected
// values are derived in TestDataset.
func dataset(f *fakegithub.Server) *fakegithub.Repo {
	m := time.Minute
	api := &fakegithub.Repo{Owner: "acme", Name: "api",
		Workflows: []*fakegithub.Workflow{{ID: 1, Name: "CI", Path: ".github/workflows/ci.yml"}, {ID: 2, Name: "Train", Path: ".github/workflows/train.yml"}}}
	api.Runs = []*fakegithub.WorkflowRun{
		run(1, 1, "main", "success", ago(40), ago(40).Add(10*m)),
		// A streak that recovered before W: not counted.
		run(2, 1, "main", "failure", ago(38).Add(-5*m), ago(38)),
		run(3, 1, "main", "success", ago(37).Add(-5*m), ago(37)),
		// A streak begun before W, recovered in W: r4 → r7, 2 days. A
		// cancelled run inside the streak neither breaks nor ends it.
		run(4, 1, "main", "failure", ago(31).Add(-5*m), ago(31)),
		run(5, 1, "main", "timed_out", ago(30.5).Add(-5*m), ago(30.5)),
		run(6, 1, "main", "cancelled", ago(30.2).Add(-5*m), ago(30.2)),
		run(7, 1, "main", "success", ago(29).Add(-15*m), ago(29)), // 900 s
		run(8, 1, "main", "success", ago(20), ago(20).Add(600*time.Second)),
		run(9, 1, "main", "failure", ago(15).Add(-5*m), ago(15)),
		// Re-run: the latest attempt succeeded in 1200 s; recovery r9 → r10 = 1 day + 1200 s.
		{ID: 10, WorkflowID: 1, Branch: "main", Event: "push", Status: "completed", Conclusion: "success", Attempt: 2,
			Created: ago(14.5), Started: ago(14), Updated: ago(14).Add(1200 * time.Second)},
		run(11, 1, "main", "cancelled", ago(12).Add(-5*m), ago(12)),
		run(12, 1, "main", "skipped", ago(11), ago(11)),
		run(13, 1, "main", "startup_failure", ago(10), ago(10)),
		run(14, 1, "main", "success", ago(9), ago(9).Add(300*time.Second)), // recovery 86700
		run(15, 1, "feature", "failure", ago(5).Add(-5*m), ago(5)),         // another branch
		{ID: 16, WorkflowID: 1, Branch: "main", Event: "push", Status: "in_progress", Attempt: 1, Created: ago(0.1), Started: ago(0.1), Updated: ago(0.05)},
		run(17, 1, "main", "failure", ago(1), ago(1).Add(10*m)), // an open streak
		run(21, 2, "main", "success", ago(6), ago(6).Add(7200*time.Second)),
		run(22, 2, "main", "failure", ago(5).Add(-5*m), ago(5)),
		run(23, 2, "main", "success", ago(4), ago(4).Add(5400*time.Second)), // recovery 86400 + 5400
	}
	// 120 quick successes for pagination: durations 60..179 s.
	for i := 0; i < 120; i++ {
		s := ago(8).Add(time.Duration(i) * time.Minute)
		api.Runs = append(api.Runs, run(int64(1000+i), 1, "main", "success", s, s.Add(time.Duration(60+i)*time.Second)))
	}
	f.Update(func() { f.Repos = []*fakegithub.Repo{api} })
	return api
}

func newTestCollector(t *testing.T, f *fakegithub.Server, workflows []string) *Collector {
	t.Helper()
	os.Setenv("FAKE_GH_TOKEN", "ghp_test")
	s := &Settings{Settings: githubapi.Settings{TokenEnv: "FAKE_GH_TOKEN", BaseURL: f.URL + "/"},
		Scope: githubapi.Scope{Repos: []string{"acme/api"}}, Workflows: workflows}
	if err := s.validate(kpi.Source{Name: "actions"}); err != nil {
		t.Fatal(err)
	}
	c, err := newCollector(s, collectors.Env{StateDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return T }
	return c
}

func values(ms []kpi.Measurement) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		out[m.Name+m.Labels.String()] = m.Value
	}
	return out
}

func check(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		v, ok := got[k]
		if !ok {
			t.Errorf("%s missing", k)
		} else if math.Abs(v-w) > 1e-9*math.Max(1, math.Abs(w)) {
			t.Errorf("%s = %v, want %v", k, v, w)
		}
	}
}

func TestDataset(t *testing.T) {
	f := startFake(t)
	api := dataset(f)
	c := newTestCollector(t, f, nil)
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := values(ms)
	// CI in W: r7 r8 r9 r10 r11 r12 r13 r14 r17 and the 120 = 129 runs;
	// success 124 (r7 r8 r10 r14 + 120) of counted 127 (failures r9 r13 r17).
	// Train: r21 r22 r23: 2 of 3.
	// Durations of CI's successes: 60..179, 300, 600, 900, 1200 (124):
	// median (121+122)/2, p95 rank 118 → 177. With Train's 5400 and 7200
	// (126): median (122+123)/2, p95 rank 120 → 179.
	// Recovery: CI 172800 (r4→r7), 87600 (r9→r10), 86700 (r13→r14); Train 91800.
	check(t, got, map[string]float64{
		`ci_runs{}`:                                               132,
		`ci_success_ratio{}`:                                      126.0 / 130,
		`ci_run_duration_seconds{stat="median"}`:                  122.5,
		`ci_run_duration_seconds{stat="p95"}`:                     179,
		`ci_recovery_seconds{stat="mean"}`:                        (172800 + 87600 + 86700 + 91800) / 4.0,
		`ci_recovery_seconds{stat="median"}`:                      (87600 + 91800) / 2.0,
		`ci_runs{workflow="CI"}`:                                  129,
		`ci_success_ratio{workflow="CI"}`:                         124.0 / 127,
		`ci_run_duration_seconds{stat="median",workflow="CI"}`:    121.5,
		`ci_run_duration_seconds{stat="p95",workflow="CI"}`:       177,
		`ci_recovery_seconds{stat="mean",workflow="CI"}`:          (172800 + 87600 + 86700) / 3.0,
		`ci_recovery_seconds{stat="median",workflow="CI"}`:        87600,
		`ci_runs{workflow="Train"}`:                               3,
		`ci_success_ratio{workflow="Train"}`:                      2.0 / 3,
		`ci_run_duration_seconds{stat="median",workflow="Train"}`: 6300,
		`ci_run_duration_seconds{stat="p95",workflow="Train"}`:    7200,
		`ci_recovery_seconds{stat="median",workflow="Train"}`:     91800,
	})

	// r17 is re-run and succeeds: a later run sees the new attempt.
	f.Update(func() {
		for _, r := range api.Runs {
			if r.ID == 17 {
				r.Conclusion, r.Attempt, r.Started, r.Updated = "success", 2, ago(1).Add(time.Hour), ago(1).Add(time.Hour+100*time.Second)
			}
		}
	})
	f.ResetStats()
	c.now = func() time.Time { return T.Add(time.Hour) }
	ms, err = c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got = values(ms)
	// r17 now counts as a success: 125 of 127; the runs are as many as before.
	check(t, got, map[string]float64{
		`ci_success_ratio{workflow="CI"}`: 125.0 / 127,
		`ci_runs{workflow="CI"}`:          129,
	})
	reqs, _ := f.Stats()
	if reqs["rest 200"] > 3 {
		t.Errorf("the incremental run downloaded %d resources; unchanged ones must be 304s: %v", reqs["rest 200"], reqs)
	}
}

func TestWorkflowFilter(t *testing.T) {
	f := startFake(t)
	dataset(f)
	for _, filter := range []string{"train.yml", ".github/workflows/train.yml", "Train", "train"} {
		c := newTestCollector(t, f, []string{filter})
		ms, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := values(ms)
		check(t, got, map[string]float64{`ci_runs{}`: 3, `ci_success_ratio{}`: 2.0 / 3, `ci_recovery_seconds{stat="mean"}`: 91800})
		if _, ok := got[`ci_runs{workflow="CI"}`]; ok {
			t.Errorf("filter %q let CI through", filter)
		}
	}
}

func TestP95AndMedian(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if collectors.Median(xs) != 3 || collectors.P95(xs) != 5 || collectors.Median([]float64{1, 2, 3, 4}) != 2.5 || collectors.P95([]float64{7}) != 7 {
		t.Error("statistics")
	}
	var hundred []float64
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, float64(i))
	}
	if collectors.P95(hundred) != 95 || collectors.Median(hundred) != 50.5 {
		t.Errorf("p95 %v median %v", collectors.P95(hundred), collectors.Median(hundred))
	}
}

// TestListingCapSplitsTheRange: GitHub returns at most 1,000 runs for one
// listing; more in range must be read by splitting the created range.
func TestListingCapSplitsTheRange(t *testing.T) {
	f := startFake(t)
	api := &fakegithub.Repo{Owner: "acme", Name: "busy", Workflows: []*fakegithub.Workflow{{ID: 1, Name: "CI", Path: ".github/workflows/ci.yml"}}}
	for i := 0; i < 1500; i++ {
		s := ago(20).Add(time.Duration(i) * 10 * time.Minute)
		api.Runs = append(api.Runs, run(int64(i+1), 1, "main", "success", s, s.Add(time.Minute)))
	}
	f.Update(func() { f.Repos = []*fakegithub.Repo{api} })
	c := newTestCollector(t, f, nil)
	c.s.Repos = []string{"acme/busy"}
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := values(ms)
	if got[`ci_runs{}`] != 1500 {
		t.Errorf("ci_runs = %v, want all 1500", got[`ci_runs{}`])
	}
	if _, ok := got[`truncated{what="workflow_runs"}`]; ok {
		t.Error("reported truncation although the range could be split")
	}
}

func TestDefaultCatalogueBindings(t *testing.T) {
	f := startFake(t)
	dataset(f)
	ms, err := newTestCollector(t, f, nil).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Build success, MTTR, training time, retraining success, failed jobs recovery.
	bindingtest.Check(t, Type, ms, 5)
}

// A failing streak that began long before the window and the lookback is
// read back to its first run however long ago it was (here 216 failures
// older than the kept runs, three pages back), once; and a quiet run
// afterwards costs no charged request at all: every listing is a 304.
func TestStreakOlderThanTheWindow(t *testing.T) {
	f := startFake(t)
	api := &fakegithub.Repo{Owner: "acme", Name: "api", Workflows: []*fakegithub.Workflow{{ID: 3, Name: "Deploy", Path: ".github/workflows/deploy.yml"}}}
	api.Runs = append(api.Runs, run(1, 3, "main", "success", ago(81), ago(81).Add(time.Minute)))
	id := int64(2)
	first := ago(80)
	for at := first; at.Before(ago(6)); at = at.Add(4 * time.Hour) {
		api.Runs = append(api.Runs, run(id, 3, "main", "failure", at.Add(-5*time.Minute), at))
		id++
	}
	api.Runs = append(api.Runs, run(id, 3, "main", "success", ago(5).Add(-5*time.Minute), ago(5)))
	f.Update(func() { f.Repos = []*fakegithub.Repo{api} })
	c := newTestCollector(t, f, nil)
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := ago(5).Sub(first).Seconds() // from the streak's first failure, 80 days ago
	check(t, values(ms), map[string]float64{`ci_recovery_seconds{stat="mean"}`: want, `ci_recovery_seconds{stat="median",workflow="Deploy"}`: want})

	// The first incremental run reads its listing once; from then on, until
	// the listing's weekly start moves, a quiet run is all 304s.
	for h := 1; h <= 3; h++ {
		f.ResetStats()
		c.now = func() time.Time { return T.Add(time.Duration(h) * time.Hour) }
		if ms, err = c.Collect(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	check(t, values(ms), map[string]float64{`ci_recovery_seconds{stat="mean"}`: want})
	reqs, _ := f.Stats()
	if reqs["rest 200"] != 0 || reqs["graphql 200"] != 0 || reqs["rest 304"] == 0 {
		t.Errorf("a quiet run must cost no charged request (only 304s): %v", reqs)
	}
}

// The listing grid is weekly, per repository, and staggered: its points are
// a week apart, at or before the time asked, and differ between names.
func TestGridFloor(t *testing.T) {
	a, b := gridFloor(T, "acme/api"), gridFloor(T, "acme/web")
	for _, g := range []time.Time{a, b} {
		if g.After(T) || T.Sub(g) >= gridWeek {
			t.Errorf("grid point %s for %s", g, T)
		}
	}
	if a.Equal(b) {
		t.Error("two repositories share a grid")
	}
	if got := gridFloor(a.Add(gridWeek-time.Second), "acme/api"); !got.Equal(a) {
		t.Errorf("within the week: %s, want %s", got, a)
	}
	if got := gridFloor(a.Add(gridWeek), "acme/api"); !got.Equal(a.Add(gridWeek)) {
		t.Errorf("a week on: %s", got)
	}
}

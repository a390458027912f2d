package economytest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/actions"
	_ "github.com/bakhmach-hub/kpi_exporter/collectors/github"
	"github.com/bakhmach-hub/kpi_exporter/internal/fakegithub"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// org is 300 repositories, each with 30 pull requests, 10 issues, 3
// discussions, 2 releases and a CI workflow with 40 runs (a failing streak
// among them), spread over the last 60 days before now.
func org(f *fakegithub.Server, now time.Time) {
	h := time.Hour
	var repos []*fakegithub.Repo
	for i := 0; i < 300; i++ {
		r := &fakegithub.Repo{Owner: "big", Name: fmt.Sprintf("svc-%03d", i), Stars: i,
			Workflows: []*fakegithub.Workflow{{ID: int64(i*10 + 1), Name: "CI", Path: ".github/workflows/ci.yml"}}}
		for n := 1; n <= 30; n++ {
			c := now.Add(-time.Duration((n*37+i*11)%1440) * h)
			a := &fakegithub.Actor{Login: fmt.Sprintf("dev%02d", (n+i)%40)}
			pr := &fakegithub.PR{Number: n, Author: a, Created: c, Updated: c.Add(3 * h),
				Reviews: []fakegithub.Review{{Author: fakegithub.Actor{Login: fmt.Sprintf("dev%02d", (n+i+1)%40)}, State: "APPROVED", Submitted: c.Add(2 * h)}}}
			if n%3 != 0 {
				m := c.Add(3 * h)
				pr.Merged = &m
			}
			r.PRs = append(r.PRs, pr)
		}
		for n := 1; n <= 10; n++ {
			c := now.Add(-time.Duration((n*53+i*7)%1440) * h)
			r.Issues = append(r.Issues, &fakegithub.Issue{Number: 1000 + n, Author: fakegithub.Actor{Login: "user"}, Created: c, Updated: c.Add(h),
				Comments: []fakegithub.Comment{{Author: fakegithub.Actor{Login: "dev01"}, Created: c.Add(h)}}})
		}
		for n := 1; n <= 3; n++ {
			c := now.Add(-time.Duration((n*97+i)%1440) * h)
			r.Discussions = append(r.Discussions, &fakegithub.Discussion{Number: n, Author: fakegithub.Actor{Login: "user"}, Created: c, Updated: c})
		}
		for n := 1; n <= 2; n++ {
			c := now.Add(-time.Duration(n*20*24) * h)
			r.Releases = append(r.Releases, &fakegithub.Release{Tag: fmt.Sprintf("v%d", n), Created: c, Published: &c})
		}
		for n := 0; n < 40; n++ {
			start := now.Add(-time.Duration(n*36+i%7) * h)
			concl := "success"
			if n >= 10 && n < 14 {
				concl = "failure"
			}
			r.Runs = append(r.Runs, &fakegithub.WorkflowRun{ID: int64(i*1000 + n + 1), WorkflowID: int64(i*10 + 1), Branch: "main", Event: "push",
				Status: "completed", Conclusion: concl, Attempt: 1, Created: start.Add(-time.Minute), Started: start, Updated: start.Add(10 * time.Minute)})
		}
		repos = append(repos, r)
	}
	f.Update(func() { f.Repos = repos })
}

// TestSteadyStateCostOf300Repositories runs the github and actions sources
// side by side on 300 repositories: a first sync, then quiet runs with
// nothing new. The figure the README records is the charged requests of a
// quiet run (GraphQL queries and REST answers other than 304, which GitHub
// does not count against the rate limit): at most 10 for both together.
func TestSteadyStateCostOf300Repositories(t *testing.T) {
	f := fakegithub.Start(t)
	org(f, time.Now())
	t.Setenv("ECONOMY_GH_TOKEN", "ghp_economy")
	cat := fmt.Sprintf(`sources:
  - name: github
    type: github
    interval: 1h
    settings: {token_env: ECONOMY_GH_TOKEN, base_url: "%[1]s/", graphql_url: "%[1]s/graphql", orgs: [big]}
  - name: actions
    type: actions
    interval: 1h
    settings: {token_env: ECONOMY_GH_TOKEN, base_url: "%[1]s/", graphql_url: "%[1]s/graphql", orgs: [big]}
kpis:
  - {id: stars, name: Stars, domain: community, dashboard: community, unit: count, direction: higher,
     source: {name: github, measurement: stars}, targets: [{period: 2026-12-31, value: 1}]}
calendar: {launch: 2026-01-01}
`, f.URL)
	c, err := kpi.Parse("economy.yml", []byte(cat), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cols []collectors.Collector
	for _, src := range c.Sources {
		col, err := collectors.New(src, collectors.Env{Logger: zap.NewNop(), StateDir: filepath.Join(dir, src.Name)})
		if err != nil {
			t.Fatal(err)
		}
		cols = append(cols, col)
	}
	run := func() (charged int, stats map[string]int, wall time.Duration) {
		f.ResetStats()
		begin := time.Now()
		for i, col := range cols {
			ms, err := col.Collect(context.Background())
			if err != nil {
				t.Fatalf("%s: %v", c.Sources[i].Name, err)
			}
			if len(ms) == 0 {
				t.Fatalf("%s measured nothing", c.Sources[i].Name)
			}
		}
		wall = time.Since(begin)
		reqs, _ := f.Stats()
		stats = map[string]int{}
		for k, v := range reqs {
			stats[k] = v
			if !strings.HasSuffix(k, " 304") {
				charged += v
			}
		}
		return charged, stats, wall
	}
	first, firstStats, firstWall := run()
	t.Logf("first sync: %d charged requests %v, %s", first, firstStats, firstWall.Round(time.Millisecond))
	// The first quiet runs read the incremental listings' URLs once each;
	// from then on a quiet run is 304s.
	run()
	run()
	quiet, quietStats, quietWall := run()
	t.Logf("quiet run:  %d charged requests %v, %s", quiet, quietStats, quietWall.Round(time.Millisecond))
	if quiet > 10 {
		t.Errorf("a quiet run of github and actions on 300 repositories cost %d charged requests, want at most 10: %v", quiet, quietStats)
	}
}

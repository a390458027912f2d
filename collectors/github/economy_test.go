package github

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/internal/fakegithub"
)

// bigOrg is 300 repositories with 100 pull requests each (30,000), 20
// issues and 5 discussions each, spread over the last year.
func bigOrg(f *fakegithub.Server) {
	var repos []*fakegithub.Repo
	for i := 0; i < 300; i++ {
		r := &fakegithub.Repo{Owner: "big", Name: fmt.Sprintf("svc-%03d", i), Stars: i, Forks: i % 7, Watches: i % 5}
		for n := 1; n <= 100; n++ {
			c := T.Add(-time.Duration((n*37+i*11)%8760) * time.Hour)
			pr := &fakegithub.PR{Number: n, Author: userp(fmt.Sprintf("dev%02d", (n+i)%40)), Created: c, Updated: c.Add(3 * h),
				Reviews: []fakegithub.Review{{Author: user(fmt.Sprintf("dev%02d", (n+i+1)%40)), State: "APPROVED", Submitted: c.Add(2 * h)}},
				Labels:  []string{"feature"}, Files: []string{"main.go", "docs/x.md"}}
			if n%3 != 0 {
				pr.Merged = tp(c.Add(3 * h))
			}
			r.PRs = append(r.PRs, pr)
		}
		for n := 1; n <= 20; n++ {
			c := T.Add(-time.Duration((n*53+i*7)%8760) * time.Hour)
			is := &fakegithub.Issue{Number: 1000 + n, Author: user(fmt.Sprintf("user%02d", n)), Created: c, Updated: c.Add(h),
				Comments: []fakegithub.Comment{{Author: user("dev01"), Created: c.Add(h)}}}
			if n%2 == 0 {
				is.Closed, is.StateReason = tp(c.Add(h)), "COMPLETED"
			}
			r.Issues = append(r.Issues, is)
		}
		for n := 1; n <= 5; n++ {
			c := T.Add(-time.Duration((n*97+i)%8760) * time.Hour)
			r.Discussions = append(r.Discussions, &fakegithub.Discussion{Number: n, Author: user("user01"), Created: c, Updated: c})
		}
		repos = append(repos, r)
	}
	f.Update(func() { f.Repos = repos })
}

// TestLargeOrganisationEconomy measures a first sync and a steady-state run
// of a 300-repository, 30,000-PR organisation: requests, GraphQL points and
// wall time, as recorded in the README. The steady-state run must cost
// under 100 points, with its unchanged REST resources answered by 304s.
func TestLargeOrganisationEconomy(t *testing.T) {
	f := startFake(t)
	bigOrg(f)
	s := settingsFor(f)
	s.Orgs, s.Repos, s.CoreTeam = []string{"big"}, nil, nil
	c := newTestCollector(t, f, s, t.TempDir())

	begin := time.Now()
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	firstWall := time.Since(begin)
	firstReqs, firstPoints := f.Stats()
	if v := values(ms); v["contributors_total{}"] != 40 || v["stars{}"] != 299*300/2 {
		t.Errorf("first run values: contributors_total %v, stars %v", v["contributors_total{}"], v["stars{}"])
	}
	if firstPoints > 5000 {
		t.Errorf("the first sync cost %d points, more than one hour's budget (5,000)", firstPoints)
	}

	// A quiet hour: three PRs and an issue change.
	f.Update(func() {
		for i := 0; i < 3; i++ {
			pr := f.Repos[i*50].PRs[0]
			pr.Updated, pr.Merged = T.Add(30*time.Minute), tp(T.Add(30*time.Minute))
		}
		f.Repos[7].Issues[0].Updated = T.Add(20 * time.Minute)
	})
	f.ResetStats()
	c.now = func() time.Time { return T.Add(time.Hour) }
	begin = time.Now()
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	steadyWall := time.Since(begin)
	steadyReqs, steadyPoints := f.Stats()
	var mem runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&mem)

	t.Logf("first sync:   %d GraphQL requests, %d REST requests (%d 200, %d 304), %d points, %s",
		firstReqs["graphql 200"], firstReqs["rest 200"]+firstReqs["rest 304"], firstReqs["rest 200"], firstReqs["rest 304"], firstPoints, firstWall.Round(time.Millisecond))
	t.Logf("steady state: %d GraphQL requests, %d REST requests (%d 200, %d 304), %d points, %s",
		steadyReqs["graphql 200"], steadyReqs["rest 200"]+steadyReqs["rest 304"], steadyReqs["rest 200"], steadyReqs["rest 304"], steadyPoints, steadyWall.Round(time.Millisecond))
	t.Logf("heap in use after both runs (test process, fake included): %.1f MiB", float64(mem.HeapInuse)/(1<<20))
	if steadyPoints >= 100 {
		t.Errorf("steady state cost %d points, want < 100", steadyPoints)
	}
	if steadyReqs["rest 200"] != 0 {
		t.Errorf("steady state re-downloaded %d unchanged REST resources", steadyReqs["rest 200"])
	}
}

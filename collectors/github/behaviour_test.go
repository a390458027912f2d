package github

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/bakhmach-hub/kpi_exporter/internal/fakegithub"
)

// TestIncrementalRun checks that a second run reads only what changed,
// through search, that unchanged REST resources come back as 304s, and
// that the measurements follow the changes.
func TestIncrementalRun(t *testing.T) {
	f := startFake(t)
	dataset(f)
	c := newTestCollector(t, f, settingsFor(f), t.TempDir())
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Update(func() {
		api := f.Repos[0]
		api.PRs = append(api.PRs, &fakegithub.PR{Number: 13, Author: userp("nina"), Created: T.Add(10 * time.Minute), Updated: T.Add(40 * time.Minute),
			Merged: tp(T.Add(40 * time.Minute)), Reviews: []fakegithub.Review{{Author: user("bob"), State: "APPROVED", Submitted: T.Add(20 * time.Minute)}}})
		for _, is := range api.Issues {
			if is.Number == 104 {
				is.Closed, is.StateReason, is.Updated = tp(T.Add(30*time.Minute)), "COMPLETED", T.Add(30*time.Minute)
			}
		}
		api.Discussions = append(api.Discussions, &fakegithub.Discussion{Number: 6, Author: user("user9"), Created: T.Add(15 * time.Minute), Updated: T.Add(15 * time.Minute)})
	})
	f.ResetStats()
	c.now = func() time.Time { return T.Add(time.Hour) }
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := values(ms)
	for key, want := range map[string]float64{
		"pr_merged{}": 7, "pr_opened{}": 11, "contributors_active{}": 7, "contributors_new{}": 6,
		"issue_closure_ratio{}": 4.0 / 6, "discussions_created{}": 4,
		// I4 resolved after 5 days and 30 minutes joins 172800, 2592000, 172800.
		`issue_resolution_seconds{stat="median"}`: (172800 + 433800) / 2.0,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	reqs, points := f.Stats()
	if reqs["rest 200"] != 0 || reqs["rest 304"] == 0 {
		t.Errorf("unchanged REST resources should all be 304s: %v", reqs)
	}
	if points > 100 || points == 0 {
		t.Errorf("the incremental run cost %d points", points)
	}
	for _, q := range f.Queries {
		if strings.Contains(q, "pullRequests(") || strings.Contains(q, "issues(first") {
			t.Errorf("the incremental run re-read a history: %s", q[:min(len(q), 80)])
		}
	}
	t.Logf("incremental run: %v, %d points", reqs, points)
}

func TestMissingAlertsPermission(t *testing.T) {
	f := startFake(t)
	dataset(f)
	f.Update(func() { f.NoAlertsPermission = true })
	core, logs := observer.New(zap.WarnLevel)
	c := newTestCollector(t, f, settingsFor(f), t.TempDir())
	c.log = zap.New(core)
	for i := 0; i < 2; i++ {
		ms, err := c.Collect(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		got := values(ms)
		for k := range got {
			if strings.HasPrefix(k, "dependabot_") || strings.HasPrefix(k, "vulnerability_") {
				t.Errorf("%s reported without permission", k)
			}
		}
		if got["pr_merged{}"] != 6 {
			t.Error("the other measurements must go on")
		}
	}
	if n := logs.FilterMessageSnippet("Dependabot").Len(); n != 1 {
		t.Errorf("the missing permission was logged %d times, want once", n)
	}
}

// TestResumeAfterInterruptedFirstSync interrupts the first sync and checks
// that a new collector on the same state directory goes on from the saved
// cursors instead of starting over.
func TestResumeAfterInterruptedFirstSync(t *testing.T) {
	// One request at a time, so that exactly one page is in flight when
	// the fault strikes.
	serial := func(f *fakegithub.Server) *Settings { s := settingsFor(f); s.MaxConcurrency = 1; return s }
	clean := startFake(t)
	dataset(clean)
	if _, err := newTestCollector(t, clean, serial(clean), t.TempDir()).Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	full, _ := clean.Stats()

	f := startFake(t)
	dataset(f)
	dir := t.TempDir()
	var graphqls int
	var mu sync.Mutex
	f.Update(func() {
		f.Fault = func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/graphql" {
				return false
			}
			mu.Lock()
			defer mu.Unlock()
			graphqls++
			if graphqls > 6 {
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			return false
		}
	})
	c1 := newTestCollector(t, f, serial(f), dir)
	if _, err := c1.Collect(context.Background()); err == nil {
		t.Fatal("the interrupted run should fail")
	}
	first, _ := f.Stats()
	f.Update(func() { f.Fault = nil })
	f.ResetStats()
	c2 := newTestCollector(t, f, serial(f), dir)
	ms, err := c2.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkExpected(t, values(ms))
	second, _ := f.Stats()
	// The page in flight when the fault struck is read again, nothing more.
	if second["graphql 200"]+first["graphql 200"] > full["graphql 200"]+1 {
		t.Errorf("resumed sync re-read pages: %d + %d GraphQL requests, a clean sync needs %d",
			first["graphql 200"], second["graphql 200"], full["graphql 200"])
	}
}

func TestFaults(t *testing.T) {
	type fault func(n int, w http.ResponseWriter, r *http.Request) bool
	secondary := `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}`
	cases := []struct {
		name      string
		fault     fault
		wantWaits []time.Duration // the waits the client asked for, in order (prefix)
		wantErr   bool
	}{
		{name: "502 on every GraphQL request", wantErr: true, fault: func(n int, w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/graphql" {
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			return false
		}},
		{name: "two 502s, then recovery", wantWaits: []time.Duration{time.Second, 2 * time.Second}, fault: func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n <= 2 {
				w.WriteHeader(http.StatusBadGateway)
				return true
			}
			return false
		}},
		{name: "primary limit at 0 with a reset", fault: func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				w.Header().Set("X-Ratelimit-Limit", "5000")
				w.Header().Set("X-Ratelimit-Remaining", "0")
				w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(time.Now().Add(30*time.Second).Unix(), 10))
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `{"message":"API rate limit exceeded for user ID 1."}`)
				return true
			}
			return false
		}},
		{name: "secondary limit with Retry-After", wantWaits: []time.Duration{17 * time.Second}, fault: func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n == 1 {
				w.Header().Set("Retry-After", "17")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, secondary)
				return true
			}
			return false
		}},
		{name: "secondary limit without Retry-After", wantWaits: []time.Duration{time.Minute, 2 * time.Minute}, fault: func(n int, w http.ResponseWriter, r *http.Request) bool {
			if n <= 2 {
				w.WriteHeader(http.StatusTooManyRequests)
				io.WriteString(w, secondary)
				return true
			}
			return false
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := startFake(t)
			dataset(f)
			var mu sync.Mutex
			n := 0
			f.Update(func() {
				f.Fault = func(w http.ResponseWriter, r *http.Request) bool {
					mu.Lock()
					n++
					k := n
					mu.Unlock()
					return tc.fault(k, w, r)
				}
			})
			s := settingsFor(f)
			s.MaxConcurrency = 2
			c := newTestCollector(t, f, s, t.TempDir())
			var waits []time.Duration
			var wmu sync.Mutex
			c.client.Transport.Sleep = func(ctx context.Context, d time.Duration) error {
				wmu.Lock()
				waits = append(waits, d)
				wmu.Unlock()
				return ctx.Err()
			}
			ms, err := c.Collect(context.Background())
			if tc.wantErr {
				if err == nil {
					t.Fatal("want an error")
				}
				// The fault clears: the next run recovers.
				f.Update(func() { f.Fault = nil })
				ms, err = c.Collect(context.Background())
			}
			if err != nil {
				t.Fatal(err)
			}
			checkExpected(t, values(ms))
			for i, w := range tc.wantWaits {
				if i >= len(waits) || waits[i] != w {
					t.Errorf("waits %v, want %v first", waits, tc.wantWaits)
					break
				}
			}
			if tc.name == "primary limit at 0 with a reset" && (len(waits) == 0 || waits[0] < 25*time.Second || waits[0] > 35*time.Second) {
				t.Errorf("waits %v: want one until the reset (~30s)", waits)
			}
			f.Update(func() {
				if f.MaxInFlight > 2 {
					t.Errorf("%d requests in flight at once, max_concurrency is 2", f.MaxInFlight)
				}
			})
		})
	}
}

func TestTimeout(t *testing.T) {
	f := startFake(t)
	dataset(f)
	f.Update(func() {
		f.Fault = func(w http.ResponseWriter, r *http.Request) bool {
			time.Sleep(300 * time.Millisecond)
			return false
		}
	})
	c := newTestCollector(t, f, settingsFor(f), t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.Collect(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("want a deadline error, got %v", err)
	}
	if time.Since(begin) > 2*time.Second {
		t.Errorf("the run outlived its deadline by %s", time.Since(begin))
	}
}

// TestSearchSplitsBeyondItsCap changes 1,500 pull requests in one hour:
// more than search returns for one query, so the run must split the time
// range and still read every change.
func TestSearchSplitsBeyondItsCap(t *testing.T) {
	f := startFake(t)
	bigOrg(f)
	s := settingsFor(f)
	s.Orgs, s.Repos, s.CoreTeam = []string{"big"}, nil, nil
	c := newTestCollector(t, f, s, t.TempDir())
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := values(ms)["pr_merged{}"]
	changed := 0
	f.Update(func() {
		for _, r := range f.Repos[:50] {
			for _, pr := range r.PRs[:30] {
				if pr.Merged == nil {
					changed++
				}
				at := T.Add(time.Duration(changed%3000) * time.Second)
				pr.Updated, pr.Merged = at, tp(at)
			}
		}
	})
	c.now = func() time.Time { return T.Add(time.Hour) }
	ms, err = c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := values(ms)
	// Count from the dataset itself what merged in the window now.
	from, to := T.Add(time.Hour-DefaultWindow), T.Add(time.Hour)
	want := 0
	f.Update(func() {
		for _, r := range f.Repos {
			for _, pr := range r.PRs {
				if pr.Merged != nil && pr.Merged.After(from) && !pr.Merged.After(to) {
					want++
				}
			}
		}
	})
	if got["pr_merged{}"] != float64(want) || want <= int(before) {
		t.Errorf("pr_merged %v after changing 1,500 PRs (%d newly merged), want %d (was %v)", got["pr_merged{}"], changed, want, before)
	}
	if got[`truncated{what="search"}`] != 0 {
		t.Errorf("search reported truncation: %v", got[`truncated{what="search"}`])
	}
}

// TestPeriodicFullResync re-reads every history once full_resync has passed.
func TestPeriodicFullResync(t *testing.T) {
	f := startFake(t)
	dataset(f)
	c := newTestCollector(t, f, settingsFor(f), t.TempDir())
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.ResetStats()
	c.now = func() time.Time { return T.Add(DefaultFullResync + time.Hour) }
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, q := range f.Queries {
		if strings.Contains(q, "pullRequests(") {
			pages++
		}
	}
	if pages < 4 {
		t.Errorf("a full resync read %d pull-request pages, want every repository's", pages)
	}
	if !c.data.LastFull.Equal(T.Add(DefaultFullResync + time.Hour)) {
		t.Errorf("LastFull = %v", c.data.LastFull)
	}
}

// A release created before the window but published inside it counts,
// wherever it sits in the listing (which is ordered by creation): here it
// is on the second page, behind 100 older releases.
func TestReleaseCreatedBeforeWindowPublishedInside(t *testing.T) {
	f := startFake(t)
	dataset(f)
	f.Update(func() {
		api := f.Repos[0]
		for i := 0; i < 100; i++ {
			c := T.Add(-time.Duration(31+i) * 24 * time.Hour)
			api.Releases = append(api.Releases, &fakegithub.Release{Tag: "old" + strconv.Itoa(i), Created: c, Published: tp(c)})
		}
		api.Releases = append(api.Releases, &fakegithub.Release{Tag: "long-draft", Created: T.Add(-200 * 24 * time.Hour), Published: tp(T.Add(-2 * 24 * time.Hour))})
	})
	c := newTestCollector(t, f, settingsFor(f), t.TempDir())
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// v1.2.0 and v2.0.0 of the dataset, and the long draft.
	if got := values(ms)["releases{}"]; got != 3 {
		t.Errorf("releases = %v, want 3", got)
	}
}

package github

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shurcooL/githubv4"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	"github.com/bakhmach-hub/kpi_exporter/internal/bindingtest"
	"github.com/bakhmach-hub/kpi_exporter/internal/fakegithub"
	"github.com/bakhmach-hub/kpi_exporter/internal/ghschema"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// T is the collection time of the dataset test; W is (T-30d, T].
var T = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func ago(days float64) time.Time { return T.Add(-time.Duration(days * 24 * float64(time.Hour))) }
func tp(t time.Time) *time.Time  { return &t }

func user(l string) fakegithub.Actor   { return fakegithub.Actor{Login: l} }
func bot(l string) fakegithub.Actor    { return fakegithub.Actor{Login: l, Bot: true} }
func userp(l string) *fakegithub.Actor { a := user(l); return &a }

const h = time.Hour

func startFake(t testing.TB) *fakegithub.Server {
	t.Helper()
	return fakegithub.Start(t)
}

// dataset builds the hand-computed scenario the README's definitions are
// checked against. Expected values are derived in the comments.
func dataset(f *fakegithub.Server) {
	api := &fakegithub.Repo{Owner: "acme", Name: "api", Stars: 120, Forks: 12, Watches: 9}
	web := &fakegithub.Repo{Owner: "acme", Name: "web", Stars: 30, Forks: 3, Watches: 4}
	empty := &fakegithub.Repo{Owner: "acme", Name: "empty", Stars: 5, Watches: 1}
	legacy := &fakegithub.Repo{Owner: "acme", Name: "legacy", Archived: true, Stars: 1000, Forks: 50, Watches: 70}
	tool := &fakegithub.Repo{Owner: "other", Name: "tool", Stars: 7, Forks: 2, Watches: 2}

	manyLabels := []string{}
	for i := 0; i < 23; i++ {
		manyLabels = append(manyLabels, fmt.Sprintf("area-%02d", i))
	}
	manyLabels = append(manyLabels, "Feature", "zz-last")
	manyFiles := []string{}
	for i := 0; i < 120; i++ {
		manyFiles = append(manyFiles, fmt.Sprintf("src/file%03d.go", i))
	}
	manyFiles[110] = "docs/late.adoc"

	api.PRs = []*fakegithub.PR{
		// PR1: review 2h after creation; merged in W after 1 day; core author; docs and feature.
		{Number: 1, Author: userp("alice"), Created: ago(10), Updated: ago(9), Merged: tp(ago(9)), Labels: []string{"feature"},
			Reviews: []fakegithub.Review{{Author: user("bob"), State: "APPROVED", Submitted: ago(10).Add(2 * h)}},
			Files:   []string{"docs/guide.md", "main.go"}},
		// PR2: opened as a draft, ready 5h later; a review before ready does not count; the one 3h after ready does.
		{Number: 2, Author: userp("carol"), Created: ago(8), Updated: ago(7), Draft: false, Merged: tp(ago(8).Add(10 * h)), Labels: []string{"bug"},
			Events:  []fakegithub.Event{{Ready: true, At: ago(8).Add(5 * h)}},
			Reviews: []fakegithub.Review{{Author: user("dave"), State: "COMMENTED", Submitted: ago(8).Add(h)}, {Author: user("dave"), State: "APPROVED", Submitted: ago(8).Add(8 * h)}},
			Files:   []string{"src/x.go"}},
		// PR3: self-review, a Bot, and a configured bot don't count; erin's at +4h does. Open.
		{Number: 3, Author: userp("dave"), Created: ago(6), Updated: ago(5),
			Reviews: []fakegithub.Review{{Author: user("dave"), State: "APPROVED", Submitted: ago(6).Add(h)},
				{Author: bot("dependabot"), State: "COMMENTED", Submitted: ago(6).Add(2 * h)},
				{Author: user("ci-helper"), State: "COMMENTED", Submitted: ago(6).Add(3 * h)},
				{Author: user("erin"), State: "CHANGES_REQUESTED", Submitted: ago(6).Add(4 * h)}}},
		// PR4: only self and bot reviews: no review time. Merged after 2h; README.md is docs; enhancement is a feature.
		{Number: 4, Author: userp("erin"), Created: ago(5), Updated: ago(4), Merged: tp(ago(5).Add(2 * h)), Labels: []string{"enhancement"},
			Reviews: []fakegithub.Review{{Author: user("erin"), State: "COMMENTED", Submitted: ago(5).Add(h)}, {Author: user("renovate[bot]"), State: "APPROVED", Submitted: ago(5).Add(2 * h)}},
			Files:   []string{"README.md"}},
		// PR5: authored by a bot: counts nowhere.
		{Number: 5, Author: &fakegithub.Actor{Login: "dependabot", Bot: true}, Created: ago(3), Updated: ago(2), Merged: tp(ago(2)),
			Reviews: []fakegithub.Review{{Author: user("alice"), State: "APPROVED", Submitted: ago(3).Add(h)}}, Files: []string{"docs/x.md"}},
		// PR6: reviewed and merged before W: only contributors_total (frank).
		{Number: 6, Author: userp("frank"), Created: ago(40), Updated: ago(33), Merged: tp(ago(33)),
			Reviews: []fakegithub.Review{{Author: user("alice"), State: "APPROVED", Submitted: ago(35)}}},
		// PR7: opened in W, only a pending review.
		{Number: 7, Author: userp("gina"), Created: ago(2), Updated: ago(2),
			Reviews: []fakegithub.Review{{Author: user("alice"), State: "PENDING"}}},
		// PR8: a draft never made ready: no start, so its review does not count.
		{Number: 8, Author: userp("hank"), Created: ago(1), Updated: ago(1), Draft: true,
			Reviews: []fakegithub.Review{{Author: user("alice"), State: "COMMENTED", Submitted: ago(1).Add(h)}}},
		// PR9: opened ready, converted to draft, ready again: start is creation; review at +2h.
		{Number: 9, Author: userp("ivan"), Created: ago(12), Updated: ago(11), Merged: tp(ago(11)),
			Events:  []fakegithub.Event{{Ready: false, At: ago(12).Add(h)}, {Ready: true, At: ago(12).Add(5 * h)}},
			Reviews: []fakegithub.Review{{Author: user("judy"), State: "APPROVED", Submitted: ago(12).Add(2 * h)}},
			Files:   []string{"docs/api.rst"}},
		// PR10: by a veteran (first merge in 2025); 25 labels, the feature one beyond the first page; review at +30min; merged after 3h.
		{Number: 10, Author: userp("veteran"), Created: ago(20), Updated: ago(19), Merged: tp(ago(20).Add(3 * h)), Labels: manyLabels,
			Reviews: []fakegithub.Review{{Author: user("bob"), State: "APPROVED", Submitted: ago(20).Add(30 * time.Minute)}},
			Files:   []string{"main.go"}},
		// PR11: created before W, first review (20 days later) in W.
		{Number: 11, Author: userp("kate"), Created: ago(45), Updated: ago(25),
			Reviews: []fakegithub.Review{{Author: user("bob"), State: "COMMENTED", Submitted: ago(25)}}},
	}
	// PR12: 32 bot reviews fill the first page of 30; the qualifying one (+6h) is on the next.
	pr12 := &fakegithub.PR{Number: 12, Author: userp("lena"), Created: ago(3), Updated: ago(2)}
	for i := 0; i < 32; i++ {
		pr12.Reviews = append(pr12.Reviews, fakegithub.Review{Author: bot("dependabot"), State: "COMMENTED", Submitted: ago(3).Add(time.Duration(i+1) * time.Minute)})
	}
	pr12.Reviews = append(pr12.Reviews, fakegithub.Review{Author: user("bob"), State: "COMMENTED", Submitted: ago(3).Add(6 * h)})
	api.PRs = append(api.PRs, pr12)
	// 120 PRs merged in 2025 by veteran: pagination, and veteran is not new.
	for i := 0; i < 120; i++ {
		c := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * h)
		web.PRs = append(web.PRs, &fakegithub.PR{Number: i + 1, Author: userp("veteran"), Created: c, Updated: c.Add(h), Merged: tp(c.Add(h))})
	}
	// The archived repository counts nowhere.
	legacy.PRs = []*fakegithub.PR{{Number: 1, Author: userp("zed"), Created: ago(3), Updated: ago(2), Merged: tp(ago(2))}}
	// other/tool: outsider merged after 1h; review at +30min; the docs file is on the third page of 50 files.
	tool.PRs = []*fakegithub.PR{{Number: 1, Author: userp("outsider"), Created: ago(15), Updated: ago(14), Merged: tp(ago(15).Add(h)),
		Reviews: []fakegithub.Review{{Author: user("alice"), State: "APPROVED", Submitted: ago(15).Add(30 * time.Minute)}},
		Files:   manyFiles}}

	manyComments := []fakegithub.Comment{}
	for i := 0; i < 22; i++ {
		a := user("user5")
		if i%2 == 1 {
			a = bot("dependabot")
		}
		manyComments = append(manyComments, fakegithub.Comment{Author: a, Created: ago(9).Add(time.Duration(i) * time.Minute)})
	}
	manyComments = append(manyComments, fakegithub.Comment{Author: user("bob"), Created: ago(9).Add(5 * h)})

	api.Issues = []*fakegithub.Issue{
		// I1: resolved in 2 days; first response by bob after self and bot comments: 3h; bug + escape.
		{Number: 101, Author: user("user1"), Created: ago(20), Updated: ago(18), Closed: tp(ago(18)), StateReason: "COMPLETED", Labels: []string{"bug", "production"},
			Comments: []fakegithub.Comment{{Author: user("user1"), Created: ago(20).Add(h)}, {Author: user("github-actions[bot]"), Created: ago(20).Add(2 * h)}, {Author: user("bob"), Created: ago(20).Add(3 * h)}}},
		// I2: closed, reopened, closed again in W: resolution runs to the final close (30 days).
		{Number: 102, Author: user("user2"), Created: ago(40), Updated: ago(10), Closed: tp(ago(10)), StateReason: "COMPLETED"},
		// I3: closed as not planned: no resolution time, but closed for the closure ratio; a bug without escape.
		{Number: 103, Author: user("user3"), Created: ago(15), Updated: ago(14), Closed: tp(ago(14)), StateReason: "NOT_PLANNED", Labels: []string{"bug"}},
		// I4: open; response after 30min; bug + escaped.
		{Number: 104, Author: user("user4"), Created: ago(5), Updated: ago(5), Labels: []string{"bug", "escaped"},
			Comments: []fakegithub.Comment{{Author: user("bob"), Created: ago(5).Add(30 * time.Minute)}}},
		// I5: by a bot: counts only as a bug report.
		{Number: 105, Author: bot("renovate"), Created: ago(4), Updated: ago(3), Closed: tp(ago(3)), StateReason: "COMPLETED", Labels: []string{"bug"}},
		// I6: reopened and open; the first response is the 23rd comment (second page): 5h.
		{Number: 106, Author: user("user5"), Created: ago(9), Updated: ago(8), StateReason: "REOPENED", Comments: manyComments},
		// I7: created and resolved in W: 2 days.
		{Number: 107, Author: user("user6"), Created: ago(3), Updated: ago(1), Closed: tp(ago(1)), StateReason: "COMPLETED"},
	}
	web.Issues = []*fakegithub.Issue{{Number: 1, Author: user("user7"), Created: ago(25), Updated: ago(25)}}

	api.Discussions = []*fakegithub.Discussion{
		{Number: 1, Author: user("user1"), Created: ago(10), Updated: ago(10), Comments: []fakegithub.Comment{{Author: user("user1"), Created: ago(10).Add(h)}, {Author: user("bob"), Created: ago(10).Add(2 * h)}}},
		{Number: 2, Author: user("user2"), Created: ago(5), Updated: ago(5), Comments: []fakegithub.Comment{{Author: user("stale[bot]"), Created: ago(5).Add(h)}}},
		{Number: 3, Author: bot("github-actions"), Created: ago(4), Updated: ago(4), Comments: []fakegithub.Comment{{Author: user("carol"), Created: ago(4).Add(h)}}},
		{Number: 4, Author: user("user3"), Created: ago(40), Updated: ago(40)},
		{Number: 5, Author: user("user4"), Created: ago(2), Updated: ago(2), Comments: []fakegithub.Comment{{Author: user("alice"), Created: ago(2).Add(30 * time.Minute)}, {Author: user("dave"), Created: ago(2).Add(10 * time.Minute)}}},
	}

	api.Releases = []*fakegithub.Release{
		{Tag: "v1.2.0", Created: ago(5), Published: tp(ago(5))},
		{Tag: "v1.3.0-draft", Draft: true, Created: ago(3)},
		{Tag: "v1.1.0", Created: ago(45), Published: tp(ago(45))},
	}
	web.Releases = []*fakegithub.Release{{Tag: "v2.0.0", Created: ago(1), Published: tp(ago(1))}}

	day := func(s string) time.Time { t, _ := time.Parse(time.RFC3339, s); return t }
	api.Milestones = []*fakegithub.Milestone{
		{Number: 1, Title: "on time", Due: tp(day("2026-11-20T08:00:00Z")), Closed: tp(day("2026-11-20T23:00:00Z"))},
		{Number: 2, Title: "late", Due: tp(day("2026-11-15T08:00:00Z")), Closed: tp(day("2026-11-16T01:00:00Z"))},
		{Number: 3, Title: "no due date", Closed: tp(day("2026-11-25T10:00:00Z"))},
		{Number: 4, Title: "before W", Due: tp(day("2026-10-01T08:00:00Z")), Closed: tp(day("2026-10-01T09:00:00Z"))},
		{Number: 5, Title: "open", Due: tp(day("2026-12-20T08:00:00Z"))},
	}

	api.Alerts = []*fakegithub.Alert{
		{Number: 1, State: "open", Severity: "critical", Created: ago(20), Updated: ago(20)},
		{Number: 2, State: "open", Severity: "high", Created: ago(20), Updated: ago(20)},
		{Number: 3, State: "fixed", Severity: "critical", Created: ago(12), Updated: ago(10), Fixed: tp(ago(10))},
		{Number: 4, State: "fixed", Severity: "critical", Created: ago(8), Updated: ago(7).Add(12 * h), Fixed: tp(ago(7).Add(12 * h))},
		{Number: 5, State: "fixed", Severity: "high", Created: ago(60), Updated: ago(50), Fixed: tp(ago(50))},
	}
	web.Alerts = []*fakegithub.Alert{{Number: 1, State: "open", Severity: "critical", Created: ago(3), Updated: ago(3)}}
	legacy.Alerts = []*fakegithub.Alert{{Number: 1, State: "open", Severity: "critical", Created: ago(3), Updated: ago(3)}}
	tool.Alerts = []*fakegithub.Alert{
		{Number: 1, State: "open", Severity: "low", Created: ago(3), Updated: ago(3)},
		{Number: 2, State: "fixed", Severity: "medium", Created: ago(3), Updated: ago(2), Fixed: tp(ago(2))},
	}

	f.Update(func() {
		f.Repos = []*fakegithub.Repo{api, web, empty, legacy, tool}
		f.Teams["acme/core"] = []string{"bob"}
	})
}

func settingsFor(f *fakegithub.Server) *Settings {
	return &Settings{
		Settings: githubapiSettings(f.URL),
		Scope:    githubapi.Scope{Orgs: []string{"acme"}, Repos: []string{"other/tool"}},
		CoreTeam: []string{"alice", "@acme/core"}, Bots: []string{"ci-helper"},
	}
}

func newTestCollector(t testing.TB, f *fakegithub.Server, s *Settings, dir string) *Collector {
	t.Helper()
	os.Setenv("FAKE_GH_TOKEN", "ghp_test")
	if err := s.validate(kpi.Source{Name: "github"}); err != nil {
		t.Fatal(err)
	}
	c, err := newCollector(s, collectors.Env{StateDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return T }
	c.client.Transport.Sleep = func(ctx context.Context, d time.Duration) error { return ctx.Err() }
	return c
}

type want struct {
	name   string
	labels string
	value  float64
}

func values(ms []kpi.Measurement) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		out[m.Name+m.Labels.String()] = m.Value
	}
	return out
}

// expected is the hand-computed result of dataset at T; see the comments
// in dataset for each item's part.
var expected = []want{
	// Review waits (s): PR1 7200, PR2 10800, PR3 14400, PR9 7200, PR10 1800, PR11 1728000, PR12 21600, tool 1800.
	{"pr_first_review_seconds", `{stat="mean"}`, (7200 + 10800 + 14400 + 7200 + 1800 + 1728000 + 21600 + 1800) / 8.0},
	{"pr_first_review_seconds", `{stat="median"}`, (7200 + 10800) / 2.0},
	// Opened in W by non-bots: PR1-4, 7-10, 12 and tool's = 10.
	{"pr_opened", "{}", 10},
	// Merged in W by non-bots: PR1, 2, 4, 9, 10 and tool's = 6.
	{"pr_merged", "{}", 6},
	// Merge times: 3600, 7200, 10800, 36000, 86400, 86400 → (10800+36000)/2.
	{"pr_merge_seconds", `{stat="median"}`, 23400},
	{"contributors_active", "{}", 6},               // alice carol erin ivan veteran outsider
	{"contributors_new", "{}", 5},                  // all but veteran (2025)
	{"contributors_total", "{}", 7},                // + frank; zed (archived) and bots out
	{"external_contribution_ratio", "{}", 5.0 / 6}, // core: alice, bob (team)
	{"docs_pr_ratio", "{}", 4.0 / 6},               // PR1, PR4, PR9, tool (3rd files page)
	{"features_merged", "{}", 3},                   // PR1 feature, PR4 enhancement, PR10 Feature (2nd labels page)
	{"issue_resolution_seconds", `{stat="mean"}`, (172800 + 2592000 + 172800) / 3.0},
	{"issue_resolution_seconds", `{stat="median"}`, 172800},
	{"issue_first_response_seconds", `{stat="median"}`, 10800}, // 1800, 10800, 18000
	{"issue_closure_ratio", "{}", 3.0 / 6},                     // I1 I3 I4 I6 I7 web#1: I1 I3 I7 closed
	{"bug_escape_ratio", "{}", 2.0 / 4},                        // bugs I1 I3 I4 I5; escaped I1 I4
	{"stars", "{}", 120 + 30 + 5 + 7},
	{"forks", "{}", 12 + 3 + 0 + 2},
	{"watchers", "{}", 9 + 4 + 1 + 2},
	{"stars", `{repo="acme/api"}`, 120},
	{"stars", `{repo="acme/empty"}`, 5},
	{"watchers", `{repo="other/tool"}`, 2},
	{"discussions_created", "{}", 3},                               // D1 D2 D5
	{"discussion_first_response_seconds", `{stat="median"}`, 3600}, // D1 7200, D3 3600 (opened by a bot, answered by a person), D5 600
	{"releases", "{}", 2},                                          // api v1.2.0, web v2.0.0
	{"milestones_on_time_ratio", "{}", 0.5},
	{"dependabot_alerts_open", `{severity="critical"}`, 2}, // api#1, web#1 (legacy is archived)
	{"dependabot_alerts_open", `{severity="high"}`, 1},
	{"dependabot_alerts_open", `{severity="medium"}`, 0},
	{"dependabot_alerts_open", `{severity="low"}`, 1},
	{"vulnerability_resolution_seconds", `{severity="critical",stat="median"}`, (172800 + 129600) / 2.0},
	{"vulnerability_resolution_seconds", `{severity="medium",stat="median"}`, 86400},
}

// absent lists statistics over empty populations: no value, never 0.
var absent = []string{
	`vulnerability_resolution_seconds{severity="high",stat="median"}`,
	`vulnerability_resolution_seconds{severity="low",stat="median"}`,
	`stars{repo="acme/legacy"}`,
}

func checkExpected(t *testing.T, got map[string]float64) {
	t.Helper()
	for _, w := range expected {
		key := w.name + w.labels
		if w.labels == "{}" {
			key = w.name + "{}"
		}
		v, ok := got[key]
		if !ok {
			t.Errorf("%s missing", key)
			continue
		}
		if math.Abs(v-w.value) > 1e-6*math.Max(1, math.Abs(w.value)) {
			t.Errorf("%s = %v, want %v", key, v, w.value)
		}
	}
	for _, k := range absent {
		if _, ok := got[k]; ok {
			t.Errorf("%s should have no value", k)
		}
	}
}

func TestDatasetMeasurements(t *testing.T) {
	f := startFake(t)
	dataset(f)
	c := newTestCollector(t, f, settingsFor(f), t.TempDir())
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := values(ms)
	checkExpected(t, got)
	if t.Failed() {
		keys := make([]string, 0, len(got))
		for k := range got {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Logf("got:\n%s", strings.Join(keys, "\n"))
	}
	// Every document sent was valid against the schema (the fake rejects
	// others), and the API counters are reported.
	if got[`graphql_points_total{}`] <= 0 || got[`requests_total{api="graphql",code="200"}`] <= 0 {
		t.Errorf("API counters missing: %v", got)
	}
}

func TestQueriesAreValidAgainstGitHubSchema(t *testing.T) {
	f := startFake(t)
	dataset(f)
	c := newTestCollector(t, f, settingsFor(f), t.TempDir())
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A second, incremental run sends the search documents too.
	c.now = func() time.Time { return T.Add(time.Hour) }
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Update(func() {})
	seen := map[string]bool{}
	for _, q := range f.Queries {
		if _, err := ghschema.Validate(f.Schema, q); err != nil {
			t.Errorf("invalid document %s: %v", q, err)
		}
		for _, kind := range []string{"pullRequests(", "issues(", "discussions(", "search(", "reviews(first: 100", "files(first: 100", "labels(first: 100", "comments(first: 100"} {
			if strings.Contains(q, kind) {
				seen[kind] = true
			}
		}
	}
	for _, kind := range []string{"pullRequests(", "issues(", "discussions(", "search(", "reviews(first: 100", "files(first: 100", "labels(first: 100", "comments(first: 100"} {
		if !seen[kind] {
			t.Errorf("no document with %s was sent: that query is not covered", kind)
		}
	}
	// And every query struct, rendered by githubv4 itself, validates; this
	// includes follow-ups the dataset may not trigger.
	for name, q := range map[string]any{
		"prPage": &prPageQuery{}, "issuePage": &issuePageQuery{}, "discussionPage": &discussionPageQuery{},
		"searchIssues": &searchIssuesQuery{}, "searchDiscussions": &searchDiscussionsQuery{},
		"moreReviews": &moreReviewsQuery{}, "moreFiles": &moreFilesQuery{}, "moreLabels": &moreLabelsQuery{}, "moreComments": &moreCommentsQuery{},
	} {
		doc := renderQuery(t, q)
		if _, err := ghschema.Validate(f.Schema, doc); err != nil {
			t.Errorf("%s: %v\n%s", name, err, doc)
		}
	}
}

var _ = githubv4.String("")

// TestDefaultCatalogueBindings: the embedded catalogue's GitHub KPIs name
// series this source reports.
func TestDefaultCatalogueBindings(t *testing.T) {
	f := startFake(t)
	dataset(f)
	ms, err := newTestCollector(t, f, settingsFor(f), t.TempDir()).Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bindingtest.Check(t, Type, ms, 15)
}

func TestSettingsValidation(t *testing.T) {
	cat := func(settings string) (*Settings, error) {
		y := "sources:\n  - name: gh\n    type: github\n    settings:\n" + settings
		c, err := kpi.Parse("c.yml", []byte(y), kpi.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var s Settings
		if err := c.Sources[0].Settings.Decode(&s); err != nil {
			return nil, err
		}
		return &s, s.validate(c.Sources[0])
	}
	for settings, want := range map[string]string{
		"      token_env: T\n": `c.yml:5:7: source "gh" needs orgs or repos`,
		"      orgs: [a]\n":    "c.yml:5:7: set token_file, token_env or app: GitHub's API needs credentials",
		"      orgs: [a]\n      token_env: T\n      window: -3d\n":          `c.yml:7:15: must be a positive duration (such as 7d or 720h), not "-3d"`,
		"      repos: [justname]\n      token_env: T\n":                     `c.yml:5:15: repository "justname" is not owner/name`,
		"      orgs: [a]\n      token_env: T\n      core_team: [\"a/b\"]\n": `c.yml:7:19: core_team entry "a/b" is neither a login nor @org/team`,
		"      orgs: [a]\n      token_env: T\n      colour: red\n":          `c.yml:7:7: unknown field "colour"`,
	} {
		_, err := cat(settings)
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got %v\nwant %s", settings, err, want)
		}
	}
	s, err := cat("      orgs: [a]\n      token_env: T\n      core_team: [alice, \"@a/core\"]\n      core_team_slug: a/leads\n")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(s.coreLogins) != "[alice]" || fmt.Sprint(s.coreTeams) != "[a/leads a/core]" || s.window != DefaultWindow {
		t.Errorf("parsed: logins %v teams %v window %s", s.coreLogins, s.coreTeams, s.window)
	}
}

// Package actions is the source type "actions": GitHub Actions build health
// on the default branch — success ratio, run durations and recovery time
// from failing streaks — through the shared GitHub client layer.
package actions

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	"github.com/bakhmach-hub/kpi_exporter/internal/atomicfile"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "actions"

// Defaults.
const (
	DefaultWindow      = 30 * 24 * time.Hour
	DefaultLookback    = 14 * 24 * time.Hour
	DefaultFullRefresh = 24 * time.Hour
	// rerunReach: each run re-reads runs created this long before the last
	// read, so that re-runs of recent runs are seen without a full refresh.
	rerunReach = 3 * 24 * time.Hour
	// listCap is how many results GitHub returns for one workflow-runs
	// listing at most; beyond it the created range is split.
	listCap = 1000
	// maxReadBack bounds the pages read back, per workflow, to find where
	// a failing streak older than the window began (100 runs a page).
	maxReadBack = 100
)

func init() { collectors.Register(Type, New) }

// Settings of an actions source.
type Settings struct {
	githubapi.Settings `yaml:",inline"`
	githubapi.Scope    `yaml:",inline"`
	// Workflows limits the runs to these workflows, by name or file name
	// (ci.yml or .github/workflows/ci.yml); empty means all.
	Workflows []string `yaml:"workflows"`
	// Window is W; Lookback the history before W read to find where a
	// failing streak that recovers in W began; FullRefresh how often the
	// whole range is read again (to see old runs re-run).
	Window      string `yaml:"window"`
	Lookback    string `yaml:"lookback"`
	FullRefresh string `yaml:"full_refresh"`

	window, lookback, fullRefresh time.Duration
}

// Run is what is kept of a workflow run (its latest attempt).
type Run struct {
	Repo       string    `json:"r"`
	WorkflowID int64     `json:"w"`
	Workflow   string    `json:"n"`
	Path       string    `json:"p"`
	Conclusion string    `json:"c"`
	Attempt    int       `json:"a"`
	Created    time.Time `json:"cr"`
	Started    time.Time `json:"s"`
	Completed  time.Time `json:"u"` // updated_at of a completed run
}

type data struct {
	Version   int                  `json:"version"`
	Runs      map[int64]*Run       `json:"runs"`
	LastRead  map[string]time.Time `json:"last_read"` // per repository
	LastFull  map[string]time.Time `json:"last_full"`
	Truncated int                  `json:"truncated"`
	// Streaks holds, per repository and workflow whose oldest kept run
	// failed, the first run of that failing streak, read back however long
	// ago it began; Anchor is the oldest kept run it was found for.
	Streaks map[string]*Streak `json:"streaks,omitempty"`
}

// Streak is where a failing streak that reaches back past the kept runs
// began.
type Streak struct {
	Anchor int64 `json:"anchor"`
	Start  *Run  `json:"start"`
}

func streakKey(repo string, wf int64) string { return repo + "#" + strconv.FormatInt(wf, 10) }

// Collector is an actions source.
type Collector struct {
	s      *Settings
	client *githubapi.Client
	log    *zap.Logger
	state  collectors.StateStore
	now    func() time.Time
	mu     sync.Mutex
	d      *data
}

func (s *Settings) validate(src kpi.Source) error {
	at := githubapi.SettingsErrorf(src.Settings)
	if err := s.Settings.Validate(at); err != nil {
		return err
	}
	if err := s.Scope.Validate(src.Name, at); err != nil {
		return err
	}
	var err error
	if s.window, err = collectors.ParseDuration(s.Window, DefaultWindow); err != nil {
		return at(".window", "%v", err)
	}
	if s.lookback, err = collectors.ParseDuration(s.Lookback, DefaultLookback); err != nil {
		return at(".lookback", "%v", err)
	}
	if s.fullRefresh, err = collectors.ParseDuration(s.FullRefresh, DefaultFullRefresh); err != nil {
		return at(".full_refresh", "%v", err)
	}
	return nil
}

// New builds an actions source from its declaration.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	if err := s.validate(src); err != nil {
		return nil, err
	}
	return newCollector(&s, env, nil)
}

func newCollector(s *Settings, env collectors.Env, base http.RoundTripper) (*Collector, error) {
	client, err := githubapi.New(s.Settings, base)
	if err != nil {
		return nil, err
	}
	log := env.Log()
	c := &Collector{s: s, client: client, log: log, state: env.SourceState(), now: time.Now}
	c.d = c.load()
	client.LoadETags(c.state)
	return c, nil
}

// workflows reads a repository's workflows (by conditional request) and
// returns the ones the workflows setting selects, by id.
func (c *Collector) workflows(ctx context.Context, full string) (map[int64]*gh.Workflow, error) {
	owner, name, _ := strings.Cut(full, "/")
	out := map[int64]*gh.Workflow{}
	opt := &gh.ListOptions{PerPage: 100}
	for {
		page, resp, err := c.client.REST.Actions.ListWorkflows(ctx, owner, name, opt)
		if err != nil {
			return nil, fmt.Errorf("%s workflows: %w", full, err)
		}
		for _, w := range page.Workflows {
			if c.selects(w) {
				out[w.GetID()] = w
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

func (c *Collector) selects(w *gh.Workflow) bool {
	if len(c.s.Workflows) == 0 {
		return true
	}
	for _, want := range c.s.Workflows {
		if strings.EqualFold(want, w.GetName()) || want == w.GetPath() || want == path.Base(w.GetPath()) {
			return true
		}
	}
	return false
}

// Collect reads the new runs of every repository in scope and measures.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	now := c.now().UTC()
	infos, err := c.client.ListScope(ctx, c.s.Scope, func(full string) {
		c.log.Warn("repository not found; left out of scope", zap.String("repo", full))
	})
	if err != nil {
		return nil, err
	}
	oldest := now.Add(-c.s.window - c.s.lookback)
	names := make([]string, len(infos))
	// Listings are open-ended and start on a weekly grid of the
	// repository's own, so that a listing keeps its URL for a week:
	// unchanged, it is a 304, which costs no rate limit. The grids of
	// different repositories are staggered, so the weekly moves are spread
	// over the week's runs instead of all falling in one.
	branch := map[string]string{}
	for i, info := range infos {
		names[i] = info.FullName
		branch[info.FullName] = info.DefaultBranch
	}
	err = c.client.Each(ctx, names, func(full string) error {
		c.mu.Lock()
		from := oldest
		if last, ok := c.d.LastRead[full]; ok && now.Sub(c.d.LastFull[full]) < c.s.fullRefresh {
			from = maxTime(oldest, last.Add(-rerunReach))
		}
		c.mu.Unlock()
		wfs, err := c.workflows(ctx, full)
		if err != nil {
			return err
		}
		runs, err := c.list(ctx, full, branch[full], gridFloor(from, full), now, true, 0)
		if err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range runs {
			wf := wfs[r.GetWorkflowID()]
			if wf == nil {
				continue // not a selected workflow
			}
			c.d.Runs[r.GetID()] = &Run{Repo: full, WorkflowID: r.GetWorkflowID(), Workflow: wf.GetName(), Path: wf.GetPath(),
				Conclusion: r.GetConclusion(), Attempt: r.GetRunAttempt(), Created: r.GetCreatedAt().UTC(),
				Started: r.GetRunStartedAt().UTC(), Completed: r.GetUpdatedAt().UTC()}
		}
		if from.Equal(oldest) {
			c.d.LastFull[full] = now
		}
		c.d.LastRead[full] = now
		return nil
	})
	inScope := map[string]bool{}
	for _, n := range names {
		inScope[n] = true
	}
	c.mu.Lock()
	for id, r := range c.d.Runs {
		if !inScope[r.Repo] || r.Created.Before(oldest) && r.Completed.Before(oldest) {
			delete(c.d.Runs, id)
		}
	}
	c.mu.Unlock()
	if err == nil {
		err = c.readBackStreaks(ctx, branch)
	}
	c.save()
	if err != nil {
		return nil, err
	}
	out := Measure(c.runs(), now.Add(-c.s.window), now)
	if c.d.Truncated > 0 {
		out = append(out, kpi.Measurement{Name: "truncated", Value: float64(c.d.Truncated), Labels: kpi.Labels{{Name: "what", Value: "workflow_runs"}}})
	}
	return append(out, c.client.Measurements()...), nil
}

// gridWeek is the period of the listing grid.
const gridWeek = 7 * 24 * time.Hour

// gridFloor returns the last point of the repository's weekly grid at or
// before t: whole seconds, offset by a hash of the repository's name.
func gridFloor(t time.Time, repo string) time.Time {
	h := fnv.New64a()
	h.Write([]byte(repo))
	offset := time.Duration(h.Sum64()%uint64(gridWeek/time.Second)) * time.Second
	since := t.Sub(time.Unix(0, 0).Add(offset))
	return t.Add(-(since % gridWeek)).Truncate(time.Second).UTC()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// runs are the kept runs and the first runs of the failing streaks that
// began before them.
func (c *Collector) runs() []*Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Run, 0, len(c.d.Runs)+len(c.d.Streaks))
	for _, r := range c.d.Runs {
		out = append(out, r)
	}
	for _, st := range c.d.Streaks {
		if _, kept := c.d.Runs[st.Anchor]; kept && st.Start != nil {
			out = append(out, st.Start)
		}
	}
	return out
}

// readBackStreaks finds, for every workflow whose oldest kept run failed,
// where that failing streak began, reading the workflow's earlier runs back
// until a successful one (or the start of its history). The answer is kept
// until the oldest kept run changes, so a streak costs its pages once:
// one request per 100 runs older than the kept ones, at most maxReadBack.
func (c *Collector) readBackStreaks(ctx context.Context, branch map[string]string) error {
	c.mu.Lock()
	type kept struct {
		id int64
		*Run
	}
	oldest := map[string]kept{}
	for id, r := range c.d.Runs {
		k := streakKey(r.Repo, r.WorkflowID)
		if o, ok := oldest[k]; !ok || r.Completed.Before(o.Completed) || r.Completed.Equal(o.Completed) && id < o.id {
			oldest[k] = kept{id, r}
		}
	}
	if c.d.Streaks == nil {
		c.d.Streaks = map[string]*Streak{}
	}
	var todo []kept
	for k, st := range c.d.Streaks {
		if o, ok := oldest[k]; !ok || !failing[o.Conclusion] || st.Anchor != o.id {
			delete(c.d.Streaks, k)
		}
	}
	for k, o := range oldest {
		if _, known := c.d.Streaks[k]; !known && failing[o.Conclusion] {
			todo = append(todo, o)
		}
	}
	c.mu.Unlock()
	sort.Slice(todo, func(i, j int) bool { return todo[i].Repo+todo[i].Workflow < todo[j].Repo+todo[j].Workflow })
	for _, o := range todo {
		start, err := c.readBack(ctx, o.Run, branch[o.Repo])
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.d.Streaks[streakKey(o.Repo, o.WorkflowID)] = &Streak{Anchor: o.id, Start: start}
		c.mu.Unlock()
	}
	return nil
}

// readBack reads a workflow's runs created before anchor, newest first,
// and returns the earliest failing run before the first success.
func (c *Collector) readBack(ctx context.Context, anchor *Run, branch string) (*Run, error) {
	owner, name, _ := strings.Cut(anchor.Repo, "/")
	earliest := anchor
	before := anchor.Created.Add(-time.Second)
	for page := 0; page < maxReadBack; page++ {
		opt := &gh.ListWorkflowRunsOptions{Branch: branch, Status: "completed",
			Created: "<=" + before.UTC().Format(time.RFC3339), ListOptions: gh.ListOptions{PerPage: 100}}
		runs, _, err := c.client.REST.Actions.ListWorkflowRunsByID(ctx, owner, name, anchor.WorkflowID, opt)
		if err != nil {
			return nil, fmt.Errorf("%s workflow %s runs before %s: %w", anchor.Repo, anchor.Workflow, before.Format(time.RFC3339), err)
		}
		for _, r := range runs.WorkflowRuns {
			if r.GetHeadBranch() != branch || r.GetStatus() != "completed" {
				continue
			}
			switch {
			case failing[r.GetConclusion()]:
				earliest = &Run{Repo: anchor.Repo, WorkflowID: anchor.WorkflowID, Workflow: anchor.Workflow, Path: anchor.Path,
					Conclusion: r.GetConclusion(), Attempt: r.GetRunAttempt(), Created: r.GetCreatedAt().UTC(),
					Started: r.GetRunStartedAt().UTC(), Completed: r.GetUpdatedAt().UTC()}
			case r.GetConclusion() == "success":
				return earliest, nil
			}
		}
		n := len(runs.WorkflowRuns)
		if n < 100 {
			return earliest, nil // the workflow's history begins here
		}
		next := runs.WorkflowRuns[n-1].GetCreatedAt().UTC().Add(-time.Second)
		if !next.Before(before) {
			next = before.Add(-time.Second)
		}
		before = next
	}
	c.log.Warn("a failing streak reaches back further than the read-back bound; its recovery time is a lower bound",
		zap.String("repo", anchor.Repo), zap.String("workflow", anchor.Workflow), zap.Int("runs_read", maxReadBack*100))
	return earliest, nil
}

// list reads the completed default-branch runs created in [from, to] (from
// on, when open: the URL then does not change with the time of the run),
// 100 a page, splitting the range when GitHub would cap the listing.
func (c *Collector) list(ctx context.Context, full, branch string, from, to time.Time, open bool, depth int) ([]*gh.WorkflowRun, error) {
	owner, name, _ := strings.Cut(full, "/")
	created := from.UTC().Format(time.RFC3339) + ".." + to.UTC().Format(time.RFC3339)
	if open {
		created = ">=" + from.UTC().Format(time.RFC3339)
	}
	opt := &gh.ListWorkflowRunsOptions{Branch: branch, Status: "completed", Created: created,
		ListOptions: gh.ListOptions{PerPage: 100}}
	var out []*gh.WorkflowRun
	for {
		page, resp, err := c.client.REST.Actions.ListRepositoryWorkflowRuns(ctx, owner, name, opt)
		if err != nil {
			return nil, fmt.Errorf("%s workflow runs: %w", full, err)
		}
		if opt.Page == 0 && page.GetTotalCount() > listCap {
			if to.Sub(from) > time.Minute && depth < 30 {
				mid := from.Add(to.Sub(from) / 2).Truncate(time.Second)
				a, err := c.list(ctx, full, branch, from, mid, false, depth+1)
				if err != nil {
					return nil, err
				}
				b, err := c.list(ctx, full, branch, mid.Add(time.Second), to, false, depth+1)
				if err != nil {
					return nil, err
				}
				return append(a, b...), nil
			}
			c.mu.Lock()
			c.d.Truncated += page.GetTotalCount() - listCap
			c.mu.Unlock()
		}
		for _, r := range page.WorkflowRuns {
			// The branch filter is GitHub's; checked again, as is the status.
			if r.GetHeadBranch() == branch && r.GetStatus() == "completed" {
				out = append(out, r)
			}
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opt.Page = resp.NextPage
	}
}

var counted = map[string]bool{"success": true, "failure": true, "timed_out": true, "startup_failure": true}
var failing = map[string]bool{"failure": true, "timed_out": true, "startup_failure": true}

// Measure computes the measurements over runs completed in W = (from, to]:
// pooled, and per workflow name with a workflow label.
func Measure(runs []*Run, from, to time.Time) []kpi.Measurement {
	inW := func(t time.Time) bool { return t.After(from) && !t.After(to) }
	type acc struct {
		runs, ok, counted   int
		durations, recovery []float64
	}
	pooled := &acc{}
	per := map[string]*acc{}
	get := func(wf string) *acc {
		if per[wf] == nil {
			per[wf] = &acc{}
		}
		return per[wf]
	}
	for _, r := range runs {
		if !inW(r.Completed) {
			continue
		}
		for _, a := range []*acc{pooled, get(r.Workflow)} {
			a.runs++
			if counted[r.Conclusion] {
				a.counted++
			}
			if r.Conclusion == "success" {
				a.ok++
				a.durations = append(a.durations, r.Completed.Sub(r.Started).Seconds())
			}
		}
	}
	// Recovery: per repository and workflow, streaks of failing runs in
	// completion order, ended by the next successful run.
	type key struct {
		repo string
		wf   int64
	}
	byWF := map[key][]*Run{}
	for _, r := range runs {
		byWF[key{r.Repo, r.WorkflowID}] = append(byWF[key{r.Repo, r.WorkflowID}], r)
	}
	for _, rs := range byWF {
		sort.Slice(rs, func(i, j int) bool { return rs[i].Completed.Before(rs[j].Completed) })
		var streak *Run
		for _, r := range rs {
			switch {
			case failing[r.Conclusion]:
				if streak == nil {
					streak = r
				}
			case r.Conclusion == "success":
				if streak != nil && inW(r.Completed) {
					d := r.Completed.Sub(streak.Completed).Seconds()
					pooled.recovery = append(pooled.recovery, d)
					get(r.Workflow).recovery = append(get(r.Workflow).recovery, d)
				}
				streak = nil
			}
		}
	}
	var out []kpi.Measurement
	emit := func(a *acc, wf string) {
		var ls kpi.Labels
		if wf != "" {
			ls = kpi.Labels{{Name: "workflow", Value: wf}}
		}
		with := func(stat string) kpi.Labels {
			l := append(kpi.Labels{{Name: "stat", Value: stat}}, ls...)
			sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
			return l
		}
		out = append(out, kpi.Measurement{Name: "ci_runs", Value: float64(a.runs), Labels: ls})
		if a.counted > 0 {
			out = append(out, kpi.Measurement{Name: "ci_success_ratio", Value: float64(a.ok) / float64(a.counted), Labels: ls})
		}
		if len(a.durations) > 0 {
			out = append(out, kpi.Measurement{Name: "ci_run_duration_seconds", Value: collectors.Median(a.durations), Labels: with("median")},
				kpi.Measurement{Name: "ci_run_duration_seconds", Value: collectors.P95(a.durations), Labels: with("p95")})
		}
		if len(a.recovery) > 0 {
			out = append(out, kpi.Measurement{Name: "ci_recovery_seconds", Value: collectors.Mean(a.recovery), Labels: with("mean")},
				kpi.Measurement{Name: "ci_recovery_seconds", Value: collectors.Median(a.recovery), Labels: with("median")})
		}
	}
	emit(pooled, "")
	wfs := make([]string, 0, len(per))
	for wf := range per {
		wfs = append(wfs, wf)
	}
	sort.Strings(wfs)
	for _, wf := range wfs {
		emit(per[wf], wf)
	}
	return out
}

const dataFile = "actions.json.gz"

func (c *Collector) save() {
	if c.state == nil {
		return
	}
	c.mu.Lock()
	data, err := atomicfile.GzipJSON(c.d)
	c.mu.Unlock()
	if err == nil {
		err = c.state.Save(dataFile, data)
	}
	if err == nil {
		err = c.client.SaveETags(c.state)
	}
	if err != nil {
		c.log.Error("saving workflow runs failed", zap.Error(err))
	}
}

func (c *Collector) load() *data {
	d := &data{Version: 1, Runs: map[int64]*Run{}, LastRead: map[string]time.Time{}, LastFull: map[string]time.Time{}}
	if c.state == nil {
		return d
	}
	var got data
	raw, err := c.state.Load(dataFile)
	if err == nil {
		err = atomicfile.DecodeGzipJSON(raw, &got)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return d
	}
	if err != nil || got.Version != 1 || got.Runs == nil || got.LastRead == nil || got.LastFull == nil {
		c.log.Error("saved workflow runs unreadable; reading them again", zap.Error(err))
		return d
	}
	return &got
}

// Package actions is the source type "actions": GitHub Actions build health
// on the default branch — success ratio, run durations and recovery time
// from failing streaks — through the shared GitHub client layer.
package actions

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"path/filepath"
	"sort"
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
}

// Collector is an actions source.
type Collector struct {
	s      *Settings
	client *githubapi.Client
	log    *zap.Logger
	dir    string
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
	c := &Collector{s: s, client: client, log: log, dir: env.StateDir, now: time.Now}
	c.d = c.load()
	client.LoadETags(c.dir)
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
		runs, err := c.list(ctx, full, branch[full], from, now, 0)
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

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (c *Collector) runs() []*Run {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Run, 0, len(c.d.Runs))
	for _, r := range c.d.Runs {
		out = append(out, r)
	}
	return out
}

// list reads the completed default-branch runs created in [from, to], 100
// a page, splitting the range when GitHub would cap the listing.
func (c *Collector) list(ctx context.Context, full, branch string, from, to time.Time, depth int) ([]*gh.WorkflowRun, error) {
	owner, name, _ := strings.Cut(full, "/")
	opt := &gh.ListWorkflowRunsOptions{Branch: branch, Status: "completed",
		Created:     from.UTC().Format(time.RFC3339) + ".." + to.UTC().Format(time.RFC3339),
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
				a, err := c.list(ctx, full, branch, from, mid, depth+1)
				if err != nil {
					return nil, err
				}
				b, err := c.list(ctx, full, branch, mid.Add(time.Second), to, depth+1)
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
	if c.dir == "" {
		return
	}
	c.mu.Lock()
	data, err := atomicfile.GzipJSON(c.d)
	c.mu.Unlock()
	if err == nil {
		err = atomicfile.Write(filepath.Join(c.dir, dataFile), data)
	}
	if err == nil {
		err = c.client.SaveETags(c.dir)
	}
	if err != nil {
		c.log.Error("saving workflow runs failed", zap.Error(err))
	}
}

func (c *Collector) load() *data {
	d := &data{Version: 1, Runs: map[int64]*Run{}, LastRead: map[string]time.Time{}, LastFull: map[string]time.Time{}}
	if c.dir == "" {
		return d
	}
	var got data
	err := atomicfile.ReadGzipJSON(filepath.Join(c.dir, dataFile), &got)
	if errors.Is(err, fs.ErrNotExist) {
		return d
	}
	if err != nil || got.Version != 1 || got.Runs == nil || got.LastRead == nil || got.LastFull == nil {
		c.log.Error("saved workflow runs unreadable; reading them again", zap.Error(err))
		return d
	}
	return &got
}

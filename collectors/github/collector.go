package github

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	"github.com/bakhmach-hub/kpi_exporter/internal/atomicfile"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func init() { collectors.Register(Type, New) }

// dataFile is where the histories are kept in the source's state directory.
const dataFile = "github.json.gz"

// Progress is how far a history sync has come.
type Progress struct {
	Done, Total, Items int
}

// Collector is a github source.
type Collector struct {
	s      *Settings
	client *githubapi.Client
	log    *zap.Logger
	state  collectors.StateStore
	prog   func(done, total int, detail string)
	now    func() time.Time

	data     *Data
	saveMu   sync.Mutex
	lastSave time.Time
	warned   map[string]bool
}

// New builds a github source from its declaration.
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
	c := &Collector{s: s, client: client, log: log, state: env.SourceState(), prog: env.Progress, now: time.Now, warned: map[string]bool{}}
	c.data = c.load()
	client.LoadETags(c.state)
	return c, nil
}

func (c *Collector) measurer(now time.Time) *measurer {
	return newMeasurer(c.s, c.data, nil, now)
}

func (c *Collector) report(p Progress) {
	if c.prog != nil {
		c.prog(p.Done, p.Total, fmt.Sprintf("%d items", p.Items))
	}
}

func (c *Collector) warnOnce(key, msg string) {
	if !c.warned[key] {
		c.warned[key] = true
		c.log.Warn(msg)
	}
}

// Collect syncs what changed and measures. A failed run keeps everything it
// fetched (and its cursors) for the next one, but reports no measurements.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	now := c.now().UTC()
	y := &syncer{c: c, ctx: ctx, now: now}
	d := c.data
	repos, err := y.scope()
	if err != nil {
		return nil, err
	}
	inScope := map[string]bool{}
	for _, r := range repos {
		inScope[r] = true
	}
	for name := range d.Repos {
		if !inScope[name] {
			delete(d.Repos, name)
		}
	}
	if !d.LastFull.IsZero() && now.Sub(d.LastFull) >= c.s.fullResync {
		c.log.Info("periodic full resync of the histories", zap.Duration("full_resync", c.s.fullResync))
		for _, r := range d.Repos {
			r.Done, r.Cursors = map[string]bool{}, map[string]string{}
		}
		d.SyncStarted = now
	}
	complete := func() bool {
		for _, r := range repos {
			for _, k := range kinds {
				if !d.Repos[r].Done[k] {
					return false
				}
			}
		}
		return true
	}
	wasComplete := complete()
	err = y.histories(repos)
	if err == nil && !wasComplete && complete() {
		d.LastFull = d.SyncStarted
		if d.SearchedUntil.IsZero() {
			d.SearchedUntil = d.SyncStarted
		}
	}
	if err == nil && !d.SearchedUntil.IsZero() {
		if err = y.updates(d.SearchedUntil); err == nil {
			d.SearchedUntil = now
		}
	}
	if err == nil {
		err = y.restResources(repos)
	}
	c.prune(now)
	c.save(true)
	if err != nil {
		return nil, err
	}
	if !complete() {
		return nil, fmt.Errorf("histories are not complete yet")
	}
	m := newMeasurer(c.s, d, repos, now)
	out := m.measure(d)
	whats := make([]string, 0, len(d.Truncated))
	for w := range d.Truncated {
		whats = append(whats, w)
	}
	sort.Strings(whats)
	for _, w := range whats {
		out = append(out, kpi.Measurement{Name: "truncated", Value: float64(d.Truncated[w]), Labels: kpi.Labels{{Name: "what", Value: w}}})
	}
	out = append(out, c.client.Measurements()...)
	return out, nil
}

// prune drops the file lists of pull requests merged before the window:
// only the docs ratio reads them.
func (c *Collector) prune(now time.Time) {
	cut := now.Add(-c.s.window - 24*time.Hour)
	for _, r := range c.data.Repos {
		for _, pr := range r.PRs {
			if pr.Merged != nil && pr.Merged.Before(cut) {
				pr.Files = nil
			}
		}
	}
}

// saveSoon saves during a long sync, at most every 30 seconds.
func (c *Collector) saveSoon() { c.save(false) }

func (c *Collector) save(force bool) {
	if c.state == nil {
		return
	}
	c.saveMu.Lock()
	defer c.saveMu.Unlock()
	if !force && time.Since(c.lastSave) < 30*time.Second {
		return
	}
	c.lastSave = time.Now()
	data, err := atomicfile.GzipJSON(c.data)
	if err == nil {
		err = c.state.Save(dataFile, data)
	}
	if err == nil {
		err = c.client.SaveETags(c.state)
	}
	if err != nil {
		c.log.Error("saving GitHub sync progress failed", zap.Error(err))
	}
}

func (c *Collector) load() *Data {
	if c.state == nil {
		return newData()
	}
	path := dataFile
	var d Data
	raw, err := c.state.Load(dataFile)
	if err == nil {
		err = atomicfile.DecodeGzipJSON(raw, &d)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return newData()
	}
	if err != nil || d.Version != dataVersion {
		c.log.Error("GitHub sync progress unreadable; starting a full sync", zap.String("file", path), zap.Error(err))
		return newData()
	}
	if d.Repos == nil {
		d.Repos = map[string]*Repo{}
	}
	if d.Truncated == nil {
		d.Truncated = map[string]int{}
	}
	for _, r := range d.Repos {
		if r.PRs == nil {
			r.PRs = map[int]*PR{}
		}
		if r.Issues == nil {
			r.Issues = map[int]*Issue{}
		}
		if r.Discussions == nil {
			r.Discussions = map[int]*Discussion{}
		}
		if r.Cursors == nil {
			r.Cursors = map[string]string{}
		}
		if r.Done == nil {
			r.Done = map[string]bool{}
		}
	}
	return &d
}

// Package app runs the daemon's flow: the scheduler feeds source readings
// into the store, every change re-evaluates the catalogue, and the result
// is published to the exporter as an immutable snapshot. The catalogue can
// be reloaded while running; a catalogue that does not load leaves the
// previous one running.
package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/exporter"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
	"github.com/bakhmach-hub/kpi_exporter/store"
)

// Defaults of the evaluation loop.
const (
	// DefaultEvalInterval re-evaluates without new readings, since targets
	// change with the calendar and values go stale with time.
	DefaultEvalInterval = 15 * time.Second
	// DefaultSaveInterval bounds how often the state file is written.
	DefaultSaveInterval = 5 * time.Second
)

// Loaded is a catalogue together with the collectors of its enabled
// sources.
type Loaded struct {
	Catalogue *kpi.Catalogue
	Jobs      []collectors.Job
	// Passive holds the enabled sources whose values are pushed, not
	// polled, by name; they have no job.
	Passive map[string]collectors.Passive
	// Envs are what each enabled source's collector was built with, to
	// build it again (a replica taking a source over reads its progress).
	Envs map[string]collectors.Env
}

// Load reads and validates a catalogue (the embedded default when path is
// empty) and builds the collector of every enabled source. stateDir, when
// set, gets a sub-directory per source for the source's own progress.
func Load(path, stateDir string, logger *zap.Logger) (*Loaded, error) {
	return LoadWith(path, stateDir, logger, LoadOptions{})
}

// LoadOptions are what sources get beyond their settings.
type LoadOptions struct {
	// Progress is told how a source's long first sync advances.
	Progress func(source string, done, total int, detail string)
	// Latest gives sources computed from others the latest values.
	Latest func() collectors.Latest
	// State, when set, gives each source where it keeps its progress
	// (the state database); otherwise it is a sub-directory of stateDir.
	State func(source string) collectors.StateStore
}

// LoadWith is Load with options.
func LoadWith(path, stateDir string, logger *zap.Logger, o LoadOptions) (*Loaded, error) {
	progress := o.Progress
	// Relative paths in settings resolve against the catalogue's directory;
	// the embedded catalogue counts as living in ./examples, beside the
	// values file it names.
	name, data, baseDir := examples.CatalogueName, examples.Catalogue, "examples"
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("catalogue: %w", err)
		}
		name, baseDir = path, filepath.Dir(path)
	}
	if abs, err := filepath.Abs(baseDir); err == nil {
		baseDir = abs
	}
	c, err := kpi.Parse(name, data, kpi.ParseOptions{KnownType: collectors.Known, RequireKPIs: true, Getenv: os.Getenv})
	if err != nil {
		return nil, err
	}
	l := &Loaded{Catalogue: c, Passive: map[string]collectors.Passive{}, Envs: map[string]collectors.Env{}}
	var errs []error
	for _, src := range c.Sources {
		if !src.Enabled {
			continue
		}
		env := collectors.Env{
			Logger:  logger.With(zap.String("source", src.Name), zap.String("collector", src.Type)),
			BaseDir: baseDir,
		}
		if stateDir != "" {
			env.StateDir = filepath.Join(stateDir, "sources", src.Name)
		}
		if o.State != nil {
			env.State = o.State(src.Name)
		}
		if progress != nil {
			name := src.Name
			env.Progress = func(done, total int, detail string) { progress(name, done, total, detail) }
		}
		env.Latest = o.Latest
		l.Envs[src.Name] = env
		col, err := collectors.New(src, env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if p, ok := col.(collectors.Passive); ok {
			l.Passive[src.Name] = p
			continue
		}
		l.Jobs = append(l.Jobs, collectors.Job{Source: src, Collector: col})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := checkDependencies(c, l.Jobs); err != nil {
		return nil, err
	}
	return l, nil
}

// checkDependencies rejects sources that read each other in a cycle, and
// ones that read an undeclared source or KPI.
func checkDependencies(c *kpi.Catalogue, jobs []collectors.Job) error {
	deps := map[string][]string{}
	pos := map[string]kpi.Position{}
	for _, j := range jobs {
		d, ok := j.Collector.(collectors.Dependent)
		if !ok {
			continue
		}
		pos[j.Source.Name] = j.Source.Pos
		for _, dep := range d.DependsOn() {
			if id, isKPI := strings.CutPrefix(dep, "kpi:"); isKPI {
				found := false
				for _, k := range c.KPIs {
					if k.ID == id {
						found = true
						// A KPI's value comes from its source.
						deps[j.Source.Name] = append(deps[j.Source.Name], k.Source.Source)
					}
				}
				if !found {
					return fmt.Errorf("%s: source %s reads KPI %q, which the catalogue does not have", j.Source.Pos, j.Source.Name, id)
				}
				continue
			}
			if _, ok := c.Source(dep); !ok {
				return fmt.Errorf("%s: source %s reads source %q, which the catalogue does not declare", j.Source.Pos, j.Source.Name, dep)
			}
			deps[j.Source.Name] = append(deps[j.Source.Name], dep)
		}
	}
	state := map[string]int{}
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("%s: sources read each other in a cycle: %s", pos[path[0]], strings.Join(append(path, n), " → "))
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range deps[n] {
			if d == n {
				continue // a derived source reading its own measurements is checked by the source
			}
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		return nil
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return err
		}
	}
	return nil
}

// Config configures an App.
type Config struct {
	// CatalogueFile is the catalogue's path; empty means the embedded one.
	CatalogueFile string
	Store         *store.Store
	Exporter      *exporter.Exporter
	Logger        *zap.Logger
	// EvalInterval and SaveInterval default to DefaultEvalInterval and
	// DefaultSaveInterval.
	EvalInterval time.Duration
	SaveInterval time.Duration
	// OrphanRetention is how long the state of sources and KPIs that left
	// the catalogue is kept; 0 means store.DefaultOrphanRetention.
	OrphanRetention time.Duration
	// Now is the clock that evaluations, history and publication use; nil
	// means time.Now. Tests move it to prove that nothing depends on the
	// date they run.
	Now func() time.Time
	// Leases, with a PostgreSQL store, says which polled sources run on
	// this replica; nil runs every source here.
	Leases *store.Leases
	// RefreshInterval is how often a PostgreSQL store polls for the other
	// replicas' changes (it also refreshes at once when the database
	// notifies a commit); 0 means DefaultRefreshInterval.
	RefreshInterval time.Duration
}

// DefaultRefreshInterval bounds how long a replica takes to see what
// another replica wrote (readings, history points, pushed values).
const DefaultRefreshInterval = time.Second

// App is the running daemon minus its HTTP server.
type App struct {
	cfg       Config
	log       *zap.Logger
	scheduler *collectors.Scheduler

	results  chan collectors.Result
	reloads  chan chan error
	pushes   chan pushRequest
	stopping chan struct{}

	// Owned by the loop goroutine.
	loaded *Loaded
	// held is the set of polled sources this replica runs (with Leases);
	// running those the scheduler has.
	held, running map[string]bool
	dbHealthy     bool
	lastRefresh   time.Time
	published     *exporter.Snapshot
	// zones holds each KPI's zone and since when, as the evaluations saw
	// it: the history-based estimate is taken when the zone changes (or at
	// start) and kept while the zone holds, since the history is thinned to
	// one point an hour and would move the estimate forward.
	zones map[string]zoneState
}

// New loads the catalogue and returns an app ready to Run. The initial
// snapshot (from the state directory's last values) is published at once,
// before any source runs.
func New(cfg Config) (*App, error) {
	if cfg.EvalInterval <= 0 {
		cfg.EvalInterval = DefaultEvalInterval
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = DefaultSaveInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	a := &App{cfg: cfg, log: cfg.Logger, results: make(chan collectors.Result, 64), reloads: make(chan chan error),
		pushes: make(chan pushRequest), stopping: make(chan struct{})}
	l, err := LoadWith(cfg.CatalogueFile, cfg.Store.Dir(), cfg.Logger, a.loadOptions())
	if err != nil {
		cfg.Exporter.SetReloadResult(false, a.cfg.Now())
		return nil, err
	}
	cfg.Exporter.SetReloadResult(true, a.cfg.Now())
	a.loaded = l
	a.scheduler = collectors.NewScheduler(cfg.Logger, func(r collectors.Result) {
		select {
		case a.results <- r:
		case <-a.stopping: // the loop is shutting down and reads no more
		}
	})
	a.scheduler.Now = cfg.Now
	a.retain()
	if n := cfg.Store.ClampFuture(a.cfg.Now()); n > 0 {
		a.log.Warn("stored readings or history carried times in the future (a clock stepped back, or state copied from another machine); they are taken as now",
			zap.Int("entries", n))
	}
	a.dbHealthy = true
	a.publish(a.cfg.Now())
	return a, nil
}

// Catalogue returns the catalogue loaded at start. (Reloads replace it
// inside the loop; use the exporter's snapshot for the current one.)
func (a *App) Catalogue() *kpi.Catalogue { return a.loaded.Catalogue }

// Run starts the sources and evaluates until ctx is done; then it stops the
// sources, waits for the runs under way, and saves the state.
func (a *App) Run(ctx context.Context) error {
	var leases <-chan map[string]bool
	if l := a.cfg.Leases; l != nil {
		l.SetSources(a.polled())
		leases = l.Changes()
		leaseCtx, stopLeases := context.WithCancel(context.Background())
		leaseDone := make(chan struct{})
		go func() { l.Run(leaseCtx); close(leaseDone) }()
		// The leases end after the sources stopped (Run's shutdown), so
		// that no other replica starts one while a run is still under way.
		defer func() { stopLeases(); <-leaseDone }()
	}
	a.applyJobs(true)
	a.log.Info("sources started", zap.Int("enabled", len(a.loaded.Jobs)+len(a.loaded.Passive)), zap.Int("polled", len(a.loaded.Jobs)),
		zap.Int("pushed", len(a.loaded.Passive)), zap.Int("declared", len(a.loaded.Catalogue.Sources)),
		zap.Int("kpis", len(a.loaded.Catalogue.KPIs)))
	eval := time.NewTicker(a.cfg.EvalInterval)
	defer eval.Stop()
	save := time.NewTicker(a.cfg.SaveInterval)
	defer save.Stop()
	compact := time.NewTicker(time.Hour)
	defer compact.Stop()
	a.cfg.Store.Compact(a.cfg.Now())
	var refresh <-chan time.Time
	notified := make(chan struct{}, 1)
	if a.cfg.Store.Postgres() {
		t := time.NewTicker(a.cfg.RefreshInterval)
		defer t.Stop()
		refresh = t.C
		listenCtx, stopListening := context.WithCancel(context.Background())
		defer stopListening()
		go a.cfg.Store.Listen(listenCtx, func() {
			select {
			case notified <- struct{}{}:
			default: // a refresh is already due
			}
		})
	}

	for {
		select {
		case <-ctx.Done():
			return a.shutdown()
		case r := <-a.results:
			ran := map[string]bool{}
			if a.apply(r) {
				ran[r.Source] = true
			}
			a.drain(ran) // what else has arrived, before re-evaluating once
			a.publish(a.cfg.Now())
			a.triggerDependents(ran)
			if a.cfg.Store.Postgres() && len(ran) > 0 {
				a.save() // the other replicas see the readings now, not at the next save
			}
		case <-refresh:
			a.refresh()
		case <-notified:
			if a.dbHealthy {
				a.refresh()
			}
		case held := <-leases:
			a.held = held
			a.applyJobs(false)
			a.haStatus()
		case reply := <-a.reloads:
			reply <- a.reload()
		case req := <-a.pushes:
			a.pushBatch(req)
		case <-eval.C: // a ticker's time is the wall clock's, not a.cfg.Now's
			a.publish(a.cfg.Now())
		case <-save.C:
			a.save()
		case <-compact.C:
			a.cfg.Store.Compact(a.cfg.Now())
			a.retain() // drops orphaned state past its retention
		}
	}
}

// Reload loads the catalogue again. On error the running catalogue stays
// and kpi_config_last_reload_successful turns 0.
func (a *App) Reload(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case a.reloads <- reply:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *App) reload() error {
	l, err := LoadWith(a.cfg.CatalogueFile, a.cfg.Store.Dir(), a.log, a.loadOptions())
	if err != nil {
		a.cfg.Exporter.SetReloadResult(false, a.cfg.Now())
		a.log.Error("catalogue reload failed; keeping the running catalogue", zap.Error(err))
		return err
	}
	a.cfg.Exporter.SetReloadResult(true, a.cfg.Now())
	a.loaded = l
	if a.cfg.Leases != nil {
		a.cfg.Leases.SetSources(a.polled())
	}
	a.applyJobs(false)
	a.retain()
	a.publish(a.cfg.Now())
	a.log.Info("catalogue reloaded", zap.Int("kpis", len(l.Catalogue.KPIs)), zap.Int("enabled_sources", len(l.Jobs)+len(l.Passive)))
	return nil
}

func (a *App) loadOptions() LoadOptions {
	o := LoadOptions{Latest: a.latest}
	if a.cfg.Store.Postgres() {
		o.State = func(source string) collectors.StateStore { return a.cfg.Store.SourceState(source) }
	}
	return o
}

// polled lists the enabled polled sources' names.
func (a *App) polled() []string {
	out := make([]string, 0, len(a.loaded.Jobs))
	for _, j := range a.loaded.Jobs {
		out = append(out, j.Source.Name)
	}
	return out
}

// applyJobs gives the scheduler the jobs this replica runs: every one, or
// with leases those it holds. At start and at a takeover, a source whose
// stored reading is younger than its interval runs when the interval is
// up, not at once: restarts and takeovers stay cheap on rate-limited APIs.
// (After a reload, a source whose settings changed runs at once.)
func (a *App) applyJobs(starting bool) {
	readings := a.cfg.Store.Inputs().Readings
	jobs := make([]collectors.Job, 0, len(a.loaded.Jobs))
	running := map[string]bool{}
	for i, j := range a.loaded.Jobs {
		if a.cfg.Leases != nil && !a.held[j.Source.Name] {
			continue
		}
		takeover := a.cfg.Leases != nil && !a.running[j.Source.Name]
		if takeover {
			// Taken over (or taken back): the collector is built again, so
			// that it starts from the progress the last holder saved, not
			// from what this replica read at its start.
			if col, err := collectors.New(j.Source, a.loaded.Envs[j.Source.Name]); err == nil {
				j.Collector = col
				a.loaded.Jobs[i].Collector = col
			} else {
				a.log.Error("building the source again for its takeover failed; using the one built at load", zap.String("source", j.Source.Name), zap.Error(err))
			}
		}
		running[j.Source.Name] = true
		_, dependent := j.Collector.(collectors.Dependent)
		if r, ok := readings[j.Source.Name]; ok && !dependent && (starting || takeover) { // derived: cheap, and run when their inputs run
			j.NotBefore = r.At.Add(collectors.Jitter(j.Source.Interval, rand.Float64()))
		}
		jobs = append(jobs, j)
	}
	a.running = running
	a.scheduler.Apply(jobs)
}

// refresh takes the other replicas' changes and publishes them.
func (a *App) refresh() {
	// Without the database, try every few seconds rather than every tick:
	// each try can wait for a connection timeout, and the loop also
	// serves pushes and evaluations.
	if !a.dbHealthy && time.Since(a.lastRefresh) < 5*time.Second { // wallclock: a retry delay
		a.haStatus()
		return
	}
	a.lastRefresh = time.Now() // wallclock: a retry delay
	changed, err := a.cfg.Store.Refresh()
	a.noteDatabase()
	if a.cfg.Store.Dirty() && err == nil {
		a.save()
	}
	if changed {
		a.publish(a.cfg.Now())
	}
	a.haStatus()
}

// noteDatabase logs when the state database is lost or back, whichever
// exchange (a refresh, a save, a push) found out.
func (a *App) noteDatabase() {
	if !a.cfg.Store.Postgres() {
		return
	}
	ok, err := a.cfg.Store.Healthy()
	switch {
	case !ok && a.dbHealthy:
		a.log.Error("state database unreachable: serving the last snapshot; pushes are refused and sources stop until it is back", zap.Error(err))
	case ok && !a.dbHealthy:
		a.log.Info("state database reachable")
	}
	a.dbHealthy = ok
}

// haStatus exports the replica's role and readiness.
func (a *App) haStatus() {
	if a.cfg.Leases == nil {
		return
	}
	ok, dbErr := a.cfg.Store.Healthy()
	st := a.cfg.Leases.Status()
	a.cfg.Exporter.SetHA(exporter.HAStatus{DatabaseUp: ok && st.Connected, Replicas: st.Replicas, Sources: st.Sources, Held: st.Held,
		LastSync: a.cfg.Store.LastSync()})
	switch {
	case !ok:
		a.cfg.Exporter.SetNotReady("state database unreachable: " + dbErr.Error())
	case !st.Connected && st.Err != nil:
		a.cfg.Exporter.SetNotReady("state database unreachable: " + st.Err.Error())
	default:
		a.cfg.Exporter.SetReady()
	}
}

// retain marks the state of sources and KPIs the catalogue no longer has
// as orphaned (kept for the retention period, then dropped), logs what
// changed and exports the counts.
func (a *App) retain() {
	sources, kpis := map[string]bool{}, map[string]bool{}
	for _, s := range a.loaded.Catalogue.Sources {
		sources[s.Name] = true
	}
	for _, k := range a.loaded.Catalogue.KPIs {
		kpis[k.ID] = true
	}
	retention := a.cfg.OrphanRetention
	if retention <= 0 {
		retention = store.DefaultOrphanRetention
	}
	r := a.cfg.Store.Retain(sources, kpis, a.cfg.Now(), retention)
	if len(r.Orphaned) > 0 {
		a.log.Warn("state of sources and KPIs no longer in the catalogue is kept as orphaned; restore the catalogue to use it again",
			zap.Strings("orphaned", r.Orphaned), zap.Duration("kept_for", retention))
	}
	if len(r.Adopted) > 0 {
		a.log.Info("orphaned state is in use again", zap.Strings("adopted", r.Adopted))
	}
	if len(r.Dropped) > 0 {
		a.log.Warn("orphaned state dropped by the retention rule", zap.Strings("dropped", r.Dropped), zap.Duration("retention", retention))
	}
	a.cfg.Exporter.SetOrphaned(r.Sources, r.KPIs)
}

type zoneState struct {
	zone  kpi.Zone
	since time.Time
}

// apply stores a successful run's reading and says whether it did.
func (a *App) apply(r collectors.Result) bool {
	if r.Err != nil {
		return false // the last good reading stays; the scheduler logged the error
	}
	if _, ok := a.loaded.Catalogue.Source(r.Source); !ok {
		return false // a run that finished just as a reload removed its source
	}
	a.cfg.Store.SetReading(r.Source, kpi.Reading{At: r.End, Measurements: r.Measurements})
	return true
}

// triggerDependents runs, now, every source computed from a source that
// has just produced a reading (directly, or through a KPI bound to it), so
// that derived values follow their inputs instead of waiting an interval.
// It is called after publishing, since they read the published snapshot.
func (a *App) triggerDependents(ran map[string]bool) {
	if len(ran) == 0 {
		return
	}
	for _, j := range a.loaded.Jobs {
		d, ok := j.Collector.(collectors.Dependent)
		if !ok {
			continue
		}
		for _, dep := range d.DependsOn() {
			src := dep
			if id, isKPI := strings.CutPrefix(dep, "kpi:"); isKPI {
				if k := a.loaded.Catalogue.KPI(id); k != nil {
					src = k.Source.Source
				}
			}
			if src != j.Source.Name && ran[src] {
				a.scheduler.Trigger(j.Source.Name)
				break
			}
		}
	}
}

// publish evaluates the catalogue, records fresh values in the history and
// publishes a new snapshot.
func (a *App) publish(now time.Time) {
	start := time.Now() // wallclock: the duration of rendering
	in := a.cfg.Store.Inputs()
	c := a.loaded.Catalogue
	if p := a.published; p != nil && p.Catalogue == c {
		in.Prior = p.Scorecard.Forecasts() // a forecast is refitted only when its points change
	}
	sc := kpi.Evaluate(c, in, now)
	if a.zones == nil {
		a.zones = map[string]zoneState{}
	}
	for i, r := range sc.Results {
		z, ok := a.zones[r.KPI.ID]
		if !ok || z.zone != r.Zone {
			// A new zone, or the first evaluation: estimated from the
			// history once, then kept while the zone holds.
			z = zoneState{r.Zone, c.ZoneSince(r, in.History[r.KPI.ID], now)}
			a.zones[r.KPI.ID] = z
		}
		sc.Results[i].ZoneSince = z.since
	}
	for _, r := range sc.Results {
		if r.HasValue && !r.Stale {
			// At the newest input's time: an aggregate's ValueTime is its
			// oldest series', which would freeze the history.
			a.cfg.Store.Record(r.KPI.ID, kpi.Point{T: r.InputTime, V: r.Value})
		}
	}
	sources := a.sourceStates(in)
	if p := a.published; p != nil && p.Catalogue == c && sameResults(p.Scorecard, sc) && sameSources(p, sources, in.Readings) {
		// Nothing a surface shows has changed: keep the snapshot, and with
		// it the encodings scrapes have already cached.
		return
	}
	snap, err := exporter.NewSnapshot(c, sc, sources, in.Readings)
	if err != nil {
		a.log.Error("some metrics could not be rendered", zap.Error(err))
	}
	if snap != nil {
		a.cfg.Exporter.Publish(snap)
		a.published = snap
	}
	a.cfg.Exporter.ObserveRender(time.Since(start)) // wallclock: the duration of rendering
}

func sameResults(a, b kpi.Scorecard) bool {
	if len(a.Results) != len(b.Results) {
		return false
	}
	for i, x := range a.Results {
		y := b.Results[i]
		if x.KPI != y.KPI || x.HasValue != y.HasValue || x.Value != y.Value || !x.ValueTime.Equal(y.ValueTime) || !x.InputTime.Equal(y.InputTime) || !x.ZoneSince.Equal(y.ZoneSince) ||
			x.Stale != y.Stale || x.HasTarget != y.HasTarget || x.Target != y.Target ||
			x.HasAttainment != y.HasAttainment || x.Attainment != y.Attainment ||
			x.Zone != y.Zone || x.Trend != y.Trend || x.Reason != y.Reason || !sameForecast(x.Forecast, y.Forecast) {
			return false
		}
	}
	return true
}

func sameForecast(a, b kpi.Forecast) bool {
	return a.OK == b.OK && a.Reason == b.Reason && a.Value == b.Value && a.Lower == b.Lower && a.Upper == b.Upper &&
		a.Horizon.Equal(b.Horizon) && a.Target == b.Target && a.Zone == b.Zone && a.ETA.Equal(b.ETA)
}

func sameSources(p *exporter.Snapshot, sources []exporter.SourceState, readings map[string]kpi.Reading) bool {
	if len(p.Sources) != len(sources) || len(p.Readings) != len(readings) {
		return false
	}
	for i, s := range sources {
		if p.Sources[i] != s {
			return false
		}
	}
	for name, r := range readings {
		old, ok := p.Readings[name]
		if !ok || !old.At.Equal(r.At) || len(old.Measurements) != len(r.Measurements) {
			return false
		}
	}
	return true
}

func (a *App) sourceStates(in kpi.Inputs) []exporter.SourceState {
	statuses := map[string]collectors.Status{}
	for _, st := range a.scheduler.Statuses() {
		statuses[st.Name] = st
	}
	out := make([]exporter.SourceState, 0, len(a.loaded.Catalogue.Sources))
	for _, src := range a.loaded.Catalogue.Sources {
		st := exporter.SourceState{Source: src, Status: statuses[src.Name], LastSuccess: in.Readings[src.Name].At}
		if st.Status.LastSuccess.After(st.LastSuccess) {
			st.LastSuccess = st.Status.LastSuccess
		}
		out = append(out, st)
	}
	return out
}

func (a *App) save() {
	if !a.cfg.Store.Dirty() {
		return
	}
	if err := a.cfg.Store.Save(); err != nil {
		a.log.Error("saving state failed; will retry", zap.Error(err))
	}
	a.noteDatabase()
}

// drain applies the results waiting in the channel.
func (a *App) drain(ran map[string]bool) {
	for {
		select {
		case r := <-a.results:
			if a.apply(r) && ran != nil {
				ran[r.Source] = true
			}
		default:
			return
		}
	}
}

func (a *App) shutdown() error {
	close(a.stopping)
	a.scheduler.Stop()
	a.drain(nil) // runs that finished while stopping still count
	a.publish(a.cfg.Now())
	if err := a.cfg.Store.Save(); err != nil {
		return fmt.Errorf("saving state on shutdown: %w", err)
	}
	return nil
}

// latest gives derived sources the published snapshot's readings and the
// KPIs' fresh values; it reads an immutable snapshot, so it never waits.
func (a *App) latest() collectors.Latest {
	return LatestOf(a.cfg.Exporter.Snapshot().Readings, a.cfg.Exporter.Snapshot().Scorecard)
}

// LatestOf packages readings and a scorecard for sources computed from
// others.
func LatestOf(readings map[string]kpi.Reading, sc kpi.Scorecard) collectors.Latest {
	l := collectors.Latest{Readings: readings, KPIs: map[string]kpi.Point{}}
	for _, r := range sc.Results {
		if r.HasValue && !r.Stale {
			l.KPIs[r.KPI.ID] = kpi.Point{T: r.ValueTime, V: r.Value}
		}
	}
	return l
}

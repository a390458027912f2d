package collectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Result is the outcome of one run of a source.
type Result struct {
	Source       string
	Measurements []kpi.Measurement
	Err          error
	Start        time.Time
	End          time.Time
}

// Status is what the scheduler knows of a source, for /metrics and pages.
type Status struct {
	Name     string
	Type     string
	Interval time.Duration
	Runs     uint64
	Errors   uint64
	// Success is whether the last run succeeded.
	Success      bool
	LastSuccess  time.Time
	LastDuration time.Duration
	LastError    string
	// Failures counts the failed runs since the last success.
	Failures int
	// NextRun is when the source runs next.
	NextRun time.Time
}

// Job is an enabled source and its collector.
type Job struct {
	Source    kpi.Source
	Collector Collector
	// NotBefore delays the first run, so that a restart does not spend API
	// budget on a source whose restored reading is still fresh.
	NotBefore time.Time
}

// key identifies a job's configuration: a reload keeps a runner whose key is
// unchanged, so its schedule and API budget are not disturbed.
func (j Job) key() string {
	s := j.Source
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s", s.Type, s.Interval, s.Timeout, s.Settings.String())
}

// Scheduler runs every job on its own interval: ±10 % jitter, a timeout per
// run, capped exponential backoff after failures, never two runs of one
// source at once, cancellation on Stop.
type Scheduler struct {
	logger *zap.Logger
	sink   func(Result)
	// Now stamps each run's start and end (the time of its readings); nil
	// means time.Now. Timers always run on the wall clock.
	Now func() time.Time

	mu      sync.Mutex
	runners map[string]*runner
}

func (s *Scheduler) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

// NewScheduler returns a scheduler that hands every finished run to sink.
// Sink is called from the runners' goroutines, one run at a time per source.
func NewScheduler(logger *zap.Logger, sink func(Result)) *Scheduler {
	return &Scheduler{logger: logger, sink: sink, runners: map[string]*runner{}}
}

// Apply makes the running set of sources equal to jobs: new sources start
// at once, removed ones stop, changed ones restart (after the old run has
// ended), and unchanged ones carry on undisturbed.
func (s *Scheduler) Apply(jobs []Job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	for _, j := range jobs {
		name := j.Source.Name
		keep[name] = true
		old := s.runners[name]
		if old != nil && old.key == j.key() {
			continue
		}
		var after <-chan struct{}
		if old != nil {
			old.cancel()
			after = old.done
		}
		r := newRunner(s, j)
		s.runners[name] = r
		go r.loop(after)
	}
	for name, r := range s.runners {
		if !keep[name] {
			r.cancel()
			delete(s.runners, name)
		}
	}
}

// Trigger asks a source to run now instead of when its timer says; a run
// under way finishes first and then runs once more, and several triggers
// before that run count as one. Unknown names are ignored. The derived
// sources are triggered this way when the sources they read have run.
func (s *Scheduler) Trigger(name string) {
	s.mu.Lock()
	r := s.runners[name]
	s.mu.Unlock()
	if r == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default: // one is pending already
	}
}

// Stop cancels every source and waits for the runs under way to end.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	rs := make([]*runner, 0, len(s.runners))
	for name, r := range s.runners {
		r.cancel()
		rs = append(rs, r)
		delete(s.runners, name)
	}
	s.mu.Unlock()
	for _, r := range rs {
		<-r.done
	}
}

// Statuses returns the status of every running source, sorted by name.
func (s *Scheduler) Statuses() []Status {
	s.mu.Lock()
	out := make([]Status, 0, len(s.runners))
	for _, r := range s.runners {
		out = append(out, r.status())
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

type runner struct {
	s      *Scheduler
	job    Job
	key    string
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	kick   chan struct{} // Trigger: run now rather than when the timer says

	mu sync.Mutex
	st Status
}

func newRunner(s *Scheduler, j Job) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	return &runner{
		s: s, job: j, key: j.key(), ctx: ctx, cancel: cancel, done: make(chan struct{}), kick: make(chan struct{}, 1),
		log: s.logger.With(zap.String("source", j.Source.Name), zap.String("collector", j.Source.Type)),
		st:  Status{Name: j.Source.Name, Type: j.Source.Type, Interval: j.Source.Interval},
	}
}

func (r *runner) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

func (r *runner) loop(after <-chan struct{}) {
	defer close(r.done)
	// A source that holds connections (a database pool) releases them when
	// it stops: removed or changed at a reload, or at shutdown.
	defer func() {
		if c, ok := r.job.Collector.(io.Closer); ok {
			if err := c.Close(); err != nil {
				r.log.Warn("closing the source", zap.Error(err))
			}
		}
	}()
	if after != nil {
		select {
		case <-after:
		case <-r.ctx.Done():
			return
		}
	}
	// NotBefore is in the scheduler's clock. A restored reading from the
	// future (a clock stepped back, copied state) never delays a source by
	// more than its interval.
	timer := time.NewTimer(min(max(0, r.job.NotBefore.Sub(r.s.now())), r.job.Source.Interval))
	defer timer.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
		case <-r.kick:
			if !timer.Stop() {
				<-timer.C
			}
		}
		res := RunWith(r.ctx, r.job, r.s.Now)
		if r.ctx.Err() != nil {
			return // shutting down or replaced: the run's outcome is moot
		}
		delay := r.record(res)
		r.s.sink(res)
		timer.Reset(delay)
	}
}

// record updates the status after a run and returns the delay until the
// next run.
func (r *runner) record(res Result) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := &r.st
	st.Runs++
	st.LastDuration = res.End.Sub(res.Start)
	st.Success = res.Err == nil
	if res.Err != nil {
		st.Errors++
		st.Failures++
		st.LastError = res.Err.Error()
		r.log.Warn("source run failed", zap.Error(res.Err), zap.Int("consecutive_failures", st.Failures))
	} else {
		st.Failures = 0
		st.LastError = ""
		st.LastSuccess = res.End
		r.log.Debug("source run succeeded", zap.Int("measurements", len(res.Measurements)), zap.Duration("duration", st.LastDuration))
	}
	delay := Jitter(Backoff(r.job.Source.Interval, st.Failures), rand.Float64())
	st.NextRun = res.End.Add(delay)
	return delay
}

// RetryBase is the first retry's delay after a failed run.
const RetryBase = 30 * time.Second

// Backoff is the wait before the next run after failures consecutive
// failures. Without failures it is the interval. After a failure the retry
// comes sooner than the interval: RetryBase, doubled for each further
// failure, capped at the interval (so a source with a 1 h interval retries
// after 30 s, 1 m, 2 m, … 32 m, then hourly, and one with an interval below
// RetryBase simply keeps its interval). The caller jitters it.
func Backoff(interval time.Duration, failures int) time.Duration {
	if failures <= 0 {
		return interval
	}
	d := min(RetryBase, interval)
	for i := 1; i < failures && d < interval; i++ {
		d *= 2
	}
	return min(d, interval)
}

// Jitter spreads d by ±10 %: u in [0, 1) maps to [0.9 d, 1.1 d).
func Jitter(d time.Duration, u float64) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*u))
}

// Run runs a job once with its timeout. A panic in the collector is an
// error of that run, never a crash of the daemon.
func Run(ctx context.Context, j Job) Result { return RunWith(ctx, j, nil) }

// RunWith is Run with the clock that stamps the run; nil means time.Now.
func RunWith(ctx context.Context, j Job, now func() time.Time) (res Result) {
	if now == nil {
		now = time.Now
	}
	res = Result{Source: j.Source.Name, Start: now()}
	ctx, cancel := context.WithTimeout(ctx, j.Source.Timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			res.Measurements, res.Err = nil, fmt.Errorf("collector panicked: %v", p)
		}
		res.End = now()
	}()
	ms, err := j.Collector.Collect(ctx)
	if err == nil {
		ms, err = validate(ms)
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("timed out after %s: %w", j.Source.Timeout, err)
	}
	if err != nil {
		// Every configured secret is masked and upstream bodies are cut,
		// before the error reaches the logs, the status page or the API.
		return Result{Source: j.Source.Name, Start: res.Start, Err: redact.Err(err)}
	}
	res.Measurements = ms
	return res
}

// RunAll runs every job once, concurrently, and returns the results in the
// order of jobs. It is what `kpi_exporter once` does.
func RunAll(ctx context.Context, jobs []Job) []Result {
	out := make([]Result, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = Run(ctx, j)
		}()
	}
	wg.Wait()
	return out
}

package collectors

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func TestBackoff(t *testing.T) {
	cases := []struct {
		interval time.Duration
		failures int
		want     time.Duration
	}{
		{time.Minute, 0, time.Minute},
		{time.Minute, 1, 30 * time.Second}, // a retry comes sooner than the interval
		{time.Minute, 2, time.Minute},
		{time.Minute, 50, time.Minute}, // capped at the interval
		{time.Hour, 1, 30 * time.Second},
		{time.Hour, 2, time.Minute},
		{time.Hour, 3, 2 * time.Minute},
		{time.Hour, 7, 32 * time.Minute},
		{time.Hour, 8, time.Hour},
		{time.Hour, 1000000, time.Hour},                    // no overflow
		{10 * time.Second, 1, 10 * time.Second},            // below the base: the interval
		{10 * time.Second, 5, 10 * time.Second},            //
		{24 * time.Hour, 13, 24 * time.Hour},               // 30 s · 2^12 = 34 h: the cap
		{24 * time.Hour, 12, 30 * time.Second * (1 << 11)}, // 17 h 4 m
	}
	for _, c := range cases {
		if got := Backoff(c.interval, c.failures); got != c.want {
			t.Errorf("Backoff(%s, %d) = %s, want %s", c.interval, c.failures, got, c.want)
		}
	}
}

func TestJitter(t *testing.T) {
	d := 100 * time.Second
	if got := Jitter(d, 0); got != 90*time.Second {
		t.Errorf("Jitter(u=0) = %s", got)
	}
	if got := Jitter(d, 0.5); got != d {
		t.Errorf("Jitter(u=.5) = %s", got)
	}
	if got := Jitter(d, 0.999999); got < 109*time.Second || got >= 110*time.Second {
		t.Errorf("Jitter(u→1) = %s", got)
	}
}

func job(name string, interval, timeout time.Duration, c Collector) Job {
	return Job{Source: kpi.Source{Name: name, Type: "test", Enabled: true, Interval: interval, Timeout: timeout}, Collector: c}
}

type results struct {
	mu  sync.Mutex
	all []Result
}

func (r *results) sink(res Result) { r.mu.Lock(); r.all = append(r.all, res); r.mu.Unlock() }
func (r *results) snapshot() []Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Result(nil), r.all...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSchedulerNeverRunsOneSourceTwiceAtOnce(t *testing.T) {
	var running, maxRunning, runs atomic.Int32
	slow := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond) // three times the interval
		runs.Add(1)
		return []kpi.Measurement{{Name: "x", Value: 1}}, nil
	})
	var res results
	s := NewScheduler(zap.NewNop(), res.sink)
	s.Apply([]Job{job("slow", 10*time.Millisecond, time.Second, slow)})
	waitFor(t, "4 runs", func() bool { return runs.Load() >= 4 })
	// Applying the same configuration again must not start a second runner.
	s.Apply([]Job{job("slow", 10*time.Millisecond, time.Second, slow)})
	waitFor(t, "8 runs", func() bool { return runs.Load() >= 8 })
	s.Stop()
	if maxRunning.Load() != 1 {
		t.Errorf("%d runs of one source ran at once", maxRunning.Load())
	}
}

func TestSchedulerRestartsChangedSourceAfterOldRunEnds(t *testing.T) {
	var running, overlap atomic.Int32
	release := make(chan struct{})
	blocking := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		if running.Add(1) > 1 {
			overlap.Add(1)
		}
		defer running.Add(-1)
		<-release // ignores ctx on purpose, like a badly behaved collector
		return nil, ctx.Err()
	})
	var second atomic.Bool
	quick := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		if running.Load() > 0 {
			overlap.Add(1)
		}
		second.Store(true)
		return nil, nil
	})
	var res results
	s := NewScheduler(zap.NewNop(), res.sink)
	s.Apply([]Job{job("a", time.Hour, time.Hour, blocking)})
	waitFor(t, "first run to start", func() bool { return running.Load() == 1 })
	s.Apply([]Job{job("a", 2*time.Hour, time.Hour, quick)}) // changed interval
	time.Sleep(50 * time.Millisecond)
	if second.Load() {
		t.Fatal("the new runner started while the old run was still under way")
	}
	close(release)
	waitFor(t, "new runner", second.Load)
	s.Stop()
	if overlap.Load() != 0 {
		t.Error("two runs of one source overlapped")
	}
	if len(res.snapshot()) != 1 {
		t.Errorf("the cancelled old run reached the sink: %d results", len(res.snapshot()))
	}
}

func TestSchedulerFailureBackoffAndStatus(t *testing.T) {
	var calls atomic.Int32
	failing := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		if calls.Add(1) <= 2 {
			return nil, errors.New("upstream said 502")
		}
		return []kpi.Measurement{{Name: "ok", Value: 1}}, nil
	})
	var res results
	s := NewScheduler(zap.NewNop(), res.sink)
	s.Apply([]Job{job("f", 20*time.Millisecond, time.Second, failing)})
	waitFor(t, "recovery", func() bool { return len(res.snapshot()) >= 3 })
	st := s.Statuses()
	s.Stop()
	rs := res.snapshot()
	if rs[0].Err == nil || rs[1].Err == nil || rs[2].Err != nil {
		t.Fatalf("want two failures then a success, got %v, %v, %v", rs[0].Err, rs[1].Err, rs[2].Err)
	}
	// Below RetryBase, a retry waits the interval (±10 %), never longer.
	if gap := rs[2].Start.Sub(rs[1].End); gap < 18*time.Millisecond {
		t.Errorf("retry after the second failure came after %s, want ≥ 18ms", gap)
	}
	if len(st) != 1 || st[0].Runs < 3 || st[0].Errors != 2 || !st[0].Success || st[0].Failures != 0 || st[0].LastSuccess.IsZero() {
		t.Errorf("status after recovery: %+v", st)
	}
}

func TestRunTimeoutPanicAndValidation(t *testing.T) {
	hang := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	r := Run(context.Background(), job("h", time.Minute, 20*time.Millisecond, hang))
	if !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Errorf("timeout: %v", r.Err)
	}
	boom := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) { panic("nil map") })
	r = Run(context.Background(), job("p", time.Minute, time.Second, boom))
	if r.Err == nil || r.Err.Error() != "collector panicked: nil map" || r.End.IsZero() {
		t.Errorf("panic: %+v", r)
	}
	bad := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		return []kpi.Measurement{{Name: "Bad-Name", Value: 1}}, nil
	})
	r = Run(context.Background(), job("b", time.Minute, time.Second, bad))
	if r.Err == nil || !strings.Contains(r.Err.Error(), `"Bad-Name"`) {
		t.Errorf("bad name: %v", r.Err)
	}
	nan := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		return []kpi.Measurement{{Name: "a", Value: 1}, {Name: "b", Value: nanValue()}}, nil
	})
	r = Run(context.Background(), job("n", time.Minute, time.Second, nan))
	if r.Err != nil || len(r.Measurements) != 1 || r.Measurements[0].Name != "a" {
		t.Errorf("NaN should be dropped as no value: %+v", r)
	}
}

func nanValue() float64 { z := 0.0; return z / z }

func TestStopCancelsRunningCollector(t *testing.T) {
	started := make(chan struct{})
	hang := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	})
	var res results
	s := NewScheduler(zap.NewNop(), res.sink)
	s.Apply([]Job{job("h", time.Minute, time.Hour, hang)})
	<-started
	done := make(chan struct{})
	go func() { s.Stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Stop did not cancel the running collector")
	}
	if len(res.snapshot()) != 0 {
		t.Error("a cancelled run reached the sink")
	}
}

func TestRegistry(t *testing.T) {
	Register("scheduler_test_type", func(kpi.Source, Env) (Collector, error) { return nil, nil })
	if !Known("scheduler_test_type") || Known("nope") {
		t.Error("Known")
	}
	if _, err := New(kpi.Source{Name: "x", Type: "nope", Pos: kpi.Position{File: "c.yml", Line: 3, Column: 5}}, Env{}); err == nil ||
		err.Error() != `c.yml:3:5: unknown source type "nope"` {
		t.Errorf("New with unknown type: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a type twice should panic")
		}
	}()
	Register("scheduler_test_type", nil)
}

func TestNotBeforeDelaysTheFirstRun(t *testing.T) {
	ran := make(chan time.Time, 1)
	c := CollectorFunc(func(ctx context.Context) ([]kpi.Measurement, error) {
		select {
		case ran <- time.Now():
		default:
		}
		return nil, nil
	})
	var res results
	s := NewScheduler(zap.NewNop(), res.sink)
	j := job("fresh", time.Hour, time.Second, c)
	begin := time.Now()
	j.NotBefore = begin.Add(150 * time.Millisecond)
	s.Apply([]Job{j})
	defer s.Stop()
	select {
	case at := <-ran:
		if at.Sub(begin) < 140*time.Millisecond {
			t.Errorf("first run after %s, want ≥ 150ms", at.Sub(begin))
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the source never ran")
	}
}

// closer is a collector holding a resource (a database pool).
type closer struct {
	CollectorFunc
	closed atomic.Int32
}

func (c *closer) Close() error { c.closed.Add(1); return nil }

// A source that holds connections releases them when it is removed,
// changed or stopped — and not when a reload leaves it as it was.
func TestSchedulerClosesCollectors(t *testing.T) {
	ok := CollectorFunc(func(context.Context) ([]kpi.Measurement, error) { return nil, nil })
	a, b, a2 := &closer{CollectorFunc: ok}, &closer{CollectorFunc: ok}, &closer{CollectorFunc: ok}
	var res results
	s := NewScheduler(zap.NewNop(), res.sink)
	s.Apply([]Job{job("a", time.Hour, time.Hour, a), job("b", time.Hour, time.Hour, b)})
	s.Apply([]Job{job("a", time.Hour, time.Hour, a)}) // b removed, a unchanged
	waitFor(t, "b closed", func() bool { return b.closed.Load() == 1 })
	if a.closed.Load() != 0 {
		t.Error("an unchanged source was closed")
	}
	s.Apply([]Job{job("a", 2*time.Hour, time.Hour, a2)}) // a changed: the old one closes
	waitFor(t, "the old a closed", func() bool { return a.closed.Load() == 1 })
	s.Stop()
	if a2.closed.Load() != 1 || b.closed.Load() != 1 || a.closed.Load() != 1 {
		t.Errorf("closed: a %d, a2 %d, b %d; each once", a.closed.Load(), a2.closed.Load(), b.closed.Load())
	}
}

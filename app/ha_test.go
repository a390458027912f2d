package app

import (
	"context"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/exporter"
	"github.com/bakhmach-hub/kpi_exporter/internal/testclock"
	"github.com/bakhmach-hub/kpi_exporter/internal/testdb"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
	"github.com/bakhmach-hub/kpi_exporter/store"
)

// counting is a source type that keeps a counter in its source state, as
// the github source keeps its sync progress: each run adds one.
func init() {
	collectors.Register("counting", func(_ kpi.Source, env collectors.Env) (collectors.Collector, error) {
		st := env.SourceState()
		n := 0
		if st != nil {
			if b, err := st.Load("n"); err == nil {
				n, _ = strconv.Atoi(string(b))
			}
		}
		return collectors.CollectorFunc(func(context.Context) ([]kpi.Measurement, error) {
			n++
			if st != nil {
				if err := st.Save("n", []byte(strconv.Itoa(n))); err != nil {
					return nil, err
				}
			}
			return []kpi.Measurement{{Name: "n", Value: float64(n)}}, nil
		}), nil
	})
}

const countingCatalogue = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: c, type: counting, interval: 1s}
kpis:
  - {id: k, name: K, domain: workflow, dashboard: product, unit: count, direction: higher, source: {name: c, measurement: n}, targets: [{period: Q1, value: 1}]}
`

type replica struct {
	exp  *exporter.Exporter
	stop func()
}

func startReplica(t *testing.T, dir, dsn, id string) *replica {
	t.Helper()
	ctx0, cancel0 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel0()
	st, err := store.OpenPostgres(ctx0, dsn, store.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leases := st.NewLeases(id, "test")
	leases.Tick, leases.TTL = 100*time.Millisecond, 300*time.Millisecond
	exp := exporter.New(exporter.Options{Now: testclock.Now})
	a, err := New(Config{CatalogueFile: filepath.Join(dir, "kpis.yaml"), Store: st, Exporter: exp, Logger: zap.NewNop(),
		EvalInterval: 50 * time.Millisecond, RefreshInterval: 100 * time.Millisecond, Now: testclock.Now, Leases: leases})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = a.Run(ctx) }()
	var once sync.Once
	r := &replica{exp: exp, stop: func() { once.Do(func() { cancel(); wg.Wait(); st.Close() }) }}
	t.Cleanup(r.stop)
	return r
}

func value(exp *exporter.Exporter, id string) float64 {
	for _, r := range exp.Snapshot().Scorecard.Results {
		if r.KPI.ID == id && r.HasValue {
			return r.Value
		}
	}
	return 0
}

func waitAtLeast(t *testing.T, exp *exporter.Exporter, v float64, within time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if got := value(exp, "k"); got >= v {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("k did not reach %g within %s (it is %g)", v, within, value(exp, "k"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTakeoverContinuesFromSavedProgress: a replica that takes a source
// over builds it again from the progress the previous holder saved in the
// state database, not from what it read at its own start; the standby
// serves the holder's values meanwhile.
func TestTakeoverContinuesFromSavedProgress(t *testing.T) {
	dsn := testdb.Postgres(t).DSN
	dir := t.TempDir()
	write(t, filepath.Join(dir, "kpis.yaml"), countingCatalogue)
	a := startReplica(t, dir, dsn, "a")
	waitAtLeast(t, a.exp, 2, 10*time.Second)
	b := startReplica(t, dir, dsn, "b") // its collector, built now, reads a count of about 2
	held := waitAtLeast(t, a.exp, 6, 10*time.Second)
	waitAtLeast(t, b.exp, held, 5*time.Second) // the standby serves the holder's value
	a.stop()
	// b takes c over: from the saved count, so every value after the
	// takeover follows the last one a reached; a collector built at b's
	// start would start again from about 3.
	deadline := time.Now().Add(10 * time.Second)
	for value(b.exp, "k") < held+2 {
		if v := value(b.exp, "k"); v < held {
			t.Fatalf("after the takeover k went back to %g (a had reached %g)", v, held)
		}
		if time.Now().After(deadline) {
			t.Fatalf("b did not continue the count after %g within 10s: k is %g", held, value(b.exp, "k"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

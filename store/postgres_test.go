package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/internal/atomicfile"
	"github.com/bakhmach-hub/kpi_exporter/internal/testdb"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// The PostgreSQL backend against a real PostgreSQL (Debian's, started by
// the test as an unprivileged process on loopback). One server serves all
// tests of the package; each test has a database of its own.
var (
	pgN  int
	pgMu sync.Mutex
)

func newDB(t testing.TB) (string, *testdb.Server) {
	t.Helper()
	srv := testdb.Postgres(t)
	pgMu.Lock()
	pgN++
	name := fmt.Sprintf("state%d", pgN)
	pgMu.Unlock()
	return srv.NewDatabase(t, name), srv
}

func openPG(t *testing.T, dsn string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := OpenPostgres(ctx, dsn, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestPostgresReplicasConverge: two stores on one database, each writing
// readings and history points; after a refresh both hold exactly what a
// single file store fed the same points in the database's order holds.
func TestPostgresReplicasConverge(t *testing.T) {
	dsn, _ := newDB(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	rng := rand.New(rand.NewPCG(1, 2))
	// Points every 10 minutes for two days, from both replicas in turn,
	// with the same point sometimes written by both (both evaluated the
	// same reading).
	var order []kpi.Point
	for i := range 288 {
		p := kpi.Point{T: t0.Add(time.Duration(i) * 10 * time.Minute), V: float64(i)}
		w := []*Store{a, b}[rng.IntN(2)]
		w.Record("k", p)
		if rng.IntN(4) == 0 {
			other := a
			if w == a {
				other = b
			}
			other.Record("k", p)
			if err := other.Save(); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Save(); err != nil {
			t.Fatal(err)
		}
		order = append(order, p)
	}
	a.SetReading("gh", kpi.Reading{At: t0, Measurements: []kpi.Measurement{{Name: "stars", Value: 3}}})
	if err := a.Save(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		if _, err := s.Refresh(); err != nil {
			t.Fatal(err)
		}
	}
	ref, _ := Open("")
	for _, p := range order {
		ref.Record("k", p)
	}
	want := ref.History("k")
	for name, s := range map[string]*Store{"a": a, "b": b, "fresh": openPG(t, dsn)} {
		if got := s.History("k"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: history has %d points, want %d (the file store's)\n got %v\nwant %v", name, len(got), len(want), tail(got), tail(want))
		}
		if r := s.Inputs().Readings["gh"]; !r.At.Equal(t0) || len(r.Measurements) != 1 || r.Measurements[0].Value != 3 {
			t.Errorf("%s: reading %+v", name, r)
		}
	}
	// The database keeps no replaced points: one row per history point.
	var rows int
	if err := a.pg.pool.QueryRow(context.Background(), `SELECT count(*) FROM kpi_exporter.history`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(want) {
		t.Errorf("%d history rows, want %d", rows, len(want))
	}
}

func tail(h []kpi.Point) []kpi.Point {
	if len(h) > 3 {
		return h[len(h)-3:]
	}
	return h
}

// TestPostgresOlderReadingNeverWins: a late write of an older reading (a
// run that finished after its source moved to another replica) leaves the
// newer one.
func TestPostgresOlderReadingNeverWins(t *testing.T) {
	dsn, _ := newDB(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	a.SetReading("gh", kpi.Reading{At: t0.Add(time.Hour), Measurements: []kpi.Measurement{{Name: "stars", Value: 2}}})
	if err := a.Save(); err != nil {
		t.Fatal(err)
	}
	b.SetReading("gh", kpi.Reading{At: t0, Measurements: []kpi.Measurement{{Name: "stars", Value: 1}}})
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b, openPG(t, dsn)} {
		if _, err := s.Refresh(); err != nil {
			t.Fatal(err)
		}
		if r := s.Inputs().Readings["gh"]; r.Measurements[0].Value != 2 {
			t.Errorf("reading %v, want the newer one", r)
		}
	}
}

// TestPostgresConcurrentStarts: replicas starting at once on an empty
// database migrate it once; a database migrated by a newer binary is
// refused with a message that says so.
func TestPostgresConcurrentStarts(t *testing.T) {
	dsn, _ := newDB(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := OpenPostgres(context.Background(), dsn, PostgresOptions{})
			if err == nil {
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s := openPG(t, dsn)
	var versions []int
	rows, err := s.pg.pool.Query(context.Background(), `SELECT version FROM kpi_exporter.schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var v int
		_ = rows.Scan(&v)
		versions = append(versions, v)
	}
	if len(versions) != SchemaVersion() || versions[len(versions)-1] != SchemaVersion() {
		t.Errorf("migrations recorded %v, want 1…%d once each", versions, SchemaVersion())
	}
	if _, err := s.pg.pool.Exec(context.Background(), `INSERT INTO kpi_exporter.schema_migrations (version) VALUES (99)`); err != nil {
		t.Fatal(err)
	}
	_, err = OpenPostgres(context.Background(), dsn, PostgresOptions{})
	if err == nil || !strings.Contains(err.Error(), "schema version 99 is newer than this kpi_exporter's") {
		t.Errorf("a newer schema: %v", err)
	}
}

// TestPostgresTransactFailureKeepsNothing: a push whose commit fails
// leaves no trace in memory (its client hears an error), and what was
// pending is written by the next successful sync.
func TestPostgresTransactFailureKeepsNothing(t *testing.T) {
	dsn, srv := newDB(t)
	s := openPG(t, dsn)
	s.Record("k", kpi.Point{T: t0, V: 1})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	s.Record("k", kpi.Point{T: t0.Add(2 * time.Hour), V: 2}) // pending, from an evaluation
	err := s.Transact(func() {
		s.SetReading("push", kpi.Reading{At: t0.Add(3 * time.Hour), Measurements: []kpi.Measurement{{Name: "nps", Value: 40}}})
		s.Record("nps", kpi.Point{T: t0.Add(3 * time.Hour), V: 40})
	})
	if err == nil {
		t.Fatal("a commit without a database succeeded")
	}
	if ok, herr := s.Healthy(); ok || herr == nil {
		t.Error("the store reports healthy without its database")
	}
	if _, ok := s.Inputs().Readings["push"]; ok || len(s.History("nps")) != 0 {
		t.Error("the failed push is in memory")
	}
	srv.Restart(t)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	fresh := openPG(t, dsn)
	if h := fresh.History("k"); len(h) != 2 || h[1].V != 2 {
		t.Errorf("pending point not written after the database came back: %v", h)
	}
	if _, ok := fresh.Inputs().Readings["push"]; ok {
		t.Error("the failed push reached the database")
	}
}

// TestPostgresSourceState: blobs round-trip, per source; a missing one is
// fs.ErrNotExist.
func TestPostgresSourceState(t *testing.T) {
	dsn, _ := newDB(t)
	s := openPG(t, dsn)
	a, b := s.SourceState("gh"), s.SourceState("stripe")
	if _, err := a.Load("etags.json.gz"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing blob: %v", err)
	}
	if err := a.Save("etags.json.gz", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := a.Save("etags.json.gz", []byte{4, 5}); err != nil {
		t.Fatal(err)
	}
	got, err := openPG(t, dsn).SourceState("gh").Load("etags.json.gz")
	if err != nil || string(got) != "\x04\x05" {
		t.Errorf("blob %v, %v", got, err)
	}
	if _, err := b.Load("etags.json.gz"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("another source's blob: %v", err)
	}
}

// TestCopyToPostgres: a state directory copied into the database reads
// back as the file store does; a database that holds state is refused.
func TestCopyToPostgres(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f.SetReading("manual", kpi.Reading{At: t0, Measurements: []kpi.Measurement{{Name: "nps", Value: 52, Labels: kpi.Labels{{Name: "team", Value: "a"}}}}})
	for i := range 100 {
		f.Record("nps", kpi.Point{T: t0.Add(time.Duration(i) * 37 * time.Minute), V: float64(i)})
		f.Record("mrr", kpi.Point{T: t0.Add(time.Duration(i) * 24 * time.Hour), V: float64(i * 10)})
	}
	f.Retain(map[string]bool{}, map[string]bool{"nps": true}, t0, 0) // "mrr" and "manual" orphaned
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(filepath.Join(dir, "sources", "gh", "github.json.gz"), []byte("progress")); err != nil {
		t.Fatal(err)
	}
	want, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	dsn, _ := newDB(t)
	s := openPG(t, dsn)
	rep, err := CopyToPostgres(context.Background(), dir, s)
	if err != nil {
		t.Fatal(err)
	}
	points := len(want.History("nps")) + len(want.History("mrr"))
	if rep.Readings != 1 || rep.KPIs != 2 || rep.Points != points || rep.Orphaned != 2 || rep.Blobs != 1 {
		t.Errorf("report %+v", rep)
	}
	fresh := openPG(t, dsn)
	for _, got := range []*Store{s, fresh} {
		gi, wi := got.Inputs(), want.Inputs()
		if !reflect.DeepEqual(gi.History, wi.History) {
			t.Error("history differs from the state directory's")
		}
		if !reflect.DeepEqual(gi.Readings["manual"].Measurements, wi.Readings["manual"].Measurements) || !gi.Readings["manual"].At.Equal(t0) {
			t.Errorf("readings %+v", gi.Readings)
		}
		if len(got.orphaned) != 2 {
			t.Errorf("orphaned %v", got.orphaned)
		}
	}
	if b, err := fresh.SourceState("gh").Load("github.json.gz"); err != nil || string(b) != "progress" {
		t.Errorf("source state %q, %v", b, err)
	}
	if _, err := CopyToPostgres(context.Background(), dir, s); err == nil || !strings.Contains(err.Error(), "empty one only") {
		t.Errorf("a second copy: %v", err)
	}
}

// TestLeasesSpreadAndTakeOver: three replicas share seven sources, each at
// most its fair share and none held twice; when one stops, the others take
// its sources within the lease TTL plus a tick.
func TestLeasesSpreadAndTakeOver(t *testing.T) {
	dsn, _ := newDB(t)
	sources := []string{"a", "b", "c", "d", "e", "f", "g"}
	type replica struct {
		l      *Leases
		cancel context.CancelFunc
		done   chan struct{}
	}
	var rs []*replica
	for i := range 3 {
		s := openPG(t, dsn)
		l := s.NewLeases(fmt.Sprintf("r%d", i), "test")
		l.Tick, l.TTL = 200*time.Millisecond, 600*time.Millisecond
		l.SetSources(sources)
		ctx, cancel := context.WithCancel(context.Background())
		r := &replica{l, cancel, make(chan struct{})}
		go func() { l.Run(ctx); close(r.done) }()
		t.Cleanup(func() { cancel(); <-r.done })
		rs = append(rs, r)
	}
	settled := func(live []*replica, fair int) (map[string]string, bool) {
		owner := map[string]string{}
		for _, r := range live {
			st := r.l.Status()
			if len(st.Held) > fair {
				return nil, false
			}
			for _, h := range st.Held {
				if o, dup := owner[h]; dup {
					t.Fatalf("source %s held by %s and %s at once", h, o, r.l.id)
				}
				owner[h] = r.l.id
			}
		}
		return owner, len(owner) == len(sources)
	}
	wait := func(live []*replica, fair int, within time.Duration) map[string]string {
		deadline := time.Now().Add(within)
		for {
			if owner, ok := settled(live, fair); ok {
				return owner
			}
			if time.Now().After(deadline) {
				var st []LeaseStatus
				for _, r := range live {
					st = append(st, r.l.Status())
				}
				t.Fatalf("sources not spread within %s: %+v", within, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	owner := wait(rs, 3, 5*time.Second)
	t.Logf("spread: %v", owner)
	victim := rs[0]
	start := time.Now()
	victim.cancel()
	<-victim.done
	owner = wait(rs[1:], 4, victim.l.TTL+2*victim.l.Tick)
	t.Logf("after r0 stopped (%s): %v", time.Since(start), owner)
	for _, o := range owner {
		if o == "r0" {
			t.Error("a stopped replica still holds a source")
		}
	}
}

// TestLeasesFreeAHungReplica: a replica that stops renewing (hung, or its
// node gone) while its session lives keeps its advisory locks; the others
// end that session once its heartbeat has expired and take its sources,
// and the hung replica, back, finds its session gone and holds nothing.
func TestLeasesFreeAHungReplica(t *testing.T) {
	dsn, _ := newDB(t)
	sources := []string{"a", "b", "c", "d"}
	hung := openPG(t, dsn).NewLeases("hung", "test")
	hung.Tick, hung.TTL = 100*time.Millisecond, 300*time.Millisecond
	hung.SetSources(sources)
	hung.tick(context.Background()) // alone: takes all four, then hangs
	if got := hung.Status().Held; len(got) != 4 {
		t.Fatalf("alone, the first replica holds %v", got)
	}
	live := openPG(t, dsn).NewLeases("live", "test")
	live.Tick, live.TTL = 100*time.Millisecond, 300*time.Millisecond
	live.SetSources(sources)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { live.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	start := time.Now()
	for len(live.Status().Held) != 4 {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the live replica holds %v, 5 s after the other stopped renewing", live.Status().Held)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the hung replica's sources taken over after %s (TTL %s)", time.Since(start).Round(time.Millisecond), live.TTL)
	hung.tick(context.Background()) // it wakes up: its session was ended
	if st := hung.Status(); len(st.Held) != 0 || st.Connected {
		t.Errorf("the woken replica: %+v", st)
	}
	hung.tick(context.Background()) // joins again, as standby: every source is held
	if st := hung.Status(); len(st.Held) != 0 || !st.Connected || st.Replicas != 2 {
		t.Errorf("the woken replica rejoined as %+v", st)
	}
}

package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func TestSaveAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.SetReading("manual", kpi.Reading{At: t0, Measurements: []kpi.Measurement{
		{Name: "nps", Value: 52},
		{Name: "press", Value: 3, Labels: kpi.Labels{{Name: "outlet", Value: "trade"}}, Kind: kpi.Counter, Time: t0.Add(-time.Hour)},
	}})
	s.Record("nps", kpi.Point{T: t0, V: 52})
	s.Record("nps", kpi.Point{T: t0.Add(2 * time.Hour), V: 53.5})
	if !s.Dirty() {
		t.Fatal("store should be dirty")
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if s.Dirty() {
		t.Error("store still dirty after Save")
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	in := s2.Inputs()
	r := in.Readings["manual"]
	if !r.At.Equal(t0) || len(r.Measurements) != 2 || r.Measurements[1].Labels.Get("outlet") != "trade" ||
		r.Measurements[1].Kind != kpi.Counter || !r.Measurements[1].Time.Equal(t0.Add(-time.Hour)) {
		t.Errorf("reading after reopen: %+v", r)
	}
	h := in.History["nps"]
	if len(h) != 2 || !h[1].T.Equal(t0.Add(2*time.Hour)) || h[1].V != 53.5 {
		t.Errorf("history after reopen: %+v", h)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("state dir holds leftovers: %v", entries)
	}
}

func TestCorruptStateIsMovedAside(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":     `{"version":1,"readings":{"manual":{"at":"2026-`,
		"wrong version": `{"version":99}`,
		"not json":      "\x00\x01garbage",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			os.WriteFile(path, []byte(content), 0o600)
			s, err := Open(dir)
			var ce *CorruptError
			if !errors.As(err, &ce) || s == nil {
				t.Fatalf("want a CorruptError and a usable store, got %v, %v", s, err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Error("the corrupt file is still in place")
			}
			moved, err := os.ReadFile(ce.MovedTo)
			if err != nil || string(moved) != content {
				t.Errorf("the corrupt file was not kept aside intact: %v", err)
			}
			if !strings.Contains(ce.Error(), "moved it to "+ce.MovedTo) {
				t.Errorf("message: %s", ce)
			}
			if len(s.Inputs().Readings) != 0 {
				t.Error("store not empty")
			}
		})
	}
}

func TestRecordResolution(t *testing.T) {
	s, _ := Open("")
	for _, m := range []int{0, 10, 20, 50, 70, 75, 75, 60, 140} {
		s.Record("k", kpi.Point{T: t0.Add(time.Duration(m) * time.Minute), V: float64(m)})
	}
	var got []float64
	for _, p := range s.Inputs().History["k"] {
		got = append(got, p.V)
	}
	// 10, 20, 50 and 70 each replace the provisional last point until 70,
	// an hour after 0, settles; 75 is provisional, the repeated 75 and the
	// older 60 are ignored, and 140 replaces 75 and settles.
	want := []float64{0, 70, 140}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("history %v, want %v", got, want)
	}
}

func TestCompact(t *testing.T) {
	s, _ := Open("")
	now := t0.Add(500 * 24 * time.Hour)
	var pts []kpi.Point
	// Four points a day for 450 days.
	for d := 450; d >= 0; d-- {
		for q := 0; q < 4; q++ {
			pts = append(pts, kpi.Point{T: now.Add(-time.Duration(d)*24*time.Hour + time.Duration(q)*6*time.Hour - 23*time.Hour), V: float64(d)})
		}
	}
	s.history["k"] = pts
	s.Compact(now)
	h := s.Inputs().History["k"]
	var old, fine int
	for i, p := range h {
		if now.Sub(p.T) > Retention {
			t.Fatalf("point older than retention kept: %v", p.T)
		}
		if p.T.Before(now.Add(-FineSpan)) {
			old++
			if i > 0 && sameDay(h[i-1].T, p.T) {
				t.Fatalf("two points of one old day kept: %v %v", h[i-1].T, p.T)
			}
		} else {
			fine++
		}
	}
	if old < 365 || old > 372 || fine < 118 || fine > 124 {
		t.Errorf("kept %d old and %d fine points", old, fine)
	}
}

// TestKillDuringSave kills a process that is saving state in a tight loop at
// random moments and checks that the state file is always whole.
func TestKillDuringSave(t *testing.T) {
	if os.Getenv("STORE_SAVE_LOOP_DIR") != "" {
		saveLoop(os.Getenv("STORE_SAVE_LOOP_DIR"))
		return
	}
	dir := t.TempDir()
	for i := 0; i < 15; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillDuringSave$")
		cmd.Env = append(os.Environ(), "STORE_SAVE_LOOP_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the writer has saved at least once, then kill it at a
		// random moment of its loop.
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(dir, FileName)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatal("the writer never saved")
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(40)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()

		s, err := Open(dir)
		if err != nil {
			t.Fatalf("kill %d: state unreadable after SIGKILL: %v", i, err)
		}
		r := s.Inputs().Readings["big"]
		if len(r.Measurements) != 5000 {
			t.Fatalf("kill %d: reading has %d measurements", i, len(r.Measurements))
		}
		if tmps, _ := filepath.Glob(filepath.Join(dir, FileName+".tmp-*")); len(tmps) != 0 {
			t.Fatalf("kill %d: Open left %d temporary files behind", i, len(tmps))
		}
	}
}

// saveLoop saves a large state over and over, each save different.
func saveLoop(dir string) {
	s, err := Open(dir)
	if err != nil && !errors.As(err, new(*CorruptError)) {
		os.Exit(3)
	}
	for n := 0; ; n++ {
		ms := make([]kpi.Measurement, 5000)
		for i := range ms {
			ms[i] = kpi.Measurement{Name: "m", Labels: kpi.Labels{{Name: "i", Value: strconv.Itoa(i)}}, Value: float64(n)}
		}
		s.SetReading("big", kpi.Reading{At: time.Now(), Measurements: ms})
		if err := s.Save(); err != nil {
			os.Exit(4)
		}
	}
}

func TestLoadChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	s.SetReading("manual", kpi.Reading{At: t0, Measurements: []kpi.Measurement{{Name: "nps", Value: 52}}})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, FileName+".tmp-leftover")
	os.WriteFile(tmp, []byte("x"), 0o600)
	l, err := Load(dir)
	if err != nil || len(l.Inputs().Readings["manual"].Measurements) != 1 {
		t.Fatalf("Load: %v", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Error("Load removed a file")
	}
	os.WriteFile(filepath.Join(dir, FileName), []byte("{broken"), 0o600)
	if _, err := Load(dir); err == nil {
		t.Error("Load accepted a corrupt file")
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
		t.Error("Load moved the corrupt file")
	}
	if l, err := Load(filepath.Join(dir, "missing")); err != nil || len(l.Inputs().Readings) != 0 {
		t.Errorf("Load of a missing dir: %v", err)
	}
}

// Two corrupt state files in the same second are both kept: the second is
// moved aside beside the first, never over it.
func TestCorruptFilesNeverOverwriteEachOther(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	var moved []string
	for i, content := range []string{"first corrupt", "second corrupt", "third corrupt"} {
		os.WriteFile(path, []byte(content), 0o600)
		_, err := Open(dir)
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("%d: %v", i, err)
		}
		moved = append(moved, ce.MovedTo)
	}
	for i, want := range []string{"first corrupt", "second corrupt", "third corrupt"} {
		if got, err := os.ReadFile(moved[i]); err != nil || string(got) != want {
			t.Errorf("%s: %q %v, want %q", moved[i], got, err, want)
		}
	}
}

// When state left the catalogue is kept across restarts, so that the
// retention counts from the first time, not from the last start.
func TestOrphanedSinceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Record("gone", kpi.Point{T: t0, V: 1})
	s.Retain(map[string]bool{}, map[string]bool{}, t0, time.Hour)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if r := s2.Retain(map[string]bool{}, map[string]bool{}, t0.Add(2*time.Hour), time.Hour); len(r.Dropped) != 1 {
		t.Errorf("the orphan's time was lost on restart: %+v", r)
	}
}

// Times in the future (a clock stepped back, copied state) are taken as now:
// the reading's source is not held back until then, its value goes stale
// in time, and the history takes new points again.
func TestClampFuture(t *testing.T) {
	s, _ := Open("")
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	later := now.Add(48 * time.Hour)
	s.SetReading("src", kpi.Reading{At: later, Measurements: []kpi.Measurement{{Name: "m", Value: 1, Time: later}}})
	s.Record("k", kpi.Point{T: now.Add(-time.Hour), V: 1})
	s.Record("k", kpi.Point{T: later, V: 2})
	if n := s.ClampFuture(now); n != 2 {
		t.Errorf("changed %d", n)
	}
	in := s.Inputs()
	if r := in.Readings["src"]; !r.At.Equal(now) || !r.Measurements[0].Time.Equal(now) {
		t.Errorf("reading %+v", r)
	}
	if h := in.History["k"]; len(h) != 2 || !h[1].T.Equal(now) || h[1].V != 2 {
		t.Errorf("history %+v", h)
	}
	s.Record("k", kpi.Point{T: now.Add(2 * time.Hour), V: 3})
	if h := s.History("k"); h[len(h)-1].V != 3 {
		t.Errorf("the history takes no new point: %+v", h)
	}
}

// TestRestoredPointIsNotRecordedTwice: the state file keeps milliseconds
// and readings keep nanoseconds; after a restart the evaluation records the
// newest value at its reading's time again, which must not become a second
// point.
func TestRestoredPointIsNotRecordedTwice(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := t0.Add(2*time.Hour + 123456789) // sub-millisecond part
	s.Record("k", kpi.Point{T: t0, V: 1})
	s.Record("k", kpi.Point{T: at, V: 2})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Record("k", kpi.Point{T: at, V: 2})
	if h := s.History("k"); len(h) != 2 {
		t.Errorf("history after a restart: %v", h)
	}
	s.Record("k", kpi.Point{T: at.Add(time.Millisecond), V: 2}) // a later value
	if h := s.History("k"); len(h) != 3 {
		t.Errorf("a value a millisecond later was not kept: %v", h)
	}
}

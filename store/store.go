// Package store keeps the measurement store: the last good reading of every
// source and the history of every KPI, persisted in the state directory so
// that a restart serves the last values at once.
//
// The state file is written atomically (temporary file, fsync, rename, fsync
// of the directory), so a crash or kill -9 at any moment leaves either the
// old or the new file, never a torn one.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/internal/atomicfile"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// FileName is the state file's name inside the state directory.
const FileName = "state.json"

// formatVersion is bumped when the file's shape changes incompatibly.
const formatVersion = 1

// Retention settings of the history. Points closer together than
// Resolution replace one another (the newest wins); points older than
// FineSpan are thinned to the last one of each UTC day; points older than
// Retention are dropped.
const (
	Resolution = time.Hour
	FineSpan   = 30 * 24 * time.Hour
	Retention  = 400 * 24 * time.Hour
)

// Store holds readings and history. It is safe for concurrent use.
type Store struct {
	dir string
	// pg, when set, keeps the state in PostgreSQL instead of dir, shared
	// by every replica (postgres.go).
	pg *pgBackend

	mu       sync.Mutex
	readings map[string]kpi.Reading
	history  map[string][]kpi.Point
	// orphaned holds when the state of a source ("source/<name>") or a KPI
	// ("kpi/<id>") that the catalogue no longer has was first found so; it
	// is kept until a retention rule drops it, so that a bad edit of the
	// catalogue or a wrong --config is undone by restoring the file.
	orphaned map[string]time.Time
	dirty    bool
}

// DefaultOrphanRetention is how long the state of sources and KPIs that
// left the catalogue is kept.
const DefaultOrphanRetention = 30 * 24 * time.Hour

// CorruptError says that a state file could not be read and was moved aside.
type CorruptError struct {
	Path, MovedTo string
	Err           error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s is unreadable (%v); moved it to %s and started without it", e.Path, e.Err, e.MovedTo)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Open loads the state in dir, creating dir when it is missing. An empty
// dir keeps everything in memory only. A corrupt state file is moved aside
// and reported as a *CorruptError together with a usable, empty store.
func Open(dir string) (*Store, error) {
	s := &Store{dir: dir, readings: map[string]kpi.Reading{}, history: map[string][]kpi.Point{}, orphaned: map[string]time.Time{}}
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// Temporary files of a save that a crash interrupted are of no use.
	atomicfile.RemoveLeftovers(path)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	st, err := decode(data)
	if err != nil {
		moved, rerr := moveAside(path, time.Now()) // wallclock: names the file moved aside
		if rerr != nil {
			return nil, fmt.Errorf("state file %s is unreadable (%w) and could not be moved aside: %w", path, err, rerr)
		}
		return s, &CorruptError{Path: path, MovedTo: moved, Err: err}
	}
	s.readings, s.history, s.orphaned = st.Readings, st.History, st.Orphaned
	return s, nil
}

// moveAside renames a corrupt state file to a name no earlier one has:
// state.json.corrupt-<time>, with -2, -3, … when two happen in one second.
// The rename is a hard link and a removal, so that an existing file is
// never replaced.
func moveAside(path string, now time.Time) (string, error) {
	base := fmt.Sprintf("%s.corrupt-%s", path, now.UTC().Format("20060102T150405Z"))
	for i := 1; i < 10000; i++ {
		moved := base
		if i > 1 {
			moved = fmt.Sprintf("%s-%d", base, i)
		}
		err := os.Link(path, moved)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		return moved, os.Remove(path)
	}
	return "", fmt.Errorf("too many corrupt state files beside %s", path)
}

// Load reads the state in dir without changing anything on disk, for
// commands that only look (kpi_exporter once). A missing directory or file
// is an empty state; a corrupt file is an error.
func Load(dir string) (*Store, error) {
	s := &Store{readings: map[string]kpi.Reading{}, history: map[string][]kpi.Point{}, orphaned: map[string]time.Time{}}
	data, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	st, err := decode(data)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", filepath.Join(dir, FileName), err)
	}
	s.readings, s.history, s.orphaned = st.Readings, st.History, st.Orphaned
	return s, nil
}

// Dir is the state directory ("" when state is not kept, or kept in
// PostgreSQL).
func (s *Store) Dir() string { return s.dir }

// SetReading stores a source's last good reading.
func (s *Store) SetReading(source string, r kpi.Reading) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readings[source] = r
	s.dirty = true
	if s.pg != nil {
		s.pg.setReading(source, r)
	}
}

// ClampFuture treats every stored time after now (a clock stepped back,
// state copied from another machine) as now: a reading from the future
// would stop its source until then and never go stale, and a history point
// from the future would stop the history. It returns how many times it
// changed, for a warning.
func (s *Store) ClampFuture(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for name, r := range s.readings {
		changed := false
		if r.At.After(now) {
			r.At, changed = now, true
		}
		ms := r.Measurements
		for i := range ms {
			if ms[i].Time.After(now) {
				if !changed {
					ms = append([]kpi.Measurement(nil), ms...)
				}
				ms[i].Time, changed = now, true
			}
		}
		if changed {
			r.Measurements = ms
			s.readings[name] = r
			n++
		}
	}
	for id, h := range s.history {
		k := len(h)
		for k > 0 && h[k-1].T.After(now) {
			k--
		}
		if k == len(h) {
			continue
		}
		// The newest future point stands for them all, at now.
		last := h[len(h)-1]
		out := append(append([]kpi.Point(nil), h[:k]...), kpi.Point{T: now, V: last.V})
		if k > 0 && !h[k-1].T.Before(now) {
			out = append(out[:k-1], kpi.Point{T: now, V: last.V})
		}
		s.history[id] = out
		n++
	}
	if n > 0 {
		s.dirty = true
	}
	return n
}

// RetainReport says what Retain changed, by "source/<name>" and "kpi/<id>".
type RetainReport struct {
	// Orphaned left the catalogue now; their state is kept. Adopted came
	// back and are in use again. Dropped were orphaned longer than the
	// retention and are gone.
	Orphaned, Adopted, Dropped []string
	// Sources and KPIs count the orphaned entries kept.
	Sources, KPIs int
}

// Retain applies the catalogue to the stored state. The readings of
// sources and the history of KPIs the catalogue no longer has are never
// dropped at once: they are marked orphaned at now and kept for retention
// (0: DefaultOrphanRetention), so that restoring a catalogue brings them
// back; only then are they dropped.
func (s *Store) Retain(sources, kpis map[string]bool, now time.Time, retention time.Duration) RetainReport {
	if retention <= 0 {
		retention = DefaultOrphanRetention
	}
	if s.pg != nil {
		// Another replica may have marked entries since: its marks count.
		s.pgLoadOrphaned()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var r RetainReport
	check := func(key string, present bool, drop func()) {
		since, orphan := s.orphaned[key]
		switch {
		case present && orphan:
			delete(s.orphaned, key)
			r.Adopted = append(r.Adopted, key)
			s.dirty = true
			s.pg.orphanOp(key, time.Time{}, false)
		case present:
		case !orphan:
			s.orphaned[key] = now
			r.Orphaned = append(r.Orphaned, key)
			s.dirty = true
			s.pg.orphanOp(key, now, false)
		case now.Sub(since) >= retention:
			drop()
			delete(s.orphaned, key)
			r.Dropped = append(r.Dropped, key)
			s.dirty = true
			s.pg.orphanOp(key, since, true)
		}
	}
	for name := range s.readings {
		check("source/"+name, sources[name], func() { delete(s.readings, name) })
	}
	for id := range s.history {
		check("kpi/"+id, kpis[id], func() { delete(s.history, id) })
	}
	for key := range s.orphaned {
		// An entry whose state is gone (dropped by hand) is forgotten.
		kind, name, _ := strings.Cut(key, "/")
		_, hasReading := s.readings[name]
		_, hasHistory := s.history[name]
		if (kind == "source" && !hasReading) || (kind == "kpi" && !hasHistory) {
			delete(s.orphaned, key)
			s.pg.orphanOp(key, time.Time{}, false)
		}
	}
	for key := range s.orphaned {
		if strings.HasPrefix(key, "source/") {
			r.Sources++
		} else {
			r.KPIs++
		}
	}
	sort.Strings(r.Orphaned)
	sort.Strings(r.Adopted)
	sort.Strings(r.Dropped)
	return r
}

// Record adds a value to a KPI's history. A value no newer than the last
// point is ignored. Points are kept at least Resolution apart, but the
// newest value is always the last point: while the last point is less than
// Resolution after the one before it, it is provisional and a newer value
// replaces it.
func (s *Store) Record(id string, p kpi.Point) {
	if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg != nil {
		// The database orders every replica's points; they reach the
		// history in memory in that order (postgres.go).
		s.pg.record(s, id, p)
		return
	}
	s.recordLocked(id, p)
}

// recordLocked applies Record's rule to the history in memory. It reports
// whether p was added and, when p replaced a provisional last point, that
// point's time.
func (s *Store) recordLocked(id string, p kpi.Point) (added bool, replaced time.Time) {
	h := s.history[id]
	if n := len(h); n > 0 {
		last := h[n-1]
		// Within a millisecond with the same value is the same point: the
		// state file keeps milliseconds, readings keep nanoseconds, and a
		// restored point must not come back as a second one.
		if !p.T.After(last.T) || (p.T.Sub(last.T) < time.Millisecond && p.V == last.V) {
			return false, time.Time{}
		}
		if n > 1 && last.T.Sub(h[n-2].T) < Resolution {
			// Copy on write: published snapshots may hold the old slice.
			h = append(h[:n-1:n-1], p)
			s.history[id] = h
			s.dirty = true
			return true, last.T
		}
	}
	s.history[id] = append(h, p)
	s.dirty = true
	return true, time.Time{}
}

// Compact thins old history: older than FineSpan, one point per UTC day
// (the day's last); older than Retention, none.
func (s *Store) Compact(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fineFrom, keepFrom := now.Add(-FineSpan), now.Add(-Retention)
	for id, h := range s.history {
		out := make([]kpi.Point, 0, len(h))
		for i, p := range h {
			switch {
			case p.T.Before(keepFrom):
				continue
			case p.T.Before(fineFrom) && i+1 < len(h) && h[i+1].T.Before(fineFrom) && sameDay(p.T, h[i+1].T):
				continue // a later point of the same old day stands for it
			}
			out = append(out, p)
		}
		if len(out) != len(h) {
			s.history[id] = out
			s.dirty = true
		}
	}
	if s.pg != nil {
		s.pg.pending.compact = now
	}
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.UTC().Date()
	by, bm, bd := b.UTC().Date()
	return ay == by && am == bm && ad == bd
}

// Inputs returns what an evaluation reads. The maps are copies; the slices
// in them are never modified in place, so they may be kept.
func (s *Store) Inputs() kpi.Inputs {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := kpi.Inputs{Readings: make(map[string]kpi.Reading, len(s.readings)), History: make(map[string][]kpi.Point, len(s.history))}
	for k, v := range s.readings {
		in.Readings[k] = v
	}
	for k, v := range s.history {
		in.History[k] = v[:len(v):len(v)]
	}
	return in
}

// History returns a KPI's history, oldest first. The slice is never
// modified in place, so it may be kept.
func (s *Store) History(id string) []kpi.Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history[id]
	return h[:len(h):len(h)]
}

// Dirty reports whether anything changed since the last Save.
func (s *Store) Dirty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pg != nil {
		return s.pg.dirty()
	}
	return s.dirty
}

// Save writes the state atomically. Without a state directory it does
// nothing.
func (s *Store) Save() error {
	if s.pg != nil {
		return s.pgSync(nil)
	}
	if s.dir == "" {
		return nil
	}
	s.mu.Lock()
	data, err := encode(state{Readings: s.readings, History: s.history, Orphaned: s.orphaned})
	s.dirty = false
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(s.dir, FileName), data); err != nil {
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
		return err
	}
	return nil
}

// Transact runs fn, which changes the store, and persists what it
// changed before returning: with a file, by saving the state; with
// PostgreSQL, in one transaction that first catches up with every other
// replica's writes, so that fn sees the shared state as it is and its
// changes are committed (or, on an error, not applied at all).
func (s *Store) Transact(fn func()) error {
	if s.pg != nil {
		return s.pgSync(fn)
	}
	fn()
	if !s.Dirty() {
		return nil
	}
	return s.Save()
}

type state struct {
	Readings map[string]kpi.Reading
	History  map[string][]kpi.Point
	Orphaned map[string]time.Time
}

// fileState is the state file's shape. History points are [unix ms, value]
// pairs, which keeps the file small.
type fileState struct {
	Version  int                     `json:"version"`
	Readings map[string]kpi.Reading  `json:"readings"`
	History  map[string][][2]float64 `json:"history"`
	// Orphaned: when each orphaned entry left the catalogue (Unix ms).
	Orphaned map[string]int64 `json:"orphaned,omitempty"`
}

func encode(st state) ([]byte, error) {
	fs := fileState{Version: formatVersion, Readings: st.Readings, History: make(map[string][][2]float64, len(st.History))}
	if len(st.Orphaned) > 0 {
		fs.Orphaned = make(map[string]int64, len(st.Orphaned))
		for k, t := range st.Orphaned {
			fs.Orphaned[k] = t.UnixMilli()
		}
	}
	for id, h := range st.History {
		ps := make([][2]float64, len(h))
		for i, p := range h {
			ps[i] = [2]float64{float64(p.T.UnixMilli()), p.V}
		}
		fs.History[id] = ps
	}
	return json.Marshal(fs)
}

func decode(data []byte) (state, error) {
	var fs fileState
	if err := json.Unmarshal(data, &fs); err != nil {
		return state{}, err
	}
	if fs.Version != formatVersion {
		return state{}, fmt.Errorf("format version %d, want %d", fs.Version, formatVersion)
	}
	st := state{Readings: fs.Readings, History: make(map[string][]kpi.Point, len(fs.History)), Orphaned: make(map[string]time.Time, len(fs.Orphaned))}
	if st.Readings == nil {
		st.Readings = map[string]kpi.Reading{}
	}
	for k, ms := range fs.Orphaned {
		st.Orphaned[k] = time.UnixMilli(ms).UTC()
	}
	for id, ps := range fs.History {
		h := make([]kpi.Point, 0, len(ps))
		for _, p := range ps {
			h = append(h, kpi.Point{T: time.UnixMilli(int64(p[0])).UTC(), V: p[1]})
		}
		sort.Slice(h, func(i, j int) bool { return h[i].T.Before(h[j].T) })
		st.History[id] = h
	}
	return st, nil
}

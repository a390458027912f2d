// Package collectors holds the Collector interface, the registry of source
// types and the scheduler that runs every source on its own interval.
//
// A source type lives in a sub-package that registers itself in init, so
// that main enables it with a blank import, like a database driver.
package collectors

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/internal/atomicfile"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Collector measures one source. Collect must return when ctx is done.
// Measurements it cannot take (a missing permission, say) are left out;
// an error means the run as a whole failed and nothing it measured is used.
type Collector interface {
	Collect(ctx context.Context) ([]kpi.Measurement, error)
}

// CollectorFunc adapts a function to the Collector interface.
type CollectorFunc func(ctx context.Context) ([]kpi.Measurement, error)

// Collect calls f.
func (f CollectorFunc) Collect(ctx context.Context) ([]kpi.Measurement, error) { return f(ctx) }

// Env is what a source type's factory gets beside the source's settings.
type Env struct {
	// Logger has the source's name and type attached.
	Logger *zap.Logger
	// BaseDir is the directory that relative paths in settings resolve
	// against: the catalogue file's directory, or the working directory
	// for the embedded catalogue.
	BaseDir string
	// StateDir is a directory of the source's own for progress it keeps
	// across restarts; empty when the daemon keeps no state. State, when
	// set, is used instead (the PostgreSQL backend keeps it in the
	// database); see Env.SourceState.
	StateDir string
	State    StateStore
	// Progress, when set, is told how a long first sync advances (kpi_exporter
	// once draws a progress bar with it on a terminal).
	Progress func(done, total int, detail string)
	// Latest, when set, returns the last good readings of every source and
	// the KPIs' current values, for sources computed from others (derived).
	Latest func() Latest
}

// StateStore keeps a source's own progress across restarts (sync cursors,
// conditional-request caches, daily snapshots) as named blobs, in files of
// the state directory or in the state database, so that every replica
// that takes the source over continues where the last one stopped.
type StateStore interface {
	// Load returns the blob saved under name; an error wrapping
	// fs.ErrNotExist when there is none.
	Load(name string) ([]byte, error)
	// Save replaces the blob under name, atomically.
	Save(name string, data []byte) error
}

// DirState keeps blobs as files in a directory, written atomically.
type DirState string

// Load reads the file name in the directory.
func (d DirState) Load(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(string(d), name))
}

// Save writes the file name in the directory atomically.
func (d DirState) Save(name string, data []byte) error {
	return atomicfile.Write(filepath.Join(string(d), name), data)
}

// SourceState returns where the source keeps its progress: State, else
// StateDir, else nil (no state kept).
func (e Env) SourceState() StateStore {
	switch {
	case e.State != nil:
		return e.State
	case e.StateDir != "":
		return DirState(e.StateDir)
	}
	return nil
}

// Log returns the source's logger, or one that discards when none was
// given (tests).
func (e Env) Log() *zap.Logger {
	if e.Logger == nil {
		return zap.NewNop()
	}
	return e.Logger
}

// Latest is what a source computed from others reads.
type Latest struct {
	Readings map[string]kpi.Reading
	// KPIs holds each KPI's value that is known and fresh, with its time.
	KPIs map[string]kpi.Point
}

// Dependent is implemented by sources computed from other sources; their
// dependencies must not form a cycle, and they run after the others in
// `kpi_exporter once`.
type Dependent interface {
	// DependsOn lists the sources and KPIs (as "kpi:<id>") read.
	DependsOn() []string
}

// Passive is implemented by sources whose values are pushed to the daemon
// (POST /api/v1/values) instead of polled: the scheduler never runs them.
type Passive interface {
	// Measurements lists the measurement names the source accepts besides
	// those its KPIs are bound to.
	Measurements() []string
}

// Factory builds a collector from a source's declaration, decoding and
// validating its settings. Its errors name the place in the catalogue.
type Factory func(src kpi.Source, env Env) (Collector, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a source type available. It panics when the type is
// registered twice, which is a programming error.
func Register(typ string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[typ]; dup {
		panic("collectors: source type registered twice: " + typ)
	}
	registry[typ] = f
}

// Known reports whether a source type is registered.
func Known(typ string) bool {
	registryMu.RLock()
	defer registryMu.RUnlock()
	_, ok := registry[typ]
	return ok
}

// Types lists the registered source types, sorted.
func Types() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	ts := make([]string, 0, len(registry))
	for t := range registry {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

// New builds the collector of an enabled source.
func New(src kpi.Source, env Env) (Collector, error) {
	registryMu.RLock()
	f, ok := registry[src.Type]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%s: unknown source type %q", src.Pos, src.Type)
	}
	return f(src, env)
}

var metricNamePart = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// CheckMeasurement rejects what the daemon could not expose: a name or a
// label name that is no metric name part (or the reserved label "source"),
// and a value that is not a finite number.
func CheckMeasurement(m kpi.Measurement) error {
	if !metricNamePart.MatchString(m.Name) {
		return fmt.Errorf("measurement name %q is not [a-z_][a-z0-9_]*", m.Name)
	}
	for _, l := range m.Labels {
		if !metricNamePart.MatchString(l.Name) || kpi.ReservedLabel(l.Name) {
			return fmt.Errorf("measurement %s: label name %q is not [a-z_][a-z0-9_]*, or is one the exporter sets (source, kpi, domain, job, instance, collector)", m.Name, l.Name)
		}
	}
	if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
		return fmt.Errorf("measurement %s: value %v is not a finite number", m.Name, m.Value)
	}
	return nil
}

// validate checks what a collector returned before anything stores it.
// Values that are not numbers mean "no value" and are dropped; a bad name
// or a series reported twice fails the run.
func validate(ms []kpi.Measurement) ([]kpi.Measurement, error) {
	out := ms[:0:0]
	seen := make(map[string]bool, len(ms))
	for _, m := range ms {
		if math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			continue
		}
		if err := CheckMeasurement(m); err != nil {
			return nil, err
		}
		id := m.Name + m.Labels.String()
		if seen[id] {
			return nil, fmt.Errorf("measurement %s reported twice", id)
		}
		seen[id] = true
		out = append(out, m)
	}
	return out, nil
}

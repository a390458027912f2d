package kpi

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kind says how a measurement is exposed: most are gauges; counters (names
// ending in _total) only ever grow.
type Kind uint8

// The kinds of measurement.
const (
	Gauge Kind = iota
	Counter
)

// Label is one name/value pair of a measurement.
type Label struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Labels is a set of labels sorted by name.
type Labels []Label

// LabelsFromMap builds sorted labels from a map; an empty map gives nil.
func LabelsFromMap(m map[string]string) Labels {
	if len(m) == 0 {
		return nil
	}
	ls := make(Labels, 0, len(m))
	for k, v := range m {
		ls = append(ls, Label{Name: k, Value: v})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

// Get returns the value of the named label, or "" when it is not set.
func (ls Labels) Get(name string) string {
	for _, l := range ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Matches reports whether every matcher equals the label of the same name; a
// matcher with an empty value matches a missing label.
func (ls Labels) Matches(matchers map[string]string) bool {
	for k, v := range matchers {
		if ls.Get(k) != v {
			return false
		}
	}
	return true
}

func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// Measurement is one value a source reported.
type Measurement struct {
	Name   string  `json:"name"`
	Labels Labels  `json:"labels,omitempty"`
	Value  float64 `json:"value"`
	Kind   Kind    `json:"kind,omitempty"`
	// Time is when the value was measured; zero means the reading's time.
	Time time.Time `json:"time,omitzero"`
}

// Reading is the last good result of a source: what it measured and when.
type Reading struct {
	At           time.Time     `json:"at"`
	Measurements []Measurement `json:"measurements"`
}

// Point is one stored value of a KPI's history.
type Point struct {
	T time.Time
	V float64
}

// Inputs is what an evaluation reads: the last good reading of every source
// and the stored history of every KPI, keyed by KPI id.
type Inputs struct {
	Readings map[string]Reading
	History  map[string][]Point
	// Prior are the previous evaluation's forecasts (Scorecard.Forecasts),
	// optional: a forecast computed from the same points for the same
	// horizon is taken instead of fitted again.
	Prior map[string]Forecast
}

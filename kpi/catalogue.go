// Package kpi is the model of kpi_exporter: the catalogue of KPIs, the period
// calendar their targets are phased on, and the pure evaluation of a KPI's
// value against its target in force (attainment, zone and trend).
//
// The package does no I/O, no logging and reads no clock: time is passed in.
package kpi

import (
	"fmt"
	"strings"
	"time"
)

// Unit is the base unit a KPI's value is stored and exposed in.
type Unit string

// The units a catalogue may use. Percentages are stored as ratios (0–1),
// durations in seconds and money in US dollars, following Prometheus's base
// unit conventions.
const (
	UnitRatio     Unit = "ratio"      // 0–1; 85 % is 0.85
	UnitSeconds   Unit = "seconds"    // durations of any length
	UnitUSD       Unit = "usd"        // money, US dollars; any ISO 4217 code in lower case (eur, gbp, jpy, …) is money in that currency (see Currency)
	UnitCount     Unit = "count"      // a number of things (users, PRs, stars, days)
	UnitScore     Unit = "score"      // a score on a scale the KPI's description names (NPS, survey 1–10)
	UnitPoints    Unit = "points"     // story points
	UnitPerSecond Unit = "per_second" // a rate, such as requests per second
	UnitBytes     Unit = "bytes"      // sizes
)

// Units lists every unit, in documentation order.
var Units = []Unit{UnitRatio, UnitSeconds, UnitUSD, UnitCount, UnitScore, UnitPoints, UnitPerSecond, UnitBytes}

// Direction says whether a larger value is better (higher) or worse (lower).
type Direction string

// The two directions.
const (
	Higher Direction = "higher"
	Lower  Direction = "lower"
)

// Dashboards are the framework's five dashboards; every KPI belongs to one.
var Dashboards = []string{"executive", "technical", "community", "financial", "product"}

// Aggregation combines several matching series of a binding into one value.
type Aggregation string

// The aggregations a binding may ask for. The zero value means "exactly one
// series must match".
const (
	AggNone Aggregation = ""
	AggSum  Aggregation = "sum"
	AggAvg  Aggregation = "avg"
	AggMin  Aggregation = "min"
	AggMax  Aggregation = "max"
	// AggPooled is for ratios: for a measurement <base>_ratio it is
	// Σ <base>_covered ÷ Σ <base>_total over the matching series (the
	// coverage of two reports together, not the average of their ratios).
	// It has no value when the pooled total is 0.
	AggPooled Aggregation = "pooled"
)

// PooledParts names the numerator and denominator measurements a pooled
// binding of measurement m reads; ok is false when m is not <base>_ratio.
func PooledParts(m string) (num, den string, ok bool) {
	base, ok := strings.CutSuffix(m, "_ratio")
	if !ok || base == "" {
		return "", "", false
	}
	return base + "_covered", base + "_total", true
}

// Default evaluation settings, from the framework's success thresholds.
const (
	DefaultGreen       = 0.9
	DefaultYellow      = 0.7
	DefaultTrendWindow = 14 * 24 * time.Hour
	// DefaultMaxAgeIntervals is how many source intervals a value stays fresh
	// when a KPI sets no max_age.
	DefaultMaxAgeIntervals = 3
	// TrendFlatShare is the share of the target within which the fitted change
	// across the trend window counts as flat.
	TrendFlatShare = 0.02
	// DefaultAlertFor is how long a KPI must be red before it alerts.
	DefaultAlertFor = time.Hour
	// DefaultYellowFor is how long a KPI must be yellow before it alerts.
	DefaultYellowFor = 4 * time.Hour
)

// Catalogue is a validated KPI catalogue. Build it with Parse.
type Catalogue struct {
	Calendar    Calendar
	TrendWindow time.Duration
	// Alerts are the catalogue's default alert delays.
	Alerts struct {
		RedFor, YellowFor time.Duration
	}
	// ForecastDefaults are the catalogue's least history for a forecast
	// (evaluation.forecast); zero means the package defaults.
	ForecastDefaults struct {
		MinPoints int
		MinSpan   time.Duration
	}
	Sources []Source
	KPIs    []KPI

	sourceIndex map[string]int
}

// Source looks up a declared source by name.
func (c *Catalogue) Source(name string) (Source, bool) {
	i, ok := c.sourceIndex[name]
	if !ok {
		return Source{}, false
	}
	return c.Sources[i], true
}

// KPI looks up a KPI by id; nil when the catalogue has none.
func (c *Catalogue) KPI(id string) *KPI {
	for i := range c.KPIs {
		if c.KPIs[i].ID == id {
			return &c.KPIs[i]
		}
	}
	return nil
}

// Calendar anchors the periods targets are phased on.
type Calendar struct {
	// PlanStart is the first day of Q1; Q2 starts three months later.
	PlanStart time.Time
	// Launch is the first day of M1; M2 starts a month later.
	Launch time.Time
}

// Source is a named collector instance.
type Source struct {
	Name    string
	Type    string
	Enabled bool
	// EnableWhenSet, when not empty, is the environment variable whose
	// being set enabled the source (enable_when_set: a database source of
	// the default catalogue waits for its DSN).
	EnableWhenSet string
	Interval      time.Duration
	Timeout       time.Duration
	// Settings holds the type-specific settings, decoded by the collector
	// type's factory with positions intact.
	Settings Settings
	// Pos is where the source is declared, for messages about it.
	Pos Position
}

// KPI is one key performance indicator of the catalogue.
type KPI struct {
	ID          string
	Name        string
	Description string
	Domain      string
	Dashboard   string
	Owner       string
	Unit        Unit
	Direction   Direction
	Source      Binding
	Targets     []Milestone // ordered by period start; periods do not overlap
	Baseline    *float64
	Green       float64
	Yellow      float64
	// MaxAge is how old a value may be before the KPI reads unknown; zero
	// means DefaultMaxAgeIntervals times the source's interval.
	MaxAge       time.Duration
	Interpolate  bool
	TrendDemotes bool
	TrendWindow  time.Duration
	// Critical KPIs raise critical alerts in the red zone, others warnings.
	Critical bool
	// AlertFor is how long a KPI stays red before KpiRedZone fires, and
	// YellowFor how long yellow before KpiYellowZone does; the exporter
	// exports both, so that one rule file serves any catalogue.
	AlertFor, YellowFor time.Duration
	// NoAlerts opts the KPI out of the zone alerts (alerts: false).
	NoAlerts bool
	// Forecast tunes the projection to the end of the target period.
	Forecast ForecastSettings
	// HasFallback says the KPI was declared with source.fallback: Source
	// is the binding in use (the fallback while the first source is
	// disabled), Unused the other.
	HasFallback bool
	Unused      Binding
}

// Binding says which measurement of which source gives a KPI its value.
type Binding struct {
	Source      string
	Measurement string
	Labels      map[string]string
	Aggregate   Aggregation
}

// String renders the binding as source/measurement{labels}.
func (b Binding) String() string {
	s := b.Source + "/" + b.Measurement
	if len(b.Labels) > 0 {
		s += LabelsFromMap(b.Labels).String()
	}
	return s
}

// Milestone is a target value for a period.
type Milestone struct {
	Period Period
	Value  float64
}

// Period is an interval of the calendar: a quarter (Q1–Q4) counted from the
// plan start, a month (M1–M36) counted from the launch, or one ISO date.
type Period struct {
	Label string
	Start time.Time // inclusive
	End   time.Time // exclusive
}

// Position is a place in a file, for error messages.
type Position struct {
	File   string
	Line   int
	Column int
}

func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// PosError is an error at a place in a file; its message reads
// "file:line:col: message".
type PosError struct {
	Pos Position
	Msg string
}

func (e *PosError) Error() string { return e.Pos.String() + ": " + e.Msg }

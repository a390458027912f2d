package kpi

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Zone is a KPI's traffic-light state.
type Zone string

// The zones, in the order they are exposed.
const (
	Green   Zone = "green"
	Yellow  Zone = "yellow"
	Red     Zone = "red"
	Unknown Zone = "unknown"
)

// Zones lists every zone, in exposition order.
var Zones = []Zone{Green, Yellow, Red, Unknown}

// Trend values.
const (
	Worsening = -1
	Flat      = 0
	Improving = 1
)

// Result is the evaluation of one KPI at one moment.
type Result struct {
	KPI *KPI

	// Value is the KPI's latest value; HasValue is false when no series of
	// its binding was available.
	Value     float64
	HasValue  bool
	ValueTime time.Time
	// Stale is true when the value is older than the KPI's max age. A stale
	// value is not scored.
	Stale bool
	// ZoneSince is when the KPI entered its current zone (green, yellow or
	// red; zero when unknown), estimated from its history: the KPI's value
	// at each history point and milestone boundary, scored against the
	// target then in force. The rules alert when it is older than the
	// KPI's alert delay.
	ZoneSince time.Time
	// InputTime is the time of the newest series the value is computed
	// from: when the value last changed. It equals ValueTime for a KPI of
	// one series; for an aggregate, ValueTime is the oldest series' time
	// (a value is only as fresh as its oldest input) and InputTime is what
	// the history records the value at.
	InputTime time.Time

	Target    float64
	HasTarget bool

	Attainment    float64
	HasAttainment bool
	Zone          Zone
	Trend         int

	// Reason says why the zone is unknown, for people.
	Reason string

	// Forecast is the projection to the end of the period of the target in
	// force (see Catalogue.Forecast); its Reason says why there is none.
	Forecast Forecast
}

// Scorecard is the evaluation of a whole catalogue at one moment.
type Scorecard struct {
	At      time.Time
	Results []Result
}

// Evaluate scores every KPI of the catalogue at now from the last readings
// of its sources and its stored history. It is pure: the same inputs give
// the same scorecard.
func Evaluate(c *Catalogue, in Inputs, now time.Time) Scorecard {
	idx := indexReadings(in.Readings)
	sc := Scorecard{At: now, Results: make([]Result, len(c.KPIs))}
	for i := range c.KPIs {
		k := &c.KPIs[i]
		src, _ := c.Source(k.Source.Source)
		var prior *Forecast
		if f, ok := in.Prior[k.ID]; ok {
			prior = &f
		}
		sc.Results[i] = evaluateKPI(c, k, src, idx, in.History[k.ID], now, prior)
	}
	return sc
}

// Forecasts returns the scorecard's forecasts by KPI id, for the next
// evaluation's Inputs.Prior.
func (sc Scorecard) Forecasts() map[string]Forecast {
	out := make(map[string]Forecast, len(sc.Results))
	for _, r := range sc.Results {
		if r.Forecast.OK {
			out[r.KPI.ID] = r.Forecast
		}
	}
	return out
}

func evaluateKPI(c *Catalogue, k *KPI, src Source, idx readingIndex, history []Point, now time.Time, prior *Forecast) Result {
	r := Result{KPI: k, Zone: Unknown}
	r.Target, r.HasTarget = c.TargetAt(k, now)

	var res resolved
	res, r.HasValue, r.Reason = idx.resolve(k.Source)
	r.Value, r.ValueTime, r.InputTime = res.v, res.oldest, res.newest
	if !r.HasValue {
		r.Forecast.Reason = "no value"
		return r
	}
	maxAge := k.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAgeIntervals * src.Interval
	}
	if maxAge > 0 && now.Sub(r.ValueTime) > maxAge {
		r.Stale = true
		r.Reason = fmt.Sprintf("value measured at %s is older than max_age %s", r.ValueTime.UTC().Format(time.RFC3339), maxAge)
		r.Forecast.Reason = "the value is stale"
		return r
	}
	if !r.HasTarget {
		r.Reason = "no target applies"
		r.Forecast.Reason = "no target to forecast against"
		return r
	}
	r.Attainment, r.HasAttainment = Attainment(k.Direction, r.Value, r.Target), true
	r.Zone = ZoneOf(r.Attainment, k.Green, k.Yellow)

	window := k.TrendWindow
	if window <= 0 {
		window = c.TrendWindow
	}
	h := withCurrent(history, r.InputTime, r.Value)
	r.Trend = Trend(k.Direction, h, now, window, r.Target)
	if r.Zone == Green && r.Trend == Worsening && k.TrendDemotes {
		r.Zone = Yellow
		r.Reason = "green attainment, but the trend is worsening"
	}
	r.Forecast = c.forecast(k, h, now, prior)
	return r
}

// ZoneSince estimates when a KPI entered the zone of its result r at now,
// from its history (see zoneSince). It is not part of Evaluate: the daemon
// follows zone changes itself and asks only when a zone changes or at
// start, so that an evaluation never walks every history.
func (c *Catalogue) ZoneSince(r Result, history []Point, now time.Time) time.Time {
	if !r.HasValue || r.Stale {
		return time.Time{}
	}
	return c.zoneSince(r.KPI, withCurrent(history, r.InputTime, r.Value), r.Zone, now)
}

// zoneSince walks the KPI's history back from now and returns the start of
// the last stretch in which its value scored in zone z. The value between
// points is the last point's; the target can change at milestone starts,
// which are sampled too. A worsening trend's demotion is not replayed: a KPI
// demoted to yellow counts from when it was last not green or yellow.
func (c *Catalogue) zoneSince(k *KPI, h []Point, z Zone, now time.Time) time.Time {
	if z == Unknown || len(h) == 0 {
		return time.Time{}
	}
	same := func(t time.Time, v float64) bool {
		target, ok := c.TargetAt(k, t)
		if !ok {
			return false
		}
		got := ZoneOf(Attainment(k.Direction, v, target), k.Green, k.Yellow)
		return got == z || z == Yellow && got == Green && k.TrendDemotes
	}
	// Samples newest first: each milestone border inside a point's stretch
	// (where a stepwise target changes), then the point itself, with the
	// point's value.
	var borders []time.Time
	for _, m := range k.Targets {
		borders = append(borders, m.Period.Start, m.Period.End)
	}
	sort.Slice(borders, func(i, j int) bool { return borders[i].Before(borders[j]) })
	var since time.Time
	end := now
	for i := len(h) - 1; i >= 0; i-- {
		p := h[i]
		if p.T.After(now) {
			continue
		}
		for j := len(borders) - 1; j >= 0; j-- {
			b := borders[j]
			if !b.After(p.T) || b.After(end) {
				continue
			}
			if !same(b, p.V) {
				return sinceOr(since, end)
			}
			since = b
		}
		if !same(p.T, p.V) {
			return sinceOr(since, end)
		}
		since, end = p.T, p.T
	}
	return since
}

// sinceOr is since, or end when no sample was in the zone yet.
func sinceOr(since, end time.Time) time.Time {
	if since.IsZero() {
		return end
	}
	return since
}

// withCurrent returns the history with the current value appended when the
// history does not hold it yet, so a trend always sees the latest value.
func withCurrent(h []Point, t time.Time, v float64) []Point {
	if n := len(h); n > 0 && !h[n-1].T.Before(t) {
		return h
	}
	out := make([]Point, len(h), len(h)+1)
	copy(out, h)
	return append(out, Point{T: t, V: v})
}

// TargetAt returns the target in force for the KPI at t. Stepwise, that is
// the milestone of the period containing t; between milestones, the next one
// ahead; after the last, the last; before the first, the first. With linear
// interpolation each milestone is reached at the end of its period, on a
// straight line from the previous one (or from the baseline at the plan
// start).
func (c *Catalogue) TargetAt(k *KPI, t time.Time) (float64, bool) {
	ms := k.Targets
	if len(ms) == 0 {
		return 0, false
	}
	if k.Interpolate {
		return c.linearTarget(k, t), true
	}
	for _, m := range ms {
		if t.Before(m.Period.End) {
			return m.Value, true
		}
	}
	return ms[len(ms)-1].Value, true
}

func (c *Catalogue) linearTarget(k *KPI, t time.Time) float64 {
	type anchor struct {
		t time.Time
		v float64
	}
	anchors := make([]anchor, 0, len(k.Targets)+1)
	start := c.Calendar.PlanStart
	if start.IsZero() {
		start = c.Calendar.Launch
	}
	if k.Baseline != nil && !start.IsZero() && start.Before(k.Targets[0].Period.End) {
		anchors = append(anchors, anchor{start, *k.Baseline})
	}
	for _, m := range k.Targets {
		anchors = append(anchors, anchor{m.Period.End, m.Value})
	}
	if !t.After(anchors[0].t) {
		return anchors[0].v
	}
	for i := 1; i < len(anchors); i++ {
		a, b := anchors[i-1], anchors[i]
		if t.After(b.t) {
			continue
		}
		f := float64(t.Sub(a.t)) / float64(b.t.Sub(a.t))
		return a.v + f*(b.v-a.v)
	}
	return anchors[len(anchors)-1].v
}

// Attainment scores a value against a target, clamped to [0, 2]. For
// direction higher it is value / target, for lower target / value, with the
// framework's edge cases: a lower-is-better target of 0 is met only by 0, a
// value of 0 against a positive lower-is-better target is the best score, and
// a higher-is-better target of 0 is met by any value that is not negative.
func Attainment(dir Direction, value, target float64) float64 {
	var a float64
	switch dir {
	case Lower:
		switch {
		case target == 0 && value == 0:
			a = 1
		case target == 0:
			a = 0
		case value == 0:
			a = 2
		default:
			a = target / value
		}
	default:
		if target == 0 {
			if value >= 0 {
				return 1
			}
			return 0
		}
		a = value / target
	}
	switch {
	case math.IsNaN(a) || a < 0:
		return 0
	case a > 2:
		return 2
	}
	return a
}

// ZoneOf maps an attainment to a zone with the KPI's thresholds.
func ZoneOf(attainment, green, yellow float64) Zone {
	switch {
	case attainment >= green:
		return Green
	case attainment >= yellow:
		return Yellow
	default:
		return Red
	}
}

// Trend fits a least-squares line to the points within the window ending at
// now and reports whether the KPI is improving (+1), worsening (-1) or flat
// (0), taking the direction into account. The fit is flat when its change
// across the whole window is within TrendFlatShare of the target. Fewer than
// two distinct points give a flat trend.
func Trend(dir Direction, points []Point, now time.Time, window time.Duration, target float64) int {
	from := now.Add(-window)
	var n, sx, sy, sxx, sxy float64
	var t0 time.Time
	for _, p := range points {
		if !p.T.After(from) || p.T.After(now) || math.IsNaN(p.V) || math.IsInf(p.V, 0) {
			continue
		}
		if n == 0 {
			t0 = p.T
		}
		x := p.T.Sub(t0).Seconds()
		n++
		sx += x
		sy += p.V
		sxx += x * x
		sxy += x * p.V
	}
	den := n*sxx - sx*sx
	if n < 2 || den <= 0 {
		return Flat
	}
	slope := (n*sxy - sx*sy) / den
	change := slope * window.Seconds()
	if math.Abs(change) <= TrendFlatShare*math.Abs(target) {
		return Flat
	}
	improving := change > 0
	if dir == Lower {
		improving = !improving
	}
	if improving {
		return Improving
	}
	return Worsening
}

// readingIndex finds a source's measurements by name without scanning them.
type readingIndex map[string]indexedReading

type indexedReading struct {
	Reading
	byName map[string][]int
}

func indexReadings(rs map[string]Reading) readingIndex {
	idx := make(readingIndex, len(rs))
	for name, r := range rs {
		idx[name] = indexedReading{Reading: r, byName: nameIndex(r)}
	}
	return idx
}

// resolve finds a binding's value in the last readings. The value's time is
// the oldest time among the series it was made from.
// resolved is a binding's value with the times of its oldest and newest
// series.
type resolved struct {
	v              float64
	oldest, newest time.Time
}

func (idx readingIndex) resolve(b Binding) (resolved, bool, string) {
	r, ok := idx[b.Source]
	if !ok {
		return resolved{}, false, fmt.Sprintf("source %q has no reading yet", b.Source)
	}
	if b.Aggregate == AggPooled {
		return idx.pooled(b)
	}
	var vals []float64
	var oldest, newest time.Time
	for _, i := range r.byName[b.Measurement] {
		m := r.Measurements[i]
		if !m.Labels.Matches(b.Labels) || math.IsNaN(m.Value) || math.IsInf(m.Value, 0) {
			continue
		}
		t := m.Time
		if t.IsZero() {
			t = r.At
		}
		if len(vals) == 0 || t.Before(oldest) {
			oldest = t
		}
		if len(vals) == 0 || t.After(newest) {
			newest = t
		}
		vals = append(vals, m.Value)
	}
	switch {
	case len(vals) == 0:
		return resolved{}, false, fmt.Sprintf("no series %s in the last reading", b)
	case len(vals) > 1 && b.Aggregate == AggNone:
		return resolved{}, false, fmt.Sprintf("%d series match %s; set source.aggregate", len(vals), b)
	}
	v := vals[0]
	for _, x := range vals[1:] {
		switch b.Aggregate {
		case AggSum, AggAvg:
			v += x
		case AggMin:
			v = math.Min(v, x)
		case AggMax:
			v = math.Max(v, x)
		}
	}
	if b.Aggregate == AggAvg {
		v /= float64(len(vals))
	}
	return resolved{v, oldest, newest}, true, ""
}

// pooled resolves a pooled ratio: Σ covered ÷ Σ total of the matching
// series, with the times of the oldest and newest of them.
func (idx readingIndex) pooled(b Binding) (resolved, bool, string) {
	numName, denName, ok := PooledParts(b.Measurement)
	if !ok {
		return resolved{}, false, fmt.Sprintf("aggregate pooled needs a <base>_ratio measurement, not %q", b.Measurement)
	}
	var sums [2]float64
	var out resolved
	for i, name := range []string{numName, denName} {
		nb := b
		nb.Measurement, nb.Aggregate = name, AggSum
		res, ok, reason := idx.resolve(nb)
		if !ok {
			return resolved{}, false, reason
		}
		sums[i] = res.v
		if i == 0 || res.oldest.Before(out.oldest) {
			out.oldest = res.oldest
		}
		if i == 0 || res.newest.After(out.newest) {
			out.newest = res.newest
		}
	}
	if sums[1] == 0 {
		return resolved{}, false, fmt.Sprintf("the pooled total %s of %s is 0", denName, b)
	}
	out.v = sums[0] / sums[1]
	return out, true, ""
}

// Resolve finds a binding's value in readings as an evaluation does: the
// matching series, aggregated; ok is false when there is none, or several
// without an aggregation. t is the oldest matching series' time.
func Resolve(rs map[string]Reading, b Binding) (value float64, t time.Time, ok bool) {
	res, ok := resolveIn(rs, b)
	return res.v, res.oldest, ok
}

// ResolveNewest is Resolve with the time of the newest matching series:
// when the binding's value last changed.
func ResolveNewest(rs map[string]Reading, b Binding) (value float64, newest time.Time, ok bool) {
	res, ok := resolveIn(rs, b)
	return res.v, res.newest, ok
}

func resolveIn(rs map[string]Reading, b Binding) (resolved, bool) {
	r, found := rs[b.Source]
	if !found {
		return resolved{}, false
	}
	res, ok, _ := readingIndex{b.Source: {Reading: r, byName: nameIndex(r)}}.resolve(b)
	return res, ok
}

func nameIndex(r Reading) map[string][]int {
	byName := make(map[string][]int)
	for i, m := range r.Measurements {
		byName[m.Name] = append(byName[m.Name], i)
	}
	return byName
}

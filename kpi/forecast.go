package kpi

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Forecast defaults. The fit window defaults to the KPI's trend window.
const (
	// DefaultForecastMinPoints is the fewest history points a forecast is
	// fitted on.
	DefaultForecastMinPoints = 12
	// DefaultForecastMinSpan is the shortest stretch of history a forecast
	// is fitted on: a line through less than three days says little about
	// a quarter.
	DefaultForecastMinSpan = 3 * 24 * time.Hour
	// ForecastCoverage is the share of outcomes the interval is meant to
	// hold (an 80 % interval: bounds at the 10th and 90th percentiles).
	ForecastCoverage = 0.8

	// forecastMaxPairPoints bounds the points the Theil–Sen slope pairs
	// up (n² pairs): an evenly spread subsample of a longer history.
	forecastMaxPairPoints = 64
	// z80 is the standard normal quantile of a two-sided 80 % interval.
	z80 = 1.2816
)

// ForecastSettings tune one KPI's forecast (catalogue: forecast: {…}).
type ForecastSettings struct {
	// Disabled turns the forecast off (forecast: {enabled: false}).
	Disabled bool
	// Window is how much history the line is fitted on; zero means the
	// KPI's trend window.
	Window time.Duration
	// MinPoints and MinSpan are the least history a forecast needs; zero
	// means the catalogue's (evaluation.forecast) or the defaults.
	MinPoints int
	MinSpan   time.Duration
	// Monotone marks a KPI that can only grow (stars, contributors): its
	// projection never falls below the current value.
	Monotone bool
	// Min and Max, when set, bound the projection and its interval; by
	// default a ratio stays in [0, 1], counts, seconds, money, bytes,
	// points and rates stay ≥ 0, and scores are unbounded.
	Min, Max *float64
}

// forecastBounds returns the range a KPI's forecast stays in.
func (k *KPI) forecastBounds() (lo, hi float64) {
	lo, hi = math.Inf(-1), math.Inf(1)
	switch k.Unit {
	case UnitScore:
	case UnitRatio:
		lo, hi = 0, 1
	default:
		lo = 0
	}
	if k.Forecast.Min != nil {
		lo = *k.Forecast.Min
	}
	if k.Forecast.Max != nil {
		hi = *k.Forecast.Max
	}
	return lo, hi
}

// Forecast is a KPI's projected value at the end of the period of its
// target in force (the horizon), with an 80 % interval, scored against the
// target in force then.
type Forecast struct {
	// OK is false when there is no forecast; Reason says why.
	OK     bool
	Reason string

	// Horizon is the end of the period of the target in force now (with
	// linear interpolation, the end of the segment: the next milestone's
	// end); Period is that milestone's label.
	Horizon time.Time
	Period  string
	// Value is the projection at the horizon, Lower and Upper the 80 %
	// interval around it.
	Value, Lower, Upper float64
	// Target is the target in force at the horizon (the milestone's
	// value), Attainment and Zone the projection's score against it.
	Target     float64
	Attainment float64
	Zone       Zone
	// ETA is when the projection reaches the green threshold of the target
	// at the horizon, to stay there to the horizon (the projection is
	// monotone); zero when it is not green at the horizon. A KPI already
	// there has the time of its latest value.
	ETA time.Time

	// From is the time of the latest point the projection starts at, Level
	// the fitted value then, Slope the fitted change per second then.
	// Damping, when not zero, is the rate (per second) at which the slope
	// decays: the KPI is saturating.
	From                  time.Time
	Level, Slope, Damping float64
	// Points is how many history points the fit used; Shift, when not
	// zero, is where a level shift was found: the line is fitted on both
	// sides with one slope, and projected from the level after it.
	Points int
	Shift  time.Time

	key      forecastKey
	fit      fitted
	q        float64
	lo, hi   float64
	monotone bool
	floor    float64
}

// forecastKey is what a forecast is computed from, so that an evaluation
// can take the previous one when nothing it depends on has changed (the
// history only grows at its end and is thinned only beyond the fit window).
type forecastKey struct {
	kpi         *KPI
	horizon     time.Time
	first, last Point
	n           int
}

// At returns the projection and its interval at t (at or after From),
// clamped to the KPI's bounds.
func (f Forecast) At(t time.Time) (v, lower, upper float64) {
	x := t.Sub(f.From).Seconds()
	v = f.fit.at(x)
	hw := f.q * f.fit.spread(x)
	lower, upper = v-hw, v+hw
	clamp := func(x float64) float64 {
		if f.monotone && x < f.floor {
			x = f.floor
		}
		return math.Min(math.Max(x, f.lo), f.hi)
	}
	return clamp(v), clamp(lower), clamp(upper)
}

// Forecast projects the KPI from its history to the end of the period of
// its target in force at now. The history must be in time order and hold
// the KPI's current value as its last point (Evaluate appends it).
//
// The method, for series with the outliers, steps and plateaus KPIs have:
//   - the points of the fit window (default: the trend window), at least
//     min_points over min_span, or no forecast;
//   - a Theil–Sen line (the median of the pairwise slopes), which a few
//     outliers cannot tilt;
//   - one level shift searched for: the split that a line with a step at
//     it fits far better than a straight line (the absolute residuals at
//     most three quarters, the step over four noise deviations), taken
//     when it also fits better than the damped line; then one slope is
//     fitted within both sides and the projection starts from the level
//     after the shift;
//   - saturation: a slope falling from the first half of the window to
//     the second is damped exponentially at the rate the halves show;
//   - a slope that the residuals cannot tell from zero is shrunk towards
//     it (a plateau is projected flat, not along its noise);
//   - the interval: the residuals' robust spread, widened with the
//     distance from the fitted points as for a least-squares line, and
//     calibrated on the history itself: the line fitted on its first two
//     thirds must have held the last third within the interval's share,
//     or the interval widens until it would have;
//   - the result clamped to the KPI's range (a ratio in [0, 1]) and, for a
//     monotone KPI, never below the current value.
func (c *Catalogue) Forecast(k *KPI, history []Point, now time.Time) Forecast {
	return c.forecast(k, history, now, nil)
}

// forecast is Forecast, taking prior when it was computed from the same
// points for the same horizon.
func (c *Catalogue) forecast(k *KPI, history []Point, now time.Time, prior *Forecast) Forecast {
	fs := k.Forecast
	if fs.Disabled {
		return Forecast{Reason: "forecast disabled for this KPI"}
	}
	var m *Milestone
	for i := range k.Targets {
		if now.Before(k.Targets[i].Period.End) {
			m = &k.Targets[i]
			break
		}
	}
	if m == nil {
		if len(k.Targets) == 0 {
			return Forecast{Reason: "no target to forecast against"}
		}
		return Forecast{Reason: "the last target period has ended"}
	}
	window := fs.Window
	if window <= 0 {
		window = k.TrendWindow
	}
	if window <= 0 {
		window = c.TrendWindow
	}
	if window <= 0 {
		window = DefaultTrendWindow
	}
	minPoints, minSpan := fs.MinPoints, fs.MinSpan
	if minPoints <= 0 {
		minPoints = c.ForecastDefaults.MinPoints
	}
	if minPoints <= 0 {
		minPoints = DefaultForecastMinPoints
	}
	minPoints = max(minPoints, 3)
	if minSpan <= 0 {
		minSpan = c.ForecastDefaults.MinSpan
	}
	if minSpan <= 0 {
		minSpan = DefaultForecastMinSpan
	}

	// The fit window of the history (in time order): a prior forecast of
	// the same points is taken without copying them.
	from := now.Add(-window)
	i0 := sort.Search(len(history), func(i int) bool { return history[i].T.After(from) })
	i1 := sort.Search(len(history), func(i int) bool { return history[i].T.After(now) })
	if i1 > i0 {
		key := forecastKey{kpi: k, horizon: m.Period.End, first: history[i0], last: history[i1-1], n: i1 - i0}
		if prior != nil && prior.OK && prior.key == key {
			return *prior
		}
	}
	var pts []Point
	for _, p := range history[i0:i1] {
		if math.IsNaN(p.V) || math.IsInf(p.V, 0) {
			continue
		}
		if n := len(pts); n > 0 && !p.T.After(pts[n-1].T) {
			pts[n-1] = p // the same time twice: the later one wins
			continue
		}
		pts = append(pts, p)
	}
	if len(pts) < minPoints {
		return Forecast{Reason: fmt.Sprintf("%d history points in the last %s, a forecast needs %d", len(pts), window, minPoints)}
	}
	span := pts[len(pts)-1].T.Sub(pts[0].T)
	if span < minSpan {
		return Forecast{Reason: fmt.Sprintf("history spans %s of the last %s, a forecast needs %s", span.Round(time.Minute), window, minSpan)}
	}

	last := pts[len(pts)-1]
	key := forecastKey{kpi: k, horizon: m.Period.End, first: history[i0], last: history[i1-1], n: i1 - i0}
	xs := make([]float64, len(pts))
	ys := make([]float64, len(pts))
	for i, p := range pts {
		xs[i], ys[i] = p.T.Sub(last.T).Seconds(), p.V
	}
	lf := fitLine(xs, ys, true)

	// Calibrate the interval on the history: fit on the first two thirds,
	// score the last third.
	q := z80
	if cut := len(xs) * 2 / 3; cut >= minPoints && len(xs)-cut >= 3 {
		hf := fitLine(xs[:cut], ys[:cut], true)
		z := make([]float64, 0, len(xs)-cut)
		for i := cut; i < len(xs); i++ {
			pred := hf.at(xs[i])
			if s := hf.spread(xs[i]); s > 0 {
				z = append(z, math.Abs(ys[i]-pred)/s)
			}
		}
		if len(z) > 0 {
			q = math.Max(q, quantile(z, ForecastCoverage))
		}
	}

	lo, hi := k.forecastBounds()
	f := Forecast{
		OK: true, Horizon: m.Period.End, Period: m.Period.Label, Target: m.Value,
		From: last.T, Level: lf.level, Slope: lf.slope, Damping: lf.lambda, Points: len(pts),
		key: key, fit: lf, q: q,
		lo: lo, hi: hi, monotone: fs.Monotone, floor: last.V,
	}
	if lf.shift > 0 {
		f.Shift = pts[lf.shift].T
	}
	if fs.Monotone && f.Slope < 0 {
		f.Slope, f.fit.slope = 0, 0
	}
	f.Value, f.Lower, f.Upper = f.At(f.Horizon)
	for _, v := range []float64{f.Value, f.Lower, f.Upper, f.Level, f.Slope} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			// Finite values whose differences overflow (±1e308): no line.
			return Forecast{Reason: "the history's values are too large to fit a line to"}
		}
	}
	f.Attainment = Attainment(k.Direction, f.Value, f.Target)
	f.Zone = ZoneOf(f.Attainment, k.Green, k.Yellow)
	f.ETA = f.eta(k)
	return f
}

// eta finds the first time in [From, Horizon] from which the projection
// scores green against the target at the horizon. The projection is
// monotone in time, so green at the horizon and not now means one
// crossing: a bisection finds it to the second.
func (f Forecast) eta(k *KPI) time.Time {
	green := func(t time.Time) bool {
		v, _, _ := f.At(t)
		return Attainment(k.Direction, v, f.Target) >= k.Green
	}
	if !green(f.Horizon) {
		return time.Time{} // not green at the horizon: no ETA, also for a KPI green now and falling
	}
	if green(f.From) {
		return f.From
	}
	a, b := f.From, f.Horizon
	for b.Sub(a) > time.Second {
		mid := a.Add(b.Sub(a) / 2)
		if green(mid) {
			b = mid
		} else {
			a = mid
		}
	}
	return b.Truncate(time.Second)
}

// fitted is a fitted projection v(x) = level + slope·g(x), x seconds from
// the last point, g(x) = x for a straight line and (1 − e^(−λx))/λ for a
// damped one; with the residuals' robust spread and what the interval's
// widening needs (in g's units).
type fitted struct {
	level, slope float64
	lambda       float64
	sigma        float64
	ubar, suu    float64
	n            float64
	// infl is the variance inflation of the slope for autocorrelated
	// residuals: n over the effective number of points.
	infl float64
	// drift is a slope uncertainty of its own: half the change of slope
	// between the halves of the points.
	drift float64
	shift int
	// cost is the sum of the absolute residuals, to choose between models.
	cost float64
}

// g is the fitted model's time axis.
func (f fitted) g(x float64) float64 {
	if f.lambda == 0 {
		return x
	}
	return -math.Expm1(-f.lambda*x) / f.lambda
}

// at is the fitted value at x.
func (f fitted) at(x float64) float64 { return f.level + f.slope*f.g(x) }

// spread is the interval's half-width per unit of q at x.
func (f fitted) spread(x float64) float64 {
	if f.suu <= 0 {
		return f.sigma
	}
	u := f.g(x)
	v := f.sigma * f.sigma * (1 + f.infl*(1/f.n+(u-f.ubar)*(u-f.ubar)/f.suu))
	return math.Sqrt(v + f.drift*f.drift*u*u)
}

// fitLine fits the projection to the points (x ascending, the last at 0):
// a Theil–Sen line, damped when the slope of the second half is below that
// of the first (saturation), or a line with one level shift when the data
// show one and it fits them better; the slope shrunk towards zero when the
// residuals cannot tell it from zero.
func fitLine(xs, ys []float64, shifts bool) fitted {
	f := fitModel(xs, ys, -1)
	if !shifts {
		return f
	}
	if k := levelShift(xs, ys, theilSen(xs, ys, -1)); k > 0 {
		if g := fitModel(xs, ys, k); g.cost < f.cost {
			return g
		}
	}
	return f
}

// fitModel fits the line with a level shift at index shift (> 0), or the
// possibly damped line (shift < 0).
func fitModel(xs, ys []float64, shift int) fitted {
	n := len(xs)
	f := fitted{n: float64(n), shift: shift, infl: 1}
	us := xs
	if shift < 0 {
		f.lambda, f.drift = damping(xs, ys)
		if f.lambda != 0 {
			us = make([]float64, n)
			for i, x := range xs {
				us[i] = f.g(x)
			}
		}
	}
	slope := theilSen(us, ys, shift)
	start := max(shift, 0)
	// Residuals about each side's own level.
	resid := func(slope float64) (level float64, r []float64) {
		r = make([]float64, 0, n)
		if shift > 0 {
			a := median(detrend(us[:shift], ys[:shift], slope))
			for i := 0; i < shift; i++ {
				r = append(r, ys[i]-a-slope*us[i])
			}
		}
		d := detrend(us[start:], ys[start:], slope)
		level = median(slices.Clone(d))
		for _, v := range d {
			r = append(r, v-level)
		}
		return level, r
	}
	_, r := resid(slope)
	f.sigma = robustSD(r)
	f.infl = inflation(r)

	f.ubar, f.suu = meanSxx(us)
	// Shrink a slope the data cannot tell from zero (positive-part
	// James–Stein: by (2·se/slope)², to zero within two standard errors).
	if f.suu > 0 && slope != 0 {
		se := f.sigma * math.Sqrt(f.infl/f.suu)
		slope *= math.Max(0, 1-(2*se/slope)*(2*se/slope))
	}
	f.slope = slope
	f.level, r = resid(slope)
	f.sigma = robustSD(r)
	for _, v := range r {
		f.cost += math.Abs(v)
	}
	return f
}

// inflation is (1 + ρ)/(1 − ρ) for the residuals' lag-one autocorrelation
// ρ (in [0, 0.9]): how much less n autocorrelated points say about a slope
// than n independent ones.
func inflation(r []float64) float64 {
	var num, den float64
	for i, v := range r {
		den += v * v
		if i > 0 {
			num += v * r[i-1]
		}
	}
	if den == 0 {
		return 1
	}
	rho := min(max(num/den, 0), 0.9)
	return (1 + rho) / (1 - rho)
}

// damping compares the slopes of the first and second half of the points.
// It returns the decay rate λ (per second) of a slope that falls from one
// half to the other — a KPI saturating — shrunk towards 0 by its standard
// error as the slope is (so a straight line's noise does not bend it), and
// half the change of slope between the halves, which the interval counts
// as the slope's own uncertainty far from the data.
func damping(xs, ys []float64) (lambda, drift float64) {
	n := len(xs)
	h := n / 2
	if h < 6 {
		return 0, 0
	}
	fit := func(xs, ys []float64) (slope, se, centre float64) {
		slope = theilSen(xs, ys, -1)
		xbar, sxx := meanSxx(xs)
		d := detrend(xs, ys, slope)
		m := median(slices.Clone(d))
		for i := range d {
			d[i] -= m
		}
		if sxx <= 0 {
			return slope, math.Inf(1), xbar
		}
		return slope, robustSD(d) * math.Sqrt(inflation(d)/sxx), xbar
	}
	s1, se1, c1 := fit(xs[:h], ys[:h])
	s2, se2, c2 := fit(xs[h:], ys[h:])
	drift = math.Abs(s1-s2) / 2
	if s1 == 0 || s2 == 0 || s2/s1 <= 0 || math.Abs(s2) >= math.Abs(s1) || c2 <= c1 {
		return 0, drift
	}
	lambda = math.Log(s1/s2) / (c2 - c1)
	se := math.Hypot(se1/s1, se2/s2) / (c2 - c1)
	return lambda * math.Max(0, 1-(2*se/lambda)*(2*se/lambda)), drift
}

// meanSxx returns the mean of xs and the sum of squared deviations from it.
func meanSxx(xs []float64) (mean, sxx float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sxx += (x - mean) * (x - mean)
	}
	return mean, sxx
}

// detrend returns y - slope·x.
func detrend(xs, ys []float64, slope float64) []float64 {
	d := make([]float64, len(xs))
	for i := range xs {
		d[i] = ys[i] - slope*xs[i]
	}
	return d
}

// theilSen is the median of the slopes between pairs of points; with
// shift > 0 only pairs on the same side of it count. Beyond
// forecastMaxPairPoints points it pairs up buckets of consecutive points
// (their mean time and median value, never across the shift): n² pairs
// stay bounded, and a bucket's median is steadier than one point.
func theilSen(xs, ys []float64, shift int) float64 {
	bx, by, side := buckets(xs, ys, shift, forecastMaxPairPoints)
	buf := slopeBuffers.Get().(*[]float64)
	defer slopeBuffers.Put(buf)
	slopes := (*buf)[:0]
	for i := range bx {
		for j := i + 1; j < len(bx); j++ {
			if side[i] != side[j] {
				continue
			}
			if dx := bx[j] - bx[i]; dx > 0 {
				slopes = append(slopes, (by[j]-by[i])/dx)
			}
		}
	}
	*buf = slopes
	if len(slopes) == 0 {
		return 0
	}
	return median(slopes)
}

// slopeBuffers hold the pairwise slopes of theilSen between calls: up to
// forecastMaxPairPoints² / 2 of them a call, many calls a forecast.
var slopeBuffers = sync.Pool{New: func() any {
	b := make([]float64, 0, forecastMaxPairPoints*(forecastMaxPairPoints-1)/2)
	return &b
}}

// buckets groups the points into at most m buckets of consecutive points,
// none across the shift, with their mean x and median y, and which side of
// the shift each is on.
func buckets(xs, ys []float64, shift, m int) (bx, by []float64, side []bool) {
	n := len(xs)
	size := (n + m - 1) / m
	if size <= 1 {
		side = make([]bool, n)
		for i := range side {
			side[i] = shift > 0 && i >= shift
		}
		return xs, ys, side
	}
	var tmp []float64
	add := func(from, to int, after bool) {
		for i := from; i < to; i += size {
			j := min(i+size, to)
			var x float64
			for _, v := range xs[i:j] {
				x += v
			}
			tmp = append(tmp[:0], ys[i:j]...)
			bx = append(bx, x/float64(j-i))
			by = append(by, median(tmp))
			side = append(side, after)
		}
	}
	if shift > 0 {
		add(0, shift, false)
		add(shift, n, true)
	} else {
		add(0, n, false)
	}
	return bx, by, side
}

// levelShift returns the index at which the series steps to a new level,
// or -1: the split (three points or more on each side) at which a line with
// a step there — one Theil–Sen slope within both sides, a level per side —
// fits with at most three quarters of the absolute residual of one straight
// line, by a step of more than four times the noise (measured from
// consecutive differences, which a trend or a single step barely moves).
func levelShift(xs, ys []float64, slope float64) int {
	n := len(xs)
	if n < 8 {
		return -1
	}
	one := absDev(detrend(xs, ys, slope))
	if one == 0 {
		return -1
	}
	// The split that two levels about the straight line's slope fit best;
	// then again about the slope within the sides of that split, which a
	// step does not tilt (twice: the first split is pulled by the tilt).
	// The search runs on the buckets theilSen pairs up, then to the point
	// within the bucket.
	const minSide = 3
	bx, by, _ := buckets(xs, ys, -1, forecastMaxPairPoints)
	size := max(1, (n+forecastMaxPairPoints-1)/forecastMaxPairPoints)
	best := -1
	s := slope
	for range 3 {
		kb := bestSplit(detrend(bx, by, s), func(j int) bool { return j*size >= minSide && n-j*size >= minSide })
		if kb < 0 {
			return -1
		}
		lo, hi := max(minSide, kb*size-size+1), min(n-minSide, kb*size+size-1)
		if best = bestSplit(detrend(xs, ys, s), func(k int) bool { return k >= lo && k <= hi }); best < 0 {
			return -1
		}
		s = theilSen(xs, ys, best)
	}
	// That split with its own slope, against the straight line.
	left, right := detrend(xs[:best], ys[:best], s), detrend(xs[best:], ys[best:], s)
	step := math.Abs(median(slices.Clone(right)) - median(slices.Clone(left)))
	if absDev(left)+absDev(right) > 0.75*one || step <= 4*diffNoise(ys) {
		return -1
	}
	return best
}

// bestSplit returns the split j (ok(j)) of the buckets' values d into d[:j]
// and d[j:] with the least squared deviation from each side's mean, or -1.
// Bucket medians have shed the outliers, so squares (prefix sums, one pass)
// serve here.
func bestSplit(d []float64, ok func(int) bool) int {
	var sum, sq float64
	for _, v := range d {
		sum += v
		sq += v * v
	}
	best, bestCost := -1, math.Inf(1)
	var ls, lq float64
	for j := 1; j < len(d); j++ {
		ls += d[j-1]
		lq += d[j-1] * d[j-1]
		if !ok(j) {
			continue
		}
		nl, nr := float64(j), float64(len(d)-j)
		rs, rq := sum-ls, sq-lq
		if cost := (lq - ls*ls/nl) + (rq - rs*rs/nr); cost < bestCost {
			best, bestCost = j, cost
		}
	}
	return best
}

// absDev is the sum of absolute deviations from the median.
func absDev(v []float64) float64 {
	m := median(slices.Clone(v))
	var s float64
	for _, x := range v {
		s += math.Abs(x - m)
	}
	return s
}

// diffNoise estimates the noise's standard deviation from consecutive
// differences (robust, falling back to their mean absolute deviation for
// series that mostly do not move).
func diffNoise(ys []float64) float64 {
	if len(ys) < 3 {
		return 0
	}
	d := make([]float64, len(ys)-1)
	for i := range d {
		d[i] = ys[i+1] - ys[i]
	}
	return robustSD(d) / math.Sqrt2
}

// robustSD is 1.4826 × the median absolute deviation, or, when more than
// half the values are equal, 1.2533 × the mean absolute deviation.
func robustSD(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	m := median(slices.Clone(v))
	dev := make([]float64, len(v))
	var sum float64
	for i, x := range v {
		dev[i] = math.Abs(x - m)
		sum += dev[i]
	}
	if mad := median(dev); mad > 0 {
		return 1.4826 * mad
	}
	return 1.2533 * sum / float64(len(v))
}

// median of v, which it reorders.
func median(v []float64) float64 {
	n := len(v)
	if n == 0 {
		return 0
	}
	m := selectK(v, n/2)
	if n%2 == 1 {
		return m
	}
	// The largest of the lower half.
	lower := math.Inf(-1)
	for _, x := range v[:n/2] {
		if x > lower {
			lower = x
		}
	}
	return (lower + m) / 2
}

// quantile is the p-quantile of v (nearest rank), which it reorders.
func quantile(v []float64, p float64) float64 {
	k := int(math.Ceil(p*float64(len(v)))) - 1
	return selectK(v, min(max(k, 0), len(v)-1))
}

// selectK puts the k-th smallest element at v[k], smaller ones before it,
// and returns it (quickselect; a median of three pivot).
func selectK(v []float64, k int) float64 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if v[mid] < v[lo] {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if v[hi] < v[lo] {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if v[hi] < v[mid] {
			v[hi], v[mid] = v[mid], v[hi]
		}
		pivot := v[mid]
		i, j := lo, hi
		for i <= j {
			for v[i] < pivot {
				i++
			}
			for v[j] > pivot {
				j--
			}
			if i <= j {
				v[i], v[j] = v[j], v[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return v[k]
		}
	}
	return v[k]
}

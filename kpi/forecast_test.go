package kpi

import (
	"math"
	"strings"
	"testing"
	"time"
)

// hourly returns n hourly points ending at end, valued f(i) for the i-th
// (0 the oldest).
func hourly(end time.Time, n int, f func(i int) float64) []Point {
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{T: end.Add(-time.Duration(n-1-i) * time.Hour), V: f(i)}
	}
	return pts
}

// wobble is a deterministic noise of about ±a, so the tests do not
// depend on a random source.
func wobble(i int, a float64) float64 { return a * math.Sin(float64(i)*2.399963) }

func forecastKPI(c *Catalogue, unit Unit, dir Direction, ms ...Milestone) *KPI {
	return &KPI{ID: "k", Name: "K", Unit: unit, Direction: dir, Green: DefaultGreen, Yellow: DefaultYellow, Targets: ms}
}

func TestForecastTooLittleHistory(t *testing.T) {
	c := calendarCatalogue()
	now := at("2026-02-10T12:00:00Z")
	k := forecastKPI(c, UnitCount, Higher, milestones(c.Calendar, "Q1", 100.0)...)
	for _, tc := range []struct {
		name string
		h    []Point
		want string
	}{
		{"no history", nil, "0 history points in the last 336h0m0s, a forecast needs 12"},
		{"eleven points", hourly(now, 11, func(i int) float64 { return float64(i) }), "11 history points"},
		{"a day of points", hourly(now, 24, func(i int) float64 { return float64(i) }), "history spans 23h0m0s of the last 336h0m0s, a forecast needs 72h0m0s"},
		{"old points outside the window", hourly(now.Add(-20*24*time.Hour), 200, func(i int) float64 { return float64(i) }), "0 history points"},
	} {
		f := c.Forecast(k, tc.h, now)
		if f.OK || !strings.Contains(f.Reason, tc.want) {
			t.Errorf("%s: OK=%v reason %q, want no forecast with %q", tc.name, f.OK, f.Reason, tc.want)
		}
	}
	// The catalogue's and the KPI's own minimums.
	h := hourly(now, 30, func(i int) float64 { return float64(i) })
	c.ForecastDefaults.MinSpan = 24 * time.Hour
	if f := c.Forecast(k, h, now); !f.OK {
		t.Errorf("30 h with min_span 24h: no forecast: %s", f.Reason)
	}
	k.Forecast.MinPoints = 40
	if f := c.Forecast(k, h, now); f.OK || !strings.Contains(f.Reason, "needs 40") {
		t.Errorf("min_points 40: %+v", f.Reason)
	}
	k.Forecast = ForecastSettings{Disabled: true}
	if f := c.Forecast(k, h, now); f.OK || f.Reason != "forecast disabled for this KPI" {
		t.Errorf("disabled: %q", f.Reason)
	}
}

func TestForecastLinear(t *testing.T) {
	c := calendarCatalogue()
	now := at("2026-02-15T00:00:00Z") // Q1 ends 2026-04-01: 45 days ahead
	k := forecastKPI(c, UnitCount, Higher, milestones(c.Calendar, "Q1", 400.0, "Q2", 900.0)...)
	// +2 a day for 14 days, a little noise: 100 + 2·45 ≈ 190 at the horizon.
	h := hourly(now, 14*24, func(i int) float64 { return 100 - 28 + 2*float64(i)/24 + wobble(i, 0.5) })
	f := c.Forecast(k, h, now)
	if !f.OK {
		t.Fatal(f.Reason)
	}
	if !f.Horizon.Equal(at("2026-04-01T00:00:00Z")) || f.Period != "Q1" || f.Target != 400 {
		t.Errorf("horizon %s %s target %v, want the end of Q1 against 400", f.Horizon, f.Period, f.Target)
	}
	want := 100 + 2*45.0
	if math.Abs(f.Value-want) > 2 || !(f.Lower < f.Value && f.Value < f.Upper) || f.Upper-f.Lower > 10 {
		t.Errorf("projection %v [%v, %v], want ≈ %v with a narrow interval", f.Value, f.Lower, f.Upper, want)
	}
	if math.Abs(f.Attainment-f.Value/400) > 1e-12 || f.Zone != Red {
		t.Errorf("attainment %v zone %s, want %v red", f.Attainment, f.Zone, f.Value/400)
	}
	if !f.ETA.IsZero() {
		t.Errorf("ETA %s: 90 %% of 400 is not reached by the horizon", f.ETA)
	}
	// A target it reaches: 90 % of 150 = 135, at 100 + 2·d → d = 17.5 days.
	k.Targets[0].Value = 150
	f = c.Forecast(k, h, now)
	if f.Zone != Green || f.ETA.IsZero() || math.Abs(f.ETA.Sub(now).Hours()/24-17.5) > 1 {
		t.Errorf("zone %s ETA %s, want green with an ETA ≈ 17.5 days ahead", f.Zone, f.ETA)
	}
	// Already there: the ETA is the latest value's time.
	k.Targets[0].Value = 100
	if f = c.Forecast(k, h, now); !f.ETA.Equal(now) {
		t.Errorf("ETA %s, want %s (already green)", f.ETA, now)
	}
}

// A horizon crossing a milestone boundary: between Q1's end and a date
// milestone, the target in force is the next one ahead and the horizon is
// its end; once a milestone's period is over, the next one's.
func TestForecastHorizonAcrossMilestones(t *testing.T) {
	c := calendarCatalogue()
	ms := milestones(c.Calendar, "Q1", 100.0, "2026-05-15", 300.0, "Q4", 500.0)
	k := forecastKPI(c, UnitCount, Higher, ms...)
	for _, tc := range []struct {
		now          string
		horizon      string
		period       string
		target, days float64
	}{
		{"2026-03-20T00:00:00Z", "2026-04-01T00:00:00Z", "Q1", 100, 12},
		{"2026-04-10T00:00:00Z", "2026-05-16T00:00:00Z", "2026-05-15", 300, 36}, // in the gap: the next ahead
		{"2026-05-15T12:00:00Z", "2026-05-16T00:00:00Z", "2026-05-15", 300, 0.5},
		{"2026-05-16T00:00:00Z", "2027-01-01T00:00:00Z", "Q4", 500, 230},
	} {
		now := at(tc.now)
		h := hourly(now, 14*24, func(i int) float64 { return 50 + float64(i)/24 + wobble(i, 0.2) })
		f := c.Forecast(k, h, now)
		if !f.OK || !f.Horizon.Equal(at(tc.horizon)) || f.Period != tc.period || f.Target != tc.target {
			t.Errorf("at %s: %v %s %s %v (%s), want horizon %s (%s) against %v", tc.now, f.OK, f.Horizon, f.Period, f.Target, f.Reason, tc.horizon, tc.period, tc.target)
			continue
		}
		if want := h[len(h)-1].V + tc.days; math.Abs(f.Value-want) > 1.5+0.02*tc.days {
			t.Errorf("at %s: projection %v, want ≈ %v", tc.now, f.Value, want)
		}
	}
	f := c.Forecast(k, hourly(at("2027-01-05T00:00:00Z"), 100, func(int) float64 { return 1 }), at("2027-01-05T00:00:00Z"))
	if f.OK || f.Reason != "the last target period has ended" {
		t.Errorf("after the last milestone: %v %q", f.OK, f.Reason)
	}
}

// With linear interpolation the horizon is the end of the segment (the
// next milestone's end) and the target there is that milestone's value,
// not the interpolated target in force now.
func TestForecastLinearInterpolation(t *testing.T) {
	c := calendarCatalogue()
	k := forecastKPI(c, UnitCount, Higher, milestones(c.Calendar, "Q1", 100.0, "Q2", 200.0)...)
	k.Interpolate = true
	now := at("2026-05-01T00:00:00Z")
	h := hourly(now, 14*24, func(i int) float64 { return 150 + wobble(i, 1) })
	f := c.Forecast(k, h, now)
	if !f.OK || !f.Horizon.Equal(at("2026-07-01T00:00:00Z")) || f.Target != 200 {
		t.Fatalf("horizon %s target %v (%s), want 2026-07-01 against Q2's 200", f.Horizon, f.Target, f.Reason)
	}
	if tNow, _ := c.TargetAt(k, now); tNow >= 200 || tNow <= 100 {
		t.Fatalf("the interpolated target now is %v", tNow)
	}
	// Flat at 150 against 200: 75 %, yellow at the horizon.
	if math.Abs(f.Value-150) > 1 || f.Zone != Yellow {
		t.Errorf("projection %v zone %s, want ≈150 yellow", f.Value, f.Zone)
	}
}

func TestForecastBounds(t *testing.T) {
	c := calendarCatalogue()
	now := at("2026-02-15T00:00:00Z")
	// A ratio climbing 1 point a day from 0.95: a line would pass 1.
	k := forecastKPI(c, UnitRatio, Higher, milestones(c.Calendar, "Q1", 0.99)...)
	h := hourly(now, 14*24, func(i int) float64 { return 0.81 + 0.01*float64(i)/24 + wobble(i, 0.001) })
	f := c.Forecast(k, h, now)
	if !f.OK || f.Value != 1 || f.Upper != 1 || f.Lower > 1 || f.Lower < 0 {
		t.Errorf("ratio: %v [%v, %v], want clamped to 1", f.Value, f.Lower, f.Upper)
	}
	// A ratio falling fast stays ≥ 0.
	h = hourly(now, 14*24, func(i int) float64 { return 0.5 - 0.03*float64(i)/24 + wobble(i, 0.001) })
	if f = c.Forecast(k, h, now); f.Value != 0 || f.Lower != 0 {
		t.Errorf("falling ratio: %v [%v, %v], want 0", f.Value, f.Lower, f.Upper)
	}
	// Seconds never go negative; a score may.
	k = forecastKPI(c, UnitSeconds, Lower, milestones(c.Calendar, "Q1", 10.0)...)
	h = hourly(now, 14*24, func(i int) float64 { return 100 - 5*float64(i)/24 + wobble(i, 0.3) })
	if f = c.Forecast(k, h, now); f.Value != 0 || f.Lower != 0 {
		t.Errorf("seconds: %v [%v, %v], want 0", f.Value, f.Lower, f.Upper)
	}
	k.Unit = UnitScore
	if f = c.Forecast(k, h, now); f.Value >= 0 {
		t.Errorf("score: %v, want below 0", f.Value)
	}
	// Catalogue bounds.
	k.Forecast.Min, k.Forecast.Max = ptr(-10.0), ptr(200.0)
	if f = c.Forecast(k, h, now); f.Value != -10 {
		t.Errorf("min -10: %v", f.Value)
	}
}

// A monotone count (stars) that dipped — a deleted repository's stars,
// a noisy API — is never projected below its current value.
func TestForecastMonotone(t *testing.T) {
	c := calendarCatalogue()
	now := at("2026-02-15T00:00:00Z")
	k := forecastKPI(c, UnitCount, Higher, milestones(c.Calendar, "Q1", 500.0)...)
	h := hourly(now, 14*24, func(i int) float64 { return 400 - float64(i)/12 + wobble(i, 0.5) })
	f := c.Forecast(k, h, now)
	if f.Value >= h[len(h)-1].V {
		t.Fatalf("not monotone: %v from %v, want a falling projection", f.Value, h[len(h)-1].V)
	}
	k.Forecast.Monotone = true
	f = c.Forecast(k, h, now)
	last := h[len(h)-1].V
	if f.Value < last || f.Lower < last || f.Slope < 0 {
		t.Errorf("monotone: %v [%v, %v] slope %v, want ≥ %v", f.Value, f.Lower, f.Upper, f.Slope, last)
	}
}

// Direction lower: attainment is target ÷ value, the ETA is when the
// projection falls to target ÷ green.
func TestForecastLower(t *testing.T) {
	c := calendarCatalogue()
	now := at("2026-02-15T00:00:00Z")
	k := forecastKPI(c, UnitSeconds, Lower, milestones(c.Calendar, "Q1", 90.0)...)
	// 200 s falling 2 s a day: 110 at the horizon (45 days).
	h := hourly(now, 14*24, func(i int) float64 { return 228 - 2*float64(i)/24 + wobble(i, 0.5) })
	f := c.Forecast(k, h, now)
	if !f.OK || math.Abs(f.Value-110) > 2 {
		t.Fatalf("projection %v (%s), want ≈ 110", f.Value, f.Reason)
	}
	if math.Abs(f.Attainment-90/f.Value) > 1e-12 || f.Zone != Yellow {
		t.Errorf("attainment %v zone %s, want %v yellow", f.Attainment, f.Zone, 90/f.Value)
	}
	if !f.ETA.IsZero() {
		t.Errorf("ETA %s: 100 s is not reached by the horizon", f.ETA)
	}
	k.Targets[0].Value = 108 // green at 120: 40 days
	if f = c.Forecast(k, h, now); f.ETA.IsZero() || math.Abs(f.ETA.Sub(now).Hours()/24-40) > 1 {
		t.Errorf("ETA %s, want ≈ 40 days ahead", f.ETA)
	}
}

// One outlier does not tilt the line; a level shift is followed.
func TestForecastRobust(t *testing.T) {
	c := calendarCatalogue()
	now := at("2026-02-15T00:00:00Z")
	k := forecastKPI(c, UnitSeconds, Lower, milestones(c.Calendar, "Q1", 60.0)...)
	h := hourly(now, 14*24, func(i int) float64 { return 60 + wobble(i, 1) })
	h[len(h)-2].V = 600 // one broken run
	f := c.Forecast(k, h, now)
	if math.Abs(f.Value-60) > 1 {
		t.Errorf("with an outlier: %v, want ≈ 60", f.Value)
	}
	// A step from 60 to 90 three days ago, flat since.
	h = hourly(now, 14*24, func(i int) float64 {
		if i >= 14*24-72 {
			return 90 + wobble(i, 1)
		}
		return 60 + wobble(i, 1)
	})
	f = c.Forecast(k, h, now)
	if math.Abs(f.Value-90) > 1.5 || !f.Shift.Equal(h[14*24-72].T) {
		t.Errorf("after a step: %v (shift %s), want ≈ 90 from %s", f.Value, f.Shift, h[14*24-72].T)
	}
}

// Evaluate forecasts fresh KPIs, says why not for the others, and takes
// the prior forecast when nothing it depends on changed.
func TestEvaluateForecast(t *testing.T) {
	now := at("2026-02-15T00:00:00Z")
	c := calendarCatalogue()
	c.KPIs = []KPI{
		{ID: "a", Unit: UnitCount, Direction: Higher, Green: 0.9, Yellow: 0.7, Source: Binding{Source: "src", Measurement: "a"}, Targets: milestones(c.Calendar, "Q1", 100.0)},
		{ID: "b", Unit: UnitCount, Direction: Higher, Green: 0.9, Yellow: 0.7, Source: Binding{Source: "src", Measurement: "missing"}, Targets: milestones(c.Calendar, "Q1", 100.0)},
	}
	h := hourly(now.Add(-time.Hour), 14*24, func(i int) float64 { return 50 + float64(i)/24 })
	in := Inputs{Readings: map[string]Reading{"src": {At: now, Measurements: []Measurement{{Name: "a", Value: 64}}}},
		History: map[string][]Point{"a": h}}
	sc := Evaluate(c, in, now)
	fa, fb := sc.Results[0].Forecast, sc.Results[1].Forecast
	if !fa.OK || !fa.From.Equal(now) || fb.OK || fb.Reason != "no value" {
		t.Fatalf("a: %+v; b: %q", fa.Reason, fb.Reason)
	}
	in.Prior = sc.Forecasts()
	again := Evaluate(c, in, now.Add(15*time.Second))
	if g := again.Results[0].Forecast; g.key != fa.key || g.Value != fa.Value {
		t.Errorf("the same points gave another forecast")
	}
	// The prior is taken only for the same points: a forged prior with
	// another key is ignored.
	forged := fa
	forged.Value, forged.key.n = -1, 1
	in.Prior = map[string]Forecast{"a": forged}
	if g := Evaluate(c, in, now).Results[0].Forecast; g.Value == -1 {
		t.Errorf("a prior of other points was taken")
	}
	// Stale: no forecast.
	in.Readings["src"] = Reading{At: now.Add(-5 * time.Hour), Measurements: []Measurement{{Name: "a", Value: 64}}}
	if f := Evaluate(c, in, now).Results[0].Forecast; f.OK || f.Reason != "the value is stale" {
		t.Errorf("stale: %v %q", f.OK, f.Reason)
	}
}

// A KPI green now and falling out of green before the horizon has no ETA.
func TestForecastNoETAWhenLeavingGreen(t *testing.T) {
	c := calendarCatalogue()
	now := at("2026-02-15T00:00:00Z")
	k := forecastKPI(c, UnitCount, Higher, milestones(c.Calendar, "Q1", 100.0)...)
	h := hourly(now, 14*24, func(i int) float64 { return 150 - 2*float64(i)/24 + wobble(i, 0.3) }) // 122 now, 32 at the horizon
	f := c.Forecast(k, h, now)
	if !f.OK || f.Zone != Red || !f.ETA.IsZero() {
		t.Errorf("zone %s ETA %s, want red with no ETA", f.Zone, f.ETA)
	}
}

// FuzzForecast: any history a push can store (finite values, any times in
// order, duplicates) gives a forecast of finite numbers in the KPI's range,
// or none with a reason; never a panic, never NaN on /metrics.
func FuzzForecast(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, uint8(3), false)
	f.Add([]byte{255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0, 255, 0}, uint8(0), true)
	f.Fuzz(func(t *testing.T, data []byte, unit uint8, monotone bool) {
		c := calendarCatalogue()
		now := at("2026-02-15T00:00:00Z")
		k := forecastKPI(c, Units[int(unit)%len(Units)], Higher, milestones(c.Calendar, "Q1", 10.0)...)
		k.Forecast.Monotone = monotone
		var h []Point
		tt := now.Add(-13 * 24 * time.Hour)
		extremes := []float64{0, 1, -1, 1e308, -1e308, 5e-324, 0.5, 1e15}
		for i := 0; i+1 < len(data) && len(h) < 2000; i += 2 {
			tt = tt.Add(time.Duration(data[i]) * 10 * time.Minute) // 0: the same time again
			v := float64(data[i+1])
			if data[i+1] >= 248 {
				v = extremes[data[i+1]-248]
			}
			h = append(h, Point{T: tt, V: v})
		}
		fc := c.Forecast(k, h, now)
		if !fc.OK {
			if fc.Reason == "" {
				t.Fatal("no forecast and no reason")
			}
			return
		}
		lo, hi := k.forecastBounds()
		for _, v := range []float64{fc.Value, fc.Lower, fc.Upper, fc.Attainment} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("non-finite forecast %+v", fc)
			}
		}
		if fc.Value < lo || fc.Value > hi || fc.Lower > fc.Value || fc.Upper < fc.Value {
			t.Fatalf("forecast %v [%v, %v] outside [%v, %v] or its interval", fc.Value, fc.Lower, fc.Upper, lo, hi)
		}
		if fc.Zone != Green && fc.Zone != Yellow && fc.Zone != Red {
			t.Fatalf("zone %q", fc.Zone)
		}
	})
}

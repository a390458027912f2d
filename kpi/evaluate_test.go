package kpi

import (
	"math"
	"strings"
	"testing"
	"time"
)

func ptr(f float64) *float64 { return &f }

// calendarCatalogue is a catalogue with the plan starting 2026-01-01.
func calendarCatalogue(kpis ...KPI) *Catalogue {
	c := &Catalogue{
		Calendar:    Calendar{PlanStart: date("2026-01-01"), Launch: date("2026-01-01")},
		TrendWindow: DefaultTrendWindow,
		Sources:     []Source{{Name: "src", Type: "file", Enabled: true, Interval: time.Hour}},
		sourceIndex: map[string]int{"src": 0},
	}
	c.KPIs = kpis
	return c
}

func milestones(c Calendar, pairs ...any) []Milestone {
	var ms []Milestone
	for i := 0; i < len(pairs); i += 2 {
		p, err := c.ParsePeriod(pairs[i].(string))
		if err != nil {
			panic(err)
		}
		ms = append(ms, Milestone{Period: p, Value: pairs[i+1].(float64)})
	}
	return ms
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestTargetAt(t *testing.T) {
	cal := Calendar{PlanStart: date("2026-01-01"), Launch: date("2026-01-01")}
	step := KPI{Targets: milestones(cal, "Q1", 0.6, "Q2", 0.75, "Q4", 0.9)}
	linear := KPI{Targets: milestones(cal, "Q1", 0.85, "Q2", 0.87, "Q4", 0.90), Interpolate: true, Baseline: ptr(0.82)}
	linearNoBase := KPI{Targets: milestones(cal, "Q2", 0.5, "Q4", 1.0), Interpolate: true}
	dated := KPI{Targets: milestones(cal, "2026-03-31", 10.0, "2026-06-30", 20.0)}
	c := calendarCatalogue()

	cases := []struct {
		name string
		kpi  KPI
		t    string
		want float64
	}{
		{"in own period Q1", step, "2026-02-10T00:00:00Z", 0.6},
		{"first instant of Q2", step, "2026-04-01T00:00:00Z", 0.75},
		{"last instant of Q1", step, "2026-03-31T23:59:59Z", 0.6},
		{"Q3 has no milestone: next ahead (Q4)", step, "2026-08-15T00:00:00Z", 0.9},
		{"before the first milestone: the first", step, "2025-06-01T00:00:00Z", 0.6},
		{"after the last milestone: the last", step, "2027-06-01T00:00:00Z", 0.9},
		{"dated: before the first date", dated, "2026-01-15T00:00:00Z", 10},
		{"dated: on the date", dated, "2026-03-31T12:00:00Z", 10},
		{"dated: between dates: next ahead", dated, "2026-04-01T00:00:00Z", 20},
		{"dated: after the last", dated, "2026-12-01T00:00:00Z", 20},
		{"linear at plan start: baseline", linear, "2026-01-01T00:00:00Z", 0.82},
		{"linear before plan start: baseline", linear, "2025-12-01T00:00:00Z", 0.82},
		{"linear at end of Q1: Q1 milestone", linear, "2026-04-01T00:00:00Z", 0.85},
		{"linear halfway through Q2 (91 days, 45.5 in)", linear, "2026-05-16T12:00:00Z", 0.86},
		{"linear halfway Q2-end to Q4-end", linear, "2026-10-01T00:00:00Z", 0.87 + 0.03*92.0/184.0},
		{"linear after the last: the last", linear, "2027-03-01T00:00:00Z", 0.90},
		{"linear without baseline before first anchor: first", linearNoBase, "2026-02-01T00:00:00Z", 0.5},
	}
	for _, tc := range cases {
		got, ok := c.TargetAt(&tc.kpi, at(tc.t))
		if !ok || math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: TargetAt = %v (%v), want %v", tc.name, got, ok, tc.want)
		}
	}
	if _, ok := c.TargetAt(&KPI{}, at("2026-01-01T00:00:00Z")); ok {
		t.Error("a KPI without milestones has no target")
	}
}

func TestAttainment(t *testing.T) {
	cases := []struct {
		name          string
		dir           Direction
		value, target float64
		want          float64
	}{
		{"higher: value / target", Higher, 0.75, 0.9, 0.75 / 0.9},
		{"higher: above target", Higher, 120, 100, 1.2},
		{"higher: clamped at 2", Higher, 500, 100, 2},
		{"higher: negative value clamped at 0", Higher, -5, 100, 0},
		{"higher: target 0, value 0", Higher, 0, 0, 1},
		{"higher: target 0, value positive", Higher, 3, 0, 1},
		{"higher: target 0, value negative", Higher, -1, 0, 0},
		{"higher: value 0", Higher, 0, 50, 0},
		{"lower: target / value", Lower, 0.6, 0.5, 0.5 / 0.6},
		{"lower: better than target", Lower, 0.25, 0.5, 2},
		{"lower: better, unclamped", Lower, 0.4, 0.5, 1.25},
		{"lower: target 0, value 0", Lower, 0, 0, 1},
		{"lower: target 0, value 1", Lower, 1, 0, 0},
		{"lower: value 0, target positive", Lower, 0, 86400, 2},
		{"lower: negative value", Lower, -2, 1, 0},
	}
	for _, c := range cases {
		if got := Attainment(c.dir, c.value, c.target); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: Attainment(%s, %v, %v) = %v, want %v", c.name, c.dir, c.value, c.target, got, c.want)
		}
	}
}

func TestZoneOf(t *testing.T) {
	cases := []struct {
		a, green, yellow float64
		want             Zone
	}{
		{0.9, 0.9, 0.7, Green}, {0.8999, 0.9, 0.7, Yellow}, {0.7, 0.9, 0.7, Yellow},
		{0.6999, 0.9, 0.7, Red}, {0, 0.9, 0.7, Red}, {2, 0.9, 0.7, Green},
		{1.05, 1.1, 1.0, Yellow}, {0.5, 0.5, 0.5, Green}, {0.49, 0.5, 0.5, Red},
	}
	for _, c := range cases {
		if got := ZoneOf(c.a, c.green, c.yellow); got != c.want {
			t.Errorf("ZoneOf(%v, %v, %v) = %s, want %s", c.a, c.green, c.yellow, got, c.want)
		}
	}
}

// line makes one point a day for n days ending at end, starting at v0 and
// changing by step each day.
func line(end time.Time, n int, v0, step float64) []Point {
	ps := make([]Point, n)
	for i := range ps {
		ps[i] = Point{T: end.Add(-time.Duration(n-1-i) * 24 * time.Hour), V: v0 + float64(i)*step}
	}
	return ps
}

func TestTrend(t *testing.T) {
	now := at("2026-05-15T00:00:00Z")
	w := 14 * 24 * time.Hour
	cases := []struct {
		name   string
		dir    Direction
		points []Point
		target float64
		want   int
	}{
		{"higher rising", Higher, line(now, 14, 0.5, 0.01), 0.75, Improving},
		{"higher falling", Higher, line(now, 14, 0.7, -0.01), 0.75, Worsening},
		{"lower falling is improving", Lower, line(now, 14, 5000, -100), 3600, Improving},
		{"lower rising is worsening", Lower, line(now, 14, 3000, 100), 3600, Worsening},
		// A slope of 0.001/day over 14 days is 0.014, within 2 % of 0.75 (0.015).
		{"within 2 % of target is flat", Higher, line(now, 14, 0.7, 0.001), 0.75, Flat},
		// 0.0011/day × 14 = 0.0154 > 0.015.
		{"just beyond 2 % is a trend", Higher, line(now, 14, 0.7, 0.0011), 0.75, Improving},
		{"one point is flat", Higher, line(now, 1, 0.7, 0), 0.75, Flat},
		{"no points is flat", Higher, nil, 0.75, Flat},
		{"two points at one instant are flat", Higher, []Point{{now, 1}, {now, 2}}, 1, Flat},
		{"points before the window are ignored", Higher,
			append(line(now.Add(-30*24*time.Hour), 10, 0, 1), line(now, 5, 0.7, 0)...), 0.75, Flat},
		{"NaN points are ignored", Higher, append(line(now, 5, 0.7, 0), Point{now.Add(time.Second), math.NaN()}), 0.75, Flat},
		{"target 0: any change is a trend", Lower, line(now, 3, 0, 1), 0, Worsening},
	}
	for _, c := range cases {
		if got := Trend(c.dir, c.points, now, w, c.target); got != c.want {
			t.Errorf("%s: Trend = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestEvaluate(t *testing.T) {
	cal := Calendar{PlanStart: date("2026-01-01"), Launch: date("2026-01-01")}
	now := at("2026-05-15T12:00:00Z")
	base := KPI{ID: "k", Unit: UnitRatio, Direction: Higher, Green: 0.9, Yellow: 0.7, TrendDemotes: true,
		Source:  Binding{Source: "src", Measurement: "m"},
		Targets: milestones(cal, "Q1", 0.6, "Q2", 0.75, "Q4", 0.9)}
	reading := func(ms ...Measurement) map[string]Reading {
		return map[string]Reading{"src": {At: now.Add(-time.Minute), Measurements: ms}}
	}
	falling := line(now.Add(-time.Hour), 14, 0.9, -0.01)
	with := func(f func(*KPI)) KPI { k := base; f(&k); return k }

	cases := []struct {
		name     string
		kpi      KPI
		in       Inputs
		zone     Zone
		value    float64
		hasValue bool
		attain   float64
		trend    int
		reason   string
	}{
		{name: "green", kpi: base, in: Inputs{Readings: reading(Measurement{Name: "m", Value: 0.7})},
			zone: Green, value: 0.7, hasValue: true, attain: 0.7 / 0.75},
		{name: "yellow", kpi: base, in: Inputs{Readings: reading(Measurement{Name: "m", Value: 0.6})},
			zone: Yellow, value: 0.6, hasValue: true, attain: 0.8},
		{name: "red", kpi: base, in: Inputs{Readings: reading(Measurement{Name: "m", Value: 0.5})},
			zone: Red, value: 0.5, hasValue: true, attain: 0.5 / 0.75},
		{name: "no reading", kpi: base, in: Inputs{}, zone: Unknown, reason: `source "src" has no reading yet`},
		{name: "no matching series", kpi: base, in: Inputs{Readings: reading(Measurement{Name: "other", Value: 1})},
			zone: Unknown, reason: "no series src/m in the last reading"},
		{name: "NaN is no value", kpi: base, in: Inputs{Readings: reading(Measurement{Name: "m", Value: math.NaN()})},
			zone: Unknown, reason: "no series src/m in the last reading"},
		{name: "stale: default max age is 3 intervals", kpi: base,
			in:   Inputs{Readings: map[string]Reading{"src": {At: now.Add(-3*time.Hour - time.Second), Measurements: []Measurement{{Name: "m", Value: 0.7}}}}},
			zone: Unknown, value: 0.7, hasValue: true, reason: "value measured at 2026-05-15T08:59:59Z is older than max_age 3h0m0s"},
		{name: "exactly max age is still fresh", kpi: base,
			in:   Inputs{Readings: map[string]Reading{"src": {At: now.Add(-3 * time.Hour), Measurements: []Measurement{{Name: "m", Value: 0.7}}}}},
			zone: Green, value: 0.7, hasValue: true, attain: 0.7 / 0.75},
		{name: "stale by the KPI's own max age", kpi: with(func(k *KPI) { k.MaxAge = 30 * time.Second }),
			in:   Inputs{Readings: reading(Measurement{Name: "m", Value: 0.7})},
			zone: Unknown, value: 0.7, hasValue: true, reason: "value measured at 2026-05-15T11:59:00Z is older than max_age 30s"},
		{name: "measurement time older than reading", kpi: base,
			in:   Inputs{Readings: reading(Measurement{Name: "m", Value: 0.7, Time: now.Add(-4 * time.Hour)})},
			zone: Unknown, value: 0.7, hasValue: true, reason: "value measured at 2026-05-15T08:00:00Z is older than max_age 3h0m0s"},
		{name: "no target", kpi: with(func(k *KPI) { k.Targets = nil }),
			in:   Inputs{Readings: reading(Measurement{Name: "m", Value: 0.7})},
			zone: Unknown, value: 0.7, hasValue: true, reason: "no target applies"},
		{name: "worsening trend demotes green", kpi: base,
			in:   Inputs{Readings: reading(Measurement{Name: "m", Value: 0.7}), History: map[string][]Point{"k": falling}},
			zone: Yellow, value: 0.7, hasValue: true, attain: 0.7 / 0.75, trend: Worsening, reason: "green attainment, but the trend is worsening"},
		{name: "trend_demotes false keeps green", kpi: with(func(k *KPI) { k.TrendDemotes = false }),
			in:   Inputs{Readings: reading(Measurement{Name: "m", Value: 0.7}), History: map[string][]Point{"k": falling}},
			zone: Green, value: 0.7, hasValue: true, attain: 0.7 / 0.75, trend: Worsening},
		{name: "worsening trend leaves red red", kpi: base,
			in:   Inputs{Readings: reading(Measurement{Name: "m", Value: 0.3}), History: map[string][]Point{"k": falling}},
			zone: Red, value: 0.3, hasValue: true, attain: 0.4, trend: Worsening},
		{name: "two series without aggregate", kpi: base,
			in: Inputs{Readings: reading(
				Measurement{Name: "m", Labels: Labels{{"repo", "a"}}, Value: 0.7},
				Measurement{Name: "m", Labels: Labels{{"repo", "b"}}, Value: 0.8})},
			zone: Unknown, reason: "2 series match src/m; set source.aggregate"},
		{name: "label matcher picks one", kpi: with(func(k *KPI) { k.Source.Labels = map[string]string{"repo": "b"} }),
			in: Inputs{Readings: reading(
				Measurement{Name: "m", Labels: Labels{{"repo", "a"}}, Value: 0.7},
				Measurement{Name: "m", Labels: Labels{{"repo", "b"}}, Value: 0.75})},
			zone: Green, value: 0.75, hasValue: true, attain: 1},
		{name: "avg aggregate", kpi: with(func(k *KPI) { k.Source.Aggregate = AggAvg }),
			in: Inputs{Readings: reading(
				Measurement{Name: "m", Labels: Labels{{"repo", "a"}}, Value: 0.5},
				Measurement{Name: "m", Labels: Labels{{"repo", "b"}}, Value: 0.7})},
			zone: Yellow, value: 0.6, hasValue: true, attain: 0.8},
		{name: "sum aggregate", kpi: with(func(k *KPI) { k.Source.Aggregate = AggSum }),
			in: Inputs{Readings: reading(
				Measurement{Name: "m", Labels: Labels{{"repo", "a"}}, Value: 0.5},
				Measurement{Name: "m", Labels: Labels{{"repo", "b"}}, Value: 0.25})},
			zone: Green, value: 0.75, hasValue: true, attain: 1},
		{name: "min and max", kpi: with(func(k *KPI) { k.Source.Aggregate = AggMax }),
			in: Inputs{Readings: reading(
				Measurement{Name: "m", Labels: Labels{{"repo", "a"}}, Value: 0.5},
				Measurement{Name: "m", Labels: Labels{{"repo", "b"}}, Value: 0.6})},
			zone: Yellow, value: 0.6, hasValue: true, attain: 0.8},
		{name: "lower with target 0: value 0 is met", kpi: with(func(k *KPI) {
			k.Direction = Lower
			k.Targets = milestones(cal, "Q1", 0.0)
		}), in: Inputs{Readings: reading(Measurement{Name: "m", Value: 0})},
			zone: Green, value: 0, hasValue: true, attain: 1},
		{name: "lower with target 0: one incident is red", kpi: with(func(k *KPI) {
			k.Direction = Lower
			k.Targets = milestones(cal, "Q1", 0.0)
		}), in: Inputs{Readings: reading(Measurement{Name: "m", Value: 1})},
			zone: Red, value: 1, hasValue: true, attain: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := calendarCatalogue(tc.kpi)
			r := Evaluate(c, tc.in, now).Results[0]
			if r.Zone != tc.zone || r.HasValue != tc.hasValue || (tc.hasValue && math.Abs(r.Value-tc.value) > 1e-12) ||
				math.Abs(r.Attainment-tc.attain) > 1e-12 || r.Trend != tc.trend || r.Reason != tc.reason {
				t.Errorf("got zone=%s value=%v(%v) attainment=%v trend=%d reason=%q\nwant zone=%s value=%v(%v) attainment=%v trend=%d reason=%q",
					r.Zone, r.Value, r.HasValue, r.Attainment, r.Trend, r.Reason,
					tc.zone, tc.value, tc.hasValue, tc.attain, tc.trend, tc.reason)
			}
			if r.HasAttainment != (tc.zone != Unknown) {
				t.Errorf("HasAttainment = %v for zone %s", r.HasAttainment, r.Zone)
			}
		})
	}
}

func TestEvaluateLinearTarget(t *testing.T) {
	cal := Calendar{PlanStart: date("2026-01-01")}
	k := KPI{ID: "acc", Direction: Higher, Green: 0.9, Yellow: 0.7, Interpolate: true, Baseline: ptr(0.82),
		Source: Binding{Source: "src", Measurement: "m"}, Targets: milestones(cal, "Q1", 0.85)}
	c := calendarCatalogue(k)
	now := at("2026-02-15T06:00:00Z") // 45.25 of Q1's 90 days
	r := Evaluate(c, Inputs{Readings: map[string]Reading{"src": {At: now, Measurements: []Measurement{{Name: "m", Value: 0.8}}}}}, now).Results[0]
	want := 0.82 + 0.03*45.25/90
	if math.Abs(r.Target-want) > 1e-12 {
		t.Errorf("target = %v, want %v", r.Target, want)
	}
}

func TestFormatValue(t *testing.T) {
	cases := []struct {
		u    Unit
		v    float64
		want string
	}{
		{UnitRatio, 0.875, "87.5%"}, {UnitRatio, 0.999, "99.9%"}, {UnitRatio, 0.0005, "0.05%"}, {UnitRatio, 1, "100%"},
		{UnitSeconds, 0.15, "150ms"}, {UnitSeconds, 14400, "4h"}, {UnitSeconds, 900, "15m"}, {UnitSeconds, 5400, "1h30m"}, {UnitSeconds, 3605, "1h0m5s"}, {UnitSeconds, 90, "1m30s"}, {UnitSeconds, 2.5, "2.5s"},
		{UnitSeconds, 31557600, "365.2d"},
		{UnitUSD, 50000, "$50K"}, {UnitUSD, 600000, "$600K"}, {UnitUSD, 1.5e6, "$1.5M"}, {UnitUSD, 0.0005, "$0.0005"}, {UnitUSD, 200, "$200"},
		{UnitCount, 500, "500"}, {UnitCount, 4.5, "4.5"}, {UnitScore, 7.25, "7.25"}, {UnitPerSecond, 100, "100/s"},
		{UnitPoints, 40, "40 pts"}, {UnitCount, math.NaN(), "NaN"},
	}
	for _, c := range cases {
		if got := FormatValue(c.u, c.v); got != c.want {
			t.Errorf("FormatValue(%s, %v) = %q, want %q", c.u, c.v, got, c.want)
		}
	}
}

func TestFormatAttainmentAndTrend(t *testing.T) {
	for a, want := range map[float64]string{0.7733: "77.3%", 1.25: "125%", 0: "0%", 0.98599: "98.6%"} {
		if got := FormatAttainment(a); got != want {
			t.Errorf("FormatAttainment(%v) = %q, want %q", a, got, want)
		}
	}
	for trend, want := range map[int]string{Improving: "↑ improving", Flat: "→ flat", Worsening: "↓ worsening"} {
		if got := TrendText(trend); got != want {
			t.Errorf("TrendText(%d) = %q, want %q", trend, got, want)
		}
	}
}

// A pooled ratio of two coverage reports is their covered lines over their
// lines together, computed here a second way from the counts, never the
// average of the two ratios nor "unknown" because two series match.
func TestPooledRatio(t *testing.T) {
	now := at("2026-05-15T12:00:00Z")
	b := Binding{Source: "src", Measurement: "lines_ratio", Aggregate: AggPooled}
	rep := func(name string, covered, total float64, age time.Duration) []Measurement {
		l := Labels{{Name: "report", Value: name}}
		return []Measurement{
			{Name: "lines_covered", Labels: l, Value: covered, Time: now.Add(-age)},
			{Name: "lines_total", Labels: l, Value: total, Time: now.Add(-age)},
			{Name: "lines_ratio", Labels: l, Value: covered / total, Time: now.Add(-age)},
		}
	}
	rs := map[string]Reading{"src": {At: now, Measurements: append(rep("api", 10, 100, time.Hour), rep("web", 50, 50, time.Minute)...)}}
	v, oldest, ok := Resolve(rs, b)
	if want := (10.0 + 50) / (100 + 50); !ok || v != want || !oldest.Equal(now.Add(-time.Hour)) {
		t.Errorf("pooled %v %v %s, want %v at the oldest input", v, ok, oldest, want)
	}
	if _, newest, _ := ResolveNewest(rs, b); !newest.Equal(now.Add(-time.Minute)) {
		t.Errorf("newest %s", newest)
	}
	one := b
	one.Labels = map[string]string{"report": "api"}
	if v, _, ok := Resolve(rs, one); !ok || v != 0.1 {
		t.Errorf("one report: %v %v", v, ok)
	}
	empty := map[string]Reading{"src": {At: now, Measurements: rep("none", 0, 0, 0)}}
	if _, _, ok := Resolve(empty, b); ok {
		t.Error("a pooled total of 0 has no value")
	}
	if _, err := Parse("c.yml", []byte("sources: [{name: s, type: file}]\nkpis:\n  - {id: k, name: K, domain: d, dashboard: x, unit: ratio, direction: higher, source: {name: s, measurement: lines_covered, aggregate: pooled}, targets: [{period: Q1, value: 1}]}\n"), ParseOptions{}); err == nil || !strings.Contains(err.Error(), "<base>_ratio") {
		t.Errorf("pooled on a measurement that is not a ratio: %v", err)
	}
}

// Money in any ISO 4217 currency, formatted with its minor units: JPY has
// none, KWD three (ISO 4217's table is the reference).
func TestFormatMoney(t *testing.T) {
	for _, c := range []struct {
		u    Unit
		v    float64
		want string
	}{
		{"eur", 1234.5, "€1.23K"}, {"eur", 12.5, "€12.5"}, {"gbp", 2.5e6, "£2.5M"}, {"jpy", 980.4, "¥980"},
		{"jpy", 98000, "¥98K"}, {"kwd", 1.2346, "KWD 1.235"}, {"chf", -40, "-CHF 40"}, {"usd", 200, "$200"},
	} {
		if got := FormatValue(c.u, c.v); got != c.want {
			t.Errorf("FormatValue(%s, %v) = %q, want %q", c.u, c.v, got, c.want)
		}
	}
	for code, want := range map[string]int{"usd": 2, "EUR": 2, "jpy": 0, "krw": 0, "kwd": 3, "bhd": 3} {
		if got, ok := MinorUnits(code); !ok || got != want {
			t.Errorf("MinorUnits(%s) = %d %v, want %d", code, got, ok, want)
		}
	}
	if _, ok := Currency("percent"); ok {
		t.Error("percent is not money")
	}
}

// ZoneSince is the start of the KPI's current stretch in its zone: from its
// history when the value moved it, or from the milestone border when the
// target did while the value held.
func TestZoneSince(t *testing.T) {
	cal := Calendar{PlanStart: date("2026-01-01"), Launch: date("2026-01-01")}
	now := at("2026-05-15T12:00:00Z")
	k := KPI{ID: "k", Unit: UnitScore, Direction: Higher, Green: 0.9, Yellow: 0.7,
		Source: Binding{Source: "src", Measurement: "m"}, Targets: milestones(cal, "Q2", 50.0)}
	c := calendarCatalogue(k)
	day := func(d int) time.Time { return now.AddDate(0, 0, -d) }
	in := func(h []Point, v float64, at time.Time) Inputs {
		return Inputs{Readings: map[string]Reading{"src": {At: at, Measurements: []Measurement{{Name: "m", Value: v}}}}, History: map[string][]Point{"k": h}}
	}
	// 40 (yellow), then 30 (red) five days ago, then 32 (red) two days ago.
	since := func(h []Point, v float64) (Zone, time.Time) {
		input := in(h, v, now.Add(-time.Minute))
		r := Evaluate(c, input, now).Results[0]
		return r.Zone, c.ZoneSince(r, input.History["k"], now)
	}
	if z, s := since([]Point{{day(10), 40}, {day(5), 30}, {day(2), 32}}, 32); z != Red || !s.Equal(day(5)) {
		t.Errorf("zone %s since %s, want red since %s", z, s, day(5))
	}
	// The value holds at 45 since January; the target went from 40 (Q1) to
	// 60 (Q2) on April 1st: yellow since then.
	k.Targets = milestones(cal, "Q1", 40.0, "Q2", 60.0)
	c = calendarCatalogue(k)
	if z, s := since([]Point{{at("2026-01-10T00:00:00Z"), 45}}, 45); z != Yellow || !s.Equal(date("2026-04-01")) {
		t.Errorf("zone %s since %s, want yellow since the Q2 border", z, s)
	}
	// Unknown has no since.
	if r := Evaluate(c, Inputs{}, now).Results[0]; !c.ZoneSince(r, nil, now).IsZero() {
		t.Error("unknown has a since")
	}
}

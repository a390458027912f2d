package kpi

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// The forecast backtest: series of six generated families, each cut at
// "now" after a fit window of hourly history, forecast to a horizon 7 to 90
// days ahead and scored against the value the same process takes there.
// The reference is the naive forecast, "the last value". It is not timed;
// it runs in `make test` (deterministic seeds) and prints its table with
// -v:
//
//	go test ./kpi -run ForecastBacktest -v
//
// The README's table is this output.

// backtestFamily generates one case: the history (hourly, oldest first,
// ending at now), the true value at the horizon, and the KPI's unit.
type backtestFamily struct {
	name     string
	trending bool
	unit     Unit
	monotone bool
	gen      func(r *rand.Rand, hours, horizonHours int) (hist []float64, truth float64)
}

// ar1 is noise with sd sigma and hourly autocorrelation rho; next steps it
// by lag hours.
type ar1 struct {
	r          *rand.Rand
	sigma, rho float64
	e          float64
}

func (a *ar1) next(lag int) float64 {
	p := math.Pow(a.rho, float64(lag))
	a.e = p*a.e + math.Sqrt(1-p*p)*a.sigma*a.r.NormFloat64()
	return a.e
}

func newAR1(r *rand.Rand, sigma float64) *ar1 {
	a := &ar1{r: r, sigma: sigma, rho: 0.9 * r.Float64()}
	a.e = sigma * r.NormFloat64()
	return a
}

// series samples f (of the hour) with noise over the history and at the
// horizon.
func series(r *rand.Rand, hours, horizon int, sigma float64, f func(h float64) float64) ([]float64, float64) {
	n := newAR1(r, sigma)
	hist := make([]float64, hours)
	for i := range hist {
		hist[i] = f(float64(i)) + n.next(1)
	}
	at := hours - 1 + horizon
	return hist, f(float64(at)) + n.next(horizon)
}

var backtestFamilies = []backtestFamily{
	{name: "linear growth + noise", trending: true, unit: UnitCount,
		gen: func(r *rand.Rand, hours, horizon int) ([]float64, float64) {
			g := (0.1 + 0.9*r.Float64()) / 24 // 0.1–1 noise deviations a day
			if r.IntN(2) == 0 {
				g = -g
			}
			return series(r, hours, horizon, 1, func(h float64) float64 { return 500 + g*h })
		}},
	{name: "saturating growth", trending: true, unit: UnitCount,
		gen: func(r *rand.Rand, hours, horizon int) ([]float64, float64) {
			tau := (20 + 60*r.Float64()) * 24 // time constant, hours
			start := -tau * (0.2 + 0.8*r.Float64())
			return series(r, hours, horizon, 1, func(h float64) float64 { return 300 * (1 - math.Exp(-(h-start)/tau)) })
		}},
	{name: "weekly seasonality on a trend", trending: true, unit: UnitCount,
		gen: func(r *rand.Rand, hours, horizon int) ([]float64, float64) {
			g := (0.5 + 1.5*r.Float64()) / 24
			amp := 1 + 3*r.Float64()
			phase := 2 * math.Pi * r.Float64()
			return series(r, hours, horizon, 1, func(h float64) float64 {
				return 1000 + g*h + amp*math.Sin(2*math.Pi*h/(7*24)+phase)
			})
		}},
	{name: "plateau", unit: UnitSeconds,
		gen: func(r *rand.Rand, hours, horizon int) ([]float64, float64) {
			return series(r, hours, horizon, 1, func(float64) float64 { return 50 })
		}},
	{name: "step change", unit: UnitSeconds,
		gen: func(r *rand.Rand, hours, horizon int) ([]float64, float64) {
			step := (5 + 15*r.Float64())
			if r.IntN(2) == 0 {
				step = -step
			}
			at := float64(hours) - (1+9*r.Float64())*24 // 1–10 days before now
			return series(r, hours, horizon, 1, func(h float64) float64 {
				if h >= at {
					return 100 + step
				}
				return 100
			})
		}},
	{name: "ratio near 1", unit: UnitRatio,
		gen: func(r *rand.Rand, hours, horizon int) ([]float64, float64) {
			level := 0.97 + 0.025*r.Float64()
			hist, truth := series(r, hours, horizon, 0.01, func(float64) float64 { return level })
			for i := range hist {
				hist[i] = math.Min(hist[i], 1)
			}
			return hist, math.Min(truth, 1)
		}},
}

type backtestScore struct {
	cases                 int
	errF, errNaive        float64
	covered, withForecast int
}

func runBacktest(cases int) map[string]*backtestScore {
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	const hours = 14 * 24
	horizons := []int{7, 14, 30, 60, 90}
	out := map[string]*backtestScore{}
	for fi, fam := range backtestFamilies {
		s := &backtestScore{}
		out[fam.name] = s
		r := rand.New(rand.NewPCG(uint64(fi)+1, 2026))
		for c := 0; c < cases; c++ {
			hdays := horizons[c%len(horizons)]
			hist, truth := fam.gen(r, hours, hdays*24)
			k := &KPI{ID: "k", Unit: fam.unit, Direction: Higher, Green: DefaultGreen, Yellow: DefaultYellow,
				TrendWindow: 14 * 24 * time.Hour, Forecast: ForecastSettings{Monotone: fam.monotone},
				Targets: []Milestone{{Period: Period{Label: "D", Start: now.Add(-30 * 24 * time.Hour), End: now.Add(time.Duration(hdays) * 24 * time.Hour)}, Value: 1}}}
			c := &Catalogue{TrendWindow: DefaultTrendWindow}
			pts := make([]Point, len(hist))
			for i, v := range hist {
				pts[i] = Point{T: now.Add(-time.Duration(len(hist)-1-i) * time.Hour), V: v}
			}
			f := c.Forecast(k, pts, now)
			s.cases++
			s.errNaive += math.Abs(hist[len(hist)-1] - truth)
			if !f.OK {
				s.errF += math.Abs(hist[len(hist)-1] - truth)
				continue
			}
			s.withForecast++
			s.errF += math.Abs(f.Value - truth)
			if f.Lower <= truth && truth <= f.Upper {
				s.covered++
			}
		}
	}
	return out
}

// TestForecastBacktest holds the forecast to the bar: better than
// the last value on every trending family, no worse than 1.2× it on flat
// ones, and an 80 % interval that holds 70–90 % of the outcomes.
func TestForecastBacktest(t *testing.T) {
	cases := 500
	if testing.Short() {
		cases = 100
	}
	scores := runBacktest(cases)
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "| family | kind | cases | MAE forecast | MAE last value | ratio | 80 %% interval holds |\n|---|---|---:|---:|---:|---:|---:|\n")
	var covered, total int
	for _, fam := range backtestFamilies {
		s := scores[fam.name]
		kind := "flat"
		if fam.trending {
			kind = "trending"
		}
		ratio := s.errF / s.errNaive
		cov := float64(s.covered) / float64(s.withForecast)
		covered += s.covered
		total += s.withForecast
		fmt.Fprintf(&tbl, "| %s | %s | %d | %.3g | %.3g | %.2f | %.0f %% |\n", fam.name, kind, s.cases,
			s.errF/float64(s.cases), s.errNaive/float64(s.cases), ratio, 100*cov)
		if s.withForecast != s.cases {
			t.Errorf("%s: %d of %d cases without a forecast", fam.name, s.cases-s.withForecast, s.cases)
		}
		switch {
		case fam.trending && ratio >= 1:
			t.Errorf("%s: forecast error %.3g is not below the last value's %.3g", fam.name, s.errF, s.errNaive)
		case !fam.trending && ratio > 1.2:
			t.Errorf("%s: forecast error is %.2f× the last value's, more than 1.2×", fam.name, ratio)
		}
	}
	all := float64(covered) / float64(total)
	fmt.Fprintf(&tbl, "| all | | %d | | | | %.0f %% |\n", total, 100*all)
	t.Log("\n" + tbl.String())
	if all < 0.7 || all > 0.9 {
		t.Errorf("the 80 %% interval held %.0f %% of the outcomes, want 70–90 %%", 100*all)
	}
	if os.Getenv("KPI_BACKTEST_TABLE") != "" {
		os.WriteFile(os.Getenv("KPI_BACKTEST_TABLE"), []byte(tbl.String()), 0o644)
	}
}

// BenchmarkForecast is one KPI's forecast on a full default fit window:
// 14 days of hourly history (the store keeps one point an hour).
func BenchmarkForecast(b *testing.B) {
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	r := rand.New(rand.NewPCG(7, 7))
	hist, _ := backtestFamilies[1].gen(r, 14*24, 24)
	pts := make([]Point, len(hist))
	for i, v := range hist {
		pts[i] = Point{T: now.Add(-time.Duration(len(hist)-1-i) * time.Hour), V: v}
	}
	k := &KPI{ID: "k", Unit: UnitCount, Direction: Higher, Green: DefaultGreen, Yellow: DefaultYellow,
		Targets: []Milestone{{Period: Period{Start: now.Add(-time.Hour), End: now.Add(60 * 24 * time.Hour)}, Value: 400}}}
	c := &Catalogue{TrendWindow: DefaultTrendWindow}
	b.ReportAllocs()
	for b.Loop() {
		if f := c.Forecast(k, pts, now); !f.OK {
			b.Fatal(f.Reason)
		}
	}
}

// BenchmarkEvaluateForecasts is an evaluation of 1,000 KPIs over 10
// sources, each with 30 days of hourly history of its own (generated from
// the backtest's families with its own seed, nothing cycled): cold (every
// forecast fitted: the first evaluation after a start or a reload), warm
// (the 15 s re-evaluation: nothing changed, every forecast taken from the
// previous evaluation) and one source of ten run (its 100 KPIs refitted).
func BenchmarkEvaluateForecasts(b *testing.B) {
	now := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	cal := Calendar{PlanStart: time.Date(2030, 4, 1, 0, 0, 0, 0, time.UTC)}
	q2 := Period{Label: "Q2", Start: cal.PlanStart, End: cal.PlanStart.AddDate(0, 3, 0)}
	c := &Catalogue{Calendar: cal, TrendWindow: DefaultTrendWindow, sourceIndex: map[string]int{}}
	for s := 0; s < 10; s++ {
		c.sourceIndex[fmt.Sprintf("src%d", s)] = s
		c.Sources = append(c.Sources, Source{Name: fmt.Sprintf("src%d", s), Type: "file", Enabled: true, Interval: 5 * time.Minute})
	}
	in := Inputs{Readings: map[string]Reading{}, History: map[string][]Point{}}
	for i := 0; i < 1000; i++ {
		fam := backtestFamilies[i%len(backtestFamilies)]
		id := fmt.Sprintf("kpi_%d", i)
		src := fmt.Sprintf("src%d", i%10)
		c.KPIs = append(c.KPIs, KPI{ID: id, Unit: fam.unit, Direction: Higher, Green: DefaultGreen, Yellow: DefaultYellow,
			Source: Binding{Source: src, Measurement: id}, Targets: []Milestone{{Period: q2, Value: 1}}})
		hist, _ := fam.gen(rand.New(rand.NewPCG(uint64(i), 99)), 30*24, 1)
		pts := make([]Point, len(hist))
		for j, v := range hist {
			pts[j] = Point{T: now.Add(-time.Duration(len(hist)-j) * time.Hour), V: v}
		}
		in.History[id] = pts
		r := in.Readings[src]
		r.At = now
		r.Measurements = append(r.Measurements, Measurement{Name: id, Value: hist[len(hist)-1]})
		in.Readings[src] = r
	}
	count := func(b *testing.B, sc Scorecard) {
		n := 0
		for _, r := range sc.Results {
			if r.Forecast.OK {
				n++
			}
		}
		if n != 1000 {
			b.Fatalf("%d forecasts", n)
		}
	}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			count(b, Evaluate(c, in, now))
		}
	})
	prior := Evaluate(c, in, now).Forecasts()
	b.Run("warm", func(b *testing.B) {
		warm := in
		warm.Prior = prior
		b.ReportAllocs()
		for b.Loop() {
			count(b, Evaluate(c, warm, now.Add(15*time.Second)))
		}
	})
	b.Run("one-source-ran", func(b *testing.B) {
		ran := in
		ran.Prior = prior
		ran.Readings = maps.Clone(in.Readings)
		r := ran.Readings["src3"]
		r.At = now.Add(5 * time.Minute)
		ran.Readings["src3"] = r
		b.ReportAllocs()
		for b.Loop() {
			count(b, Evaluate(c, ran, now.Add(5*time.Minute)))
		}
	})
}

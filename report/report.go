// Package report builds the period scorecards of the framework's Weekly
// Review, Monthly Business Review and quarterly review from the stored KPI
// history, and renders them as Markdown or HTML.
//
// A report is computed from the history alone, so it can be printed for any
// past period the history still covers. It is pure: the time and the
// history are passed in.
package report

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Period is the length of a report's period.
type Period string

// The report periods.
const (
	Week    Period = "week"
	Month   Period = "month"
	Quarter Period = "quarter"
)

// Periods lists every period, for flags and messages.
var Periods = []Period{Week, Month, Quarter}

// Span is one period: [Start, End) in UTC, with a label for people.
type Span struct {
	Period     Period
	Start, End time.Time
	Label      string
}

// SpanOf returns the period of the given length that contains t. Weeks are
// ISO weeks (Monday to Sunday), months calendar months; quarters are three
// months on the grid of the catalogue's plan start (Q1 starts on it), or
// calendar quarters when the catalogue has no plan start. All in UTC.
func SpanOf(c *kpi.Catalogue, p Period, t time.Time) (Span, error) {
	t = t.UTC()
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	switch p {
	case Week:
		start := day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
		y, w := start.ISOWeek()
		end := start.AddDate(0, 0, 7)
		return Span{Period: p, Start: start, End: end,
			Label: fmt.Sprintf("%d-W%02d (%s – %s)", y, w, start.Format(time.DateOnly), end.AddDate(0, 0, -1).Format(time.DateOnly))}, nil
	case Month:
		start := time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
		return Span{Period: p, Start: start, End: start.AddDate(0, 1, 0), Label: start.Format("January 2006")}, nil
	case Quarter:
		anchor := time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)
		if ps := c.Calendar.PlanStart; !ps.IsZero() {
			anchor = time.Date(ps.Year(), ps.Month(), ps.Day(), 0, 0, 0, 0, time.UTC)
		}
		// Quarters since the anchor, rounded down also before it.
		months := (t.Year()-anchor.Year())*12 + int(t.Month()-anchor.Month())
		q := floorDiv(months, 3)
		start := anchor.AddDate(0, 3*q, 0)
		if start.After(t) {
			q--
			start = anchor.AddDate(0, 3*q, 0)
		}
		end := anchor.AddDate(0, 3*(q+1), 0)
		label := fmt.Sprintf("%s – %s", start.Format(time.DateOnly), end.AddDate(0, 0, -1).Format(time.DateOnly))
		if !c.Calendar.PlanStart.IsZero() && q >= 0 && q < 4 {
			label = fmt.Sprintf("Q%d (%s)", q+1, label)
		}
		return Span{Period: p, Start: start, End: end, Label: label}, nil
	}
	return Span{}, fmt.Errorf("unknown period %q: want week, month or quarter", p)
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Previous returns the period before s.
func (s Span) Previous(c *kpi.Catalogue) Span {
	p, _ := SpanOf(c, s.Period, s.Start.Add(-time.Nanosecond))
	return p
}

// LastComplete returns the last period of length p that ended at or before
// now: the one a weekly or monthly review looks back on.
func LastComplete(c *kpi.Catalogue, p Period, now time.Time) (Span, error) {
	cur, err := SpanOf(c, p, now)
	if err != nil {
		return Span{}, err
	}
	return cur.Previous(c), nil
}

// Row is one KPI of a report.
type Row struct {
	KPI *kpi.KPI

	// Value is the last value recorded in the period.
	Value     float64
	HasValue  bool
	ValueTime time.Time

	// Target is the target in force at the end of the period.
	Target    float64
	HasTarget bool

	Attainment    float64
	HasAttainment bool
	Zone          kpi.Zone

	// Previous is the last value recorded in the previous period; Change is
	// Value - Previous when both exist.
	Previous    float64
	HasPrevious bool
	Change      float64
	HasChange   bool
	// Better is +1 when the change moved the KPI in its good direction, -1
	// when it moved it the other way, 0 when it did not move or is unknown.
	Better int

	// Reason says why the zone is unknown.
	Reason string
}

// Domain is the rows of one domain, in catalogue order.
type Domain struct {
	Name string
	Rows []Row
}

// Report is the scorecard of one period.
type Report struct {
	Span, PreviousSpan Span
	Domains            []Domain
	// Counts is the number of KPIs per zone.
	Counts map[kpi.Zone]int

	// Weekly reports only: the framework's check-in on the on-track
	// items. OffTrack are the KPIs whose forecast, made at the period's
	// end from the history then, ends their target period in the red zone
	// (those not red at the period's end first); OnTrack counts those
	// forecast green or yellow, NoForecast those without one.
	OffTrack            []OffTrack
	OnTrack, NoForecast int
	HasForecastSection  bool
}

// OffTrack is a KPI off track by forecast at the end of a weekly report's
// period.
type OffTrack struct {
	KPI *kpi.KPI
	// Zone is the KPI's zone at the period's end (the report's row).
	Zone     kpi.Zone
	Forecast kpi.Forecast
}

// FormatForecast renders the projection and its interval.
func (o OffTrack) FormatForecast() string {
	u := o.KPI.Unit
	return fmt.Sprintf("%s (%s – %s)", kpi.FormatValue(u, o.Forecast.Value), kpi.FormatValue(u, o.Forecast.Lower), kpi.FormatValue(u, o.Forecast.Upper))
}

// FormatTarget renders the target at the horizon with its period.
func (o OffTrack) FormatTarget() string {
	return fmt.Sprintf("%s (%s, %s)", kpi.FormatValue(o.KPI.Unit, o.Forecast.Target), o.Forecast.Period,
		o.Forecast.Horizon.AddDate(0, 0, -1).Format(time.DateOnly))
}

// FormatAttainment renders the forecast's attainment.
func (o OffTrack) FormatAttainment() string { return kpi.FormatAttainment(o.Forecast.Attainment) }

// Build computes the report of span from the KPIs' stored histories, whose
// points must be in time order (as the store keeps them).
func Build(c *kpi.Catalogue, history map[string][]kpi.Point, span Span) Report {
	prev := span.Previous(c)
	rep := Report{Span: span, PreviousSpan: prev, Counts: map[kpi.Zone]int{}}
	for _, z := range kpi.Zones {
		rep.Counts[z] = 0
	}
	index := map[string]int{}
	for i := range c.KPIs {
		k := &c.KPIs[i]
		r := row(c, k, history[k.ID], span, prev)
		rep.Counts[r.Zone]++
		d, ok := index[k.Domain]
		if !ok {
			d = len(rep.Domains)
			index[k.Domain] = d
			rep.Domains = append(rep.Domains, Domain{Name: k.Domain})
		}
		rep.Domains[d].Rows = append(rep.Domains[d].Rows, r)
		if span.Period == Week {
			rep.HasForecastSection = true
			f := kpi.Forecast{Reason: "no value recorded in the period"}
			if r.HasValue {
				f = forecastAt(c, k, history[k.ID], span.End)
			}
			switch {
			case !f.OK:
				rep.NoForecast++
			case f.Zone == kpi.Red:
				rep.OffTrack = append(rep.OffTrack, OffTrack{KPI: k, Zone: r.Zone, Forecast: f})
			default:
				rep.OnTrack++
			}
		}
	}
	// The news first: off track though not red yet.
	sort.SliceStable(rep.OffTrack, func(i, j int) bool {
		return rep.OffTrack[i].Zone != kpi.Red && rep.OffTrack[j].Zone == kpi.Red
	})
	return rep
}

// forecastAt is the KPI's forecast as the daemon would have made it at end
// from the history before then.
func forecastAt(c *kpi.Catalogue, k *kpi.KPI, h []kpi.Point, end time.Time) kpi.Forecast {
	i := sort.Search(len(h), func(i int) bool { return !h[i].T.Before(end) })
	if i == 0 {
		return kpi.Forecast{Reason: "no history before the period's end"}
	}
	return c.Forecast(k, h[:i], end.Add(-time.Nanosecond))
}

func row(c *kpi.Catalogue, k *kpi.KPI, h []kpi.Point, span, prev Span) Row {
	r := Row{KPI: k, Zone: kpi.Unknown}
	r.Target, r.HasTarget = c.TargetAt(k, span.End.Add(-time.Nanosecond))
	var p kpi.Point
	if p, r.HasValue = lastIn(h, span); r.HasValue {
		r.Value, r.ValueTime = p.V, p.T
	}
	if p, ok := lastIn(h, prev); ok {
		r.Previous, r.HasPrevious = p.V, true
	}
	if r.HasValue && r.HasPrevious {
		r.Change, r.HasChange = r.Value-r.Previous, true
		switch {
		case r.Change == 0:
		case (r.Change > 0) == (k.Direction == kpi.Higher):
			r.Better = 1
		default:
			r.Better = -1
		}
	}
	switch {
	case !r.HasValue:
		r.Reason = "no value recorded in the period"
	case !r.HasTarget:
		r.Reason = "no target applies"
	default:
		r.Attainment, r.HasAttainment = kpi.Attainment(k.Direction, r.Value, r.Target), true
		r.Zone = kpi.ZoneOf(r.Attainment, k.Green, k.Yellow)
	}
	return r
}

// lastIn returns the last point of h inside span.
func lastIn(h []kpi.Point, span Span) (kpi.Point, bool) {
	i := sort.Search(len(h), func(i int) bool { return !h[i].T.Before(span.End) })
	for i--; i >= 0; i-- {
		if h[i].T.Before(span.Start) {
			break
		}
		if !math.IsNaN(h[i].V) && !math.IsInf(h[i].V, 0) {
			return h[i], true
		}
	}
	return kpi.Point{}, false
}

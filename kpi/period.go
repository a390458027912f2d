package kpi

import (
	"fmt"
	"strconv"
	"time"
)

// MaxMonth is the last month period (M36) a milestone may name.
const MaxMonth = 36

// dateLayout is the ISO 8601 calendar date form used for dates in the catalogue.
const dateLayout = "2006-01-02"

// ParsePeriod resolves a milestone period label against the calendar: Q1–Q4
// (quarters from the plan start), M1–M36 (months from the launch) or an ISO
// date (that one day, UTC).
func (c Calendar) ParsePeriod(label string) (Period, error) {
	switch {
	case len(label) >= 2 && (label[0] == 'Q' || label[0] == 'M'):
		n, err := strconv.Atoi(label[1:])
		if err != nil || label[1] == '+' || label[1] == '-' || label[1] == '0' {
			return Period{}, fmt.Errorf("period %q is not Q1..Q4, M1..M%d or an ISO date (YYYY-MM-DD)", label, MaxMonth)
		}
		if label[0] == 'Q' {
			if n < 1 || n > 4 {
				return Period{}, fmt.Errorf("period %q is outside the calendar: quarters run Q1..Q4 from calendar.plan_start", label)
			}
			if c.PlanStart.IsZero() {
				return Period{}, fmt.Errorf("period %q needs calendar.plan_start", label)
			}
			start := c.PlanStart.AddDate(0, 3*(n-1), 0)
			return Period{Label: label, Start: start, End: start.AddDate(0, 3, 0)}, nil
		}
		if n < 1 || n > MaxMonth {
			return Period{}, fmt.Errorf("period %q is outside the calendar: months run M1..M%d from calendar.launch", label, MaxMonth)
		}
		if c.Launch.IsZero() {
			return Period{}, fmt.Errorf("period %q needs calendar.launch", label)
		}
		start := c.Launch.AddDate(0, n-1, 0)
		return Period{Label: label, Start: start, End: start.AddDate(0, 1, 0)}, nil
	default:
		d, err := time.Parse(dateLayout, label)
		if err != nil {
			return Period{}, fmt.Errorf("period %q is not Q1..Q4, M1..M%d or an ISO date (YYYY-MM-DD)", label, MaxMonth)
		}
		if first, last, ok := c.span(); ok && (d.Before(first) || !d.Before(last)) {
			return Period{}, fmt.Errorf("period %q is outside the calendar (%s to %s)", label,
				first.Format(dateLayout), last.AddDate(0, 0, -1).Format(dateLayout))
		}
		return Period{Label: label, Start: d, End: d.AddDate(0, 0, 1)}, nil
	}
}

// span is the stretch of time the calendar's named periods cover: from the
// earlier anchor to the end of Q4 or of M36, whichever is later.
func (c Calendar) span() (first, last time.Time, ok bool) {
	for _, a := range []struct {
		start  time.Time
		months int
	}{{c.PlanStart, 12}, {c.Launch, MaxMonth}} {
		if a.start.IsZero() {
			continue
		}
		end := a.start.AddDate(0, a.months, 0)
		if !ok || a.start.Before(first) {
			first = a.start
		}
		if !ok || end.After(last) {
			last = end
		}
		ok = true
	}
	return first, last, ok
}

// Package synth generates a product's synthetic users and events in the
// example schema of the sql source (examples/sql/schema.*.sql), and computes
// the example KPIs from them in Go — the reference the tests hold the SQL
// queries of every database to.
package synth

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// User is a row of users(id, created_at).
type User struct {
	ID      int64
	Created time.Time
}

// Event is a row of events(user_id, name, at).
type Event struct {
	UserID int64
	Name   string
	At     time.Time
}

// Data is a generated product history.
type Data struct {
	Users  []User
	Events []Event
}

// Features are the event names besides session_start and session_end.
var Features = []string{"workflow_run", "report_view", "habit_check", "export"}

// Generate makes n users who signed up over the 90 days before now, each
// with a habit of its own (how often it comes back, fading with time), and
// their sessions: session_start, some feature events, session_end, all
// before now and at whole seconds (as every database stores them).
func Generate(seed uint64, n int, now time.Time) Data {
	r := rand.New(rand.NewPCG(seed, 7))
	now = now.UTC().Truncate(time.Second)
	var d Data
	for i := 0; i < n; i++ {
		u := User{ID: int64(i + 1), Created: now.Add(-time.Duration(r.Float64()*89*24+24) * time.Hour).Truncate(time.Second)}
		d.Users = append(d.Users, u)
		habit := 0.05 + 0.6*r.Float64()*r.Float64() // a day's chance to come back
		fade := 20 + 60*r.Float64()                 // days until the habit halves
		for day := u.Created.Truncate(24 * time.Hour); day.Before(now); day = day.Add(24 * time.Hour) {
			age := day.Sub(u.Created).Hours() / 24
			p := habit * math.Pow(0.5, age/fade)
			if !day.After(u.Created) {
				p = 1 // the day they sign up they come
			}
			if r.Float64() >= p {
				continue
			}
			// Up to three sessions a day, one in each third of the day,
			// none overlapping another and none past midnight, so that a
			// session's end is the next start-or-end event of its user.
			sessions := 1 + r.IntN(3)
			slot := 24 * time.Hour / time.Duration(sessions)
			for s := 0; s < sessions; s++ {
				slotStart := day.Add(time.Duration(s) * slot)
				start := slotStart.Add(time.Duration(r.Float64() * float64(slot/2))).Truncate(time.Second)
				if start.Before(u.Created) {
					if !u.Created.Before(slotStart.Add(slot / 2)) {
						continue
					}
					start = u.Created
				}
				length := min(time.Duration(30+r.ExpFloat64()*900)*time.Second, slot/2-time.Second)
				end := start.Add(length)
				if !end.Before(now) {
					continue
				}
				d.Events = append(d.Events, Event{u.ID, "session_start", start})
				for f := r.IntN(5); f > 0; f-- {
					at := start.Add(time.Duration(r.Float64() * float64(length))).Truncate(time.Second)
					d.Events = append(d.Events, Event{u.ID, Features[r.IntN(len(Features))], at})
				}
				d.Events = append(d.Events, Event{u.ID, "session_end", end})
			}
		}
	}
	sort.SliceStable(d.Events, func(i, j int) bool { return d.Events[i].At.Before(d.Events[j].At) })
	return d
}

// active counts the users with an event in [from, to).
func (d Data) active(from, to time.Time) map[int64]bool {
	out := map[int64]bool{}
	for _, e := range d.Events {
		if !e.At.Before(from) && e.At.Before(to) {
			out[e.UserID] = true
		}
	}
	return out
}

// DAU is the number of users with an event in the day before to.
func (d Data) DAU(to time.Time) float64 { return float64(len(d.active(to.Add(-24*time.Hour), to))) }

// Stickiness is the users active in the 7 days before to over those active
// in the 30 days before it (WAU/MAU); ok is false when no one was.
func (d Data) Stickiness(to time.Time) (float64, bool) {
	mau := len(d.active(to.Add(-30*24*time.Hour), to))
	if mau == 0 {
		return 0, false
	}
	return float64(len(d.active(to.Add(-7*24*time.Hour), to))) / float64(mau), true
}

// Retention30 is the share of the users who signed up 30 to 60 days before
// to that had an event in the 30 days before to; ok is false for an empty
// cohort.
func (d Data) Retention30(to time.Time) (float64, bool) {
	from, until := to.Add(-60*24*time.Hour), to.Add(-30*24*time.Hour)
	active := d.active(until, to)
	var cohort, kept int
	for _, u := range d.Users {
		if !u.Created.Before(from) && u.Created.Before(until) {
			cohort++
			if active[u.ID] {
				kept++
			}
		}
	}
	if cohort == 0 {
		return 0, false
	}
	return float64(kept) / float64(cohort), true
}

// SessionSeconds is the mean length of the sessions that started in the 7
// days before to: from each session_start to the user's next event if that
// is a session_end; ok is false without sessions.
func (d Data) SessionSeconds(to time.Time) (float64, bool) {
	ss := d.sessions(to.Add(-7*24*time.Hour), to)
	if len(ss) == 0 {
		return 0, false
	}
	var sum float64
	for _, s := range ss {
		sum += s.secs
	}
	return sum / float64(len(ss)), true
}

// MAU is the number of users with an event in the 30 days before to.
func (d Data) MAU(to time.Time) float64 { return float64(len(d.active(to.Add(-30*24*time.Hour), to))) }

// FeatureUsers counts the users with an event of each feature in the 30
// days before to.
func (d Data) FeatureUsers(to time.Time) map[string]float64 {
	from := to.Add(-30 * 24 * time.Hour)
	seen := map[string]map[int64]bool{}
	for _, e := range d.Events {
		if e.Name == "session_start" || e.Name == "session_end" || e.At.Before(from) || !e.At.Before(to) {
			continue
		}
		if seen[e.Name] == nil {
			seen[e.Name] = map[int64]bool{}
		}
		seen[e.Name][e.UserID] = true
	}
	out := map[string]float64{}
	for f, us := range seen {
		out[f] = float64(len(us))
	}
	return out
}

// sessions returns the sessions that started in [from, to): per user, each
// session_start followed by a session_end, with its start and length. The
// events are in time order, and a user's sessions never overlap nor share a
// second (Generate makes them so), so the pairing is the SQL's LEAD's.
func (d Data) sessions(from, to time.Time) []struct {
	user  int64
	start time.Time
	secs  float64
} {
	byUser := map[int64][]Event{}
	for _, e := range d.Events {
		if (e.Name == "session_start" || e.Name == "session_end") && !e.At.Before(from) && e.At.Before(to) {
			byUser[e.UserID] = append(byUser[e.UserID], e)
		}
	}
	var out []struct {
		user  int64
		start time.Time
		secs  float64
	}
	for u, es := range byUser {
		for i := 0; i+1 < len(es); i++ {
			if es[i].Name == "session_start" && es[i+1].Name == "session_end" {
				out = append(out, struct {
					user  int64
					start time.Time
					secs  float64
				}{u, es[i].At, es[i+1].At.Sub(es[i].At).Seconds()})
			}
		}
	}
	return out
}

// DailySessionSeconds is the mean, over the user-days (UTC dates of a
// session's start) of the 7 days before to, of the session time that user
// spent that day; ok is false without sessions.
func (d Data) DailySessionSeconds(to time.Time) (float64, bool) {
	var sum float64
	days := map[string]bool{}
	for _, s := range d.sessions(to.Add(-7*24*time.Hour), to) {
		sum += s.secs
		days[fmt.Sprint(s.user, s.start.Format(time.DateOnly))] = true
	}
	if len(days) == 0 {
		return 0, false
	}
	return sum / float64(len(days)), true
}

// WeeklyActiveDays is the mean, over the users with an event in the 7 days
// before to, of the number of UTC dates on which they had one.
func (d Data) WeeklyActiveDays(to time.Time) (float64, bool) {
	from := to.Add(-7 * 24 * time.Hour)
	days := map[int64]map[string]bool{}
	for _, e := range d.Events {
		if !e.At.Before(from) && e.At.Before(to) {
			if days[e.UserID] == nil {
				days[e.UserID] = map[string]bool{}
			}
			days[e.UserID][e.At.Format(time.DateOnly)] = true
		}
	}
	if len(days) == 0 {
		return 0, false
	}
	var n int
	for _, ds := range days {
		n += len(ds)
	}
	return float64(n) / float64(len(days)), true
}

// FeatureUsage is the share of the users active in the 30 days before to
// who used any feature (an event other than a session's start or end).
func (d Data) FeatureUsage(to time.Time) (float64, bool) {
	from := to.Add(-30 * 24 * time.Hour)
	active, used := map[int64]bool{}, map[int64]bool{}
	for _, e := range d.Events {
		if e.At.Before(from) || !e.At.Before(to) {
			continue
		}
		active[e.UserID] = true
		if e.Name != "session_start" && e.Name != "session_end" {
			used[e.UserID] = true
		}
	}
	if len(active) == 0 {
		return 0, false
	}
	return float64(len(used)) / float64(len(active)), true
}

// FeatureAdoption is, per feature, the share of the users active in the 30
// days before to who used it.
func (d Data) FeatureAdoption(to time.Time) map[string]float64 {
	mau := d.MAU(to)
	out := map[string]float64{}
	for f, n := range d.FeatureUsers(to) {
		out[f] = n / mau
	}
	return out
}

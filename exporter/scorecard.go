package exporter

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// KPIView is one KPI as the status page and the JSON API show it. Absent
// numbers are null in JSON, never 0.
type KPIView struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Domain      string `json:"domain"`
	Dashboard   string `json:"dashboard"`
	Owner       string `json:"owner,omitempty"`
	Unit        string `json:"unit"`
	Direction   string `json:"direction"`

	Value      *float64   `json:"value"`
	ValueText  string     `json:"value_text"`
	ValueTime  *time.Time `json:"value_time"`
	AgeSeconds *float64   `json:"age_seconds"`
	Stale      bool       `json:"stale"`

	Target        *float64       `json:"target"`
	TargetText    string         `json:"target_text"`
	NextMilestone *MilestoneView `json:"next_milestone"`
	Attainment    *float64       `json:"attainment"`
	Zone          kpi.Zone       `json:"zone"`
	Trend         int            `json:"trend"`
	Reason        string         `json:"reason,omitempty"`

	// Forecast is the projection to the end of the target period; null
	// without one, and ForecastReason says why.
	Forecast       *ForecastView `json:"forecast"`
	ForecastReason string        `json:"forecast_reason,omitempty"`

	Source SourceView `json:"source"`

	// Milestones and History are filled for one KPI's detail only.
	Milestones []MilestoneView `json:"milestones,omitempty"`
	History    []PointView     `json:"history,omitempty"`
}

// ForecastView is a KPI's forecast: its projected value at the horizon (the
// end of the period of the target in force) with its 80 % interval, scored
// against the target then, and when it turns green.
type ForecastView struct {
	Horizon    time.Time `json:"horizon"`
	Period     string    `json:"period"`
	Value      float64   `json:"value"`
	ValueText  string    `json:"value_text"`
	Lower      float64   `json:"lower"`
	Upper      float64   `json:"upper"`
	RangeText  string    `json:"range_text"`
	Target     float64   `json:"target"`
	TargetText string    `json:"target_text"`
	Attainment float64   `json:"attainment"`
	Zone       kpi.Zone  `json:"zone"`
	// ETA is when the projection turns green (the latest value's time
	// when it already is); null when it is not green at the horizon.
	ETA *time.Time `json:"eta"`
	// From is the latest value's time the projection starts at, Slope its
	// fitted change per day then; Points how many history points it was
	// fitted on; LevelShift, when set, the start of the level it follows;
	// Damped says the slope decays (a saturating KPI).
	From          time.Time  `json:"from"`
	SlopePerDay   float64    `json:"slope_per_day"`
	Points        int        `json:"points"`
	LevelShift    *time.Time `json:"level_shift,omitempty"`
	Damped        bool       `json:"damped"`
	IntervalShare float64    `json:"interval_share"`
}

func forecastView(k *kpi.KPI, f kpi.Forecast) *ForecastView {
	if !f.OK {
		return nil
	}
	v := &ForecastView{Horizon: f.Horizon, Period: f.Period, Value: f.Value, ValueText: kpi.FormatValue(k.Unit, f.Value),
		Lower: f.Lower, Upper: f.Upper, RangeText: kpi.FormatValue(k.Unit, f.Lower) + " – " + kpi.FormatValue(k.Unit, f.Upper),
		Target: f.Target, TargetText: kpi.FormatValue(k.Unit, f.Target), Attainment: f.Attainment, Zone: f.Zone,
		From: f.From, SlopePerDay: f.Slope * 86400, Points: f.Points, Damped: f.Damping != 0, IntervalShare: kpi.ForecastCoverage}
	if !f.ETA.IsZero() {
		t := f.ETA
		v.ETA = &t
	}
	if !f.Shift.IsZero() {
		t := f.Shift
		v.LevelShift = &t
	}
	return v
}

// MilestoneView is one target milestone.
type MilestoneView struct {
	Period    string    `json:"period"`
	Start     time.Time `json:"start"`
	End       time.Time `json:"end"`
	Value     float64   `json:"value"`
	ValueText string    `json:"value_text"`
}

// SourceView is the source of a KPI with its health: ok, failing, not_run
// (enabled, no run since start and no stored reading) or disabled.
type SourceView struct {
	Name        string     `json:"name"`
	Type        string     `json:"type"`
	Measurement string     `json:"measurement"`
	Health      string     `json:"health"`
	LastSuccess *time.Time `json:"last_success"`
	LastError   string     `json:"last_error,omitempty"`
}

// PointView is one point of a KPI's history.
type PointView struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// ScorecardView is the whole scorecard, filtered.
type ScorecardView struct {
	At     time.Time        `json:"at"`
	Counts map[kpi.Zone]int `json:"counts"`
	KPIs   []KPIView        `json:"kpis"`
}

// Filter selects KPIs by dashboard, owner, zone and domain; empty fields
// select all.
type Filter struct {
	Dashboard, Owner, Domain string
	Zone                     kpi.Zone
}

func filterOf(q url.Values) Filter {
	return Filter{Dashboard: q.Get("dashboard"), Owner: q.Get("owner"), Domain: q.Get("domain"), Zone: kpi.Zone(q.Get("zone"))}
}

func (f Filter) match(k *kpi.KPI, z kpi.Zone) bool {
	return (f.Dashboard == "" || f.Dashboard == k.Dashboard) && (f.Owner == "" || f.Owner == k.Owner) &&
		(f.Domain == "" || f.Domain == k.Domain) && (f.Zone == "" || f.Zone == z)
}

// sourceViews indexes the snapshot's sources by name.
func (s *Snapshot) sourceViews() map[string]SourceView {
	out := make(map[string]SourceView, len(s.Sources))
	for _, st := range s.Sources {
		v := SourceView{Name: st.Source.Name, Type: st.Source.Type}
		switch {
		case !st.Source.Enabled:
			v.Health = "disabled"
		case st.Status.Runs > 0 && !st.Status.Success:
			v.Health, v.LastError = "failing", st.Status.LastError
		case st.Status.Runs > 0 || !st.LastSuccess.IsZero():
			v.Health = "ok"
		default:
			v.Health = "not_run"
		}
		if !st.LastSuccess.IsZero() {
			t := st.LastSuccess
			v.LastSuccess = &t
		}
		out[st.Source.Name] = v
	}
	return out
}

func ptr(v float64) *float64 { return &v }

// view builds the view of one evaluated KPI. What belongs to the evaluation
// (the next milestone) is taken at the snapshot's time; now is the wall
// clock and gives only the value's age.
func (s *Snapshot) view(r kpi.Result, sources map[string]SourceView, now time.Time) KPIView {
	k := r.KPI
	v := KPIView{ID: k.ID, Name: k.Name, Description: k.Description, Domain: k.Domain, Dashboard: k.Dashboard,
		Owner: k.Owner, Unit: string(k.Unit), Direction: string(k.Direction), Stale: r.Stale, Zone: r.Zone,
		Trend: r.Trend, Reason: r.Reason, ValueText: "–", TargetText: "–"}
	if r.HasValue {
		v.Value, v.ValueText = ptr(r.Value), kpi.FormatValue(k.Unit, r.Value)
		t := r.ValueTime
		v.ValueTime, v.AgeSeconds = &t, ptr(now.Sub(t).Seconds())
	}
	if r.HasTarget {
		v.Target, v.TargetText = ptr(r.Target), kpi.FormatValue(k.Unit, r.Target)
	}
	if r.HasAttainment {
		v.Attainment = ptr(r.Attainment)
	}
	v.Forecast, v.ForecastReason = forecastView(k, r.Forecast), r.Forecast.Reason
	for _, m := range k.Targets {
		if m.Period.Start.After(s.Scorecard.At) {
			mv := milestoneView(k, m)
			v.NextMilestone = &mv
			break
		}
	}
	v.Source = sources[k.Source.Source]
	v.Source.Measurement = k.Source.String()
	return v
}

func milestoneView(k *kpi.KPI, m kpi.Milestone) MilestoneView {
	return MilestoneView{Period: m.Period.Label, Start: m.Period.Start, End: m.Period.End, Value: m.Value,
		ValueText: kpi.FormatValue(k.Unit, m.Value)}
}

// ScorecardView returns the snapshot's scorecard as views, filtered; the counts
// are of the filtered KPIs.
func (s *Snapshot) ScorecardView(f Filter, now time.Time) ScorecardView {
	sources := s.sourceViews()
	out := ScorecardView{At: s.Scorecard.At, Counts: map[kpi.Zone]int{}, KPIs: []KPIView{}}
	for _, z := range kpi.Zones {
		out.Counts[z] = 0
	}
	for _, r := range s.Scorecard.Results {
		if !f.match(r.KPI, r.Zone) {
			continue
		}
		out.Counts[r.Zone]++
		out.KPIs = append(out.KPIs, s.view(r, sources, now))
	}
	return out
}

// KPIDetail returns one KPI's view with its milestones and history.
func (s *Snapshot) KPIDetail(id string, history []kpi.Point, now time.Time) (KPIView, bool) {
	for _, r := range s.Scorecard.Results {
		if r.KPI.ID != id {
			continue
		}
		v := s.view(r, s.sourceViews(), now)
		v.Milestones = make([]MilestoneView, 0, len(r.KPI.Targets))
		for _, m := range r.KPI.Targets {
			v.Milestones = append(v.Milestones, milestoneView(r.KPI, m))
		}
		v.History = make([]PointView, 0, len(history))
		for _, p := range history {
			v.History = append(v.History, PointView{T: p.T, V: p.V})
		}
		return v, true
	}
	return KPIView{}, false
}

// facets lists the values the status page's filters offer.
func (s *Snapshot) facets() (dashboards, owners []string) {
	if s.Catalogue == nil {
		return nil, nil // the empty snapshot served until the first is published
	}
	seenD, seenO := map[string]bool{}, map[string]bool{}
	for _, k := range s.Catalogue.KPIs {
		if !seenD[k.Dashboard] {
			seenD[k.Dashboard] = true
			dashboards = append(dashboards, k.Dashboard)
		}
		if k.Owner != "" && !seenO[k.Owner] {
			seenO[k.Owner] = true
			owners = append(owners, k.Owner)
		}
	}
	sort.Strings(dashboards)
	sort.Strings(owners)
	return dashboards, owners
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiError is the body of every 4xx and 5xx reply of the API.
type apiError struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Field  string `json:"field,omitempty"`
}

func (e *Exporter) handleKPIs(w http.ResponseWriter, r *http.Request) {
	f := filterOf(r.URL.Query())
	if f.Zone != "" && !slices.Contains(kpi.Zones, f.Zone) {
		writeJSON(w, http.StatusBadRequest, apiError{Status: "error", Error: "zone must be green, yellow, red or unknown", Field: "zone"})
		return
	}
	writeJSON(w, http.StatusOK, e.snap.Load().ScorecardView(f, e.opts.Now()))
}

// kpiDetailJSON is one KPI's answer: milestones and history are always
// there, [] when empty, never left out.
type kpiDetailJSON struct {
	KPIView
	Milestones []MilestoneView `json:"milestones"`
	History    []PointView     `json:"history"`
}

func (e *Exporter) handleKPI(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, ok := e.snap.Load().KPIDetail(id, e.history(id), e.opts.Now())
	if !ok {
		writeJSON(w, http.StatusNotFound, apiError{Status: "error", Error: "no KPI with id " + strconv.Quote(id), Field: "id"})
		return
	}
	d := kpiDetailJSON{KPIView: v, Milestones: v.Milestones, History: v.History}
	if d.Milestones == nil {
		d.Milestones = []MilestoneView{}
	}
	if d.History == nil {
		d.History = []PointView{}
	}
	writeJSON(w, http.StatusOK, d)
}

func (e *Exporter) history(id string) []kpi.Point {
	if e.opts.History == nil {
		return nil
	}
	return e.opts.History(id)
}

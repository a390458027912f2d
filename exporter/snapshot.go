// Package exporter serves the evaluated scorecard: the Prometheus exposition
// on /metrics, the landing page, and the health, readiness and reload
// endpoints.
//
// A scrape reads an immutable snapshot through an atomic pointer and never
// waits on a collector; the snapshot's metric families are built once, when
// it is published, not on every scrape.
package exporter

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// SourceState is what the surfaces show of one declared source.
type SourceState struct {
	Source kpi.Source
	// Status is the scheduler's view; zero for a disabled source or one
	// that has not run since start.
	Status collectors.Status
	// LastSuccess is the time of the last good reading, also when it was
	// restored from the state directory.
	LastSuccess time.Time
}

// Snapshot is one immutable view of the daemon: the scorecard, the sources
// and their last readings, and the metric families made from them.
type Snapshot struct {
	Catalogue *kpi.Catalogue
	Scorecard kpi.Scorecard
	Sources   []SourceState
	Readings  map[string]kpi.Reading

	families []*dto.MetricFamily
	enc      encodings
}

// Families returns the snapshot's metric families, sorted by name.
func (s *Snapshot) Families() []*dto.MetricFamily { return s.families }

const cached = " Cached: refreshed when its source runs, on the source's interval; a scrape never waits for a source."

var (
	descValue = prometheus.NewDesc("kpi_value",
		"Latest value of the KPI in its base unit (see kpi_definition_info's unit); absent when unknown or older than the KPI's max age."+cached,
		[]string{"kpi", "domain"}, nil)
	descTarget = prometheus.NewDesc("kpi_target",
		"Target in force for the KPI now, in its base unit."+cached,
		[]string{"kpi", "domain"}, nil)
	descMilestone = prometheus.NewDesc("kpi_target_milestone",
		"Every target milestone of the KPI, by period (Q1-Q4 from the plan start, M1-M36 from the launch, or an ISO date).",
		[]string{"kpi", "domain", "period"}, nil)
	descAttainment = prometheus.NewDesc("kpi_attainment_ratio",
		"Attainment of the target in force: value/target for higher-is-better, target/value for lower-is-better, clamped to [0, 2]."+cached,
		[]string{"kpi", "domain"}, nil)
	descZone = prometheus.NewDesc("kpi_zone",
		"Zone of the KPI as a state set: exactly one of green, yellow, red and unknown is 1."+cached,
		[]string{"kpi", "domain", "kpi_zone"}, nil)
	descTrend = prometheus.NewDesc("kpi_trend",
		"Trend of the KPI over its trend window, direction-aware: 1 improving, -1 worsening, 0 flat or not enough history."+cached,
		[]string{"kpi", "domain"}, nil)
	descValueTime = prometheus.NewDesc("kpi_value_timestamp_seconds",
		"When the KPI's latest value was measured, as a Unix time.",
		[]string{"kpi", "domain"}, nil)
	descZoneSince = prometheus.NewDesc("kpi_zone_since_timestamp_seconds",
		"When the KPI entered its current zone (green, yellow or red), as a Unix time, estimated from its history; absent while unknown. The alert rules compare its age with kpi_alert_delay_seconds.",
		[]string{"kpi", "domain"}, nil)
	descAlertDelay = prometheus.NewDesc("kpi_alert_delay_seconds",
		"How long the KPI must stay in a zone before its zone alert fires (catalogue: alerts.red_for / alert_for, alerts.yellow_for / yellow_for), with the alert's severity; absent for KPIs with alerts: false. One rule file serves any catalogue through it.",
		[]string{"kpi", "domain", "kpi_zone", "severity"}, nil)
	descForecast = prometheus.NewDesc("kpi_forecast_value",
		"Projected value of the KPI at the end of the period of its target in force (kpi_forecast_timestamp_seconds), in its base unit: bound=\"\" the projection, bound=\"lower\"/\"upper\" its 80 % interval. Absent without a forecast (too little history, no fresh value, no target ahead)."+cached,
		[]string{"kpi", "domain", "bound"}, nil)
	descForecastTime = prometheus.NewDesc("kpi_forecast_timestamp_seconds",
		"The forecast's horizon: the end of the period of the KPI's target in force (with linear interpolation, of the segment), as a Unix time.",
		[]string{"kpi", "domain"}, nil)
	descForecastAttainment = prometheus.NewDesc("kpi_forecast_attainment_ratio",
		"Attainment of the projected value against the target in force at the horizon, clamped to [0, 2]."+cached,
		[]string{"kpi", "domain"}, nil)
	descForecastZone = prometheus.NewDesc("kpi_forecast_zone",
		"Zone of the projected value at the horizon as a state set: exactly one of green, yellow and red is 1. KpiOffTrack fires for a KPI green or yellow now and red here."+cached,
		[]string{"kpi", "domain", "kpi_zone"}, nil)
	descETA = prometheus.NewDesc("kpi_target_eta_timestamp_seconds",
		"When the projection reaches the green threshold of the target at the horizon, to stay green to the horizon, as a Unix time (the latest value's time when already there); absent when the forecast is not green at the horizon.",
		[]string{"kpi", "domain"}, nil)
	descInfo = prometheus.NewDesc("kpi_definition_info",
		"Definition of the KPI from the catalogue; always 1.",
		[]string{"kpi", "domain", "name", "unit", "direction", "owner", "dashboard", "source"}, nil)

	descEnabled = prometheus.NewDesc("kpi_collector_enabled",
		"Whether the source is enabled in the catalogue (1) or declared but disabled (0).",
		[]string{"collector", "type"}, nil)
	descSuccess = prometheus.NewDesc("kpi_collector_success",
		"Whether the source's last run succeeded; absent until it has run.",
		[]string{"collector"}, nil)
	descDuration = prometheus.NewDesc("kpi_collector_duration_seconds",
		"How long the source's last run took; absent until it has run.",
		[]string{"collector"}, nil)
	descLastSuccess = prometheus.NewDesc("kpi_collector_last_success_timestamp_seconds",
		"When the source last ran successfully, as a Unix time (kept across restarts).",
		[]string{"collector"}, nil)
	descInterval = prometheus.NewDesc("kpi_collector_interval_seconds",
		"The source's configured interval between runs.",
		[]string{"collector"}, nil)
	descRuns = prometheus.NewDesc("kpi_collector_runs_total",
		"Runs of the source since the daemon started.",
		[]string{"collector"}, nil)
	descErrors = prometheus.NewDesc("kpi_collector_errors_total",
		"Failed runs of the source since the daemon started.",
		[]string{"collector"}, nil)
)

// NewSnapshot evaluates nothing: it packages an evaluated scorecard with its
// sources and readings, and renders their metric families once.
func NewSnapshot(c *kpi.Catalogue, sc kpi.Scorecard, sources []SourceState, readings map[string]kpi.Reading) (*Snapshot, error) {
	s := &Snapshot{Catalogue: c, Scorecard: sc, Sources: sources, Readings: readings}
	reg := prometheus.NewRegistry()
	if err := reg.Register(snapshotCollector{s}); err != nil {
		return nil, err
	}
	fams, err := reg.Gather()
	s.families = fams
	if err != nil {
		return s, fmt.Errorf("rendering metrics: %w", err)
	}
	return s, nil
}

// snapshotCollector is an unchecked collector (it describes nothing), since
// the families of source measurements depend on what the sources report.
type snapshotCollector struct{ s *Snapshot }

func (snapshotCollector) Describe(chan<- *prometheus.Desc) {}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, lvs ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lvs...)
	}
	for _, r := range c.s.Scorecard.Results {
		k := r.KPI
		id, dom := k.ID, k.Domain
		gauge(descInfo, 1, id, dom, k.Name, string(k.Unit), string(k.Direction), k.Owner, k.Dashboard, k.Source.Source)
		for _, m := range k.Targets {
			gauge(descMilestone, m.Value, id, dom, m.Period.Label)
		}
		if r.HasTarget {
			gauge(descTarget, r.Target, id, dom)
		}
		if r.HasValue {
			gauge(descValueTime, float64(r.ValueTime.UnixMilli())/1e3, id, dom)
			if !r.Stale {
				gauge(descValue, r.Value, id, dom)
			}
		}
		if r.HasAttainment {
			gauge(descAttainment, r.Attainment, id, dom)
		}
		for _, z := range kpi.Zones {
			v := 0.0
			if r.Zone == z {
				v = 1
			}
			gauge(descZone, v, id, dom, string(z))
		}
		gauge(descTrend, float64(r.Trend), id, dom)
		if !r.ZoneSince.IsZero() {
			gauge(descZoneSince, float64(r.ZoneSince.UnixMilli())/1e3, id, dom)
		}
		if f := r.Forecast; f.OK {
			gauge(descForecast, f.Value, id, dom, "")
			gauge(descForecast, f.Lower, id, dom, "lower")
			gauge(descForecast, f.Upper, id, dom, "upper")
			gauge(descForecastTime, float64(f.Horizon.UnixMilli())/1e3, id, dom)
			gauge(descForecastAttainment, f.Attainment, id, dom)
			for _, z := range []kpi.Zone{kpi.Green, kpi.Yellow, kpi.Red} {
				v := 0.0
				if f.Zone == z {
					v = 1
				}
				gauge(descForecastZone, v, id, dom, string(z))
			}
			if !f.ETA.IsZero() {
				gauge(descETA, float64(f.ETA.UnixMilli())/1e3, id, dom)
			}
		}
		if !k.NoAlerts {
			sev := "warning"
			if k.Critical {
				sev = "critical"
			}
			gauge(descAlertDelay, k.AlertFor.Seconds(), id, dom, string(kpi.Red), sev)
			gauge(descAlertDelay, k.YellowFor.Seconds(), id, dom, string(kpi.Yellow), "warning")
		}
	}

	for _, st := range c.s.Sources {
		src := st.Source
		enabled := 0.0
		if src.Enabled {
			enabled = 1
		}
		gauge(descEnabled, enabled, src.Name, src.Type)
		if !src.Enabled {
			continue
		}
		gauge(descInterval, src.Interval.Seconds(), src.Name)
		ch <- prometheus.MustNewConstMetric(descRuns, prometheus.CounterValue, float64(st.Status.Runs), src.Name)
		ch <- prometheus.MustNewConstMetric(descErrors, prometheus.CounterValue, float64(st.Status.Errors), src.Name)
		if !st.LastSuccess.IsZero() {
			gauge(descLastSuccess, float64(st.LastSuccess.UnixMilli())/1e3, src.Name)
		}
		if st.Status.Runs > 0 {
			ok := 0.0
			if st.Status.Success {
				ok = 1
			}
			gauge(descSuccess, ok, src.Name)
			gauge(descDuration, st.Status.LastDuration.Seconds(), src.Name)
		}
	}
	c.measurements(ch)
}

// measurements exposes every source's own measurements as
// kpi_<type>_<measurement>{source, labels…}.
func (c snapshotCollector) measurements(ch chan<- prometheus.Metric) {
	types := map[string]string{}
	for _, st := range c.s.Sources {
		types[st.Source.Name] = st.Source.Type
	}
	names := make([]string, 0, len(c.s.Readings))
	for name := range c.s.Readings {
		names = append(names, name)
	}
	sort.Strings(names)
	descs := map[string]*prometheus.Desc{}
	for _, source := range names {
		typ, ok := types[source]
		if !ok {
			continue
		}
		for _, m := range c.s.Readings[source].Measurements {
			fam, vt := MeasurementFamily(typ, m)
			lnames := make([]string, 0, len(m.Labels)+1)
			lvals := make([]string, 0, len(m.Labels)+1)
			lnames, lvals = append(lnames, "source"), append(lvals, source)
			for _, l := range m.Labels {
				lnames, lvals = append(lnames, l.Name), append(lvals, l.Value)
			}
			key := fam + "\x00" + strings.Join(lnames, "\x00")
			d := descs[key]
			if d == nil {
				d = prometheus.NewDesc(fam, fmt.Sprintf("Measurement %s of %s sources.%s", m.Name, typ, cached), lnames, nil)
				descs[key] = d
			}
			ch <- prometheus.MustNewConstMetric(d, vt, m.Value, lvals...)
		}
	}
}

// MeasurementFamily names the metric family of a source measurement:
// kpi_<type>_<measurement>, with _total kept (or added) on counters.
func MeasurementFamily(typ string, m kpi.Measurement) (string, prometheus.ValueType) {
	name := "kpi_" + typ + "_" + m.Name
	if m.Kind == kpi.Counter {
		if !strings.HasSuffix(name, "_total") {
			name += "_total"
		}
		return name, prometheus.CounterValue
	}
	return name, prometheus.GaugeValue
}

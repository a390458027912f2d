package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/bakhmach-hub/kpi_exporter/collectors/push"
	"github.com/bakhmach-hub/kpi_exporter/exporter"
	"github.com/bakhmach-hub/kpi_exporter/internal/testclock"
	"github.com/bakhmach-hub/kpi_exporter/store"
)

const pushCatalogue = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: manual, type: file, interval: 1h, settings: {path: values.yaml}}
  - {name: survey, type: push, interval: 24h, settings: {measurements: [responses]}}
  - {name: hr, type: push, interval: 24h}
  - {name: old, type: push, enabled: false}
kpis:
  - {id: nps, name: NPS, domain: workflow, dashboard: product, unit: score, direction: higher,
     source: {name: manual, measurement: nps}, targets: [{period: Q1, value: 50}]}
  - {id: dev_sat, name: Developer Satisfaction, domain: workflow, dashboard: technical, unit: score, direction: higher,
     source: {name: survey, measurement: satisfaction, labels: {team: all}}, targets: [{period: Q1, value: 8}]}
  - {id: headcount, name: Headcount, domain: workflow, dashboard: financial, unit: count, direction: higher,
     source: {name: hr, measurement: headcount}, targets: [{period: Q1, value: 10}]}
  - {id: papers, name: Papers, domain: research, dashboard: executive, unit: count, direction: higher,
     source: {name: old, measurement: papers}, targets: [{period: Q1, value: 2}]}
`

func push(t *testing.T, f *fixture, values ...exporter.PushValue) error {
	t.Helper()
	for i := range values {
		values[i].Index = i
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.app.Push(ctx, values)
}

func rejection(t *testing.T, err error) *exporter.PushError {
	t.Helper()
	var pe *exporter.PushError
	if !errors.As(err, &pe) {
		t.Fatalf("want a *PushError, got %v", err)
	}
	return pe
}

func TestPushRejections(t *testing.T) {
	f := start(t, pushCatalogue)
	now := testclock.Now()
	tests := []struct {
		name          string
		values        []exporter.PushValue
		status        int
		reason, field string
		msg           string
	}{
		{"unknown KPI", []exporter.PushValue{{KPI: "nope", Value: 1}}, 422, exporter.ReasonUnknownKPI, "values[0].kpi", `no KPI with id "nope"`},
		{"KPI of a polled source", []exporter.PushValue{{KPI: "nps", Value: 1}}, 422, exporter.ReasonPolledSource, "values[0].kpi", `source "manual", which is polled`},
		{"KPI of a disabled push source", []exporter.PushValue{{KPI: "papers", Value: 1}}, 422, exporter.ReasonPolledSource, "values[0].kpi", `"old"`},
		{"labels with a KPI", []exporter.PushValue{{KPI: "headcount", Value: 1, Labels: map[string]string{"a": "b"}}}, 400, exporter.ReasonMalformed, "values[0].labels", "binding"},
		{"unknown measurement", []exporter.PushValue{{Measurement: "nope", Value: 1}}, 422, exporter.ReasonUnknownMeasurement, "values[0].measurement", `no push source accepts measurement "nope"`},
		{"unknown source", []exporter.PushValue{{Measurement: "ghost/x", Value: 1}}, 422, exporter.ReasonUnknownMeasurement, "values[0].measurement", `no source "ghost"`},
		{"measurement of a polled source", []exporter.PushValue{{Measurement: "manual/nps", Value: 1}}, 422, exporter.ReasonPolledSource, "values[0].measurement", `"manual" is polled`},
		{"measurement the source does not accept", []exporter.PushValue{{Measurement: "survey/nps", Value: 1}}, 422, exporter.ReasonUnknownMeasurement, "values[0].measurement", "accepted: responses, satisfaction"},
		{"bad label name", []exporter.PushValue{{Measurement: "responses", Value: 1, Labels: map[string]string{"source": "x"}}}, 400, exporter.ReasonMalformed, "values[0].labels.source", "label name"},
		{"same series twice without timestamps", []exporter.PushValue{{KPI: "headcount", Value: 1}, {Measurement: "hr/headcount", Value: 2}}, 400, exporter.ReasonMalformed, "values[1]", "without a timestamp"},
		{"same series twice at once", []exporter.PushValue{{KPI: "headcount", Value: 1, Timestamp: now}, {KPI: "headcount", Value: 2, Timestamp: now}}, 422, exporter.ReasonTimestamp, "values[1].timestamp", "not after"},
	}
	for _, tt := range tests {
		pe := rejection(t, push(t, f, tt.values...))
		if pe.Status != tt.status || pe.Reason != tt.reason || pe.Field != tt.field || !strings.Contains(pe.Msg, tt.msg) {
			t.Errorf("%s: %d %s %s %q; want %d %s %s containing %q", tt.name, pe.Status, pe.Reason, pe.Field, pe.Msg, tt.status, tt.reason, tt.field, tt.msg)
		}
	}
	if r := f.result("headcount"); r.HasValue {
		t.Errorf("a rejected push left a value: %+v", r)
	}
}

func TestPushAppliesAndPersistsBeforeReplying(t *testing.T) {
	f := start(t, pushCatalogue)
	day := testclock.Now().Add(-24 * time.Hour).Truncate(time.Second)
	// Out of order within the batch: applied oldest first.
	if err := push(t, f,
		exporter.PushValue{KPI: "headcount", Value: 12, Timestamp: day.Add(2 * time.Hour)},
		exporter.PushValue{KPI: "headcount", Value: 11, Timestamp: day},
		exporter.PushValue{Measurement: "survey/satisfaction", Labels: map[string]string{"team": "all"}, Value: 7.5},
		exporter.PushValue{Measurement: "responses", Value: 40},
	); err != nil {
		t.Fatal(err)
	}
	// On disk the moment Push returned, not at the next periodic save.
	st, err := store.Load(filepath.Join(f.dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	in := st.Inputs()
	h := in.History["headcount"]
	if len(h) != 2 || h[0].V != 11 || h[1].V != 12 || !h[1].T.Equal(day.Add(2*time.Hour)) {
		t.Errorf("headcount history on disk: %+v", h)
	}
	var got []string
	for _, m := range in.Readings["survey"].Measurements {
		got = append(got, m.Name+m.Labels.String())
	}
	if strings.Join(got, " ") != `responses{} satisfaction{team="all"}` {
		t.Errorf("survey reading on disk: %v", got)
	}
	if r := f.result("headcount"); !r.HasValue || r.Value != 12 || !r.ValueTime.Equal(day.Add(2*time.Hour)) {
		t.Errorf("headcount after push: %+v", r)
	}
	if r := f.result("dev_sat"); !r.HasValue || r.Value != 7.5 || r.Zone != "green" { // 7.5/8 = 93.75 %
		t.Errorf("dev_sat after push: %+v", r)
	}

	// Older than the KPI's history: rejected, and with it the whole batch.
	pe := rejection(t, push(t, f,
		exporter.PushValue{Measurement: "responses", Value: 41},
		exporter.PushValue{KPI: "headcount", Value: 9, Timestamp: day.Add(time.Hour)},
	))
	if pe.Reason != exporter.ReasonTimestamp || pe.Field != "values[1].timestamp" || !strings.Contains(pe.Msg, "older than KPI \"headcount\"'s history") &&
		!strings.Contains(pe.Msg, "not after the series' latest value") {
		t.Errorf("old timestamp: %+v", pe)
	}
	time.Sleep(60 * time.Millisecond) // two periodic save intervals
	if st, err = store.Load(filepath.Join(f.dir, "state")); err != nil {
		t.Fatal(err)
	}
	in = st.Inputs()
	if h := in.History["headcount"]; len(h) != 2 || h[1].V != 12 {
		t.Errorf("a rejected batch changed the history: %+v", h)
	}
	for _, m := range in.Readings["survey"].Measurements {
		if m.Name == "responses" && m.Value != 40 {
			t.Errorf("a rejected batch applied responses=%v", m.Value)
		}
	}
}

func TestPushSeriesBound(t *testing.T) {
	f := start(t, pushCatalogue)
	values := make([]exporter.PushValue, MaxPushSeries+1)
	for i := range values {
		values[i] = exporter.PushValue{Measurement: "responses", Value: 1, Labels: map[string]string{"form": fmt.Sprintf("f%d", i)}}
	}
	pe := rejection(t, push(t, f, values...))
	if pe.Reason != exporter.ReasonTooManySeries {
		t.Errorf("%d new series: %+v", len(values), pe)
	}
}

// TestPushNowReplaces sends values without timestamps in quick succession:
// each replaces the last, even within one clock reading.
func TestPushNowReplaces(t *testing.T) {
	f := start(t, pushCatalogue)
	for i := 1; i <= 20; i++ {
		if err := push(t, f, exporter.PushValue{KPI: "headcount", Value: float64(i)}); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if r := f.result("headcount"); !r.HasValue || r.Value != 20 {
		t.Errorf("headcount after 20 pushes: %+v", r)
	}
}

// A KPI that sums several series records its own value each time it
// changes, at the time of its newest input. It used to freeze at the first
// point, since its value time is its oldest series' time, and pushes by KPI
// id recorded the raw pushed number.
func TestAggregateKPIHistoryFollowsItsValue(t *testing.T) {
	const cat = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: sales, type: push, interval: 24h}
kpis:
  - {id: deals, name: Deals, domain: growth, dashboard: financial, unit: count, direction: higher,
     source: {name: sales, measurement: deals, aggregate: sum}, targets: [{period: Q1, value: 100}]}
`
	f := start(t, cat)
	t0 := testclock.Now().Add(-10 * time.Hour).Truncate(time.Second)
	if err := push(t, f,
		exporter.PushValue{Measurement: "deals", Labels: map[string]string{"team": "a"}, Value: 10, Timestamp: t0},
		exporter.PushValue{Measurement: "deals", Labels: map[string]string{"team": "b"}, Value: 20, Timestamp: t0.Add(2 * time.Hour)},
	); err != nil {
		t.Fatal(err)
	}
	// Only team b moves: the oldest input stays at t0. (Points are hours
	// apart, since the store keeps one point per hour.)
	if err := push(t, f, exporter.PushValue{Measurement: "deals", Labels: map[string]string{"team": "b"}, Value: 220, Timestamp: t0.Add(4 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// By KPI id: the unlabelled series joins the sum.
	if err := push(t, f, exporter.PushValue{KPI: "deals", Value: 5, Timestamp: t0.Add(6 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f.waitValue(t, "deals", 235)
	// The periodic evaluation records too; it must agree.
	time.Sleep(60 * time.Millisecond)
	got := f.app.cfg.Store.History("deals")
	want := []struct {
		at time.Duration
		v  float64
	}{{0, 10}, {2 * time.Hour, 30}, {4 * time.Hour, 230}, {6 * time.Hour, 235}}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = got[i].T.Equal(t0.Add(want[i].at)) && got[i].V == want[i].v
	}
	if !ok {
		t.Errorf("history %+v, want %+v from %s", got, want, t0)
	}
	r := f.result("deals")
	if !r.ValueTime.Equal(t0) || !r.InputTime.Equal(t0.Add(6*time.Hour)) {
		t.Errorf("value time %s (want the oldest input %s), input time %s", r.ValueTime, t0, r.InputTime)
	}
}

// One request may carry a value without a timestamp ("now") and backfill
// values of the same series, in any order: they apply in time order, so
// the untimestamped one is the current value. (It was refused when it came
// first in the body.)
func TestPushNowAndBackfillInOneRequest(t *testing.T) {
	f := start(t, pushCatalogue)
	day := testclock.Now().Add(-48 * time.Hour).Truncate(time.Second)
	if err := push(t, f,
		exporter.PushValue{KPI: "headcount", Value: 14},
		exporter.PushValue{KPI: "headcount", Value: 11, Timestamp: day},
		exporter.PushValue{KPI: "headcount", Value: 12, Timestamp: day.Add(24 * time.Hour)},
	); err != nil {
		t.Fatalf("refused: %v", err)
	}
	f.waitValue(t, "headcount", 14)
	h := f.app.cfg.Store.History("headcount")
	if len(h) != 3 || h[0].V != 11 || h[1].V != 12 || h[2].V != 14 {
		t.Errorf("history %+v", h)
	}
}

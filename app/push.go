package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/exporter"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// MaxPushSeries bounds the series one push source keeps, so that pushed
// label values cannot grow the exposition without end.
const MaxPushSeries = 1000

// MaxPushBatch bounds how many waiting push requests share one state write.
const MaxPushBatch = 64

type pushRequest struct {
	values []exporter.PushValue
	reply  chan error
}

// Push applies the values of one push request, all or nothing, and returns
// once they are persisted in the state directory. A rejection is an
// *exporter.PushError.
func (a *App) Push(ctx context.Context, values []exporter.PushValue) error {
	req := pushRequest{values: values, reply: make(chan error, 1)}
	select {
	case a.pushes <- req:
	case <-a.stopping:
		return &exporter.PushError{Status: http.StatusServiceUnavailable, Reason: exporter.ReasonUnavailable, Msg: "the daemon is shutting down"}
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pushBatch applies the request and those waiting behind it, writes the
// state once for all of them, and then answers each: a client hears of
// success only once its values are on disk.
func (a *App) pushBatch(first pushRequest) {
	batch := []pushRequest{first}
	for len(batch) < MaxPushBatch {
		select {
		case r := <-a.pushes:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	var accepted []pushRequest
	ran := false
	// With PostgreSQL the batch is checked against the shared state as the
	// database has it (every replica's pushes) and committed before any
	// answer; with a file, the state file is written before any answer.
	err := a.cfg.Store.Transact(func() {
		ran = true
		for _, r := range batch {
			if err := a.applyPush(r.values, a.cfg.Now()); err != nil {
				r.reply <- err
				continue
			}
			accepted = append(accepted, r)
		}
	})
	a.noteDatabase()
	var saveErr error
	if err != nil {
		a.log.Error("persisting pushed values failed", zap.Error(err))
		msg := "the values could not be persisted: " + err.Error()
		if a.cfg.Store.Postgres() {
			msg = "the values could not be committed to the state database (nothing of them was kept): " + err.Error()
		} else {
			a.log.Info("pushed values are kept in memory and saved again later")
		}
		saveErr = &exporter.PushError{Status: http.StatusServiceUnavailable, Reason: exporter.ReasonUnavailable, Msg: msg}
	}
	if !ran {
		accepted = batch
	}
	if len(accepted) == 0 {
		return
	}
	a.publish(a.cfg.Now())
	for _, r := range accepted {
		r.reply <- saveErr
	}
}

// seriesKey identifies a measurement series within a source.
func seriesKey(name string, labels kpi.Labels) string { return name + labels.String() }

// applyPush checks every value against the catalogue and, only when all
// pass, stores them: the new readings of the push sources and, for values
// given by KPI, the points of the KPIs' histories.
func (a *App) applyPush(values []exporter.PushValue, now time.Time) error {
	c := a.loaded.Catalogue
	reject := func(v exporter.PushValue, field string, status int, reason, format string, args ...any) error {
		return &exporter.PushError{Status: status, Reason: reason, Field: fmt.Sprintf("values[%d]%s", v.Index, field), Msg: fmt.Sprintf(format, args...)}
	}
	// Oldest first, so that a batch may carry a series' values in any order;
	// a value without a timestamp is "now", so it comes after every
	// backfilled one, whatever its place in the body.
	ordered := slices.Clone(values)
	at := func(v exporter.PushValue) time.Time {
		if v.Timestamp.IsZero() {
			return now
		}
		return v.Timestamp
	}
	sort.SliceStable(ordered, func(i, j int) bool { return at(ordered[i]).Before(at(ordered[j])) })

	inputs := a.cfg.Store.Inputs()
	working := map[string]map[string]kpi.Measurement{} // source → series → measurement
	series := func(src string) map[string]kpi.Measurement {
		if m, ok := working[src]; ok {
			return m
		}
		m := map[string]kpi.Measurement{}
		r := inputs.Readings[src]
		for _, x := range r.Measurements {
			if x.Time.IsZero() {
				x.Time = r.At
			}
			m[seriesKey(x.Name, x.Labels)] = x
		}
		working[src] = m
		return m
	}
	type record struct {
		id string
		p  kpi.Point
	}
	var records []record
	bound := map[string][]*kpi.KPI{} // "source/measurement" → the push KPIs bound to it
	for i := range c.KPIs {
		k := &c.KPIs[i]
		if _, ok := a.loaded.Passive[k.Source.Source]; ok {
			key := k.Source.Source + "/" + k.Source.Measurement
			bound[key] = append(bound[key], k)
		}
	}
	lastPoint := map[string]time.Time{}
	implicit := map[string]bool{} // series given a value without a timestamp

	for _, v := range ordered {
		t := v.Timestamp
		if t.IsZero() {
			t = now
		}
		var src, name string
		var labels kpi.Labels
		var k *kpi.KPI
		switch {
		case v.KPI != "":
			for i := range c.KPIs {
				if c.KPIs[i].ID == v.KPI {
					k = &c.KPIs[i]
				}
			}
			if k == nil {
				return reject(v, ".kpi", http.StatusUnprocessableEntity, exporter.ReasonUnknownKPI, "no KPI with id %q in the catalogue", v.KPI)
			}
			if len(v.Labels) > 0 {
				return reject(v, ".labels", http.StatusBadRequest, exporter.ReasonMalformed, "labels go with a measurement; a KPI's labels come from its binding")
			}
			src, name, labels = k.Source.Source, k.Source.Measurement, kpi.LabelsFromMap(k.Source.Labels)
			if _, ok := a.loaded.Passive[src]; !ok {
				return reject(v, ".kpi", http.StatusUnprocessableEntity, exporter.ReasonPolledSource,
					"KPI %q is bound to source %q, which is polled (or disabled); only KPIs of an enabled push source accept values", v.KPI, src)
			}
		default:
			var err error
			if src, name, err = a.pushTarget(v.Measurement); err != nil {
				var pe *exporter.PushError
				errors.As(err, &pe)
				pe.Field = fmt.Sprintf("values[%d].measurement", v.Index)
				return pe
			}
			for n := range v.Labels {
				if !kpi.MeasurementName.MatchString(n) || kpi.ReservedLabel(n) {
					return reject(v, ".labels."+n, http.StatusBadRequest, exporter.ReasonMalformed,
						"not a usable label name ([a-z_][a-z0-9_]*, not one the exporter sets: source, kpi, domain, job, instance, collector, __…)")
				}
			}
			labels = kpi.LabelsFromMap(v.Labels)
		}

		m := series(src)
		key := seriesKey(src+"/"+name, labels)
		old, exists := m[seriesKey(name, labels)]
		var last time.Time
		if k != nil {
			var seen bool
			if last, seen = lastPoint[k.ID]; !seen {
				if h := a.cfg.Store.History(k.ID); len(h) > 0 {
					last = h[len(h)-1].T
				}
			}
		}
		if v.Timestamp.IsZero() {
			// "Now" replaces the current value even when the clock has not
			// moved past it (requests in the same instant, a clock step back).
			if implicit[key] {
				return reject(v, "", http.StatusBadRequest, exporter.ReasonMalformed,
					"the request already holds a value for this series without a timestamp; give timestamps to send several")
			}
			implicit[key] = true
			for _, floor := range []time.Time{old.Time, last} {
				if !t.After(floor) {
					t = floor.Add(time.Microsecond)
				}
			}
		}
		if exists && !t.After(old.Time) {
			return reject(v, ".timestamp", http.StatusUnprocessableEntity, exporter.ReasonTimestamp,
				"%s is not after the series' latest value at %s", t.UTC().Format(time.RFC3339Nano), old.Time.UTC().Format(time.RFC3339Nano))
		}
		if k != nil {
			if !last.IsZero() && !t.After(last) {
				return reject(v, ".timestamp", http.StatusUnprocessableEntity, exporter.ReasonTimestamp,
					"%s is older than KPI %q's history, which ends at %s", t.UTC().Format(time.RFC3339Nano), k.ID, last.UTC().Format(time.RFC3339Nano))
			}
			lastPoint[k.ID] = t
		}
		if !exists && len(m) >= MaxPushSeries {
			return reject(v, "", http.StatusUnprocessableEntity, exporter.ReasonTooManySeries,
				"source %q already holds %d series, the most a push source keeps", src, MaxPushSeries)
		}
		m[seriesKey(name, labels)] = kpi.Measurement{Name: name, Labels: labels, Value: v.Value, Time: t}
		// Every KPI this series feeds gets a history point with the KPI's
		// value as it stands after this value (an aggregate's, not the raw
		// pushed number), at the time of its newest input; a batch of
		// backfill values thus leaves one point each.
		for _, bk := range bound[src+"/"+name] {
			if !labels.Matches(bk.Source.Labels) {
				continue
			}
			named := kpi.Reading{At: t}
			for _, x := range m {
				if x.Name == name {
					named.Measurements = append(named.Measurements, x)
				}
			}
			if kv, kt, ok := kpi.ResolveNewest(map[string]kpi.Reading{src: named}, bk.Source); ok {
				records = append(records, record{bk.ID, kpi.Point{T: kt, V: kv}})
			}
		}
	}

	for src, m := range working {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		r := kpi.Reading{At: now, Measurements: make([]kpi.Measurement, 0, len(m))}
		for _, k := range keys {
			r.Measurements = append(r.Measurements, m[k])
		}
		a.cfg.Store.SetReading(src, r)
	}
	for _, r := range records {
		a.cfg.Store.Record(r.id, r.p)
	}
	return nil
}

// pushTarget resolves a measurement of a push request, "source/name" or a
// bare "name" that exactly one push source accepts.
func (a *App) pushTarget(ref string) (src, name string, err error) {
	c := a.loaded.Catalogue
	unknown := func(format string, args ...any) error {
		return &exporter.PushError{Status: http.StatusUnprocessableEntity, Reason: exporter.ReasonUnknownMeasurement, Msg: fmt.Sprintf(format, args...)}
	}
	if s, n, ok := strings.Cut(ref, "/"); ok {
		if _, declared := c.Source(s); !declared {
			return "", "", unknown("no source %q in the catalogue", s)
		}
		if _, push := a.loaded.Passive[s]; !push {
			return "", "", &exporter.PushError{Status: http.StatusUnprocessableEntity, Reason: exporter.ReasonPolledSource,
				Msg: fmt.Sprintf("source %q is polled (or disabled); only enabled push sources accept values", s)}
		}
		if !slices.Contains(a.accepts(s), n) {
			return "", "", unknown("push source %q does not accept measurement %q (accepted: %s)", s, n, strings.Join(a.accepts(s), ", "))
		}
		return s, n, nil
	}
	var found []string
	for s := range a.loaded.Passive {
		if slices.Contains(a.accepts(s), ref) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return "", "", unknown("no push source accepts measurement %q", ref)
	case 1:
		return found[0], ref, nil
	}
	sort.Strings(found)
	return "", "", unknown("push sources %s all accept %q; name one as source/measurement", strings.Join(found, ", "), ref)
}

// accepts lists the measurements a push source accepts: those its KPIs are
// bound to and those its settings declare.
func (a *App) accepts(src string) []string {
	var out []string
	for _, k := range a.loaded.Catalogue.KPIs {
		if k.Source.Source == src && !slices.Contains(out, k.Source.Measurement) {
			out = append(out, k.Source.Measurement)
		}
	}
	if p, ok := a.loaded.Passive[src]; ok {
		for _, m := range p.Measurements() {
			if !slices.Contains(out, m) {
				out = append(out, m)
			}
		}
	}
	sort.Strings(out)
	return out
}

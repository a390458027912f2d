package exporter

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// benchSnapshot builds the scrape benchmark's scale: 1,000 KPIs over 10
// sources that report 10,000 series between them.
func benchSnapshot(b *testing.B) *Snapshot {
	b.Helper()
	var y strings.Builder
	y.WriteString("calendar: {plan_start: 2026-01-01, launch: 2026-01-01}\nsources:\n")
	for s := 0; s < 10; s++ {
		fmt.Fprintf(&y, "  - {name: src%d, type: file, interval: 5m}\n", s)
	}
	y.WriteString("kpis:\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&y, "  - id: kpi_%d\n    name: KPI %d\n    domain: domain_%d\n    dashboard: technical\n    owner: team_%d\n"+
			"    unit: ratio\n    direction: higher\n    source: {name: src%d, measurement: m_%d, labels: {repo: repo_0}}\n"+
			"    targets: [{period: Q1, value: 0.6}, {period: Q2, value: 0.75}, {period: Q4, value: 0.9}]\n",
			i, i, i%10, i%7, i%10, i/10)
	}
	c, err := kpi.Parse("bench.yml", []byte(y.String()), kpi.ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	readings := map[string]kpi.Reading{}
	for s := 0; s < 10; s++ {
		ms := make([]kpi.Measurement, 0, 1000)
		for m := 0; m < 100; m++ {
			for r := 0; r < 10; r++ {
				ms = append(ms, kpi.Measurement{Name: "m_" + strconv.Itoa(s*10+m%10+(m/10)*100),
					Labels: kpi.Labels{{Name: "repo", Value: "repo_" + strconv.Itoa(r)}}, Value: float64(m*r) / 1000})
			}
		}
		readings["src"+strconv.Itoa(s)] = kpi.Reading{At: now.Add(-time.Minute), Measurements: ms}
	}
	history := map[string][]kpi.Point{}
	for _, k := range c.KPIs {
		h := make([]kpi.Point, 336)
		for i := range h {
			h[i] = kpi.Point{T: now.Add(-time.Duration(336-i) * time.Hour), V: 0.5 + float64(i)/1000}
		}
		history[k.ID] = h
	}
	sc := kpi.Evaluate(c, kpi.Inputs{Readings: readings, History: history}, now)
	var sources []SourceState
	for _, src := range c.Sources {
		sources = append(sources, SourceState{Source: src, LastSuccess: now, Status: collectors.Status{Name: src.Name, Runs: 1, Success: true}})
	}
	s, err := NewSnapshot(c, sc, sources, readings)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkScrape serves /metrics from a published snapshot of 1,000 KPIs
// and 10,000 source series, as Prometheus asks for it.
func BenchmarkScrape(b *testing.B) {
	e := New(Options{})
	e.Publish(benchSnapshot(b))
	h := e.Handler()
	for _, bc := range []struct{ name, accept, encoding string }{
		{"text", "text/plain;version=0.0.4", ""},
		{"openmetrics", "application/openmetrics-text;version=1.0.0", ""},
		{"text-gzip", "text/plain;version=0.0.4", "gzip"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", bc.accept)
			if bc.encoding != "" {
				req.Header.Set("Accept-Encoding", bc.encoding)
			}
			w := &countingWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.n, w.code = 0, http.StatusOK
				clear(w.header)
				h.ServeHTTP(w, req)
				if w.code != http.StatusOK {
					b.Fatalf("status %d", w.code)
				}
			}
			b.ReportMetric(float64(w.n), "bytes/scrape")
		})
	}
}

// BenchmarkRender is the work done once per source run (not per scrape):
// evaluating 1,000 KPIs and rendering the snapshot's families.
func BenchmarkRender(b *testing.B) {
	s := benchSnapshot(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewSnapshot(s.Catalogue, s.Scorecard, s.Sources, s.Readings); err != nil {
			b.Fatal(err)
		}
	}
}

// countingWriter is a ResponseWriter that keeps nothing but the size, so
// the benchmark measures the handler, not a recorder's buffer growth.
type countingWriter struct {
	header http.Header
	code   int
	n      int
}

func (w *countingWriter) Header() http.Header         { return w.header }
func (w *countingWriter) WriteHeader(code int)        { w.code = code }
func (w *countingWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

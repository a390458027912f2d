package exporter

import (
	"context"
	"encoding/json"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/version"

	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Options configures an Exporter. The zero value works.
type Options struct {
	// Reload, when set, is called by POST /-/reload.
	Reload func(context.Context) error
	// History, when set, returns a KPI's stored history (oldest first) for
	// its detail page and API.
	History func(id string) []kpi.Point
	// PushTokens are the bearer tokens the push API accepts; without any
	// the push API is disabled (404).
	PushTokens []string
	// Push applies the values of an accepted push request; an error that is
	// a *PushError is the rejection returned to the client.
	Push func(context.Context, []PushValue) error
	// ErrorLog receives errors of the metrics handler.
	ErrorLog promhttp.Logger
	// Now is the wall clock, used only for ages (how old a value is) and
	// for the arrival time of pushed values; everything about an evaluation
	// uses the snapshot's own time. Nil means time.Now.
	Now func() time.Time
}

// Exporter serves the latest published snapshot.
type Exporter struct {
	opts  Options
	snap  atomic.Pointer[Snapshot]
	ready atomic.Bool
	// published is set by the first Publish: until then the state and the
	// catalogue are loading, and the scorecard surfaces answer 503 rather
	// than an empty scorecard that would read as "no KPIs".
	published atomic.Bool

	// reg holds what is live rather than cached: the Go and process
	// collectors, build info and the catalogue reload gauges.
	reg              *prometheus.Registry
	reloadOK         prometheus.Gauge
	reloadOKTime     prometheus.Gauge
	snapshotDuration prometheus.Gauge
	orphaned         *prometheus.GaugeVec
	pushMetrics      *pushMetrics
	haOnce           sync.Once
	ha               *haMetrics
	notReady         atomic.Pointer[string]
}

// New returns an exporter serving an empty snapshot until one is published.
func New(opts Options) *Exporter {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Exporter{opts: opts, reg: prometheus.NewRegistry()}
	e.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kpi_config_last_reload_successful",
		Help: "Whether the last attempt to load the KPI catalogue succeeded (1) or failed (0, the previous catalogue stays in use).",
	})
	e.reloadOKTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kpi_config_last_reload_success_timestamp_seconds",
		Help: "When the KPI catalogue was last loaded successfully, as a Unix time.",
	})
	e.snapshotDuration = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kpi_exporter_snapshot_render_seconds",
		Help: "How long rendering the last scorecard snapshot into metric families took (work done per source run, not per scrape).",
	})
	e.orphaned = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "kpi_state_orphaned",
		Help: "Entries of the state kept for sources (kind=source) and KPIs (kind=kpi) that are no longer in the catalogue; dropped after the orphan retention.",
	}, []string{"kind"})
	e.orphaned.WithLabelValues("source")
	e.orphaned.WithLabelValues("kpi")
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "kpi_exporter_build_info",
		Help:        "Build information of kpi_exporter; always 1.",
		ConstLabels: prometheus.Labels{"version": version.Version, "revision": version.GetRevision(), "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	e.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo, e.reloadOK, e.reloadOKTime, e.snapshotDuration, e.orphaned,
	)
	if len(opts.PushTokens) > 0 {
		e.pushMetrics = newPushMetrics(e.reg)
	}
	e.snap.Store(&Snapshot{})
	return e
}

// Publish makes a snapshot the one that scrapes and pages read.
func (e *Exporter) Publish(s *Snapshot) {
	e.snap.Store(s)
	e.published.Store(true)
}

// Snapshot returns the snapshot in use.
func (e *Exporter) Snapshot() *Snapshot { return e.snap.Load() }

// SetReady marks the daemon ready (state loaded, first snapshot published).
func (e *Exporter) SetReady() {
	e.notReady.Store(nil)
	e.ready.Store(true)
}

// SetOrphaned exports how many orphaned state entries are kept.
func (e *Exporter) SetOrphaned(sources, kpis int) {
	e.orphaned.WithLabelValues("source").Set(float64(sources))
	e.orphaned.WithLabelValues("kpi").Set(float64(kpis))
}

// SetReloadResult records the outcome of loading the catalogue.
func (e *Exporter) SetReloadResult(ok bool, at time.Time) {
	if ok {
		e.reloadOK.Set(1)
		e.reloadOKTime.Set(float64(at.UnixMilli()) / 1e3)
	} else {
		e.reloadOK.Set(0)
	}
}

// ObserveRender records how long rendering a snapshot took.
func (e *Exporter) ObserveRender(d time.Duration) { e.snapshotDuration.Set(d.Seconds()) }

// Gather returns the live families and the snapshot's pre-rendered ones,
// merged in name order. It takes no lock a collector could hold.
func (e *Exporter) Gather() ([]*dto.MetricFamily, error) {
	live, err := e.reg.Gather()
	cached := e.snap.Load().families
	out := make([]*dto.MetricFamily, 0, len(live)+len(cached))
	i, j := 0, 0
	for i < len(live) && j < len(cached) {
		if live[i].GetName() < cached[j].GetName() {
			out = append(out, live[i])
			i++
		} else {
			out = append(out, cached[j])
			j++
		}
	}
	out = append(out, live[i:]...)
	out = append(out, cached[j:]...)
	return out, err
}

// Handler returns the daemon's HTTP routes.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	metrics := promhttp.HandlerFor(prometheus.GathererFunc(e.Gather), promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorHandling:     promhttp.ContinueOnError,
		ErrorLog:          e.opts.ErrorLog,
		Registry:          e.reg,
	})
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(e.reg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !e.loaded(w) {
			return
		}
		if !e.serveCached(w, r) {
			metrics.ServeHTTP(w, r)
		}
	})))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("Healthy.\n"))
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !e.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			reason := "loading state"
			if r := e.notReady.Load(); r != nil {
				reason = *r
			}
			w.Write([]byte("Not ready: " + redact.String(reason) + ".\n"))
			return
		}
		w.Write([]byte("Ready.\n"))
	})
	mux.HandleFunc("POST /-/reload", e.handleReload)
	mux.HandleFunc("GET /{$}", e.whenLoaded(e.handleStatus))
	mux.HandleFunc("GET /kpi/{id}", e.whenLoaded(e.handleKPIPage))
	mux.HandleFunc("GET /api/v1/kpis", e.whenLoaded(e.handleKPIs))
	mux.HandleFunc("GET /api/v1/kpis/{id}", e.whenLoaded(e.handleKPI))
	if e.pushMetrics != nil {
		mux.HandleFunc("POST /api/v1/values", e.handlePush)
	}
	return mux
}

// loaded answers 503 and reports false until the first snapshot is
// published.
func (e *Exporter) loaded(w http.ResponseWriter) bool {
	if e.published.Load() {
		return true
	}
	w.Header().Set("Retry-After", "5")
	http.Error(w, "kpi_exporter is loading its state and catalogue; try again shortly.", http.StatusServiceUnavailable)
	return false
}

func (e *Exporter) whenLoaded(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if e.loaded(w) {
			h(w, r)
		}
	}
}

func (e *Exporter) handleReload(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if e.opts.Reload == nil {
		w.WriteHeader(http.StatusNotImplemented)
		json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": "reload is not available"})
		return
	}
	if err := e.opts.Reload(r.Context()); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": err.Error()})
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"status": "success"})
}

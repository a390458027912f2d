package exporter

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// HAStatus is a replica's part in a PostgreSQL-backed group of replicas.
type HAStatus struct {
	// DatabaseUp: the state database answers and the replica's leases hold.
	DatabaseUp bool
	// Replicas alive, this one included.
	Replicas int
	// Sources are the polled sources shared out; Held those run here.
	Sources, Held []string
	// LastSync is when the replica last exchanged changes with the
	// database.
	LastSync time.Time
}

// HA roles: active runs at least one source, standby none while the
// database is up, disconnected has lost the database.
var haRoles = []string{"active", "standby", "disconnected"}

type haMetrics struct {
	up, replicas, lastSync prometheus.Gauge
	role, held             *prometheus.GaugeVec
}

func newHAMetrics(reg *prometheus.Registry) *haMetrics {
	m := &haMetrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpi_ha_database_up",
			Help: "Whether the state database answers and this replica's source leases hold (1), or not (0: it collects nothing, refuses pushes and serves its last snapshot)."}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpi_ha_replicas",
			Help: "Replicas alive (heartbeat within the lease TTL) as this replica last saw them, itself included."}),
		lastSync: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kpi_ha_last_sync_timestamp_seconds",
			Help: "When this replica last took the other replicas' changes from the state database, as a Unix time."}),
		role: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kpi_ha_role",
			Help: "This replica's role (state set): active (runs sources), standby (runs none; serves and accepts pushes), disconnected (lost the state database)."}, []string{"role"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kpi_ha_source_held",
			Help: "Whether this replica holds the lease of a polled source and runs it (1) or another replica does (0)."}, []string{"source"}),
	}
	reg.MustRegister(m.up, m.replicas, m.lastSync, m.role, m.held)
	return m
}

// SetHA exports the replica's state; the kpi_ha_* families appear with
// the first call (only replicas on a PostgreSQL store have them).
func (e *Exporter) SetHA(st HAStatus) {
	e.haOnce.Do(func() { e.ha = newHAMetrics(e.reg) })
	m := e.ha
	m.up.Set(b2f(st.DatabaseUp))
	m.replicas.Set(float64(st.Replicas))
	if !st.LastSync.IsZero() {
		m.lastSync.Set(float64(st.LastSync.UnixMilli()) / 1e3)
	}
	role := "standby"
	switch {
	case !st.DatabaseUp:
		role = "disconnected"
	case len(st.Held) > 0:
		role = "active"
	}
	for _, r := range haRoles {
		m.role.WithLabelValues(r).Set(b2f(r == role))
	}
	held := map[string]bool{}
	for _, h := range st.Held {
		held[h] = true
	}
	m.held.Reset()
	for _, s := range st.Sources {
		m.held.WithLabelValues(s).Set(b2f(held[s]))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// SetNotReady makes /-/ready fail with reason (the daemon still serves its
// last snapshot); SetReady undoes it.
func (e *Exporter) SetNotReady(reason string) {
	e.notReady.Store(&reason)
	e.ready.Store(false)
}

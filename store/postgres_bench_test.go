package store

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// BenchmarkPostgresHistoryFootprint measures what history costs in the
// database: 1,000 KPIs whose sources read every 15 minutes for 14 days (the
// points a daemon records), synced every simulated hour by a replica, then
// the same days once older than the fine span (compacted to one a day).
// Reported: rows and bytes (table and indexes) per KPI-day, and the time of
// one hourly sync of 1,000 KPIs.
//
//	go test ./store -run '^$' -bench PostgresHistoryFootprint -benchtime 1x -v
func BenchmarkPostgresHistoryFootprint(b *testing.B) {
	const kpis, days = 1000, 14
	for range b.N {
		dsn, _ := newDB(b)
		s, err := OpenPostgres(context.Background(), dsn, PostgresOptions{Timeout: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		var syncs time.Duration
		nsync := 0
		for step := 0; step < days*96; step++ {
			at := start.Add(time.Duration(step) * 15 * time.Minute)
			for k := range kpis {
				s.Record(fmt.Sprintf("kpi_%04d", k), kpi.Point{T: at, V: 100 + 10*math.Sin(float64(step+k)/40)})
			}
			if step%4 == 3 {
				t0 := time.Now()
				if err := s.Save(); err != nil {
					b.Fatal(err)
				}
				syncs += time.Since(t0)
				nsync++
			}
		}
		measure := func(what string) {
			var rows, bytes int64
			ctx := context.Background()
			// The live size: replaced provisional points leave dead rows
			// that autovacuum makes reusable; VACUUM FULL returns them.
			if _, err := s.pg.pool.Exec(ctx, `VACUUM FULL kpi_exporter.history`); err != nil {
				b.Fatal(err)
			}
			if err := s.pg.pool.QueryRow(ctx, `SELECT count(*), pg_total_relation_size('kpi_exporter.history') FROM kpi_exporter.history`).Scan(&rows, &bytes); err != nil {
				b.Fatal(err)
			}
			kd := float64(kpis * days)
			b.Logf("%s: %d rows, %.1f MB: %.1f rows and %.0f bytes per KPI-day", what, rows, float64(bytes)/1e6, float64(rows)/kd, float64(bytes)/kd)
			b.ReportMetric(float64(rows)/kd, what+"-rows/KPI-day")
			b.ReportMetric(float64(bytes)/kd, what+"-bytes/KPI-day")
		}
		measure("fine")
		b.ReportMetric(float64(syncs.Milliseconds())/float64(nsync), "ms/hourly-sync")
		s.Compact(start.Add((days + 31) * 24 * time.Hour))
		if err := s.Save(); err != nil {
			b.Fatal(err)
		}
		measure("compacted")
		if h := s.History("kpi_0000"); len(h) != days {
			b.Errorf("compacted history in memory has %d points, want %d", len(h), days)
		}
		s.Close()
	}
}

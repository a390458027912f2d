package sqlsource

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/internal/testdb"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// BenchmarkPostgres10M runs the default catalogue's product queries (its
// product_db source) against a real PostgreSQL holding 10,000,000 events of
// 200,000 users over 90 days, with examples/sql/schema.postgres.sql's
// indexes, vacuumed and analysed (as autovacuum leaves a table). Users are skewed (a few are very active, most come
// rarely), event names spread over sessions and features. Per measurement:
// the time of a run of its query through the source (transaction, timeout,
// query, rows) and the database's own execution time (EXPLAIN ANALYZE);
// then a whole run of the source. Not part of make test (about two minutes
// to load):
//
//	go test ./collectors/sql -run '^$' -bench Postgres10M -benchtime 5x -v
func BenchmarkPostgres10M(b *testing.B) {
	srv := testdb.Postgres(b)
	db := srv.Open(b)
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	start := time.Now()
	schema := string(mustReadB(b, "../../examples/sql/schema.postgres.sql"))
	tables, indexes, _ := strings.Cut(schema, "-- The indexes")
	for _, stmt := range []string{tables,
		fmt.Sprintf(`INSERT INTO users SELECT g, timestamp '%s' - random() * interval '90 days' FROM generate_series(1, 200000) g`, now.Format(time.DateTime)),
		fmt.Sprintf(`INSERT INTO events SELECT u, (ARRAY['session_start','session_end','session_start','session_end','workflow_run','report_view','habit_check','export'])[1 + floor(random()*8)::int], ts
		 FROM (SELECT 1 + floor(200000 * random()^3)::bigint AS u, timestamp '%s' - random() * interval '90 days' AS ts FROM generate_series(1, 10000000)) s`, now.Format(time.DateTime)),
		"-- The indexes" + indexes, "VACUUM ANALYZE"} {
		if _, err := db.Exec(stmt); err != nil {
			b.Fatalf("%.60s…: %v", stmt, err)
		}
	}
	var rows, bytes int64
	db.QueryRow("SELECT count(*), pg_total_relation_size('events') FROM events").Scan(&rows, &bytes)
	b.Logf("loaded %d events (%d MB with indexes) in %s", rows, bytes>>20, time.Since(start).Round(time.Second))

	getenv := func(string) string { return srv.DSN }
	b.Setenv("KPI_PRODUCT_DB_DSN", srv.DSN)
	c, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{Getenv: getenv})
	if err != nil {
		b.Fatal(err)
	}
	src, _ := c.Source("product_db")
	all, err := New(src, collectorsEnv())
	if err != nil {
		b.Fatal(err)
	}
	full := all.(*Collector)
	full.now = func() time.Time { return now }
	defer full.Close()
	for _, q := range full.queries {
		one := &Collector{name: full.name, driver: full.driver, s: full.s, dsnEnv: full.dsnEnv, timeout: full.timeout,
			queries: []query{q}, now: full.now}
		defer one.Close()
		b.Run(q.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := one.Collect(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			// The database's own time for the same query and parameters.
			args := make([]any, len(q.params))
			for i, p := range q.params {
				args[i] = now
				if p == 0 {
					args[i] = now.Add(-q.window)
				}
			}
			var plan string
			if err := db.QueryRow("EXPLAIN (ANALYZE, FORMAT JSON) "+q.sql, args...).Scan(&plan); err != nil {
				b.Fatal(err)
			}
			var p []struct {
				ExecutionTime float64 `json:"Execution Time"`
				PlanningTime  float64 `json:"Planning Time"`
			}
			json.Unmarshal([]byte(plan), &p)
			if len(p) == 1 {
				b.ReportMetric(p[0].ExecutionTime, "db-ms")
				b.ReportMetric(p[0].PlanningTime, "plan-ms")
			}
		})
	}
	b.Run("whole-source-run", func(b *testing.B) {
		for b.Loop() {
			if _, err := full.Collect(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func collectorsEnv() collectors.Env { return collectors.Env{} }

func mustReadB(b *testing.B, path string) []byte {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

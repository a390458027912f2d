package sqlsource

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/examples"
	"github.com/bakhmach-hub/kpi_exporter/examples/sql/synth"
	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/internal/testdb"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func TestBind(t *testing.T) {
	for _, tc := range []struct {
		q, driver, want string
		params          []int
	}{
		{"SELECT 1 WHERE at >= :from AND at < :to", "postgres", "SELECT 1 WHERE at >= $1 AND at < $2", []int{0, 1}},
		{"SELECT :to::timestamp - interval '7 days', :from, :to", "postgres", "SELECT $1::timestamp - interval '7 days', $2, $1", []int{1, 0}},
		{"SELECT :to - INTERVAL 7 DAY, :from, :to", "mysql", "SELECT ? - INTERVAL 7 DAY, ?, ?", []int{1, 0, 1}},
		{"SELECT ':from', \":to\", `:to` -- :from\n, /* :to */ x::text, :fromage, :other FROM t WHERE a = :from", "sqlite",
			"SELECT ':from', \":to\", `:to` -- :from\n, /* :to */ x::text, :fromage, :other FROM t WHERE a = ?", []int{0}},
		{"SELECT 'it''s :from' , :to", "clickhouse", "SELECT 'it''s :from' , ?", []int{1}},
		{`SELECT 'a\' :from' , :to`, "mysql", `SELECT 'a\' :from' , ?`, []int{1}},
	} {
		got, params, err := Bind(tc.q, tc.driver)
		if err != nil || got != tc.want || fmt.Sprint(params) != fmt.Sprint(tc.params) {
			t.Errorf("Bind(%q, %s) = %q %v %v, want %q %v", tc.q, tc.driver, got, params, err, tc.want, tc.params)
		}
	}
	for _, q := range []string{"SELECT 'open", "SELECT 1 /* open"} {
		if _, _, err := Bind(q, "postgres"); err == nil {
			t.Errorf("Bind(%q): no error", q)
		}
	}
}

func TestPasswords(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://kpi:s3cret-pw@db.internal:5432/product?sslmode=verify-full": "s3cret-pw",
		"host=db user=kpi password=s3cret-pw dbname=product":                    "s3cret-pw",
		"host=db user=kpi password='s3cret pw' dbname=product":                  "s3cret pw",
		"kpi:s3cret-pw@tcp(db.internal:3306)/product?parseTime=true":            "s3cret-pw",
		"clickhouse://kpi:s3cret-pw@ch:9000/product":                            "s3cret-pw",
		"clickhouse://ch:9000/product?username=kpi&password=s3cret-pw":          "s3cret-pw",
	} {
		found := false
		for _, p := range Passwords(dsn) {
			found = found || p == want
		}
		if !found {
			t.Errorf("Passwords(%q) = %q, want %q among them", dsn, Passwords(dsn), want)
		}
	}
}

// catalogue declares one sql source with the measurements (a YAML list)
// and returns its collector, its clock at now.
func newSource(t *testing.T, driver, dsnEnv, measurements, extra string, now time.Time) *Collector {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "calendar: {plan_start: 2026-01-01}\nsources:\n  - name: product_db\n    type: sql\n    timeout: 20s\n    settings:\n")
	fmt.Fprintf(&b, "      driver: %s\n      dsn_env: %s\n%s      measurements:\n", driver, dsnEnv, extra)
	for _, l := range strings.Split(measurements, "\n") {
		b.WriteString("        " + l + "\n")
	}
	b.WriteString("kpis: [{id: k, name: K, domain: d, dashboard: product, unit: count, direction: higher, source: {name: product_db, measurement: daily_active_users}, targets: [{period: Q1, value: 1}]}]\n")
	c, err := kpi.Parse("kpis.yaml", []byte(b.String()), kpi.ParseOptions{KnownType: collectors.Known})
	if err != nil {
		t.Fatal(err)
	}
	col, err := collectors.New(c.Sources[0], collectors.Env{BaseDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sc := col.(*Collector)
	sc.now = func() time.Time { return now }
	t.Cleanup(func() { sc.Close() })
	return sc
}

func example(t *testing.T, dialect string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "sql", dialect+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// load creates the example schema and fills it with the generated data.
func load(t *testing.T, db *sql.DB, dialect string, d synth.Data) {
	t.Helper()
	schema, err := os.ReadFile(filepath.Join("..", "..", "examples", "sql", "schema."+dialect+".sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(string(schema), ";") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if s := strings.TrimSpace(strings.Join(lines, "\n")); s != "" && !strings.HasPrefix(s, "-- The indexes") {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
	ts := func(x time.Time) any {
		if dialect == "sqlite" {
			return x.UTC().Format(time.DateTime)
		}
		return x.UTC()
	}
	insert := func(table string, cols int, rows [][]any) {
		for start := 0; start < len(rows); start += 500 {
			end := min(start+500, len(rows))
			var q strings.Builder
			fmt.Fprintf(&q, "INSERT INTO %s VALUES ", table)
			var args []any
			for i, r := range rows[start:end] {
				if i > 0 {
					q.WriteString(",")
				}
				q.WriteString("(")
				for j := range cols {
					if j > 0 {
						q.WriteString(",")
					}
					args = append(args, r[j])
					if dialect == "postgres" {
						fmt.Fprintf(&q, "$%d", len(args))
					} else {
						q.WriteString("?")
					}
				}
				q.WriteString(")")
			}
			if _, err := db.Exec(q.String(), args...); err != nil {
				t.Fatalf("insert into %s: %v", table, err)
			}
		}
	}
	var users, events [][]any
	for _, u := range d.Users {
		users = append(users, []any{u.ID, ts(u.Created)})
	}
	for _, e := range d.Events {
		events = append(events, []any{e.UserID, e.Name, ts(e.At)})
	}
	insert("users", 2, users)
	insert("events", 3, events)
}

// checkExample runs the example queries of a dialect against the generated
// data at several times and compares every value with the one computed in
// Go from the same data.
func checkExample(t *testing.T, c *Collector, d synth.Data, times []time.Time) {
	t.Helper()
	for _, now := range times {
		c.now = func() time.Time { return now }
		ms, err := c.Collect(context.Background())
		if err != nil {
			t.Fatalf("at %s: %v", now, err)
		}
		got := map[string]float64{}
		for _, m := range ms {
			got[m.Name+m.Labels.String()] = m.Value
		}
		want := map[string]float64{"daily_active_users{}": d.DAU(now), "monthly_active_users{}": d.MAU(now)}
		if v, ok := d.Stickiness(now); ok {
			want["stickiness_ratio{}"] = v
		}
		if v, ok := d.Retention30(now); ok {
			want["retention_30d_ratio{}"] = v
		}
		if v, ok := d.SessionSeconds(now); ok {
			want["session_seconds{}"] = v
		}
		for name, f := range map[string]func(time.Time) (float64, bool){"daily_session_seconds{}": d.DailySessionSeconds,
			"weekly_active_days{}": d.WeeklyActiveDays, "feature_usage_ratio{}": d.FeatureUsage} {
			if v, ok := f(now); ok {
				want[name] = v
			}
		}
		for f, v := range d.FeatureAdoption(now) {
			want["feature_adoption_ratio"+kpi.Labels{{Name: "feature", Value: f}}.String()] = v
		}
		for f, v := range d.FeatureUsers(now) {
			want["feature_users"+kpi.Labels{{Name: "feature", Value: f}}.String()] = v
		}
		// Only the measurements this dialect's examples have.
		has := map[string]bool{}
		for _, q := range c.queries {
			for _, n := range q.names {
				has[n] = true
			}
		}
		for k := range want {
			if name, _, _ := strings.Cut(k, "{"); !has[name] {
				delete(want, k)
			}
		}
		var keys []string
		for k := range want {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			g, ok := got[k]
			if !ok || math.Abs(g-want[k]) > 1e-9*math.Max(1, math.Abs(want[k])) {
				t.Errorf("at %s: %s = %v (%v), want %v", now.Format(time.DateTime), k, g, ok, want[k])
			}
		}
		if len(got) != len(want) {
			t.Errorf("at %s: %d series %v, want %d", now.Format(time.DateTime), len(got), got, len(want))
		}
	}
}

var (
	dataNow = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	// Times the examples are checked at: the generated history's end, a
	// few weeks and days earlier, and a time before any user signed up
	// (every count 0, every ratio and mean NULL: no value).
	checkTimes = []time.Time{dataNow, dataNow.Add(-21*24*time.Hour - 5*time.Hour), dataNow.Add(-3 * 24 * time.Hour)}
)

func TestSQLiteExamples(t *testing.T) {
	d := synth.Generate(1, 300, dataNow)
	path := filepath.Join(t.TempDir(), "product.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	load(t, db, "sqlite", d)
	t.Setenv("KPI_TEST_SQLITE_DSN", path)
	c := newSource(t, "sqlite", "KPI_TEST_SQLITE_DSN", example(t, "sqlite"), "", dataNow)
	checkExample(t, c, d, append(checkTimes, dataNow.Add(-200*24*time.Hour)))
	if len(d.Events) < 10000 {
		t.Errorf("only %d events generated", len(d.Events))
	}
	t.Logf("%d users, %d events", len(d.Users), len(d.Events))

	// Writes are refused: the connection is query-only.
	w := newSource(t, "sqlite", "KPI_TEST_SQLITE_DSN", "- {name: gone, query: \"DELETE FROM events RETURNING 1 AS value\"}", "", dataNow)
	if _, err := w.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "measurement gone: ") || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("a DELETE: %v", err)
	}
	var n int
	db.QueryRow("SELECT count(*) FROM events").Scan(&n)
	if n != len(d.Events) {
		t.Errorf("%d events left of %d", n, len(d.Events))
	}
	checkCommon(t, "sqlite", "KPI_TEST_SQLITE_DSN")
}

// checkCommon: NULL is no value, max_series is enforced, a missing value
// column and a bad label column are errors naming the measurement.
func checkCommon(t *testing.T, driver, env string) {
	t.Helper()
	c := newSource(t, driver, env, "- {name: nothing, query: \"SELECT NULL AS value\"}\n- {name: one, query: \"SELECT 1 AS value\"}", "", dataNow)
	ms, err := c.Collect(context.Background())
	if err != nil || len(ms) != 1 || ms[0].Name != "one" || ms[0].Value != 1 {
		t.Errorf("NULL and 1: %+v %v", ms, err)
	}
	c = newSource(t, driver, env, "- {name: features, query: \"SELECT name AS feature, COUNT(*) AS value FROM events GROUP BY name\"}", "      max_series: 3\n", dataNow)
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "measurement features: the query returned more than max_series 3 rows") {
		t.Errorf("max_series: %v", err)
	}
	c = newSource(t, driver, env, "- {name: nocol, query: \"SELECT 1 AS n\"}", "", dataNow)
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), `measurement nocol: the query has no column "value" (its columns: n)`) {
		t.Errorf("no value column: %v", err)
	}
	c = newSource(t, driver, env, "- {name: dup, query: \"SELECT 'a' AS k, 1 AS value UNION ALL SELECT 'a', 2\"}", "", dataNow)
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), `two rows with the same labels {k="a"}`) {
		t.Errorf("duplicate rows: %v", err)
	}
	c = newSource(t, driver, env, "- {name: two, values: [a, b], query: \"SELECT 1 AS a, NULL AS b\"}", "", dataNow)
	if ms, err := c.Collect(context.Background()); err != nil || len(ms) != 1 || ms[0].Name != "two_a" {
		t.Errorf("two value columns: %+v %v", ms, err)
	}
}

func TestSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ settings, want string }{
		{"{driver: oracle, dsn_env: X, measurements: [{name: a, query: SELECT 1}]}", `needs driver: postgres, mysql, clickhouse or sqlite, not "oracle"`},
		{"{driver: postgres, measurements: [{name: a, query: SELECT 1}]}", "needs dsn_env (an environment variable) or dsn_file"},
		{"{driver: postgres, dsn_env: X, dsn_file: f, measurements: [{name: a, query: SELECT 1}]}", "set dsn_env or dsn_file, not both"},
		{"{driver: postgres, dsn_env: X, dsn: 'postgres://u:p@h/db', measurements: [{name: a, query: SELECT 1}]}", "unknown field"},
		{"{driver: postgres, dsn_env: X, measurements: [{name: A, query: SELECT 1}]}", `measurement name "A"`},
		{"{driver: postgres, dsn_env: X, measurements: [{name: a, query: \"SELECT 'x\"}]}", "unterminated ' quote"},
		{"{driver: postgres, dsn_env: X, measurements: [{name: a, query: SELECT 1, window: -1d}]}", `window "-1d" is not a positive duration`},
		{"{driver: postgres, dsn_env: X, measurements: [{name: a, query: SELECT 1}, {name: a, query: SELECT 2}]}", `"a" (from value column "value") is not a unique`},
	} {
		y := "sources:\n  - {name: db, type: sql, settings: " + tc.settings + "}\nkpis: [{id: k, name: K, domain: d, dashboard: product, unit: count, direction: higher, source: {name: db, measurement: a}, targets: [{period: 2026-01-01, value: 1}]}]\n"
		c, err := kpi.Parse("kpis.yaml", []byte(y), kpi.ParseOptions{KnownType: collectors.Known})
		if err == nil {
			_, err = collectors.New(c.Sources[0], collectors.Env{})
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "kpis.yaml:") {
			t.Errorf("%s: %v, want kpis.yaml:…%s", tc.settings, err, tc.want)
		}
	}
}

// The DSN and its password never appear in an error, however the driver
// words it.
func TestDSNNeverShown(t *testing.T) {
	t.Setenv("KPI_TEST_BAD_DSN", "postgres://kpi:hunter2-s3cret@127.0.0.1:1/product?connect_timeout=2")
	c := newSource(t, "postgres", "KPI_TEST_BAD_DSN", "- {name: a, query: SELECT 1 AS value}", "", dataNow)
	_, err := c.Collect(context.Background())
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "measurement a: ") {
		t.Errorf("error %v", err)
	}
	if s := redact.String("password hunter2-s3cret"); strings.Contains(s, "hunter2") {
		t.Errorf("the password is not registered as a secret: %s", s)
	}
	t.Setenv("KPI_TEST_BAD_DSN", "")
	if _, err := c.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "environment variable KPI_TEST_BAD_DSN (dsn_env) is not set") {
		t.Errorf("unset DSN: %v", err)
	}
}

// ClickHouse: the only server the registries here have is Debian's 18.16,
// too old for the driver's test-data loading (see the README), so the wiring
// is tested: the driver is registered, placeholders are ?, and a refused
// connection is an error of the run that does not show the password.
func TestClickHouseWiring(t *testing.T) {
	t.Setenv("KPI_TEST_CH_DSN", "clickhouse://kpi:ch-s3cret-pw@127.0.0.1:1/product?dial_timeout=1s")
	c := newSource(t, "clickhouse", "KPI_TEST_CH_DSN", "- {name: dau, query: \"SELECT uniqExact(user_id) AS value FROM events WHERE at >= :from AND at < :to\"}", "      statement_timeout: 7s\n", dataNow)
	if c.queries[0].sql != "SELECT uniqExact(user_id) AS value FROM events WHERE at >= ? AND at < ?" {
		t.Errorf("query %q", c.queries[0].sql)
	}
	_, err := c.Collect(context.Background())
	if err == nil || strings.Contains(err.Error(), "ch-s3cret-pw") {
		t.Errorf("no server: %v", err)
	}
	if d := fmt.Sprintf("%T", c.db.Driver()); !strings.Contains(d, "clickhouse") {
		t.Errorf("driver %s", d)
	}
	for _, tc := range []struct{ driver, dsn, want string }{
		{"clickhouse", "clickhouse://ch:9000/product?dial_timeout=1s", "clickhouse://ch:9000/product?dial_timeout=1s&readonly=2&max_execution_time=7"},
		{"clickhouse", "clickhouse://ch:9000/product", "clickhouse://ch:9000/product?readonly=2&max_execution_time=7"},
		{"sqlite", "/var/lib/product.db", "/var/lib/product.db?_query_only=1"},
		{"postgres", "postgres://h/db", "postgres://h/db"},
	} {
		if got := DriverDSN(tc.driver, tc.dsn, 6500*time.Millisecond); got != tc.want {
			t.Errorf("DriverDSN(%s, %s) = %s, want %s", tc.driver, tc.dsn, got, tc.want)
		}
	}
}

// TestPostgres runs the examples against a real PostgreSQL, and the rules
// every source keeps: read only, the statement timeout failing that source
// alone, NULL, max_series.
func TestPostgres(t *testing.T) {
	srv := testdb.Postgres(t)
	d := synth.Generate(2, 300, dataNow)
	load(t, srv.Open(t), "postgres", d)
	t.Setenv("KPI_TEST_PG_DSN", srv.DSN)
	c := newSource(t, "postgres", "KPI_TEST_PG_DSN", example(t, "postgres"), "", dataNow)
	checkExample(t, c, d, checkTimes)
	checkDefaultCatalogue(t, srv.DSN, d)
	checkCommon(t, "postgres", "KPI_TEST_PG_DSN")
	checkReadOnlyAndTimeout(t, "postgres", "KPI_TEST_PG_DSN", "DELETE FROM events RETURNING 1 AS value", "SELECT pg_sleep(5) IS NULL AS value",
		"cannot execute DELETE in a read-only transaction", "canceling statement due to statement timeout", srv.Open(t), len(d.Events))
}

func TestMariaDB(t *testing.T) {
	srv := testdb.MariaDB(t)
	d := synth.Generate(3, 300, dataNow)
	load(t, srv.Open(t), "mysql", d)
	t.Setenv("KPI_TEST_MARIADB_DSN", srv.DSN)
	c := newSource(t, "mysql", "KPI_TEST_MARIADB_DSN", example(t, "mysql"), "", dataNow)
	checkExample(t, c, d, checkTimes)
	checkCommon(t, "mysql", "KPI_TEST_MARIADB_DSN")
	checkReadOnlyAndTimeout(t, "mysql", "KPI_TEST_MARIADB_DSN", "DELETE FROM events RETURNING 1 AS value", "SELECT SLEEP(5) AS value",
		"Cannot execute statement in a READ ONLY transaction", "max_statement_time exceeded", srv.Open(t), len(d.Events))
}

// checkReadOnlyAndTimeout: a write is refused by the read-only transaction
// and changes nothing; a query over its statement timeout fails its source
// while another source on the same database, at the same time, succeeds.
func checkReadOnlyAndTimeout(t *testing.T, driver, env, write, slow, wantWrite, wantSlow string, db *sql.DB, events int) {
	t.Helper()
	w := newSource(t, driver, env, "- {name: gone, query: \""+write+"\"}", "", dataNow)
	if _, err := w.Collect(context.Background()); err == nil || !strings.Contains(err.Error(), "measurement gone: ") || !strings.Contains(err.Error(), wantWrite) {
		t.Errorf("a write: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT count(*) FROM events").Scan(&n); err != nil || n != events {
		t.Errorf("%d events left of %d (%v)", n, events, err)
	}
	slowSrc := newSource(t, driver, env, "- {name: slow, query: \""+slow+"\"}", "      statement_timeout: 1s\n", dataNow)
	fast := newSource(t, driver, env, "- {name: fast, query: \"SELECT COUNT(*) AS value FROM users\"}", "      statement_timeout: 1s\n", dataNow)
	var wg sync.WaitGroup
	var slowErr, fastErr error
	var fastMs []kpi.Measurement
	start := time.Now()
	wg.Add(2)
	go func() { defer wg.Done(); _, slowErr = slowSrc.Collect(context.Background()) }()
	go func() { defer wg.Done(); fastMs, fastErr = fast.Collect(context.Background()) }()
	wg.Wait()
	if slowErr == nil || !strings.Contains(slowErr.Error(), "measurement slow: ") || !strings.Contains(slowErr.Error(), wantSlow) {
		t.Errorf("over the statement timeout: %v", slowErr)
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("the timed-out query took %s", took)
	}
	if fastErr != nil || len(fastMs) != 1 || fastMs[0].Value != 300 {
		t.Errorf("the other source: %+v %v", fastMs, fastErr)
	}
}

// The default catalogue's product_db source, enabled by its DSN, against a
// real PostgreSQL holding generated events: every product KPI bound to it
// has the value computed in Go, and without the DSN the KPIs read the
// manual file as before.
func checkDefaultCatalogue(t *testing.T, dsn string, d synth.Data) {
	t.Helper()
	getenv := func(k string) string {
		if k == "KPI_PRODUCT_DB_DSN" {
			return dsn
		}
		return ""
	}
	t.Setenv("KPI_PRODUCT_DB_DSN", dsn)
	c, err := kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{Getenv: getenv})
	if err != nil {
		t.Fatal(err)
	}
	src, ok := c.Source("product_db")
	if !ok || !src.Enabled {
		t.Fatalf("product_db: %+v", src)
	}
	col, err := collectors.New(src, collectors.Env{})
	if err != nil {
		t.Fatal(err)
	}
	sc := col.(*Collector)
	defer sc.Close()
	sc.now = func() time.Time { return dataNow }
	ms, err := sc.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	card := kpi.Evaluate(c, kpi.Inputs{Readings: map[string]kpi.Reading{"product_db": {At: dataNow, Measurements: ms}}}, dataNow)
	val := func(f func(time.Time) (float64, bool)) float64 { v, _ := f(dataNow); return v }
	want := map[string]float64{
		"workflow_active_users": d.MAU(dataNow), "workflow_daily_active_users": d.DAU(dataNow),
		"user_retention_30d": val(d.Retention30), "daily_session_length": val(d.DailySessionSeconds),
		"weekly_active_days": val(d.WeeklyActiveDays), "feature_usage_rate": val(d.FeatureUsage),
		"feature_adoption": d.FeatureAdoption(dataNow)["export"],
	}
	for _, r := range card.Results {
		w, ok := want[r.KPI.ID]
		if !ok {
			continue
		}
		delete(want, r.KPI.ID)
		if r.KPI.Source.Source != "product_db" || !r.HasValue || math.Abs(r.Value-w) > 1e-9*math.Max(1, w) {
			t.Errorf("%s from %s: %v (%v), want %v", r.KPI.ID, r.KPI.Source, r.Value, r.HasValue, w)
		}
	}
	if len(want) != 0 {
		t.Errorf("KPIs not bound to product_db: %v", want)
	}
	// Without the DSN: the manual file, as before.
	c, err = kpi.Parse(examples.CatalogueName, examples.Catalogue, kpi.ParseOptions{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if k := c.KPI("workflow_daily_active_users"); k.Source.Source != "manual" || k.Unused.Source != "product_db" {
		t.Errorf("without the DSN: %s", k.Source)
	}
}

// The catalogues that ship the example queries run the tested ones: the
// default catalogue's product_db has postgres.yaml's, examples/sql/kpis.yaml
// sqlite.yaml's, query for query.
func TestShippedQueriesAreTheTestedOnes(t *testing.T) {
	type entry struct {
		Name, Query, Window, Value string
		Values                     []string
	}
	examplesOf := func(dialect string) map[string]entry {
		var es []entry
		if err := yaml.Unmarshal([]byte(example(t, dialect)), &es); err != nil {
			t.Fatal(err)
		}
		out := map[string]entry{}
		for _, e := range es {
			out[e.Name] = e
		}
		return out
	}
	for _, tc := range []struct {
		dialect string
		cat     []byte
		source  string
	}{
		{"postgres", examples.Catalogue, "product_db"},
		{"sqlite", mustRead(t, filepath.Join("..", "..", "examples", "sql", "kpis.yaml")), "product_db"},
	} {
		c, err := kpi.Parse("kpis.yaml", tc.cat, kpi.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := c.Source(tc.source)
		var s Settings
		if err := src.Settings.Decode(&s); err != nil {
			t.Fatal(err)
		}
		want := examplesOf(tc.dialect)
		if len(s.Measurements) == 0 {
			t.Fatalf("%s: no measurements", tc.dialect)
		}
		for _, m := range s.Measurements {
			e, ok := want[m.Name]
			if !ok || e.Query != m.Query || e.Window != m.Window {
				t.Errorf("%s: measurement %s differs from examples/sql/%s.yaml", tc.dialect, m.Name, tc.dialect)
			}
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzBind: any query a catalogue can hold is rewritten or refused with an
// error, in time linear in its length, never a panic; what it returns keeps
// every byte outside :from and :to.
func FuzzBind(f *testing.F) {
	for _, s := range []string{"SELECT 1 WHERE at >= :from AND at < :to", "SELECT ':from' -- :to\n/* :from */ x::text", `SELECT 'a\' :from'`, "::from:to:", "'", "/*", "--"} {
		f.Add(s, uint8(0))
	}
	drivers := []string{"postgres", "mysql", "sqlite", "clickhouse"}
	f.Fuzz(func(t *testing.T, q string, d uint8) {
		if len(q) > 1<<16 {
			return
		}
		driver := drivers[int(d)%len(drivers)]
		out, params, err := Bind(q, driver)
		if err != nil {
			return
		}
		if driver == "postgres" {
			// At most $1 and $2, each parameter once.
			if len(params) > 2 || len(params) == 2 && params[0] == params[1] || strings.Count(out, "$")-strings.Count(q, "$") < len(params) {
				t.Fatalf("%q: params %v, %q", q, params, out)
			}
			return
		}
		// Each placeholder replaced one :from (5 bytes) or :to (3 bytes)
		// by one ?, and nothing else changed length.
		want := len(q)
		for _, p := range params {
			want -= map[int]int{0: len(":from"), 1: len(":to")}[p] - 1
		}
		if strings.Count(out, "?")-strings.Count(q, "?") != len(params) || len(out) != want {
			t.Fatalf("%q → %q with params %v", q, out, params)
		}
	})
}

// A DSN file is read every run: a rotated one (another database, a new
// password) opens a new pool.
func TestDSNFileRotation(t *testing.T) {
	dir := t.TempDir()
	for i, n := range []int{3, 5} {
		db, err := sql.Open("sqlite", filepath.Join(dir, fmt.Sprintf("db%d", i)))
		if err != nil {
			t.Fatal(err)
		}
		db.Exec("CREATE TABLE users (id INTEGER)")
		for j := 0; j < n; j++ {
			db.Exec("INSERT INTO users VALUES (?)", j)
		}
		db.Close()
	}
	dsnFile := filepath.Join(dir, "dsn")
	os.WriteFile(dsnFile, []byte(filepath.Join(dir, "db0")+"\n"), 0o600)
	y := "sources:\n  - {name: db, type: sql, settings: {driver: sqlite, dsn_file: dsn, measurements: [{name: users, query: 'SELECT COUNT(*) AS value FROM users'}]}}\n" +
		"kpis: [{id: k, name: K, domain: d, dashboard: product, unit: count, direction: higher, source: {name: db, measurement: users}, targets: [{period: 2026-01-01, value: 1}]}]\n"
	c, err := kpi.Parse("kpis.yaml", []byte(y), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := collectors.New(c.Sources[0], collectors.Env{BaseDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer col.(*Collector).Close()
	for _, tc := range []struct {
		db   string
		want float64
	}{{"db0", 3}, {"db1", 5}} {
		os.WriteFile(dsnFile, []byte(filepath.Join(dir, tc.db)), 0o600)
		ms, err := col.Collect(context.Background())
		if err != nil || len(ms) != 1 || ms[0].Value != tc.want {
			t.Errorf("%s: %+v %v", tc.db, ms, err)
		}
	}
}

// Package sqlsource is the source type "sql": KPIs read with SQL from the
// company's own database or warehouse — PostgreSQL, MySQL/MariaDB,
// ClickHouse or SQLite — through database/sql.
//
// Every query runs in a read-only transaction where the database has one
// (PostgreSQL, MySQL/MariaDB; SQLite connections are opened query-only,
// ClickHouse sessions readonly), with a statement timeout on the server as
// well as the run's deadline, on a small connection pool of the source's
// own. The DSN comes from an environment variable or a file, never from the
// catalogue, and is never logged or shown.
package sqlsource

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"

	// The drivers, each registering itself with database/sql.
	_ "github.com/ClickHouse/clickhouse-go/v2"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// Type is the source type name.
const Type = "sql"

// Defaults.
const (
	DefaultMaxSeries    = 100
	DefaultMaxOpenConns = 2
	DefaultWindow       = 24 * time.Hour
	// maxLabelBytes bounds a label column's value, as the push API does.
	maxLabelBytes = 128
)

func init() { collectors.Register(Type, New) }

// Drivers maps the catalogue's driver names to database/sql's.
var Drivers = map[string]string{"postgres": "pgx", "mysql": "mysql", "clickhouse": "clickhouse", "sqlite": "sqlite"}

// Settings of a sql source.
type Settings struct {
	// Driver is postgres (also for CockroachDB, TimescaleDB, Redshift's
	// PostgreSQL protocol), mysql (MySQL and MariaDB), clickhouse or sqlite.
	Driver string `yaml:"driver"`
	// DSNEnv names the environment variable holding the DSN, DSNFile a
	// file holding it (re-read every run, so a rotated password takes
	// effect). Exactly one.
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
	// MaxOpenConns bounds the source's connection pool (default 2).
	MaxOpenConns int `yaml:"max_open_conns"`
	// StatementTimeout is the server-side limit of one query (default:
	// the source's timeout).
	StatementTimeout string `yaml:"statement_timeout"`
	// MaxSeries bounds the rows of one query (default 100).
	MaxSeries int `yaml:"max_series"`
	// Window is the default span from :from to :to (default 1d).
	Window       string        `yaml:"window"`
	Measurements []Measurement `yaml:"measurements"`
}

// Measurement is one query.
type Measurement struct {
	Name  string `yaml:"name"`
	Query string `yaml:"query"`
	// Value is the value column (default "value"); Values, instead, names
	// several, each giving the measurement <name>_<column>.
	Value  string   `yaml:"value"`
	Values []string `yaml:"values"`
	// Window is this query's span from :from to :to.
	Window string `yaml:"window"`
}

// query is a measurement ready to run.
type query struct {
	name   string
	sql    string
	params []int // per placeholder: 0 :from, 1 :to
	values []string
	names  []string // measurement name per value column
	window time.Duration
}

// Collector is a sql source.
type Collector struct {
	name, driver string
	s            Settings
	dsnEnv       string
	dsnFile      string
	timeout      time.Duration
	queries      []query
	now          func() time.Time

	mu                    sync.Mutex
	db                    *sql.DB
	dsn                   string
	mariaDB, mysqlChecked bool
}

// New builds a sql source from its declaration.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	at := src.Settings.Errorf
	if _, ok := Drivers[s.Driver]; !ok {
		return nil, at(".driver", "source %q (type sql) needs driver: postgres, mysql, clickhouse or sqlite, not %q", src.Name, s.Driver)
	}
	switch {
	case s.DSNEnv == "" && s.DSNFile == "":
		return nil, at("", "source %q (type sql) needs dsn_env (an environment variable) or dsn_file (a file) holding the DSN; a DSN is never written in the catalogue", src.Name)
	case s.DSNEnv != "" && s.DSNFile != "":
		return nil, at(".dsn_file", "set dsn_env or dsn_file, not both")
	}
	if len(s.Measurements) == 0 {
		return nil, at(".measurements", "source %q (type sql) has no measurements", src.Name)
	}
	if s.MaxSeries == 0 {
		s.MaxSeries = DefaultMaxSeries
	}
	if s.MaxSeries < 0 || s.MaxSeries > 100000 {
		return nil, at(".max_series", "max_series must be between 1 and 100000")
	}
	if s.MaxOpenConns == 0 {
		s.MaxOpenConns = DefaultMaxOpenConns
	}
	if s.MaxOpenConns < 0 || s.MaxOpenConns > 64 {
		return nil, at(".max_open_conns", "max_open_conns must be between 1 and 64")
	}
	c := &Collector{name: src.Name, driver: s.Driver, s: s, dsnEnv: s.DSNEnv, dsnFile: s.DSNFile, now: time.Now, timeout: src.Timeout}
	if c.dsnFile != "" && !filepath.IsAbs(c.dsnFile) {
		c.dsnFile = filepath.Join(env.BaseDir, c.dsnFile)
	}
	if s.StatementTimeout != "" {
		d, err := model.ParseDuration(s.StatementTimeout)
		if err != nil || d <= 0 {
			return nil, at(".statement_timeout", "statement_timeout %q is not a positive duration", s.StatementTimeout)
		}
		c.timeout = time.Duration(d)
	}
	if c.timeout <= 0 {
		c.timeout = 30 * time.Second
	}
	window := DefaultWindow
	if s.Window != "" {
		d, err := model.ParseDuration(s.Window)
		if err != nil || d <= 0 {
			return nil, at(".window", "window %q is not a positive duration", s.Window)
		}
		window = time.Duration(d)
	}
	names := map[string]bool{}
	for i, m := range s.Measurements {
		p := fmt.Sprintf(".measurements[%d]", i)
		if !kpi.MeasurementName.MatchString(m.Name) {
			return nil, at(p+".name", "measurement name %q is not [a-z_][a-z0-9_]*", m.Name)
		}
		if strings.TrimSpace(m.Query) == "" {
			return nil, at(p+".query", "measurement %s has no query", m.Name)
		}
		q := query{name: m.Name, window: window}
		if m.Window != "" {
			d, err := model.ParseDuration(m.Window)
			if err != nil || d <= 0 {
				return nil, at(p+".window", "window %q is not a positive duration", m.Window)
			}
			q.window = time.Duration(d)
		}
		switch {
		case m.Value != "" && len(m.Values) > 0:
			return nil, at(p+".values", "set value or values, not both")
		case len(m.Values) > 0:
			q.values = m.Values
			for _, v := range m.Values {
				q.names = append(q.names, m.Name+"_"+strings.ToLower(v))
			}
		default:
			q.values = []string{m.Value}
			if m.Value == "" {
				q.values = []string{"value"}
			}
			q.names = []string{m.Name}
		}
		for j, n := range q.names {
			if !kpi.MeasurementName.MatchString(n) || names[n] {
				return nil, at(p+".values", "measurement name %q (from value column %q) is not a unique [a-z_][a-z0-9_]*", n, q.values[j])
			}
			names[n] = true
		}
		var err error
		if q.sql, q.params, err = Bind(m.Query, s.Driver); err != nil {
			return nil, at(p+".query", "%v", err)
		}
		c.queries = append(c.queries, q)
	}
	return c, nil
}

// Bind rewrites the query's :from and :to into the driver's placeholders
// ($1, $2 for PostgreSQL, numbered by first appearance; ? for the others)
// and returns, per placeholder (per number for PostgreSQL), which parameter
// it takes (0 :from, 1 :to). Quoted strings,
// quoted identifiers, comments and PostgreSQL's :: casts are left alone.
func Bind(q, driver string) (string, []int, error) {
	var b strings.Builder
	var params []int
	for i := 0; i < len(q); {
		ch := q[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			j := i + 1
			for j < len(q) {
				if q[j] == ch {
					if j+1 < len(q) && q[j+1] == ch { // a doubled quote
						j += 2
						continue
					}
					break
				}
				if q[j] == '\\' && ch != '"' && driver == "mysql" {
					j++
				}
				j++
			}
			if j >= len(q) {
				return "", nil, fmt.Errorf("unterminated %c quote in the query", ch)
			}
			b.WriteString(q[i : j+1])
			i = j + 1
		case ch == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j
		case ch == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return "", nil, errors.New("unterminated /* comment in the query")
			}
			b.WriteString(q[i : i+2+j+2])
			i += 2 + j + 2
		case ch == ':' && i+1 < len(q) && q[i+1] == ':':
			b.WriteString("::")
			i += 2
		case ch == ':':
			rest := q[i+1:]
			name := rest[:len(rest)-len(strings.TrimLeft(rest, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"))]
			var p int
			switch name {
			case "from":
				p = 0
			case "to":
				p = 1
			default:
				b.WriteByte(ch)
				i++
				continue
			}
			if driver == "postgres" {
				// Numbered in order of first appearance; each number may
				// recur.
				n := slices.Index(params, p)
				if n < 0 {
					params = append(params, p)
					n = len(params) - 1
				}
				fmt.Fprintf(&b, "$%d", n+1)
			} else {
				b.WriteByte('?')
				params = append(params, p)
			}
			i += 1 + len(name)
		default:
			b.WriteByte(ch)
			i++
		}
	}
	return b.String(), params, nil
}

// readDSN reads the DSN, registering it and its password as secrets.
func (c *Collector) readDSN() (string, error) {
	var dsn string
	if c.dsnEnv != "" {
		dsn = strings.TrimSpace(os.Getenv(c.dsnEnv))
		if dsn == "" {
			return "", fmt.Errorf("environment variable %s (dsn_env) is not set", c.dsnEnv)
		}
	} else {
		b, err := os.ReadFile(c.dsnFile)
		if err != nil {
			return "", fmt.Errorf("dsn_file: %w", redact.Err(err))
		}
		dsn = strings.TrimSpace(string(b))
		if dsn == "" {
			return "", fmt.Errorf("dsn_file %s is empty", c.dsnFile)
		}
	}
	redact.Register(dsn)
	for _, pw := range Passwords(dsn) {
		redact.Register(pw)
	}
	return dsn, nil
}

var kvPassword = regexp.MustCompile(`(?i)(?:^|[\s&?;])password=('(?:[^'\\]|\\.)*'|[^\s&;]+)`)

// Passwords finds the passwords a DSN holds, in the forms the drivers take:
// URLs (postgres://u:pw@h/db, clickhouse://…), key=value pairs
// (password=pw) and MySQL's user:pw@tcp(host)/db.
func Passwords(dsn string) []string {
	var out []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw)
		}
		if pw := u.Query().Get("password"); pw != "" {
			out = append(out, pw)
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		out = append(out, strings.Trim(m[1], "'"))
	}
	if at := strings.LastIndex(dsn, "@"); at > 0 && !strings.Contains(dsn[:at], "://") {
		if colon := strings.Index(dsn[:at], ":"); colon >= 0 {
			out = append(out, dsn[colon+1:at])
		}
	}
	return out
}

// open returns the pool, opening it (again, when the DSN changed).
func (c *Collector) open() (*sql.DB, error) {
	dsn, err := c.readDSN()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db != nil && dsn == c.dsn {
		return c.db, nil
	}
	if c.db != nil {
		_ = c.db.Close() // the pool of the old DSN: nothing to do about its error
	}
	driverDSN := DriverDSN(c.driver, dsn, c.timeout)
	db, err := sql.Open(Drivers[c.driver], driverDSN)
	if err != nil {
		return nil, fmt.Errorf("opening the %s connection: %w", c.driver, redact.Err(err))
	}
	db.SetMaxOpenConns(c.s.MaxOpenConns)
	db.SetMaxIdleConns(c.s.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	c.db, c.dsn, c.mysqlChecked = db, dsn, false
	return db, nil
}

// DriverDSN is the DSN the driver gets: SQLite connections query-only
// (a write fails in SQLite itself); ClickHouse, which has no read-only
// transactions, readonly=2 sessions (reads, and settings such as the
// timeout) with the statement timeout as max_execution_time.
func DriverDSN(driver, dsn string, timeout time.Duration) string {
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	switch driver {
	case "sqlite":
		return dsn + sep + "_query_only=1"
	case "clickhouse":
		return dsn + sep + "readonly=2&max_execution_time=" + strconv.Itoa(int(math.Ceil(timeout.Seconds())))
	}
	return dsn
}

// Close closes the source's connection pool.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.db == nil {
		return nil
	}
	err := c.db.Close()
	c.db = nil
	return err
}

// Collect runs every query. A NULL value is no value (never 0); a query
// that fails, or returns more than max_series rows, fails the run, and the
// source keeps its last good values.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	db, err := c.open()
	if err != nil {
		return nil, err
	}
	to := c.now().UTC()
	var out []kpi.Measurement
	for _, q := range c.queries {
		ms, err := c.run(ctx, db, q, to)
		if err != nil {
			return nil, fmt.Errorf("measurement %s: %w", q.name, redact.Err(err))
		}
		out = append(out, ms...)
	}
	return out, nil
}

// run runs one query in its own read-only transaction.
func (c *Collector) run(ctx context.Context, db *sql.DB, q query, to time.Time) ([]kpi.Measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout+5*time.Second) // the server's timeout first
	defer cancel()
	args := make([]any, len(q.params))
	for i, p := range q.params {
		t := to
		if p == 0 {
			t = to.Add(-q.window)
		}
		if c.driver == "sqlite" || c.driver == "clickhouse" {
			// SQLite has no time type: the text form of datetime(), which
			// ClickHouse also takes (its driver's time parameters need a
			// newer server than some still run).
			args[i] = t.Format(time.DateTime)
		} else {
			args[i] = t
		}
	}
	var rows *sql.Rows
	var tx *sql.Tx
	var err error
	switch c.driver {
	case "clickhouse":
		rows, err = db.QueryContext(ctx, q.sql, args...)
	default:
		tx, err = db.BeginTx(ctx, &sql.TxOptions{ReadOnly: c.driver != "sqlite"})
		if err != nil {
			return nil, err
		}
		defer func() { _ = tx.Rollback() }() // read only: nothing to commit
		if err := c.limit(ctx, tx); err != nil {
			return nil, err
		}
		rows, err = tx.QueryContext(ctx, q.sql, args...)
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // read checks rows.Err
	return c.read(rows, q)
}

// limit sets the server-side statement timeout inside the transaction.
func (c *Collector) limit(ctx context.Context, tx *sql.Tx) error {
	ms := c.timeout.Milliseconds()
	switch c.driver {
	case "postgres":
		_, err := tx.ExecContext(ctx, fmt.Sprintf("SET LOCAL statement_timeout = %d", ms))
		return err
	case "mysql":
		c.mu.Lock()
		checked, maria := c.mysqlChecked, c.mariaDB
		c.mu.Unlock()
		if !checked {
			var v string
			if err := tx.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
				return err
			}
			maria = strings.Contains(strings.ToLower(v), "mariadb")
			c.mu.Lock()
			c.mysqlChecked, c.mariaDB = true, maria
			c.mu.Unlock()
		}
		if maria {
			_, err := tx.ExecContext(ctx, fmt.Sprintf("SET SESSION max_statement_time = %g", float64(ms)/1000))
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf("SET SESSION max_execution_time = %d", ms))
		return err
	}
	return nil
}

// read turns the rows into measurements: the value columns as values, the
// other columns as labels.
func (c *Collector) read(rows *sql.Rows, q query) ([]kpi.Measurement, error) {
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	valueAt := make([]int, len(q.values))
	for i := range valueAt {
		valueAt[i] = -1
	}
	isValue := make([]bool, len(cols))
	for i, v := range q.values {
		for j, col := range cols {
			if strings.EqualFold(col, v) {
				valueAt[i], isValue[j] = j, true
			}
		}
		if valueAt[i] < 0 {
			return nil, fmt.Errorf("the query has no column %q (its columns: %s)", v, strings.Join(cols, ", "))
		}
	}
	labelNames := make([]string, len(cols))
	for j, col := range cols {
		if isValue[j] {
			continue
		}
		name := strings.ToLower(col)
		if !kpi.MeasurementName.MatchString(name) || kpi.ReservedLabel(name) {
			return nil, fmt.Errorf("column %q cannot be a label: name it [a-z_][a-z0-9_]*, not one the exporter sets (source, kpi, domain, job, instance, collector)", col)
		}
		labelNames[j] = name
	}
	raw := make([]any, len(cols))
	dest := make([]any, len(cols))
	for i := range raw {
		dest[i] = &raw[i]
	}
	var out []kpi.Measurement
	seen := map[string]bool{}
	n := 0
	for rows.Next() {
		if n++; n > c.s.MaxSeries {
			return nil, fmt.Errorf("the query returned more than max_series %d rows", c.s.MaxSeries)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		var ls kpi.Labels
		for j, name := range labelNames {
			if name == "" {
				continue
			}
			v, err := text(raw[j])
			if err != nil {
				return nil, fmt.Errorf("label column %s: %w", cols[j], err)
			}
			if len(v) > maxLabelBytes {
				return nil, fmt.Errorf("label column %s: a value of %d bytes, more than %d", cols[j], len(v), maxLabelBytes)
			}
			ls = append(ls, kpi.Label{Name: name, Value: v})
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
		key := ls.String()
		if seen[key] {
			return nil, fmt.Errorf("two rows with the same labels %s: add the column that tells them apart, or aggregate", key)
		}
		seen[key] = true
		for i, at := range valueAt {
			v, ok, err := number(raw[at])
			if err != nil {
				return nil, fmt.Errorf("value column %s: %w", cols[at], err)
			}
			if !ok {
				continue // NULL: no value, never 0
			}
			out = append(out, kpi.Measurement{Name: q.names[i], Labels: ls, Value: v})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// number converts a value column's value: NULL is no value.
func number(v any) (float64, bool, error) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case int64:
		return float64(x), true, nil
	case int32:
		return float64(x), true, nil
	case int:
		return float64(x), true, nil
	case uint64:
		return float64(x), true, nil
	case float64:
		return x, true, nil
	case float32:
		return float64(x), true, nil
	case bool:
		if x {
			return 1, true, nil
		}
		return 0, true, nil
	case []byte:
		return parseNumber(string(x))
	case string:
		return parseNumber(x)
	case time.Time:
		return float64(x.UnixMilli()) / 1e3, true, nil
	case fmt.Stringer: // decimals of some drivers
		return parseNumber(x.String())
	}
	return 0, false, fmt.Errorf("a %T is not a number", v)
}

func parseNumber(s string) (float64, bool, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, false, fmt.Errorf("%q is not a number", s)
	}
	return f, true, nil
}

// text converts a label column's value: NULL is the empty label.
func text(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case []byte:
		return string(x), nil
	case time.Time:
		return x.UTC().Format(time.RFC3339), nil
	case int64, int32, int, uint64, float64, float32, bool:
		return fmt.Sprint(x), nil
	case fmt.Stringer:
		return x.String(), nil
	}
	return "", fmt.Errorf("a %T cannot be a label", v)
}

package store

// The PostgreSQL backend: the state of every replica in one database.
//
// Every replica keeps the whole state in memory, as with the file backend,
// and the database is the order in which changes happen. All writes take
// one transaction-level advisory lock (the writer lock), so writes are
// serialised and their sequence numbers (change_seq) are assigned in commit
// order. A writer first catches up with the changes it has not seen (under
// the lock nothing else is written), then applies its own changes to memory
// and to the database in the same order. Readers poll for changes with a
// sequence number above the last one they saw; because of the writer lock
// no change can later appear below it. Replaying the same ordered changes,
// every replica ends with the same readings and the same history.
//
// A pushed value is committed before the push is answered (Transact). A
// write that fails puts memory back as it was before the write's changes,
// and the pending ones wait for the next write: no replica shows a value
// the database does not have.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Schema is the PostgreSQL schema the backend's tables live in.
const Schema = "kpi_exporter"

// Advisory lock keys (one bigint key space per database).
const (
	writerLockKey  int64 = 0x6b70695f77726974 // "kpi_writ": serialises writes
	migrateLockKey int64 = 0x6b70695f6d696772 // "kpi_migr": one migration at a time
)

// migrations are applied in order, each once, forward only; the database
// records the highest version applied. Never edit one that has shipped:
// add the next.
var migrations = []string{
	1: `
CREATE SEQUENCE kpi_exporter.change_seq;
CREATE TABLE kpi_exporter.readings (
	source text PRIMARY KEY,
	at_us  bigint NOT NULL,
	data   text   NOT NULL,
	seq    bigint NOT NULL
);
CREATE INDEX readings_seq ON kpi_exporter.readings (seq);
CREATE TABLE kpi_exporter.history (
	kpi  text   NOT NULL,
	t_us bigint NOT NULL,
	v    double precision NOT NULL,
	seq  bigint NOT NULL,
	PRIMARY KEY (kpi, t_us)
);
CREATE INDEX history_seq ON kpi_exporter.history (seq);
CREATE TABLE kpi_exporter.orphaned (
	key      text   PRIMARY KEY,
	since_us bigint NOT NULL
);
CREATE TABLE kpi_exporter.source_state (
	source     text   NOT NULL,
	name       text   NOT NULL,
	data       bytea  NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (source, name)
);
CREATE TABLE kpi_exporter.replicas (
	id        text PRIMARY KEY,
	host      text NOT NULL,
	started   timestamptz NOT NULL,
	heartbeat timestamptz NOT NULL,
	held      text[] NOT NULL DEFAULT '{}'
);`,
	// The backend of each replica's lease session, so that the others can end
	// the session of a replica that stopped answering (hung, or its node gone
	// without closing its connections) and free its leases.
	2: `ALTER TABLE kpi_exporter.replicas ADD COLUMN lease_pid integer;`,
}

// SchemaVersion is the schema version this binary migrates to.
func SchemaVersion() int { return len(migrations) - 1 }

// PostgresOptions configure OpenPostgres.
type PostgresOptions struct {
	// Timeout bounds every database operation of the store; 0 means 10s.
	Timeout time.Duration
	// MaxConns bounds the connection pool; 0 means 4.
	MaxConns int32
}

type pgBackend struct {
	pool    *pgxpool.Pool
	timeout time.Duration

	// Owned by the store's callers (the app's loop); guarded by Store.mu
	// where the HTTP handlers could see them.
	cursor  int64
	resync  bool
	pending pending
	// writes is set while a sync applies changes (the pending ones, then
	// Transact's fn's): they are collected for the transaction under way.
	writes *writeSet

	healthy  atomic.Bool
	lastSync atomic.Int64 // Unix ms of the last successful exchange
	errMu    sync.Mutex
	lastErr  error
}

type pending struct {
	readings map[string]kpi.Reading
	records  []idPoint
	marks    map[string]time.Time // orphan marks to insert
	unmarks  map[string]bool      // orphan marks to delete (adopted)
	drops    []string             // "source/<name>" or "kpi/<id>": state to delete
	compact  time.Time
}

type idPoint struct {
	id string
	p  kpi.Point
}

func (p *pending) empty() bool {
	return len(p.readings) == 0 && len(p.records) == 0 && len(p.marks) == 0 && len(p.unmarks) == 0 && len(p.drops) == 0 && p.compact.IsZero()
}

// OpenPostgres connects to the state database at dsn, creates or migrates
// its schema, and loads the state. It fails when the database cannot be
// reached: a replica without its database has nothing to serve.
func OpenPostgres(ctx context.Context, dsn string, o PostgresOptions) (*Store, error) {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 4
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("state database DSN: %w", redactDSNError(err))
	}
	cfg.MaxConns = o.MaxConns
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["application_name"] = "kpi_exporter"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("state database: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{readings: map[string]kpi.Reading{}, history: map[string][]kpi.Point{}, orphaned: map[string]time.Time{},
		pg: &pgBackend{pool: pool, timeout: o.Timeout, resync: true}}
	s.pg.pending = newPending()
	if err := s.pgSync(nil); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func newPending() pending {
	return pending{readings: map[string]kpi.Reading{}, marks: map[string]time.Time{}, unmarks: map[string]bool{}}
}

// redactDSNError keeps a DSN's password out of a parse error: pgx quotes
// the connection string it could not parse.
func redactDSNError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "cannot parse `"); i >= 0 {
		if j := strings.Index(msg[i+14:], "`"); j >= 0 {
			msg = msg[:i+14] + "<dsn>" + msg[i+14+j:]
		}
	}
	return errors.New(msg)
}

// Migrate creates the schema or brings it to this binary's version. It is
// safe when several replicas start at once: a session advisory lock lets
// one migrate while the others wait, and they then find nothing to do. A
// database migrated by a newer binary is refused rather than used.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("state database: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("state database: waiting for the migration lock: %w", err)
	}
	defer func() {
		// The lock ends with the session anyway; a failed unlock only
		// means the connection is gone.
		_, _ = conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", migrateLockKey)
	}()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+Schema+`;
CREATE TABLE IF NOT EXISTS `+Schema+`.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("state database: creating schema %s: %w", Schema, err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+Schema+`.schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("state database: reading the schema version: %w", err)
	}
	if have > SchemaVersion() {
		return fmt.Errorf("state database: schema version %d is newer than this kpi_exporter's %d; run the newer version (migrations are forward only)", have, SchemaVersion())
	}
	for v := have + 1; v <= SchemaVersion(); v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+Schema+`.schema_migrations (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("state database: migration %d: %w", v, err)
		}
	}
	return nil
}

// Postgres reports whether the state is kept in PostgreSQL.
func (s *Store) Postgres() bool { return s.pg != nil }

// Close releases the database connections (nothing for a file).
func (s *Store) Close() {
	if s.pg != nil {
		s.pg.pool.Close()
	}
}

// Healthy reports whether the last exchange with the state database
// succeeded (always true for a file), and its error otherwise.
func (s *Store) Healthy() (bool, error) {
	if s.pg == nil {
		return true, nil
	}
	s.pg.errMu.Lock()
	defer s.pg.errMu.Unlock()
	return s.pg.healthy.Load(), s.pg.lastErr
}

// LastSync is when the store last exchanged changes with the state
// database (zero for a file).
func (s *Store) LastSync() time.Time {
	if s.pg == nil || s.pg.lastSync.Load() == 0 {
		return time.Time{}
	}
	return time.UnixMilli(s.pg.lastSync.Load())
}

func (pg *pgBackend) setHealth(err error) {
	pg.errMu.Lock()
	pg.lastErr = err
	pg.errMu.Unlock()
	pg.healthy.Store(err == nil)
	if err == nil {
		pg.lastSync.Store(time.Now().UnixMilli()) // wallclock: when the database last answered
	}
}

func (pg *pgBackend) dirty() bool { return pg.resync || !pg.pending.empty() }

// setReading is called with Store.mu held, after memory took r.
func (pg *pgBackend) setReading(source string, r kpi.Reading) {
	if pg.writes != nil {
		pg.writes.reading(source, r)
		return
	}
	pg.pending.readings[source] = r
}

// record is called with Store.mu held. Outside a transaction the point
// waits for the next sync, which applies it in the database's order.
func (pg *pgBackend) record(s *Store, id string, p kpi.Point) {
	p.T = p.T.Truncate(time.Microsecond) // the database keeps microseconds
	if pg.writes != nil {
		if added, replaced := s.recordLocked(id, p); added {
			pg.writes.record(id, p, replaced)
		}
		return
	}
	if h := s.history[id]; len(h) > 0 && !p.T.After(h[len(h)-1].T) {
		return // the history already holds it, or newer
	}
	for i := len(pg.pending.records) - 1; i >= 0; i-- {
		if r := pg.pending.records[i]; r.id == id {
			if !p.T.After(r.p.T) {
				return
			}
			break
		}
	}
	pg.pending.records = append(pg.pending.records, idPoint{id, p})
}

func (pg *pgBackend) orphanOp(key string, since time.Time, drop bool) {
	if pg == nil {
		return
	}
	switch {
	case drop:
		pg.pending.drops = append(pg.pending.drops, key)
		delete(pg.pending.marks, key)
	case since.IsZero():
		pg.pending.unmarks[key] = true
		delete(pg.pending.marks, key)
	default:
		pg.pending.marks[key] = since
		delete(pg.pending.unmarks, key)
	}
}

// writeSet collects one transaction's writes. A history point replaced by
// a later one of the same transaction is never written, and a source's
// reading is written once, the last: a sync of many changes stays a few
// statements.
type writeSet struct {
	readings map[string]kpi.Reading
	order    []string // sources in the order of their first reading
	points   []histRow
	inserted map[histKey]int // index in points of a point of this set
	deletes  []histKey
}

type histKey struct {
	id string
	t  int64
}

type histRow struct {
	histKey
	v    float64
	dead bool
}

func newWriteSet() *writeSet {
	return &writeSet{readings: map[string]kpi.Reading{}, inserted: map[histKey]int{}}
}

func (w *writeSet) reading(source string, r kpi.Reading) {
	if _, ok := w.readings[source]; !ok {
		w.order = append(w.order, source)
	}
	w.readings[source] = r
}

func (w *writeSet) record(id string, p kpi.Point, replaced time.Time) {
	if !replaced.IsZero() {
		k := histKey{id, replaced.UnixMicro()}
		if i, ok := w.inserted[k]; ok {
			w.points[i].dead = true
			delete(w.inserted, k)
		} else {
			w.deletes = append(w.deletes, k)
		}
	}
	k := histKey{id, p.T.UnixMicro()}
	w.inserted[k] = len(w.points)
	w.points = append(w.points, histRow{histKey: k, v: p.V})
}

// queue adds the set's statements to b with sequence numbers from next on,
// in the order the changes were applied to memory, and returns the last
// number used (next-1 when none).
func (w *writeSet) queue(b *pgx.Batch, next int64) (int64, error) {
	seq := next - 1
	for _, src := range w.order {
		r := w.readings[src]
		data, err := json.Marshal(r)
		if err != nil {
			return 0, fmt.Errorf("reading of %s: %w", src, err)
		}
		seq++
		// A late write of an older reading (a run that finished after its
		// source moved to another replica) never replaces a newer one.
		b.Queue(`INSERT INTO `+Schema+`.readings (source, at_us, data, seq) VALUES ($1, $2, $3, $4)
ON CONFLICT (source) DO UPDATE SET at_us = excluded.at_us, data = excluded.data, seq = excluded.seq
WHERE `+Schema+`.readings.at_us <= excluded.at_us`, src, r.At.UnixMicro(), string(data), seq)
	}
	if len(w.deletes) > 0 {
		ids, ts := make([]string, len(w.deletes)), make([]int64, len(w.deletes))
		for i, k := range w.deletes {
			ids[i], ts[i] = k.id, k.t
		}
		b.Queue(`DELETE FROM `+Schema+`.history h USING unnest($1::text[], $2::bigint[]) AS d(kpi, t_us)
WHERE h.kpi = d.kpi AND h.t_us = d.t_us`, ids, ts)
	}
	var ids []string
	var ts, seqs []int64
	var vs []float64
	for _, p := range w.points {
		if p.dead {
			continue
		}
		seq++
		ids, ts, vs, seqs = append(ids, p.id), append(ts, p.t), append(vs, p.v), append(seqs, seq)
	}
	if len(ids) > 0 {
		b.Queue(`INSERT INTO `+Schema+`.history (kpi, t_us, v, seq) SELECT * FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::bigint[])
ON CONFLICT (kpi, t_us) DO UPDATE SET v = excluded.v, seq = excluded.seq`, ids, ts, vs, seqs)
	}
	return seq, nil
}

// pgSync is one write: catch up, apply the pending changes and fn's, commit.
func (s *Store) pgSync(fn func()) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.pg.timeout)
	defer cancel()
	err := s.pgSyncCtx(ctx, fn)
	if err != nil {
		err = fmt.Errorf("state database: %w", err)
	}
	s.pg.setHealth(err)
	return err
}

func (s *Store) pgSyncCtx(ctx context.Context, fn func()) (err error) {
	pg := s.pg
	tx, err := pg.pool.Begin(ctx)
	if err != nil {
		return err // nothing happened, fn did not run
	}
	// What memory held once caught up: a failed write puts it back, so
	// that no replica shows a value the database does not have (a push
	// answered with an error must not appear). The maps' slices are never
	// changed in place, so shallow copies suffice.
	var savedReadings map[string]kpi.Reading
	var savedHistory map[string][]kpi.Point
	defer func() {
		if err == nil {
			return
		}
		_ = tx.Rollback(context.Background())
		if savedReadings != nil {
			s.mu.Lock()
			s.readings, s.history = savedReadings, savedHistory
			pg.writes = nil
			s.mu.Unlock()
		}
	}()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", writerLockKey); err != nil {
		return err
	}
	if pg.resync {
		if err := s.pgLoadAll(ctx, tx); err != nil {
			return err
		}
	} else if _, err := s.pgPull(ctx, tx); err != nil {
		return err
	}
	// Sequence numbers are taken from here on; the writer lock keeps
	// every other writer out until the commit.
	var next int64
	if err := tx.QueryRow(ctx, `SELECT nextval('`+Schema+`.change_seq')`).Scan(&next); err != nil {
		return err
	}
	p := pg.pending
	b := &pgx.Batch{}
	w := newWriteSet()
	s.mu.Lock()
	savedReadings, savedHistory = make(map[string]kpi.Reading, len(s.readings)), make(map[string][]kpi.Point, len(s.history))
	for k, v := range s.readings {
		savedReadings[k] = v
	}
	for k, v := range s.history {
		savedHistory[k] = v[:len(v):len(v)]
	}
	for src, r := range p.readings {
		if old, ok := s.readings[src]; ok && old.At.After(r.At) {
			continue
		}
		s.readings[src] = r
		w.reading(src, r)
	}
	for _, r := range p.records {
		if added, replaced := s.recordLocked(r.id, r.p); added {
			w.record(r.id, r.p, replaced)
		}
	}
	for key, since := range p.marks {
		b.Queue(`INSERT INTO `+Schema+`.orphaned (key, since_us) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, key, since.UnixMicro())
	}
	for key := range p.unmarks {
		b.Queue(`DELETE FROM `+Schema+`.orphaned WHERE key = $1`, key)
	}
	for _, key := range p.drops {
		kind, name, _ := strings.Cut(key, "/")
		if kind == "source" {
			b.Queue(`DELETE FROM `+Schema+`.readings WHERE source = $1`, name)
			b.Queue(`DELETE FROM `+Schema+`.source_state WHERE source = $1`, name)
		} else {
			b.Queue(`DELETE FROM `+Schema+`.history WHERE kpi = $1`, name)
		}
		b.Queue(`DELETE FROM `+Schema+`.orphaned WHERE key = $1`, key)
	}
	if !p.compact.IsZero() {
		fineFrom, keepFrom := p.compact.Add(-FineSpan).UnixMicro(), p.compact.Add(-Retention).UnixMicro()
		b.Queue(`DELETE FROM `+Schema+`.history WHERE t_us < $1`, keepFrom)
		// Older than the fine span: the last point of each UTC day stays.
		b.Queue(`DELETE FROM `+Schema+`.history h WHERE h.t_us < $1 AND EXISTS (
	SELECT 1 FROM `+Schema+`.history n WHERE n.kpi = h.kpi AND n.t_us > h.t_us AND n.t_us < $1
	AND floor(n.t_us / 86400e6) = floor(h.t_us / 86400e6))`, fineFrom)
	}
	pg.writes = w
	s.mu.Unlock()
	if fn != nil {
		fn()
	}
	s.mu.Lock()
	pg.writes = nil
	s.mu.Unlock()
	last, err := w.queue(b, next)
	if err != nil {
		return err
	}
	// The numbers used are taken; the next writer continues after them.
	b.Queue(`SELECT setval('`+Schema+`.change_seq', $1)`, max(last, next))
	if last >= next {
		// Delivered at the commit: the other replicas refresh at once
		// instead of at their next poll.
		b.Queue(`SELECT pg_notify($1, '')`, notifyChannel)
	}
	res := tx.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := res.Exec(); err != nil {
			_ = res.Close()
			return err
		}
	}
	if err := res.Close(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	pg.cursor = max(last, next)
	pg.pending = newPending()
	return nil
}

// notifyChannel is the LISTEN/NOTIFY channel a commit with changes
// notifies.
const notifyChannel = "kpi_exporter_changes"

// Listen calls changed whenever another replica (or this one) commits
// changes, until ctx is done: a connection of its own LISTENs, and is
// opened again after a failure. Polling (Refresh on a timer) stays the
// fallback, so a lost notification only delays a change to the next poll.
func (s *Store) Listen(ctx context.Context, changed func()) {
	if s.pg == nil {
		return
	}
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, s.pg.pool.Config().ConnConfig)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+notifyChannel); err == nil {
				changed() // what was committed while not listening
				for {
					if _, err = conn.WaitForNotification(ctx); err != nil {
						break
					}
					changed()
				}
			}
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = conn.Close(closeCtx)
			cancel()
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// pullLimit bounds the changes read by one query.
const pullLimit = 20000

// pgPull applies the changes written since the cursor, in their order.
func (s *Store) pgPull(ctx context.Context, q querier) (changed bool, err error) {
	for {
		rows, err := q.Query(ctx, `SELECT kind, key, t, data, v, seq FROM (
	SELECT 0 AS kind, source AS key, at_us AS t, data, 0::float8 AS v, seq FROM `+Schema+`.readings WHERE seq > $1
	UNION ALL
	SELECT 1, kpi, t_us, '', v, seq FROM `+Schema+`.history WHERE seq > $1) c
ORDER BY seq LIMIT `+fmt.Sprint(pullLimit), s.pg.cursor)
		if err != nil {
			return changed, err
		}
		type change struct {
			kind int
			key  string
			t    int64
			data string
			v    float64
			seq  int64
		}
		var cs []change
		for rows.Next() {
			var c change
			if err := rows.Scan(&c.kind, &c.key, &c.t, &c.data, &c.v, &c.seq); err != nil {
				rows.Close()
				return changed, err
			}
			cs = append(cs, c)
		}
		if err := rows.Err(); err != nil {
			return changed, err
		}
		s.mu.Lock()
		for _, c := range cs {
			s.pg.cursor = c.seq
			if c.kind == 1 {
				if added, _ := s.recordLocked(c.key, kpi.Point{T: time.UnixMicro(c.t).UTC(), V: c.v}); added {
					changed = true
				}
				continue
			}
			var r kpi.Reading
			if json.Unmarshal([]byte(c.data), &r) != nil {
				continue // not ours to repair; the writer's next reading replaces it
			}
			if old, ok := s.readings[c.key]; ok && old.At.After(r.At) {
				continue
			}
			s.readings[c.key] = r
			changed = true
		}
		s.mu.Unlock()
		if len(cs) < pullLimit {
			return changed, nil
		}
	}
}

// pgLoadAll replaces memory with the database's state.
func (s *Store) pgLoadAll(ctx context.Context, q querier) error {
	readings := map[string]kpi.Reading{}
	rows, err := q.Query(ctx, `SELECT source, data FROM `+Schema+`.readings`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var src, data string
		if err := rows.Scan(&src, &data); err != nil {
			rows.Close()
			return err
		}
		var r kpi.Reading
		if json.Unmarshal([]byte(data), &r) == nil {
			readings[src] = r
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	history := map[string][]kpi.Point{}
	rows, err = q.Query(ctx, `SELECT kpi, t_us, v FROM `+Schema+`.history ORDER BY kpi, t_us`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		var t int64
		var v float64
		if err := rows.Scan(&id, &t, &v); err != nil {
			rows.Close()
			return err
		}
		history[id] = append(history[id], kpi.Point{T: time.UnixMicro(t).UTC(), V: v})
	}
	if err := rows.Err(); err != nil {
		return err
	}
	orphaned, err := loadOrphaned(ctx, q)
	if err != nil {
		return err
	}
	var last int64
	var called bool
	if err := q.QueryRow(ctx, `SELECT last_value, is_called FROM `+Schema+`.change_seq`).Scan(&last, &called); err != nil {
		return err
	}
	s.mu.Lock()
	s.readings, s.history, s.orphaned = readings, history, orphaned
	s.mu.Unlock()
	s.pg.cursor = 0
	if called {
		s.pg.cursor = last
	}
	s.pg.resync = false
	return nil
}

func loadOrphaned(ctx context.Context, q querier) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	rows, err := q.Query(ctx, `SELECT key, since_us FROM `+Schema+`.orphaned`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var since int64
		if err := rows.Scan(&key, &since); err != nil {
			return nil, err
		}
		out[key] = time.UnixMicro(since).UTC()
	}
	return out, rows.Err()
}

// pgLoadOrphaned takes the orphan marks of the database (another replica's
// included), keeping the marks not yet written.
func (s *Store) pgLoadOrphaned() {
	ctx, cancel := context.WithTimeout(context.Background(), s.pg.timeout)
	defer cancel()
	got, err := loadOrphaned(ctx, s.pg.pool)
	if err != nil {
		return // the marks in memory stand in
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, since := range s.pg.pending.marks {
		got[key] = since
	}
	for key := range s.pg.pending.unmarks {
		delete(got, key)
	}
	s.orphaned = got
}

// Refresh takes the changes other replicas wrote since the last exchange
// and reports whether any arrived. It reads without the writer lock; after
// a failed write it reloads everything (under the lock). Nothing for a file.
func (s *Store) Refresh() (bool, error) {
	if s.pg == nil {
		return false, nil
	}
	if s.pg.resync {
		err := s.pgSync(nil)
		return err == nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.pg.timeout)
	defer cancel()
	changed, err := s.pgPull(ctx, s.pg.pool)
	if err != nil {
		err = fmt.Errorf("state database: %w", err)
	}
	s.pg.setHealth(err)
	return changed, err
}

// Blobs is where a source keeps its own progress (collectors.StateStore).
type Blobs interface {
	Load(name string) ([]byte, error)
	Save(name string, data []byte) error
}

// SourceState returns the rows of the state database where a source keeps
// its own progress; nil for a file store, whose sources keep theirs in
// sub-directories of the state directory.
func (s *Store) SourceState(source string) Blobs {
	if s.pg == nil {
		return nil
	}
	return pgBlobs{pg: s.pg, source: source}
}

type pgBlobs struct {
	pg     *pgBackend
	source string
}

// MaxSourceStateBytes bounds one blob of a source's state in the database.
const MaxSourceStateBytes = 256 << 20

func (b pgBlobs) Load(name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*b.pg.timeout)
	defer cancel()
	var data []byte
	err := b.pg.pool.QueryRow(ctx, `SELECT data FROM `+Schema+`.source_state WHERE source = $1 AND name = $2`, b.source, name).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("source %s: state %s: %w", b.source, name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("source %s: state %s: %w", b.source, name, err)
	}
	return data, nil
}

func (b pgBlobs) Save(name string, data []byte) error {
	if len(data) > MaxSourceStateBytes {
		return fmt.Errorf("source %s: state %s is %d bytes, more than the %d the database keeps", b.source, name, len(data), MaxSourceStateBytes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*b.pg.timeout)
	defer cancel()
	_, err := b.pg.pool.Exec(ctx, `INSERT INTO `+Schema+`.source_state (source, name, data) VALUES ($1, $2, $3)
ON CONFLICT (source, name) DO UPDATE SET data = excluded.data, updated_at = now()`, b.source, name, data)
	if err != nil {
		return fmt.Errorf("source %s: saving state %s: %w", b.source, name, err)
	}
	return nil
}

// sourceLockKey is the advisory lock key of a source's lease.
func sourceLockKey(source string) int64 {
	h := fnv.New64a()
	h.Write([]byte("kpi_exporter source " + source))
	return int64(h.Sum64())
}

// DSNSecrets returns what of a DSN must never be shown: the DSN itself and
// its password.
func DSNSecrets(dsn string) []string {
	if dsn == "" {
		return nil
	}
	out := []string{dsn}
	if cfg, err := pgx.ParseConfig(dsn); err == nil && cfg.Password != "" {
		out = append(out, cfg.Password)
	}
	return out
}

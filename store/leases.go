package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Leases decides which polled sources this replica runs, so that each runs
// on exactly one replica at a time. A source's lease is a session-level
// advisory lock on a connection of its own: PostgreSQL releases it the
// moment that session ends (the replica stopped, was killed, or lost the
// database), and no other replica can hold it meanwhile.
//
// Every tick a replica writes its heartbeat, counts the replicas alive,
// and takes free sources up to its fair share (the sources divided by the
// replicas alive, rounded up), in an order of its own so that replicas
// starting together pick different sources. A replica over its share (one
// has joined) lets the surplus go: first it stops running them, at the
// next tick it unlocks them. When a replica dies its locks are free at
// once; the others take them at their next tick, or once its heartbeat
// has expired when they are at their share.
type Leases struct {
	pg   *pgBackend
	id   string
	host string
	// Tick is how often leases are renewed and taken; TTL is how long a
	// replica counts as alive after its last heartbeat.
	Tick, TTL time.Duration

	mu        sync.Mutex
	want      []string
	held      map[string]bool
	releasing []string
	conn      *pgx.Conn
	status    LeaseStatus
	changes   chan map[string]bool
	// published is status as of the end of the last tick: Status never
	// waits for a tick that waits for the database.
	published atomic.Pointer[LeaseStatus]
}

// LeaseStatus is what a replica knows of the coordination.
type LeaseStatus struct {
	// Connected: the lease connection works (the replica may collect).
	Connected bool
	Err       error
	Replicas  int // alive, this one included
	Held      []string
	Sources   []string
	FairShare int
}

// leaseApplication names the lease sessions in pg_stat_activity.
const leaseApplication = "kpi_exporter lease"

// DefaultLeaseTick is how often a replica renews its heartbeat and takes
// free sources.
const DefaultLeaseTick = 2 * time.Second

// NewLeases returns the lease keeper of replica id (any unique name; the
// pod name in Kubernetes). Nil for a file store: every source runs here.
func (s *Store) NewLeases(id, host string) *Leases {
	if s.pg == nil {
		return nil
	}
	return &Leases{pg: s.pg, id: id, host: host, Tick: DefaultLeaseTick, TTL: 3 * DefaultLeaseTick,
		held: map[string]bool{}, changes: make(chan map[string]bool, 1)}
}

// SetSources sets the polled sources to share (the catalogue's, on load and
// reload).
func (l *Leases) SetSources(names []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.want = slices.Clone(names)
	sort.Strings(l.want)
}

// Changes delivers the set of held sources whenever it changes; only the
// latest set waits.
func (l *Leases) Changes() <-chan map[string]bool { return l.changes }

// Status returns the coordination's state at the last tick.
func (l *Leases) Status() LeaseStatus {
	if st := l.published.Load(); st != nil {
		return *st
	}
	return LeaseStatus{}
}

// publish is called with l.mu held.
func (l *Leases) publish() {
	st := l.status
	st.Held = slices.Clone(st.Held)
	st.Sources = slices.Clone(l.want)
	l.published.Store(&st)
}

// Run keeps the leases until ctx is done, then releases them and removes
// the replica's heartbeat, so that the others take over at once.
func (l *Leases) Run(ctx context.Context) {
	t := time.NewTicker(l.Tick)
	defer t.Stop()
	for {
		l.tick(ctx)
		select {
		case <-ctx.Done():
			l.stop()
			return
		case <-t.C:
		}
	}
}

// stop ends the leases at once: it unlocks everything by ending the
// session and removes the heartbeat, so that the others take over now.
func (l *Leases) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, _ = l.conn.Exec(ctx, `DELETE FROM `+Schema+`.replicas WHERE id = $1`, l.id)
		_ = l.conn.Close(ctx) // ends the session: every lock is free
		l.conn = nil
	}
	l.setHeld(map[string]bool{})
	l.status.Connected = false
	l.publish()
}

// setHeld is called with l.mu held.
func (l *Leases) setHeld(h map[string]bool) {
	same := len(h) == len(l.held)
	for k := range h {
		same = same && l.held[k]
	}
	l.held = h
	l.status.Held = l.status.Held[:0]
	for k := range h {
		l.status.Held = append(l.status.Held, k)
	}
	sort.Strings(l.status.Held)
	if same {
		return
	}
	out := make(map[string]bool, len(h))
	for k := range h {
		out[k] = true
	}
	select {
	case <-l.changes: // an older set nobody read yet
	default:
	}
	l.changes <- out
}

func (l *Leases) fail(err error) {
	l.status.Connected, l.status.Err = false, err
	if l.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = l.conn.Close(ctx)
		cancel()
		l.conn = nil
	}
	// Locks die with the session; stop collecting at once.
	l.releasing = nil
	l.setHeld(map[string]bool{})
}

func (l *Leases) tick(parent context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.publish()
	ctx, cancel := context.WithTimeout(parent, max(l.Tick, time.Second))
	defer cancel()
	if l.conn == nil {
		cfg := l.pg.pool.Config().ConnConfig.Copy()
		cfg.RuntimeParams["application_name"] = leaseApplication
		// The server notices a peer gone without a word (a node lost) within
		// about 20 s instead of the system's two hours, and ends the session
		// and its locks.
		cfg.RuntimeParams["tcp_keepalives_idle"] = "10"
		cfg.RuntimeParams["tcp_keepalives_interval"] = "3"
		cfg.RuntimeParams["tcp_keepalives_count"] = "3"
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			l.fail(fmt.Errorf("lease connection: %w", err))
			return
		}
		l.conn = conn
	}
	held := make([]string, 0, len(l.held))
	for k := range l.held {
		held = append(held, k)
	}
	sort.Strings(held)
	var alive int
	err := l.conn.QueryRow(ctx, `WITH hb AS (
	INSERT INTO `+Schema+`.replicas (id, host, started, heartbeat, held, lease_pid) VALUES ($1, $2, now(), now(), $3, pg_backend_pid())
	ON CONFLICT (id) DO UPDATE SET heartbeat = now(), held = $3, host = $2, lease_pid = pg_backend_pid()
	RETURNING 1)
SELECT 1 + count(*) FROM `+Schema+`.replicas WHERE id <> $1 AND heartbeat > now() - $4::interval`,
		l.id, l.host, held, fmt.Sprintf("%d milliseconds", l.TTL.Milliseconds())).Scan(&alive)
	if err != nil {
		l.fail(fmt.Errorf("lease heartbeat: %w", err))
		return
	}
	l.status.Connected, l.status.Err, l.status.Replicas = true, nil, alive
	// Long-dead replicas' rows are only clutter.
	_, _ = l.conn.Exec(ctx, `DELETE FROM `+Schema+`.replicas WHERE heartbeat < now() - interval '1 day'`)
	// A replica whose heartbeat expired while its lease session lives (the
	// process hung, or its node vanished and the server has not noticed)
	// still holds its locks: its session is ended, which frees them. It
	// finds out at its next tick, stops its sources and joins again.
	_, _ = l.conn.Exec(ctx, `SELECT pg_terminate_backend(r.lease_pid) FROM `+Schema+`.replicas r
JOIN pg_stat_activity a ON a.pid = r.lease_pid AND a.application_name = $3
WHERE r.id <> $1 AND r.heartbeat < now() - $2::interval`, l.id, fmt.Sprintf("%d milliseconds", l.TTL.Milliseconds()), leaseApplication)

	next := make(map[string]bool, len(l.held))
	for k := range l.held {
		next[k] = true
	}
	// Surplus let go at the last tick is unlocked now that its runs stopped.
	for _, src := range l.releasing {
		if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, sourceLockKey(src)); err != nil {
			l.fail(fmt.Errorf("lease release: %w", err))
			return
		}
	}
	l.releasing = nil
	wanted := map[string]bool{}
	for _, w := range l.want {
		wanted[w] = true
	}
	fair := 0
	if len(l.want) > 0 {
		fair = int(math.Ceil(float64(len(l.want)) / float64(alive)))
	}
	l.status.FairShare = fair
	// Sources gone from the catalogue, then the surplus: stop now, unlock
	// at the next tick.
	order := l.preference(l.want)
	for k := range next {
		if !wanted[k] {
			delete(next, k)
			l.releasing = append(l.releasing, k)
		}
	}
	for i := len(order) - 1; i >= 0 && len(next) > fair; i-- {
		if next[order[i]] {
			delete(next, order[i])
			l.releasing = append(l.releasing, order[i])
		}
	}
	for _, src := range order {
		if len(next) >= fair {
			break
		}
		if next[src] || slices.Contains(l.releasing, src) {
			continue
		}
		var got bool
		if err := l.conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, sourceLockKey(src)).Scan(&got); err != nil {
			l.fail(fmt.Errorf("lease: %w", err))
			return
		}
		if got {
			next[src] = true
		}
	}
	l.setHeld(next)
}

// preference orders sources for this replica: by a hash of the replica and
// the source, so that replicas prefer different sources.
func (l *Leases) preference(names []string) []string {
	out := slices.Clone(names)
	rank := func(s string) uint64 {
		h := fnv.New64a()
		h.Write([]byte(l.id + "\x00" + s))
		return h.Sum64()
	}
	sort.Slice(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

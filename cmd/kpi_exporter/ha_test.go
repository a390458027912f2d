package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/internal/testdb"
)

// The replicas of issue 15: three daemon processes on loopback sharing one
// real PostgreSQL (Debian's, started by the test as an unprivileged
// process), polled sources on a fake Prometheus API that counts every
// request, and a push source.

const haSources = 6

const haPassword = "state-db-password-9f3k2"

// haInterval is the polled sources' interval; haLease the lease interval
// (a replica counts as gone after three).
const (
	haInterval = 2 * time.Second
	haLease    = 500 * time.Millisecond
)

func haCatalogue(api string) string {
	var b strings.Builder
	b.WriteString("calendar: {plan_start: 2026-01-01, launch: 2026-01-01}\nsources:\n")
	for i := range haSources {
		fmt.Fprintf(&b, "  - {name: s%d, type: prometheus, interval: %s, settings: {url: %q, queries: [{name: v, query: up}]}}\n", i, haInterval, api+"/s"+strconv.Itoa(i))
	}
	b.WriteString("  - {name: survey, type: push, interval: 24h, settings: {measurements: [score]}}\nkpis:\n")
	for i := range haSources {
		fmt.Fprintf(&b, "  - {id: k%d, name: K%d, domain: workflow, dashboard: technical, unit: count, direction: higher, source: {name: s%d, measurement: v}, targets: [{period: Q1, value: 10}]}\n", i, i, i)
	}
	for c := range 10 {
		fmt.Fprintf(&b, "  - {id: c%d, name: C%d, domain: workflow, dashboard: technical, unit: score, direction: higher, source: {name: survey, measurement: score, labels: {client: c%d}}, targets: [{period: Q1, value: 10}]}\n", c, c, c)
	}
	return b.String()
}

// fakeAPI answers Prometheus instant queries under /s<n>/ with the number
// of requests that source has made, and records when each came.
type fakeAPI struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	src, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	f.mu.Lock()
	f.times[src] = append(f.times[src], time.Now())
	n := len(f.times[src])
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[%d,"%d"]}]}}`, time.Now().Unix(), n)
}

func (f *fakeAPI) requests() map[string][]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]time.Time{}
	for k, v := range f.times {
		out[k] = append([]time.Time(nil), v...)
	}
	return out
}

type haGroup struct {
	t    *testing.T
	dir  string
	db   *testdb.Server
	api  *fakeAPI
	reps []*daemon
	ids  []string
}

func startHAGroup(t *testing.T) *haGroup {
	t.Helper()
	g := &haGroup{t: t, dir: t.TempDir(), db: testdb.Postgres(t), api: &fakeAPI{times: map[string][]time.Time{}}}
	srv := httptest.NewServer(g.api)
	t.Cleanup(srv.Close)
	writeFile(t, filepath.Join(g.dir, "kpis.yaml"), haCatalogue(srv.URL))
	writeFile(t, filepath.Join(g.dir, "tokens"), pushToken+"\n")
	// The server trusts loopback, so any password connects: the
	// replicas are given one, which must never be shown.
	writeFile(t, filepath.Join(g.dir, "dsn"), strings.Replace(g.db.DSN, "postgres@", "postgres:"+haPassword+"@", 1)+"\n")
	for i := range 3 {
		g.start(fmt.Sprintf("r%d", i))
	}
	return g
}

func (g *haGroup) start(id string) *daemon {
	d := startDaemon(g.t, g.dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DSN_FILE=dsn", "KPI_STATE_DIR=", "KPI_HA_REPLICA_ID=" + id,
		"KPI_HA_LEASE_INTERVAL=" + haLease.String(), "KPI_PUSH_TOKENS_FILE=tokens", "KPI_LOG_LEVEL=debug"})
	g.reps = append(g.reps, d)
	g.ids = append(g.ids, id)
	return d
}

var heldRE = regexp.MustCompile(`(?m)^kpi_ha_source_held\{source="(s\d+)"\} 1$`)

// held returns which replica holds each source, from their /metrics;
// t fails when one is held by two.
func (g *haGroup) held(live map[int]bool) map[string]int {
	g.t.Helper()
	out := map[string]int{}
	for i, d := range g.reps {
		if !live[i] {
			continue
		}
		for _, m := range heldRE.FindAllStringSubmatch(d.get(g.t, "/metrics"), -1) {
			if o, dup := out[m[1]]; dup {
				g.t.Fatalf("source %s held by r%d and r%d at once", m[1], o, i)
			}
			out[m[1]] = i
		}
	}
	return out
}

func (g *haGroup) waitSpread(live map[int]bool, within time.Duration) map[string]int {
	g.t.Helper()
	deadline := time.Now().Add(within)
	fair := (haSources + len(live) - 1) / len(live)
	for {
		h := g.held(live)
		per := map[int]int{}
		for _, r := range h {
			per[r]++
		}
		ok := len(h) == haSources
		for _, n := range per {
			ok = ok && n <= fair
		}
		if ok {
			return h
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("sources not spread over %v within %s: %v", live, within, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// minGap is the shortest time between two requests of one source. One
// runner's requests are an interval apart (±10 % jitter, less a little for
// a loaded machine); two runners of one source interleave, and of any two
// neighbouring gaps one is at most half the interval.
func minGap(ts []time.Time) time.Duration {
	gap := time.Duration(1<<62 - 1)
	for i := 1; i < len(ts); i++ {
		gap = min(gap, ts[i].Sub(ts[i-1]))
	}
	return gap
}

func TestHAReplicas(t *testing.T) {
	g := startHAGroup(t)
	all := map[int]bool{0: true, 1: true, 2: true}

	// Spread: every source on exactly one replica, at most two each.
	held := g.waitSpread(all, 10*time.Second)
	t.Logf("spread: %v", held)
	time.Sleep(4 * haInterval)
	for src, ts := range g.api.requests() {
		if len(ts) < 2 {
			t.Errorf("source %s ran %d times in %s", src, len(ts), 4*haInterval)
		}
		if gap := minGap(ts); gap < haInterval*6/10 {
			t.Errorf("source %s ran twice within %s: on two replicas at once", src, gap)
		}
	}

	// Every replica serves the same values, whichever replica ran the
	// source: the fake's count for k0 is the same on all three.
	// Each KPI changes every interval on the replica that runs its source;
	// the others follow within the refresh lag, so each KPI shows the same
	// value on all of them for most of every interval.
	agree := func(live map[int]bool, ids ...string) {
		t.Helper()
		for _, id := range ids {
			deadline := time.Now().Add(5 * time.Second)
			for {
				var vals []string
				same := true
				for i := range g.reps {
					if !live[i] {
						continue
					}
					v := kpiValues(t, g.reps[i], []string{id})
					vals = append(vals, v)
					same = same && v == vals[0] && !strings.HasSuffix(v, "=none")
				}
				if same {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("replicas disagree on %s: %q", id, vals)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	agree(all, "k0", "k1", "k2", "k3", "k4", "k5")

	// 1,000 pushes from ten clients spread over the replicas; r-victim is
	// killed after a third of them.
	victim := held["s0"]
	heldBefore := held
	survivors := map[int]bool{}
	for i := range all {
		if i != victim {
			survivors[i] = true
		}
	}
	var killed atomic.Bool
	var sent, retried atomic.Int64
	var killedAt time.Time
	acked := make([][]int, 10)
	base := time.Now().Add(-101 * time.Hour).Truncate(time.Second) // the last value an hour old: fresh
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for c := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				if sent.Add(1) == 333 {
					killedAt = time.Now()
					g.reps[victim].stop(t, syscall.SIGKILL)
					killed.Store(true)
				}
				body := fmt.Sprintf(`{"values":[{"measurement":"score","labels":{"client":"c%d"},"value":%d,"timestamp":%q}]}`,
					c, i, base.Add(time.Duration(i)*time.Hour).Format(time.RFC3339))
				// The replica after the last one tried; a dead one or a
				// failed answer moves on to the next.
				for try := 0; ; try++ {
					r := (c + i + try) % 3
					if r == victim && killed.Load() {
						continue
					}
					code, reply, err := postValues(client, g.reps[r].addr, body)
					if err == nil && code == 200 {
						acked[c] = append(acked[c], i)
						break
					}
					if err == nil && code == 422 && strings.Contains(reply, "not after the series' latest value") && try > 0 {
						// The failed attempt was committed after all: the
						// value is there; it counts as acknowledged.
						acked[c] = append(acked[c], i)
						break
					}
					retried.Add(1)
					if err == nil && code != 503 {
						t.Errorf("push c%d/%d to r%d: %d %s", c, i, r, code, reply)
						return
					}
					if try > 20 {
						t.Errorf("push c%d/%d: no replica took it: %v %d %s", c, i, err, code, reply)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if !killed.Load() {
		t.Fatal("the victim was not killed")
	}
	t.Logf("1,000 pushes, r%d killed after 333: %d attempts failed and were sent again", victim, retried.Load())
	// Every acknowledged value on every survivor, once, in order.
	deadline := time.Now().Add(5 * time.Second)
	for c := range 10 {
		want := acked[c]
		if len(want) != 100 {
			t.Errorf("client c%d: %d of 100 values acknowledged", c, len(want))
		}
		for r := range survivors {
			for {
				got := historyValues(t, g.reps[r], fmt.Sprintf("c%d", c))
				if fmt.Sprint(got) == fmt.Sprint(want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("r%d: history of c%d has %d values, want the %d acknowledged ones once each\n got %v\nwant %v", r, c, len(got), len(want), got, want)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}

	// The push source's reading holds every client's last value: no
	// replica wrote the reading from a stale copy of it.
	for r := range survivors {
		m := g.reps[r].get(t, "/metrics")
		for c := range 10 {
			if want := fmt.Sprintf(`kpi_value{domain="workflow",kpi="c%d"} 99`, c); !strings.Contains(m, want) {
				t.Errorf("r%d: want %s\n%s", r, want, grep(m, fmt.Sprintf(`kpi="c%d"`, c)))
			}
		}
	}

	// The victim's sources moved: within one interval plus the lease TTL
	// (three lease intervals) and a tick of the survivors.
	bound := haInterval + 4*haLease + time.Second
	held = g.waitSpread(survivors, bound+5*time.Second)
	for src, r := range held {
		if r == victim {
			t.Errorf("source %s still shown on the killed replica", src)
		}
	}
	time.Sleep(2 * haInterval)
	reqs := g.api.requests()
	for src, r := range heldBefore {
		if r != victim {
			continue
		}
		for _, at := range reqs[src] {
			if at.After(killedAt) {
				t.Logf("source %s (on the killed r%d) ran again %s after the kill", src, victim, at.Sub(killedAt).Round(time.Millisecond))
				break
			}
		}
	}
	for src, ts := range reqs {
		if gap := minGap(ts); gap < haInterval*6/10 {
			t.Errorf("source %s ran twice within %s: on two replicas at once", src, gap)
		}
		if last := ts[len(ts)-1]; time.Since(last) > bound {
			t.Errorf("source %s last ran %s ago: not taken over within %s", src, time.Since(last), bound)
		}
	}
	agree(survivors, "k0", "k1", "k2", "k3", "k4", "k5")

	// The database restarted: the survivors say so and keep serving, then
	// recover on their own.
	g.db.Stop()
	for r := range survivors {
		waitFor(t, 10*time.Second, func() bool {
			code, _ := status(g.reps[r].addr, "/-/ready")
			return code == 503
		}, "r%d ready without its database", r)
		m := g.reps[r].get(t, "/metrics")
		if !strings.Contains(m, "kpi_ha_database_up 0") || !strings.Contains(m, `kpi_ha_role{role="disconnected"} 1`) || !strings.Contains(m, "kpi_value{") {
			t.Errorf("r%d without its database:\n%s", r, grep(m, "kpi_ha_"))
		}
		if code, reply, err := postValues(client, g.reps[r].addr, `{"values":[{"kpi":"c0","value":1}]}`); err != nil || code != 503 {
			t.Errorf("r%d accepted a push without its database: %d %s %v", r, code, reply, err)
		}
	}
	g.db.Restart(t)
	for r := range survivors {
		for what, text := range map[string]string{"logs": g.reps[r].logs.String(), "metrics": g.reps[r].get(t, "/metrics"),
			"status page": g.reps[r].get(t, "/")} {
			if strings.Contains(text, haPassword) {
				t.Errorf("r%d: the database password appears in its %s", r, what)
			}
		}
		if !strings.Contains(g.reps[r].logs.String(), "state database unreachable") {
			t.Errorf("r%d did not log the database's loss:\n%s", r, g.reps[r].logs)
		}
	}
	for r := range survivors {
		waitFor(t, 15*time.Second, func() bool {
			code, _ := status(g.reps[r].addr, "/-/ready")
			return code == 200
		}, "r%d not ready after the database came back", r)
	}
	g.waitSpread(survivors, 10*time.Second)
	anySurvivor := (victim + 1) % 3
	code, reply, err := postValues(client, g.reps[anySurvivor].addr, `{"values":[{"kpi":"c0","value":1234}]}`)
	if err != nil || code != 200 {
		t.Fatalf("push after the database came back: %d %s %v", code, reply, err)
	}
	for r := range survivors {
		waitFor(t, 5*time.Second, func() bool {
			return strings.Contains(g.reps[r].get(t, "/metrics"), `kpi_value{domain="workflow",kpi="c0"} 1234`)
		}, "r%d does not show the value pushed after the restart", r)
	}
}

func waitFor(t *testing.T, within time.Duration, ok func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf(format, args...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func status(addr, path string) (int, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func postValues(client *http.Client, addr, body string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/values", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pushToken)
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// kpiValues renders the KPIs' values as one replica's JSON API has them.
func kpiValues(t *testing.T, d *daemon, ids []string) string {
	t.Helper()
	var out []string
	for _, id := range ids {
		var v struct {
			Value *float64 `json:"value"`
		}
		if err := json.Unmarshal([]byte(d.get(t, "/api/v1/kpis/"+id)), &v); err != nil {
			t.Fatal(err)
		}
		if v.Value == nil {
			out = append(out, id+"=none")
			continue
		}
		out = append(out, fmt.Sprintf("%s=%g", id, *v.Value))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestMigrateStateCommand: values pushed to a daemon on a state directory,
// copied by `kpi_exporter migrate-state` into a state database, are what a
// replica on that database serves; a second copy is refused.
func TestMigrateStateCommand(t *testing.T) {
	dir := t.TempDir()
	d := pushDaemon(t, dir)
	hourAgo := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	if code, reply := d.push(t, pushToken, `{"values":[{"kpi":"dev_sat","value":7.2,"timestamp":"`+hourAgo+`"}]}`); code != 200 {
		t.Fatalf("push: %d %s", code, reply)
	}
	if code, reply := d.push(t, pushToken, `{"values":[{"kpi":"dev_sat","value":7.5},{"measurement":"responses","value":31}]}`); code != 200 {
		t.Fatalf("push: %d %s", code, reply)
	}
	d.stop(t, syscall.SIGTERM)

	db := testdb.Postgres(t)
	writeFile(t, filepath.Join(dir, "dsn"), strings.Replace(db.DSN, "postgres@", "postgres:"+haPassword+"@", 1)+"\n")
	migrate := func() (int, string) {
		cmd := exec.Command(binary, "migrate-state", "--state-dir", "state")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "KPI_STATE_DSN_FILE=dsn")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	code, out := migrate()
	if code != 0 || !strings.Contains(out, "1 readings, 1 KPIs with 2 history points") {
		t.Fatalf("migrate-state: exit %d\n%s", code, out)
	}
	if code, out := migrate(); code != 1 || !strings.Contains(out, "empty one only") || strings.Contains(out, haPassword) {
		t.Errorf("a second migrate-state: exit %d\n%s", code, out)
	}
	r := startDaemon(t, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DSN_FILE=dsn", "KPI_STATE_DIR=", "KPI_HA_REPLICA_ID=r0"})
	m := r.get(t, "/metrics")
	if !strings.Contains(m, `kpi_value{domain="workflow",kpi="dev_sat"} 7.5`) || !strings.Contains(m, `kpi_push_responses{source="survey"} 31`) {
		t.Errorf("the replica on the migrated database:\n%s", grep(m, "dev_sat")+grep(m, "responses"))
	}
	if got := historyValues(t, r, "dev_sat"); fmt.Sprint(got) != "[7.2 7.5]" {
		t.Errorf("history on the migrated database: %v", got)
	}
}

// historyValues returns the values of a KPI's history on one replica.
func historyValues(t *testing.T, d *daemon, id string) []float64 {
	t.Helper()
	var v struct {
		History []struct {
			V float64 `json:"v"`
		} `json:"history"`
	}
	if err := json.Unmarshal([]byte(d.get(t, "/api/v1/kpis/"+id)), &v); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, p := range v.History {
		out = append(out, p.V)
	}
	return out
}

package main

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/internal/testdb"
)

// BenchmarkReplicas runs three replicas of the binary on one PostgreSQL and,
// in the same run, one daemon on the file backend, all with a catalogue of
// 1,000 KPIs fed by pushes. It reports the push latency of each backend
// (p50, p99 of 300 sequential pushes, loopback) and the lag until a value
// pushed to one replica is served by the other two (p50, p99 of 300 values;
// the time from the push's answer to the first poll of the other replica's
// JSON API that shows it, polled every 2 ms).
//
//	go test ./cmd/kpi_exporter -run '^$' -bench Replicas -benchtime 1x -v
func BenchmarkReplicas(b *testing.B) {
	const kpis = 1000
	for range b.N {
		dir := b.TempDir()
		db := testdb.Postgres(b)
		var cat strings.Builder
		cat.WriteString("calendar: {plan_start: 2026-01-01, launch: 2026-01-01}\nsources:\n  - {name: survey, type: push, interval: 24h, settings: {measurements: [score]}}\nkpis:\n")
		for k := range kpis {
			fmt.Fprintf(&cat, "  - {id: k%04d, name: K%d, domain: workflow, dashboard: technical, unit: score, direction: higher, source: {name: survey, measurement: score, labels: {k: k%04d}}, targets: [{period: Q1, value: 10}]}\n", k, k, k)
		}
		for name, content := range map[string]string{"kpis.yaml": cat.String(), "tokens": pushToken + "\n", "dsn": db.DSN + "\n"} {
			writeFile(b, filepath.Join(dir, name), content)
		}
		var reps []*daemon
		for i := range 3 {
			reps = append(reps, startDaemon(b, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DSN_FILE=dsn", "KPI_STATE_DIR=",
				fmt.Sprintf("KPI_HA_REPLICA_ID=r%d", i), "KPI_PUSH_TOKENS_FILE=tokens"}))
		}
		file := startDaemon(b, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=" + filepath.Join(dir, "state"), "KPI_PUSH_TOKENS_FILE=tokens"})
		client := &http.Client{Timeout: 10 * time.Second}

		// Every KPI gets a first value, so that evaluations cover 1,000.
		for _, d := range []*daemon{reps[0], file} {
			var vals []string
			for k := range kpis {
				vals = append(vals, fmt.Sprintf(`{"kpi":"k%04d","value":%d}`, k, k))
			}
			if code, reply, err := postValues(client, d.addr, `{"values":[`+strings.Join(vals, ",")+`]}`); err != nil || code != 200 {
				b.Fatalf("first values: %d %s %v", code, reply, err)
			}
		}

		push := func(d *daemon, k, v int) time.Duration {
			start := time.Now()
			code, reply, err := postValues(client, d.addr, fmt.Sprintf(`{"values":[{"kpi":"k%04d","value":%d}]}`, k, v))
			if err != nil || code != 200 {
				b.Fatalf("push: %d %s %v", code, reply, err)
			}
			return time.Since(start)
		}
		var pgLat, fileLat []time.Duration
		for i := range 300 {
			pgLat = append(pgLat, push(reps[i%3], i%kpis, 10000+i))
			fileLat = append(fileLat, push(file, i%kpis, 10000+i))
		}
		var lags []time.Duration
		for i := range 300 {
			from := i % 3
			k, v := (i*7)%kpis, 20000+i
			push(reps[from], k, v)
			acked := time.Now()
			want := fmt.Sprintf(`"value": %d,`, v)
			for j := 1; j <= 2; j++ {
				d := reps[(from+j)%3]
				for {
					resp, err := client.Get("http://" + d.addr + fmt.Sprintf("/api/v1/kpis/k%04d", k))
					if err != nil {
						b.Fatal(err)
					}
					raw, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					body := string(raw)
					if strings.Contains(body, want) {
						lags = append(lags, time.Since(acked))
						break
					}
					if time.Since(acked) > 30*time.Second {
						b.Fatalf("r%d never showed k%04d=%d", (from+j)%3, k, v)
					}
					time.Sleep(2 * time.Millisecond)
				}
			}
		}
		report := func(name string, ds []time.Duration) {
			sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
			p50, p99 := ds[len(ds)/2], ds[len(ds)*99/100]
			b.Logf("%s: p50 %s, p99 %s (n=%d)", name, p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond), len(ds))
			b.ReportMetric(float64(p50.Microseconds())/1e3, name+"-p50-ms")
			b.ReportMetric(float64(p99.Microseconds())/1e3, name+"-p99-ms")
		}
		report("push-postgres", pgLat)
		report("push-file", fileLat)
		report("replica-lag", lags)
		m := reps[0].get(b, "/metrics")
		for _, line := range strings.Split(m, "\n") {
			if strings.HasPrefix(line, "kpi_exporter_snapshot_render_seconds ") {
				b.Logf("r0 %s", line)
			}
		}
	}
}

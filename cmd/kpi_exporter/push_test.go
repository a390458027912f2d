package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
)

const pushToken = "push-token-for-tests-0123456789"

const pushDaemonCatalogue = `
calendar: {plan_start: 2026-01-01, launch: 2026-01-01}
sources:
  - {name: survey, type: push, interval: 24h, settings: {measurements: [responses]}}
kpis:
  - {id: dev_sat, name: Developer Satisfaction, domain: workflow, dashboard: technical, unit: score,
     direction: higher, source: {name: survey, measurement: satisfaction}, targets: [{period: Q1, value: 8}]}
`

func pushDaemon(t *testing.T, dir string) *daemon {
	t.Helper()
	writeFile(t, filepath.Join(dir, "kpis.yaml"), pushDaemonCatalogue)
	writeFile(t, filepath.Join(dir, "tokens"), "# the survey tool\n"+pushToken+"\n")
	// A long save interval: only the push path's own write can have saved
	// the value before the kill.
	return startDaemon(t, dir, []string{"KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state", "KPI_STATE_SAVE_INTERVAL=1h",
		"KPI_PUSH_TOKENS_FILE=tokens"})
}

func (d *daemon) push(t *testing.T, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/api/v1/values", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPushSurvivesSIGKILL pushes a value, kills the daemon with SIGKILL at
// once, and checks that the restarted daemon serves it; wrong tokens are
// refused and counted.
func TestPushSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	d := pushDaemon(t, dir)
	if code, body := d.push(t, "", `{"values":[{"kpi":"dev_sat","value":7.2}]}`); code != 401 {
		t.Errorf("no token: %d %s", code, body)
	}
	if code, body := d.push(t, "not-the-token-0123456789", `{"values":[{"kpi":"dev_sat","value":7.2}]}`); code != 401 {
		t.Errorf("wrong token: %d %s", code, body)
	}
	body := d.get(t, "/metrics")
	if !strings.Contains(body, `kpi_push_requests_total{code="401"} 2`) || !strings.Contains(body, `kpi_push_rejected_total{reason="unauthorized"} 2`) {
		t.Errorf("401s not counted:\n%s", grep(body, "kpi_push"))
	}
	if strings.Contains(body, pushToken) || strings.Contains(d.logs.String(), pushToken) {
		t.Error("a token appears in /metrics or the logs")
	}
	code, reply := d.push(t, pushToken, `{"values":[{"kpi":"dev_sat","value":7.2},{"measurement":"responses","value":31}]}`)
	if code != 200 || !strings.Contains(reply, `"accepted": 2`) {
		t.Fatalf("push: %d %s", code, reply)
	}
	d.stop(t, syscall.SIGKILL)

	d = pushDaemon(t, dir)
	body = d.get(t, "/metrics")
	if !strings.Contains(body, `kpi_value{domain="workflow",kpi="dev_sat"} 7.2`) || !strings.Contains(body, `kpi_push_responses{source="survey"} 31`) {
		t.Fatalf("after SIGKILL and restart:\n%s\nlogs:\n%s", grep(body, "dev_sat")+grep(body, "responses"), d.logs)
	}
	if api := d.get(t, "/api/v1/kpis/dev_sat"); !strings.Contains(api, `"v": 7.2`) {
		t.Errorf("history after restart:\n%s", api)
	}
}

// TestPushLoad sends 10,000 values in 1,000 requests from 50 concurrent
// clients to the loopback daemon and prints the latency percentiles.
func TestPushLoad(t *testing.T) {
	d := pushDaemon(t, t.TempDir())
	const clients, requests, perRequest = 50, 1000, 10
	var next, failures atomic.Int64
	latencies := make([]time.Duration, requests)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= requests {
					return
				}
				var b strings.Builder
				b.WriteString(`{"values":[`)
				for j := 0; j < perRequest; j++ {
					if j > 0 {
						b.WriteString(",")
					}
					fmt.Fprintf(&b, `{"measurement":"responses","value":%d,"labels":{"form":"f%d"}}`, i*perRequest+j, (i*perRequest+j)%500)
				}
				b.WriteString(`]}`)
				req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/api/v1/values", strings.NewReader(b.String()))
				req.Header.Set("Authorization", "Bearer "+pushToken)
				t0 := time.Now()
				resp, err := client.Do(req)
				latencies[i] = time.Since(t0)
				if err != nil {
					failures.Add(1)
					t.Errorf("request %d: %v", i, err)
					continue
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
					t.Errorf("request %d: %d %s", i, resp.StatusCode, body)
				}
			}
		}()
	}
	wg.Wait()
	total := time.Since(start)
	slices.Sort(latencies)
	p := func(q float64) time.Duration { return latencies[int(q*float64(requests))-1] }
	t.Logf("%d values in %d requests from %d clients: %d errors, %v total, p50 %v, p99 %v, max %v",
		requests*perRequest, requests, clients, failures.Load(), total.Round(time.Millisecond),
		p(0.5).Round(10*time.Microsecond), p(0.99).Round(10*time.Microsecond), latencies[requests-1].Round(10*time.Microsecond))
	if failures.Load() != 0 {
		t.Fatalf("%d failed requests", failures.Load())
	}
	body := d.get(t, "/metrics")
	if !strings.Contains(body, `kpi_push_requests_total{code="200"} 1000`) {
		t.Errorf("requests counted:\n%s", grep(body, "kpi_push_requests_total"))
	}
}

func TestReadTokens(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"# comment\n\n" + pushToken + "\n  other-token-0123456789  \n": "",
		"short\n":                       "tokens:1: a token must be at least 16 characters",
		"# only comments\n\n":           "no token",
		"with space in it 0123456789\n": "tokens:1: a token must be at least 16 characters without spaces",
	} {
		path := filepath.Join(dir, "tokens")
		writeFile(t, path, content)
		tokens, err := readTokens(path)
		switch {
		case want == "" && (err != nil || len(tokens) != 2 || tokens[1] != "other-token-0123456789"):
			t.Errorf("%q: %v %v", content, tokens, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", content, err, want)
		case err != nil && strings.Contains(err.Error(), "0123456789"):
			t.Errorf("the error quotes a token: %v", err)
		}
	}
	if _, err := readTokens(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing tokens file")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key into dir and
// returns a pool that trusts it.
func selfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kpi_exporter test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	writeFile(t, filepath.Join(dir, "tls.crt"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	writeFile(t, filepath.Join(dir, "tls.key"), string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// With TLS and basic auth in the web config (which guard every endpoint),
// a pusher sends its basic auth credentials and the push token in
// X-KPI-Push-Token. Today every combination was 401: both read the one
// Authorization header.
func TestPushWithTLSAndBasicAuth(t *testing.T) {
	dir := t.TempDir()
	pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("prom-pass"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "web.yml"), "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  pusher: "+string(hash)+"\n")
	writeFile(t, filepath.Join(dir, "kpis.yaml"), pushDaemonCatalogue)
	writeFile(t, filepath.Join(dir, "tokens"), pushToken+"\n")
	addr := testproc.FreeAddr(t)
	_, logs := testproc.Start(t, dir, []string{"KPI_LISTEN_ADDRESS=" + addr, "KPI_CONFIG=kpis.yaml", "KPI_STATE_DIR=state", "KPI_PUSH_TOKENS_FILE=tokens"},
		binary, "--web.config.file=web.yml")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	send := func(user, pass, header, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/api/v1/values", strings.NewReader(`{"values":[{"kpi":"dev_sat","value":7.5}]}`))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		if header != "" {
			req.Header.Set(header, token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := send("pusher", "prom-pass", "X-KPI-Push-Token", pushToken)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("push with basic auth and X-KPI-Push-Token never accepted (%d):\n%s", code, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for name, tc := range map[string]struct {
		user, pass, header, token string
		want                      int
	}{
		"no push token":    {"pusher", "prom-pass", "", "", http.StatusUnauthorized},
		"wrong push token": {"pusher", "prom-pass", "X-KPI-Push-Token", "wrong-token-0123456789", http.StatusUnauthorized},
		"no basic auth":    {"", "", "X-KPI-Push-Token", pushToken, http.StatusUnauthorized},
		"bearer, no basic": {"", "", "Authorization", "Bearer " + pushToken, http.StatusUnauthorized},
		"wrong password":   {"pusher", "nope", "X-KPI-Push-Token", pushToken, http.StatusUnauthorized},
	} {
		if code, body := send(tc.user, tc.pass, tc.header, tc.token); code != tc.want {
			t.Errorf("%s: %d %s, want %d", name, code, body, tc.want)
		}
	}
}

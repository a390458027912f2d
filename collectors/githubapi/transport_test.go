package githubapi

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// sleeps records the waits a transport asks for instead of waiting, and
// moves a fake clock on by them.
type sleeps struct {
	mu  sync.Mutex
	d   []time.Duration
	now time.Time
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.now = s.now.Add(d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

func newTestClient(t *testing.T, srv *httptest.Server, maxConc int) (*Client, *sleeps) {
	t.Helper()
	t.Setenv("TEST_GH_TOKEN", "tok-123")
	s := Settings{TokenEnv: "TEST_GH_TOKEN", BaseURL: srv.URL + "/", MaxConcurrency: maxConc}
	if err := s.Validate(func(f, format string, a ...any) error { return fmt.Errorf(f+": "+format, a...) }); err != nil {
		t.Fatal(err)
	}
	c, err := New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	sl := &sleeps{now: time.Now()}
	c.Transport.Sleep = sl.sleep
	c.Transport.Now = sl.clock
	return c, sl
}

func get(t *testing.T, c *Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.HTTP.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func rateHeaders(w http.ResponseWriter, remaining int, reset time.Time) {
	w.Header().Set("X-Ratelimit-Limit", "5000")
	w.Header().Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-Ratelimit-Used", strconv.Itoa(5000-remaining))
	w.Header().Set("X-Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	w.Header().Set("X-Ratelimit-Resource", "core")
}

func TestConditionalRequests(t *testing.T) {
	var sawINM []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		sawINM = append(sawINM, r.Header.Get("If-None-Match"))
		rateHeaders(w, 4999, time.Now().Add(time.Hour))
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Link", `<`+"http://x/next"+`>; rel="next"`)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		io.WriteString(w, `{"stargazers_count": 7}`)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv, 4)
	_, b1 := get(t, c, srv.URL+"/repos/o/r")
	resp, b2 := get(t, c, srv.URL+"/repos/o/r")
	if b1 != b2 || resp.StatusCode != http.StatusOK || resp.Header.Get("Link") == "" || resp.Header.Get("X-From-Cache") != "1" {
		t.Errorf("304 not served from cache: %d %q %q", resp.StatusCode, b2, resp.Header)
	}
	if sawINM[0] != "" || sawINM[1] != `"v1"` {
		t.Errorf("If-None-Match sent: %q", sawINM)
	}
	st := c.Transport.Stats()
	if st.Requests[[2]string{"rest", "200"}] != 1 || st.Requests[[2]string{"rest", "304"}] != 1 || st.RateRemaining["core"] != 4999 {
		t.Errorf("stats: %+v", st)
	}

	// The cache survives a restart.
	dir := memBlobs{}
	if err := c.SaveETags(dir); err != nil {
		t.Fatal(err)
	}
	c2, _ := newTestClient(t, srv, 4)
	c2.LoadETags(dir)
	if resp, b3 := get(t, c2, srv.URL+"/repos/o/r"); b3 != b1 || resp.Header.Get("X-From-Cache") != "1" {
		t.Error("a restarted client did not get a 304")
	}
}

func TestPrimaryRateLimit(t *testing.T) {
	reset := time.Now().Add(90 * time.Second)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			rateHeaders(w, 0, reset)
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}`)
			return
		}
		rateHeaders(w, 4999, reset.Add(time.Hour))
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, sl := newTestClient(t, srv, 4)
	if resp, _ := get(t, c, srv.URL+"/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	w := sl.all()
	if len(w) != 1 || w[0] < 85*time.Second || w[0] > 95*time.Second {
		t.Errorf("waits %v, want one until the reset (~90s)", w)
	}

	// With a deadline before the reset the request fails at once.
	n.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/x", nil)
	if _, err := c.HTTP.Do(req); !errors.Is(err, ErrRateLimited) {
		t.Errorf("want ErrRateLimited, got %v", err)
	}
}

func TestGateWaitsBeforeSpendingAnExhaustedLimit(t *testing.T) {
	reset := time.Now().Add(40 * time.Second)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		rateHeaders(w, 0, reset) // this answer used the last request
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, sl := newTestClient(t, srv, 4)
	get(t, c, srv.URL+"/a")
	get(t, c, srv.URL+"/b")
	if w := sl.all(); len(w) != 1 || w[0] < 35*time.Second {
		t.Errorf("waits %v: the second request should wait for the reset first", w)
	}
}

func TestSecondaryRateLimit(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rateHeaders(w, 4000, time.Now().Add(time.Hour))
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`)
		case 2, 3:
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}`)
		default:
			io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()
	c, sl := newTestClient(t, srv, 4)
	if resp, _ := get(t, c, srv.URL+"/x"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := []time.Duration{7 * time.Second, 2 * time.Minute, 4 * time.Minute}
	if fmt.Sprint(sl.all()) != fmt.Sprint(want) {
		t.Errorf("waits %v, want %v (Retry-After, then ≥ 60 s doubling)", sl.all(), want)
	}
}

func TestPermissionErrorIsNotRetried(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		rateHeaders(w, 4000, time.Now().Add(time.Hour))
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"message":"Resource not accessible by integration","documentation_url":"https://docs.github.com/rest"}`)
	}))
	defer srv.Close()
	c, sl := newTestClient(t, srv, 4)
	resp, body := get(t, c, srv.URL+"/x")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not accessible") || n.Load() != 1 || len(sl.all()) != 0 {
		t.Errorf("a permission 403 should pass through at once: %d, %d requests, waits %v", resp.StatusCode, n.Load(), sl.all())
	}
}

func TestServerErrorsAreRetried(t *testing.T) {
	var n atomic.Int32
	fails := int32(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) <= fails {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, sl := newTestClient(t, srv, 4)
	if resp, _ := get(t, c, srv.URL+"/x"); resp.StatusCode != http.StatusOK {
		t.Errorf("after two 502s: %d", resp.StatusCode)
	}
	if fmt.Sprint(sl.all()) != fmt.Sprint([]time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("waits %v", sl.all())
	}
	n.Store(0)
	fails = 100
	if resp, _ := get(t, c, srv.URL+"/x"); resp.StatusCode != http.StatusBadGateway || n.Load() != 3 {
		t.Errorf("persistent 502: %d after %d requests", resp.StatusCode, n.Load())
	}
	if st := c.Transport.Stats(); st.Requests[[2]string{"rest", "502"}] != 5 {
		t.Errorf("502s counted: %v", st.Requests)
	}
}

func TestMaxConcurrency(t *testing.T) {
	var cur, peak atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(15 * time.Millisecond)
		cur.Add(-1)
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, _ := newTestClient(t, srv, 3)
	var wg sync.WaitGroup
	for i := 0; i < 24; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.HTTP.Get(srv.URL + "/x")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if peak.Load() != 3 || c.Transport.Stats().MaxInFlight != 3 {
		t.Errorf("peak concurrency %d (transport saw %d), want exactly 3", peak.Load(), c.Transport.Stats().MaxInFlight)
	}
}

func TestAppAuth(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "app.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	var minted atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/app/installations/99/access_tokens" {
			tok, err := jwt.Parse(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "),
				func(*jwt.Token) (any, error) { return &key.PublicKey, nil }, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("42"))
			if err != nil || !tok.Valid {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"message":"A JSON web token could not be decoded"}`)
				return
			}
			minted.Add(1)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"token":"ghs_inst","expires_at":%q,"permissions":{"metadata":"read"}}`, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
			return
		}
		if r.Header.Get("Authorization") != "Bearer ghs_inst" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	s := Settings{App: &AppSettings{AppID: 42, InstallationID: 99, PrivateKeyFile: keyFile}, BaseURL: srv.URL + "/"}
	if err := s.Validate(func(f, format string, a ...any) error { return fmt.Errorf(format, a...) }); err != nil {
		t.Fatal(err)
	}
	c, err := New(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if resp, _ := get(t, c, srv.URL+"/repos/o/r"); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if minted.Load() != 1 {
		t.Errorf("%d installation tokens minted for three requests, want 1", minted.Load())
	}
}

func TestSettingsValidation(t *testing.T) {
	at := func(f, format string, a ...any) error { return fmt.Errorf("%s: %s", f, fmt.Sprintf(format, a...)) }
	cases := []struct {
		s    Settings
		want string
	}{
		{Settings{}, ": set token_file, token_env or app: GitHub's API needs credentials"},
		{Settings{TokenFile: "a", TokenEnv: "B"}, ".token_file: set token_file or token_env, not both"},
		{Settings{TokenEnv: "B", App: &AppSettings{}}, ".app: set either a token (token_file, token_env) or app, not both"},
		{Settings{App: &AppSettings{AppID: 1}}, ".app: app needs app_id, installation_id and private_key_file"},
		{Settings{TokenEnv: "B", MaxConcurrency: 100}, ".max_concurrency: max_concurrency 100 is outside 1..64"},
	}
	for _, c := range cases {
		if err := c.s.Validate(at); err == nil || err.Error() != c.want {
			t.Errorf("%+v: %v, want %s", c.s, err, c.want)
		}
	}
	s := Settings{TokenEnv: "B", BaseURL: "https://ghe.example.com/api/v3"}
	if err := s.Validate(at); err != nil || s.GraphQLURL != "https://ghe.example.com/api/graphql" || s.BaseURL != "https://ghe.example.com/api/v3/" || s.MaxConcurrency != 4 {
		t.Errorf("GHES defaults: %+v %v", s, err)
	}
	s = Settings{TokenEnv: "B"}
	if err := s.Validate(at); err != nil || s.GraphQLURL != "https://api.github.com/graphql" {
		t.Errorf("github.com defaults: %+v", s)
	}
	t.Setenv("EMPTY_TOKEN", "")
	s = Settings{TokenEnv: "EMPTY_TOKEN"}
	s.Validate(at)
	if _, err := New(s, nil); err == nil || err.Error() != "environment variable EMPTY_TOKEN (token_env) is empty or unset" {
		t.Errorf("empty token: %v", err)
	}
}

func TestSlowsDownBeforeTheLimitRunsOut(t *testing.T) {
	reset := time.Now().Add(100 * time.Second)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rateHeaders(w, 50, reset) // 1 % of 5,000 left
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c, sl := newTestClient(t, srv, 4)
	get(t, c, srv.URL+"/a")
	get(t, c, srv.URL+"/b")
	w := sl.all()
	// 100 s to the reset shared by the 51 requests left: about 2 s apart.
	if len(w) != 1 || w[0] < 1800*time.Millisecond || w[0] > 2100*time.Millisecond {
		t.Errorf("waits %v, want one of about 2s", w)
	}
}

func TestCredentialsOnlyGoToTheAPIHost(t *testing.T) {
	var other string
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other = r.Header.Get("Authorization")
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	c, _ := newTestClient(t, srv, 4)
	get(t, c, elsewhere.URL+"/blob")
	if other != "" {
		t.Errorf("the token went to another host: %q", other)
	}
}

// GraphQL answers a spent limit with HTTP 200 and an error of type
// RATE_LIMITED (GitHub's documented shape); the transport waits for the
// reset and asks again instead of handing the error to the run. Other
// GraphQL errors pass through untouched.
func TestGraphQLRateLimited(t *testing.T) {
	reset := time.Now().Add(2 * time.Minute)
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch n.Add(1) {
		case 1:
			rateHeaders(w, 0, reset)
			w.Header().Set("X-Ratelimit-Resource", "graphql")
			io.WriteString(w, `{"data":null,"errors":[{"type":"RATE_LIMITED","code":"graphql_rate_limit","message":"API rate limit already exceeded for user ID 1."}]}`)
		case 2:
			rateHeaders(w, 4999, reset.Add(time.Hour))
			io.WriteString(w, `{"data":{"viewer":{"login":"x"}}}`)
		default:
			io.WriteString(w, `{"data":null,"errors":[{"type":"NOT_FOUND","message":"Could not resolve to a Repository with the name 'a/b'."}]}`)
		}
	}))
	defer srv.Close()
	c, sl := newTestClient(t, srv, 4)
	post := func() string {
		resp, err := c.HTTP.Post(srv.URL+"/graphql", "application/json", strings.NewReader(`{"query":"{viewer{login}}"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if body := post(); !strings.Contains(body, `"login":"x"`) {
		t.Errorf("after the wait: %s", body)
	}
	if w := sl.all(); len(w) != 1 || w[0] < 110*time.Second || w[0] > 130*time.Second {
		t.Errorf("waits %v, want one until the reset (~2m)", w)
	}
	if body := post(); !strings.Contains(body, "NOT_FOUND") || len(sl.all()) != 1 {
		t.Errorf("another GraphQL error must pass through at once: %s (waits %v)", body, sl.all())
	}
}

// memBlobs keeps saved blobs in memory.
type memBlobs map[string][]byte

func (m memBlobs) Load(name string) ([]byte, error) {
	if b, ok := m[name]; ok {
		return b, nil
	}
	return nil, fs.ErrNotExist
}

func (m memBlobs) Save(name string, data []byte) error { m[name] = data; return nil }

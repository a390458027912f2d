package githubapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-github/v60/github"
	"github.com/shurcooL/githubv4"

	"github.com/bakhmach-hub/kpi_exporter/internal/atomicfile"
	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Client bundles the REST and GraphQL clients over one Transport.
type Client struct {
	REST      *github.Client
	GraphQL   *githubv4.Client
	Transport *Transport
	HTTP      *http.Client
}

// New builds a client from validated settings. base is the underlying
// transport (nil: http.DefaultTransport).
func New(s Settings, base http.RoundTripper) (*Client, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	var auth func(context.Context) (string, error)
	if s.App != nil {
		a, err := newAppAuth(*s.App, s.BaseURL, base)
		if err != nil {
			return nil, err
		}
		auth = a.token
	} else {
		tok, err := s.readToken()
		if err != nil {
			return nil, err
		}
		auth = func(context.Context) (string, error) { return tok, nil }
	}
	t := newTransport(base, s.MaxConcurrency, auth)
	t.hosts = map[string]bool{}
	for _, raw := range []string{s.BaseURL, s.GraphQLURL} {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", raw, err)
		}
		t.hosts[strings.ToLower(u.Host)] = true
	}
	hc := &http.Client{Transport: t}
	rest := github.NewClient(hc)
	u, err := url.Parse(s.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("base_url: %w", err)
	}
	rest.BaseURL = u
	return &Client{REST: rest, GraphQL: githubv4.NewEnterpriseClient(s.GraphQLURL, hc), Transport: t, HTTP: hc}, nil
}

// Measurements reports what the client spent, as the source's own series:
// requests_total{api,code} (304s visible), rate_limit_remaining{resource}
// and graphql_points_total.
func (c *Client) Measurements() []kpi.Measurement {
	st := c.Transport.Stats()
	var ms []kpi.Measurement
	keys := make([][2]string, 0, len(st.Requests))
	for k := range st.Requests {
		keys = append(keys, k)
	}
	sortPairs(keys)
	for _, k := range keys {
		ms = append(ms, kpi.Measurement{Name: "requests_total", Kind: kpi.Counter, Value: float64(st.Requests[k]),
			Labels: kpi.Labels{{Name: "api", Value: k[0]}, {Name: "code", Value: k[1]}}})
	}
	for _, res := range sortedKeys(st.RateRemaining) {
		ms = append(ms, kpi.Measurement{Name: "rate_limit_remaining", Value: float64(st.RateRemaining[res]),
			Labels: kpi.Labels{{Name: "resource", Value: res}}})
	}
	ms = append(ms, kpi.Measurement{Name: "graphql_points_total", Kind: kpi.Counter, Value: float64(st.Points)})
	return ms
}

func sortPairs(ks [][2]string) {
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && (ks[j][0] < ks[j-1][0] || (ks[j][0] == ks[j-1][0] && ks[j][1] < ks[j-1][1])); j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
}

// appAuth mints GitHub App installation tokens and reuses each until five
// minutes before it expires.
type appAuth struct {
	s    AppSettings
	url  string
	base http.RoundTripper
	key  any

	mu      sync.Mutex
	tok     string
	expires time.Time
}

func newAppAuth(s AppSettings, baseURL string, base http.RoundTripper) (*appAuth, error) {
	pem, err := os.ReadFile(s.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("app.private_key_file: %w", err)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM(pem)
	if err != nil {
		return nil, fmt.Errorf("app.private_key_file %s: %w", s.PrivateKeyFile, err)
	}
	return &appAuth{s: s, url: fmt.Sprintf("%sapp/installations/%d/access_tokens", baseURL, s.InstallationID), base: base, key: key}, nil
}

func (a *appAuth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.tok != "" && time.Until(a.expires) > 5*time.Minute {
		return a.tok, nil
	}
	now := time.Now()
	// GitHub allows ten minutes; the issue time is set back a minute for
	// clock drift, as GitHub recommends.
	signed, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		IssuedAt:  jwt.NewNumericDate(now.Add(-time.Minute)),
		ExpiresAt: jwt.NewNumericDate(now.Add(9 * time.Minute)),
		Issuer:    fmt.Sprint(a.s.AppID),
	}).SignedString(a.key)
	if err != nil {
		return "", fmt.Errorf("signing the GitHub App JWT: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, nil)
	if err != nil {
		return "", err
	}
	redact.Register(signed)
	req.Header.Set("Authorization", "Bearer "+signed)
	req.Header.Set("Accept", "application/vnd.github+json")
	resp, err := a.base.RoundTrip(req)
	if err != nil {
		return "", fmt.Errorf("GitHub App installation token: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GitHub App installation token: %s: %s", resp.Status, apiMessage(body))
	}
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		return "", fmt.Errorf("GitHub App installation token: unexpected answer")
	}
	a.tok, a.expires = out.Token, out.ExpiresAt
	return a.tok, nil
}

// apiMessage extracts GitHub's error message from a body, never more.
func apiMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	return "no message"
}

type savedETag struct {
	URL    string      `json:"url"`
	ETag   string      `json:"etag"`
	Header http.Header `json:"header"`
	Body   []byte      `json:"body"` // gzip
}

// ETagsBlob is the name the conditional-request cache is saved under.
const ETagsBlob = "etags.json.gz"

// Blobs is where the cache is kept: a source's collectors.StateStore.
type Blobs interface {
	Load(name string) ([]byte, error)
	Save(name string, data []byte) error
}

// SaveETags writes the conditional-request cache to st, so that a restart
// (or the replica taking the source over) still gets 304s.
func (c *Client) SaveETags(st Blobs) error {
	if st == nil {
		return nil
	}
	t := c.Transport
	t.mu.Lock()
	out := make([]savedETag, 0, len(t.etags))
	for u, e := range t.etags {
		out = append(out, savedETag{URL: u, ETag: e.etag, Header: e.header, Body: e.body})
	}
	t.mu.Unlock()
	data, err := atomicfile.GzipJSON(out)
	if err != nil {
		return err
	}
	return st.Save(ETagsBlob, data)
}

// LoadETags reads what SaveETags wrote; a missing or unreadable file is an
// empty cache (it is only an optimisation).
func (c *Client) LoadETags(st Blobs) {
	if st == nil {
		return
	}
	var in []savedETag
	data, err := st.Load(ETagsBlob)
	if err != nil || atomicfile.DecodeGzipJSON(data, &in) != nil {
		return
	}
	t := c.Transport
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range in {
		t.etags[e.URL] = &etagEntry{etag: e.ETag, header: e.Header, body: e.Body}
	}
}

func joinErrors(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

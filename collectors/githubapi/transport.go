package githubapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits of the transport's own patience. SecondaryWait is GitHub's advice:
// without a Retry-After, wait at least a minute, longer on every repeat.
const (
	DefaultSecondaryWait = time.Minute
	DefaultRetry5xx      = 2
	DefaultRetryBase     = time.Second
	// slowDownShare: below this share of the limit left, requests are
	// spread over the time until the reset instead of spent at once.
	slowDownShare = 0.02
	maxSpread     = 30 * time.Second
	maxETags      = 20000
)

// ErrRateLimited is returned when the primary rate limit is exhausted and
// its reset lies beyond the request's deadline.
var ErrRateLimited = errors.New("GitHub rate limit exhausted")

// limit is what the x-ratelimit-* headers said last of one resource.
type limit struct {
	limit, remaining int
	reset            time.Time
}

type etagEntry struct {
	etag   string
	header http.Header // the headers a client reads again: Link, Content-Type
	body   []byte      // gzip-compressed
}

// Transport is the http.RoundTripper under both the REST and the GraphQL
// client.
type Transport struct {
	base http.RoundTripper
	auth func(ctx context.Context) (string, error)
	// hosts are the API hosts credentials may go to; a request elsewhere
	// (a redirect to storage, say) is sent without them.
	hosts map[string]bool
	sem   chan struct{}

	// Patience settings; tests shorten them.
	SecondaryWait time.Duration
	Retry5xx      int
	RetryBase     time.Duration
	// Sleep waits for d or until ctx is done.
	Sleep func(ctx context.Context, d time.Duration) error
	Now   func() time.Time

	mu            sync.Mutex
	limits        map[string]limit
	etags         map[string]*etagEntry
	requests      map[[2]string]uint64 // {api, code}
	points        uint64
	secondaryRuns int
	inFlight      int
	maxInFlight   int
}

func newTransport(base http.RoundTripper, maxConcurrency int, auth func(context.Context) (string, error)) *Transport {
	return &Transport{
		base: base, auth: auth, sem: make(chan struct{}, maxConcurrency),
		SecondaryWait: DefaultSecondaryWait, Retry5xx: DefaultRetry5xx, RetryBase: DefaultRetryBase,
		Sleep: sleepCtx, Now: time.Now,
		limits: map[string]limit{}, etags: map[string]*etagEntry{}, requests: map[[2]string]uint64{},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func apiOf(req *http.Request) string {
	if strings.HasSuffix(req.URL.Path, "/graphql") {
		return "graphql"
	}
	return "rest"
}

func resourceOf(req *http.Request) string {
	switch {
	case strings.HasSuffix(req.URL.Path, "/graphql"):
		return "graphql"
	case strings.Contains(req.URL.Path, "/search/"):
		return "search"
	}
	return "core"
}

// RoundTrip sends one request, waiting out rate limits and retrying server
// errors as described in the package documentation.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		if err := t.gate(ctx, resourceOf(req)); err != nil {
			return nil, err
		}
		r, err := t.cloneRequest(req, attempt)
		if err != nil {
			return nil, err
		}
		resp, err := t.send(r)
		if err != nil {
			return nil, err
		}
		wait, kind := t.classify(resp)
		if kind == "ok" && resp.StatusCode == http.StatusOK && apiOf(req) == "graphql" {
			// GraphQL answers a spent limit with 200 and an error of type
			// RATE_LIMITED: wait for the reset as a REST 403 would.
			if w, limited := t.graphqlRateLimited(resp); limited {
				wait, kind = w, "primary"
			}
		}
		switch kind {
		case "ok":
			return resp, nil
		case "primary", "secondary":
			drain(resp)
			if dl, ok := ctx.Deadline(); ok && t.Now().Add(wait).After(dl) {
				return nil, fmt.Errorf("%w (%s limit): it resets in %s, after this run's deadline", ErrRateLimited, kind, wait.Round(time.Second))
			}
			if err := t.Sleep(ctx, wait); err != nil {
				return nil, err
			}
		case "5xx":
			if attempt >= t.Retry5xx {
				return resp, nil // the caller reports the status
			}
			drain(resp)
			if err := t.Sleep(ctx, t.RetryBase<<attempt); err != nil {
				return nil, err
			}
		}
	}
}

// classify says what a response asks of the client: nothing more ("ok"),
// waiting for a rate limit ("primary", "secondary") or a retry ("5xx").
func (t *Transport) classify(resp *http.Response) (time.Duration, string) {
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests:
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if s, err := strconv.Atoi(ra); err == nil && s >= 0 {
				t.noteSecondary()
				return time.Duration(s) * time.Second, "secondary"
			}
		}
		if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
			reset, _ := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64)
			return max(time.Unix(reset, 0).Sub(t.Now())+time.Second, time.Second), "primary"
		}
		if isSecondaryBody(resp) {
			n := t.noteSecondary()
			return t.SecondaryWait << min(n-1, 6), "secondary"
		}
		return 0, "ok" // a permission error: the caller decides
	case resp.StatusCode >= 500:
		return 0, "5xx"
	}
	t.mu.Lock()
	t.secondaryRuns = 0
	t.mu.Unlock()
	return 0, "ok"
}

// maxGraphQLPeek bounds how much of a GraphQL answer is buffered to look
// for a RATE_LIMITED error; a rate-limit answer is tiny, and a larger body
// is passed on unread.
const maxGraphQLPeek = 64 << 10

// graphqlRateLimited reports whether a 200 GraphQL answer is GitHub's
// "errors": [{"type": "RATE_LIMITED"}], and how long to wait: until the
// x-ratelimit-reset it names, else the secondary wait. The body stays
// readable.
func (t *Transport) graphqlRateLimited(resp *http.Response) (time.Duration, bool) {
	if resp.ContentLength > maxGraphQLPeek {
		return 0, false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxGraphQLPeek+1))
	rest := resp.Body
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b), rest), rest}
	if err != nil || len(b) > maxGraphQLPeek || !bytes.Contains(b, []byte("RATE_LIMITED")) {
		return 0, false
	}
	var answer struct {
		Errors []struct {
			Type string `json:"type"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &answer) != nil {
		return 0, false
	}
	for _, e := range answer.Errors {
		if e.Type == "RATE_LIMITED" {
			if reset, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil && reset > 0 {
				return max(time.Unix(reset, 0).Sub(t.Now())+time.Second, time.Second), true
			}
			n := t.noteSecondary()
			return t.SecondaryWait << min(n-1, 6), true
		}
	}
	return 0, false
}

func (t *Transport) noteSecondary() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.secondaryRuns++
	return t.secondaryRuns
}

// isSecondaryBody peeks at an error body for GitHub's secondary-limit
// wording, leaving the body readable.
func isSecondaryBody(resp *http.Response) bool {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	s := strings.ToLower(string(b))
	return strings.Contains(s, "secondary rate limit") || strings.Contains(s, "abuse detection")
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // best effort, to reuse the connection
	resp.Body.Close()
}

// gate waits before a request when the resource's limit is spent (until
// the reset) or nearly spent (spreading what is left over the time to the
// reset).
func (t *Transport) gate(ctx context.Context, resource string) error {
	t.mu.Lock()
	l, ok := t.limits[resource]
	t.mu.Unlock()
	now := t.Now()
	if !ok || !now.Before(l.reset) {
		return nil
	}
	var wait time.Duration
	switch {
	case l.remaining <= 0:
		wait = l.reset.Sub(now) + time.Second
		if dl, ok := ctx.Deadline(); ok && now.Add(wait).After(dl) {
			return fmt.Errorf("%w (%s): it resets at %s, after this run's deadline", ErrRateLimited, resource, l.reset.UTC().Format(time.RFC3339))
		}
	case l.limit > 0 && float64(l.remaining) < slowDownShare*float64(l.limit):
		wait = min(l.reset.Sub(now)/time.Duration(l.remaining+1), maxSpread)
	}
	if wait <= 0 {
		return nil
	}
	return t.Sleep(ctx, wait)
}

// cloneRequest prepares one attempt: auth, and If-None-Match for a GET whose
// earlier answer is cached.
func (t *Transport) cloneRequest(req *http.Request, attempt int) (*http.Request, error) {
	r := req.Clone(req.Context())
	if attempt > 0 && req.Body != nil && req.GetBody != nil {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = body
	}
	if t.auth != nil && t.hosts[strings.ToLower(r.URL.Host)] {
		tok, err := t.auth(req.Context())
		if err != nil {
			return nil, err
		}
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if r.Method == http.MethodGet {
		t.mu.Lock()
		if e := t.etags[r.URL.String()]; e != nil {
			r.Header.Set("If-None-Match", e.etag)
		}
		t.mu.Unlock()
	}
	return r, nil
}

// send does one HTTP exchange within the concurrency bound and books it.
func (t *Transport) send(r *http.Request) (*http.Response, error) {
	select {
	case t.sem <- struct{}{}:
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
	t.mu.Lock()
	t.inFlight++
	t.maxInFlight = max(t.maxInFlight, t.inFlight)
	t.mu.Unlock()
	resp, err := t.base.RoundTrip(r)
	t.mu.Lock()
	t.inFlight--
	t.mu.Unlock()
	<-t.sem
	api := apiOf(r)
	if err != nil {
		t.count(api, "error")
		return nil, err
	}
	t.count(api, strconv.Itoa(resp.StatusCode))
	t.noteLimits(resp)
	if r.Method != http.MethodGet {
		return resp, nil
	}
	key := r.URL.String()
	switch {
	case resp.StatusCode == http.StatusNotModified:
		t.mu.Lock()
		e := t.etags[key]
		t.mu.Unlock()
		if e == nil {
			return resp, nil
		}
		drain(resp)
		return cachedResponse(r, resp, e)
	case resp.StatusCode == http.StatusOK && resp.Header.Get("ETag") != "":
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		t.remember(key, resp, body)
	}
	return resp, nil
}

func (t *Transport) count(api, code string) {
	t.mu.Lock()
	t.requests[[2]string{api, code}]++
	t.mu.Unlock()
}

func (t *Transport) noteLimits(resp *http.Response) {
	h := resp.Header
	rem, err1 := strconv.Atoi(h.Get("X-Ratelimit-Remaining"))
	lim, err2 := strconv.Atoi(h.Get("X-Ratelimit-Limit"))
	reset, err3 := strconv.ParseInt(h.Get("X-Ratelimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return
	}
	res := h.Get("X-Ratelimit-Resource")
	if res == "" {
		res = resourceOf(resp.Request)
	}
	t.mu.Lock()
	t.limits[res] = limit{limit: lim, remaining: rem, reset: time.Unix(reset, 0)}
	t.mu.Unlock()
}

func (t *Transport) remember(key string, resp *http.Response, body []byte) {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	_, _ = zw.Write(body) // into memory: cannot fail
	_ = zw.Close()
	h := http.Header{}
	for _, k := range []string{"Content-Type", "Link"} {
		if v := resp.Header.Values(k); len(v) > 0 {
			h[k] = v
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.etags) >= maxETags {
		for k := range t.etags { // drop an arbitrary entry: a bound, not a policy
			delete(t.etags, k)
			break
		}
	}
	t.etags[key] = &etagEntry{etag: resp.Header.Get("ETag"), header: h, body: z.Bytes()}
}

// cachedResponse turns a 304 into the 200 it stands for, so that clients
// parse the cached body as if it had been sent again.
func cachedResponse(r *http.Request, notModified *http.Response, e *etagEntry) (*http.Response, error) {
	zr, err := gzip.NewReader(bytes.NewReader(e.body))
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	h := notModified.Header.Clone()
	for k, v := range e.header {
		h[k] = v
	}
	h.Set("X-From-Cache", "1")
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: notModified.Proto, ProtoMajor: notModified.ProtoMajor,
		ProtoMinor: notModified.ProtoMinor, Header: h, Body: io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}, nil
}

// AddPoints books the GraphQL points a query cost (its rateLimit.cost).
func (t *Transport) AddPoints(n int) {
	t.mu.Lock()
	t.points += uint64(n)
	t.mu.Unlock()
}

// Stats is what the transport has spent and seen.
type Stats struct {
	Requests       map[[2]string]uint64 // {api, code} → count
	Points         uint64
	RateRemaining  map[string]int
	MaxInFlight    int
	RequestsByCode map[string]uint64
}

// Stats returns a copy of the counters.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := Stats{Requests: map[[2]string]uint64{}, Points: t.points, RateRemaining: map[string]int{}, MaxInFlight: t.maxInFlight,
		RequestsByCode: map[string]uint64{}}
	for k, v := range t.requests {
		s.Requests[k] = v
		s.RequestsByCode[k[1]] += v
	}
	for k, l := range t.limits {
		s.RateRemaining[k] = l.remaining
	}
	return s
}

// Total sums requests, optionally of one api ("" for all).
func (s Stats) Total(api string) uint64 {
	var n uint64
	for k, v := range s.Requests {
		if api == "" || k[0] == api {
			n += v
		}
	}
	return n
}

// sortedKeys is a helper for deterministic output.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

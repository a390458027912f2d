package stripe

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// Retry settings of the transport: Stripe's own client retries only some of
// these (429 only for lock timeouts, Retry-After never), and one failed page
// of a listing failed the whole run.
const (
	defaultRetries   = 4
	defaultRetryBase = 500 * time.Millisecond
	maxRetryWait     = 30 * time.Second
)

// retryTransport retries GET requests (listings are idempotent) that end in
// a connection error, 429 or a 5xx, with capped exponential backoff and
// jitter. Stripe-Should-Retry: false stops at once and true retries even a
// 4xx; Retry-After, when present, sets the wait (up to maxRetryWait).
type retryTransport struct {
	next    http.RoundTripper
	retries int
	base    time.Duration
	sleep   func(context.Context, time.Duration) error
}

func newRetryTransport(next http.RoundTripper) *retryTransport {
	if next == nil {
		next = http.DefaultTransport
	}
	return &retryTransport{next: next, retries: defaultRetries, base: defaultRetryBase, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet {
		return t.next.RoundTrip(req)
	}
	for attempt := 0; ; attempt++ {
		resp, err := t.next.RoundTrip(req)
		retry, wait := t.decide(resp, err, attempt)
		if !retry || attempt >= t.retries {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // best effort, to reuse the connection
			resp.Body.Close()
		}
		if serr := t.sleep(req.Context(), wait); serr != nil {
			if err == nil {
				err = serr
			}
			return nil, errors.Join(err, serr)
		}
	}
}

// decide says whether to retry and after how long.
func (t *retryTransport) decide(resp *http.Response, err error, attempt int) (bool, time.Duration) {
	backoff := t.base << min(attempt, 10)
	backoff = min(backoff, maxRetryWait)
	backoff = backoff/2 + time.Duration(rand.Int64N(int64(backoff/2)+1))
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false, 0
		}
		return true, backoff // a connection error
	}
	switch resp.Header.Get("Stripe-Should-Retry") {
	case "false":
		return false, 0
	case "true":
		return true, retryAfter(resp, backoff)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return true, retryAfter(resp, backoff)
	}
	return false, 0
}

func retryAfter(resp *http.Response, fallback time.Duration) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return fallback
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return min(time.Duration(s)*time.Second, maxRetryWait)
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(at), 0), maxRetryWait)
	}
	return fallback
}

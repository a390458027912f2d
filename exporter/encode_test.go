package exporter

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "gzip, deflate, br": true, "deflate, gzip;q=0.5": true,
		"gzip;q=0": false, "identity": false, "*": true, "*;q=0": false, "zstd": false, " GZIP ; q=1.0 ": true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v", h, got)
		}
	}
}

// sortedLines makes two expositions comparable whatever the family order.
func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		// Live values differ between two scrapes; compare their names only.
		if strings.HasPrefix(l, "go_") || strings.HasPrefix(l, "process_") || strings.HasPrefix(l, "promhttp_") {
			if i := strings.LastIndexByte(l, ' '); i > 0 {
				l = l[:i]
			}
		}
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// TestCachedEncodingEqualsPromhttp checks that what the cache serves is what
// promhttp.HandlerFor would serve, for every format and with gzip.
func TestCachedEncodingEqualsPromhttp(t *testing.T) {
	e := New(Options{})
	e.Publish(goldenSnapshot(t))
	reference := promhttp.HandlerFor(prometheus.GathererFunc(e.Gather), promhttp.HandlerOpts{EnableOpenMetrics: true})
	h := e.Handler()

	fetch := func(h http.Handler, accept, encoding string) (string, http.Header) {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := io.Reader(rec.Body)
		if rec.Header().Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false) // one member, as the cache claims
			body = zr
		}
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("reading body (%s, %s): %v", accept, encoding, err)
		}
		return string(b), rec.Header()
	}
	for _, accept := range []string{"", "text/plain;version=0.0.4", "application/openmetrics-text;version=1.0.0", "application/openmetrics-text;version=0.0.1"} {
		want, wantHdr := fetch(reference, accept, "")
		for _, encoding := range []string{"", "gzip"} {
			for i := 0; i < 2; i++ { // the second scrape is served from the cache
				got, hdr := fetch(h, accept, encoding)
				if hdr.Get("Content-Type") != wantHdr.Get("Content-Type") {
					t.Errorf("%q/%q: Content-Type %q, want %q", accept, encoding, hdr.Get("Content-Type"), wantHdr.Get("Content-Type"))
				}
				if encoding == "gzip" && hdr.Get("Content-Encoding") != "gzip" {
					t.Errorf("%q: gzip not used", accept)
				}
				g, w := sortedLines(got), sortedLines(want)
				if strings.Join(g, "\n") != strings.Join(w, "\n") {
					t.Errorf("%q/%q scrape %d differs from promhttp's:\n got %d lines\nwant %d lines", accept, encoding, i, len(g), len(w))
				}
				if strings.Contains(accept, "openmetrics") && !strings.HasSuffix(got, "# EOF\n") {
					t.Errorf("%q: OpenMetrics body does not end in # EOF", accept)
				}
			}
		}
	}
	// A protobuf request is left to promhttp.
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Header().Get("Content-Type"), "protobuf") || rec.Body.Len() == 0 {
		t.Errorf("protobuf: %q, %d bytes", rec.Header().Get("Content-Type"), rec.Body.Len())
	}
}

package coverage

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func gz(t *testing.T, parts ...func(w *gzip.Writer)) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	for _, p := range parts {
		p(w)
	}
	w.Close()
	return b.Bytes()
}

func repeat(s string, n int) func(w *gzip.Writer) {
	return func(w *gzip.Writer) {
		chunk := []byte(strings.Repeat(s, 1<<16/len(s)+1))
		for written := 0; written < n; written += len(chunk) {
			w.Write(chunk)
		}
	}
}

func text(s string) func(w *gzip.Writer) { return func(w *gzip.Writer) { w.Write([]byte(s)) } }

// Hostile reports of at most 1 MiB on the wire — gzip bombs, XML nested
// millions deep, hostile line numbers, Go blocks spanning millions of
// lines, more line records than allowed — stop with an error naming the
// limit, within a bound on memory and time (the project's: 256 MiB and
// 10 s for any input). The limits are the defaults except where a smaller
// one is set, as a user's `limits:` setting would.
func TestHostileReportsAreBounded(t *testing.T) {
	var manyFiles strings.Builder
	for i := 0; manyFiles.Len() < 1<<20; i++ {
		fmt.Fprintf(&manyFiles, "SF:f%d.c\nDA:1048000,1\nend_of_record\n", i)
	}
	var wide strings.Builder
	wide.WriteString("mode: set\n")
	for i := 0; wide.Len() < 24<<10; i++ {
		fmt.Fprintf(&wide, "a.go:1.1,%d.2 1 1\n", 1000000+i)
	}
	var lines strings.Builder
	lines.WriteString("SF:a.c\n")
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(&lines, "DA:%d,1\n", i)
	}
	lines.WriteString("end_of_record\n")
	for _, tc := range []struct {
		name   string
		in     []byte
		limits Limits
		want   string // a part of the error; "" for none
	}{
		{"XML gzip bomb", gz(t, text(`<?xml version="1.0"?><coverage><packages>`), repeat(`<package name="p"/>`, 64<<20)), Limits{}, "limits.max_ratio"},
		{"XML over max_bytes", gz(t, text(`<?xml version="1.0"?><coverage><packages>`), repeat(`<package name="p"/>`, 16<<20)), Limits{MaxBytes: 4 << 20, MaxRatio: 1 << 20}, "limits.max_bytes"},
		{"XML attribute bomb", gz(t, text(`<?xml version="1.0"?><coverage><packages><package name="`), repeat("a>", 64<<20)), Limits{}, "limits.max_token_bytes"},
		{"XML token", gz(t, text(`<?xml version="1.0"?><coverage><packages><package name="`), repeat("a", 8<<20), text(`"/></packages></coverage>`)), Limits{}, "limits.max_token_bytes"},
		{"XML nested 2 million deep", gz(t, text(`<?xml version="1.0"?><coverage>`), repeat("<a>", 6<<20)), Limits{}, "limits.max_depth"},
		{"Go profile gzip bomb", gz(t, text("mode: set\n"), repeat("a.go:1.1,2.2 1 1\n", 64<<20)), Limits{}, "limits.max_ratio"},
		{"Go blocks spanning millions of lines", []byte(wide.String()), Limits{}, ""},
		{"LCOV line numbers near 2^20", []byte(manyFiles.String()), Limits{}, ""},
		{"LCOV more lines than allowed", []byte(lines.String()), Limits{MaxLines: 10000}, "limits.max_lines"},
	} {
		r := NewReport(nil)
		r.SetLimits(tc.limits)
		var err error
		alloc, took := peakHeapAndTime(func() {
			err = Parse("r", bytes.NewReader(tc.in), "", r)
			r.Totals()
		})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error about %s", tc.name, err, tc.want)
		case tc.want != "" && !errors.Is(err, ErrLimit):
			t.Errorf("%s: %v does not wrap ErrLimit", tc.name, err)
		}
		if len(tc.in) > 1<<20+64<<10 {
			t.Errorf("%s: the input is %d bytes, more than 1 MiB", tc.name, len(tc.in))
		}
		if alloc > 256<<20 || took > 10*time.Second*raceSlowdown {
			t.Errorf("%s: %d MiB peak heap, %s", tc.name, alloc>>20, took)
		}
		t.Logf("%s: %d bytes in, %d MiB peak heap, %s: %v", tc.name, len(tc.in), alloc>>20, took.Round(time.Millisecond), err)
	}
}

// peakHeapAndTime runs f and returns the peak of the heap in use above what it was
// before (sampled every millisecond) and the time f took.
func peakHeapAndTime(f func()) (uint64, time.Duration) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > base && m.HeapInuse-base > peak {
				peak = m.HeapInuse - base
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	begin := time.Now()
	f()
	took := time.Since(begin)
	close(done)
	<-sampled
	return peak, took
}

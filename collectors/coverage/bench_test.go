package coverage

import (
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// repeater produces size bytes: a header, then a body made by fn(i) over
// and over, then a footer — generated while read, so the benchmark holds no
// 200 MB buffer.
type repeater struct {
	header, footer []byte
	fn             func(i int) []byte
	size           int64
	n              int64
	i              int
	buf            []byte
	done           bool
}

func (r *repeater) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		switch {
		case r.header != nil:
			r.buf, r.header = r.header, nil
		case r.n < r.size:
			r.buf = r.fn(r.i)
			r.i++
		case !r.done:
			r.buf, r.done = r.footer, true
		default:
			return 0, io.EOF
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.n += int64(n)
	return n, nil
}

// peakHeap samples the heap while fn runs.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	fn()
	close(stop)
	wg.Wait()
	return peak.Load()
}

func coberturaClass(i int) []byte {
	b := fmt.Appendf(nil, "<class name=\"C%d\" filename=\"pkg%02d/file%04d.py\" line-rate=\"0.5\" branch-rate=\"0.5\" complexity=\"0\"><methods/><lines>\n", i, i%50, i%2000)
	for l := 1; l <= 100; l++ {
		if l%10 == 0 {
			b = fmt.Appendf(b, "<line number=\"%d\" hits=\"%d\" branch=\"true\" condition-coverage=\"50%% (1/2)\"/>\n", l, (i+l)%4)
		} else {
			b = fmt.Appendf(b, "<line number=\"%d\" hits=\"%d\"/>\n", l, (i+l)%4)
		}
	}
	return append(b, "</lines></class>\n"...)
}

// cycle renders fn(0..n-1) once; the benchmark replays it, so that the
// generator costs nothing measurable.
func cycle(fn func(int) []byte, n int) func(int) []byte {
	var all []byte
	for i := 0; i < n; i++ {
		all = append(all, fn(i)...)
	}
	return func(int) []byte { return all }
}

func benchParse(b *testing.B, size int64, mk func() io.Reader, parse func(io.Reader, *Report) error) {
	b.SetBytes(size)
	b.ReportAllocs()
	var peak uint64
	for b.Loop() {
		r := NewReport(nil)
		p := peakHeap(func() {
			if err := parse(mk(), r); err != nil {
				b.Fatal(err)
			}
		})
		peak = max(peak, p)
		if r.Totals().Lines.Total != 2000*100 {
			b.Fatalf("lines %d", r.Totals().Lines.Total)
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkCobertura parses generated Cobertura XML of 20 MB and 200 MB,
// stream-parsed (2,000 classes cycled; the LCOV figure comes from the
// realistic tracefile of BenchmarkRealisticLCOV instead).
func BenchmarkCobertura(b *testing.B) {
	for _, mb := range []int64{20, 200} {
		size := mb << 20
		b.Run(fmt.Sprintf("%dMB", mb), func(b *testing.B) {
			classes := cycle(coberturaClass, 2000)
			benchParse(b, size, func() io.Reader {
				return &repeater{header: []byte("<?xml version=\"1.0\"?>\n<coverage lines-valid=\"0\"><packages><package name=\"p\"><classes>\n"),
					footer: []byte("</classes></package></packages></coverage>\n"), fn: classes, size: size}
			}, func(rd io.Reader, r *Report) error { return ParseCobertura("bench.xml", rd, r) })
		})
	}
}

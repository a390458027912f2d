package coverage

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeRealisticLCOV writes a tracefile shaped like a large real one: files
// source files of 20 to 1,200 lines (mean about 300; a third of each file's
// lines executable or more), about one executable line in eight with 2 or 4
// branches (some never evaluated, "-"), a function every 25 lines, a third
// of the lines never hit, hit counts up to the thousands, and the LF/LH
// summary lines lcov writes. It returns the distinct line records.
func writeRealisticLCOV(w io.Writer, files int, seed uint64) (lines int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	bw := bufio.NewWriterSize(w, 1<<20)
	defer bw.Flush()
	for f := 0; f < files; f++ {
		n := 20 + rng.IntN(1180)
		fmt.Fprintf(bw, "TN:\nSF:/home/runner/work/app/app/src/module%03d/sub%02d/file%05d.c\n", f%500, f%37, f)
		var lf, lh, brf, brh, fnf, fnh int
		for l := 1; l <= n; l += 25 {
			fmt.Fprintf(bw, "FN:%d,fn_%d_%d\n", l, f, l)
		}
		for l := 1; l <= n; l += 25 {
			hits := 0
			if rng.IntN(3) > 0 {
				hits = rng.IntN(5000) + 1
			}
			fmt.Fprintf(bw, "FNDA:%d,fn_%d_%d\n", hits, f, l)
			fnf++
			if hits > 0 {
				fnh++
			}
		}
		for l := 1; l <= n; l++ {
			if rng.IntN(10) < 3 {
				continue // not executable
			}
			hits := 0
			if rng.IntN(3) > 0 {
				hits = rng.IntN(2000) + 1
			}
			fmt.Fprintf(bw, "DA:%d,%d\n", l, hits)
			lf++
			lines++
			if hits > 0 {
				lh++
			}
			if rng.IntN(8) == 0 {
				nb := 2 + 2*rng.IntN(2)
				for b := 0; b < nb; b++ {
					if hits == 0 {
						fmt.Fprintf(bw, "BRDA:%d,0,%d,-\n", l, b)
					} else {
						taken := rng.IntN(3) * rng.IntN(100)
						fmt.Fprintf(bw, "BRDA:%d,0,%d,%d\n", l, b, taken)
						if taken > 0 {
							brh++
						}
					}
					brf++
				}
			}
		}
		fmt.Fprintf(bw, "FNF:%d\nFNH:%d\nBRF:%d\nBRH:%d\nLF:%d\nLH:%d\nend_of_record\n", fnf, fnh, brf, brh, lf, lh)
	}
	return lines
}

// realisticLCOV writes (once per test binary run) a realistic tracefile of
// about mb megabytes and returns its path, size and distinct lines.
func realisticLCOV(tb testing.TB, mb int) (string, int64, int) {
	tb.Helper()
	path := filepath.Join(os.TempDir(), fmt.Sprintf("kpi-exporter-realistic-%dmb.info", mb))
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	lines := writeRealisticLCOV(f, mb<<20/7700, 1) // about 7,700 bytes a file
	f.Close()
	fi, _ := os.Stat(path)
	tb.Cleanup(func() { os.Remove(path) })
	return path, fi.Size(), lines
}

// BenchmarkRealisticLCOV parses a realistic 200 MB tracefile from disk,
// once per iteration (nothing cycled): throughput, and the peak heap.
func BenchmarkRealisticLCOV(b *testing.B) {
	path, size, lines := realisticLCOV(b, 200)
	b.SetBytes(size)
	var peak uint64
	var took time.Duration
	for b.Loop() {
		r := NewReport(nil)
		begin := time.Now()
		p := peakHeap(func() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if err := Parse("bench.info", f, "", r); err != nil {
				b.Fatal(err)
			}
			if got := r.Totals().Lines.Total; got != int64(lines) {
				b.Fatalf("lines %d, want %d", got, lines)
			}
		})
		took = time.Since(begin)
		peak = max(peak, p)
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(lines), "lines")
	b.Logf("%d MB, %d distinct lines: %s", size>>20, lines, took)
}

// BenchmarkRealisticLCOVThroughput is BenchmarkRealisticLCOV without the
// heap sampling, whose stop-the-world reads slow the parse down.
func BenchmarkRealisticLCOVThroughput(b *testing.B) {
	path, size, lines := realisticLCOV(b, 200)
	b.SetBytes(size)
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r := NewReport(nil)
		if err := Parse("bench.info", f, "", r); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if got := r.Totals().Lines.Total; got != int64(lines) {
			b.Fatalf("lines %d, want %d", got, lines)
		}
	}
}

// writeRealisticCobertura writes a Cobertura report of the same shape as
// writeRealisticLCOV's tracefile (files as classes of one package each;
// functions as methods; branch lines with condition-coverage), as
// coverage.py and Cobertura write it. It returns the distinct lines.
func writeRealisticCobertura(w io.Writer, files int, seed uint64) (lines int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	bw := bufio.NewWriterSize(w, 1<<20)
	defer bw.Flush()
	fmt.Fprintf(bw, "<?xml version=\"1.0\" ?>\n<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n")
	fmt.Fprintf(bw, "<coverage line-rate=\"0.5\" branch-rate=\"0.5\" version=\"7.4\" timestamp=\"1700000000\">\n<sources><source>/home/runner/work/app/app</source></sources>\n<packages>\n")
	for f := 0; f < files; f++ {
		n := 20 + rng.IntN(1180)
		fmt.Fprintf(bw, "<package name=\"module%03d.sub%02d\" line-rate=\"0.5\" branch-rate=\"0.5\" complexity=\"0\"><classes>\n", f%500, f%37)
		fmt.Fprintf(bw, "<class name=\"file%05d.py\" filename=\"src/module%03d/sub%02d/file%05d.py\" line-rate=\"0.5\" branch-rate=\"0.5\" complexity=\"0\">\n<methods>\n", f, f%500, f%37, f)
		for l := 1; l <= n; l += 25 {
			fmt.Fprintf(bw, "<method name=\"fn_%d_%d\" signature=\"()\" line-rate=\"0.5\" branch-rate=\"0.5\" complexity=\"0\"><lines><line number=\"%d\" hits=\"%d\"/></lines></method>\n", f, l, l, rng.IntN(3))
		}
		bw.WriteString("</methods>\n<lines>\n")
		for l := 1; l <= n; l++ {
			if rng.IntN(10) < 3 {
				continue
			}
			hits := 0
			if rng.IntN(3) > 0 {
				hits = rng.IntN(2000) + 1
			}
			lines++
			if rng.IntN(8) == 0 {
				nb := 2 + 2*rng.IntN(2)
				c := rng.IntN(nb + 1)
				fmt.Fprintf(bw, "<line number=\"%d\" hits=\"%d\" branch=\"true\" condition-coverage=\"%d%% (%d/%d)\"/>\n", l, hits, 100*c/nb, c, nb)
			} else {
				fmt.Fprintf(bw, "<line number=\"%d\" hits=\"%d\" branch=\"false\"/>\n", l, hits)
			}
		}
		bw.WriteString("</lines>\n</class>\n</classes></package>\n")
	}
	bw.WriteString("</packages>\n</coverage>\n")
	return lines
}

// BenchmarkRealisticCobertura parses a realistic 200 MB Cobertura report
// from disk, once per iteration, nothing cycled.
func BenchmarkRealisticCobertura(b *testing.B) {
	path := filepath.Join(os.TempDir(), "kpi-exporter-realistic-cobertura.xml")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := writeRealisticCobertura(f, 200<<20/20000, 1) // about 20 KB a class
	f.Close()
	b.Cleanup(func() { os.Remove(path) })
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	for b.Loop() {
		in, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		r := NewReport(nil)
		if err := Parse("bench.xml", in, "", r); err != nil {
			b.Fatal(err)
		}
		in.Close()
		if got := r.Totals().Lines.Total; got != int64(lines) {
			b.Fatalf("lines %d, want %d", got, lines)
		}
	}
	b.ReportMetric(float64(lines), "lines")
}

package exporter

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// A snapshot's families only change when a new snapshot is published, so
// each text encoding of them is made once, on the first scrape that asks
// for it, and every later scrape copies bytes. Only the live part (Go and
// process metrics, build info, reload state: a few dozen series) is encoded
// per scrape.
//
// With gzip, the cached part is also kept compressed, as deflate blocks that
// end in a sync flush. A scrape writes one gzip member: header, the cached
// blocks, the live part compressed into the final blocks, and a trailer
// whose CRC-32 continues the cached part's checksum. That is an ordinary
// gzip stream (RFC 1951 blocks, RFC 1952 member), not a concatenation of
// members.

type encoded struct {
	once  sync.Once
	plain []byte
	err   error

	gzOnce sync.Once
	gz     []byte // deflate blocks of plain, sync-flushed, not final
	crc    uint32 // CRC-32 of plain
}

type encodings struct {
	mu sync.Mutex
	by map[expfmt.Format]*encoded
}

func (s *Snapshot) encoded(format expfmt.Format) *encoded {
	s.enc.mu.Lock()
	defer s.enc.mu.Unlock()
	if s.enc.by == nil {
		s.enc.by = map[expfmt.Format]*encoded{}
	}
	e := s.enc.by[format]
	if e == nil {
		e = &encoded{}
		s.enc.by[format] = e
	}
	return e
}

func (e *encoded) text(fams []*dto.MetricFamily, format expfmt.Format) ([]byte, error) {
	e.once.Do(func() {
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, format)
		for _, f := range fams {
			if err := enc.Encode(f); err != nil {
				e.err = err
				return
			}
		}
		e.plain = buf.Bytes()
	})
	return e.plain, e.err
}

func (e *encoded) deflated() ([]byte, uint32) {
	e.gzOnce.Do(func() {
		var buf bytes.Buffer
		fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
		fw.Write(e.plain)
		fw.Flush()
		e.gz, e.crc = buf.Bytes(), crc32.ChecksumIEEE(e.plain)
	})
	return e.gz, e.crc
}

// serveCached writes /metrics for the text formats from the snapshot's
// cached encoding and the freshly gathered live families. It reports false,
// having written nothing, for formats it does not serve (protobuf), which
// the caller then hands to promhttp.
func (e *Exporter) serveCached(w http.ResponseWriter, r *http.Request) bool {
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
	switch format.FormatType() {
	case expfmt.TypeTextPlain, expfmt.TypeOpenMetrics:
	default:
		return false
	}
	snap := e.snap.Load()
	enc := snap.encoded(format)
	cachedPart, err := enc.text(snap.families, format)
	if err != nil {
		return false // let promhttp report it
	}
	live, gatherErr := e.reg.Gather()
	if gatherErr != nil && e.opts.ErrorLog != nil {
		// Like promhttp's ContinueOnError: serve what was gathered.
		e.opts.ErrorLog.Println("error gathering metrics:", gatherErr)
	}
	var livePart bytes.Buffer
	lenc := expfmt.NewEncoder(&livePart, format)
	for _, f := range live {
		if err := lenc.Encode(f); err != nil && e.opts.ErrorLog != nil {
			e.opts.ErrorLog.Println("error encoding metric family:", err)
		}
	}
	if c, ok := lenc.(expfmt.Closer); ok {
		// OpenMetrics ends with # EOF.
		if err := c.Close(); err != nil && e.opts.ErrorLog != nil {
			e.opts.ErrorLog.Println("error finishing the exposition:", err)
		}
	}

	h := w.Header()
	h.Set("Content-Type", string(format))
	h.Add("Vary", "Accept")
	h.Add("Vary", "Accept-Encoding")
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Length", strconv.Itoa(len(cachedPart)+livePart.Len()))
		w.Write(cachedPart)
		w.Write(livePart.Bytes())
		return true
	}
	deflated, crc := enc.deflated()
	h.Set("Content-Encoding", "gzip")
	// Header: magic, deflate, no flags, no mtime, no extra flags, OS unknown.
	w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255})
	w.Write(deflated)
	fw := flatePool.Get().(*flate.Writer)
	fw.Reset(w)
	fw.Write(livePart.Bytes())
	fw.Close()
	flatePool.Put(fw)
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc32.Update(crc, crc32.IEEETable, livePart.Bytes()))
	binary.LittleEndian.PutUint32(trailer[4:], uint32(len(cachedPart)+livePart.Len()))
	w.Write(trailer[:])
	return true
}

// flatePool reuses compressors: a new one allocates about a megabyte.
var flatePool = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(nil, flate.BestSpeed)
	return fw
}}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		if q > 0 {
			return true
		}
	}
	return false
}

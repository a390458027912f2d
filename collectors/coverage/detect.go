package coverage

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// Formats the source reads.
const (
	FormatAuto      = ""
	FormatLCOV      = "lcov"
	FormatCobertura = "cobertura"
	FormatJaCoCo    = "jacoco"
	FormatGo        = "go"
	FormatClover    = "clover"
)

// ErrUnknownFormat is returned (wrapped) for content of no known format.
var ErrUnknownFormat = errors.New("not a coverage report of a known format")

// Formats lists the formats, for messages.
var Formats = []string{FormatLCOV, FormatCobertura, FormatJaCoCo, FormatGo, FormatClover}

// Open unwraps gzip and a UTF-8 byte-order mark, so that what follows is the
// report itself, at most DefaultMaxBytes of it.
func Open(rd io.Reader) (io.Reader, error) { return open(rd, DefaultMaxBytes) }

func open(rd io.Reader, maxBytes int64) (*bufio.Reader, error) {
	return openLimited(rd, Limits{MaxBytes: maxBytes}.withDefaults())
}

func openLimited(rd io.Reader, l Limits) (*bufio.Reader, error) {
	maxBytes := l.MaxBytes
	counted := &countingReader{r: rd}
	br := bufio.NewReaderSize(counted, 64<<10)
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		// The caps are on what the gzip inflates to: a 4 MB gzip of XML
		// inflated to 8 GiB before.
		br = bufio.NewReaderSize(&cappedReader{r: zr, left: maxBytes, max: maxBytes, compressed: counted, ratio: l.MaxRatio}, 256<<10)
	} else {
		// The size ParseLCOV asks for, so that it reads this buffer
		// rather than copying it into another.
		br = bufio.NewReaderSize(&cappedReader{r: br, left: maxBytes, max: maxBytes}, 256<<10)
	}
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xef, 0xbb, 0xbf}) {
		_, _ = br.Discard(3) // the three bytes Peek has just buffered
	}
	return br, nil
}

// Detect tells the format of a report from its first bytes.
func Detect(br *bufio.Reader) (string, error) {
	head, _ := br.Peek(8 << 10)
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	switch {
	case bytes.HasPrefix(trimmed, []byte("mode:")):
		return FormatGo, nil
	case bytes.HasPrefix(trimmed, []byte("TN:")), bytes.HasPrefix(trimmed, []byte("SF:")), bytes.HasPrefix(trimmed, []byte("VER:")):
		return FormatLCOV, nil
	case bytes.HasPrefix(trimmed, []byte("<")):
		root := rootElement(trimmed)
		switch {
		case root == "report":
			return FormatJaCoCo, nil
		case root == "coverage" && bytes.Contains(head, []byte("<project")):
			return FormatClover, nil
		case root == "coverage":
			return FormatCobertura, nil
		}
		return "", fmt.Errorf("%w: XML with root <%s> (not Cobertura, JaCoCo or Clover)", ErrUnknownFormat, root)
	}
	return "", fmt.Errorf("%w (%v)", ErrUnknownFormat, Formats)
}

// rootElement finds the first element name after the prolog, comments and
// doctype.
func rootElement(b []byte) string {
	for {
		i := bytes.IndexByte(b, '<')
		if i < 0 || i+1 >= len(b) {
			return ""
		}
		b = b[i+1:]
		if b[0] == '?' || b[0] == '!' {
			continue
		}
		end := bytes.IndexAny(b, " \t\r\n>/")
		if end < 0 {
			return string(b)
		}
		return string(b[:end])
	}
}

// Parse reads one report of the given format (FormatAuto: detected) into r,
// within r's limits: past them it stops with an error wrapping ErrLimit.
func Parse(name string, rd io.Reader, format string, r *Report) (err error) {
	if r.budget == nil {
		r.SetLimits(r.limits)
	}
	defer func() {
		if p := recover(); p != nil {
			be, ok := p.(budgetExceeded)
			if !ok {
				panic(p)
			}
			err = fmt.Errorf("%s: %w", name, limitError("more than %d line records (limits.max_lines)", be.max))
		}
	}()
	in, err := openLimited(rd, r.limits)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	br := in
	if format == FormatAuto {
		if format, err = Detect(br); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	switch format {
	case FormatLCOV:
		return ParseLCOV(name, br, r)
	case FormatCobertura:
		return ParseCobertura(name, br, r)
	case FormatJaCoCo:
		return ParseJaCoCo(name, br, r)
	case FormatGo:
		return ParseGoProfile(name, br, r)
	case FormatClover:
		return ParseClover(name, br, r)
	}
	return fmt.Errorf("%s: unknown format %q (want one of %v)", name, format, Formats)
}

package coverage

import (
	"errors"
	"fmt"
	"io"
)

// Limits bound what one report may cost, whatever its content: a gzip bomb,
// a hostile line number, XML nested millions deep or Go blocks spanning
// millions of lines stop with an error that names the limit and its
// setting, and the report keeps its last good numbers. The zero value
// means the defaults.
type Limits struct {
	// MaxBytes bounds a report's size after decompression
	// (limits.max_bytes).
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxLines bounds the distinct (file, line) records of a report, and
	// the lines Go blocks are spread over (limits.max_lines).
	MaxLines int64 `yaml:"max_lines"`
	// MaxDepth bounds the nesting of an XML report (limits.max_depth).
	MaxDepth int `yaml:"max_depth"`
	// MaxTokenBytes bounds one XML token, such as an attribute value or
	// a text node (limits.max_token_bytes).
	MaxTokenBytes int64 `yaml:"max_token_bytes"`
	// MaxRatio bounds how many times its compressed size a gzipped report
	// may inflate to (limits.max_ratio): real reports compress 5 to 30
	// times, gzip bombs a thousand.
	MaxRatio int64 `yaml:"max_ratio"`
}

// Default limits: a real 200 MB LCOV tracefile has 12 million distinct
// lines; no report format nests 64 deep.
const (
	DefaultMaxBytes      = 2 << 30
	DefaultMaxLines      = 50_000_000
	DefaultMaxDepth      = 64
	DefaultMaxTokenBytes = 1 << 20
	DefaultMaxRatio      = 100
	// maxGoProfile bounds a Go profile, which the cover library reads
	// whole into memory.
	maxGoProfile = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxLines <= 0 {
		l.MaxLines = DefaultMaxLines
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxTokenBytes <= 0 {
		l.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// ErrLimit is wrapped by every error of a limit.
var ErrLimit = errors.New("limit exceeded")

func limitError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}

// cappedReader fails, rather than ends, past max bytes: a report cut short
// would read as a smaller, wrong report. With compressed set, it also fails
// once it has inflated to more than ratio times what was read of the
// compressed stream (plus a MiB of slack).
type cappedReader struct {
	r          io.Reader
	left       int64
	max        int64
	compressed *countingReader
	ratio      int64
	read       int64
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.compressed != nil && c.read > c.ratio*c.compressed.n+1<<20 {
		return 0, limitError("inflates more than %d times its compressed size (limits.max_ratio): a gzip bomb?", c.ratio)
	}
	if c.left <= 0 {
		// One byte more tells a report of exactly max bytes from a longer one.
		var one [1]byte
		if n, _ := c.r.Read(one[:]); n > 0 {
			return 0, limitError("larger than %d bytes decompressed (limits.max_bytes)", c.max)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	c.read += int64(n)
	return n, err
}

// lineBudget counts the line records of one report; past its limit the
// parse stops (by a panic that Parse turns into this error).
type lineBudget struct {
	left, max int64
}

type budgetExceeded struct{ max int64 }

func (b *lineBudget) take(n int64) {
	if b == nil {
		return
	}
	b.left -= n
	if b.left < 0 {
		panic(budgetExceeded{b.max})
	}
}

// tokenGuard fails a read once one XML token — a tag with its attributes,
// or a run of text — grows past max bytes, before the XML decoder buffers
// it (encoding/xml holds a whole token in memory, growing it by doubling:
// a 300 MiB attribute cost 900 MiB). It follows tags and quoted attribute
// values; a comment or CDATA section counts as one tag.
type tokenGuard struct {
	r     io.Reader
	max   int64
	run   int64
	inTag bool
	quote byte
}

func (g *tokenGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	for _, c := range p[:n] {
		switch {
		case g.quote != 0:
			if c == g.quote {
				g.quote = 0
			}
		case g.inTag && (c == '"' || c == '\''):
			g.quote = c
		case !g.inTag && c == '<':
			g.inTag, g.run = true, 0
		case g.inTag && c == '>':
			g.inTag, g.run = false, 0
		}
		g.run++
		if g.run > g.max {
			return 0, limitError("an XML token of more than %d bytes (limits.max_token_bytes)", g.max)
		}
	}
	return n, err
}

package coverage

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"regexp"

	"golang.org/x/tools/cover"
)

// maxBlockLines bounds the lines one block is spread over for the split: a
// real block is a basic block of a few lines; hostile blocks spanning
// millions of lines each cost 7 s of CPU for a 24 KB profile before.
const maxBlockLines = 10000

var goLine = regexp.MustCompile(`^(.+):([0-9]+)\.([0-9]+),([0-9]+)\.([0-9]+) ([0-9]+) ([0-9]+)$`)

// ParseGoProfile reads a Go coverprofile (set, count or atomic). Blocks are
// merged as golang.org/x/tools/cover merges them — the same block listed
// twice, as -coverpkg writes it, counts once (set: or, count and atomic:
// sum) — and the numbers are statements only, as `go tool cover -func`
// counts them: a Go profile has no line figures (a line count derived from
// blocks would differ from every Go tool). Lines for the Codecov split come
// from the blocks: a line with covered and uncovered blocks is partial.
func ParseGoProfile(name string, rd io.Reader, r *Report) error {
	r.declare(kindStatements)
	data, err := io.ReadAll(io.LimitReader(rd, maxGoProfile+1))
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxGoProfile {
		return fmt.Errorf("%s: %w", name, limitError("a Go profile larger than %d bytes", maxGoProfile))
	}
	profiles, err := cover.ParseProfilesFromReader(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s:%d: %w", name, badGoLine(data), err)
	}
	for _, p := range profiles {
		f, split := r.file(p.FileName), r.splitFile(p.FileName)
		if f.blocks == nil {
			f.blocks = map[blockKey]*block{}
		}
		perLine := map[int][2]bool{} // any covered, any not
		for _, b := range p.Blocks {
			k := blockKey{b.StartLine, b.StartCol, b.EndLine, b.EndCol}
			cur := f.blocks[k]
			if cur == nil {
				cur = &block{stmts: b.NumStmt}
				f.blocks[k] = cur
			}
			// Several profiles merged into one report: as cover does.
			if p.Mode == "set" {
				if b.Count > 0 {
					cur.count = 1
				}
			} else {
				cur.count += int64(b.Count)
			}
			if b.NumStmt == 0 || b.EndLine-b.StartLine > maxBlockLines {
				continue // a hostile block spanning millions of lines has no lines for the split
			}
			// Every line a block spans is work: hostile blocks spanning
			// millions of lines each stop at the report's line budget.
			r.budget.take(int64(b.EndLine-b.StartLine) + 1)
			for l := b.StartLine; l <= b.EndLine; l++ {
				v := perLine[l]
				if b.Count > 0 {
					v[0] = true
				} else {
					v[1] = true
				}
				perLine[l] = v
			}
		}
		for l, v := range perLine {
			hits := int64(0)
			if v[0] {
				hits = 1
			}
			split.addLine(l, hits)
			if v[0] && v[1] {
				split.markPartial(l)
			}
		}
	}
	return nil
}

// badGoLine finds the first line of a profile the cover library refuses,
// for the error's place.
func badGoLine(data []byte) int {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 || line == "" {
			if n == 1 && !goModeLine(line) {
				return 1
			}
			continue
		}
		if goModeLine(line) {
			continue // merged profiles repeat the mode line
		}
		if !goLine.MatchString(line) {
			return n
		}
	}
	return n
}

func goModeLine(s string) bool {
	return s == "mode: set" || s == "mode: count" || s == "mode: atomic"
}

// Package coverage is the source type "coverage": test coverage from
// Cobertura, LCOV, JaCoCo, Go and Clover reports — local files, URLs or the
// newest artifact of a GitHub Actions workflow — recomputed from the records
// by documented rules, merged across inputs.
package coverage

import (
	"math"
	"path"
	"sort"
	"strings"
)

// Report accumulates coverage records, merged per (file, line) for line
// formats, per block for Go, per branch and per function.
type Report struct {
	files map[string]*fileCov
	// Counter-only formats (JaCoCo) add report-level counts here.
	extra Totals
	// HeaderMismatch is set when a report's header totals disagree with
	// its records.
	HeaderMismatch bool
	// strip lists path prefixes removed before merging.
	strip []string
	// splitOnly holds per-line records of formats whose numbers are report
	// counters (JaCoCo), or that count statements (Go): they only make the
	// Codecov split.
	splitOnly map[string]*fileCov
	// declared holds the kinds the parsed formats carry: they are exported
	// even at 0 of 0, so an empty report is 0 of 0 in every format.
	declared kinds
	// limits bound the parse; budget counts its line records.
	limits Limits
	budget *lineBudget
}

// SetLimits sets the report's limits (the zero value: the defaults).
func (r *Report) SetLimits(l Limits) {
	r.limits = l.withDefaults()
	r.budget = &lineBudget{left: r.limits.MaxLines, max: r.limits.MaxLines}
}

// kinds is a set of the numbers a format carries.
type kinds uint8

const (
	kindLines kinds = 1 << iota
	kindBranches
	kindFunctions
	kindStatements
)

func (r *Report) declare(k kinds) { r.declared |= k }

type fileCov struct {
	// lines[n] is the hit count of line n plus one; 0 means no record.
	// Line numbers past denseLines go to sparse, so that a hostile line
	// number cannot make a huge slice.
	lines    []int64
	sparse   map[int]int64
	branches map[branchKey]int64
	funcs    map[string]int64
	blocks   map[blockKey]*block
	partial  map[int]bool // lines Codecov calls partial without branch records
	// records counts the line records; budget is the report's.
	records int
	budget  *lineBudget
	// lineOnly marks LCOV's files: without any line record they count
	// nothing, functions and branches included, as lcov --summary counts.
	lineOnly bool
}

// addRecord merges one LCOV record into the report.
func (r *Report) addRecord(name string, rec *fileCov) {
	name = r.normalise(name)
	if cur := r.files[name]; cur != nil {
		// The record's lines were counted as it was read.
		b := cur.budget
		cur.budget = nil
		cur.merge(rec)
		cur.budget = b
		return
	}
	rec.budget = r.budget
	r.files[name] = rec
}

// satAdd adds counts, saturating at the largest int64 rather than wrapping.
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (f *fileCov) markPartial(line int) {
	if f.partial == nil {
		f.partial = map[int]bool{}
	}
	f.partial[line] = true
}

type branchKey struct {
	line int
	id   string
}

type blockKey struct{ startLine, startCol, endLine, endCol int }

type block struct {
	stmts int
	count int64
}

// NewReport starts an empty report; strip holds path prefixes to remove.
func NewReport(strip []string) *Report {
	r := &Report{files: map[string]*fileCov{}, strip: strip}
	r.SetLimits(Limits{})
	return r
}

// normalise makes paths of different tools comparable: forward slashes,
// cleaned, configured prefixes and a leading ./ removed.
func (r *Report) normalise(p string) string {
	p = strings.ReplaceAll(p, "\\", "/")
	for _, s := range r.strip {
		s = strings.ReplaceAll(s, "\\", "/")
		if strings.HasPrefix(p, s) {
			p = strings.TrimPrefix(p, s)
			break
		}
	}
	p = path.Clean(p)
	return strings.TrimPrefix(p, "./")
}

func (r *Report) file(name string) *fileCov {
	name = r.normalise(name)
	f := r.files[name]
	if f == nil {
		f = &fileCov{budget: r.budget}
		r.files[name] = f
	}
	return f
}

// splitFile is the file of per-line records that count only for the
// Codecov split.
func (r *Report) splitFile(name string) *fileCov {
	name = r.normalise(name)
	if r.splitOnly == nil {
		r.splitOnly = map[string]*fileCov{}
	}
	f := r.splitOnly[name]
	if f == nil {
		f = &fileCov{budget: r.budget}
		r.splitOnly[name] = f
	}
	return f
}

// denseLines bounds the slice of line counts.
const denseLines = 1 << 20

func (f *fileCov) addLine(n int, hits int64) {
	if n < 1 {
		return
	}
	// The slice grows only while the file's records fill a fair share of
	// it: a hostile line number near 2^20 in a file of a few records goes
	// to the map, not into 8 MiB of slice.
	if n >= denseLines || n >= len(f.lines) && n > 4*f.records+1024 {
		if f.sparse == nil {
			f.sparse = map[int]int64{}
		}
		if f.sparse[n] == 0 {
			f.records++
			f.budget.take(1)
		}
		f.sparse[n] = satAdd(satAdd(f.sparse[n], max(hits, 0)), boolInt(f.sparse[n] == 0))
		return
	}
	if n >= len(f.lines) {
		grown := make([]int64, max(n+1, 2*len(f.lines)))
		copy(grown, f.lines)
		f.lines = grown
	}
	if hits < 0 {
		hits = 0
	}
	if f.lines[n] == 0 {
		f.records++
		f.budget.take(1)
	}
	f.lines[n] = satAdd(satAdd(f.lines[n], hits), boolInt(f.lines[n] == 0)) // the +1 marks the record
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (f *fileCov) addBranch(line int, id string, taken int64) {
	if f.branches == nil {
		f.branches = map[branchKey]int64{}
	}
	k := branchKey{line, id}
	f.branches[k] = satAdd(f.branches[k], max(taken, 0))
}

func (f *fileCov) addFunc(name string, hits int64) {
	if f.funcs == nil {
		f.funcs = map[string]int64{}
	}
	f.funcs[name] = satAdd(f.funcs[name], max(hits, 0))
}

// Count is covered of total.
type Count struct {
	Covered, Total int64
}

// Totals are a report's numbers. A kind the formats did not report has
// Total 0 and is left out of the measurements.
type Totals struct {
	Lines, Branches, Functions, Statements Count
	// Codecov's split of the lines: a line with branches of which some but
	// not all were taken is partial.
	Hits, Misses, Partials                             int64
	hasLines, hasBranches, hasFunctions, hasStatements bool
	headerMismatch                                     bool
}

// Totals computes the report's numbers from its merged records. Where a
// format's numbers are report counters (JaCoCo, Clover metrics), those are
// the numbers, and the records only make the Codecov split.
func (r *Report) Totals() Totals {
	t := r.totalsOfRecords()
	t.hasLines = t.hasLines || r.declared&kindLines != 0
	t.hasBranches = t.hasBranches || r.declared&kindBranches != 0
	t.hasFunctions = t.hasFunctions || r.declared&kindFunctions != 0
	t.hasStatements = t.hasStatements || r.declared&kindStatements != 0
	if r.extra.hasLines {
		t.Lines, t.hasLines = add(t.Lines, r.extra.Lines), true
	}
	if r.extra.hasBranches {
		t.Branches, t.hasBranches = add(t.Branches, r.extra.Branches), true
	}
	if r.extra.hasFunctions {
		t.Functions, t.hasFunctions = add(t.Functions, r.extra.Functions), true
	}
	if r.extra.hasStatements {
		t.Statements, t.hasStatements = add(t.Statements, r.extra.Statements), true
	}
	return t
}

func (r *Report) totalsOfRecords() Totals {
	var t Totals
	names := make([]string, 0, len(r.files))
	for n := range r.files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f := r.files[n]
		if f.lineOnly && !f.hasLines() {
			continue
		}
		branchesByLine := map[int][2]int64{} // covered, total
		for k, taken := range f.branches {
			c := branchesByLine[k.line]
			c[1]++
			if taken > 0 {
				c[0]++
			}
			branchesByLine[k.line] = c
			t.Branches.Total++
			if taken > 0 {
				t.Branches.Covered++
			}
			t.hasBranches = true
		}
		f.eachLine(func(line int, v int64) {
			t.hasLines = true
			t.Lines.Total++
			hit := v > 1
			if hit {
				t.Lines.Covered++
			}
			b := branchesByLine[line]
			switch {
			case !hit:
				t.Misses++
			case b[1] > 0 && b[0] < b[1], f.partial[line]:
				t.Partials++
			default:
				t.Hits++
			}
		})
		for _, hits := range f.funcs {
			t.hasFunctions = true
			t.Functions.Total++
			if hits > 0 {
				t.Functions.Covered++
			}
		}
		for _, b := range f.blocks {
			t.hasStatements = true
			t.Statements.Total += int64(b.stmts)
			if b.count > 0 {
				t.Statements.Covered += int64(b.stmts)
			}
		}
	}
	for _, f := range r.splitOnly {
		f.eachLine(func(line int, v int64) {
			switch {
			case v == 1:
				t.Misses++
			case f.partial[line]:
				t.Partials++
			default:
				t.Hits++
			}
		})
	}
	return t
}

func (f *fileCov) hasLines() bool {
	if len(f.sparse) > 0 {
		return true
	}
	for _, v := range f.lines {
		if v != 0 {
			return true
		}
	}
	return false
}

// eachLine calls fn for every recorded line with its count plus one.
func (f *fileCov) eachLine(fn func(line int, v int64)) {
	for line, v := range f.lines {
		if v != 0 {
			fn(line, v)
		}
	}
	for line, v := range f.sparse {
		fn(line, v)
	}
}

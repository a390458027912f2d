// Package coverage is the source type "coverage": test coverage from
// Cobertura, LCOV, JaCoCo, Go and Clover reports — local files, URLs or the
// newest artifact of a GitHub Actions workflow — recomputed from the records
// by documented rules, merged across inputs.
package coverage

import (
	"hash/fnv"
	"math"
	"path"
	"sort"
	"strconv"
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
	// lines[n] is the state of line n: 0 no record, 1 a record never hit,
	// 2 a record hit (all the counting rules need: a merged line is hit
	// when any record hit it). A byte a line, so that 12 million lines
	// take 12 MB. Line numbers the slice would not fill go to sparse, so
	// that a hostile line number cannot make a huge slice.
	lines  []uint8
	sparse map[int]uint8
	// branches are appended as read and sorted and merged (taken when any
	// record took it) when they are counted or grow: 16 bytes a branch.
	branches  []branchRec
	compacted int
	funcs     map[string]int64
	blocks    map[blockKey]*block
	partial   map[int]bool // lines Codecov calls partial without branch records
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

// branchRec is one branch of a line: id packs the block and branch numbers
// (or hashes a non-numeric id).
type branchRec struct {
	id    uint64
	line  int32
	taken bool
}

// branchID packs block and branch numbers; a non-numeric pair is hashed,
// with the top bit set so that it never meets a packed pair.
func branchID(block, branch string) uint64 {
	b, err1 := strconv.ParseUint(block, 10, 31)
	r, err2 := strconv.ParseUint(branch, 10, 32)
	if err1 == nil && err2 == nil {
		return b<<32 | r
	}
	h := fnv.New64a()
	h.Write([]byte(block))
	h.Write([]byte{0})
	h.Write([]byte(branch))
	return h.Sum64() | 1<<63
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
	state := uint8(1)
	if hits > 0 {
		state = 2
	}
	if n >= denseLines || n >= len(f.lines) && n > 4*f.records+1024 {
		if f.sparse == nil {
			f.sparse = map[int]uint8{}
		}
		if f.sparse[n] == 0 {
			f.records++
			f.budget.take(1)
		}
		f.sparse[n] = max(f.sparse[n], state)
		return
	}
	if n >= len(f.lines) {
		grown := make([]uint8, max(n+1, 2*len(f.lines), 256))
		copy(grown, f.lines)
		f.lines = grown
	}
	if f.lines[n] == 0 {
		f.records++
		f.budget.take(1)
	}
	f.lines[n] = max(f.lines[n], state)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (f *fileCov) addBranch(line int, id uint64, taken int64) {
	if line < 1 || line > math.MaxInt32 {
		return
	}
	f.branches = append(f.branches, branchRec{id: id, line: int32(line), taken: taken > 0})
	// Records of the same file repeat their branches: merge them once the
	// slice has doubled since the last merge.
	if len(f.branches) >= 4096 && len(f.branches) >= 2*f.compacted {
		f.compactBranches()
	}
}

// compactBranches sorts the branches by line and id and merges duplicates.
func (f *fileCov) compactBranches() {
	bs := f.branches
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].line != bs[j].line {
			return bs[i].line < bs[j].line
		}
		return bs[i].id < bs[j].id
	})
	out := bs[:0]
	for _, b := range bs {
		if n := len(out); n > 0 && out[n-1].line == b.line && out[n-1].id == b.id {
			out[n-1].taken = out[n-1].taken || b.taken
			continue
		}
		out = append(out, b)
	}
	f.branches = out
	f.compacted = len(out)
}

// addFuncBytes is addFunc for a name still in the reader's buffer: an
// existing function costs no allocation.
func (f *fileCov) addFuncBytes(name []byte, hits int64) {
	if f.funcs == nil {
		f.funcs = map[string]int64{}
	}
	if cur, ok := f.funcs[string(name)]; ok {
		f.funcs[string(name)] = satAdd(cur, max(hits, 0))
		return
	}
	f.funcs[string(name)] = max(hits, 0)
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
		f.compactBranches()
		for _, b := range f.branches {
			t.Branches.Total++
			if b.taken {
				t.Branches.Covered++
			}
			t.hasBranches = true
		}
		// The branches are sorted by line: dense lines, ascending, walk
		// them with a cursor; the few sparse ones search.
		bs := f.branches
		j := 0
		branchesAt := func(line int, ascending bool) (b [2]int64) {
			i := j
			if !ascending {
				i = sort.Search(len(bs), func(i int) bool { return int(bs[i].line) >= line })
			}
			for i < len(bs) && int(bs[i].line) < line {
				i++
			}
			for ; i < len(bs) && int(bs[i].line) == line; i++ {
				b[1]++
				if bs[i].taken {
					b[0]++
				}
			}
			if ascending {
				j = i
			}
			return b
		}
		count := func(line int, v int64, ascending bool) {
			t.hasLines = true
			t.Lines.Total++
			hit := v > 1
			if hit {
				t.Lines.Covered++
			}
			b := branchesAt(line, ascending)
			switch {
			case !hit:
				t.Misses++
			case b[1] > 0 && b[0] < b[1], f.partial[line]:
				t.Partials++
			default:
				t.Hits++
			}
		}
		for line, v := range f.lines {
			if v != 0 {
				count(line, int64(v), true)
			}
		}
		for line, v := range f.sparse {
			count(line, int64(v), false)
		}
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

// eachLine calls fn for every recorded line with its state: 1 never hit, 2
// hit.
func (f *fileCov) eachLine(fn func(line int, v int64)) {
	for line, v := range f.lines {
		if v != 0 {
			fn(line, int64(v))
		}
	}
	for line, v := range f.sparse {
		fn(line, int64(v))
	}
}

package coverage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
)

// ParseLCOV reads an LCOV tracefile (1.x and 2.x records) into r, counting
// as `lcov --summary` (lcov 1.16) does: records of the same file are merged
// per line (hit when the sum is above 0), per function and per branch; a
// file without DA records counts nothing, not even its functions; exception
// branches (BRDA blocks with the "e" prefix of lcov 2.x) are not counted; a
// last record that is not closed by end_of_record is dropped; hit counts up
// to 2^64-1 (gcov writes them) saturate instead of failing. Header records
// (LF/LH, FNF/FNH, BRF/BRH) are compared with the records, never trusted.
func ParseLCOV(name string, rd io.Reader, r *Report) error {
	r.declare(kindLines | kindFunctions | kindBranches)
	br := bufio.NewReaderSize(rd, 256<<10)
	// A record is read into its own fileCov and merged into the report at
	// end_of_record, so that an unclosed last record leaves no trace.
	var f *fileCov
	var fname string
	lineNo := 0
	// Per record: what the summary lines claim, and what the records hold.
	claims := [6]int64{-1, -1, -1, -1, -1, -1} // LF LH FNF FNH BRF BRH
	var held [6]int64
	fnNames := map[string]string{} // LCOV 2.x: FNA index → the function's first name
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s", name, lineNo, fmt.Sprintf(format, args...))
	}
	for {
		raw, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fail("line longer than %d bytes", br.Size())
		}
		if len(raw) == 0 && err != nil {
			if errors.Is(err, io.EOF) {
				return nil // an unclosed last record is dropped, as lcov drops it
			}
			return fmt.Errorf("%s: %w", name, err)
		}
		lineNo++
		line := raw
		for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			continue
		}
		tag, rest, found := bytes.Cut(line, []byte(":"))
		if !found {
			if bytes.Equal(line, []byte("end_of_record")) {
				if f == nil {
					return fail("end_of_record outside a file record")
				}
				// The record's own fileCov holds just its functions.
				held[2] = int64(len(f.funcs))
				for _, h := range f.funcs {
					if h > 0 {
						held[3]++
					}
				}
				for i, c := range claims {
					if c >= 0 && c != held[i] {
						r.HeaderMismatch = true
					}
				}
				r.addRecord(fname, f)
				f, claims, held = nil, [6]int64{-1, -1, -1, -1, -1, -1}, [6]int64{}
				clear(fnNames)
				continue
			}
			return fail("unknown line %q", truncate(line))
		}
		switch string(tag) {
		case "TN", "VER":
		case "SF":
			if f != nil {
				return fail("SF before end_of_record")
			}
			f, fname = &fileCov{lineOnly: true, budget: r.budget}, string(rest)
		case "DA":
			if f == nil {
				return fail("DA outside a file record")
			}
			ln, rest2, ok := cutInt(rest)
			if !ok {
				return fail("DA %q: want line,hits", truncate(rest))
			}
			hits, _, ok := cutCount(rest2)
			if !ok {
				return fail("DA %q: want line,hits", truncate(rest))
			}
			f.addLine(int(ln), hits)
			held[0]++
			if hits > 0 {
				held[1]++
			}
		case "FN":
			// 1.x: FN:<line>,<name>; 2.x also FN:<line>,<end line>,<name>.
			if f == nil {
				return fail("FN outside a file record")
			}
			i := bytes.LastIndexByte(rest, ',')
			if i <= 0 || i == len(rest)-1 {
				return fail("FN %q: want line,name", truncate(rest))
			}
			f.addFuncBytes(rest[i+1:], 0)
		case "FNDA":
			if f == nil {
				return fail("FNDA outside a file record")
			}
			hits, fn, ok := cutCount(rest)
			if !ok || len(fn) == 0 {
				return fail("FNDA %q: want hits,name", truncate(rest))
			}
			f.addFuncBytes(fn, hits)
		case "FNL":
			// 2.x: FNL:<index>,<line>[,<end line>] declares a function.
			if f == nil {
				return fail("FNL outside a file record")
			}
			if _, _, ok := cutInt(rest); !ok {
				return fail("FNL %q: want index,line", truncate(rest))
			}
		case "FNA":
			// 2.x: FNA:<index>,<hits>,<name> (aliases of one function share
			// the index; lcov counts the function once).
			if f == nil {
				return fail("FNA outside a file record")
			}
			idx, rest2, ok := cutInt(rest)
			if !ok {
				return fail("FNA %q: want index,hits,name", truncate(rest))
			}
			hits, fn, ok := cutCount(rest2)
			if !ok || len(fn) == 0 {
				return fail("FNA %q: want index,hits,name", truncate(rest))
			}
			// Aliases share an index: the function counts once, by its
			// first name, hit when any alias was.
			key := strconv.FormatInt(idx, 10)
			first, seen := fnNames[key]
			if !seen {
				first = string(fn)
				fnNames[key] = first
			}
			f.addFunc(first, hits)
		case "BRDA":
			// BRDA:<line>,[<exception>]<block>,<branch>,<taken|->
			if f == nil {
				return fail("BRDA outside a file record")
			}
			ln, rest2, ok1 := cutInt(rest)
			block, rest3, ok2 := bytes.Cut(rest2, []byte(","))
			branch, takenText, ok3 := bytes.Cut(rest3, []byte(","))
			taken, ok4 := int64(0), true
			if ok3 && !bytes.Equal(takenText, []byte("-")) {
				var tail []byte
				taken, tail, ok4 = cutCount(takenText)
				ok4 = ok4 && tail == nil
			}
			if !ok1 || !ok2 || !ok3 || !ok4 || len(block) == 0 || len(branch) == 0 || bytes.IndexByte(takenText, ',') >= 0 {
				return fail("BRDA %q: want line,block,branch,taken", truncate(rest))
			}
			if block[0] == 'e' {
				// An exception branch (lcov 2.x): not counted, as lcov 1.16
				// and Codecov do not count it.
				continue
			}
			held[4]++
			if taken > 0 {
				held[5]++
			}
			f.addBranch(int(ln), branchID(string(block), string(branch)), taken)
		case "LF", "LH", "FNF", "FNH", "BRF", "BRH":
			i := map[string]int{"LF": 0, "LH": 1, "FNF": 2, "FNH": 3, "BRF": 4, "BRH": 5}[string(tag)]
			claims[i] = atoi(rest)
		default:
			// Unknown records (future versions, tool extensions) are skipped.
		}
	}
}

func atoi(b []byte) int64 {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// cutInt parses a decimal integer at the start of b, up to a comma; rest is
// what follows the comma. Numbers beyond 2^53 fail.
func cutInt(b []byte) (n int64, rest []byte, ok bool) { return cutNumber(b, false) }

// cutCount is cutInt for hit counts: up to 2^64-1 (and beyond) saturates at
// the largest int64 instead of failing, and a negative count (broken gcov
// data) is 0.
func cutCount(b []byte) (n int64, rest []byte, ok bool) { return cutNumber(b, true) }

func cutNumber(b []byte, count bool) (n int64, rest []byte, ok bool) {
	i := 0
	neg := false
	if i < len(b) && b[i] == '-' {
		neg, i = true, 1
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		switch {
		case n <= (math.MaxInt64-9)/10:
			n = n*10 + int64(b[i]-'0')
		case count:
			n = math.MaxInt64
		}
		if !count && n > 1<<53 {
			return 0, nil, false
		}
		i++
	}
	if i == start {
		return 0, nil, false
	}
	switch {
	case neg && count:
		n = 0
	case neg:
		n = -n
	}
	if i < len(b) {
		if b[i] != ',' {
			return 0, nil, false
		}
		return n, b[i+1:], true
	}
	return n, nil, true
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

package coverage

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// xmlReader streams an XML report token by token (never the whole
// document in memory) and knows the line of the token it is on.
type xmlReader struct {
	name   string
	dec    tokenSource
	limits Limits
	depth  int
}

// token is the next token within the limits (the caller's wrap adds the
// place): nesting deeper than
// limits.max_depth (2 million levels read as an empty report before) or a
// token larger than limits.max_token_bytes is an error.
func (x *xmlReader) token() (xml.Token, error) {
	before := x.dec.InputOffset()
	tok, err := x.dec.Token()
	if err != nil {
		return tok, err
	}
	if n := x.dec.InputOffset() - before; n > x.limits.MaxTokenBytes {
		return nil, limitError("an XML token of %d bytes, more than %d (limits.max_token_bytes)", n, x.limits.MaxTokenBytes)
	}
	switch tok.(type) {
	case xml.StartElement:
		x.depth++
		if x.depth > x.limits.MaxDepth {
			return nil, limitError("XML nested deeper than %d elements (limits.max_depth)", x.limits.MaxDepth)
		}
	case xml.EndElement:
		x.depth--
	}
	return tok, nil
}

func newXMLReader(name string, rd io.Reader, l Limits) *xmlReader {
	l = l.withDefaults()
	dec := xml.NewDecoder(&tokenGuard{r: rd, max: l.MaxTokenBytes})
	dec.Strict = true
	dec.CharsetReader = func(charset string, input io.Reader) (io.Reader, error) {
		if strings.EqualFold(charset, "utf-8") || strings.EqualFold(charset, "us-ascii") || strings.EqualFold(charset, "iso-8859-1") {
			return input, nil
		}
		return nil, fmt.Errorf("unsupported charset %s", charset)
	}
	return &xmlReader{name: name, dec: dec, limits: l}
}

// newFastXMLReader reads through xmlScanner instead of encoding/xml.
func newFastXMLReader(name string, rd io.Reader, l Limits) *xmlReader {
	l = l.withDefaults()
	return &xmlReader{name: name, dec: newXMLScanner(&tokenGuard{r: rd, max: l.MaxTokenBytes}, l.MaxTokenBytes), limits: l}
}

// line is the line of the decoder's current position.
func (x *xmlReader) line() int64 {
	l, _ := x.dec.InputPos()
	return int64(l)
}

func (x *xmlReader) errorf(format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", x.name, x.line(), fmt.Sprintf(format, args...))
}

func (x *xmlReader) wrap(err error) error {
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%s:%d: %s", x.name, se.Line, se.Msg)
	}
	return fmt.Errorf("%s:%d: %w", x.name, x.line(), err)
}

func attr(e xml.StartElement, name string) (string, bool) {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

// intAttr reads an integer attribute; some tools write counters as floats
// ("12.0"), which are accepted when whole.
func (x *xmlReader) intAttr(e xml.StartElement, name string, required bool) (int64, bool, error) {
	v, ok := attr(e, name)
	if !ok {
		if required {
			return 0, false, x.errorf("<%s> lacks %s", e.Name.Local, name)
		}
		return 0, false, nil
	}
	v = strings.TrimSpace(v)
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n, true, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false, x.errorf("<%s %s=%q> is not a whole number", e.Name.Local, name, v)
	}
	return int64(f), true, nil
}

// ParseCobertura streams a Cobertura report into r. Lines are merged per
// (file, line): a line listed under a method and again under its class
// counts once. Branches come from condition-coverage ("50% (1/2)"), once
// per line. The header's lines-valid and lines-covered are compared with
// the records.
func ParseCobertura(name string, rd io.Reader, r *Report) error {
	r.declare(kindLines | kindBranches | kindFunctions)
	x := newFastXMLReader(name, rd, r.limits)
	var file, class string
	var f *fileCov
	claims := [4]int64{-1, -1, -1, -1} // lines-valid, lines-covered, branches-valid, branches-covered
	seenRoot := false
	type lineInfo struct {
		hits              int64
		covered, branches int64
	}
	// Lines of the current class, merged before they reach the report. A
	// class's own <line> elements are its lines; the lines inside its
	// <method> elements count only when it has none of its own (istanbul
	// writes each function's declaration as a method line that is not a
	// class line).
	own, inMethods := map[int64]lineInfo{}, map[int64]lineInfo{}
	type methodInfo struct {
		key       string
		hits      int64
		hasHits   bool
		lineHit   bool
		lineRate  float64
		hasRate   bool
		inProcess bool
	}
	var m methodInfo
	flush := func() {
		lines := own
		if len(lines) == 0 {
			lines = inMethods
		}
		for n, li := range lines {
			f.addLine(int(n), li.hits)
			for i := int64(0); i < li.branches; i++ {
				taken := int64(0)
				if i < li.covered {
					taken = 1
				}
				f.addBranch(int(n), uint64(i), taken)
			}
		}
		clear(own)
		clear(inMethods)
	}
	for {
		tok, err := x.token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.wrap(err)
		}
		e, ok := tok.(xml.StartElement)
		if !ok {
			if end, ok := tok.(xml.EndElement); ok {
				switch {
				case end.Name.Local == "class" && f != nil:
					flush()
					f = nil
				case end.Name.Local == "method" && m.inProcess:
					// A method is covered when the tool says it was hit
					// (istanbul's hits), else when one of its lines was,
					// else when its line-rate is above 0.
					covered := m.lineHit || (m.hasRate && m.lineRate > 0)
					if m.hasHits {
						covered = m.hits > 0
					}
					f.addFunc(m.key, boolInt(covered))
					m = methodInfo{}
				}
			}
			continue
		}
		switch e.Name.Local {
		case "coverage":
			seenRoot = true
			for i, a := range []string{"lines-valid", "lines-covered", "branches-valid", "branches-covered"} {
				if v, ok, err := x.intAttr(e, a, false); err != nil {
					return err
				} else if ok {
					claims[i] = v
				}
			}
		case "class":
			fn, ok := attr(e, "filename")
			if !ok {
				return x.errorf("<class> lacks filename")
			}
			class, _ = attr(e, "name")
			file, f = fn, r.file(fn)
		case "method":
			if f == nil {
				return x.errorf("<method> outside a <class>")
			}
			n, _ := attr(e, "name")
			sig, _ := attr(e, "signature")
			m = methodInfo{key: class + "." + n + sig, inProcess: true}
			if v, ok, err := x.intAttr(e, "hits", false); err != nil {
				return err
			} else if ok {
				m.hits, m.hasHits = v, true
			}
			if v, ok := attr(e, "line-rate"); ok {
				if rate, err := strconv.ParseFloat(v, 64); err == nil {
					m.lineRate, m.hasRate = rate, true
				}
			}
		case "line":
			if f == nil {
				return x.errorf("<line> outside a <class>")
			}
			n, _, err := x.intAttr(e, "number", true)
			if err != nil {
				return err
			}
			hits, _, err := x.intAttr(e, "hits", true)
			if err != nil {
				return err
			}
			cur := own
			if m.inProcess {
				cur = inMethods
				m.lineHit = m.lineHit || hits > 0
			}
			li := cur[n]
			li.hits = max(li.hits, hits)
			if b, _ := attr(e, "branch"); b == "true" {
				cc, _ := attr(e, "condition-coverage")
				c, t, ok := parseCondition(cc)
				if !ok {
					return x.errorf("line %d of %s: condition-coverage %q is not like \"50%% (1/2)\"", n, file, cc)
				}
				if t > li.branches || (t == li.branches && c > li.covered) {
					li.covered, li.branches = c, t
				}
			}
			cur[n] = li
		}
	}
	if !seenRoot {
		return fmt.Errorf("%s: not a Cobertura report (no <coverage> element)", name)
	}
	// Every header total the format has is compared with the records.
	if claims != [4]int64{-1, -1, -1, -1} {
		t := r.totalsOfRecords()
		for i, got := range []int64{t.Lines.Total, t.Lines.Covered, t.Branches.Total, t.Branches.Covered} {
			if claims[i] >= 0 && claims[i] != got {
				r.HeaderMismatch = true
			}
		}
	}
	return nil
}

// parseCondition reads "50% (1/2)".
func parseCondition(s string) (covered, total int64, ok bool) {
	open, close := strings.IndexByte(s, '('), strings.IndexByte(s, ')')
	if open < 0 || close < open {
		return 0, 0, false
	}
	a, b, found := strings.Cut(s[open+1:close], "/")
	if !found {
		return 0, 0, false
	}
	c, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	t, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	if err1 != nil || err2 != nil || c < 0 || t < 0 || c > t {
		return 0, 0, false
	}
	return c, t, true
}

// ParseJaCoCo streams a JaCoCo report. The numbers are the report-level
// counters (a missing counter is 0 of 0); the per-line elements give the
// Codecov split.
func ParseJaCoCo(name string, rd io.Reader, r *Report) error {
	x := newXMLReader(name, rd, r.limits)
	depth := 0
	seenRoot := false
	pkg, file := "", ""
	for {
		tok, err := x.token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.wrap(err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			switch e.Name.Local {
			case "report":
				seenRoot = depth == 1
			case "package":
				pkg, _ = attr(e, "name")
			case "sourcefile":
				file, _ = attr(e, "name")
			case "line":
				if file == "" {
					return x.errorf("<line> outside a <sourcefile>")
				}
				nr, _, err := x.intAttr(e, "nr", true)
				if err != nil {
					return err
				}
				ci, _, err := x.intAttr(e, "ci", false)
				if err != nil {
					return err
				}
				mb, _, err := x.intAttr(e, "mb", false)
				if err != nil {
					return err
				}
				cb, _, err := x.intAttr(e, "cb", false)
				if err != nil {
					return err
				}
				fc := r.splitFile(pkg + "/" + file)
				fc.addLine(int(nr), ci)
				if ci > 0 && mb > 0 && cb >= 0 {
					fc.markPartial(int(nr))
				}
			case "counter":
				if depth != 2 {
					continue // only the report-level counters count
				}
				typ, _ := attr(e, "type")
				missed, _, err := x.intAttr(e, "missed", true)
				if err != nil {
					return err
				}
				covered, _, err := x.intAttr(e, "covered", true)
				if err != nil {
					return err
				}
				c := Count{Covered: covered, Total: covered + missed}
				switch typ {
				case "LINE":
					r.extra.Lines, r.extra.hasLines = add(r.extra.Lines, c), true
				case "BRANCH":
					r.extra.Branches, r.extra.hasBranches = add(r.extra.Branches, c), true
				case "METHOD":
					r.extra.Functions, r.extra.hasFunctions = add(r.extra.Functions, c), true
				}
			}
		case xml.EndElement:
			depth--
			if e.Name.Local == "sourcefile" {
				file = ""
			}
		}
	}
	if !seenRoot {
		return fmt.Errorf("%s: not a JaCoCo report (no <report> element)", name)
	}
	// A JaCoCo report without some counter type has 0 of 0 of it.
	r.extra.hasLines, r.extra.hasBranches, r.extra.hasFunctions = true, true, true
	return nil
}

func add(a, b Count) Count { return Count{a.Covered + b.Covered, a.Total + b.Total} }

// ParseClover streams a Clover report: statements, branches (conditionals)
// and methods from the project metrics, and lines too: the line figures are
// the producing tool's own project totals (statements, coveredstatements),
// as its report page shows them. The line elements make only the Codecov
// split, where a cond line is covered by its count (not truecount +
// falsecount) and partial when one way was never taken.
func ParseClover(name string, rd io.Reader, r *Report) error {
	x := newXMLReader(name, rd, r.limits)
	inProject, seenProject := false, false
	var file *fileCov
	depth, projectDepth := 0, 0
	for {
		tok, err := x.token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return x.wrap(err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			switch e.Name.Local {
			case "project":
				inProject, seenProject, projectDepth = true, true, depth
			case "metrics":
				if !inProject || depth != projectDepth+1 {
					continue // package and file metrics are not the totals
				}
				get := func(n string) (int64, error) { v, _, err := x.intAttr(e, n, false); return v, err }
				var vals [6]int64
				for i, n := range []string{"statements", "coveredstatements", "conditionals", "coveredconditionals", "methods", "coveredmethods"} {
					v, err := get(n)
					if err != nil {
						return err
					}
					vals[i] = v
				}
				r.extra.Statements, r.extra.hasStatements = add(r.extra.Statements, Count{vals[1], vals[0]}), true
				r.extra.Lines, r.extra.hasLines = add(r.extra.Lines, Count{vals[1], vals[0]}), true
				r.extra.Branches, r.extra.hasBranches = add(r.extra.Branches, Count{vals[3], vals[2]}), true
				r.extra.Functions, r.extra.hasFunctions = add(r.extra.Functions, Count{vals[5], vals[4]}), true
			case "file":
				p, ok := attr(e, "path")
				if !ok {
					p, _ = attr(e, "name")
				}
				file = r.splitFile(p)
			case "line":
				if file == nil {
					return x.errorf("<line> outside a <file>")
				}
				num, _, err := x.intAttr(e, "num", true)
				if err != nil {
					return err
				}
				typ, _ := attr(e, "type")
				switch typ {
				case "stmt":
					count, _, err := x.intAttr(e, "count", false)
					if err != nil {
						return err
					}
					file.addLine(int(num), count)
				case "cond":
					t, _, err := x.intAttr(e, "truecount", false)
					if err != nil {
						return err
					}
					fl, _, err := x.intAttr(e, "falsecount", false)
					if err != nil {
						return err
					}
					count, _, err := x.intAttr(e, "count", false)
					if err != nil {
						return err
					}
					file.addLine(int(num), count)
					if (t > 0) != (fl > 0) {
						file.markPartial(int(num))
					}
				}
			}
		case xml.EndElement:
			depth--
			if e.Name.Local == "project" {
				inProject = false
			}
			if e.Name.Local == "file" {
				file = nil
			}
		}
	}
	if !seenProject {
		return fmt.Errorf("%s: not a Clover report (no <project> element)", name)
	}
	return nil
}

package coverage

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func parseString(t *testing.T, name, format, s string) Totals {
	t.Helper()
	r := NewReport(nil)
	if err := Parse(name, strings.NewReader(s), format, r); err != nil {
		t.Fatal(err)
	}
	return r.Totals()
}

func TestLCOVMergesAsLcovSummary(t *testing.T) {
	in := `TN:
SF:src/a.c
FN:3,main
FN:10,helper
FNDA:1,main
FNDA:0,helper
DA:3,1
DA:4,1
DA:10,0
DA:11,0
BRDA:4,0,0,1
BRDA:4,0,1,0
BRDA:11,0,0,-
BRDA:11,0,1,-
LF:4
LH:2
end_of_record
SF:./src/a.c
FNDA:2,helper
DA:10,3
DA:11,0
DA:12,0
BRDA:11,0,0,1
end_of_record
`
	tot := parseString(t, "a.info", "", in)
	// Lines 3 4 10 11 12: hit 3 4 10 (merged sum > 0).
	// Functions main, helper: both hit after merging.
	// Branches 4/0/0 (1), 4/0/1 (0), 11/0/0 (0+1), 11/0/1 (-): 2 of 4.
	want := Totals{Lines: Count{3, 5}, Functions: Count{2, 2}, Branches: Count{2, 4}}
	if tot.Lines != want.Lines || tot.Functions != want.Functions || tot.Branches != want.Branches {
		t.Errorf("got lines %v functions %v branches %v, want %v %v %v", tot.Lines, tot.Functions, tot.Branches, want.Lines, want.Functions, want.Branches)
	}
	// Codecov: 3 hit, 4 partial (1 of 2 branches), 10 hit... line 10 has no
	// branches: hit; 11 miss, 12 miss.
	if tot.Hits != 2 || tot.Partials != 1 || tot.Misses != 2 {
		t.Errorf("split hits %d partials %d misses %d", tot.Hits, tot.Partials, tot.Misses)
	}
}

func TestLCOV2Records(t *testing.T) {
	in := "VER:2.0\nSF:x.c\nFNL:0,3,9\nFNA:0,0,f\nFNA:0,4,f_alias\nFNL:1,20\nFNA:1,0,g\nFNF:2\nFNH:1\nDA:3,4\nLF:1\nLH:1\nend_of_record\n"
	tot := parseString(t, "v2.info", "", in)
	if tot.Functions != (Count{1, 2}) {
		t.Errorf("functions %v, want 1 of 2 (aliases count once)", tot.Functions)
	}
	r := NewReport(nil)
	if err := Parse("v2.info", strings.NewReader(in), "", r); err != nil || r.HeaderMismatch {
		t.Errorf("consistent header reported as mismatch: %v", err)
	}
}

func TestLCOVHeaderMismatch(t *testing.T) {
	r := NewReport(nil)
	in := "SF:a.c\nDA:1,1\nDA:2,0\nLF:2\nLH:2\nend_of_record\n"
	if err := Parse("a.info", strings.NewReader(in), "", r); err != nil {
		t.Fatal(err)
	}
	if !r.HeaderMismatch || r.Totals().Lines != (Count{1, 2}) {
		t.Errorf("LH:2 against one hit line: mismatch %v, lines %v", r.HeaderMismatch, r.Totals().Lines)
	}
}

func TestMalformedReportsNameFileAndLine(t *testing.T) {
	cases := []struct{ format, in, want string }{
		{"lcov", "SF:a.c\nDA:1,1\nDA:x,2\nend_of_record\n", `r:3: DA "x,2": want line,hits`},
		{"lcov", "DA:1,1\n", `r:1: DA outside a file record`},
		{"lcov", "SF:a.c\nBRDA:1,0,0\nend_of_record\n", `r:2: BRDA "1,0,0": want line,block,branch,taken`},
		{"cobertura", "<coverage>\n<packages><package><classes>\n<class filename=\"a.py\"><lines>\n<line number=\"1\" hits=\"x\"/>\n</lines></class></classes></package></packages></coverage>", `r:4: <line hits="x"> is not a whole number`},
		{"cobertura", "<coverage>\n<packages>\n</coverage>", `r:3: element <packages> closed by </coverage>`},
		{"cobertura", "<coverage><packages><package><classes><class filename=\"a\"><lines>\n<line number=\"2\" hits=\"1\" branch=\"true\" condition-coverage=\"half\"/></lines></class></classes></package></packages></coverage>", `r:2: line 2 of a: condition-coverage "half" is not like "50% (1/2)"`},
		{"jacoco", "<report name=\"x\">\n<counter type=\"LINE\" missed=\"1\"/>\n</report>", `r:2: <counter> lacks covered`},
		{"go", "mode: set\na.go:1.1,2.2 1 1\nbroken line\n", `r:3: line "broken line" doesn't match expected format: `},
		{"", "hello\n", `r: not a coverage report of a known format ([lcov cobertura jacoco go clover])`},
	}
	for _, c := range cases {
		err := Parse("r", strings.NewReader(c.in), c.format, NewReport(nil))
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s %q:\n got %v\nwant %s…", c.format, c.in, err, c.want)
		}
	}
}

func TestCobertura(t *testing.T) {
	// Line 2 is listed under the method and again under the class: one
	// line. Line 5 twice with different branch data: the fuller one counts.
	// The header claims 10 lines: a mismatch. Hits as floats ("3.0").
	in := "\ufeff<?xml version=\"1.0\" ?>\n<!DOCTYPE coverage SYSTEM \"http://cobertura.sourceforge.net/xml/coverage-04.dtd\">\n" + `<coverage line-rate="0.9" branch-rate="0.5" lines-covered="9" lines-valid="10" branches-covered="1" branches-valid="2" complexity="0" version="7.4" timestamp="1700000000">
 <sources><source>/src</source></sources>
 <packages><package name="app" line-rate="0.9" branch-rate="0.5" complexity="0">
  <classes>
   <class name="a.py" filename="app/a.py" line-rate="0.9" branch-rate="0.5" complexity="0">
    <methods><method name="f" signature="()" line-rate="1" branch-rate="1"><lines>
      <line number="2" hits="3.0"/>
    </lines></method></methods>
    <lines>
     <line number="1" hits="1"/>
     <line number="2" hits="3"/>
     <line number="3" hits="0"/>
     <line number="5" hits="2" branch="true" condition-coverage="50% (1/2)"/>
     <line number="5" hits="2" branch="true" condition-coverage="25% (1/4)"/>
    </lines>
   </class>
   <class name="b.py" filename="app/b.py" line-rate="0" branch-rate="0" complexity="0"><methods/><lines>
     <line number="7" hits="0" branch="true" condition-coverage="0% (0/2)"/>
   </lines></class>
  </classes>
 </package></packages>
</coverage>`
	r := NewReport(nil)
	if err := Parse("cov.xml", strings.NewReader(in), "", r); err != nil {
		t.Fatal(err)
	}
	tot := r.Totals()
	// Lines 1 2 3 5 (a.py) and 7 (b.py): 3 hit of 5. Branches: line 5 has
	// 1 of 4, line 7 0 of 2: 1 of 6.
	if tot.Lines != (Count{3, 5}) || tot.Branches != (Count{1, 6}) || !r.HeaderMismatch {
		t.Errorf("lines %v branches %v mismatch %v", tot.Lines, tot.Branches, r.HeaderMismatch)
	}
	// Split: 1 and 2 hits, 5 partial, 3 and 7 misses.
	if tot.Hits != 2 || tot.Partials != 1 || tot.Misses != 2 {
		t.Errorf("split %d/%d/%d", tot.Hits, tot.Partials, tot.Misses)
	}
	// Gzipped, the same.
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write([]byte(in))
	zw.Close()
	r2 := NewReport(nil)
	if err := Parse("cov.xml.gz", &z, "", r2); err != nil || r2.Totals().Lines != tot.Lines {
		t.Errorf("gzip: %v %v", err, r2.Totals().Lines)
	}
}

// An empty report is 0 of 0 of every kind its format carries, in every
// format: never missing, and with no ratio.
func TestEmptyReports(t *testing.T) {
	for _, tc := range []struct {
		format, in string
		kinds      []string
	}{
		{"cobertura", `<?xml version="1.0"?><coverage line-rate="0" lines-covered="0" lines-valid="0"><packages/></coverage>`, []string{"lines", "branches", "functions"}},
		{"lcov", "TN:\n", []string{"lines", "branches", "functions"}},
		{"lcov", "", []string{"lines", "branches", "functions"}},
		{"go", "mode: set\n", []string{"statements"}},
		{"jacoco", `<?xml version="1.0"?><report name="x"></report>`, []string{"lines", "branches", "functions"}},
		{"clover", `<?xml version="1.0"?><coverage><project><metrics statements="0" coveredstatements="0" conditionals="0" coveredconditionals="0" methods="0" coveredmethods="0"/></project></coverage>`, []string{"lines", "statements", "branches", "functions"}},
	} {
		r := NewReport(nil)
		if err := Parse("empty", strings.NewReader(tc.in), tc.format, r); err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		got := map[string]float64{}
		for _, m := range measurements(r.Totals(), nil, time.Time{}) {
			got[m.Name] = m.Value
		}
		for _, k := range tc.kinds {
			c, okC := got[k+"_covered"]
			n, okT := got[k+"_total"]
			if !okC || !okT || c != 0 || n != 0 {
				t.Errorf("%s %q: %s %v/%v (present %v %v), want 0 of 0", tc.format, tc.in, k, c, n, okC, okT)
			}
			if _, ok := got[k+"_ratio"]; ok {
				t.Errorf("%s: %s_ratio of 0 of 0", tc.format, k)
			}
		}
		if got["header_mismatch"] != 0 {
			t.Errorf("%s: header mismatch", tc.format)
		}
	}
}

func TestJaCoCo(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><!DOCTYPE report PUBLIC "-//JACOCO//DTD Report 1.1//EN" "report.dtd">
<report name="demo">
 <sessioninfo id="s" start="1" dump="2"/>
 <package name="com/acme">
  <class name="com/acme/A" sourcefilename="A.java">
   <method name="f" desc="()V" line="3"><counter type="INSTRUCTION" missed="0" covered="5"/><counter type="LINE" missed="0" covered="2"/></method>
   <counter type="LINE" missed="1" covered="2"/>
  </class>
  <sourcefile name="A.java">
   <line nr="3" mi="0" ci="3" mb="0" cb="0"/>
   <line nr="4" mi="0" ci="2" mb="1" cb="1"/>
   <line nr="9" mi="2" ci="0" mb="0" cb="0"/>
   <counter type="LINE" missed="1" covered="2"/>
  </sourcefile>
  <counter type="LINE" missed="1" covered="2"/>
 </package>
 <counter type="INSTRUCTION" missed="2" covered="5"/>
 <counter type="LINE" missed="1" covered="2"/>
 <counter type="METHOD" missed="0" covered="1"/>
 <counter type="CLASS" missed="0" covered="1"/>
</report>`
	tot := parseString(t, "jacoco.xml", "", in)
	// Report-level counters only; BRANCH is missing: 0 of 0.
	if tot.Lines != (Count{2, 3}) || tot.Functions != (Count{1, 1}) || tot.Branches != (Count{0, 0}) || !tot.hasBranches {
		t.Errorf("lines %v functions %v branches %v", tot.Lines, tot.Functions, tot.Branches)
	}
	if tot.Hits != 1 || tot.Partials != 1 || tot.Misses != 1 {
		t.Errorf("split %d/%d/%d", tot.Hits, tot.Partials, tot.Misses)
	}
}

func TestClover(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<coverage generated="1700000000" clover="4.4.1">
 <project timestamp="1700000000" name="demo">
  <metrics statements="10" coveredstatements="7" conditionals="4" coveredconditionals="1" methods="3" coveredmethods="2" elements="17" coveredelements="10" files="1" loc="40" ncloc="30"/>
  <package name="app">
   <metrics statements="10" coveredstatements="7" conditionals="4" coveredconditionals="1" methods="3" coveredmethods="2"/>
   <file name="a.php" path="/src/app/a.php">
    <metrics statements="10" coveredstatements="7"/>
    <line num="3" type="method" name="f" count="2"/>
    <line num="4" type="stmt" count="2"/>
    <line num="5" type="cond" count="1" truecount="1" falsecount="0"/>
    <line num="7" type="cond" count="0" truecount="0" falsecount="0"/>
    <line num="6" type="stmt" count="0"/>
   </file>
  </package>
 </project>
</coverage>`
	tot := parseString(t, "clover.xml", "", in)
	// Lines are the tool's own project figures (statements), not a count
	// of line elements; a cond line is covered by its count.
	if tot.Statements != (Count{7, 10}) || tot.Branches != (Count{1, 4}) || tot.Functions != (Count{2, 3}) || tot.Lines != (Count{7, 10}) {
		t.Errorf("statements %v branches %v functions %v lines %v", tot.Statements, tot.Branches, tot.Functions, tot.Lines)
	}
	if tot.Hits != 1 || tot.Partials != 1 || tot.Misses != 2 {
		t.Errorf("split %d/%d/%d", tot.Hits, tot.Partials, tot.Misses)
	}
}

func TestPathsAreNormalisedBeforeMerging(t *testing.T) {
	r := NewReport([]string{"/home/runner/work/api/api/"})
	Parse("a.info", strings.NewReader("SF:/home/runner/work/api/api/src/x.c\nDA:1,0\nend_of_record\n"), "", r)
	Parse("b.info", strings.NewReader("SF:./src/x.c\nDA:1,2\nend_of_record\n"), "", r)
	Parse("c.info", strings.NewReader("SF:src\\x.c\nDA:2,0\nend_of_record\n"), "", r)
	if tot := r.Totals(); tot.Lines != (Count{1, 2}) {
		t.Errorf("lines %v, want 1 of 2 after merging the same file", tot.Lines)
	}
}

// --- Reports made by the real tools ---

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s is needed (make test installs it with apt-get)", tool)
	}
	return p
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

const cProgram = `#include <stdio.h>
int classify(int n) {
	if (n < 0) return -1;
	if (n == 0) return 0;
	return 1;
}
int unused(int n) { return n * 2; }
int main(int argc, char **argv) {
	int s = 0;
	for (int i = 0; i < argc; i++) s += classify(i - 1);
	if (argc > 5) { printf("many\n"); }
	printf("%d\n", s);
	return 0;
}
`

// TestLCOVMatchesLcovSummary builds a C program with gcc --coverage, runs it
// twice with different arguments, captures each run with lcov, joins the
// two tracefiles (so every file appears twice) and compares the totals with
// what `lcov --summary` says of the joined file.
func TestLCOVMatchesLcovSummary(t *testing.T) {
	need(t, "gcc")
	need(t, "lcov")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "prog.c"), []byte(cProgram), 0o644)
	run(t, dir, "gcc", "--coverage", "-O0", "-o", "prog", "prog.c")
	rc := []string{"--rc", "lcov_branch_coverage=1"}
	run(t, dir, "./prog")
	run(t, dir, "lcov", append([]string{"--quiet", "--capture", "--directory", ".", "--output-file", "run1.info"}, rc...)...)
	run(t, dir, "lcov", append([]string{"--quiet", "--zerocounters", "--directory", "."}, rc...)...)
	run(t, dir, "./prog", "a", "b", "c", "d", "e", "f")
	run(t, dir, "lcov", append([]string{"--quiet", "--capture", "--directory", ".", "--output-file", "run2.info"}, rc...)...)
	a, _ := os.ReadFile(filepath.Join(dir, "run1.info"))
	b, _ := os.ReadFile(filepath.Join(dir, "run2.info"))
	joined := append(append([]byte{}, a...), b...)
	os.WriteFile(filepath.Join(dir, "joined.info"), joined, 0o644)
	summary := run(t, dir, "lcov", append([]string{"--summary", "joined.info"}, rc...)...)

	r := NewReport(nil)
	if err := Parse("joined.info", bytes.NewReader(joined), "", r); err != nil {
		t.Fatal(err)
	}
	tot := r.Totals()
	for kind, got := range map[string]Count{"lines": tot.Lines, "functions": tot.Functions, "branches": tot.Branches} {
		m := regexp.MustCompile(kind + `\.*: [0-9.]+% \(([0-9]+) of ([0-9]+) `).FindStringSubmatch(summary)
		if m == nil {
			t.Fatalf("lcov --summary has no %s line:\n%s", kind, summary)
		}
		covered, _ := strconv.ParseInt(m[1], 10, 64)
		total, _ := strconv.ParseInt(m[2], 10, 64)
		if got != (Count{covered, total}) {
			t.Errorf("%s: ours %d of %d, lcov --summary %d of %d", kind, got.Covered, got.Total, covered, total)
		}
	}
	if tot.Lines.Total == 0 || tot.Branches.Total == 0 {
		t.Fatalf("the capture holds nothing:\n%s", summary)
	}
	t.Logf("lcov --summary:\n%s", summary)
}

// TestGoProfileMatchesGoToolCover measures a small module with -coverpkg
// (which lists blocks of a package once per test binary) and compares the
// statement total with `go tool cover -func`.
func TestGoProfileMatchesGoToolCover(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":      "module example.com/m\n\ngo 1.22\n",
		"a/a.go":      "package a\n\nfunc Sign(n int) int {\n\tif n < 0 {\n\t\treturn -1\n\t}\n\tif n == 0 {\n\t\treturn 0\n\t}\n\treturn 1\n}\n\nfunc Unused() int { return 42 }\n",
		"a/a_test.go": "package a\n\nimport \"testing\"\n\nfunc TestSign(t *testing.T) {\n\tif Sign(5) != 1 {\n\t\tt.Fatal()\n\t}\n}\n",
		"b/b.go":      "package b\n\nimport \"example.com/m/a\"\n\nfunc Twice(n int) int { return 2 * a.Sign(n) }\n\nfunc Never(n int) int {\n\tif n > 100 {\n\t\treturn n\n\t}\n\treturn 0\n}\n",
		"b/b_test.go": "package b\n\nimport \"testing\"\n\nfunc TestTwice(t *testing.T) {\n\tif Twice(-3) != -2 {\n\t\tt.Fatal()\n\t}\n}\n",
	}
	for name, body := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	run(t, dir, "go", "test", "-covermode=count", "-coverpkg=./...", "-coverprofile=c.out", "./...")
	profile, _ := os.ReadFile(filepath.Join(dir, "c.out"))
	funcOut := run(t, dir, "go", "tool", "cover", "-func=c.out")
	m := regexp.MustCompile(`total:\s+\(statements\)\s+([0-9.]+)%`).FindStringSubmatch(funcOut)
	if m == nil {
		t.Fatalf("no total in go tool cover -func:\n%s", funcOut)
	}
	r := NewReport(nil)
	if err := Parse("c.out", bytes.NewReader(profile), "", r); err != nil {
		t.Fatal(err)
	}
	tot := r.Totals()
	ours := fmt.Sprintf("%.1f", 100*float64(tot.Statements.Covered)/float64(tot.Statements.Total))
	if ours != m[1] {
		t.Errorf("statements %d of %d = %s%%, go tool cover -func says %s%%\n%s", tot.Statements.Covered, tot.Statements.Total, ours, m[1], funcOut)
	}
	if strings.Count(string(profile), "a/a.go:3.") < 2 {
		t.Errorf("the profile should list a.go's blocks more than once (-coverpkg):\n%s", profile)
	}
}

func TestHostileLineNumbersStayCheap(t *testing.T) {
	tot := parseString(t, "h.info", "", "SF:a.c\nDA:9007199254740000,1\nDA:2,0\nend_of_record\n")
	if tot.Lines != (Count{1, 2}) {
		t.Errorf("lines %v", tot.Lines)
	}
	tot = parseString(t, "h.out", "", "mode: set\na.go:1.1,2000000000.2 3 1\n")
	if tot.Statements != (Count{3, 3}) {
		t.Errorf("statements %v", tot.Statements)
	}
}

// lcovSummary runs `lcov --summary` on a tracefile and returns its counts;
// a kind it says "no data found" of is 0 of 0.
func lcovSummary(t *testing.T, dir, name string, data []byte) map[string]Count {
	t.Helper()
	os.WriteFile(filepath.Join(dir, name), data, 0o644)
	out := run(t, dir, "lcov", "--summary", name, "--rc", "lcov_branch_coverage=1")
	counts := map[string]Count{}
	for _, kind := range []string{"lines", "functions", "branches"} {
		if regexp.MustCompile(kind + `\.*: no data found`).MatchString(out) {
			counts[kind] = Count{}
			continue
		}
		m := regexp.MustCompile(kind + `\.*: [0-9.]+% \(([0-9]+) of ([0-9]+) `).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("lcov --summary %s has no %s line:\n%s", name, kind, out)
		}
		covered, _ := strconv.ParseInt(m[1], 10, 64)
		total, _ := strconv.ParseInt(m[2], 10, 64)
		counts[kind] = Count{covered, total}
	}
	return counts
}

// The awkward tracefiles real tools write, each compared with what the
// installed lcov says of it at test time.
func TestLCOVAwkwardRecordsMatchLcov(t *testing.T) {
	need(t, "lcov")
	dir := t.TempDir()
	for name, in := range map[string]string{
		// A file with function records but no DA lines counts nothing.
		"functions-only.info": "TN:\nSF:/src/c.c\nFN:1,f\nFNDA:1,f\nFN:5,g\nFNDA:0,g\nBRDA:1,0,0,1\nBRDA:1,0,1,0\nend_of_record\nSF:/src/d.c\nDA:1,1\nDA:2,0\nend_of_record\n",
		// gcov writes counts up to 2^64-1; two of them on one line must
		// not wrap to 0.
		"huge-counts.info": "TN:\nSF:/src/b.c\nFN:1,f\nFNDA:18446744073709551615,f\nDA:1,18446744073709551615\nDA:2,18446744073709551615\nDA:3,0\nBRDA:1,0,0,18446744073709551615\nBRDA:1,0,1,-\nend_of_record\nSF:/src/b.c\nDA:1,18446744073709551615\nDA:3,0\nFNDA:18446744073709551615,f\nend_of_record\n",
		// The last record lacks end_of_record (a truncated upload): lcov
		// drops it.
		"unclosed.info": "TN:\nSF:/src/a.c\nFN:1,main\nFNDA:1,main\nDA:1,1\nDA:2,0\nend_of_record\nSF:/src/b.c\nDA:1,1\nDA:3,5\nFN:1,g\nFNDA:1,g\n",
		// lcov 2.x exception branches (the e prefix) are not counted.
		"exception-branches.info": "TN:\nSF:/src/a.cpp\nDA:1,1\nDA:2,1\nBRDA:1,0,0,1\nBRDA:1,0,1,0\nBRDA:2,e0,0,1\nBRDA:2,e0,1,0\nend_of_record\n",
	} {
		want := lcovSummary(t, dir, name, []byte(in))
		r := NewReport(nil)
		if err := Parse(name, strings.NewReader(in), "lcov", r); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		tot := r.Totals()
		for kind, got := range map[string]Count{"lines": tot.Lines, "functions": tot.Functions, "branches": tot.Branches} {
			if got != want[kind] {
				t.Errorf("%s: %s ours %d of %d, lcov --summary %d of %d", name, kind, got.Covered, got.Total, want[kind].Covered, want[kind].Total)
			}
		}
	}
}

// A Cobertura report in the shape istanbul's cobertura reporter writes:
// each function is a <method> (with istanbul's hits attribute) whose <line>
// is the function's declaration, which is not one of the class's own lines.
// Counted by istanbul's rules (a function is covered when hit; lines are
// the statement lines), by hand, not by running istanbul here: functions 1
// of 2 and lines 2 of 3. The header claims 2 of 4 branches while the
// records hold 1 of 2, which is a mismatch of branches alone.
func TestCoberturaIstanbulMethods(t *testing.T) {
	in := `<?xml version="1.0" ?>
<!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">
<coverage lines-valid="3" lines-covered="2" line-rate="0.6666" branches-valid="4" branches-covered="2" branch-rate="0.5" timestamp="1700000000000" complexity="0" version="0.1">
  <sources><source>/src</source></sources>
  <packages>
    <package name="lib" line-rate="0.6666" branch-rate="0.5">
      <classes>
        <class name="math.js" filename="lib/math.js" line-rate="0.6666" branch-rate="0.5">
          <methods>
            <method name="add" hits="3" signature="()V"><lines><line number="1" hits="3"/></lines></method>
            <method name="unused" hits="0" signature="()V"><lines><line number="5" hits="0"/></lines></method>
          </methods>
          <lines>
            <line number="2" hits="3" branch="true" condition-coverage="50% (1/2)"/>
            <line number="3" hits="3" branch="false"/>
            <line number="6" hits="0" branch="false"/>
          </lines>
        </class>
      </classes>
    </package>
  </packages>
</coverage>`
	r := NewReport(nil)
	if err := Parse("cobertura.xml", strings.NewReader(in), "", r); err != nil {
		t.Fatal(err)
	}
	tot := r.Totals()
	if tot.Functions != (Count{1, 2}) || tot.Lines != (Count{2, 3}) || tot.Branches != (Count{1, 2}) {
		t.Errorf("functions %v lines %v branches %v", tot.Functions, tot.Lines, tot.Branches)
	}
	if !r.HeaderMismatch {
		t.Error("the header's branch totals disagree with the records: a mismatch")
	}
	// A class without lines of its own (coverage.py writes methods only in
	// some versions) takes its lines from its methods; a method without a
	// hits attribute is covered when one of its lines was.
	in2 := `<?xml version="1.0" ?><coverage lines-valid="2" lines-covered="1"><packages><package name="p"><classes>
<class name="m" filename="m.py"><methods>
<method name="f" signature=""><lines><line number="1" hits="1"/></lines></method>
<method name="g" signature=""><lines><line number="4" hits="0"/></lines></method>
</methods><lines/></class></classes></package></packages></coverage>`
	r = NewReport(nil)
	if err := Parse("cobertura.xml", strings.NewReader(in2), "", r); err != nil {
		t.Fatal(err)
	}
	if tot := r.Totals(); tot.Functions != (Count{1, 2}) || tot.Lines != (Count{1, 2}) || r.HeaderMismatch {
		t.Errorf("methods only: functions %v lines %v mismatch %v", tot.Functions, tot.Lines, r.HeaderMismatch)
	}
}

// A Go profile has statements, and no line figures that would differ from
// what `go tool cover` says.
func TestGoProfileHasNoLines(t *testing.T) {
	r := NewReport(nil)
	if err := Parse("c.out", strings.NewReader("mode: set\nexample.com/m/x.go:1.1,3.2 2 1\nexample.com/m/x.go:5.1,9.2 3 0\n"), "", r); err != nil {
		t.Fatal(err)
	}
	for _, m := range measurements(r.Totals(), nil, time.Time{}) {
		if strings.HasPrefix(m.Name, "lines_") {
			t.Errorf("a Go profile exported %s", m.Name)
		}
	}
	if tot := r.Totals(); tot.Statements != (Count{2, 5}) || tot.Hits != 3 || tot.Misses != 5 {
		t.Errorf("statements %v split %d/%d", tot.Statements, tot.Hits, tot.Misses)
	}
}

package coverage

import (
	"bytes"
	"testing"
)

// Every parser of outside input is fuzzed: no input may panic or loop, and
// what parses must give consistent totals.
func fuzzParser(f *testing.F, format string, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReport(nil)
		if err := Parse("fuzz", bytes.NewReader(data), format, r); err != nil {
			return
		}
		tot := r.Totals()
		for _, c := range []Count{tot.Lines, tot.Branches, tot.Functions, tot.Statements} {
			if c.Covered < 0 || c.Total < 0 || (c.Covered > c.Total && format != FormatJaCoCo && format != FormatClover) {
				t.Fatalf("inconsistent totals %+v", tot)
			}
		}
	})
}

func FuzzLCOV(f *testing.F) {
	fuzzParser(f, FormatLCOV, "TN:\nSF:a.c\nFN:1,f\nFNDA:1,f\nDA:1,1\nBRDA:1,0,0,-\nLF:1\nLH:1\nend_of_record\n",
		"VER:2.0\nSF:x.c\nFNL:0,3,9\nFNA:0,0,f\nend_of_record\n")
}

func FuzzCobertura(f *testing.F) {
	fuzzParser(f, FormatCobertura, `<coverage lines-valid="1" lines-covered="1"><packages><package><classes><class filename="a"><lines><line number="1" hits="1" branch="true" condition-coverage="50% (1/2)"/></lines></class></classes></package></packages></coverage>`)
}

func FuzzJaCoCo(f *testing.F) {
	fuzzParser(f, FormatJaCoCo, `<report name="x"><package name="p"><sourcefile name="A.java"><line nr="1" mi="0" ci="1" mb="0" cb="0"/></sourcefile></package><counter type="LINE" missed="0" covered="1"/></report>`)
}

func FuzzClover(f *testing.F) {
	fuzzParser(f, FormatClover, `<coverage><project><metrics statements="1" coveredstatements="1"/><file path="a"><line num="1" type="stmt" count="1"/></file></project></coverage>`)
}

func FuzzGoProfile(f *testing.F) {
	fuzzParser(f, FormatGo, "mode: count\na.go:1.1,2.2 1 3\na.go:1.1,2.2 1 0\n")
}

func FuzzDetect(f *testing.F) {
	fuzzParser(f, FormatAuto, "mode: set\n", "TN:\n", "<coverage/>", "<report/>", "\x1f\x8b")
}

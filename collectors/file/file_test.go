package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

func TestParseYAML(t *testing.T) {
	in := `# entered by people
net_promoter_score: 52
developer_satisfaction: 7.4
press_mentions:
  - {value: 3, labels: {outlet: trade}}
  - value: 1
    labels: {outlet: national}
`
	got, err := ParseYAML("v.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []kpi.Measurement{
		{Name: "developer_satisfaction", Value: 7.4},
		{Name: "net_promoter_score", Value: 52},
		{Name: "press_mentions", Value: 3, Labels: kpi.Labels{{Name: "outlet", Value: "trade"}}},
		{Name: "press_mentions", Value: 1, Labels: kpi.Labels{{Name: "outlet", Value: "national"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if ms, err := ParseYAML("empty.yaml", []byte("# nothing yet\n")); err != nil || len(ms) != 0 {
		t.Errorf("empty file: %v %v", ms, err)
	}
}

func TestParseYAMLErrors(t *testing.T) {
	cases := map[string]string{
		"a: 1\nb: [\n":                              "v.yaml:2:4: sequence end token ']' not found",
		"a: 1\nb: lots\n":                           "v.yaml:2:4: b: want a number or a list of {value, labels}",
		"a: 1\nb:\n  - {value: 1, colour: x}\n":     `v.yaml:3:16: unknown field "colour"`,
		"b:\n  - {labels: {x: y}}\n":                "v.yaml:2:3: b[0] has no value",
		"Bad: 1\n":                                  `v.yaml:1:6: measurement name "Bad" is not [a-z_][a-z0-9_]*`,
		"a: .nan\n":                                 "v.yaml:1:4: measurement a: value NaN is not a finite number",
		"b:\n  - {value: 1, labels: {source: x}}\n": `v.yaml:2:3: measurement b: label name "source" is not [a-z_][a-z0-9_]*, or is one the exporter sets (source, kpi, domain, job, instance, collector)`,
	}
	for in, want := range cases {
		_, err := ParseYAML("v.yaml", []byte(in))
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got %v\nwant %s", in, err, want)
		}
	}
}

func TestParseCSV(t *testing.T) {
	in := "\ufeffname,value,outlet\n# a comment\nnet_promoter_score,52,\npress_mentions, 3,trade\n"
	got, err := ParseCSV("v.csv", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []kpi.Measurement{
		{Name: "net_promoter_score", Value: 52},
		{Name: "press_mentions", Value: 3, Labels: kpi.Labels{{Name: "outlet", Value: "trade"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	errs := map[string]string{
		"measurement,value\n":          `v.csv:1: the header must name the columns name and value, got "measurement,value"`,
		"name,value\na,1\nb,many\n":    `v.csv:3: value "many" is not a number`,
		"name,value\na,1\nb,1,extra\n": "v.csv:3:1: wrong number of fields",
		"name,value\na,1\nB c,2\n":     `v.csv:3: measurement name "B c" is not [a-z_][a-z0-9_]*`,
		"name,value\n\"a,1\n":          `v.csv:2:6: extraneous or missing " in quoted-field`,
	}
	for in, want := range errs {
		_, err := ParseCSV("v.csv", []byte(in))
		if err == nil || err.Error() != want {
			t.Errorf("%q:\n got %v\nwant %s", in, err, want)
		}
	}
}

func newCollector(t *testing.T, settings string) (collectors.Collector, error) {
	t.Helper()
	dir := t.TempDir()
	cat := "sources:\n  - name: manual\n    type: file\n    settings:\n" + settings
	c, err := kpi.Parse(filepath.Join(dir, "kpis.yaml"), []byte(cat), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return New(c.Sources[0], collectors.Env{BaseDir: dir})
}

func TestFactoryErrors(t *testing.T) {
	for settings, want := range map[string]string{
		"      format: yaml\n":                   `source "manual" (type file) needs settings.path`,
		"      path: v.txt\n      format: xml\n": `format "xml" is not yaml or csv`,
		"      file: v.yaml\n":                   `unknown field "file"`,
	} {
		_, err := newCollector(t, settings)
		if err == nil || !endsWith(err.Error(), want) {
			t.Errorf("%q: got %v, want …%s", settings, err, want)
		}
	}
}

func endsWith(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

func TestCollectRereadsOnChangeAndReportsMalformedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "values.yaml")
	write := func(s string, mtime time.Time) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour)
	write("nps: 40\n", t0)
	c := &Collector{path: path, format: "yaml"}
	ms, err := c.Collect(context.Background())
	if err != nil || len(ms) != 1 || ms[0].Value != 40 {
		t.Fatalf("first read: %+v %v", ms, err)
	}
	// Same size and time: not re-read, even though the bytes differ.
	write("nps: 41\n", t0)
	if ms, _ := c.Collect(context.Background()); ms[0].Value != 40 {
		t.Errorf("re-read an unchanged file: %v", ms[0].Value)
	}
	write("nps: 55\n", t0.Add(time.Minute))
	if ms, _ := c.Collect(context.Background()); ms[0].Value != 55 {
		t.Errorf("missed a change: %v", ms[0].Value)
	}
	write("nps: 55\nbroken: [\n", t0.Add(2*time.Minute))
	if _, err := c.Collect(context.Background()); err == nil || err.Error() != path+":2:9: sequence end token ']' not found" {
		t.Errorf("malformed file: %v", err)
	}
	os.Remove(path)
	if _, err := c.Collect(context.Background()); err == nil {
		t.Error("a missing file must fail the run")
	}
}

func TestRelativePathResolvesAgainstCatalogue(t *testing.T) {
	c, err := newCollector(t, "      path: sub/v.csv\n")
	if err != nil {
		t.Fatal(err)
	}
	fc := c.(*Collector)
	if !filepath.IsAbs(fc.path) || filepath.Base(filepath.Dir(fc.path)) != "sub" || fc.format != "csv" {
		t.Errorf("path %s format %s", fc.path, fc.format)
	}
}

func FuzzParseYAML(f *testing.F) {
	f.Add([]byte("nps: 52\npress:\n  - {value: 3, labels: {outlet: trade}}\n"))
	f.Add([]byte("a: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseYAML("f.yaml", data)
		if err == nil {
			for _, m := range ms {
				if collectors.CheckMeasurement(m) != nil {
					t.Fatalf("accepted an invalid measurement %+v", m)
				}
			}
		}
	})
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("name,value,outlet\nnps,52,\npress,3,trade\n"))
	f.Add([]byte("name,value\n\"a,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ms, err := ParseCSV("f.csv", data)
		if err == nil {
			for _, m := range ms {
				if collectors.CheckMeasurement(m) != nil {
					t.Fatalf("accepted an invalid measurement %+v", m)
				}
			}
		}
	})
}

// A values file nested 50,000 levels deep (100 KB) used to take the daemon
// down with "out of memory" when re-read; it is refused with its place.
func TestDeepValuesFileIsRefused(t *testing.T) {
	_, err := ParseYAML("v.yaml", []byte("nps: "+strings.Repeat("[", 50000)+"\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "v.yaml:1:") || !strings.Contains(err.Error(), "nested deeper than") {
		t.Errorf("deep values file: %v", err)
	}
}

// Hostile values files of 1 MiB — a CSV of 100,000 rows, one giant field,
// thousands of columns, a YAML of the most keys and nodes allowed — are
// read or refused within a bound on memory and time (the project's: 256 MiB
// and 10 s for any input).
func TestHostileValuesFilesAreBounded(t *testing.T) {
	var rows, cols, keys strings.Builder
	rows.WriteString("name,value,team\n")
	for i := 0; rows.Len() < 1<<20; i++ {
		fmt.Fprintf(&rows, "m%d,%d,t%d\n", i%50, i, i)
	}
	cols.WriteString("name,value")
	for i := 0; cols.Len() < 1<<20; i++ {
		fmt.Fprintf(&cols, ",l%d", i)
	}
	cols.WriteString("\n")
	for i := 0; i < 1999; i++ {
		fmt.Fprintf(&keys, "m%d: %d\n", i, i)
	}
	for name, tc := range map[string]struct {
		in  string
		csv bool
	}{
		"CSV rows":        {rows.String(), true},
		"CSV giant field": {"name,value\nm," + strings.Repeat("9", 1<<20) + "\n", true},
		"CSV columns":     {cols.String(), true},
		"YAML keys":       {keys.String(), false},
		"YAML giant list": {"m:\n" + strings.Repeat("  - {value: 1, labels: {a: b}}\n", 30000), false},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		begin := time.Now()
		var err error
		if tc.csv {
			_, err = ParseCSV("v.csv", []byte(tc.in))
		} else {
			_, err = ParseYAML("v.yaml", []byte(tc.in))
		}
		took := time.Since(begin)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		if alloc > 256<<20 || took > 10*time.Second {
			t.Errorf("%s: %d MiB allocated, %s", name, alloc>>20, took)
		}
		msg := fmt.Sprint(err)
		if len(msg) > 200 {
			t.Errorf("%s: an error of %d bytes echoes the input", name, len(msg))
			msg = msg[:200]
		}
		t.Logf("%s: %d KiB in, %d MiB allocated, %s, %s", name, len(tc.in)>>10, alloc>>20, took.Round(time.Millisecond), msg)
	}
}

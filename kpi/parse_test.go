package kpi

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func knownTypes(t string) bool { return t == "file" }

func TestParseInvalid(t *testing.T) {
	// Each invalid catalogue is paired with its exact message, place included.
	cases := map[string]string{
		"invalid-unknown-field.yml": `testdata/invalid-unknown-field.yml:13:5: unknown field "colour"`,
		"invalid-duplicate-id.yml":  `testdata/invalid-duplicate-id.yml:15:9: duplicate KPI id "nps"`,
		"invalid-duplicate-source.yml": "testdata/invalid-duplicate-source.yml:1:1: the catalogue has no KPIs: an empty or truncated file is refused, and the catalogue in use (if any) stays\n" +
			`testdata/invalid-duplicate-source.yml:4:11: duplicate source name "manual"`,
		"invalid-undeclared-source.yml":  `testdata/invalid-undeclared-source.yml:13:20: KPI "nps" is bound to undeclared source "surveys"`,
		"invalid-unknown-type.yml":       `testdata/invalid-unknown-type.yml:5:11: unknown source type "spreadsheet"`,
		"invalid-milestone-outside.yml":  `testdata/invalid-milestone-outside.yml:17:18: period "Q5" is outside the calendar: quarters run Q1..Q4 from calendar.plan_start`,
		"invalid-month-outside.yml":      `testdata/invalid-month-outside.yml:15:17: period "M37" is outside the calendar: months run M1..M36 from calendar.launch`,
		"invalid-date-outside.yml":       `testdata/invalid-date-outside.yml:15:17: period "2028-09-30" is outside the calendar (2026-01-01 to 2026-12-31)`,
		"invalid-threshold-range.yml":    `testdata/invalid-threshold-range.yml:16:14: threshold 2.5 is outside (0, 2]`,
		"invalid-threshold-zero.yml":     `testdata/invalid-threshold-zero.yml:15:33: threshold 0 is outside (0, 2]`,
		"invalid-yellow-above-green.yml": `testdata/invalid-yellow-above-green.yml:17:15: yellow threshold 0.85 is above green threshold 0.8`,
		"invalid-interval.yml": "testdata/invalid-interval.yml:6:15: must be a positive duration (such as 30s, 5m, 1h or 14d), not \"0s\"\n" +
			"testdata/invalid-interval.yml:7:7: the catalogue has no KPIs: an empty or truncated file is refused, and the catalogue in use (if any) stays",
		"invalid-negative-interval.yml": "testdata/invalid-negative-interval.yml:1:1: the catalogue has no KPIs: an empty or truncated file is refused, and the catalogue in use (if any) stays\n" +
			"testdata/invalid-negative-interval.yml:4:15: must be a positive duration (such as 30s, 5m, 1h or 14d), not \"-1m\"",
		"invalid-empty.yml":      "testdata/invalid-empty.yml:1:1: the catalogue has no KPIs: an empty or truncated file is refused, and the catalogue in use (if any) stays",
		"invalid-no-kpis.yml":    "testdata/invalid-no-kpis.yml:3:7: the catalogue has no KPIs: an empty or truncated file is refused, and the catalogue in use (if any) stays",
		"invalid-syntax.yml":     `testdata/invalid-syntax.yml:3:7: sequence end token ']' not found`,
		"invalid-wrong-type.yml": `testdata/invalid-wrong-type.yml:14:35: cannot use "forty" as a number`,
		"invalid-overlap.yml":    `testdata/invalid-overlap.yml:17:18: milestone M2 overlaps milestone Q1`,
		"invalid-quarter-without-plan-start.yml": "testdata/invalid-quarter-without-plan-start.yml:9:11: unit \"percent\" is not one of ratio, seconds, count, score, points, per_second, bytes, or a currency's ISO 4217 code in lower case (usd, eur, gbp, jpy, …)\n" +
			"testdata/invalid-quarter-without-plan-start.yml:10:16: direction \"up\" is not higher or lower\n" +
			`testdata/invalid-quarter-without-plan-start.yml:12:24: period "Q1" needs calendar.plan_start`,
	}
	files, _ := filepath.Glob("testdata/invalid-*.yml")
	if len(files) != len(cases) {
		t.Errorf("%d invalid-*.yml files but %d cases: pair every file with its message", len(files), len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(path, data, ParseOptions{KnownType: knownTypes, RequireKPIs: true})
			if err == nil {
				t.Fatalf("Parse accepted %s", name)
			}
			if err.Error() != want {
				t.Errorf("message\n got: %s\nwant: %s", err, want)
			}
		})
	}
}

func TestParseGood(t *testing.T) {
	data, err := os.ReadFile("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse("good.yml", data, ParseOptions{KnownType: knownTypes})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.KPIs) != 1 || len(c.Sources) != 1 {
		t.Fatalf("got %d KPIs and %d sources", len(c.KPIs), len(c.Sources))
	}
	k := c.KPIs[0]
	if k.Green != DefaultGreen || k.Yellow != DefaultYellow || !k.TrendDemotes || c.TrendWindow != DefaultTrendWindow {
		t.Errorf("defaults not applied: %+v", k)
	}
	s := c.Sources[0]
	if s.Interval != time.Minute || s.Timeout != time.Minute || !s.Enabled {
		t.Errorf("source defaults: %+v", s)
	}
	var settings struct {
		Path string `yaml:"path"`
	}
	if err := s.Settings.Decode(&settings); err != nil || settings.Path != "values.yaml" {
		t.Errorf("settings: %+v, %v", settings, err)
	}
	var wrong struct {
		File string `yaml:"file"`
	}
	if err := s.Settings.Decode(&wrong); err == nil || err.Error() != `good.yml:9:7: unknown field "path"` {
		t.Errorf("strict settings decode: %v", err)
	}
	if err := s.Settings.Errorf(".path", "no such file"); err.Error() != "good.yml:9:13: no such file" {
		t.Errorf("settings error place: %v", err)
	}
}

func TestDisabledSourceOfUnknownTypeIsAccepted(t *testing.T) {
	y := "sources:\n  - name: gh\n    type: github\n    enabled: false\n  - {name: m, type: file}\n" +
		"kpis: [{id: k, name: K, domain: d, dashboard: technical, unit: count, direction: higher, source: {name: m, measurement: x}, targets: [{period: M1, value: 1}]}]\ncalendar: {launch: 2026-01-01}\n"
	c, err := Parse("c.yml", []byte(y), ParseOptions{KnownType: knownTypes})
	if err != nil {
		t.Fatal(err)
	}
	if c.Sources[0].Enabled {
		t.Error("source should be disabled")
	}
}

func TestParsePeriod(t *testing.T) {
	cal := Calendar{PlanStart: date("2026-01-01"), Launch: date("2026-03-15")}
	cases := []struct {
		label      string
		start, end string
		err        string
	}{
		{label: "Q1", start: "2026-01-01", end: "2026-04-01"},
		{label: "Q4", start: "2026-10-01", end: "2027-01-01"},
		{label: "M1", start: "2026-03-15", end: "2026-04-15"},
		{label: "M12", start: "2027-02-15", end: "2027-03-15"},
		{label: "M36", start: "2029-02-15", end: "2029-03-15"},
		{label: "2026-06-30", start: "2026-06-30", end: "2026-07-01"},
		{label: "Q0", err: `period "Q0" is not Q1..Q4, M1..M36 or an ISO date (YYYY-MM-DD)`},
		{label: "M0", err: `period "M0" is not Q1..Q4, M1..M36 or an ISO date (YYYY-MM-DD)`},
		{label: "Q+1", err: `period "Q+1" is not Q1..Q4, M1..M36 or an ISO date (YYYY-MM-DD)`},
		{label: "H1", err: `period "H1" is not Q1..Q4, M1..M36 or an ISO date (YYYY-MM-DD)`},
		{label: "2025-12-31", err: `period "2025-12-31" is outside the calendar (2026-01-01 to 2029-03-14)`},
	}
	for _, c := range cases {
		p, err := cal.ParsePeriod(c.label)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%s: error %v, want %s", c.label, err, c.err)
			}
			continue
		}
		if err != nil || !p.Start.Equal(date(c.start)) || !p.End.Equal(date(c.end)) {
			t.Errorf("%s: got [%s, %s) %v, want [%s, %s)", c.label, p.Start, p.End, err, c.start, c.end)
		}
	}
}

func date(s string) time.Time {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		panic(err)
	}
	return t
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"good.yml", "invalid-overlap.yml", "invalid-syntax.yml", "invalid-wrong-type.yml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yml", data, ParseOptions{KnownType: knownTypes})
		if err == nil {
			// Whatever parses must evaluate without panicking.
			Evaluate(c, Inputs{}, date("2026-05-01"))
		}
	})
}

// Hostile YAML of up to 1 MiB — the nesting that costs the YAML library
// memory with the square of its depth, and the deepest nesting allowed,
// repeated — is refused or parsed within a bound on memory and time, with
// the place named. The bound is the project's: 256 MiB and 10 s for any
// input; these stay far under it.
func TestHostileYAMLIsBounded(t *testing.T) {
	deepFlow := strings.Repeat("[", 1<<20)
	var deepBlock strings.Builder
	for i := 0; deepBlock.Len() < 1<<20; i++ {
		deepBlock.WriteString(strings.Repeat(" ", i%4000) + "k:\n")
	}
	compact := strings.Repeat("- ", 1<<19) + "x\n"
	// The deepest nesting allowed, repeated up to the node bound.
	var allowed strings.Builder
	allowed.WriteString("sources: []\nkpis: []\nx:\n")
	for n := 0; n+MaxYAMLDepth < MaxYAMLNodes-10; n += MaxYAMLDepth - 3 {
		allowed.WriteString("  - " + strings.Repeat("[", MaxYAMLDepth-4) + strings.Repeat("]", MaxYAMLDepth-4) + "\n")
	}
	var keys, manyKeys, nodes strings.Builder
	for i := 0; i < MaxYAMLMappingKeys; i++ {
		fmt.Fprintf(&keys, "k%d: %d\n", i, i)
	}
	manyKeys.WriteString(keys.String() + "one_too_many: 1\n")
	nodes.WriteString("x:\n")
	for i := 0; i <= MaxYAMLNodes; i++ {
		nodes.WriteString("  - 1\n")
	}
	for name, tc := range map[string]struct {
		in   string
		want string
	}{
		"deep flow":         {deepFlow, "h.yml:1:64: nested deeper than 64 levels"},
		"deep block":        {deepBlock.String(), "h.yml:65:"},
		"compact sequence":  {compact, "h.yml:1:"},
		"allowed depth":     {allowed.String(), ""},
		"most keys allowed": {keys.String(), ""},
		"too many keys":     {manyKeys.String(), "h.yml:2001:1: a mapping of more than 2000 keys"},
		"too many nodes":    {nodes.String(), "h.yml:100001:"},
		"too large":         {strings.Repeat("#", MaxYAMLBytes+1), "h.yml: larger than"},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		begin := time.Now()
		_, err := ParseYAML("h.yml", []byte(tc.in))
		took := time.Since(begin)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %s…", name, err, tc.want)
		}
		if alloc > 256<<20 || took > 10*time.Second*raceSlowdown {
			t.Errorf("%s: %d MiB, %s", name, alloc>>20, took)
		}
		t.Logf("%s: %d KiB allocated, %s", name, alloc>>10, took.Round(time.Millisecond))
	}
}

// Measurement and label names of bindings are metric name parts and do not
// shadow the exporter's labels: bad-metric and bad.metric used to be
// sanitised into one family, and /metrics failed promtool check metrics.
func TestBindingNames(t *testing.T) {
	for _, tc := range []struct{ binding, want string }{
		{`{name: s, measurement: bad-metric}`, `measurement "bad-metric" is not a metric name part`},
		{`{name: s, measurement: bad.metric}`, `measurement "bad.metric" is not a metric name part`},
		{`{name: s, measurement: m, labels: {source: x}}`, `label name "source"`},
		{`{name: s, measurement: m, labels: {kpi: x}}`, `label name "kpi"`},
		{`{name: s, measurement: m, labels: {Team-A: x}}`, `label name "Team-A"`},
		{`{name: s, measurement: m, labels: {__name__: x}}`, `label name "__name__"`},
	} {
		y := "sources: [{name: s, type: file}]\ncalendar: {launch: 2026-01-01}\nkpis:\n  - {id: k, name: K, domain: d, dashboard: technical, unit: count, direction: higher, source: " +
			tc.binding + ", targets: [{period: M1, value: 1}]}\n"
		if _, err := Parse("c.yml", []byte(y), ParseOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "c.yml:4:") {
			t.Errorf("%s: %v", tc.binding, err)
		}
	}
}

// Every unknown field of a catalogue is reported, in file order, the same
// on every run (the YAML library reports one, chosen by map order); a
// second document is placed where it starts.
func TestAllUnknownFieldsInStableOrder(t *testing.T) {
	y := `calendar: {launch: 2026-01-01, colour: blue}
sources:
  - {name: s, type: file, enabeld: false}
kpis:
  - {id: k, name: K, domain: d, dashboard: technical, unit: count, direction: higher,
     source: {name: s, measurement: m, lables: {a: b}}, targets: [{period: M1, value: 1, note: x}], owner_team: x}
`
	want := `c.yml:1:32: unknown field "colour"
c.yml:3:27: unknown field "enabeld"
c.yml:6:40: unknown field "lables"
c.yml:6:90: unknown field "note"
c.yml:6:101: unknown field "owner_team"`
	for i := 0; i < 20; i++ {
		_, err := Parse("c.yml", []byte(y), ParseOptions{})
		if err == nil || err.Error() != want {
			t.Fatalf("run %d:\n%v\nwant:\n%s", i, err, want)
		}
	}
	_, err := Parse("c.yml", []byte("kpis: []\n---\nkpis: []\n"), ParseOptions{})
	if err == nil || !strings.HasPrefix(err.Error(), "c.yml:2:1: a catalogue is one YAML document") {
		t.Errorf("two documents: %v", err)
	}
}

// Type errors in several KPIs are all reported, in file order.
func TestAllTypeErrors(t *testing.T) {
	y := `sources: [{name: s, type: file, interval: [1]}]
calendar: {launch: 2026-01-01}
kpis:
  - {id: a, name: A, domain: d, dashboard: technical, unit: count, direction: higher, source: {name: s, measurement: m}, targets: [{period: M1, value: forty}]}
  - {id: b, name: B, domain: d, dashboard: technical, unit: count, direction: higher, source: {name: s, measurement: m}, targets: [{period: M1, value: 1}]}
  - {id: c, name: C, domain: d, dashboard: technical, unit: count, direction: higher, source: {name: s, measurement: m}, targets: [{period: M1, value: {x: 1}}]}
`
	_, err := Parse("c.yml", []byte(y), ParseOptions{})
	if err == nil {
		t.Fatal("accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "c.yml:1:") || !strings.HasPrefix(lines[1], "c.yml:4:") || !strings.HasPrefix(lines[2], "c.yml:6:") {
		t.Errorf("errors:\n%v", err)
	}
}

// A source with enable_when_set is enabled by its environment variable; a
// KPI with a fallback reads the fallback while its source is disabled.
func TestEnableWhenSetAndFallback(t *testing.T) {
	y := `
calendar: {plan_start: 2026-01-01}
sources:
  - {name: manual, type: file}
  - {name: product_db, type: sql, enable_when_set: KPI_PRODUCT_DB_DSN}
kpis:
  - id: dau
    name: DAU
    domain: product
    dashboard: product
    unit: count
    direction: higher
    source: {name: product_db, measurement: daily_active_users, fallback: {name: manual, measurement: workflow_daily_active_users}}
    targets: [{period: Q1, value: 10}]
`
	env := map[string]string{}
	parse := func() *Catalogue {
		t.Helper()
		c, err := Parse("kpis.yaml", []byte(y), ParseOptions{Getenv: func(k string) string { return env[k] }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := parse()
	if src, _ := c.Source("product_db"); src.Enabled || src.EnableWhenSet != "KPI_PRODUCT_DB_DSN" {
		t.Errorf("without the variable: %+v", src)
	}
	if k := c.KPIs[0]; k.Source.Source != "manual" || k.Source.Measurement != "workflow_daily_active_users" || k.Unused.Source != "product_db" || !k.HasFallback {
		t.Errorf("without the variable the KPI reads %s, unused %s", k.Source, k.Unused)
	}
	env["KPI_PRODUCT_DB_DSN"] = "postgres://…"
	c = parse()
	if src, _ := c.Source("product_db"); !src.Enabled {
		t.Error("with the variable the source is disabled")
	}
	if k := c.KPIs[0]; k.Source.Source != "product_db" || k.Unused.Source != "manual" {
		t.Errorf("with the variable the KPI reads %s", k.Source)
	}
	// Without Getenv (generators, tests) such a source is disabled.
	if c, err := Parse("kpis.yaml", []byte(y), ParseOptions{}); err != nil || c.KPIs[0].Source.Source != "manual" {
		t.Errorf("no Getenv: %v", err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"enable_when_set: KPI_PRODUCT_DB_DSN}", "enable_when_set: KPI_PRODUCT_DB_DSN, enabled: true}", "kpis.yaml:5:52: set enabled or enable_when_set, not both"},
		{"enable_when_set: KPI_PRODUCT_DB_DSN}", "enable_when_set: 'not a name'}", `"not a name" is not an environment variable name`},
		{"fallback: {name: manual,", "fallback: {name: product_db,", `the fallback of KPI "dau" reads the same source "product_db"`},
		{"fallback: {name: manual,", "fallback: {name: nowhere,", `kpis.yaml:13:82: KPI "dau" is bound to undeclared source "nowhere"`},
		{"measurement: workflow_daily_active_users}", "measurement: bad-name}", `measurement "bad-name" is not a metric name part`},
	} {
		bad := strings.Replace(y, tc.from, tc.to, 1)
		if _, err := Parse("kpis.yaml", []byte(bad), ParseOptions{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %s", tc.to, err, tc.want)
		}
	}
}

package kpi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/prometheus/common/model"
)

// Defaults for sources that do not set their own.
const (
	DefaultInterval   = 5 * time.Minute
	DefaultMaxTimeout = time.Minute
)

// ParseOptions tunes Parse. Its zero value accepts any source type.
type ParseOptions struct {
	// KnownType reports whether a source type is available in this build. An
	// enabled source of an unknown type is rejected; a disabled one is
	// accepted, since the type may come with a later build.
	KnownType func(string) bool
	// RequireKPIs refuses a catalogue without KPIs, as the daemon does: an
	// empty or truncated file must never replace a working catalogue.
	RequireKPIs bool
	// Getenv reads the environment for sources declared with
	// enable_when_set (os.Getenv in the daemon); nil reads nothing, so such
	// sources are disabled.
	Getenv func(string) string
}

var (
	envName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	idPattern   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

type rawCatalogue struct {
	Calendar struct {
		PlanStart string `yaml:"plan_start"`
		Launch    string `yaml:"launch"`
	} `yaml:"calendar"`
	Evaluation struct {
		TrendWindow string `yaml:"trend_window"`
		Forecast    struct {
			MinPoints *int   `yaml:"min_points"`
			MinSpan   string `yaml:"min_span"`
		} `yaml:"forecast"`
	} `yaml:"evaluation"`
	Alerts struct {
		RedFor    string `yaml:"red_for"`
		YellowFor string `yaml:"yellow_for"`
	} `yaml:"alerts"`
	Sources []rawSource `yaml:"sources"`
	KPIs    []rawKPI    `yaml:"kpis"`
}

type rawSource struct {
	Name          string   `yaml:"name"`
	Type          string   `yaml:"type"`
	Enabled       *bool    `yaml:"enabled"`
	EnableWhenSet string   `yaml:"enable_when_set"`
	Interval      string   `yaml:"interval"`
	Timeout       string   `yaml:"timeout"`
	Settings      ast.Node `yaml:"settings"`
}

type rawBinding struct {
	Name        string            `yaml:"name"`
	Measurement string            `yaml:"measurement"`
	Labels      map[string]string `yaml:"labels"`
	Aggregate   string            `yaml:"aggregate"`
}

type rawKPI struct {
	ID          string `yaml:"id"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Domain      string `yaml:"domain"`
	Dashboard   string `yaml:"dashboard"`
	Owner       string `yaml:"owner"`
	Unit        string `yaml:"unit"`
	Direction   string `yaml:"direction"`
	Source      struct {
		Name        string            `yaml:"name"`
		Measurement string            `yaml:"measurement"`
		Labels      map[string]string `yaml:"labels"`
		Aggregate   string            `yaml:"aggregate"`
		// Fallback is read while the source above is disabled.
		Fallback *rawBinding `yaml:"fallback"`
	} `yaml:"source"`
	Targets []struct {
		Period string   `yaml:"period"`
		Value  *float64 `yaml:"value"`
	} `yaml:"targets"`
	Baseline *float64 `yaml:"baseline"`
	Zones    struct {
		Green  *float64 `yaml:"green"`
		Yellow *float64 `yaml:"yellow"`
	} `yaml:"zones"`
	MaxAge       string `yaml:"max_age"`
	Interpolate  string `yaml:"interpolate"`
	TrendDemotes *bool  `yaml:"trend_demotes"`
	TrendWindow  string `yaml:"trend_window"`
	Critical     bool   `yaml:"critical"`
	AlertFor     string `yaml:"alert_for"`
	YellowFor    string `yaml:"yellow_for"`
	Alerts       *bool  `yaml:"alerts"`
	Forecast     struct {
		Enabled   *bool    `yaml:"enabled"`
		Window    string   `yaml:"window"`
		MinPoints *int     `yaml:"min_points"`
		MinSpan   string   `yaml:"min_span"`
		Monotone  bool     `yaml:"monotone"`
		Min       *float64 `yaml:"min"`
		Max       *float64 `yaml:"max"`
	} `yaml:"forecast"`
}

// Parse decodes and validates a catalogue. Every error names its place as
// file:line:col; all errors found are returned together, in file order.
func Parse(filename string, data []byte, opts ParseOptions) (*Catalogue, error) {
	f, err := ParseYAML(filename, data)
	if err != nil {
		return nil, err
	}
	var raw rawCatalogue
	if len(f.Docs) > 1 {
		pos := Position{File: filename, Line: 1, Column: 1}
		if d := f.Docs[1]; d.Start != nil && d.Start.Position != nil {
			pos.Line, pos.Column = d.Start.Position.Line, d.Start.Position.Column
		} else if d.Body != nil && d.Body.GetToken() != nil && d.Body.GetToken().Position != nil {
			pos.Line, pos.Column = d.Body.GetToken().Position.Line, d.Body.GetToken().Position.Column
		}
		return nil, &PosError{Pos: pos, Msg: "a catalogue is one YAML document; a second one starts here"}
	}
	if len(f.Docs) == 1 && f.Docs[0].Body != nil {
		// Unknown fields first, all of them in file order: the YAML
		// library reports one, chosen by map order, so not the same one
		// from run to run.
		if errs := unknownFields(filename, f.Docs[0].Body, reflect.TypeOf(raw)); len(errs) > 0 {
			return nil, errors.Join(errs...)
		}
		if err := DecodeNode(filename, f.Docs[0].Body, &raw, yaml.Strict()); err != nil {
			// The YAML library stops at the first error; decoding every
			// source and KPI apart finds them all, in file order.
			if errs := decodeErrors(filename, f.Docs[0].Body); len(errs) > 1 {
				return nil, errors.Join(errs...)
			}
			return nil, err
		}
	}
	v := &validator{file: filename, ast: f}
	c := v.catalogue(&raw, opts)
	if len(v.errs) > 0 {
		sort.SliceStable(v.errs, func(i, j int) bool {
			a, b := v.errs[i].Pos, v.errs[j].Pos
			return a.Line < b.Line || (a.Line == b.Line && a.Column < b.Column)
		})
		errs := make([]error, len(v.errs))
		for i, e := range v.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return c, nil
}

// decodeErrors decodes each top-level entry of a catalogue, and each of
// its sources and KPIs, on its own, and returns every error, in file order.
func decodeErrors(file string, body ast.Node) []error {
	m, ok := body.(*ast.MappingNode)
	if !ok {
		return nil
	}
	var errs []error
	t := reflect.TypeOf(rawCatalogue{})
	for _, kv := range m.Values {
		ft, ok := yamlField(t, strings.TrimSpace(kv.Key.String()))
		if !ok {
			continue
		}
		if seq, isSeq := kv.Value.(*ast.SequenceNode); isSeq && ft.Kind() == reflect.Slice {
			for _, item := range seq.Values {
				if err := DecodeNode(file, item, reflect.New(ft.Elem()).Interface()); err != nil {
					errs = append(errs, err)
				}
			}
			continue
		}
		if err := DecodeNode(file, kv.Value, reflect.New(ft).Interface()); err != nil {
			errs = append(errs, err)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errPos(errs[i]), errPos(errs[j])
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	})
	return errs
}

func errPos(err error) Position {
	var pe *PosError
	if errors.As(err, &pe) {
		return pe.Pos
	}
	return Position{}
}

// unknownFields walks a document against the struct it decodes into and
// returns an error, at its key, for every key the struct does not have, in
// file order. Fields of type ast.Node (a source's settings, decoded by the
// source type) are not walked.
func unknownFields(file string, n ast.Node, t reflect.Type) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == reflect.TypeOf((*ast.Node)(nil)).Elem() {
		return nil
	}
	var errs []error
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, kv := range n.Values {
			errs = append(errs, unknownFields(file, kv, t)...)
		}
	case *ast.MappingValueNode:
		switch t.Kind() {
		case reflect.Struct:
			key := strings.TrimSpace(n.Key.String())
			ft, ok := yamlField(t, key)
			if !ok {
				pos := Position{File: file, Line: 1, Column: 1}
				if tk := n.Key.GetToken(); tk != nil && tk.Position != nil {
					pos.Line, pos.Column = tk.Position.Line, tk.Position.Column
				}
				errs = append(errs, &PosError{Pos: pos, Msg: fmt.Sprintf("unknown field %q", key)})
				break
			}
			errs = append(errs, unknownFields(file, n.Value, ft)...)
		case reflect.Map:
			errs = append(errs, unknownFields(file, n.Value, t.Elem())...)
		}
	case *ast.SequenceNode:
		if t.Kind() == reflect.Slice {
			for _, v := range n.Values {
				errs = append(errs, unknownFields(file, v, t.Elem())...)
			}
		}
	case *ast.TagNode:
		errs = append(errs, unknownFields(file, n.Value, t)...)
	case *ast.AnchorNode:
		errs = append(errs, unknownFields(file, n.Value, t)...)
	}
	return errs
}

// yamlField finds the type of the struct field a YAML key decodes into.
func yamlField(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == key {
			return f.Type, true
		}
	}
	return nil, false
}

// ParseYAML parses a YAML document into its syntax tree. Errors read
// file:line:col: message. The YAML library's panics on hostile input (it has
// some) become errors: outside input must never crash the daemon.
func ParseYAML(file string, data []byte) (f *ast.File, err error) {
	defer recoverYAML(file, &err)
	if err := CheckYAMLBounds(file, data); err != nil {
		return nil, err
	}
	f, err = parser.ParseBytes(data, 0)
	if err != nil {
		return nil, YAMLError(file, err)
	}
	return f, nil
}

// MeasurementName is what a measurement or label name may be: a part of a
// Prometheus metric name, the same for every source type.
var MeasurementName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ReservedLabel reports whether a label name is one the exporter or
// Prometheus sets, which a measurement's labels must not shadow.
func ReservedLabel(name string) bool {
	switch name {
	case "source", "kpi", "domain", "job", "instance", "collector":
		return true
	}
	return strings.HasPrefix(name, "__")
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Bounds of a YAML document read from outside (a catalogue, a values
// file), checked before the YAML library sees it. The library's memory
// grows with the square of the nesting depth (depth 20,000 costs 666 MB,
// 50,000 runs out of memory) and of the number of keys of one mapping
// (8,000 keys cost 280 MB), and by about 1.3 KB a node: measured, these
// bounds keep any document under 256 MiB. A catalogue of 1,000 KPIs needs
// about 35,000 nodes.
const (
	MaxYAMLBytes       = 16 << 20
	MaxYAMLDepth       = 64
	MaxYAMLNodes       = 100000
	MaxYAMLMappingKeys = 2000
)

// CheckYAMLBounds refuses a document larger than MaxYAMLBytes, nesting
// deeper than MaxYAMLDepth, with more than MaxYAMLNodes nodes or a mapping
// of more than MaxYAMLMappingKeys keys, naming the line (and column) where
// it goes too far. The scan is linear and conservative: flow collections
// ([ and { outside quotes and comments), block levels (indentation and
// "- " entries), a node per line and per flow item.
func CheckYAMLBounds(file string, data []byte) error {
	if len(data) > MaxYAMLBytes {
		return &PosError{Pos: Position{File: file}, Msg: fmt.Sprintf("larger than %d bytes", MaxYAMLBytes)}
	}
	type level struct {
		indent, keys int
	}
	var blocks []level // the block levels open at the current line
	var flows []int    // open flow collections: the keys of a mapping, -1 for a sequence
	nodes, line := 0, 0
	fail := func(col int, format string, args ...any) error {
		return &PosError{Pos: Position{File: file, Line: line, Column: col}, Msg: fmt.Sprintf(format, args...)}
	}
	for len(data) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		ind := 0
		for ind < len(l) && l[ind] == ' ' {
			ind++
		}
		rest := l[ind:]
		if len(flows) == 0 && len(bytes.TrimSpace(rest)) > 0 && rest[0] != '#' {
			nodes++
			for len(blocks) > 0 && blocks[len(blocks)-1].indent > ind {
				blocks = blocks[:len(blocks)-1]
			}
			if n := len(blocks); n > 0 && blocks[n-1].indent == ind {
				if !bytes.HasPrefix(rest, []byte("- ")) && !bytes.Equal(rest, []byte("-")) {
					blocks[n-1].keys++
					if blocks[n-1].keys > MaxYAMLMappingKeys {
						return fail(ind+1, "a mapping of more than %d keys", MaxYAMLMappingKeys)
					}
				}
			} else {
				blocks = append(blocks, level{indent: ind, keys: 1})
			}
			// Compact block sequences ("- - - x") nest on one line.
			for len(rest) >= 2 && rest[0] == '-' && rest[1] == ' ' {
				ind += 2
				blocks = append(blocks, level{indent: ind, keys: 1})
				rest = bytes.TrimLeft(rest[2:], " ")
				if len(blocks) > MaxYAMLDepth {
					return fail(ind+1, "nested deeper than %d levels", MaxYAMLDepth)
				}
			}
		}
		var quote byte
		for i := 0; i < len(rest); i++ {
			c := rest[i]
			switch {
			case quote != 0:
				if c == quote {
					quote = 0
				}
			case c == '\'' || c == '"':
				quote = c
			case c == '#' && (i == 0 || rest[i-1] == ' '):
				i = len(rest)
			case c == '[' || c == '{':
				keys := -1
				if c == '{' {
					keys = 0
				}
				flows = append(flows, keys)
				nodes++
				if len(flows)+len(blocks) > MaxYAMLDepth {
					return fail(ind+i+1, "nested deeper than %d levels", MaxYAMLDepth)
				}
			case (c == ']' || c == '}') && len(flows) > 0:
				flows = flows[:len(flows)-1]
			case c == ',' && len(flows) > 0:
				nodes++
				if n := len(flows); flows[n-1] >= 0 {
					flows[n-1]++
					if flows[n-1] >= MaxYAMLMappingKeys {
						return fail(ind+i+1, "a mapping of more than %d keys", MaxYAMLMappingKeys)
					}
				}
			}
			if nodes > MaxYAMLNodes {
				return fail(ind+i+1, "more than %d nodes", MaxYAMLNodes)
			}
		}
		if len(flows)+len(blocks) > MaxYAMLDepth {
			return fail(ind+1, "nested deeper than %d levels", MaxYAMLDepth)
		}
		if nodes > MaxYAMLNodes {
			return fail(ind+1, "more than %d nodes", MaxYAMLNodes)
		}
	}
	return nil
}

// DecodeNode decodes a node of a parsed document into v, like ParseYAML
// turning errors into file:line:col: message and panics into errors.
func DecodeNode(file string, node ast.Node, v any, opts ...yaml.DecodeOption) (err error) {
	defer recoverYAML(file, &err)
	if err := yaml.NodeToValue(node, v, opts...); err != nil {
		return YAMLError(file, err)
	}
	return nil
}

func recoverYAML(file string, err *error) {
	if p := recover(); p != nil {
		*err = &PosError{Pos: Position{File: file}, Msg: fmt.Sprintf("the YAML decoder failed on this input: %v", p)}
	}
}

// YAMLError turns an error of the YAML library into file:line:col: message.
func YAMLError(file string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && te.Token != nil && te.Token.Position != nil {
		// The library's own message names our internal Go types; say what
		// the field wants instead.
		return &PosError{
			Pos: Position{File: file, Line: te.Token.Position.Line, Column: te.Token.Position.Column},
			Msg: fmt.Sprintf("cannot use %q as %s", te.Token.Value, kindName(te.DstType)),
		}
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			return &PosError{Pos: Position{File: file, Line: tk.Position.Line, Column: tk.Position.Column}, Msg: ye.GetMessage()}
		}
		return &PosError{Pos: Position{File: file}, Msg: ye.GetMessage()}
	}
	return fmt.Errorf("%s: %w", file, err)
}

func kindName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "this field"
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return t.String()
}

type validator struct {
	file string
	ast  *ast.File
	errs []*PosError
}

// pos finds the place of a YAML path; where the path does not exist (a
// missing field), the place of its nearest existing parent.
func (v *validator) pos(path string) Position {
	return nodePos(v.file, v.ast, path)
}

func nodePos(file string, f *ast.File, path string) Position {
	for path != "" && path != "$" {
		if p, err := yaml.PathString(path); err == nil {
			if n, err := p.FilterFile(f); err == nil && n != nil {
				// A mapping is placed at its first key, not its first value.
				if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
					n = m.Values[0].Key
				}
				if tk := n.GetToken(); tk != nil && tk.Position != nil {
					return Position{File: file, Line: tk.Position.Line, Column: tk.Position.Column}
				}
			}
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut <= 0 {
			break
		}
		path = path[:cut]
	}
	return Position{File: file, Line: 1, Column: 1}
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, &PosError{Pos: v.pos(path), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) duration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := model.ParseDuration(s)
	if err != nil || d <= 0 {
		v.errorf(path, "must be a positive duration (such as 30s, 5m, 1h or 14d), not %q", s)
		return def
	}
	return time.Duration(d)
}

func (v *validator) date(path, s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		v.errorf(path, "%q is not an ISO date (YYYY-MM-DD)", s)
	}
	return t
}

func (v *validator) catalogue(raw *rawCatalogue, opts ParseOptions) *Catalogue {
	c := &Catalogue{sourceIndex: map[string]int{}}
	c.Calendar.PlanStart = v.date("$.calendar.plan_start", raw.Calendar.PlanStart)
	c.Calendar.Launch = v.date("$.calendar.launch", raw.Calendar.Launch)
	c.TrendWindow = v.duration("$.evaluation.trend_window", raw.Evaluation.TrendWindow, DefaultTrendWindow)
	c.Alerts.RedFor = v.duration("$.alerts.red_for", raw.Alerts.RedFor, DefaultAlertFor)
	c.Alerts.YellowFor = v.duration("$.alerts.yellow_for", raw.Alerts.YellowFor, DefaultYellowFor)
	c.ForecastDefaults.MinPoints = v.minPoints("$.evaluation.forecast.min_points", raw.Evaluation.Forecast.MinPoints)
	c.ForecastDefaults.MinSpan = v.duration("$.evaluation.forecast.min_span", raw.Evaluation.Forecast.MinSpan, 0)

	for i, rs := range raw.Sources {
		p := fmt.Sprintf("$.sources[%d]", i)
		s := v.source(p, rs, opts)
		if s.Name == "" {
			continue
		}
		if _, dup := c.sourceIndex[s.Name]; dup {
			v.errorf(p+".name", "duplicate source name %q", s.Name)
			continue
		}
		c.sourceIndex[s.Name] = len(c.Sources)
		c.Sources = append(c.Sources, s)
	}

	if len(raw.KPIs) == 0 && opts.RequireKPIs {
		// An empty or truncated file (an editor's half-written save, a
		// wrong --config) must never replace a working catalogue.
		v.errorf("$.kpis", "the catalogue has no KPIs: an empty or truncated file is refused, and the catalogue in use (if any) stays")
	}
	ids := map[string]bool{}
	for i := range raw.KPIs {
		p := fmt.Sprintf("$.kpis[%d]", i)
		k := v.kpi(p, &raw.KPIs[i], c)
		if k.ID != "" && ids[k.ID] {
			v.errorf(p+".id", "duplicate KPI id %q", k.ID)
			continue
		}
		ids[k.ID] = true
		c.KPIs = append(c.KPIs, k)
	}
	return c
}

func (v *validator) source(p string, rs rawSource, opts ParseOptions) Source {
	s := Source{Name: rs.Name, Type: rs.Type, Enabled: rs.Enabled == nil || *rs.Enabled, Pos: v.pos(p), EnableWhenSet: rs.EnableWhenSet}
	if rs.EnableWhenSet != "" {
		switch {
		case rs.Enabled != nil:
			v.errorf(p+".enable_when_set", "set enabled or enable_when_set, not both")
		case !envName.MatchString(rs.EnableWhenSet):
			v.errorf(p+".enable_when_set", "%q is not an environment variable name", rs.EnableWhenSet)
		default:
			s.Enabled = opts.Getenv != nil && opts.Getenv(rs.EnableWhenSet) != ""
		}
	}
	if !namePattern.MatchString(rs.Name) {
		v.errorf(p+".name", "source name %q must be snake_case ([a-z][a-z0-9_]*)", rs.Name)
	}
	switch {
	case rs.Type == "":
		v.errorf(p+".type", "source %q has no type", rs.Name)
	case s.Enabled && opts.KnownType != nil && !opts.KnownType(rs.Type):
		v.errorf(p+".type", "unknown source type %q", rs.Type)
	}
	s.Interval = v.duration(p+".interval", rs.Interval, DefaultInterval)
	s.Timeout = v.duration(p+".timeout", rs.Timeout, min(s.Interval, DefaultMaxTimeout))
	s.Settings = Settings{file: v.file, ast: v.ast, node: rs.Settings, path: p + ".settings"}
	return s
}

func (v *validator) kpi(p string, rk *rawKPI, c *Catalogue) KPI {
	k := KPI{
		ID: rk.ID, Name: rk.Name, Description: rk.Description, Domain: rk.Domain,
		Dashboard: rk.Dashboard, Owner: rk.Owner, Unit: Unit(rk.Unit), Direction: Direction(rk.Direction),
		Baseline: rk.Baseline, Green: DefaultGreen, Yellow: DefaultYellow,
		TrendDemotes: rk.TrendDemotes == nil || *rk.TrendDemotes,
	}
	if !idPattern.MatchString(k.ID) {
		v.errorf(p+".id", "KPI id %q must be snake_case ([a-z][a-z0-9_]*)", k.ID)
	}
	if strings.TrimSpace(k.Name) == "" {
		v.errorf(p+".name", "KPI %q has no name", k.ID)
	}
	if !namePattern.MatchString(k.Domain) {
		v.errorf(p+".domain", "domain %q must be snake_case ([a-z][a-z0-9_]*)", k.Domain)
	}
	if !slices.Contains(Dashboards, k.Dashboard) {
		v.errorf(p+".dashboard", "dashboard %q is not one of %s", k.Dashboard, strings.Join(Dashboards, ", "))
	}
	if _, money := Currency(k.Unit); !money && !slices.Contains(Units, k.Unit) {
		names := make([]string, 0, len(Units))
		for _, u := range Units {
			if u != UnitUSD {
				names = append(names, string(u))
			}
		}
		v.errorf(p+".unit", "unit %q is not one of %s, or a currency's ISO 4217 code in lower case (usd, eur, gbp, jpy, …)", k.Unit, strings.Join(names, ", "))
	}
	if k.Direction != Higher && k.Direction != Lower {
		v.errorf(p+".direction", "direction %q is not higher or lower", k.Direction)
	}

	rs := rk.Source
	k.Source = v.binding(p+".source", k.ID, rawBinding{Name: rs.Name, Measurement: rs.Measurement, Labels: rs.Labels, Aggregate: rs.Aggregate}, c)
	if fb := rk.Source.Fallback; fb != nil {
		fallback := v.binding(p+".source.fallback", k.ID, *fb, c)
		switch src, _ := c.Source(k.Source.Source); {
		case fb.Name == k.Source.Source:
			v.errorf(p+".source.fallback.name", "the fallback of KPI %q reads the same source %q", k.ID, fb.Name)
		case !src.Enabled && k.Source.Source != "":
			// The source is disabled (or waits for its environment
			// variable): the KPI reads the fallback until it is enabled.
			k.Unused, k.Source = k.Source, fallback
		default:
			k.Unused = fallback
		}
		k.HasFallback = true
	}

	if len(rk.Targets) == 0 {
		v.errorf(p+".targets", "KPI %q has no targets", k.ID)
	}
	for j, rm := range rk.Targets {
		mp := fmt.Sprintf("%s.targets[%d]", p, j)
		per, err := c.Calendar.ParsePeriod(rm.Period)
		if err != nil {
			v.errorf(mp+".period", "%v", err)
			continue
		}
		if rm.Value == nil {
			v.errorf(mp, "milestone %s has no value", rm.Period)
			continue
		}
		if math.IsNaN(*rm.Value) || math.IsInf(*rm.Value, 0) || *rm.Value < 0 {
			v.errorf(mp+".value", "target must be a finite number ≥ 0 (express a reduction as a ratio to the baseline), not %v", *rm.Value)
			continue
		}
		for _, prev := range k.Targets {
			if per.Start.Before(prev.Period.End) && prev.Period.Start.Before(per.End) {
				v.errorf(mp+".period", "milestone %s overlaps milestone %s", per.Label, prev.Period.Label)
			}
		}
		k.Targets = append(k.Targets, Milestone{Period: per, Value: *rm.Value})
	}
	sort.SliceStable(k.Targets, func(i, j int) bool { return k.Targets[i].Period.Start.Before(k.Targets[j].Period.Start) })
	if k.Baseline != nil && (math.IsNaN(*k.Baseline) || math.IsInf(*k.Baseline, 0)) {
		v.errorf(p+".baseline", "baseline must be a finite number")
	}

	if z := rk.Zones.Green; z != nil {
		k.Green = *z
		if !(k.Green > 0 && k.Green <= 2) {
			v.errorf(p+".zones.green", "threshold %v is outside (0, 2]", k.Green)
		}
	}
	if z := rk.Zones.Yellow; z != nil {
		k.Yellow = *z
		if !(k.Yellow > 0 && k.Yellow <= 2) {
			v.errorf(p+".zones.yellow", "threshold %v is outside (0, 2]", k.Yellow)
		}
	}
	if k.Yellow > k.Green {
		v.errorf(p+".zones.yellow", "yellow threshold %v is above green threshold %v", k.Yellow, k.Green)
	}

	k.MaxAge = v.duration(p+".max_age", rk.MaxAge, 0)
	k.TrendWindow = v.duration(p+".trend_window", rk.TrendWindow, 0)
	k.Critical = rk.Critical
	k.AlertFor = v.duration(p+".alert_for", rk.AlertFor, c.Alerts.RedFor)
	k.YellowFor = v.duration(p+".yellow_for", rk.YellowFor, c.Alerts.YellowFor)
	k.NoAlerts = rk.Alerts != nil && !*rk.Alerts
	switch rk.Interpolate {
	case "", "step":
	case "linear":
		k.Interpolate = true
	default:
		v.errorf(p+".interpolate", "interpolate %q is not linear or step", rk.Interpolate)
	}
	rf := &rk.Forecast
	k.Forecast = ForecastSettings{
		Disabled:  rf.Enabled != nil && !*rf.Enabled,
		Window:    v.duration(p+".forecast.window", rf.Window, 0),
		MinPoints: v.minPoints(p+".forecast.min_points", rf.MinPoints),
		MinSpan:   v.duration(p+".forecast.min_span", rf.MinSpan, 0),
		Monotone:  rf.Monotone,
		Min:       rf.Min, Max: rf.Max,
	}
	for _, b := range []struct {
		name string
		v    *float64
	}{{"min", rf.Min}, {"max", rf.Max}} {
		if b.v != nil && (math.IsNaN(*b.v) || math.IsInf(*b.v, 0)) {
			v.errorf(p+".forecast."+b.name, "forecast %s must be a finite number", b.name)
		}
	}
	if rf.Min != nil && rf.Max != nil && *rf.Min >= *rf.Max {
		v.errorf(p+".forecast.max", "forecast max %v is not above min %v", *rf.Max, *rf.Min)
	}
	return k
}

// minPoints validates a forecast's least number of points (0 when unset).
func (v *validator) minPoints(path string, n *int) int {
	if n == nil {
		return 0
	}
	if *n < 3 || *n > 100000 {
		v.errorf(path, "min_points must be between 3 and 100000, not %d", *n)
		return 0
	}
	return *n
}

// binding validates one binding of a KPI at path p.
func (v *validator) binding(p, id string, b rawBinding, c *Catalogue) Binding {
	out := Binding{Source: b.Name, Measurement: b.Measurement, Labels: b.Labels, Aggregate: Aggregation(b.Aggregate)}
	_, declared := c.Source(b.Name)
	switch {
	case b.Name == "":
		v.errorf(p+".name", "KPI %q is bound to no source", id)
	case !declared:
		v.errorf(p+".name", "KPI %q is bound to undeclared source %q", id, b.Name)
	}
	switch {
	case b.Measurement == "":
		v.errorf(p+".measurement", "KPI %q names no measurement", id)
	case !MeasurementName.MatchString(b.Measurement):
		// A name such as bad-metric or bad.metric would be sanitised into
		// the same metric family as another and break /metrics.
		v.errorf(p+".measurement", "measurement %q is not a metric name part ([a-z_][a-z0-9_]*)", b.Measurement)
	}
	for _, name := range sortedKeys(b.Labels) {
		if !MeasurementName.MatchString(name) || ReservedLabel(name) {
			v.errorf(p+".labels."+name, "label name %q is not [a-z_][a-z0-9_]*, or is one the exporter sets (source, kpi, domain, job, instance, __…)", name)
		}
	}
	switch out.Aggregate {
	case AggNone, AggSum, AggAvg, AggMin, AggMax:
	case AggPooled:
		if _, _, ok := PooledParts(b.Measurement); !ok && b.Measurement != "" {
			v.errorf(p+".aggregate", "aggregate pooled needs a measurement named <base>_ratio (it sums <base>_covered and <base>_total), not %q", b.Measurement)
		}
	default:
		v.errorf(p+".aggregate", "aggregate %q is not sum, avg, min, max or pooled", b.Aggregate)
	}
	return out
}

// Settings are a source's type-specific settings as written in the
// catalogue. The collector type decodes them; errors keep their file:line:col.
type Settings struct {
	file string
	ast  *ast.File
	node ast.Node
	path string
}

// IsZero reports whether the source has no settings block.
func (s Settings) IsZero() bool { return s.node == nil }

// Decode decodes the settings strictly (unknown fields are errors) into v.
// Without a settings block, v is left as it is.
func (s Settings) Decode(v any) error {
	if s.node == nil {
		return nil
	}
	return DecodeNode(s.file, s.node, v, yaml.Strict())
}

// Errorf makes an error at a field of the settings, given as a YAML path
// relative to the settings block (".path", ".files[2]"); "" is the block.
func (s Settings) Errorf(field, format string, args ...any) error {
	pos := Position{File: s.file}
	if s.ast != nil {
		pos = nodePos(s.file, s.ast, s.path+field)
	}
	return &PosError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// String renders the settings as YAML, so that two catalogues can be
// compared for a changed source.
func (s Settings) String() string {
	if s.node == nil {
		return ""
	}
	return s.node.String()
}

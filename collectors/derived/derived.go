// Package derived is the source type "derived": measurements computed with
// expressions from other sources' measurements and from KPI values — cost
// per request, revenue per employee, gross margin, CAC, payback period,
// infrastructure cost year over year.
package derived

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "derived"

func init() { collectors.Register(Type, New) }

// Settings of a derived source.
type Settings struct {
	Measurements []Measurement `yaml:"measurements"`
}

// Measurement is one computed measurement.
type Measurement struct {
	Name string `yaml:"name"`
	// Expr is an expr-lang expression over the inputs' names. Division by
	// anything but a non-zero constant is written div(a, b), which has no
	// value when b is 0.
	Expr   string           `yaml:"expr"`
	Inputs map[string]Input `yaml:"inputs"`
}

// Input names a value: a source's measurement (matched and aggregated as a
// KPI binding is) or a KPI's value.
type Input struct {
	Source      string            `yaml:"source"`
	Measurement string            `yaml:"measurement"`
	Labels      map[string]string `yaml:"labels"`
	Aggregate   string            `yaml:"aggregate"`
	KPI         string            `yaml:"kpi"`
}

type compiled struct {
	m       Measurement
	program *vm.Program
	inputs  []string // sorted input names
}

// Collector is a derived source.
type Collector struct {
	self   string
	order  []*compiled // dependency order
	latest func() collectors.Latest
	deps   []string
}

var nameRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

func div(params ...any) (any, error) {
	a, b := params[0].(float64), params[1].(float64)
	if b == 0 {
		return nil, nil
	}
	return a / b, nil
}

// New builds a derived source, compiling every expression once and
// rejecting unknown names, unguarded division and cycles, each at its place
// in the catalogue.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	at := src.Settings.Errorf
	if len(s.Measurements) == 0 {
		return nil, at("", "source %q (type derived) has no measurements", src.Name)
	}
	byName := map[string]*compiled{}
	var all []*compiled
	deps := map[string]bool{}
	for i, m := range s.Measurements {
		p := fmt.Sprintf(".measurements[%d]", i)
		if !nameRe.MatchString(m.Name) || byName[m.Name] != nil {
			return nil, at(p+".name", "measurement name %q must be a unique [a-z_][a-z0-9_]*", m.Name)
		}
		env := map[string]any{}
		var names []string
		for in, def := range m.Inputs {
			ip := p + ".inputs." + in
			if !nameRe.MatchString(in) || in == "div" {
				return nil, at(ip, "input name %q must be [a-z_][a-z0-9_]* (and not div)", in)
			}
			switch {
			case def.KPI != "" && def.Source == "":
				deps["kpi:"+def.KPI] = true
			case def.Source != "" && def.Measurement != "" && def.KPI == "":
				if def.Source != src.Name {
					deps[def.Source] = true
				}
			default:
				return nil, at(ip, "input %s is either {source, measurement[, labels, aggregate]} or {kpi}", in)
			}
			switch kpi.Aggregation(def.Aggregate) {
			case kpi.AggNone, kpi.AggSum, kpi.AggAvg, kpi.AggMin, kpi.AggMax:
			case kpi.AggPooled:
				if _, _, ok := kpi.PooledParts(def.Measurement); !ok {
					return nil, at(ip+".aggregate", "aggregate pooled needs a measurement named <base>_ratio, not %q", def.Measurement)
				}
			default:
				return nil, at(ip+".aggregate", "aggregate %q is not sum, avg, min, max or pooled", def.Aggregate)
			}
			env[in] = 0.0
			names = append(names, in)
		}
		sort.Strings(names)
		if err := checkDivisions(m.Expr); err != nil {
			return nil, at(p+".expr", "%s: %v", m.Name, err)
		}
		prog, err := expr.Compile(m.Expr, expr.Env(env), expr.Function("div", div, new(func(float64, float64) any)))
		if err != nil {
			// expr's message is the error, then the expression with a caret.
			msg, _, _ := strings.Cut(err.Error(), "\n")
			return nil, at(p+".expr", "%s: %s", m.Name, msg)
		}
		c := &compiled{m: m, program: prog, inputs: names}
		byName[m.Name] = c
		all = append(all, c)
	}
	order, err := topo(src.Name, all, byName)
	if err != nil {
		return nil, at("", "%v", err)
	}
	d := &Collector{self: src.Name, order: order, latest: env.Latest}
	for dep := range deps {
		d.deps = append(d.deps, dep)
	}
	sort.Strings(d.deps)
	return d, nil
}

// checkDivisions rejects a division (or modulo) by anything but a non-zero
// constant: a divisor that may be 0 is written div(a, b).
func checkDivisions(input string) error {
	tree, err := parser.Parse(input)
	if err != nil {
		return err
	}
	var bad error
	v := &visitor{fn: func(n ast.Node) {
		b, ok := n.(*ast.BinaryNode)
		if !ok || (b.Operator != "/" && b.Operator != "%") || bad != nil {
			return
		}
		switch r := b.Right.(type) {
		case *ast.IntegerNode:
			if r.Value != 0 {
				return
			}
		case *ast.FloatNode:
			if r.Value != 0 {
				return
			}
		}
		bad = fmt.Errorf("division by %q, which may be 0: write div(%s, %s), which has no value then", b.Right.String(), b.Left.String(), b.Right.String())
	}}
	ast.Walk(&tree.Node, v)
	return bad
}

type visitor struct{ fn func(ast.Node) }

func (v *visitor) Visit(n *ast.Node) { v.fn(*n) }

// topo orders measurements so that one reading another of the same source
// comes after it; a cycle is an error.
func topo(self string, all []*compiled, byName map[string]*compiled) ([]*compiled, error) {
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var order []*compiled
	var visit func(c *compiled, path []string) error
	visit = func(c *compiled, path []string) error {
		switch state[c.m.Name] {
		case 1:
			return fmt.Errorf("derived measurements form a cycle: %s", strings.Join(append(path, c.m.Name), " → "))
		case 2:
			return nil
		}
		state[c.m.Name] = 1
		for _, in := range c.inputs {
			def := c.m.Inputs[in]
			if def.Source == self {
				dep := byName[def.Measurement]
				if dep == nil {
					return fmt.Errorf("input %s of %s reads %s/%s, which this source does not define", in, c.m.Name, self, def.Measurement)
				}
				if err := visit(dep, append(path, c.m.Name)); err != nil {
					return err
				}
			}
		}
		state[c.m.Name] = 2
		order = append(order, c)
		return nil
	}
	for _, c := range all {
		if err := visit(c, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// DependsOn lists the sources and KPIs this source reads.
func (d *Collector) DependsOn() []string { return d.deps }

// Collect computes every measurement from the latest values. A missing
// input makes its measurement (and those computed from it) unknown, never
// 0; a value's time is the oldest time of its inputs, so stale inputs make
// stale results.
func (d *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	if d.latest == nil {
		return nil, fmt.Errorf("derived measurements need the other sources' values, which this command does not provide")
	}
	l := d.latest()
	own := map[string]kpi.Measurement{}
	var out []kpi.Measurement
	for _, c := range d.order {
		env := map[string]any{}
		var oldest time.Time
		missing := false
		for _, in := range c.inputs {
			def := c.m.Inputs[in]
			var v float64
			var t time.Time
			var ok bool
			switch {
			case def.KPI != "":
				p, found := l.KPIs[def.KPI]
				v, t, ok = p.V, p.T, found
			case def.Source == d.self:
				m, found := own[def.Measurement]
				v, t, ok = m.Value, m.Time, found
			default:
				v, t, ok = kpi.Resolve(l.Readings, kpi.Binding{Source: def.Source, Measurement: def.Measurement,
					Labels: def.Labels, Aggregate: kpi.Aggregation(def.Aggregate)})
			}
			if !ok {
				missing = true
				break
			}
			env[in] = v
			if oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
		if missing {
			continue
		}
		res, err := expr.Run(c.program, env)
		if err != nil || res == nil {
			continue // div by 0, or a value computed from one: unknown
		}
		f, ok := toFloat(res)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		m := kpi.Measurement{Name: c.m.Name, Value: f, Time: oldest}
		own[c.m.Name] = m
		out = append(out, m)
	}
	return out, nil
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int:
		return float64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

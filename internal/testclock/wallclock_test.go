package testclock

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The packages that evaluate KPIs and render what an evaluation says take
// their clock from outside. This test reads their source and fails on any
// call of time.Now, time.Since or time.Until, unless the line says why the
// wall clock is right there with a "wallclock:" comment (a duration of work,
// the arrival of a pushed value). Together with `make test-dates`, which
// runs their tests years ahead, it is the proof that no surface depends on
// the date the suite runs.
func TestNoWallClockInEvaluation(t *testing.T) {
	for _, dir := range []string{"kpi", "exporter", "report", "app"} {
		root := filepath.Join("..", "..", dir)
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			n++
			path := filepath.Join(root, name)
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(src), "\n")
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkg, ok := sel.X.(*ast.Ident)
				if !ok || pkg.Name != "time" || (sel.Sel.Name != "Now" && sel.Sel.Name != "Since" && sel.Sel.Name != "Until") {
					return true
				}
				pos := fset.Position(call.Pos())
				if !strings.Contains(lines[pos.Line-1], "wallclock:") {
					t.Errorf("%s: time.%s reads the wall clock; take the clock from the caller (or say why with a wallclock: comment)", pos, sel.Sel.Name)
				}
				return true
			})
		}
		if n == 0 {
			t.Fatalf("no Go files in %s", root)
		}
	}
}

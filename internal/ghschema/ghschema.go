// Package ghschema loads GitHub's public GraphQL schema and validates
// documents against it, for the tests of the sources that talk to GitHub
// and for their fake server. It is not used by the daemon.
package ghschema

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	_ "github.com/vektah/gqlparser/v2/validator/rules" // the standard validation rules
)

// Path finds shared/github/schema.graphql from a directory inside the
// checkout: it lies beside the repository, in ../shared. KPI_GITHUB_SCHEMA
// overrides.
func Path(from string) (string, error) {
	if p := os.Getenv("KPI_GITHUB_SCHEMA"); p != "" {
		return p, nil
	}
	dir, err := filepath.Abs(from)
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "shared", "github", "schema.graphql")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("GitHub's GraphQL schema (shared/github/schema.graphql) was not found beside the checkout; set KPI_GITHUB_SCHEMA")
		}
		dir = parent
	}
}

var (
	once   sync.Once
	schema *ast.Schema
	errLd  error
)

// Load parses and validates the schema once. The published file defines two
// fields of EnterpriseOwnerInfo twice; the second definition of a
// duplicated field is dropped, as the schema's README says.
func Load(path string) (*ast.Schema, error) {
	once.Do(func() {
		src, err := os.ReadFile(path)
		if err != nil {
			errLd = err
			return
		}
		doc, gerr := parser.ParseSchemas(validator.Prelude, &ast.Source{Name: path, Input: string(src)})
		if gerr != nil {
			errLd = gerr
			return
		}
		for _, defs := range [][]*ast.Definition{doc.Definitions, doc.Extensions} {
			for _, d := range defs {
				seen := map[string]bool{}
				fields := d.Fields[:0]
				for _, f := range d.Fields {
					if !seen[f.Name] {
						seen[f.Name] = true
						fields = append(fields, f)
					}
				}
				d.Fields = fields
			}
		}
		s, gerr := validator.ValidateSchemaDocument(doc)
		if gerr != nil {
			errLd = gerr
			return
		}
		schema = s
	})
	return schema, errLd
}

// Validate parses a query document and validates it against the schema.
func Validate(s *ast.Schema, query string) (*ast.QueryDocument, error) {
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return nil, err
	}
	if errs := validator.ValidateWithRules(s, doc, nil); len(errs) > 0 {
		return nil, errs
	}
	return doc, nil
}

// Cost computes a query's rate-limit points as GitHub documents it: one
// request for every connection, times the page sizes of the connections it
// sits in, summed, divided by 100 and rounded, at least 1. Every connection
// must ask for first or last, 1 to 100, as GitHub requires.
func Cost(op *ast.OperationDefinition, vars map[string]any) (int, error) {
	var requests float64
	var walk func(ss ast.SelectionSet, mult float64) error
	walk = func(ss ast.SelectionSet, mult float64) error {
		for _, sel := range ss {
			switch s := sel.(type) {
			case *ast.Field:
				m := mult
				if s.Definition != nil && isConnection(s.Definition.Type) {
					n, err := pageSize(s, vars)
					if err != nil {
						return err
					}
					requests += mult
					m = mult * float64(n)
				}
				if err := walk(s.SelectionSet, m); err != nil {
					return err
				}
			case *ast.InlineFragment:
				if err := walk(s.SelectionSet, mult); err != nil {
					return err
				}
			case *ast.FragmentSpread:
				if err := walk(s.Definition.SelectionSet, mult); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(op.SelectionSet, 1); err != nil {
		return 0, err
	}
	return max(1, int(math.Round(requests/100))), nil
}

func isConnection(t *ast.Type) bool {
	name := t.Name()
	return len(name) > len("Connection") && name[len(name)-len("Connection"):] == "Connection"
}

func pageSize(f *ast.Field, vars map[string]any) (int, error) {
	for _, name := range []string{"first", "last"} {
		if a := f.Arguments.ForName(name); a != nil {
			v, err := a.Value.Value(vars)
			if err != nil {
				return 0, err
			}
			var n int
			switch x := v.(type) {
			case int64:
				n = int(x)
			case float64:
				n = int(x)
			case int:
				n = x
			default:
				return 0, fmt.Errorf("%s: %s is %T", f.Name, name, v)
			}
			if n < 1 || n > 100 {
				return 0, fmt.Errorf("%s: %s must be within 1-100, got %d", f.Name, name, n)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("connection %s needs a first or last argument", f.Name)
}

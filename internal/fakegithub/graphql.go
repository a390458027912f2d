package fakegithub

import (
	"encoding/base64"
	"fmt"
	"strconv"

	"github.com/vektah/gqlparser/v2/ast"
)

// Obj is a GraphQL object of the fake: field name to value. A value is a
// scalar, an Obj, a []Obj, or a Resolver for fields with arguments.
// Objects of unions and interfaces carry "__typename".
type Obj map[string]any

// Resolver computes a field's value from its arguments.
type Resolver func(args map[string]any) (any, error)

// execute resolves a validated operation's selection over root, honouring
// aliases, arguments, inline fragments and __typename, so that the answer
// has exactly the shape the client asked for.
func execute(op *ast.OperationDefinition, vars map[string]any, root Obj) (map[string]any, error) {
	return selectOn(op.SelectionSet, root, vars)
}

func selectOn(ss ast.SelectionSet, obj Obj, vars map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for _, sel := range ss {
		switch s := sel.(type) {
		case *ast.Field:
			key := s.Alias
			if key == "" {
				key = s.Name
			}
			v, err := fieldValue(s, obj, vars)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
			out[key] = v
		case *ast.InlineFragment:
			if s.TypeCondition != "" && obj["__typename"] != s.TypeCondition {
				continue
			}
			sub, err := selectOn(s.SelectionSet, obj, vars)
			if err != nil {
				return nil, err
			}
			for k, v := range sub {
				out[k] = v
			}
		default:
			return nil, fmt.Errorf("unsupported selection %T", sel)
		}
	}
	return out, nil
}

func fieldValue(f *ast.Field, obj Obj, vars map[string]any) (any, error) {
	raw, ok := obj[f.Name]
	if !ok {
		if f.Name == "__typename" {
			return nil, fmt.Errorf("object without __typename")
		}
		return nil, fmt.Errorf("the fake has no data for field %q", f.Name)
	}
	if r, ok := raw.(Resolver); ok {
		args := map[string]any{}
		for _, a := range f.Arguments {
			v, err := a.Value.Value(vars)
			if err != nil {
				return nil, err
			}
			args[a.Name] = v
		}
		v, err := r(args)
		if err != nil {
			return nil, err
		}
		raw = v
	}
	return shape(f.SelectionSet, raw, vars)
}

func shape(ss ast.SelectionSet, v any, vars map[string]any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case Obj:
		if len(ss) == 0 {
			return nil, fmt.Errorf("object selected without fields")
		}
		return selectOn(ss, x, vars)
	case []Obj:
		out := make([]any, len(x))
		for i, o := range x {
			s, err := selectOn(ss, o, vars)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	return v, nil
}

func cursorOf(i int) string {
	return base64.StdEncoding.EncodeToString([]byte("cursor:" + strconv.Itoa(i)))
}

func indexOf(cursor any) (int, error) {
	s, _ := cursor.(string)
	if s == "" {
		return 0, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < 8 {
		return 0, fmt.Errorf("invalid cursor %q", s)
	}
	n, err := strconv.Atoi(string(b[7:]))
	if err != nil {
		return 0, fmt.Errorf("invalid cursor %q", s)
	}
	return n, nil
}

func intArg(args map[string]any, name string) int {
	switch v := args[name].(type) {
	case int64:
		return int(v)
	case int:
		return v
	case float64:
		return int(v)
	}
	return 0
}

// connection pages items as GitHub does: first and after, nodes, pageInfo
// and totalCount. A connection without first (or over 100) is an error, as
// on GitHub.
func connection(items []Obj, args map[string]any) (Obj, error) {
	first := intArg(args, "first")
	if first < 1 || first > 100 {
		return nil, fmt.Errorf("first must be within 1-100, got %v", args["first"])
	}
	start, err := indexOf(args["after"])
	if err != nil {
		return nil, err
	}
	if start > len(items) {
		start = len(items)
	}
	end := min(start+first, len(items))
	page := items[start:end]
	var endCursor any
	if end > start {
		endCursor = cursorOf(end)
	}
	return Obj{
		"nodes":      page,
		"totalCount": len(items),
		"pageInfo":   Obj{"hasNextPage": end < len(items), "endCursor": endCursor, "hasPreviousPage": start > 0, "startCursor": nil},
	}, nil
}

func connResolver(items func(args map[string]any) []Obj) Resolver {
	return func(args map[string]any) (any, error) { return connection(items(args), args) }
}

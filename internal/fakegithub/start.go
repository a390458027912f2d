package fakegithub

import (
	"testing"

	"github.com/bakhmach-hub/kpi_exporter/internal/ghschema"
)

// Start serves a fake GitHub on GitHub's public schema (found as
// ghschema.Path does) for the rest of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	p, err := ghschema.Path(".")
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// Package testproc is test support for tests that run real programs on
// loopback: the built daemon, Prometheus, stripe-mock. It is imported by
// tests only.
package testproc

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// FreeAddr returns a loopback address with a port free at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // the port is what matters
	return addr
}

// Tool returns the pinned tool name that `make tools` builds into bin/, or
// the path the environment variable env gives. It fails the test, never
// skips it, when the tool is missing.
func Tool(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is needed: run `make tools` (or set %s)", name, env)
	}
	return p
}

// Output collects a child's output while the test reads it.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// Start runs bin with args in dir, with env added to the environment; it
// is killed when the test ends unless it has been waited for.
func Start(t testing.TB, dir string, env []string, bin string, args ...string) (*exec.Cmd, *Output) {
	t.Helper()
	out := &Output{}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill() // it may have exited already
			_ = cmd.Wait()
		}
	})
	return cmd, out
}

package stripe

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
)

// TestStripeMockAcceptsEveryRequest runs the collector against the official
// stripe-mock server (pinned in the tools module), which validates every
// request against Stripe's OpenAPI specification.
func TestStripeMockAcceptsEveryRequest(t *testing.T) {
	bin := os.Getenv("STRIPE_MOCK")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/stripe-mock")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal("stripe-mock is needed: run `make tools` (or set STRIPE_MOCK)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "-http-addr", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("stripe-mock did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := newCollector(Settings{BaseURL: "http://" + addr, Discounts: DiscountsAll, GrossMargin: 0.8}, "sk_test_123", collectors.Env{StateDir: t.TempDir()})
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatalf("stripe-mock refused a request: %v", err)
	}
	if len(ms) == 0 {
		t.Error("no measurements from stripe-mock's fixtures")
	}
}

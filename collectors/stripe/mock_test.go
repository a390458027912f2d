package stripe

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/internal/testproc"
)

// TestStripeMockAcceptsEveryRequest runs the collector against the official
// stripe-mock server (pinned in the tools module), which validates every
// request against Stripe's OpenAPI specification.
func TestStripeMockAcceptsEveryRequest(t *testing.T) {
	addr := testproc.FreeAddr(t)
	testproc.Start(t, "", nil, testproc.Tool(t, "STRIPE_MOCK", "stripe-mock"), "-http-addr", addr)
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

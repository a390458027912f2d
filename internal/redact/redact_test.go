package redact

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// An upstream that echoes the request's headers in its error body: the
// token is masked in the error, in every log field and message, and the
// body is cut.
func TestEchoedSecretsAreMasked(t *testing.T) {
	Register("ghp_echoedTOKEN0123456789")
	Register("short") // too short to be treated as a secret
	body := `{"message":"Bad credentials","request":{"headers":{"Authorization":"token ghp_echoedTOKEN0123456789"}}}` + strings.Repeat("x", 5000)
	base := errors.New("GET /user: 401 " + body)
	err := Err(base)
	if strings.Contains(err.Error(), "ghp_echoed") || !strings.Contains(err.Error(), "token "+Mask) || len(err.Error()) > MaxText+20 || !errors.Is(err, base) {
		t.Errorf("error: %q", err)
	}
	obs, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(Core(obs)).With(zap.String("header", "Bearer ghp_echoedTOKEN0123456789"))
	log.Warn("upstream said ghp_echoedTOKEN0123456789", zap.Error(base), zap.String("short", "short"))
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "ghp_echoed") {
			t.Errorf("message: %s", e.Message)
		}
		for k, v := range e.ContextMap() {
			if s, _ := v.(string); strings.Contains(s, "ghp_echoed") {
				t.Errorf("field %s: %s", k, s)
			}
		}
		if e.ContextMap()["short"] != "short" {
			t.Error("a short value was masked")
		}
	}
}

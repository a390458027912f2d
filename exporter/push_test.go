package exporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/bakhmach-hub/kpi_exporter/internal/testclock"
)

const testToken = "s3cret-token-0123456789"

type fakePush struct {
	got []PushValue
	err error
}

func pushServer(t *testing.T, f *fakePush) (*Exporter, *httptest.Server) {
	t.Helper()
	e := New(Options{Now: testclock.Now, PushTokens: []string{"another-token-abcdefgh", testToken}, Push: func(_ context.Context, v []PushValue) error {
		if f.err != nil {
			return f.err
		}
		f.got = append(f.got, v...)
		return nil
	}})
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	return e, srv
}

func post(t *testing.T, url, token, contentType, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/values", strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("reply is not JSON (%v): %s", err, b)
	}
	return resp.StatusCode, out, resp.Header
}

func TestPushDisabledWithoutTokens(t *testing.T) {
	srv := httptest.NewServer(New(Options{}).Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/api/v1/values", "application/json", strings.NewReader(`{"values":[{"kpi":"x","value":1}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("push without tokens: %d", resp.StatusCode)
	}
}

func TestPushAuth(t *testing.T) {
	f := &fakePush{}
	e, srv := pushServer(t, f)
	body := `{"values":[{"kpi":"headcount","value":12}]}`
	for _, tok := range []string{"", "wrong-token-0123456789", testToken + "x", strings.ToUpper(testToken)} {
		code, out, hdr := post(t, srv.URL, tok, "application/json", body)
		if code != 401 || out["field"] != "Authorization" || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("token %q: %d %v", tok, code, out)
		}
		if strings.Contains(out["error"].(string), testToken) {
			t.Error("the reply quotes a token")
		}
	}
	if len(f.got) != 0 {
		t.Fatal("an unauthorized push was applied")
	}
	if got := testutil.ToFloat64(e.pushMetrics.requests.WithLabelValues("401")); got != 4 {
		t.Errorf("kpi_push_requests_total{code=401} = %v", got)
	}
	if got := testutil.ToFloat64(e.pushMetrics.rejected.WithLabelValues(ReasonUnauthorized)); got != 4 {
		t.Errorf("kpi_push_rejected_total{reason=unauthorized} = %v", got)
	}
	code, out, _ := post(t, srv.URL, testToken, "application/json; charset=utf-8", body)
	if code != 200 || out["accepted"] != 1.0 || len(f.got) != 1 || f.got[0].KPI != "headcount" || f.got[0].Value != 12 {
		t.Errorf("a good push: %d %v %+v", code, out, f.got)
	}
	// The other token of the file works too.
	if code, _, _ := post(t, srv.URL, "another-token-abcdefgh", "", body); code != 200 {
		t.Errorf("second token: %d", code)
	}
}

func TestPushRejectsMalformedRequests(t *testing.T) {
	f := &fakePush{}
	e, srv := pushServer(t, f)
	future := testclock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, contentType, body string
		status                  int
		reason, field, msg      string
	}{
		{"not JSON", "", `{"values": [`, 400, ReasonMalformed, "", "malformed JSON"},
		{"empty body", "", ``, 400, ReasonMalformed, "", "empty body"},
		{"trailing data", "", `{"values":[{"kpi":"a","value":1}]} {}`, 400, ReasonMalformed, "", "after the JSON value"},
		{"no values", "", `{}`, 400, ReasonMalformed, "values", "required"},
		{"empty values", "", `{"values":[]}`, 400, ReasonMalformed, "values", "at least one"},
		{"values not an array", "", `{"values":{"kpi":"a"}}`, 400, ReasonMalformed, "values", "must be an array"},
		{"unknown top field", "", `{"values":[{"kpi":"a","value":1}],"extra":1}`, 400, ReasonMalformed, "extra", "unknown field"},
		{"unknown value field", "", `{"values":[{"kpi":"a","value":1},{"kpi":"b","value":2,"unit":"x"}]}`, 400, ReasonMalformed, "values[1].unit", "unknown field"},
		{"kpi not a string", "", `{"values":[{"kpi":7,"value":1}]}`, 400, ReasonMalformed, "values[0].kpi", "must be a string, not number"},
		{"value a string", "", `{"values":[{"kpi":"a","value":"12"}]}`, 400, ReasonMalformed, "values[0].value", "not a string"},
		{"value an object", "", `{"values":[{"kpi":"a","value":{}}]}`, 400, ReasonMalformed, "values[0].value", "must be a number"},
		{"value missing", "", `{"values":[{"kpi":"a"}]}`, 400, ReasonMalformed, "values[0].value", "required"},
		{"value null", "", `{"values":[{"kpi":"a","value":null}]}`, 400, ReasonMalformed, "values[0].value", "required"},
		{"NaN", "", `{"values":[{"kpi":"a","value":1},{"kpi":"a","value":"NaN"}]}`, 400, ReasonNonFinite, "values[1].value", "finite"},
		{"Infinity", "", `{"values":[{"kpi":"a","value":"-Infinity"}]}`, 400, ReasonNonFinite, "values[0].value", "finite"},
		{"beyond float64", "", `{"values":[{"kpi":"a","value":1e400}]}`, 400, ReasonNonFinite, "values[0].value", "finite"},
		{"labels not strings", "", `{"values":[{"measurement":"a","value":1,"labels":{"x":1}}]}`, 400, ReasonMalformed, "values[0].labels", "must be a string"},
		{"neither kpi nor measurement", "", `{"values":[{"value":1}]}`, 400, ReasonMalformed, "values[0].kpi", "required"},
		{"both", "", `{"values":[{"kpi":"a","measurement":"b","value":1}]}`, 400, ReasonMalformed, "values[0]", "not both"},
		{"bad timestamp", "", `{"values":[{"kpi":"a","value":1,"timestamp":"yesterday"}]}`, 400, ReasonMalformed, "values[0].timestamp", "RFC 3339"},
		{"future timestamp", "", `{"values":[{"kpi":"a","value":1,"timestamp":"` + future + `"}]}`, 422, ReasonTimestamp, "values[0].timestamp", "in the future"},
		{"wrong content type", "text/plain", `{"values":[{"kpi":"a","value":1}]}`, 415, ReasonContentType, "Content-Type", "not application/json"},
		{"over 1 MiB", "", `{"values":[` + strings.Repeat(`{"kpi":"a","value":1},`, MaxPushBody/20) + `{"kpi":"a","value":1}]}`, 413, ReasonTooLarge, "", "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		code, out, _ := post(t, srv.URL, testToken, tt.contentType, tt.body)
		field, _ := out["field"].(string)
		msg, _ := out["error"].(string)
		if code != tt.status || field != tt.field || !strings.Contains(msg, tt.msg) || out["status"] != "error" {
			t.Errorf("%s: %d field %q %q; want %d field %q containing %q", tt.name, code, field, msg, tt.status, tt.field, tt.msg)
		}
		if got := testutil.ToFloat64(e.pushMetrics.rejected.WithLabelValues(tt.reason)); got == 0 {
			t.Errorf("%s: kpi_push_rejected_total{reason=%q} not counted", tt.name, tt.reason)
		}
	}
	if len(f.got) != 0 {
		t.Errorf("malformed requests reached the store: %+v", f.got)
	}

	// The catalogue's verdict passes through with its status and field.
	f.err = &PushError{Status: 422, Reason: ReasonUnknownKPI, Field: "values[0].kpi", Msg: `no KPI with id "x"`}
	code, out, _ := post(t, srv.URL, testToken, "", `{"values":[{"kpi":"x","value":1}]}`)
	if code != 422 || out["field"] != "values[0].kpi" || out["error"] != `values[0].kpi: no KPI with id "x"` {
		t.Errorf("catalogue rejection: %d %v", code, out)
	}
	if got := testutil.ToFloat64(e.pushMetrics.requests.WithLabelValues("422")); got != 2 {
		t.Errorf("kpi_push_requests_total{code=422} = %v", got)
	}
}

// A zero timestamp is not "now" but an error, and labels are bounded.
func TestPushTimestampZeroAndLabelBounds(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		body, field string
	}{
		"year 1":      {`{"values":[{"kpi":"a","value":1,"timestamp":"0001-01-01T00:00:00Z"}]}`, "values[0].timestamp"},
		"before 1970": {`{"values":[{"kpi":"a","value":1,"timestamp":"1969-12-31T23:59:59Z"}]}`, "values[0].timestamp"},
		"long value":  {`{"values":[{"measurement":"m","value":1,"labels":{"team":"` + strings.Repeat("x", MaxPushLabelLength+1) + `"}}]}`, "values[0].labels.team"},
		"long name":   {`{"values":[{"measurement":"m","value":1,"labels":{"` + strings.Repeat("n", 200) + `":"x"}}]}`, "values[0].labels." + strings.Repeat("n", 32) + "…"},
		"many labels": {`{"values":[{"measurement":"m","value":1,"labels":{` + manyLabels(MaxPushLabels+1) + `}}]}`, "values[0].labels"},
	} {
		_, err := DecodePush([]byte(tc.body), now)
		var pe *PushError
		if !errors.As(err, &pe) || pe.Field != tc.field {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodePush([]byte(`{"values":[{"measurement":"m","value":1,"labels":{`+manyLabels(MaxPushLabels)+`}}]}`), now); err != nil {
		t.Errorf("the most labels allowed: %v", err)
	}
}

func manyLabels(n int) string {
	var parts []string
	for i := 0; i < n; i++ {
		parts = append(parts, fmt.Sprintf(`"l%d":"v"`, i))
	}
	return strings.Join(parts, ",")
}

// Hostile push bodies of up to 1 MiB (the handler's limit) — the most values
// allowed, JSON nested 500,000 deep, a giant label, a giant KPI id — are
// decoded or refused within a bound on memory and time, and no error echoes
// the input whole.
func TestHostilePushBodiesAreBounded(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var many strings.Builder
	many.WriteString(`{"values":[`)
	for i := 0; i < MaxPushValues; i++ {
		if i > 0 {
			many.WriteString(",")
		}
		fmt.Fprintf(&many, `{"measurement":"m","value":%d,"labels":{"team":"t%d"}}`, i, i)
	}
	many.WriteString("]}")
	for name, body := range map[string]string{
		"most values":  many.String(),
		"deep nesting": `{"values":[{"kpi":"a","value":1,"labels":` + strings.Repeat("[", 500000) + `}]}`,
		"giant label":  `{"values":[{"measurement":"m","value":1,"labels":{"a":"` + strings.Repeat("x", 1<<20-100) + `"}}]}`,
		"giant kpi id": `{"values":[{"kpi":"` + strings.Repeat("k", 1<<20-100) + `","value":1}]}`,
		"giant number": `{"values":[{"kpi":"a","value":` + strings.Repeat("9", 1<<20-100) + `}]}`,
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		begin := time.Now()
		_, err := DecodePush([]byte(body), now)
		took := time.Since(begin)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		if alloc > 256<<20 || took > 10*time.Second {
			t.Errorf("%s: %d MiB, %s", name, alloc>>20, took)
		}
		if name == "giant kpi id" && err == nil {
			t.Error("a 1 MiB KPI id was accepted")
		}
		if err != nil && len(err.Error()) > 300 {
			t.Errorf("%s: an error of %d bytes echoes the input", name, len(err.Error()))
		}
		t.Logf("%s: %d KiB, %d MiB allocated, %s", name, len(body)>>10, alloc>>20, took.Round(time.Millisecond))
	}
}

package exporter

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxPushBody bounds a push request's body.
const MaxPushBody = 1 << 20

// MaxPushValues bounds the values of one push request.
const MaxPushValues = 10000

// PushValue is one value of a push request, checked for shape but not yet
// against the catalogue.
type PushValue struct {
	// Index is the value's place in the request, for messages.
	Index int
	// Exactly one of KPI and Measurement is set. Measurement is
	// "source/name", or "name" when one push source accepts it.
	KPI, Measurement string
	Value            float64
	Labels           map[string]string
	// Timestamp is when the value was measured; zero means now.
	Timestamp time.Time
}

// PushError is a rejection of a push request: the HTTP status, the field it
// concerns ("values[3].kpi"), the reason counted in kpi_push_rejected_total,
// and a message for people.
type PushError struct {
	Status int
	Field  string
	Reason string
	Msg    string
}

func (e *PushError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// The reasons of kpi_push_rejected_total.
const (
	ReasonUnauthorized       = "unauthorized"
	ReasonContentType        = "content_type"
	ReasonTooLarge           = "too_large"
	ReasonMalformed          = "malformed"
	ReasonNonFinite          = "non_finite"
	ReasonUnknownKPI         = "unknown_kpi"
	ReasonUnknownMeasurement = "unknown_measurement"
	ReasonPolledSource       = "polled_source"
	ReasonTimestamp          = "bad_timestamp"
	ReasonTooManySeries      = "too_many_series"
	ReasonUnavailable        = "unavailable"
)

type pushMetrics struct {
	requests *prometheus.CounterVec
	rejected *prometheus.CounterVec
}

func newPushMetrics(reg prometheus.Registerer) *pushMetrics {
	m := &pushMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpi_push_requests_total",
			Help: "Requests to the push API (POST /api/v1/values), by HTTP status code.",
		}, []string{"code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kpi_push_rejected_total",
			Help: "Push requests rejected, by reason (unauthorized, malformed, unknown_kpi, polled_source, bad_timestamp, ...).",
		}, []string{"reason"}),
	}
	for _, code := range []string{"200", "400", "401", "413", "415", "422", "503"} {
		m.requests.WithLabelValues(code)
	}
	reg.MustRegister(m.requests, m.rejected)
	return m
}

// handlePush serves POST /api/v1/values.
func (e *Exporter) handlePush(w http.ResponseWriter, r *http.Request) {
	n, err := e.push(r)
	if err != nil {
		var pe *PushError
		if !errors.As(err, &pe) {
			pe = &PushError{Status: http.StatusServiceUnavailable, Reason: ReasonUnavailable, Msg: err.Error()}
		}
		if pe.Status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kpi_exporter"`)
		}
		e.pushMetrics.requests.WithLabelValues(strconv.Itoa(pe.Status)).Inc()
		e.pushMetrics.rejected.WithLabelValues(pe.Reason).Inc()
		writeJSON(w, pe.Status, apiError{Status: "error", Error: pe.Error(), Field: pe.Field})
		return
	}
	e.pushMetrics.requests.WithLabelValues("200").Inc()
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "accepted": n})
}

// PushTokenHeader carries the push token when the Authorization header is
// taken by the web config's basic auth (which guards every endpoint, the
// push API included): a pusher then sends both.
const PushTokenHeader = "X-KPI-Push-Token"

func (e *Exporter) authorized(r *http.Request) bool {
	token := r.Header.Get(PushTokenHeader)
	if token == "" {
		scheme, bearer, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return false
		}
		token = bearer
	}
	if token == "" {
		return false
	}
	// Compare with every token, so that the time taken says nothing about
	// which one nearly matched.
	match := 0
	for _, t := range e.opts.PushTokens {
		match |= subtle.ConstantTimeCompare([]byte(token), []byte(t))
	}
	return match == 1
}

func (e *Exporter) push(r *http.Request) (int, error) {
	if !e.authorized(r) {
		return 0, &PushError{Status: http.StatusUnauthorized, Reason: ReasonUnauthorized, Field: "Authorization",
			Msg: "a valid push token is required (Authorization: Bearer <token>, or " + PushTokenHeader + ": <token> beside basic auth)"}
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return 0, &PushError{Status: http.StatusUnsupportedMediaType, Reason: ReasonContentType, Field: "Content-Type",
				Msg: fmt.Sprintf("content type %q is not application/json", ct)}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxPushBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return 0, &PushError{Status: http.StatusRequestEntityTooLarge, Reason: ReasonTooLarge,
				Msg: fmt.Sprintf("the body is larger than %d bytes", MaxPushBody)}
		}
		return 0, &PushError{Status: http.StatusBadRequest, Reason: ReasonMalformed, Msg: "reading the body: " + err.Error()}
	}
	values, err := DecodePush(body, e.opts.Now())
	if err != nil {
		return 0, err
	}
	if e.opts.Push == nil {
		return 0, &PushError{Status: http.StatusServiceUnavailable, Reason: ReasonUnavailable, Msg: "the daemon is still starting"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	if err := e.opts.Push(ctx, values); err != nil {
		return 0, err
	}
	return len(values), nil
}

// DecodePush parses a push request's body strictly: unknown fields, wrong
// types, non-finite values, a missing value, both or neither of kpi and
// measurement, and malformed or far-future timestamps are errors that name
// the field, as "values[3].value".
func DecodePush(body []byte, now time.Time) ([]PushValue, error) {
	malformed := func(field, format string, args ...any) error {
		return &PushError{Status: http.StatusBadRequest, Reason: ReasonMalformed, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	var req struct {
		Values []json.RawMessage `json:"values"`
	}
	if err := strictDecode(body, &req); err != nil {
		return nil, jsonError("", err)
	}
	switch {
	case req.Values == nil:
		return nil, malformed("values", "required: {\"values\": [{\"kpi\": \"…\", \"value\": 1.5}]}")
	case len(req.Values) == 0:
		return nil, malformed("values", "at least one value is required")
	case len(req.Values) > MaxPushValues:
		return nil, malformed("values", "%d values; at most %d per request", len(req.Values), MaxPushValues)
	}
	out := make([]PushValue, 0, len(req.Values))
	for i, raw := range req.Values {
		at := fmt.Sprintf("values[%d]", i)
		var v struct {
			KPI         *string           `json:"kpi"`
			Measurement *string           `json:"measurement"`
			Value       json.RawMessage   `json:"value"`
			Labels      map[string]string `json:"labels"`
			Timestamp   *string           `json:"timestamp"`
		}
		if err := strictDecode(raw, &v); err != nil {
			return nil, jsonError(at, err)
		}
		if len(v.Labels) > MaxPushLabels {
			return nil, malformed(at+".labels", "%d labels; at most %d", len(v.Labels), MaxPushLabels)
		}
		for name, value := range v.Labels {
			if len(name) > MaxPushLabelLength || len(value) > MaxPushLabelLength {
				return nil, malformed(at+".labels."+truncateField(name), "label names and values are at most %d bytes", MaxPushLabelLength)
			}
		}
		pv := PushValue{Index: i, Labels: v.Labels}
		switch {
		case v.KPI != nil && v.Measurement != nil:
			return nil, malformed(at, "give kpi or measurement, not both")
		case v.KPI != nil:
			pv.KPI = *v.KPI
		case v.Measurement != nil:
			pv.Measurement = *v.Measurement
		default:
			return nil, malformed(at+".kpi", "required: the KPI's id (or a measurement)")
		}
		if pv.KPI == "" && pv.Measurement == "" {
			return nil, malformed(at+".kpi", "must not be empty")
		}
		if len(pv.KPI) > 256 || len(pv.Measurement) > 256 {
			return nil, malformed(at, "a KPI id or measurement is at most 256 bytes")
		}
		val, err := pushNumber(at+".value", v.Value)
		if err != nil {
			return nil, err
		}
		pv.Value = val
		if v.Timestamp != nil {
			t, err := time.Parse(time.RFC3339Nano, *v.Timestamp)
			if err != nil {
				return nil, malformed(at+".timestamp", "%q is not an RFC 3339 time (2006-01-02T15:04:05Z)", *v.Timestamp)
			}
			if t.IsZero() || t.Year() < 1970 {
				return nil, &PushError{Status: http.StatusUnprocessableEntity, Reason: ReasonTimestamp, Field: at + ".timestamp",
					Msg: fmt.Sprintf("%s is not the time of a measurement (leave the timestamp out for now)", *v.Timestamp)}
			}
			if t.After(now.Add(time.Minute)) {
				return nil, &PushError{Status: http.StatusUnprocessableEntity, Reason: ReasonTimestamp, Field: at + ".timestamp",
					Msg: fmt.Sprintf("%s is in the future", *v.Timestamp)}
			}
			pv.Timestamp = t
		}
		out = append(out, pv)
	}
	return out, nil
}

// Bounds of a pushed value's labels: a label is a dimension such as a
// team or a survey, never a blob (30 series with 1 MB labels made a 31 MB
// state file and a 31 MB scrape).
const (
	MaxPushLabels      = 16
	MaxPushLabelLength = 128
)

func truncateField(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// pushNumber reads a value: a finite JSON number. "NaN" and "Infinity" as
// strings, and numbers beyond float64, are called non-finite.
func pushNumber(field string, raw json.RawMessage) (float64, error) {
	nonFinite := &PushError{Status: http.StatusBadRequest, Reason: ReasonNonFinite, Field: field, Msg: "must be a finite number"}
	if len(raw) == 0 || string(raw) == "null" {
		return 0, &PushError{Status: http.StatusBadRequest, Reason: ReasonMalformed, Field: field, Msg: "required: a number"}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch strings.ToLower(strings.TrimLeft(s, "+-")) {
		case "nan", "inf", "infinity":
			return 0, nonFinite
		}
		return 0, &PushError{Status: http.StatusBadRequest, Reason: ReasonMalformed, Field: field, Msg: "must be a number, not a string"}
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		var num json.Number
		if json.Unmarshal(raw, &num) == nil {
			return 0, nonFinite // a number float64 cannot hold
		}
		return 0, jsonError(field, err)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, nonFinite
	}
	return f, nil
}

// jsonError turns a decoding error into a rejection naming the field.
func jsonError(at string, err error) error {
	field := at
	msg := err.Error()
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			field = strings.TrimPrefix(at+"."+typeErr.Field, ".")
		}
		msg = fmt.Sprintf("must be %s, not %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		msg = fmt.Sprintf("malformed JSON at byte %d: %v", syntaxErr.Offset, err)
	case strings.HasPrefix(msg, "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(msg, "json: unknown field "), `"`)
		field = strings.TrimPrefix(at+"."+name, ".")
		msg = "unknown field"
	case errors.Is(err, io.EOF):
		msg = "empty body"
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "malformed JSON: the body ends inside a value"
	}
	return &PushError{Status: http.StatusBadRequest, Reason: ReasonMalformed, Field: field, Msg: msg}
}

func jsonKind(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	case "float64":
		return "a number"
	}
	return "a " + k
}

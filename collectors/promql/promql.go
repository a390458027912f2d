// Package promql is the source type "prometheus": instant PromQL queries
// against a Prometheus-compatible API (Prometheus, Thanos, Mimir) — where
// the production-service and ML-serving KPIs already live.
package promql

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "prometheus"

// DefaultMaxSeries bounds the series one query may return.
const DefaultMaxSeries = 100

func init() { collectors.Register(Type, New) }

// Settings of a prometheus source.
type Settings struct {
	URL             string            `yaml:"url"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	BasicAuth       *BasicAuth        `yaml:"basic_auth"`
	Headers         map[string]string `yaml:"headers"` // e.g. X-Scope-OrgID for Mimir
	TLS             *TLS              `yaml:"tls"`
	MaxSeries       int               `yaml:"max_series"`
	Queries         []Query           `yaml:"queries"`
}

// BasicAuth with the password in a file.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// TLS options of the connection.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Query is one measurement: a PromQL expression, optionally evaluated over
// a range with an *_over_time function.
type Query struct {
	Name  string `yaml:"name"`
	Query string `yaml:"query"`
	// Range, when set, evaluates <over_time>_over_time((query)[range:]).
	Range    string `yaml:"range"`
	OverTime string `yaml:"over_time"` // avg (default), min, max, sum, count, last, quantile…
}

var nameRe = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

var overTime = map[string]bool{"avg": true, "min": true, "max": true, "sum": true, "count": true, "last": true, "stddev": true, "stdvar": true, "present": true}

// Collector is a prometheus source.
type Collector struct {
	s     Settings
	api   v1.API
	exprs []string
	log   *zap.Logger
}

// New builds a prometheus source from its declaration.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	at := src.Settings.Errorf
	if !strings.HasPrefix(s.URL, "http://") && !strings.HasPrefix(s.URL, "https://") {
		return nil, at(".url", "source %q (type prometheus) needs url, the Prometheus API's base URL", src.Name)
	}
	if len(s.Queries) == 0 {
		return nil, at(".queries", "source %q (type prometheus) has no queries", src.Name)
	}
	if s.MaxSeries == 0 {
		s.MaxSeries = DefaultMaxSeries
	}
	c := &Collector{s: s, log: env.Log()}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	names := map[string]bool{}
	for i, q := range s.Queries {
		p := fmt.Sprintf(".queries[%d]", i)
		if !nameRe.MatchString(q.Name) || names[q.Name] {
			return nil, at(p+".name", "query name %q must be a unique [a-z_][a-z0-9_]*", q.Name)
		}
		names[q.Name] = true
		if strings.TrimSpace(q.Query) == "" {
			return nil, at(p+".query", "query %s is empty", q.Name)
		}
		expr := q.Query
		if q.Range != "" {
			d, err := model.ParseDuration(q.Range)
			if err != nil || d <= 0 {
				return nil, at(p+".range", "range %q is not a positive duration", q.Range)
			}
			fn := q.OverTime
			if fn == "" {
				fn = "avg"
			}
			if !overTime[fn] {
				return nil, at(p+".over_time", "over_time %q is not one of avg, min, max, sum, count, last, stddev, stdvar, present", fn)
			}
			// The subquery's step: 1/120 of the range, at least a second.
			step := max(time.Duration(d)/120, time.Second).Truncate(time.Second)
			expr = fmt.Sprintf("%s_over_time((%s)[%s:%s])", fn, q.Query, d, model.Duration(step))
		} else if q.OverTime != "" {
			return nil, at(p+".over_time", "over_time needs range")
		}
		c.exprs = append(c.exprs, expr)
	}
	rt, err := s.roundTripper()
	if err != nil {
		return nil, at("", "%v", err)
	}
	client, err := api.NewClient(api.Config{Address: s.URL, RoundTripper: rt})
	if err != nil {
		return nil, at(".url", "%v", err)
	}
	c.api = v1.NewAPI(client)
	return c, nil
}

// roundTripper adds TLS, auth and headers; secrets are read from their
// files on every request, so a rotated file takes effect.
func (s Settings) roundTripper() (http.RoundTripper, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if s.TLS != nil {
		tc, err := config.NewTLSConfig(&config.TLSConfig{CAFile: s.TLS.CAFile, CertFile: s.TLS.CertFile, KeyFile: s.TLS.KeyFile,
			ServerName: s.TLS.ServerName, InsecureSkipVerify: s.TLS.InsecureSkipVerify})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		base.TLSClientConfig = tc
	} else {
		base.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.BasicAuth != nil && s.BearerTokenFile != "" {
		return nil, errors.New("set basic_auth or bearer_token_file, not both")
	}
	return &authRT{s: s, base: base}, nil
}

type authRT struct {
	s    Settings
	base http.RoundTripper
}

func (a *authRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range a.s.Headers {
		r.Header.Set(k, v)
	}
	switch {
	case a.s.BearerTokenFile != "":
		tok, err := os.ReadFile(a.s.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("bearer_token_file: %w", err)
		}
		redact.Register(string(tok))
		r.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	case a.s.BasicAuth != nil:
		pw, err := os.ReadFile(a.s.BasicAuth.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("basic_auth.password_file: %w", err)
		}
		redact.Register(string(pw))
		r.SetBasicAuth(a.s.BasicAuth.Username, strings.TrimSpace(string(pw)))
	}
	return a.base.RoundTrip(r)
}

// Collect runs every query at one instant. An empty result is no value,
// never 0; a query that fails, or returns more than max_series series,
// fails the run.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	now := time.Now()
	var out []kpi.Measurement
	for i, q := range c.s.Queries {
		v, warnings, _, err := c.api.Query(ctx, c.exprs[i], now)
		if err != nil {
			return nil, fmt.Errorf("query %s: %w", q.Name, err)
		}
		if len(warnings) > 0 {
			c.log.Warn("query returned warnings", zap.String("query", q.Name), zap.Strings("warnings", warnings))
		}
		switch r := v.(type) {
		case model.Vector:
			if len(r) > c.s.MaxSeries {
				return nil, fmt.Errorf("query %s returned %d series, more than max_series %d", q.Name, len(r), c.s.MaxSeries)
			}
			for _, smp := range r {
				out = append(out, kpi.Measurement{Name: q.Name, Value: float64(smp.Value), Labels: labels(smp.Metric),
					Time: smp.Timestamp.Time()})
			}
		case *model.Scalar:
			out = append(out, kpi.Measurement{Name: q.Name, Value: float64(r.Value), Time: r.Timestamp.Time()})
		default:
			return nil, fmt.Errorf("query %s returned a %s; an instant vector or scalar is needed", q.Name, v.Type())
		}
	}
	return out, nil
}

// labels keeps a series' labels, less the metric name; a label named
// source (reserved for the source's name) becomes exported_source, and
// names with capitals or other characters are lower-cased and given
// underscores.
func labels(m model.Metric) kpi.Labels {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	sort.Strings(keys)
	ls := make(kpi.Labels, 0, len(m))
	taken := map[string]bool{}
	for _, k := range keys {
		name := labelName(k)
		switch name {
		case model.MetricNameLabel:
			continue
		case "source":
			name = "exported_source"
		}
		for taken[name] {
			name += "_" // two labels that differ only in case
		}
		taken[name] = true
		ls = append(ls, kpi.Label{Name: name, Value: string(m[model.LabelName(k)])})
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	return ls
}

func labelName(s string) string {
	b := []byte(strings.ToLower(s))
	for i, c := range b {
		if c != '_' && (c < 'a' || c > 'z') && (i == 0 || c < '0' || c > '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Exprs returns the PromQL expressions the source evaluates, in query order.
func (c *Collector) Exprs() []string { return append([]string(nil), c.exprs...) }

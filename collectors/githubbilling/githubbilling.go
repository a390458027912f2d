// Package githubbilling is the source type "github_billing": the costs of an
// organization's metered GitHub products (Actions minutes, packages,
// storage, Copilot…) from the enhanced billing platform's usage report, for
// the month to date and the previous month — the framework's infrastructure
// costs from CI and packages.
package githubbilling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	gh "github.com/google/go-github/v60/github"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "github_billing"

func init() { collectors.Register(Type, New) }

// Settings of a github_billing source.
type Settings struct {
	githubapi.Settings `yaml:",inline"`
	// Orgs whose usage is read; each measurement carries an org label.
	Orgs []string `yaml:"orgs"`
}

// Collector is a github_billing source.
type Collector struct {
	s      Settings
	client *githubapi.Client
	now    func() time.Time
}

// New builds a github_billing source from its declaration.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	at := githubapi.SettingsErrorf(src.Settings)
	if err := s.Validate(at); err != nil {
		return nil, err
	}
	if len(s.Orgs) == 0 {
		return nil, at("", "source %q (type github_billing) needs orgs", src.Name)
	}
	client, err := githubapi.New(s.Settings, nil)
	if err != nil {
		return nil, err
	}
	client.LoadETags(env.SourceState())
	return &Collector{s: s, client: client, now: time.Now}, nil
}

// usageItem is a line of the usage report, as GitHub documents it.
type usageItem struct {
	Date           string  `json:"date"`
	Product        string  `json:"product"`
	SKU            string  `json:"sku"`
	Quantity       float64 `json:"quantity"`
	UnitType       string  `json:"unitType"`
	PricePerUnit   float64 `json:"pricePerUnit"`
	GrossAmount    float64 `json:"grossAmount"`
	DiscountAmount float64 `json:"discountAmount"`
	NetAmount      float64 `json:"netAmount"`
}

type usageReport struct {
	UsageItems []usageItem `json:"usageItems"`
}

// ErrUnavailable wraps the answers that mean the endpoint is not there for
// this organization (410 Gone, 404) or not permitted (403).
var ErrUnavailable = errors.New("the enhanced billing usage report is not available")

func (c *Collector) report(ctx context.Context, org string, year int, month time.Month) ([]usageItem, error) {
	u := fmt.Sprintf("organizations/%s/settings/billing/usage?year=%d&month=%d", org, year, month)
	req, err := c.client.REST.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	var rep usageReport
	resp, err := c.client.REST.Do(ctx, req, &rep)
	if resp != nil {
		switch resp.StatusCode {
		case http.StatusGone, http.StatusNotFound:
			return nil, fmt.Errorf("%w for %s (%s): the organization is not on the enhanced billing platform, or the endpoint is gone", ErrUnavailable, org, resp.Status)
		case http.StatusForbidden:
			return nil, fmt.Errorf("%w for %s (%s): the token needs organization administration (read) or billing-manager access", ErrUnavailable, org, resp.Status)
		}
	}
	var ge *gh.ErrorResponse
	if errors.As(err, &ge) {
		return nil, fmt.Errorf("billing usage of %s: %s", org, ge.Message)
	}
	if err != nil {
		return nil, fmt.Errorf("billing usage of %s: %w", org, err)
	}
	return rep.UsageItems, nil
}

// Collect reads the month to date and the previous month of every org.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	now := c.now().UTC()
	prev := now.AddDate(0, -1, -now.Day()+1)
	type key struct{ org, period, product, sku, unit string }
	type sums struct{ net, gross, qty float64 }
	agg := map[key]*sums{}
	totals := map[[2]string]*sums{}
	for _, org := range c.s.Orgs {
		for _, p := range []struct {
			name  string
			year  int
			month time.Month
		}{{"month_to_date", now.Year(), now.Month()}, {"previous_month", prev.Year(), prev.Month()}} {
			items, err := c.report(ctx, org, p.year, p.month)
			if err != nil {
				return nil, err
			}
			t := totals[[2]string{org, p.name}]
			if t == nil {
				t = &sums{}
				totals[[2]string{org, p.name}] = t
			}
			for _, it := range items {
				k := key{org, p.name, it.Product, it.SKU, it.UnitType}
				s := agg[k]
				if s == nil {
					s = &sums{}
					agg[k] = s
				}
				s.net += it.NetAmount
				s.gross += it.GrossAmount
				s.qty += it.Quantity
				t.net += it.NetAmount
				t.gross += it.GrossAmount
			}
		}
	}
	keys := make([]key, 0, len(agg))
	for k := range agg {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	var out []kpi.Measurement
	for _, k := range keys {
		s := agg[k]
		base := kpi.Labels{{Name: "org", Value: k.org}, {Name: "period", Value: k.period}, {Name: "product", Value: k.product}, {Name: "sku", Value: k.sku}}
		out = append(out,
			kpi.Measurement{Name: "usage_net_usd", Value: s.net, Labels: base},
			kpi.Measurement{Name: "usage_gross_usd", Value: s.gross, Labels: base},
			kpi.Measurement{Name: "usage_quantity", Value: s.qty, Labels: append(append(kpi.Labels{}, base...), kpi.Label{Name: "unit", Value: k.unit})})
	}
	tkeys := make([][2]string, 0, len(totals))
	for k := range totals {
		tkeys = append(tkeys, k)
	}
	sort.Slice(tkeys, func(i, j int) bool { return tkeys[i][0]+tkeys[i][1] < tkeys[j][0]+tkeys[j][1] })
	for _, k := range tkeys {
		ls := kpi.Labels{{Name: "org", Value: k[0]}, {Name: "period", Value: k[1]}}
		out = append(out, kpi.Measurement{Name: "usage_net_total_usd", Value: totals[k].net, Labels: ls},
			kpi.Measurement{Name: "usage_gross_total_usd", Value: totals[k].gross, Labels: ls})
	}
	return append(out, c.client.Measurements()...), nil
}

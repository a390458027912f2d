package githubbilling

import (
	"context"
	"errors"
	"math"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	"github.com/bakhmach-hub/kpi_exporter/internal/fakegithub"
)

var T = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) (*fakegithub.Server, *Collector) {
	t.Helper()
	f := fakegithub.Start(t)
	os.Setenv("BILLING_TOKEN", "ghp_x")
	s := Settings{Settings: githubapi.Settings{TokenEnv: "BILLING_TOKEN", BaseURL: f.URL + "/"}, Orgs: []string{"acme"}}
	if err := s.Validate(func(field, format string, args ...any) error { return errors.New(format) }); err != nil {
		t.Fatal(err)
	}
	client, err := githubapi.New(s.Settings, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f, &Collector{s: s, client: client, now: func() time.Time { return T }}
}

func TestUsage(t *testing.T) {
	f, c := setup(t)
	day := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
	f.Update(func() {
		f.Usage = map[string][]fakegithub.UsageItem{"acme": {
			{Date: day(11, 3), Product: "actions", SKU: "actions_linux", UnitType: "minutes", Quantity: 1000, PricePerUnit: 0.008, Gross: 8, Net: 8},
			{Date: day(11, 20), Product: "actions", SKU: "actions_linux", UnitType: "minutes", Quantity: 500, PricePerUnit: 0.008, Gross: 4, Discount: 4, Net: 0},
			{Date: day(11, 21), Product: "packages", SKU: "packages_storage", UnitType: "GigabyteHours", Quantity: 72.5, PricePerUnit: 0.0003, Gross: 0.02175, Net: 0.02175},
			{Date: day(10, 15), Product: "actions", SKU: "actions_macos", UnitType: "minutes", Quantity: 100, PricePerUnit: 0.08, Gross: 8, Net: 8},
			{Date: day(9, 30), Product: "actions", SKU: "actions_linux", UnitType: "minutes", Quantity: 99, Gross: 99, Net: 99}, // two months back
		}}
	})
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range ms {
		got[m.Name+m.Labels.String()] = m.Value
	}
	for k, want := range map[string]float64{
		`usage_net_usd{org="acme",period="month_to_date",product="actions",sku="actions_linux"}`:                           8,
		`usage_gross_usd{org="acme",period="month_to_date",product="actions",sku="actions_linux"}`:                         12,
		`usage_quantity{org="acme",period="month_to_date",product="actions",sku="actions_linux",unit="minutes"}`:           1500,
		`usage_quantity{org="acme",period="month_to_date",product="packages",sku="packages_storage",unit="GigabyteHours"}`: 72.5,
		`usage_net_total_usd{org="acme",period="month_to_date"}`:                                                           8.02175,
		`usage_gross_total_usd{org="acme",period="month_to_date"}`:                                                         12.02175,
		`usage_net_usd{org="acme",period="previous_month",product="actions",sku="actions_macos"}`:                          8,
		`usage_net_total_usd{org="acme",period="previous_month"}`:                                                          8,
	} {
		if v, ok := got[k]; !ok || math.Abs(v-want) > 1e-9 {
			t.Errorf("%s = %v (%v), want %v", k, v, ok, want)
		}
	}
	// The next run's unchanged reports come back as 304s.
	f.ResetStats()
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	if reqs, _ := f.Stats(); reqs["rest 304"] != 2 || reqs["rest 200"] != 0 {
		t.Errorf("second run: %v", reqs)
	}
}

func TestGoneAndForbidden(t *testing.T) {
	for status, want := range map[int]string{
		http.StatusGone:      "the enhanced billing usage report is not available for acme (410 Gone): the organization is not on the enhanced billing platform, or the endpoint is gone",
		http.StatusForbidden: "the enhanced billing usage report is not available for acme (403 Forbidden): the token needs organization administration (read) or billing-manager access",
	} {
		f, c := setup(t)
		f.Update(func() { f.UsageStatus = status })
		_, err := c.Collect(context.Background())
		if err == nil || !errors.Is(err, ErrUnavailable) || err.Error() != want {
			t.Errorf("%d: %v", status, err)
		}
	}
}

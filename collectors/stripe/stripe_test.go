package stripe

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/internal/bindingtest"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// fakeStripe serves /v1/subscriptions and /v1/prices as Stripe's API does:
// list objects with data, has_more and url, paginated with starting_after
// (in pages of 4 here, to exercise the auto-pagination).
type fakeStripe struct {
	mu       sync.Mutex
	subs     []map[string]any
	prices   []map[string]any
	products []map[string]any
	// customers holds each customer's own discount, served when a listing
	// expands data.customer, as Stripe does.
	customers map[string]map[string]any
	auth      string
	// fail, when set, answers a request instead (nil: serve it).
	fail     func(n int, w http.ResponseWriter) bool
	requests int
}

func (f *fakeStripe) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = r.Header.Get("Authorization")
	f.requests++
	if f.fail != nil && f.fail(f.requests, w) {
		return
	}
	var items []map[string]any
	switch r.URL.Path {
	case "/v1/subscriptions":
		if r.URL.Query().Get("status") != "all" {
			http.Error(w, `{"error":{"message":"status must be all in this test","type":"invalid_request_error"}}`, http.StatusBadRequest)
			return
		}
		items = f.subs
		if expands(r, "data.customer") {
			items = make([]map[string]any, len(f.subs))
			for i, sub := range f.subs {
				cp := maps.Clone(sub)
				id, _ := sub["customer"].(string)
				cust := map[string]any{"id": id, "object": "customer", "discount": nil}
				if d, ok := f.customers[id]; ok {
					cust["discount"] = d
				}
				cp["customer"] = cust
				items[i] = cp
			}
		}
	case "/v1/prices":
		items = f.prices
	case "/v1/products":
		items = f.products
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"message":"Unrecognized request URL (GET: %s)","type":"invalid_request_error"}}`, r.URL.Path)
		return
	}
	start := 0
	if after := r.URL.Query().Get("starting_after"); after != "" {
		for i, it := range items {
			if it["id"] == after {
				start = i + 1
			}
		}
	}
	end := min(start+4, len(items))
	page := items[start:end]
	if page == nil {
		page = []map[string]any{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": r.URL.Path, "has_more": end < len(items), "data": page})
}

func priceJSON(id, product, currency string, unit int64, interval string, count int64) map[string]any {
	return map[string]any{"id": id, "object": "price", "currency": currency, "product": product, "billing_scheme": "per_unit",
		"unit_amount": unit, "unit_amount_decimal": strconv.FormatInt(unit, 10), "type": "recurring", "active": true,
		"recurring": map[string]any{"interval": interval, "interval_count": count, "usage_type": "licensed"}}
}

func coupon(id, duration string, percent float64, amountOff int64, currency string) map[string]any {
	c := map[string]any{"id": id, "object": "coupon", "duration": duration, "valid": true}
	if percent > 0 {
		c["percent_off"] = percent
	}
	if amountOff > 0 {
		c["amount_off"], c["currency"] = amountOff, currency
	}
	return map[string]any{"id": "di_" + id, "object": "discount", "coupon": c}
}

func sub(id, customer, status, currency string, cancelAtEnd bool, discounts []map[string]any, items ...map[string]any) map[string]any {
	if discounts == nil {
		discounts = []map[string]any{}
	}
	for i, it := range items {
		it["id"], it["object"] = fmt.Sprintf("si_%s_%d", id, i), "subscription_item"
		if it["discounts"] == nil {
			it["discounts"] = []map[string]any{}
		}
	}
	return map[string]any{"id": id, "object": "subscription", "customer": customer, "status": status, "currency": currency,
		"cancel_at_period_end": cancelAtEnd, "discounts": discounts,
		"items": map[string]any{"object": "list", "data": items, "has_more": false, "url": "/v1/subscription_items?subscription=" + id}}
}

func item(p map[string]any, qty int64) map[string]any {
	return map[string]any{"price": p, "quantity": qty}
}

// day0 is the subscription book of the first simulated day; amounts are
// derived in the comments (USD).
func day0() []map[string]any {
	metered := priceJSON("price_meter", "prod_api", "usd", 1, "month", 1)
	metered["recurring"].(map[string]any)["usage_type"] = "metered"
	graduated := map[string]any{"id": "price_grad", "object": "price", "currency": "usd", "product": "prod_usage", "billing_scheme": "tiered",
		"tiers_mode": "graduated", "type": "recurring", "recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}}
	volume := map[string]any{"id": "price_vol", "object": "price", "currency": "usd", "product": "prod_usage", "billing_scheme": "tiered",
		"tiers_mode": "volume", "type": "recurring", "recurring": map[string]any{"interval": "month", "interval_count": 1, "usage_type": "licensed"}}
	seats := priceJSON("price_seats", "prod_seats", "usd", 1000, "month", 1)
	seats["transform_quantity"] = map[string]any{"divide_by": 10, "round": "up"}
	return []map[string]any{
		sub("sub_1", "cus_A", "active", "usd", false, nil, item(priceJSON("price_pro", "prod_pro", "usd", 5000, "month", 1), 2)), // 100
		sub("sub_2", "cus_B", "active", "usd", false, []map[string]any{coupon("ten", "forever", 10, 0, "")}, // 120000/12 = 100, -10 % = 90
			item(priceJSON("price_team_y", "prod_team", "usd", 120000, "year", 1), 1)),
		sub("sub_3", "cus_C", "active", "usd", false, nil, map[string]any{"price": priceJSON("price_w", "prod_w", "usd", 1000, "week", 1), "quantity": 1, // 1000×52/12 = 43.33
			"discounts": []map[string]any{coupon("five", "repeating", 0, 500, "usd")}}), // -500×52/12 = -21.67 → 21.67
		sub("sub_4", "cus_D", "active", "usd", false, nil, item(priceJSON("price_q", "prod_q", "usd", 30000, "month", 3), 1), item(metered, 0)), // 100; metered out
		sub("sub_5", "cus_E", "active", "usd", false, nil, item(graduated, 15)),                                                                 // 10×1000 + 5×500 = 125
		sub("sub_6", "cus_F", "active", "usd", false, nil, item(volume, 15)),                                                                    // 15×800 + 2000 = 140
		sub("sub_7", "cus_G", "trialing", "usd", false, nil, item(priceJSON("price_t", "prod_t", "usd", 5000, "month", 1), 1)),                  // trialing 50
		sub("sub_8", "cus_H", "past_due", "usd", false, nil, item(priceJSON("price_pd", "prod_pd", "usd", 6000, "month", 1), 1)),                // 60, past due
		sub("sub_9", "cus_I", "active", "usd", true, nil, item(priceJSON("price_c", "prod_c", "usd", 3000, "month", 1), 1)),                     // 30, scheduled churn
		sub("sub_10", "cus_Z", "canceled", "usd", false, nil, item(priceJSON("price_x", "prod_x", "usd", 99900, "month", 1), 1)),
		sub("sub_11", "cus_J", "active", "usd", false, nil, item(seats, 25)),                                                      // ceil(25/10) = 3 × 1000 = 30
		sub("sub_12", "cus_K", "active", "eur", false, nil, item(priceJSON("price_eur", "prod_eur", "eur", 2000, "month", 1), 1)), // €20
	}
}

func prices() []map[string]any {
	return []map[string]any{
		{"id": "price_grad", "object": "price", "billing_scheme": "tiered", "tiers_mode": "graduated", "currency": "usd",
			"tiers": []map[string]any{{"up_to": 10, "unit_amount_decimal": "1000"}, {"up_to": nil, "unit_amount_decimal": "500"}}},
		{"id": "price_vol", "object": "price", "billing_scheme": "tiered", "tiers_mode": "volume", "currency": "usd",
			"tiers": []map[string]any{{"up_to": 10, "unit_amount_decimal": "1000"}, {"up_to": nil, "unit_amount_decimal": "800", "flat_amount_decimal": "2000"}}},
		priceJSON("price_pro", "prod_pro", "usd", 5000, "month", 1),
	}
}

func values(ms []kpi.Measurement) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		out[m.Name+m.Labels.String()] = m.Value
	}
	return out
}

func check(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if v, ok := got[k]; !ok || math.Abs(v-w) > 1e-6 {
			t.Errorf("%s = %v (%v), want %v", k, v, ok, w)
		}
	}
}

func setup(t *testing.T, policy string) (*fakeStripe, *Collector, *time.Time) {
	f := &fakeStripe{subs: day0(), prices: prices()}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := newCollector(Settings{BaseURL: srv.URL, Discounts: policy, GrossMargin: 0.8,
		Tiers: Tiers{By: "product", Map: map[string]string{"prod_pro": "tier2", "prod_team": "tier3"}}}, "rk_test_123", collectors.Env{StateDir: t.TempDir()})
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c.now = func() time.Time { return now }
	return f, c, &now
}

func TestMRR(t *testing.T) {
	f, c, _ := setup(t, DiscountsAll)
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := values(ms)
	usd := 100 + 90 + (1000.0*52/12-500.0*52/12)/100 + 100 + 125 + 140 + 60 + 30 + 30
	check(t, got, map[string]float64{
		`mrr{currency="usd"}`: usd, `arr{currency="usd"}`: 12 * usd, `mrr{currency="eur"}`: 20,
		`mrr_trialing{currency="usd"}`: 50, `mrr_past_due{currency="usd"}`: 60, `mrr_scheduled_churn{currency="usd"}`: 30,
		`paying_customers{currency="usd"}`: 9, `arpa{currency="usd"}`: usd / 9,
		`mrr_by_tier{currency="usd",tier="tier2"}`: 100, `mrr_by_tier{currency="usd",tier="tier3"}`: 90,
		`customer_concentration_ratio{currency="usd"}`: 140 / usd,
	})
	if _, ok := got[`mrr_movement{currency="usd",kind="new"}`]; ok {
		t.Error("movements need a snapshot a month old")
	}
	if f.auth != "Bearer rk_test_123" {
		t.Errorf("auth %q", f.auth)
	}
	// forever_only keeps the 10 % forever coupon and drops the repeating one.
	_, c2, _ := setup(t, DiscountsForeverOnly)
	ms, _ = c2.Collect(context.Background())
	check(t, values(ms), map[string]float64{`mrr{currency="usd"}`: usd - (1000.0*52/12-500.0*52/12)/100 + 1000.0*52/12/100})
	_, c3, _ := setup(t, DiscountsNone)
	ms, _ = c3.Collect(context.Background())
	check(t, values(ms), map[string]float64{`mrr{currency="usd"}`: usd + 10 + 500.0*52/12/100})
}

func TestMovementsOverSimulatedDays(t *testing.T) {
	f, c, now := setup(t, DiscountsAll)
	// Day -40: cus_M pays 25; it is gone on day 0 and back on day 31.
	m := sub("sub_m", "cus_M", "active", "usd", false, nil, item(priceJSON("price_m", "prod_m", "usd", 2500, "month", 1), 1))
	f.subs = append(day0(), m)
	*now = time.Date(2026, 9, 22, 12, 0, 0, 0, time.UTC)
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.subs = day0()
	*now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Day 31: A expands to 3 seats (+50), B churns (-90), D contracts to 80
	// (-20), L is new (+40), M is back (+25).
	next := day0()
	next[0] = sub("sub_1", "cus_A", "active", "usd", false, nil, item(priceJSON("price_pro", "prod_pro", "usd", 5000, "month", 1), 3))
	next[1]["status"] = "canceled"
	next[3] = sub("sub_4", "cus_D", "active", "usd", false, nil, item(priceJSON("price_q", "prod_q", "usd", 24000, "month", 3), 1))
	next = append(next, sub("sub_l", "cus_L", "active", "usd", false, nil, item(priceJSON("price_l", "prod_l", "usd", 4000, "month", 1), 1)), m)
	f.subs = next
	*now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	before := 100 + 90 + (1000.0*52/12-500.0*52/12)/100 + 100 + 125 + 140 + 60 + 30 + 30
	after := before + 40 + 50 - 20 - 90 + 25
	check(t, values(ms), map[string]float64{
		`mrr{currency="usd"}`:                              after,
		`mrr_movement{currency="usd",kind="new"}`:          40,
		`mrr_movement{currency="usd",kind="expansion"}`:    50,
		`mrr_movement{currency="usd",kind="contraction"}`:  20,
		`mrr_movement{currency="usd",kind="churned"}`:      90,
		`mrr_movement{currency="usd",kind="reactivation"}`: 25,
		`mrr_growth_ratio{currency="usd"}`:                 (after - before) / before,
		`revenue_churn_ratio{currency="usd"}`:              (90 + 20) / before,
		`customer_churn_ratio{}`:                           1.0 / 10, // B of 9 USD + 1 EUR customers
		`customers_new_30d{}`:                              1,
		`ltv{currency="usd"}`:                              after / 10 * 0.8 / 0.1,
		`mrr_movement{currency="eur",kind="new"}`:          0,
	})
}

// TestDefaultCatalogueBindings: every KPI of the embedded catalogue bound to
// the stripe source names exactly one series this source reports once a
// month of snapshots exists.
func TestDefaultCatalogueBindings(t *testing.T) {
	f, c, now := setup(t, DiscountsAll)
	if _, err := c.Collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A month later cus_L is new and cus_B has churned (LTV needs churn).
	next := append(day0(), sub("sub_l", "cus_L", "active", "usd", false, nil, item(priceJSON("price_l", "prod_l", "usd", 4000, "month", 1), 1)))
	next[1]["status"] = "canceled"
	f.subs = next
	*now = now.AddDate(0, 0, 31)
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	bindingtest.Check(t, Type, ms, 8)
}

func TestErrorsNameStripesMessage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"message":"Invalid API Key provided: rk_test_****_123","type":"invalid_request_error"}}`)
	}))
	defer srv.Close()
	c := newCollector(Settings{BaseURL: srv.URL, Discounts: DiscountsAll}, "rk_test_secret_123", collectors.Env{})
	_, err := c.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Invalid API Key provided") || strings.Contains(err.Error(), "rk_test_secret_123") {
		t.Errorf("error %v", err)
	}
}

// The awkward discounts of Stripe's documented shapes, hand-computed: a
// repeating coupon whose end has passed no longer applies; a customer-level
// discount applies to a subscription that carries none of its own, and not
// to one that does (item discounts, then the subscription's, then the
// customer's).
func TestEndedAndCustomerDiscounts(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	ended := coupon("ended", "repeating", 50, 0, "")
	ended["end"] = now.Add(-24 * time.Hour).Unix()
	running := coupon("running", "repeating", 50, 0, "")
	running["end"] = now.Add(24 * time.Hour).Unix()
	itemEnded := item(priceJSON("price_i", "prod_i", "usd", 4000, "month", 1), 1)
	itemEnded["discounts"] = []map[string]any{ended}
	f := &fakeStripe{prices: []map[string]any{}, customers: map[string]map[string]any{
		"cus_C": coupon("vip", "forever", 20, 0, ""), "cus_D": coupon("vip2", "forever", 20, 0, ""),
		"cus_E": coupon("vip3", "forever", 0, 1000, "usd"),
	}, subs: []map[string]any{
		sub("sub_a", "cus_A", "active", "usd", false, []map[string]any{ended}, item(priceJSON("price_a", "prod_a", "usd", 10000, "month", 1), 1)),   // 100: the coupon ended
		sub("sub_b", "cus_B", "active", "usd", false, []map[string]any{running}, item(priceJSON("price_b", "prod_b", "usd", 10000, "month", 1), 1)), // 50
		sub("sub_c", "cus_C", "active", "usd", false, nil, item(priceJSON("price_c", "prod_c", "usd", 10000, "month", 1), 1)),                       // 80: the customer's 20 %
		sub("sub_d", "cus_D", "active", "usd", false, []map[string]any{running}, item(priceJSON("price_d", "prod_d", "usd", 10000, "month", 1), 1)), // 50: its own, not the customer's
		sub("sub_e", "cus_E", "active", "usd", false, nil, itemEnded),                                                                               // 40: an item discount, even ended, is the subscription's own
		sub("sub_f", "cus_E", "active", "usd", false, nil, item(priceJSON("price_f", "prod_f", "usd", 3000, "month", 1), 1)),                        // 30 - 10 = 20
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := newCollector(Settings{BaseURL: srv.URL, Discounts: DiscountsAll}, "rk_test_1", collectors.Env{StateDir: t.TempDir()})
	c.now = func() time.Time { return now }
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check(t, values(ms), map[string]float64{`mrr{currency="usd"}`: 100 + 50 + 80 + 50 + 40 + 20, `paying_customers{currency="usd"}`: 5})
}

// Tiers come from the price's metadata, else the product's, else the
// configured map; the rest is tier "none", so the tiers sum to the MRR.
func TestTiersSumToMRR(t *testing.T) {
	gold := priceJSON("price_gold", "prod_plain", "usd", 10000, "month", 1)
	gold["metadata"] = map[string]any{"tier": "gold"}
	silver := priceJSON("price_s", "prod_silver", "usd", 5000, "month", 1) // product metadata
	mapped := priceJSON("price_mapped", "prod_x", "usd", 2000, "month", 1)
	renamed := priceJSON("price_r", "prod_y", "usd", 1000, "month", 1)
	renamed["metadata"] = map[string]any{"tier": "ent"}
	plain := priceJSON("price_plain", "prod_plain", "usd", 700, "month", 1)
	f := &fakeStripe{prices: []map[string]any{}, products: []map[string]any{
		{"id": "prod_silver", "object": "product", "metadata": map[string]any{"tier": "silver"}},
		{"id": "prod_plain", "object": "product", "metadata": map[string]any{}},
	}, subs: []map[string]any{
		sub("s1", "c1", "active", "usd", false, []map[string]any{coupon("half", "forever", 50, 0, "")}, item(gold, 1), item(plain, 1)), // (100 + 7) / 2
		sub("s2", "c2", "active", "usd", false, nil, item(silver, 1)),                                                                  // 50
		sub("s3", "c3", "active", "usd", false, nil, item(mapped, 1)),                                                                  // 20, by the map
		sub("s4", "c4", "active", "usd", false, nil, item(renamed, 1)),                                                                 // 10, metadata "ent" renamed "enterprise"
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := newCollector(Settings{BaseURL: srv.URL, Discounts: DiscountsAll, Tiers: Tiers{Map: map[string]string{"price_mapped": "bronze", "ent": "enterprise"}}},
		"rk_test_1", collectors.Env{})
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := values(ms)
	check(t, got, map[string]float64{
		`mrr{currency="usd"}`: 53.5 + 50 + 20 + 10, `mrr_by_tier{currency="usd",tier="gold"}`: 50, `mrr_by_tier{currency="usd",tier="none"}`: 3.5,
		`mrr_by_tier{currency="usd",tier="silver"}`: 50, `mrr_by_tier{currency="usd",tier="bronze"}`: 20, `mrr_by_tier{currency="usd",tier="enterprise"}`: 10,
	})
	var sum float64
	for _, m := range ms {
		if m.Name == "mrr_by_tier" {
			sum += m.Value
		}
	}
	if math.Abs(sum-got[`mrr{currency="usd"}`]) > 1e-9 {
		t.Errorf("tiers sum to %v, MRR is %v", sum, got[`mrr{currency="usd"}`])
	}
}

// Amounts are in each currency's major unit by its minor units: JPY has
// none, KWD three.
func TestCurrencyMinorUnits(t *testing.T) {
	f := &fakeStripe{prices: []map[string]any{}, subs: []map[string]any{
		sub("j", "cj", "active", "jpy", false, nil, item(priceJSON("price_j", "prod_j", "jpy", 980, "month", 1), 3)),   // ¥2,940
		sub("k", "ck", "active", "kwd", false, nil, item(priceJSON("price_k", "prod_k", "kwd", 12500, "month", 1), 1)), // KWD 12.500
		sub("g", "cg", "active", "gbp", false, nil, item(priceJSON("price_g", "prod_g", "gbp", 12000, "year", 1), 1)),  // £10
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := newCollector(Settings{BaseURL: srv.URL, Discounts: DiscountsAll}, "rk_test_1", collectors.Env{})
	ms, err := c.Collect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	check(t, values(ms), map[string]float64{`mrr{currency="jpy"}`: 2940, `mrr{currency="kwd"}`: 12.5, `mrr{currency="gbp"}`: 10})
	cat := `sources: [{name: stripe, type: stripe}]
kpis:
  - {id: mrr_jpy, name: MRR JPY, domain: growth, dashboard: financial, unit: jpy, direction: higher,
     source: {name: stripe, measurement: mrr, labels: {currency: jpy}}, targets: [{period: M1, value: 100000}]}
calendar: {launch: 2026-01-01}
`
	parsed, err := kpi.Parse("k.yml", []byte(cat), kpi.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := kpi.FormatValue(parsed.KPIs[0].Unit, 2940); got != "¥2.94K" {
		t.Errorf("a JPY KPI formats as %q", got)
	}
}

// 429s (with Retry-After), 5xx and dropped connections are retried inside
// the run, page by page; Stripe-Should-Retry: false is final; when retries
// run out the error keeps Stripe's code (rate_limit).
func TestRetries(t *testing.T) {
	f := &fakeStripe{subs: day0(), prices: prices()}
	rateLimited := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"code":"rate_limit","message":"Too many requests hit the API too quickly.","type":"invalid_request_error"}}`)
	}
	f.fail = func(n int, w http.ResponseWriter) bool {
		switch n % 7 {
		case 3:
			rateLimited(w)
			return true
		case 5:
			w.WriteHeader(http.StatusBadGateway)
			return true
		case 6:
			if hj, ok := w.(http.Hijacker); ok {
				conn, _, _ := hj.Hijack()
				conn.Close() // a dropped connection
				return true
			}
		}
		return false
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := newCollector(Settings{BaseURL: srv.URL, Discounts: DiscountsAll}, "rk_test_1", collectors.Env{})
	var waits []time.Duration
	c.retry.sleep = func(_ context.Context, d time.Duration) error { waits = append(waits, d); return nil }
	for run := 0; run < 5; run++ {
		if _, err := c.Collect(context.Background()); err != nil {
			t.Fatalf("run %d failed although every failure was retryable: %v", run, err)
		}
	}
	if !slices.Contains(waits, 2*time.Second) {
		t.Errorf("Retry-After was not honoured: waits %v", waits)
	}
	f.mu.Lock()
	f.fail = func(n int, w http.ResponseWriter) bool {
		w.Header().Set("Stripe-Should-Retry", "false")
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"error":{"message":"An unknown error occurred","type":"api_error"}}`)
		return true
	}
	f.requests = 0
	f.mu.Unlock()
	if _, err := c.Collect(context.Background()); err == nil || f.requests != 1 {
		t.Errorf("Stripe-Should-Retry: false was retried (%d requests): %v", f.requests, err)
	}
	f.mu.Lock()
	f.fail = func(n int, w http.ResponseWriter) bool { rateLimited(w); return true }
	f.mu.Unlock()
	_, err := c.Collect(context.Background())
	if err == nil || !strings.Contains(err.Error(), "rate_limit") || !strings.Contains(err.Error(), "429") {
		t.Errorf("exhausted retries: %v", err)
	}
}

// expands says whether a request asks for an expansion; stripe-go writes
// expand[0]=…, expand[1]=….
func expands(r *http.Request, path string) bool {
	for k, vs := range r.URL.Query() {
		if strings.HasPrefix(k, "expand[") && slices.Contains(vs, path) {
			return true
		}
	}
	return false
}

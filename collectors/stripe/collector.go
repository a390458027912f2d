package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	stripeapi "github.com/stripe/stripe-go/v82"
	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	secrets "github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "stripe"

// Snapshot retention and the month the movements compare across.
const (
	keepDays  = 70
	monthBack = 30
)

func init() { collectors.Register(Type, New) }

// Settings of a stripe source.
type Settings struct {
	APIKeyFile string `yaml:"api_key_file"`
	APIKeyEnv  string `yaml:"api_key_env"`
	// BaseURL overrides https://api.stripe.com (tests, proxies).
	BaseURL string `yaml:"base_url"`
	// Discounts: all (default), forever_only or none.
	Discounts string `yaml:"discounts"`
	// Tiers map a price id, product id or metadata value to a tier name.
	Tiers Tiers `yaml:"tiers"`
	// GrossMargin for LTV = ARPA × gross margin ÷ customer churn.
	GrossMargin float64 `yaml:"gross_margin"`
}

// Tiers say which tier a subscription item belongs to.
type Tiers struct {
	// By is price, product or metadata (the price's metadata key Key).
	By  string            `yaml:"by"`
	Key string            `yaml:"key"`
	Map map[string]string `yaml:"map"`
}

// Collector is a stripe source.
type Collector struct {
	s     Settings
	key   string
	b     stripeapi.Backend
	state collectors.StateStore
	log   *zap.Logger
	now   func() time.Time
	retry *retryTransport
	snaps map[string]map[string]map[string]float64 // day → currency → customer → MRR
	// ever is the first day each customer paid, per currency, kept beyond
	// the snapshots' retention so a returning customer is a reactivation.
	ever   map[string]map[string]string
	loaded bool
}

// New builds a stripe source from its declaration.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	at := src.Settings.Errorf
	key, err := readKey(s)
	if err != nil {
		return nil, at("", "%v", err)
	}
	switch s.Discounts {
	case "":
		s.Discounts = DiscountsAll
	case DiscountsAll, DiscountsForeverOnly, DiscountsNone:
	default:
		return nil, at(".discounts", "discounts %q is not all, forever_only or none", s.Discounts)
	}
	switch s.Tiers.By {
	case "", "price", "product", "metadata":
	default:
		return nil, at(".tiers.by", "tiers.by %q is not price, product or metadata", s.Tiers.By)
	}
	if s.GrossMargin < 0 || s.GrossMargin > 1 {
		return nil, at(".gross_margin", "gross_margin %v is outside [0, 1]", s.GrossMargin)
	}
	return newCollector(s, key, env), nil
}

func newCollector(s Settings, key string, env collectors.Env) *Collector {
	// Retries are the transport's (429, 5xx, connection errors, with
	// Retry-After and Stripe-Should-Retry), not stripe-go's, which skips
	// most 429s and ignores Retry-After.
	c := &Collector{s: s, key: key, state: env.SourceState(), log: env.Log(), now: time.Now, retry: newRetryTransport(nil)}
	cfg := &stripeapi.BackendConfig{HTTPClient: &http.Client{Timeout: 80 * time.Second, Transport: c.retry},
		LeveledLogger: &stripeapi.LeveledLogger{Level: stripeapi.LevelNull}, MaxNetworkRetries: stripeapi.Int64(0)}
	if s.BaseURL != "" {
		cfg.URL = stripeapi.String(strings.TrimSuffix(s.BaseURL, "/"))
	}
	c.b = stripeapi.GetBackendWithConfig(stripeapi.APIBackend, cfg)
	return c
}

// client is a Stripe client on the collector's backend (base URL, timeout,
// retries, no logging).
func (c *Collector) client() *stripeapi.Client {
	return stripeapi.NewClient(c.key, stripeapi.WithBackends(&stripeapi.Backends{API: c.b, Connect: c.b, Uploads: c.b, MeterEvents: c.b}))
}

func readKey(s Settings) (string, error) {
	switch {
	case s.APIKeyEnv != "" && s.APIKeyFile != "":
		return "", fmt.Errorf("set api_key_file or api_key_env, not both")
	case s.APIKeyEnv != "":
		k := strings.TrimSpace(os.Getenv(s.APIKeyEnv))
		if k == "" {
			return "", fmt.Errorf("environment variable %s (api_key_env) is empty or unset", s.APIKeyEnv)
		}
		secrets.Register(k)
		return k, nil
	case s.APIKeyFile != "":
		b, err := os.ReadFile(s.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("api_key_file: %w", err)
		}
		secrets.Register(string(b))
		return strings.TrimSpace(string(b)), nil
	}
	return "", fmt.Errorf("set api_key_file or api_key_env: a restricted key with read access to subscriptions and prices")
}

// tierOf places an item's price in a tier: the price's metadata value
// under tiers.key, else its product's, else tiers.map by price id, else by
// product id; "" (NoTier) when none says. A metadata value is renamed
// through tiers.map when the map has it. tiers.by, when set, restricts the
// lookup to one of these.
func (c *Collector) tierOf(p *stripeapi.Price, products map[string]map[string]string) string {
	key := c.s.Tiers.Key
	if key == "" {
		key = "tier"
	}
	rename := func(v string) string {
		if m, ok := c.s.Tiers.Map[v]; ok {
			return m
		}
		return v
	}
	productID := ""
	if p.Product != nil {
		productID = p.Product.ID
	}
	by := c.s.Tiers.By
	if by == "" || by == "metadata" {
		if v := p.Metadata[key]; v != "" {
			return rename(v)
		}
		if v := products[productID][key]; v != "" {
			return rename(v)
		}
	}
	if by == "" || by == "price" {
		if m, ok := c.s.Tiers.Map[p.ID]; ok {
			return m
		}
	}
	if by == "" || by == "product" {
		if m, ok := c.s.Tiers.Map[productID]; ok && productID != "" {
			return m
		}
	}
	return ""
}

// productMetadata lists every product's metadata by product id.
func (c *Collector) productMetadata(ctx context.Context) (map[string]map[string]string, error) {
	params := &stripeapi.ProductListParams{}
	params.Limit = stripeapi.Int64(100)
	out := map[string]map[string]string{}
	for p, err := range c.client().V1Products.List(ctx, params) {
		if err != nil {
			return nil, fmt.Errorf("listing products: %w", redact(err))
		}
		if len(p.Metadata) > 0 {
			out[p.ID] = p.Metadata
		}
	}
	return out, nil
}

type totals struct {
	mrr, trialing, pastDue, scheduled float64
	byTier                            map[string]float64
	customers                         map[string]float64
}

// Collect lists every subscription (auto-paginated), computes MRR per
// currency, keeps today's per-customer snapshot, and derives the movements
// from the snapshot of a month ago.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	tiers, err := c.tieredPrices(ctx)
	if err != nil {
		return nil, err
	}
	// Product metadata names tiers too, and a price's product cannot be
	// expanded from a subscription listing (five levels; Stripe allows four).
	products, err := c.productMetadata(ctx)
	if err != nil {
		return nil, err
	}
	params := &stripeapi.SubscriptionListParams{Status: stripeapi.String("all")}
	params.Limit = stripeapi.Int64(100)
	params.AddExpand("data.discounts")
	params.AddExpand("data.items.data.discounts")
	// The customer's own discount applies when the subscription carries
	// none; its coupon comes inline (two levels, within Stripe's four).
	params.AddExpand("data.customer")
	byCur := map[string]*totals{}
	get := func(cur string) *totals {
		if byCur[cur] == nil {
			byCur[cur] = &totals{byTier: map[string]float64{}, customers: map[string]float64{}}
		}
		return byCur[cur]
	}
	for s, err := range c.client().V1Subscriptions.List(ctx, params) {
		if err != nil {
			return nil, fmt.Errorf("listing subscriptions: %w", redact(err))
		}
		if s.Items != nil {
			for _, item := range s.Items.Data {
				if item.Price != nil && item.Price.BillingScheme == stripeapi.PriceBillingSchemeTiered {
					if full, ok := tiers[item.Price.ID]; ok {
						item.Price.Tiers, item.Price.TiersMode = full.Tiers, full.TiersMode
					}
				}
			}
		}
		mrr, byTier := SubscriptionMRR(s, c.s.Discounts, func(p *stripeapi.Price) string { return c.tierOf(p, products) }, c.now())
		cur := strings.ToLower(string(s.Currency))
		t := get(cur)
		switch s.Status {
		case stripeapi.SubscriptionStatusActive, stripeapi.SubscriptionStatusPastDue:
			t.mrr += mrr
			for k, v := range byTier {
				t.byTier[k] += v
			}
			if s.Customer != nil && mrr > 0 {
				t.customers[s.Customer.ID] += mrr
			}
			if s.Status == stripeapi.SubscriptionStatusPastDue {
				t.pastDue += mrr
			}
			if s.CancelAtPeriodEnd {
				t.scheduled += mrr
			}
		case stripeapi.SubscriptionStatusTrialing:
			t.trialing += mrr
		}
	}
	now := c.now().UTC()
	c.loadSnapshots()
	today := map[string]map[string]float64{}
	for cur, t := range byCur {
		today[cur] = t.customers
	}
	day := now.Format("2006-01-02")
	c.snaps[day] = today
	for cur, custs := range today {
		if c.ever[cur] == nil {
			c.ever[cur] = map[string]string{}
		}
		for cust := range custs {
			if first, ok := c.ever[cur][cust]; !ok || day < first {
				c.ever[cur][cust] = day
			}
		}
	}
	c.pruneAndSave(now)
	return c.measure(byCur, now), nil
}

// redact keeps Stripe's message, status, type and code (rate_limit, …) and
// drops anything else.
func redact(err error) error {
	var se *stripeapi.Error
	if errors.As(err, &se) {
		detail := fmt.Sprintf("%d %s", se.HTTPStatusCode, se.Type)
		if se.Code != "" {
			detail += " " + string(se.Code)
		}
		return fmt.Errorf("%s (%s)", se.Msg, detail)
	}
	return err
}

// tieredPrices reads the tiers of tiered prices, which subscriptions do not
// carry (the expansion would be too deep).
func (c *Collector) tieredPrices(ctx context.Context) (map[string]*stripeapi.Price, error) {
	params := &stripeapi.PriceListParams{}
	params.Limit = stripeapi.Int64(100)
	params.AddExpand("data.tiers")
	out := map[string]*stripeapi.Price{}
	for p, err := range c.client().V1Prices.List(ctx, params) {
		if err != nil {
			return nil, fmt.Errorf("listing prices: %w", redact(err))
		}
		if p.BillingScheme == stripeapi.PriceBillingSchemeTiered {
			out[p.ID] = p
		}
	}
	return out, nil
}

func (c *Collector) measure(byCur map[string]*totals, now time.Time) []kpi.Measurement {
	var out []kpi.Measurement
	add := func(name string, v float64, ls ...string) {
		l := kpi.Labels{}
		for i := 0; i+1 < len(ls); i += 2 {
			l = append(l, kpi.Label{Name: ls[i], Value: ls[i+1]})
		}
		sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
		out = append(out, kpi.Measurement{Name: name, Value: v, Labels: l})
	}
	curs := make([]string, 0, len(byCur))
	for cur := range byCur {
		curs = append(curs, cur)
	}
	sort.Strings(curs)
	then, haveThen := c.snapshotBefore(now, monthBack)
	var lost, payingThen, newCustomers float64
	for _, cur := range curs {
		t := byCur[cur]
		add("mrr", t.mrr, "currency", cur)
		add("arr", 12*t.mrr, "currency", cur)
		add("mrr_trialing", t.trialing, "currency", cur)
		add("mrr_past_due", t.pastDue, "currency", cur)
		add("mrr_scheduled_churn", t.scheduled, "currency", cur)
		add("paying_customers", float64(len(t.customers)), "currency", cur)
		// Every configured tier is reported, 0 when nobody pays for it now,
		// and so is the untiered rest.
		if _, ok := t.byTier[NoTier]; !ok {
			t.byTier[NoTier] = 0
		}
		for _, tier := range c.s.Tiers.Map {
			if _, ok := t.byTier[tier]; !ok {
				t.byTier[tier] = 0
			}
		}
		tiers := make([]string, 0, len(t.byTier))
		for k := range t.byTier {
			tiers = append(tiers, k)
		}
		sort.Strings(tiers)
		for _, k := range tiers {
			add("mrr_by_tier", t.byTier[k], "currency", cur, "tier", k)
		}
		if n := len(t.customers); n > 0 {
			add("arpa", t.mrr/float64(n), "currency", cur)
			var top float64
			for _, v := range t.customers {
				top = max(top, v)
			}
			add("customer_concentration_ratio", top/t.mrr, "currency", cur)
		}
		if !haveThen {
			continue
		}
		prev := then[cur]
		var prevMRR float64
		mv := map[string]float64{"new": 0, "expansion": 0, "contraction": 0, "churned": 0, "reactivation": 0}
		for cust, was := range prev {
			prevMRR += was
			if was > 0 {
				payingThen++
			}
			is := t.customers[cust]
			switch {
			case is == 0 && was > 0:
				mv["churned"] += was
				lost++
			case is > was:
				mv["expansion"] += is - was
			case is < was:
				mv["contraction"] += was - is
			}
		}
		for cust, is := range t.customers {
			if prev[cust] > 0 {
				continue
			}
			if c.seenBefore(cur, cust, now, monthBack) {
				mv["reactivation"] += is
			} else {
				mv["new"] += is
				newCustomers++
			}
		}
		for _, k := range []string{"new", "expansion", "contraction", "churned", "reactivation"} {
			add("mrr_movement", mv[k], "currency", cur, "kind", k)
		}
		if prevMRR > 0 {
			add("mrr_growth_ratio", (t.mrr-prevMRR)/prevMRR, "currency", cur)
			add("revenue_churn_ratio", (mv["churned"]+mv["contraction"])/prevMRR, "currency", cur)
		}
	}
	if haveThen {
		add("customers_new_30d", newCustomers)
		if payingThen > 0 {
			churn := lost / payingThen
			add("customer_churn_ratio", churn)
			if churn > 0 && c.s.GrossMargin > 0 {
				for _, cur := range curs {
					t := byCur[cur]
					if n := len(t.customers); n > 0 {
						add("ltv", t.mrr/float64(n)*c.s.GrossMargin/churn, "currency", cur)
					}
				}
			}
		}
	}
	return out
}

// snapshotBefore returns the newest snapshot at least days old.
func (c *Collector) snapshotBefore(now time.Time, days int) (map[string]map[string]float64, bool) {
	cut := now.AddDate(0, 0, -days).Format("2006-01-02")
	best := ""
	for d := range c.snaps {
		if d <= cut && d > best {
			best = d
		}
	}
	if best == "" {
		return nil, false
	}
	return c.snaps[best], true
}

// seenBefore reports whether a customer paid in any snapshot older than
// days (a returning customer is a reactivation, not new).
func (c *Collector) seenBefore(cur, customer string, now time.Time, days int) bool {
	first, ok := c.ever[cur][customer]
	return ok && first < now.AddDate(0, 0, -days).Format("2006-01-02")
}

const snapFile = "stripe-snapshots.json"

// snapshotFile is the state the movements are computed from: per-customer
// MRR per day, and each customer's first paying day.
type snapshotFile struct {
	Days      map[string]map[string]map[string]float64 `json:"days"`
	FirstPaid map[string]map[string]string             `json:"first_paid"`
}

func (c *Collector) loadSnapshots() {
	if c.loaded {
		return
	}
	c.loaded, c.snaps, c.ever = true, map[string]map[string]map[string]float64{}, map[string]map[string]string{}
	if c.state == nil {
		return
	}
	b, err := c.state.Load(snapFile)
	if err != nil {
		return
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil || f.Days == nil {
		c.log.Error("Stripe snapshots unreadable; movements start over", zap.Error(err))
		return
	}
	c.snaps = f.Days
	if f.FirstPaid != nil {
		c.ever = f.FirstPaid
	}
}

func (c *Collector) pruneAndSave(now time.Time) {
	cut := now.AddDate(0, 0, -keepDays).Format("2006-01-02")
	for d := range c.snaps {
		if d < cut {
			delete(c.snaps, d)
		}
	}
	if c.state == nil {
		return
	}
	data, err := json.Marshal(snapshotFile{Days: c.snaps, FirstPaid: c.ever})
	if err == nil {
		err = c.state.Save(snapFile, data)
	}
	if err != nil {
		c.log.Error("saving Stripe snapshots failed", zap.Error(err))
	}
}

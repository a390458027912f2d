// Package stripe is the source type "stripe": recurring revenue from Stripe
// subscriptions — MRR and ARR per currency, tiers, customers, concentration,
// and month-over-month movements and churn from daily snapshots kept in the
// state directory (Stripe keeps events for 30 days only).
package stripe

import (
	"math"
	"sort"
	"strings"
	"time"

	stripeapi "github.com/stripe/stripe-go/v82"
)

// Discount policies.
const (
	DiscountsAll         = "all"
	DiscountsForeverOnly = "forever_only"
	DiscountsNone        = "none"
)

// zeroDecimal are the currencies Stripe counts in whole units, and
// threeDecimal those it counts in thousandths (Stripe's currency list; they
// agree with ISO 4217's minor units).
var zeroDecimal = map[string]bool{"bif": true, "clp": true, "djf": true, "gnf": true, "jpy": true, "kmf": true, "krw": true,
	"mga": true, "pyg": true, "rwf": true, "ugx": true, "vnd": true, "vuv": true, "xaf": true, "xof": true, "xpf": true}

var threeDecimal = map[string]bool{"bhd": true, "jod": true, "kwd": true, "omr": true, "tnd": true}

func major(amountMinor float64, currency string) float64 {
	switch c := strings.ToLower(currency); {
	case zeroDecimal[c]:
		return amountMinor
	case threeDecimal[c]:
		return amountMinor / 1000
	}
	return amountMinor / 100
}

// periodAmount is what one billing period of an item costs, in minor
// units: unit price × quantity, or the tiers (volume: the tier the whole
// quantity falls in; graduated: each tier its share), after
// transform_quantity.
func periodAmount(p *stripeapi.Price, quantity int64) float64 {
	q := float64(quantity)
	if tq := p.TransformQuantity; tq != nil && tq.DivideBy > 0 {
		q = q / float64(tq.DivideBy)
		if tq.Round == stripeapi.PriceTransformQuantityRoundDown {
			q = math.Floor(q)
		} else {
			q = math.Ceil(q)
		}
	}
	if p.BillingScheme != stripeapi.PriceBillingSchemeTiered || len(p.Tiers) == 0 {
		return p.UnitAmountDecimal * q
	}
	tiers := append([]*stripeapi.PriceTier(nil), p.Tiers...)
	// up_to 0 means "and beyond": it sorts last.
	sort.SliceStable(tiers, func(i, j int) bool {
		a, b := tiers[i].UpTo, tiers[j].UpTo
		return a != 0 && (b == 0 || a < b)
	})
	if p.TiersMode == stripeapi.PriceTiersModeVolume {
		for _, t := range tiers {
			if t.UpTo == 0 || q <= float64(t.UpTo) {
				return t.UnitAmountDecimal*q + t.FlatAmountDecimal
			}
		}
		return 0
	}
	var total, lower float64
	for _, t := range tiers {
		upper := float64(t.UpTo)
		if t.UpTo == 0 {
			upper = math.Inf(1)
		}
		if q <= lower {
			break
		}
		inTier := math.Min(q, upper) - lower
		total += t.UnitAmountDecimal*inTier + t.FlatAmountDecimal
		lower = upper
	}
	return total
}

// monthly normalises an amount per billing period to a month: a year is 12
// months, a week 52/12 of a month, a day 365/12 of one, each divided by the
// interval count.
func monthly(amount float64, r *stripeapi.PriceRecurring) float64 {
	ic := float64(max(r.IntervalCount, 1))
	switch r.Interval {
	case stripeapi.PriceRecurringIntervalYear:
		return amount / 12 / ic
	case stripeapi.PriceRecurringIntervalWeek:
		return amount * 52 / 12 / ic
	case stripeapi.PriceRecurringIntervalDay:
		return amount * 365 / 12 / ic
	}
	return amount / ic
}

// applies says whether a discount counts under the policy at now: one
// whose end has passed no longer reduces anything.
func applies(d *stripeapi.Discount, policy string, now time.Time) bool {
	if d == nil || d.Coupon == nil || d.Deleted {
		return false
	}
	if d.End != 0 && d.End <= now.Unix() {
		return false
	}
	switch policy {
	case DiscountsNone:
		return false
	case DiscountsForeverOnly:
		return d.Coupon.Duration == stripeapi.CouponDurationForever
	}
	return true
}

// discount reduces a monthly amount by a discount: percent off, or an
// amount off (in the coupon's currency, per billing period, normalised to a
// month with the item's interval).
func discount(m float64, d *stripeapi.Discount, currency string, r *stripeapi.PriceRecurring) float64 {
	c := d.Coupon
	if c.PercentOff > 0 {
		return m * (1 - c.PercentOff/100)
	}
	if c.AmountOff > 0 && strings.EqualFold(string(c.Currency), currency) {
		return math.Max(0, m-monthly(float64(c.AmountOff), r))
	}
	return m
}

// NoTier is the tier of an item that no tier rule places, so that the tiers
// of a currency always sum to its MRR.
const NoTier = "none"

// SubscriptionMRR is a subscription's monthly recurring revenue at now in
// its currency's major unit, and per tier. Metered items are left out.
// Discounts follow the policy and Stripe's precedence: an item's own
// discounts apply to it, the subscription's to its total, and the
// customer's only when neither the subscription nor any of its items
// carries a discount. A discount whose end has passed no longer applies.
// Every item is in a tier (NoTier when tierOf says nothing), so the tiers
// sum to the total.
func SubscriptionMRR(s *stripeapi.Subscription, policy string, tierOf func(*stripeapi.Price) string, now time.Time) (float64, map[string]float64) {
	currency := string(s.Currency)
	byTier := map[string]float64{}
	var total float64
	var rec *stripeapi.PriceRecurring
	if s.Items == nil {
		return 0, byTier
	}
	carries := len(s.Discounts) > 0
	for _, it := range s.Items.Data {
		p := it.Price
		if len(it.Discounts) > 0 {
			carries = true
		}
		if p == nil || p.Recurring == nil || p.Recurring.UsageType == stripeapi.PriceRecurringUsageTypeMetered {
			continue
		}
		rec = p.Recurring
		m := monthly(periodAmount(p, it.Quantity), p.Recurring)
		for _, d := range it.Discounts {
			if applies(d, policy, now) {
				m = discount(m, d, currency, p.Recurring)
			}
		}
		total += m
		t := NoTier
		if tierOf != nil {
			if name := tierOf(p); name != "" {
				t = name
			}
		}
		byTier[t] += m
	}
	if total > 0 && rec != nil {
		after := total
		whole := s.Discounts
		if !carries && s.Customer != nil && s.Customer.Discount != nil {
			whole = []*stripeapi.Discount{s.Customer.Discount}
		}
		for _, d := range whole {
			if applies(d, policy, now) {
				after = discount(after, d, currency, rec)
			}
		}
		// A subscription discount spreads over its tiers in proportion.
		for t := range byTier {
			byTier[t] *= after / total
		}
		total = after
	}
	for t := range byTier {
		byTier[t] = major(byTier[t], currency)
	}
	return major(total, currency), byTier
}

package kpi

import (
	"sort"
	"strconv"
	"strings"
)

// currencies holds the ISO 4217 codes a KPI's unit may name for money,
// with their minor units (decimal places) and symbol. Amounts are always in
// the major unit (dollars, euros, yen); the minor units say how they are
// rounded and formatted: zero-decimal currencies such as JPY stay whole.
var currencies = map[string]struct {
	minor  int
	symbol string
}{
	"usd": {2, "$"}, "eur": {2, "€"}, "gbp": {2, "£"}, "jpy": {0, "¥"}, "chf": {2, "CHF "}, "cad": {2, "CA$"},
	"aud": {2, "A$"}, "nzd": {2, "NZ$"}, "sek": {2, "SEK "}, "nok": {2, "NOK "}, "dkk": {2, "DKK "}, "pln": {2, "PLN "},
	"czk": {2, "CZK "}, "huf": {2, "HUF "}, "inr": {2, "₹"}, "brl": {2, "R$"}, "mxn": {2, "MX$"}, "sgd": {2, "SGD "},
	"hkd": {2, "HK$"}, "cny": {2, "CN¥"}, "krw": {0, "₩"}, "zar": {2, "ZAR "}, "ils": {2, "₪"}, "try": {2, "TRY "},
	"uah": {2, "UAH "}, "ron": {2, "RON "}, "isk": {0, "ISK "}, "clp": {0, "CLP "}, "vnd": {0, "₫"}, "idr": {2, "IDR "},
	"php": {2, "₱"}, "thb": {2, "THB "}, "myr": {2, "MYR "}, "twd": {2, "NT$"}, "aed": {2, "AED "}, "sar": {2, "SAR "},
	"bhd": {3, "BHD "}, "jod": {3, "JOD "}, "kwd": {3, "KWD "}, "omr": {3, "OMR "}, "tnd": {3, "TND "},
	"bif": {0, "BIF "}, "djf": {0, "DJF "}, "gnf": {0, "GNF "}, "kmf": {0, "KMF "}, "mga": {0, "MGA "}, "pyg": {0, "PYG "},
	"rwf": {0, "RWF "}, "ugx": {0, "UGX "}, "vuv": {0, "VUV "}, "xaf": {0, "FCFA "}, "xof": {0, "CFA "}, "xpf": {0, "XPF "},
}

// Currency returns the ISO 4217 code of a money unit (usd, eur, jpy, …);
// ok is false for units that are not money.
func Currency(u Unit) (code string, ok bool) {
	_, ok = currencies[string(u)]
	return string(u), ok
}

// MinorUnits is the number of decimal places of a currency's minor unit by
// ISO 4217 (2 for USD, 0 for JPY, 3 for KWD); ok is false for an unknown
// code. Codes are case-insensitive.
func MinorUnits(code string) (int, bool) {
	c, ok := currencies[strings.ToLower(code)]
	return c.minor, ok
}

// MoneyUnits lists the money units, sorted.
func MoneyUnits() []Unit {
	out := make([]Unit, 0, len(currencies))
	for c := range currencies {
		out = append(out, Unit(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// formatMoney renders an amount with the currency's symbol and K/M for
// large amounts; below a thousand, with the currency's minor units.
func formatMoney(code string, v float64) string {
	c := currencies[code]
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	switch {
	case v >= 1e6:
		return sign + c.symbol + trimFloat(v/1e6, 2) + "M"
	case v >= 1e3:
		return sign + c.symbol + trimFloat(v/1e3, 2) + "K"
	case c.minor > 0 && v > 0 && v < 0.01:
		return sign + c.symbol + strconv.FormatFloat(v, 'g', 3, 64)
	}
	return sign + c.symbol + trimFloat(v, c.minor)
}

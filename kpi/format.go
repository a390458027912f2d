package kpi

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatValue renders a value in its unit for people: ratios as percent,
// durations in the largest fitting units, money with its currency's symbol,
// minor units, and K and M.
func FormatValue(u Unit, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if code, ok := Currency(u); ok {
		return formatMoney(code, v)
	}
	switch u {
	case UnitRatio:
		return trimFloat(v*100, 2) + "%"
	case UnitSeconds:
		return formatSeconds(v)
	case UnitPerSecond:
		return trimFloat(v, 2) + "/s"
	case UnitBytes:
		return trimFloat(v, 0) + " B"
	case UnitPoints:
		return trimFloat(v, 1) + " pts"
	}
	return trimFloat(v, 2)
}

func formatSeconds(v float64) string {
	abs := math.Abs(v)
	switch {
	case abs == 0:
		return "0s"
	case abs < 1:
		return trimFloat(v*1000, 1) + "ms"
	case abs < 60:
		return trimFloat(v, 2) + "s"
	case abs >= 24*3600*365/12*3: // three months and more read better in days
		return trimFloat(v/86400, 1) + "d"
	}
	// "4h0m0s" reads "4h", "1h30m0s" reads "1h30m".
	s := time.Duration(math.Round(v) * float64(time.Second)).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
		if strings.HasSuffix(s, "h0m") {
			s = strings.TrimSuffix(s, "0m")
		}
	}
	return s
}

func trimFloat(v float64, prec int) string {
	s := strconv.FormatFloat(v, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// DomainTitle renders a domain's snake_case name for people:
// "production_service" reads "Production service", and two-letter words are
// taken for acronyms ("ml_pipeline" reads "ML pipeline").
func DomainTitle(name string) string {
	words := strings.Split(name, "_")
	for i, w := range words {
		switch {
		case len(w) == 2:
			words[i] = strings.ToUpper(w)
		case i == 0 && w != "":
			words[i] = strings.ToUpper(w[:1]) + w[1:]
		}
	}
	return strings.Join(words, " ")
}

// FormatAttainment renders an attainment in percent to a tenth: 0.7733
// reads "77.3%".
func FormatAttainment(a float64) string {
	return strconv.FormatFloat(math.Round(a*1000)/10, 'f', -1, 64) + "%"
}

// TrendText renders a trend as an arrow and a word.
func TrendText(trend int) string {
	switch trend {
	case Improving:
		return "↑ improving"
	case Worsening:
		return "↓ worsening"
	}
	return "→ flat"
}

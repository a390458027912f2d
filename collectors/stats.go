package collectors

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/prometheus/common/model"
)

// Statistics the sources report. Each needs a non-empty population: a
// statistic over nothing has no value, and callers leave it out.

// Mean is the arithmetic mean.
func Mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// Median is the middle value; for an even count the mean of the two middle
// values.
func Median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// P95 is the nearest-rank 95th percentile: the value at rank ⌈0.95 n⌉.
func P95(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(math.Ceil(0.95 * float64(len(s))))
	return s[max(rank, 1)-1]
}

// ParseDuration reads a setting's duration (30s, 1h, 7d, 2w); empty gives
// def, and the duration must be positive.
func ParseDuration(s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := model.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("must be a positive duration (such as 7d or 720h), not %q", s)
	}
	return time.Duration(d), nil
}

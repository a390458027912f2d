// Package testclock is the wall clock of the tests. It is time.Now moved by
// KPI_TEST_CLOCK_SHIFT (a Go duration such as 87660h, ten years), so that
// the suite can be run as if it were another date: `make test-dates` runs
// the packages that evaluate and render dates that way. Code under test
// never reads it; tests pass it in wherever the code takes a clock.
package testclock

import (
	"fmt"
	"os"
	"time"
)

// EnvShift names the environment variable that moves the test clock.
const EnvShift = "KPI_TEST_CLOCK_SHIFT"

var shift = func() time.Duration {
	s := os.Getenv(EnvShift)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("%s=%q: %v", EnvShift, s, err))
	}
	return d
}()

// Shift is how far the test clock is moved from the wall clock.
func Shift() time.Duration { return shift }

// Now is the test clock's time: the wall clock moved by Shift.
func Now() time.Time { return time.Now().Add(shift) }

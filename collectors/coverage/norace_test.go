//go:build !race

package coverage

// raceSlowdown scales the time bounds of the tests under the race detector.
const raceSlowdown = 1

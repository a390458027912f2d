//go:build race

package coverage

// raceSlowdown scales the time bounds of the tests under the race detector,
// which runs code several times slower.
const raceSlowdown = 10

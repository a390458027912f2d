//go:build !race

package kpi

// raceSlowdown scales the time bounds of the tests under the race detector.
const raceSlowdown = 1

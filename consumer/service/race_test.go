//go:build race

package service_test

// raceSlowdown stretches the kill test's delays: under the race detector the
// consumer runs several times slower, and kills that always land before its
// first commit would test little.
const raceSlowdown = 3

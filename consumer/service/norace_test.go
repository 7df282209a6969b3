//go:build !race

package service_test

const raceSlowdown = 1

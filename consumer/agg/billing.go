package agg

import (
	"sort"
	"time"
)

// SampleInterval is the width of a bandwidth sample.
const SampleInterval = 5 * time.Minute

// BillingPercentile returns the 95th-percentile bandwidth of a billing
// period, the way transit is billed: sort the 5-minute samples, drop the
// highest 5% of them (rounded down), and bill the highest remaining one.
//
// slots is the number of 5-minute intervals in the period (SlotsInMonth);
// intervals missing from samples had no traffic and count as 0 bit/s, so a
// backend that was idle half the month is not billed on its busy half only.
// When samples holds more values than slots, slots is raised to len(samples).
// The function sorts a copy; samples is left as it is.
func BillingPercentile(samples []float64, slots int) float64 {
	if slots < len(samples) {
		slots = len(samples)
	}
	if slots == 0 {
		return 0
	}
	drop := slots * 5 / 100
	keep := slots - drop // the billed sample is the keep-th smallest
	missing := slots - len(samples)
	if keep <= missing {
		return 0 // the billed sample is one of the idle intervals
	}
	sorted := append([]float64(nil), samples...)
	sort.Float64s(sorted)
	// sorted, preceded by `missing` zeros, is the full sorted period.
	return sorted[keep-missing-1]
}

// MonthBounds returns the first instant of t's calendar month and of the
// next one, in UTC: billing months are UTC months.
func MonthBounds(t time.Time) (start, end time.Time) {
	t = t.UTC()
	start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// SlotsInMonth returns the number of 5-minute intervals in t's calendar
// month (8,064 for 28 days ... 8,928 for 31).
func SlotsInMonth(t time.Time) int {
	start, end := MonthBounds(t)
	return int(end.Sub(start) / SampleInterval)
}

// BitsPerSecond turns the bytes of one 5-minute sample into its average
// rate.
func BitsPerSecond(bytes uint64) float64 {
	return float64(bytes) * 8 / SampleInterval.Seconds()
}

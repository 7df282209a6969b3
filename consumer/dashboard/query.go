package dashboard

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Presets are the named time ranges.
var Presets = map[string]time.Duration{
	"1h":  time.Hour,
	"6h":  6 * time.Hour,
	"24h": 24 * time.Hour,
	"7d":  7 * 24 * time.Hour,
}

// MaxRange bounds a custom range: minute rows are kept 35 days by default.
const MaxRange = 62 * 24 * time.Hour

// maxPoints bounds a chart's points; longer ranges are summed into wider
// buckets (a week at 30 minutes is 336 points).
const maxPoints = 400

// steps are the bucket widths, in minutes.
var steps = []int{1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440}

// Range is a request's time range, minute-aligned, [From, To).
type Range struct {
	From, To time.Time
	Step     time.Duration
	Preset   string // "" for a custom range
}

// ParseRange reads range=1h|6h|24h|7d, or from and to (RFC 3339 or Unix
// seconds; to defaults to now). The default is the last hour. now is the
// current time.
func ParseRange(q url.Values, now time.Time) (Range, error) {
	end := now.UTC().Truncate(time.Minute).Add(time.Minute) // the current minute included
	var r Range
	from, to := q.Get("from"), q.Get("to")
	if from == "" && to == "" {
		p := q.Get("range")
		if p == "" {
			p = "1h"
		}
		d, ok := Presets[p]
		if !ok {
			if len(p) > maxParam {
				p = p[:maxParam] + "…"
			}
			return r, fmt.Errorf("range %q: want 1h, 6h, 24h or 7d, or from and to", p)
		}
		r = Range{From: end.Add(-d), To: end, Preset: p}
	} else {
		if from == "" {
			return r, fmt.Errorf("to without from")
		}
		f, err := parseTime(from)
		if err != nil {
			return r, fmt.Errorf("from: %w", err)
		}
		t := end
		if to != "" {
			if t, err = parseTime(to); err != nil {
				return r, fmt.Errorf("to: %w", err)
			}
		}
		r = Range{From: f.UTC().Truncate(time.Minute), To: t.UTC().Add(time.Minute - 1).Truncate(time.Minute)}
		if !r.To.After(r.From) {
			return r, fmt.Errorf("from %s is not before to %s", from, to)
		}
		if r.To.Sub(r.From) > MaxRange {
			return r, fmt.Errorf("range of %v is longer than %v", r.To.Sub(r.From), MaxRange)
		}
	}
	mins := int(r.To.Sub(r.From) / time.Minute)
	step := steps[len(steps)-1]
	for _, s := range steps {
		if mins/s <= maxPoints {
			step = s
			break
		}
	}
	r.Step = time.Duration(step) * time.Minute
	// Buckets start on multiples of the step, so a refresh a minute later
	// sums the same minutes into the same buckets.
	r.From = r.From.Truncate(r.Step)
	return r, nil
}

// Times outside [minTime, maxTime) are refused: no data lies there, and
// far ones overflow durations and MySQL's DATETIME.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// maxParam bounds the text of one parameter (an RFC 3339 time is 35 bytes
// at most): an error message quotes it.
const maxParam = 64

func parseTime(s string) (time.Time, error) {
	if len(s) > maxParam {
		return time.Time{}, fmt.Errorf("%.20q…: too long for a time", s)
	}
	t, err := time.Parse(time.RFC3339, s)
	if n, nerr := strconv.ParseInt(s, 10, 64); nerr == nil {
		if n < minTime.Unix() || n >= maxTime.Unix() {
			return time.Time{}, fmt.Errorf("%q: outside the years 1970 to 9998", s)
		}
		t, err = time.Unix(n, 0).UTC(), nil
	}
	if err != nil {
		return t, fmt.Errorf("%q: want RFC 3339 or Unix seconds", s)
	}
	if t.Before(minTime) || !t.Before(maxTime) {
		return time.Time{}, fmt.Errorf("%q: outside the years 1970 to 9998", s)
	}
	return t, nil
}

// MaxTopN is the longest top list /api/top gives.
const MaxTopN = 100

// ParseTopN reads /api/top's n (default 10, 1 to MaxTopN).
func ParseTopN(q url.Values) (int, error) {
	v := q.Get("n")
	if v == "" {
		return 10, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxTopN {
		if len(v) > maxParam {
			v = v[:maxParam] + "…"
		}
		return 0, fmt.Errorf("n %q: want 1 to %d", v, MaxTopN)
	}
	return n, nil
}

// Buckets returns the number of buckets of the range.
func (r Range) Buckets() int {
	return int((r.To.Sub(r.From) + r.Step - 1) / r.Step)
}

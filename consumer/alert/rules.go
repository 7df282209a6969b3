// Package alert holds the alert rules and the evaluator that runs them
// every minute inside `consumer run`.
//
// The rules (Rules.Evaluate) are pure: they read per-minute request and 5xx
// counts per backend and the alerts already firing, and return which
// alerts fire and which resolve. The evaluator reads those counts from
// MySQL, stores the transitions there and hands the notices to the
// notifiers. Because every decision is taken again from the stored minutes
// and the stored firing alerts, a restart or a change of evaluator (another
// consumer taking the lock) neither loses nor repeats an alert.
//
// Flapping is damped on both edges: an alert fires after the rule's Minutes
// consecutive bad minutes and resolves after ResolveMinutes consecutive good
// ones.
package alert

import (
	"math"
	"sort"
	"time"

	"github.com/trafficlab/trafficlab/consumer/config"
)

// Rule names an alert rule.
type Rule string

// The rules.
const (
	TrafficHigh   Rule = "traffic_high"
	TrafficLow    Rule = "traffic_low"
	NoData        Rule = "no_data"
	ErrorRatio    Rule = "error_ratio"
	BackendSilent Rule = "backend_silent"
)

// Total is the scope of the sum over all backends.
const Total = ""

// Week is how far back the seasonal baseline looks.
const Week = 7 * 24 * time.Hour

const (
	// seasonalHalfWidth minutes either side of the same minute last week
	// are averaged, so one odd minute a week ago does not make the baseline.
	seasonalHalfWidth = 2
	// movingWindow is the span of the moving-average baseline.
	movingWindow = time.Hour
)

// Point is one minute of one backend.
type Point struct {
	Requests float64
	Errors   float64 // 5xx responses
}

// Data is what the rules read. A minute missing from a backend's map had
// no request.
type Data struct {
	Backends map[string]map[time.Time]Point
	// FirstSeen is each backend's first stored minute: the seasonal
	// baseline is used only when it is at least a week old.
	FirstSeen map[string]time.Time
}

func (d *Data) point(scope string, m time.Time) Point {
	if scope != Total {
		return d.Backends[scope][m]
	}
	var p Point
	for _, s := range d.Backends {
		q := s[m]
		p.Requests += q.Requests
		p.Errors += q.Errors
	}
	return p
}

func (d *Data) firstSeen(scope string) time.Time {
	if scope != Total {
		return d.FirstSeen[scope]
	}
	var first time.Time
	for _, t := range d.FirstSeen {
		if first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// Key identifies an alert: one rule on one scope (a backend, or Total).
type Key struct {
	Rule  Rule
	Scope string
}

// Firing is an alert that has fired and not resolved.
type Firing struct {
	Key
	Start    time.Time // first bad minute
	Baseline float64   // the baseline when it fired
}

// Transition is an alert firing (Fire) or resolving.
type Transition struct {
	Key
	Fire bool
	// Start is the first bad minute (firing); End is the first minute of
	// the good run that resolved it.
	Start, End time.Time
	// Value and Baseline are averages over the minutes that decided: for
	// traffic rules requests per minute, for error_ratio the 5xx share and
	// the threshold, for the others requests per minute and the expected.
	Value, Baseline float64
}

// Rules evaluates the configured rules.
type Rules struct {
	c config.Alerts
}

// NewRules returns the configured rules.
func NewRules(c config.Alerts) *Rules { return &Rules{c: c} }

// span is the most minutes a decision looks at.
func (r *Rules) span() int {
	n := r.c.ResolveMinutes
	for _, m := range []int{r.c.TrafficHigh.Minutes, r.c.TrafficLow.Minutes, r.c.NoData.Minutes, r.c.ErrorRatio.Minutes, r.c.BackendSilent.Minutes} {
		n = max(n, m)
	}
	return n
}

// Windows returns the minutes Evaluate(last) reads: the recent window and
// the same span one week earlier, each [from, to).
func (r *Rules) Windows(last time.Time) (recent, weekAgo [2]time.Time) {
	last = last.UTC().Truncate(time.Minute)
	from := last.Add(-time.Duration(r.span()-1)*time.Minute - movingWindow)
	recent = [2]time.Time{from, last.Add(time.Minute)}
	wFrom := last.Add(-Week - time.Duration(r.span()-1+seasonalHalfWidth)*time.Minute)
	weekAgo = [2]time.Time{wFrom, last.Add(-Week + time.Duration(seasonalHalfWidth+1)*time.Minute)}
	return recent, weekAgo
}

// baseline returns the expected requests per minute at minute m: the same
// minutes one week earlier when the scope has that history, else the mean
// of the hour before from (the start of the run of minutes being judged,
// so the run itself does not drag its own baseline along).
func (r *Rules) baseline(d *Data, scope string, m, from time.Time) (float64, bool) {
	first := d.firstSeen(scope)
	if first.IsZero() {
		return 0, false
	}
	if !first.After(m.Add(-Week - seasonalHalfWidth*time.Minute)) {
		var sum float64
		for i := -seasonalHalfWidth; i <= seasonalHalfWidth; i++ {
			sum += d.point(scope, m.Add(-Week+time.Duration(i)*time.Minute)).Requests
		}
		return sum / (2*seasonalHalfWidth + 1), true
	}
	start := from.Add(-movingWindow)
	if first.After(start) {
		start = first
	}
	n := int(from.Sub(start) / time.Minute)
	if n < int(r.c.MinHistory/time.Minute) {
		return 0, false
	}
	var sum float64
	for t := start; t.Before(from); t = t.Add(time.Minute) {
		sum += d.point(scope, t).Requests
	}
	return sum / float64(n), true
}

// judge says whether minute m is bad for rule k, with the value and the
// baseline it compared. from is the first minute of the run being judged;
// open is the firing alert when k is firing (its stored baseline stands in
// for the moving average, which the alert's own minutes would skew).
func (r *Rules) judge(d *Data, k Key, m, from time.Time, open *Firing) (bad bool, value, base float64) {
	p := d.point(k.Scope, m)
	v := p.Requests
	switch k.Rule {
	case TrafficHigh, TrafficLow:
		b, ok := r.baseline(d, k.Scope, m, from)
		if open != nil && !r.seasonal(d, k.Scope, m) {
			b, ok = open.Baseline, true
		}
		if !ok {
			return false, v, 0
		}
		if k.Rule == TrafficHigh {
			c := r.c.TrafficHigh
			return v >= c.Floor && v > c.Factor*b, v, b
		}
		c := r.c.TrafficLow
		return b >= c.Floor && v < c.Factor*b, v, b
	case NoData:
		b, ok := r.baseline(d, k.Scope, m, from)
		if open != nil {
			return v == 0, v, open.Baseline // resolves when lines come back
		}
		return ok && v == 0 && b >= r.c.NoData.Floor, v, b
	case ErrorRatio:
		c := r.c.ErrorRatio
		if v < c.MinRequests || v == 0 {
			return false, 0, c.Threshold
		}
		ratio := p.Errors / v
		return ratio > c.Threshold, ratio, c.Threshold
	case BackendSilent:
		others := d.point(Total, m).Requests - v
		if open != nil {
			return v == 0, v, others
		}
		return v == 0 && others >= r.c.BackendSilent.MinOthers && r.seenBefore(d, k.Scope, from), v, others
	}
	return false, 0, 0
}

// seasonal says whether the week-ago baseline applies at m.
func (r *Rules) seasonal(d *Data, scope string, m time.Time) bool {
	first := d.firstSeen(scope)
	return !first.IsZero() && !first.After(m.Add(-Week-seasonalHalfWidth*time.Minute))
}

// seenBefore says whether the backend got requests in the hour before
// from: a backend retired for good stops being expected after an hour.
func (r *Rules) seenBefore(d *Data, backend string, from time.Time) bool {
	for t := from.Add(-movingWindow); t.Before(from); t = t.Add(time.Minute) {
		if d.Backends[backend][t].Requests > 0 {
			return true
		}
	}
	return false
}

func (r *Rules) enabled(rule Rule) (minutes int, on bool) {
	switch rule {
	case TrafficHigh:
		return r.c.TrafficHigh.Minutes, r.c.TrafficHigh.Enabled
	case TrafficLow:
		return r.c.TrafficLow.Minutes, r.c.TrafficLow.Enabled
	case NoData:
		return r.c.NoData.Minutes, r.c.NoData.Enabled
	case ErrorRatio:
		return r.c.ErrorRatio.Minutes, r.c.ErrorRatio.Enabled
	case BackendSilent:
		return r.c.BackendSilent.Minutes, r.c.BackendSilent.Enabled
	}
	return 0, false
}

// keys returns the alerts to judge: traffic and error rules per backend and
// in total, no_data in total (a backend without lines is backend_silent),
// backend_silent per backend; plus every open alert, so an alert whose
// backend vanished from the data still resolves.
func (r *Rules) keys(d *Data, open map[Key]Firing) []Key {
	backends := make([]string, 0, len(d.Backends))
	for b := range d.Backends {
		backends = append(backends, b)
	}
	sort.Strings(backends)
	var out []Key
	seen := map[Key]bool{}
	add := func(k Key) {
		if _, on := r.enabled(k.Rule); on && !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	for _, scope := range append([]string{Total}, backends...) {
		add(Key{TrafficHigh, scope})
		add(Key{TrafficLow, scope})
		add(Key{ErrorRatio, scope})
		if scope == Total {
			add(Key{NoData, scope})
		} else {
			add(Key{BackendSilent, scope})
		}
	}
	var rest []Key
	for k := range open {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Slice(rest, func(i, j int) bool {
		if rest[i].Rule != rest[j].Rule {
			return rest[i].Rule < rest[j].Rule
		}
		return rest[i].Scope < rest[j].Scope
	})
	for _, k := range rest {
		seen[k] = true
		out = append(out, k)
	}
	return out
}

// Evaluate judges every rule at minute last (the newest complete minute)
// and returns the alerts that fire and the firing ones that resolve.
func (r *Rules) Evaluate(d *Data, last time.Time, open map[Key]Firing) []Transition {
	last = last.UTC().Truncate(time.Minute)
	var out []Transition
	for _, k := range r.keys(d, open) {
		if f, ok := open[k]; ok {
			n := r.c.ResolveMinutes
			from := last.Add(-time.Duration(n-1) * time.Minute)
			if !from.After(f.Start) {
				continue
			}
			good := true
			var vs, bs float64
			for m := from; !m.After(last); m = m.Add(time.Minute) {
				bad, v, b := r.judge(d, k, m, f.Start, &f)
				if bad {
					good = false
					break
				}
				vs, bs = vs+v, bs+b
			}
			if good {
				out = append(out, Transition{Key: k, End: from, Start: f.Start, Value: vs / float64(n), Baseline: bs / float64(n)})
			}
			continue
		}
		n, on := r.enabled(k.Rule)
		if !on {
			continue
		}
		from := last.Add(-time.Duration(n-1) * time.Minute)
		all := true
		var vs, bs float64
		for m := from; !m.After(last); m = m.Add(time.Minute) {
			bad, v, b := r.judge(d, k, m, from, nil)
			if !bad {
				all = false
				break
			}
			vs, bs = vs+v, bs+b
		}
		if all {
			out = append(out, Transition{Key: k, Fire: true, Start: from, Value: round(vs / float64(n)), Baseline: round(bs / float64(n))})
		}
	}
	return out
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }

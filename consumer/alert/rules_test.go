package alert

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/config"
)

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// series builds per-minute points of backends from a function of the
// minute index (0 = t0) over n minutes.
type series struct {
	d *Data
}

func newSeries() *series {
	return &series{d: &Data{Backends: map[string]map[time.Time]Point{}, FirstSeen: map[string]time.Time{}}}
}

func (s *series) fill(backend string, from, n int, f func(i int) Point) *series {
	if s.d.Backends[backend] == nil {
		s.d.Backends[backend] = map[time.Time]Point{}
	}
	for i := from; i < from+n; i++ {
		m := t0.Add(time.Duration(i) * time.Minute)
		p := f(i)
		if p.Requests > 0 {
			s.d.Backends[backend][m] = p
		} else {
			delete(s.d.Backends[backend], m)
		}
		if first, ok := s.d.FirstSeen[backend]; !ok || m.Before(first) {
			s.d.FirstSeen[backend] = m
		}
	}
	return s
}

// event is a transition seen by run, at the minute index it was decided.
type event struct {
	at int
	Transition
}

func (e event) String() string {
	verb := "resolve"
	if e.Fire {
		verb = "fire"
	}
	scope := e.Scope
	if scope == Total {
		scope = "total"
	}
	return fmt.Sprintf("%d:%s %s/%s", e.at, verb, e.Rule, scope)
}

// run evaluates minute by minute from minute index from to to (inclusive),
// as the evaluator does, keeping the open alerts.
func run(r *Rules, d *Data, from, to int) []event {
	open := map[Key]Firing{}
	var out []event
	for i := from; i <= to; i++ {
		last := t0.Add(time.Duration(i) * time.Minute)
		for _, tr := range r.Evaluate(d, last, open) {
			out = append(out, event{i, tr})
			if tr.Fire {
				open[tr.Key] = Firing{Key: tr.Key, Start: tr.Start, Baseline: tr.Baseline}
			} else {
				delete(open, tr.Key)
			}
		}
	}
	return out
}

func steady(level float64, noise float64, seed uint64) func(int) Point {
	rng := rand.New(rand.NewPCG(seed, 1))
	return func(int) Point {
		v := level * (1 + noise*(rng.Float64()*2-1))
		return Point{Requests: float64(int(v)), Errors: float64(int(v * 0.01))}
	}
}

func TestRules(t *testing.T) {
	def := config.DefaultAlerts()
	const hour = 60
	type check struct {
		name string
		// build returns the data; evaluation runs over minute indexes
		// [from, to].
		build    func() *series
		from, to int
		// want lists the transitions in order as "minute:fire|resolve
		// rule/scope"; a minute given as "~a-b" may fall anywhere in [a, b].
		want []string
	}
	for _, tc := range []check{
		{
			// 300 req/min per backend for two hours, then 10% for 10
			// minutes from minute 120, then back.
			name: "drop to 10% fires traffic_low and resolves after recovery",
			build: func() *series {
				s := newSeries()
				for i, b := range []string{"web-1", "web-2", "web-3"} {
					lvl := steady(100, 0.1, uint64(i))
					s.fill(b, 0, 180, func(i int) Point {
						p := lvl(i)
						if i >= 120 && i < 130 {
							p.Requests = float64(int(p.Requests / 10))
							p.Errors = 0
						}
						return p
					})
				}
				return s
			},
			from: 2 * hour, to: 3*hour - 1,
			want: []string{
				"124:fire traffic_low/total", "124:fire traffic_low/web-1", "124:fire traffic_low/web-2", "124:fire traffic_low/web-3",
				"132:resolve traffic_low/total", "132:resolve traffic_low/web-1", "132:resolve traffic_low/web-2", "132:resolve traffic_low/web-3",
			},
		},
		{
			name: "5x spike fires traffic_high",
			build: func() *series {
				s := newSeries()
				lvl := steady(200, 0.05, 7)
				s.fill("web-1", 0, 150, func(i int) Point {
					p := lvl(i)
					if i >= 100 && i < 115 {
						p.Requests *= 5
					}
					return p
				})
				return s
			},
			from: hour, to: 149,
			want: []string{
				"104:fire traffic_high/total", "104:fire traffic_high/web-1",
				"117:resolve traffic_high/total", "117:resolve traffic_high/web-1",
			},
		},
		{
			// A quiet night around 8 req/min that wobbles from 1 to 15,
			// with a 5x burst of 40: below both floors, nothing pages.
			name: "steady night below the floor fires nothing",
			build: func() *series {
				s := newSeries()
				lvl := steady(8, 0.85, 3)
				s.fill("web-1", 0, 6*hour, func(i int) Point {
					p := lvl(i)
					if p.Requests < 1 {
						p.Requests = 1
					}
					if i >= 200 && i < 210 {
						p.Requests = 40
					}
					p.Errors = 0
					return p
				})
				return s
			},
			from: hour, to: 6*hour - 1,
			want: nil,
		},
		{
			name: "one backend going silent fires backend_silent",
			build: func() *series {
				s := newSeries()
				for i, b := range []string{"web-1", "web-2", "web-3"} {
					lvl := steady(100, 0.1, uint64(10+i))
					s.fill(b, 0, 140, func(i int) Point {
						if b == "web-2" && i >= 90 && i < 120 {
							return Point{}
						}
						return lvl(i)
					})
				}
				return s
			},
			from: hour, to: 139,
			want: []string{
				// web-2 at zero is also far below its own baseline.
				"92:fire backend_silent/web-2", "94:fire traffic_low/web-2",
				"122:resolve traffic_low/web-2", "122:resolve backend_silent/web-2",
			},
		},
		{
			name: "all lines stop: no_data and traffic_low",
			build: func() *series {
				s := newSeries()
				lvl := steady(50, 0.1, 5)
				s.fill("web-1", 0, 100, func(i int) Point {
					if i >= 80 {
						return Point{}
					}
					return lvl(i)
				})
				return s
			},
			from: hour, to: 99,
			want: []string{"82:fire no_data/total", "84:fire traffic_low/total", "84:fire traffic_low/web-1"},
		},
		{
			name: "5xx share above the threshold fires error_ratio",
			build: func() *series {
				s := newSeries()
				lvl := steady(100, 0.1, 9)
				s.fill("web-1", 0, 120, func(i int) Point {
					p := lvl(i)
					if i >= 70 && i < 90 {
						p.Errors = p.Requests * 0.2
					}
					return p
				})
				return s
			},
			from: hour, to: 119,
			want: []string{"74:fire error_ratio/total", "74:fire error_ratio/web-1", "92:resolve error_ratio/total", "92:resolve error_ratio/web-1"},
		},
		{
			// One bad minute among good ones never fires; it takes
			// Minutes in a row.
			name: "flapping is damped",
			build: func() *series {
				s := newSeries()
				lvl := steady(100, 0.05, 11)
				s.fill("web-1", 0, 120, func(i int) Point {
					p := lvl(i)
					if i >= 70 && i < 100 && i%3 == 0 {
						p.Requests = 5
					}
					return p
				})
				return s
			},
			from: hour, to: 119,
			want: nil,
		},
		{
			// Last week the same hour had a 5x peak (a daily campaign);
			// this week's identical peak is no spike, and the
			// moving average alone would have paged.
			name: "same minutes last week are the baseline",
			build: func() *series {
				s := newSeries()
				lvl := steady(200, 0.05, 13)
				week := int(Week / time.Minute)
				peak := func(i int) Point {
					p := lvl(i)
					if j := i % week; j >= 100 && j < 130 {
						p.Requests *= 5
					}
					return p
				}
				s.fill("web-1", 0, 200, peak)
				s.fill("web-1", week, 200, peak)
				return s
			},
			from: int(Week/time.Minute) + hour, to: int(Week/time.Minute) + 199,
			want: nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRules(def)
			got := run(r, tc.build().d, tc.from, tc.to)
			var gs []string
			for _, e := range got {
				gs = append(gs, e.String())
			}
			if strings.Join(gs, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("transitions:\n%s\nwant:\n%s", strings.Join(gs, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestFireWithinConfiguredMinutes: the drop is noticed after exactly the
// rule's minutes, whatever they are configured to.
func TestFireWithinConfiguredMinutes(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		c := config.DefaultAlerts()
		c.TrafficLow.Minutes = n
		s := newSeries()
		s.fill("web-1", 0, 100, func(i int) Point {
			if i >= 80 {
				return Point{Requests: 10}
			}
			return Point{Requests: 100}
		})
		var fired int = -1
		for _, e := range run(NewRules(c), s.d, 60, 99) {
			if e.Fire && e.Rule == TrafficLow && e.Scope == Total {
				fired = e.at
				if e.Start != t0.Add(80*time.Minute) || e.Value != 10 || e.Baseline != 100 {
					t.Errorf("minutes %d: fired %+v; want start at minute 80, value 10, baseline 100", n, e.Transition)
				}
			}
		}
		if fired != 80+n-1 {
			t.Errorf("minutes %d: traffic_low fired at minute %d, want %d", n, fired, 80+n-1)
		}
	}
}

// TestNoBaselineAtStart: a consumer with a few minutes of history has no
// baseline and raises no traffic alert.
func TestNoBaselineAtStart(t *testing.T) {
	s := newSeries()
	s.fill("web-1", 0, 12, func(i int) Point {
		if i >= 5 {
			return Point{Requests: 1000}
		}
		return Point{Requests: 100}
	})
	if got := run(NewRules(config.DefaultAlerts()), s.d, 0, 11); len(got) != 0 {
		t.Errorf("transitions %v, want none", got)
	}
}

func TestWindowsCoverEvaluation(t *testing.T) {
	r := NewRules(config.DefaultAlerts())
	last := t0.Add(10 * 24 * time.Hour)
	recent, week := r.Windows(last)
	if !recent[1].Equal(last.Add(time.Minute)) || recent[0].After(last.Add(-movingWindow-time.Duration(r.span()-1)*time.Minute)) {
		t.Errorf("recent window %v", recent)
	}
	if week[0].After(last.Add(-Week-time.Duration(r.span()-1+seasonalHalfWidth)*time.Minute)) || week[1].Before(last.Add(-Week+3*time.Minute)) {
		t.Errorf("week-ago window %v", week)
	}
}

// TestLabSettings: with short settings (as for the lab's end-to-end test),
// a few minutes of light traffic that then stops fires no_data after its
// configured minute.
func TestLabSettings(t *testing.T) {
	c := config.DefaultAlerts()
	c.MinHistory = 2 * time.Minute
	c.NoData.Minutes, c.NoData.Floor = 1, 0.5
	c.TrafficLow.Minutes, c.TrafficLow.Floor = 2, 1
	s := newSeries()
	s.fill("web-1", 0, 10, func(i int) Point {
		if i >= 4 {
			return Point{}
		}
		return Point{Requests: 6}
	})
	var got []string
	for _, e := range run(NewRules(c), s.d, 0, 9) {
		got = append(got, e.String())
	}
	want := []string{"4:fire no_data/total", "5:fire traffic_low/total", "5:fire traffic_low/web-1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("transitions %v, want %v", got, want)
	}
}

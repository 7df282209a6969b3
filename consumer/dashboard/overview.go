package dashboard

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/store"
)

// StatusNames are the status classes in the API's order.
var StatusNames = []string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

// statusIndex maps StatusNames to agg.Minute.Status indexes.
var statusIndex = []int{1, 2, 3, 4, 5, 0}

// Overview is the answer of /api/overview.
type Overview struct {
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	StepSeconds int       `json:"step_seconds"`
	Preset      string    `json:"preset,omitempty"`
	// Times are the bucket starts of every series below.
	Times []time.Time `json:"times"`
	// Requests per minute (a bucket's requests divided by its minutes).
	Requests RateSeries `json:"requests"`
	// Status holds requests per minute per status class.
	Status    map[string]Values `json:"status"`
	Bandwidth Bandwidth         `json:"bandwidth"`
	Totals    Totals            `json:"totals"`
	Backends  []string          `json:"backends"`
}

// Values is a series; a missing value (NaN) is null in JSON.
type Values []float64

// MarshalJSON writes NaN as null.
func (v Values) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 8*len(v)+2)
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			b = append(b, "null"...)
			continue
		}
		b = strconv.AppendFloat(b, math.Round(f*1000)/1000, 'f', -1, 64)
	}
	return append(b, ']'), nil
}

// RateSeries is a series in total and per backend.
type RateSeries struct {
	Total    Values            `json:"total"`
	Backends map[string]Values `json:"backends"`
}

// Bandwidth is the outgoing bandwidth in bit/s over buckets of at least
// five minutes (the samples' width), and the month's 95th percentile.
type Bandwidth struct {
	StepSeconds int         `json:"step_seconds"`
	Times       []time.Time `json:"times"`
	OutBPS      RateSeries  `json:"out_bps"`
	// P95Month is the month (UTC, of the range's end) the percentile bills.
	P95Month    string             `json:"p95_month"`
	P95BPS      float64            `json:"p95_bps"`
	P95Backends map[string]float64 `json:"p95_backends"`
}

// Totals are the range's sums.
type Totals struct {
	Requests   uint64            `json:"requests"`
	BytesOut   uint64            `json:"bytes_out"`
	BytesIn    uint64            `json:"bytes_in"`
	Status     map[string]uint64 `json:"status"`
	ErrorRatio float64           `json:"error_ratio"` // 5xx share
	Backends   map[string]uint64 `json:"backends"`    // requests
}

// overview computes the Overview of a range: three queries, the minutes
// bucketed by the server, the 5-minute samples, the month's samples.
func overview(ctx context.Context, st *store.Store, r Range) (*Overview, error) {
	buckets, err := st.Buckets(ctx, r.From, r.To, r.Step)
	if err != nil {
		return nil, err
	}
	n := r.Buckets()
	o := &Overview{From: r.From, To: r.To, StepSeconds: int(r.Step.Seconds()), Preset: r.Preset,
		Times:    make([]time.Time, n),
		Requests: RateSeries{Total: make(Values, n), Backends: map[string]Values{}},
		Status:   map[string]Values{},
		Totals:   Totals{Status: map[string]uint64{}, Backends: map[string]uint64{}},
	}
	for i := range o.Times {
		o.Times[i] = r.From.Add(time.Duration(i) * r.Step)
	}
	for _, name := range StatusNames {
		o.Status[name] = make(Values, n)
		o.Totals.Status[name] = 0
	}
	perMin := r.Step.Minutes()
	for _, b := range buckets {
		if b.Index < 0 || b.Index >= n {
			continue
		}
		s := o.Requests.Backends[b.Backend]
		if s == nil {
			s = make(Values, n)
			o.Requests.Backends[b.Backend] = s
		}
		rate := float64(b.Requests) / perMin
		s[b.Index] += rate
		o.Requests.Total[b.Index] += rate
		for i, name := range StatusNames {
			c := b.Status[statusIndex[i]]
			o.Status[name][b.Index] += float64(c) / perMin
			o.Totals.Status[name] += c
		}
		o.Totals.Requests += b.Requests
		o.Totals.BytesOut += b.BytesOut
		o.Totals.BytesIn += b.BytesIn
		o.Totals.Backends[b.Backend] += b.Requests
	}
	// The current bucket is still filling: drawn, it would look like a
	// drop. Its requests count in the totals, not in the series.
	now := time.Now()
	for i, t := range o.Times {
		if !t.Add(r.Step).After(now) {
			continue
		}
		o.Requests.Total[i] = math.NaN()
		for _, s := range o.Requests.Backends {
			s[i] = math.NaN()
		}
		for _, s := range o.Status {
			s[i] = math.NaN()
		}
	}
	if o.Totals.Requests > 0 {
		o.Totals.ErrorRatio = float64(o.Totals.Status["5xx"]) / float64(o.Totals.Requests)
	}
	for b := range o.Requests.Backends {
		o.Backends = append(o.Backends, b)
	}
	sort.Strings(o.Backends)
	if err := bandwidth(ctx, st, r, o, buckets); err != nil {
		return nil, err
	}
	return o, nil
}

// bandwidth fills o.Bandwidth. When its buckets are the overview's (steps
// of 5 minutes and more), their bytes are the buckets' (the samples are
// sums of the same minutes); else it reads the 5-minute samples.
func bandwidth(ctx context.Context, st *store.Store, r Range, o *Overview, buckets []store.Bucket) error {
	step := max(r.Step, agg.SampleInterval)
	from := r.From.Truncate(step)
	n := int((r.To.Sub(from) + step - 1) / step)
	bw := &o.Bandwidth
	bw.StepSeconds = int(step.Seconds())
	bw.Times = make([]time.Time, n)
	for i := range bw.Times {
		bw.Times[i] = from.Add(time.Duration(i) * step)
	}
	bw.OutBPS = RateSeries{Total: make(Values, n), Backends: map[string]Values{}}
	var samples []store.BandwidthSample
	if step == r.Step && from.Equal(r.From) {
		for _, b := range buckets {
			samples = append(samples, store.BandwidthSample{Start: from.Add(time.Duration(b.Index) * step), Backend: b.Backend, BytesOut: b.BytesOut})
		}
	} else {
		var err error
		if samples, err = st.Bandwidth(ctx, from, r.To); err != nil {
			return err
		}
	}
	// A bucket's rate is its bytes over its whole width: the mean rate.
	secs := step.Seconds()
	for _, s := range samples {
		i := int(s.Start.Sub(from) / step)
		if i < 0 || i >= n {
			continue
		}
		v := float64(s.BytesOut) * 8 / secs
		be := bw.OutBPS.Backends[s.Backend]
		if be == nil {
			be = make(Values, n)
			bw.OutBPS.Backends[s.Backend] = be
		}
		be[i] += v
		bw.OutBPS.Total[i] += v
	}
	// The current, unfinished bucket would show as a dip: leave it out.
	now := time.Now()
	for i, t := range bw.Times {
		if t.Add(step).After(now) {
			bw.OutBPS.Total[i] = math.NaN()
			for _, be := range bw.OutBPS.Backends {
				be[i] = math.NaN()
			}
		}
	}
	bill, err := st.MonthlyPercentile(ctx, r.To.Add(-time.Second))
	if err != nil {
		return fmt.Errorf("95th percentile: %w", err)
	}
	bw.P95Month = bill.Month.Format("2006-01")
	bw.P95BPS = bill.Total
	bw.P95Backends = bill.PerBackend
	return nil
}

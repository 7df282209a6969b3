package agg

import (
	"fmt"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/axiomhq/hyperloglog"
)

// Sizes of the bounded parts of a Minute.
const (
	// TopCapacity is how many keys each top list tracks in memory; with
	// space-saving, every key above 1/TopCapacity of a minute's requests is
	// among them.
	TopCapacity = 100
	// TopStored is how many of them are written to MySQL per minute and
	// backend: enough for a dashboard's top 10 after merging minutes, while
	// keeping rows small.
	TopStored = 25
	// TopRollupStored is how many keys the per-hour and per-day summaries
	// keep: the dashboard's largest top list.
	TopRollupStored = 100
	// TopRollupCapacity is how many keys a summary tracks while merging.
	TopRollupCapacity = 2 * TopRollupStored
	// latencyAccuracy is the relative accuracy of the latency sketch: a
	// reported p99 is within 1% of a request time that was really observed.
	latencyAccuracy = 0.01
	// latencyMaxBins bounds the latency sketch; 1% bins cover 1 ms to an hour
	// in about 1,100 bins, and if ever exceeded the lowest bins collapse, which
	// only blurs the fastest requests.
	latencyMaxBins = 2048
)

// StatusClasses is the number of status counters: index 0 counts statuses
// outside 100..599 (or missing), 1..5 count 1xx..5xx.
const StatusClasses = 6

// Minute is the traffic of one backend in one minute. Counters are exact;
// unique visitors (HyperLogLog), request-time percentiles (DDSketch) and the
// top lists (space-saving) are mergeable sketches, so minutes aggregated by
// different partitions, processes or flushes combine without losing
// accuracy beyond the sketches' own.
type Minute struct {
	Requests   uint64
	BytesOut   uint64 // $bytes_sent, headers included
	BytesIn    uint64 // $request_length, headers included
	Status     [StatusClasses]uint64
	Visitors   *hyperloglog.Sketch // client addresses
	Latency    *ddsketch.DDSketch  // $request_time in seconds
	TopURIs    *TopK
	TopClients *TopK
}

// NewMinute returns an empty Minute.
func NewMinute() *Minute {
	return &Minute{
		Visitors:   hyperloglog.New14(),
		Latency:    newLatencySketch(),
		TopURIs:    NewTopK(TopCapacity),
		TopClients: NewTopK(TopCapacity),
	}
}

func newLatencySketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(latencyAccuracy, latencyMaxBins)
	if err != nil {
		panic(err) // only for an invalid accuracy constant
	}
	return s
}

func latencyStore() store.Store { return store.NewCollapsingLowestDenseStore(latencyMaxBins) }

// Merge adds o into m.
func (m *Minute) Merge(o *Minute) error {
	m.Requests += o.Requests
	m.BytesOut += o.BytesOut
	m.BytesIn += o.BytesIn
	for i := range m.Status {
		m.Status[i] += o.Status[i]
	}
	if err := m.Visitors.Merge(o.Visitors); err != nil {
		return fmt.Errorf("merge visitors: %w", err)
	}
	if err := m.Latency.MergeWith(o.Latency); err != nil {
		return fmt.Errorf("merge latency: %w", err)
	}
	m.TopURIs.Merge(o.TopURIs)
	m.TopClients.Merge(o.TopClients)
	return nil
}

// Quantiles returns the request-time quantiles p50, p95 and p99; ok is false
// when the minute has no request time.
func (m *Minute) Quantiles() (p50, p95, p99 time.Duration, ok bool) {
	if m.Latency.IsEmpty() {
		return 0, 0, 0, false
	}
	q, err := m.Latency.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99})
	if err != nil {
		return 0, 0, 0, false
	}
	d := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)).Round(time.Microsecond) }
	return d(q[0]), d(q[1]), d(q[2]), true
}

// EncodeVisitors serializes the visitors sketch.
func (m *Minute) EncodeVisitors() ([]byte, error) {
	b, err := m.Visitors.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode visitors: %w", err)
	}
	return b, nil
}

// EncodeLatency serializes the latency sketch (self-describing: the index
// mapping is included, so a later accuracy change still decodes old rows).
func (m *Minute) EncodeLatency() []byte {
	var b []byte
	m.Latency.Encode(&b, false)
	return b
}

// DecodeMinuteSketches rebuilds the sketches of a stored minute.
func DecodeMinuteSketches(m *Minute, visitors, latency, topURIs, topClients []byte) error {
	v := hyperloglog.New14()
	if len(visitors) > 0 {
		if err := v.UnmarshalBinary(visitors); err != nil {
			return fmt.Errorf("decode visitors: %w", err)
		}
	}
	l := newLatencySketch()
	if len(latency) > 0 {
		d, err := ddsketch.DecodeDDSketch(latency, latencyStore, nil)
		if err != nil {
			return fmt.Errorf("decode latency: %w", err)
		}
		if err := l.MergeWith(d); err != nil {
			return fmt.Errorf("decode latency: %w", err)
		}
	}
	u, err := UnmarshalTopK(topURIs, TopCapacity)
	if err != nil {
		return fmt.Errorf("uris: %w", err)
	}
	c, err := UnmarshalTopK(topClients, TopCapacity)
	if err != nil {
		return fmt.Errorf("clients: %w", err)
	}
	m.Visitors, m.Latency, m.TopURIs, m.TopClients = v, l, u, c
	return nil
}

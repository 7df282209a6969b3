// Package agg turns parsed access-log lines into the aggregates trafficlab
// stores: per minute and backend, request and byte counters, status classes,
// unique visitors, request-time percentiles and top lists; probe sightings;
// and counts of rejected lines with a bounded sample of them.
//
// An Aggregator is fed one input (a filebeat event or a raw line) at a time
// and fills a Batch; Take hands the Batch over and starts a new one. Batches
// merge, so the partitions of a topic are aggregated independently and
// combined when they are written.
package agg

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trafficlab/trafficlab/consumer/dedup"
	"github.com/trafficlab/trafficlab/consumer/nginxlog"
)

// Key identifies a Minute: its start in Unix seconds (UTC) and the backend.
type Key struct {
	Minute  int64
	Backend string
}

// Time returns the start of the key's minute in UTC.
func (k Key) Time() time.Time { return time.Unix(k.Minute, 0).UTC() }

// NoBackend is the backend of raw lines, which carry no shipping host.
const NoBackend = "-"

// MaxBackend bounds a backend name (it is part of MySQL keys).
const MaxBackend = 255

// Probe is what a batch saw of one probe id.
type Probe struct {
	FirstSeen time.Time // the earliest line time with this id
	Backend   string    // the backend of that earliest line
	Count     uint64
}

// Reject kinds, the label of the rejects counters.
const (
	RejectMismatch = "mismatch" // the line does not match the log format
	RejectValue    = "value"    // a value (time, number, list) is malformed, or the time is missing
	RejectEvent    = "event"    // a filebeat event that is not valid JSON or has no message
	RejectOther    = "other"
)

// RejectKinds lists the reject kinds, for metrics.
var RejectKinds = []string{RejectMismatch, RejectValue, RejectEvent, RejectOther}

// Sample is one rejected input kept for inspection.
type Sample struct {
	Kind  string
	Err   string
	Input []byte // truncated to MaxSampleInput
}

// MaxTopKey bounds the bytes of a URI kept in a top list: very long URIs
// (scanners send kilobytes) must not bloat memory or MySQL rows.
const MaxTopKey = 512

// MaxSampleInput bounds the bytes kept of a rejected input.
const MaxSampleInput = 2048

// Batch is the aggregate of a run of inputs.
type Batch struct {
	Minutes map[Key]*Minute
	Probes  map[string]*Probe
	Rejects map[string]uint64 // by kind
	Samples []Sample          // at most MaxSamples
	// MaxSamples bounds Samples; the rest of the rejects are only counted.
	MaxSamples int
	Accepted   uint64 // inputs aggregated
	Rejected   uint64 // inputs rejected
}

// NewBatch returns an empty batch keeping up to maxSamples rejected inputs.
func NewBatch(maxSamples int) *Batch {
	return &Batch{
		Minutes:    make(map[Key]*Minute),
		Probes:     make(map[string]*Probe),
		Rejects:    make(map[string]uint64),
		MaxSamples: maxSamples,
	}
}

// Lines returns the number of inputs the batch accounts for.
func (b *Batch) Lines() uint64 { return b.Accepted + b.Rejected }

// Empty reports whether the batch accounts for no input.
func (b *Batch) Empty() bool { return b.Lines() == 0 }

// Merge adds o into b; o must not be used afterwards (its minutes may be
// moved into b).
func (b *Batch) Merge(o *Batch) error {
	for k, m := range o.Minutes {
		if mine, ok := b.Minutes[k]; ok {
			if err := mine.Merge(m); err != nil {
				return fmt.Errorf("minute %s %s: %w", k.Time().Format(time.RFC3339), k.Backend, err)
			}
		} else {
			b.Minutes[k] = m
		}
	}
	for id, p := range o.Probes {
		b.addProbe(id, p)
	}
	for k, n := range o.Rejects {
		b.Rejects[k] += n
	}
	for _, s := range o.Samples {
		if len(b.Samples) >= b.MaxSamples {
			break
		}
		b.Samples = append(b.Samples, s)
	}
	b.Accepted += o.Accepted
	b.Rejected += o.Rejected
	return nil
}

func (b *Batch) addProbe(id string, p *Probe) {
	mine, ok := b.Probes[id]
	if !ok {
		b.Probes[id] = p
		return
	}
	mine.Count += p.Count
	if p.FirstSeen.Before(mine.FirstSeen) {
		mine.FirstSeen, mine.Backend = p.FirstSeen, p.Backend
	}
}

// Aggregator parses inputs and aggregates them into a Batch. It is not safe
// for concurrent use: run one per goroutine (per partition).
type Aggregator struct {
	p     *nginxlog.Parser
	rec   nginxlog.Record
	batch *Batch
	// backends interns backend names so that a line does not allocate one.
	backends map[string]string
	// last caches the Minute of the previous line: lines come mostly in time
	// order from a few backends, so most lines skip the map lookup.
	lastKey Key
	last    *Minute
	opts    options
	// dedupEvent decodes the events Remember reads.
	dedupEvent nginxlog.Event
}

// Option configures an Aggregator.
type Option func(*options)

type options struct {
	back, ahead time.Duration // 0: no bound on that side but the absolute one
	now         func() time.Time
	probeKey    []byte
	seen        *dedup.Window
}

// WithTimeWindow rejects lines whose time is more than back before or
// ahead after now(): a clock gone wrong or a forged line must not create
// minutes that retention deletes at once or that lie years ahead. Zero
// leaves that side to the absolute bounds (MinTime, MaxTime) only, which
// always apply.
func WithTimeWindow(back, ahead time.Duration, now func() time.Time) Option {
	return func(o *options) {
		o.back, o.ahead, o.now = back, ahead, now
		if o.now == nil {
			o.now = time.Now
		}
	}
}

// WithProbeKey sets the key that signs probe URIs (see SignProbe); without
// one no request is recorded as a probe.
func WithProbeKey(key []byte) Option {
	return func(o *options) { o.probeKey = append([]byte(nil), key...) }
}

// WithDedup skips an event whose ID (nginxlog.Event.ID) is in seen, a copy
// filebeat sent again, and records the ID of every other one. Raw lines and
// events without an ID are always counted.
func WithDedup(seen *dedup.Window) Option {
	return func(o *options) { o.seen = seen }
}

// idSeed seeds the IDs of events. IDs live only in this process's windows,
// so a random seed does: no one outside can make two lines collide.
var idSeed = maphash.MakeSeed()

// Duplicate is what Add returns for a copy of an event it counted already.
const Duplicate = "duplicate"

// The absolute bounds of a line's time: MySQL's DATETIME holds years 1000
// to 9999 only, and a minute outside it fails every commit of the batch
// holding it (forever, as the batch is retried). The margin keeps the
// 5-minute, hour and day buckets of a minute inside too.
var (
	MinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	MaxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// MaxLineBytes bounds $bytes_sent and $request_length of one line (1 TiB):
// larger values are forged or corrupt, and a few of them would overflow
// the BIGINT UNSIGNED sums of a minute, failing every later commit.
const MaxLineBytes = 1 << 40

// NewAggregator returns an Aggregator for lines written in p's format.
func NewAggregator(p *nginxlog.Parser, maxSamples int, opts ...Option) *Aggregator {
	a := &Aggregator{p: p, batch: NewBatch(maxSamples), backends: make(map[string]string)}
	for _, o := range opts {
		o(&a.opts)
	}
	return a
}

// Batch returns the batch being filled.
func (a *Aggregator) Batch() *Batch { return a.batch }

// Take returns the batch being filled and starts a new one.
func (a *Aggregator) Take() *Batch {
	b := a.batch
	a.batch = NewBatch(b.MaxSamples)
	a.last = nil
	return b
}

// Add aggregates one input: a filebeat event or a raw line. It returns the
// reject kind, Duplicate for a copy skipped (see WithDedup), or "" when the
// line was aggregated. data is not retained.
func (a *Aggregator) Add(data []byte) (kind string) {
	err := a.p.ParseInput(data, &a.rec)
	if a.opts.seen != nil {
		// Before the error: a copy of a rejected line is not a second reject.
		if id, ok := a.rec.EventID(idSeed); ok && a.opts.seen.Add(id) {
			return Duplicate
		}
	}
	if err != nil {
		return a.reject(classify(err), err.Error())
	}
	t, ok := a.rec.Time()
	if !ok {
		return a.reject(RejectValue, "the line has no time")
	}
	if msg := a.implausible(t); msg != "" {
		return a.reject(RejectValue, msg)
	}
	a.add(t)
	return ""
}

// Remember records the ID of an event counted before, without counting it
// (a consumer starting on a partition reads the events before its offset
// into the window, see WithDedup). Without a window it does nothing.
func (a *Aggregator) Remember(data []byte) {
	if a.opts.seen == nil || len(data) == 0 || data[0] != '{' {
		return
	}
	ev := &a.dedupEvent
	if ev.Decode(data) != nil {
		return
	}
	if id, ok := ev.ID(idSeed); ok {
		a.opts.seen.Add(id)
	}
}

// implausible says why a parsed line cannot be counted ("" when it can):
// its time outside the window or the absolute bounds, or a byte count no
// request has.
func (a *Aggregator) implausible(t time.Time) string {
	const layout = "2006-01-02T15:04:05Z07:00"
	if t.Before(MinTime) || !t.Before(MaxTime) {
		return "time " + t.Format(layout) + " is outside the years 1970 to 9998"
	}
	if o := &a.opts; o.now != nil && (o.back > 0 || o.ahead > 0) {
		now := o.now()
		if o.back > 0 && t.Before(now.Add(-o.back)) {
			return fmt.Sprintf("time %s is more than %v before now", t.Format(layout), o.back)
		}
		if o.ahead > 0 && t.After(now.Add(o.ahead)) {
			return fmt.Sprintf("time %s is more than %v after now", t.Format(layout), o.ahead)
		}
	}
	r := &a.rec
	for _, f := range [...]func() (int64, bool){r.BytesSent, r.BodyBytesSent, r.RequestLength} {
		if n, ok := f(); ok && (n < 0 || n > MaxLineBytes) {
			return fmt.Sprintf("byte count %d is out of range", n)
		}
	}
	return ""
}

func classify(err error) string {
	switch {
	case errors.Is(err, nginxlog.ErrMismatch):
		return RejectMismatch
	case errors.Is(err, nginxlog.ErrValue):
		return RejectValue
	case errors.Is(err, nginxlog.ErrEvent):
		return RejectEvent
	}
	return RejectOther
}

func (a *Aggregator) reject(kind, msg string) string {
	a.Reject(kind, msg, a.rec.Line())
	return kind
}

// Reject counts an input that was rejected before it reached the parser
// (one too large to read, say), keeping a sample of it.
func (a *Aggregator) Reject(kind, msg string, in []byte) {
	b := a.batch
	b.Rejected++
	b.Rejects[kind]++
	if len(b.Samples) < b.MaxSamples {
		if len(in) > MaxSampleInput {
			in = in[:MaxSampleInput]
		}
		b.Samples = append(b.Samples, Sample{Kind: kind, Err: msg, Input: append([]byte{}, in...)})
	}
}

func (a *Aggregator) add(t time.Time) {
	r := &a.rec
	backend := a.backend(r.Backend())
	key := Key{Minute: floorDiv(t.Unix(), 60) * 60, Backend: backend}
	m := a.last
	if m == nil || key != a.lastKey {
		var ok bool
		if m, ok = a.batch.Minutes[key]; !ok {
			m = NewMinute()
			a.batch.Minutes[key] = m
		}
		a.last, a.lastKey = m, key
	}
	a.batch.Accepted++
	m.Requests++
	if n, ok := r.BytesSent(); ok {
		m.BytesOut += uint64(n)
	} else if n, ok := r.BodyBytesSent(); ok {
		// A format without $bytes_sent: the body is the best measure left.
		m.BytesOut += uint64(n)
	}
	if n, ok := r.RequestLength(); ok {
		m.BytesIn += uint64(n)
	}
	status, _ := r.Status()
	if status >= 100 && status < 600 {
		m.Status[status/100]++
	} else {
		m.Status[0]++
	}
	if c := r.ClientAddr(); c != nil {
		m.Visitors.Insert(c)
		m.TopClients.Add(c)
	}
	if d, ok := r.RequestTime(); ok {
		// Add fails only for values the sketch cannot index (negative, NaN);
		// a parsed duration is neither.
		_ = m.Latency.Add(d.Seconds())
	}
	if u := r.URI(); u != nil {
		m.TopURIs.Add(u[:min(len(u), MaxTopKey)])
		if id, ok := VerifyProbe(a.opts.probeKey, u); ok {
			a.probe(id, t, backend)
		}
	}
}

// backend returns the interned backend name of a line.
func (a *Aggregator) backend(b []byte) string {
	if len(b) == 0 {
		return NoBackend
	}
	if len(b) > MaxBackend {
		b = b[:MaxBackend]
	}
	if s, ok := a.backends[string(b)]; ok {
		return s
	}
	if len(a.backends) > 10000 {
		// Backends are a handful of hosts; a flood of names is an anomaly
		// that must not grow memory without bound.
		clear(a.backends)
	}
	s := cleanBackend(b)
	a.backends[string(b)] = s
	return s
}

// cleanBackend makes a backend name storable: valid UTF-8 (the column is
// utf8mb4, which refuses other bytes in strict mode) without control
// characters, at most MaxBackend bytes, cut between characters.
func cleanBackend(b []byte) string {
	// Bytes in, at most as many bytes out: invalid runs and C1 controls
	// shrink to one "?".
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(string(b), "?"))
	if len(s) > MaxBackend {
		n := MaxBackend
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n]
	}
	if s == "" {
		return NoBackend
	}
	return s
}

func (a *Aggregator) probe(id []byte, t time.Time, backend string) {
	p, ok := a.batch.Probes[string(id)]
	if !ok {
		a.batch.Probes[string(id)] = &Probe{FirstSeen: t.UTC(), Backend: backend, Count: 1}
		return
	}
	p.Count++
	if t.Before(p.FirstSeen) {
		p.FirstSeen, p.Backend = t.UTC(), backend
	}
}

// floorDiv divides rounding towards negative infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

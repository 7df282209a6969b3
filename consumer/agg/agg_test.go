package agg_test

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/dedup"
	"github.com/trafficlab/trafficlab/consumer/internal/loadgen"
	"github.com/trafficlab/trafficlab/consumer/nginxlog"
)

func parser(t testing.TB) *nginxlog.Parser {
	t.Helper()
	p, err := nginxlog.Compile(nginxlog.Format)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func testGen() *loadgen.Gen {
	return &loadgen.Gen{
		Start:        time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC),
		Step:         7 * time.Millisecond,
		Backends:     []string{"web-1", "web-2", "web-3"},
		Clients:      5000,
		URIs:         40,
		GarbageEvery: 10,
		ProbeEvery:   1000,
		Late:         50,
	}
}

// TestAggregateTotals feeds generated events (10% garbage, probes, late
// lines) split over several aggregators, merges their batches the way the
// consumer merges partitions, and checks every exact counter.
func TestAggregateTotals(t *testing.T) {
	g := testGen()
	p := parser(t)
	const n, parts = 60000, 3
	aggs := make([]*agg.Aggregator, parts)
	for i := range aggs {
		aggs[i] = agg.NewAggregator(p, 5, agg.WithProbeKey(loadgen.ProbeKey))
	}
	want := loadgen.NewExpect()
	var buf []byte
	for i := 0; i < n; i++ {
		var l loadgen.Line
		buf, l = g.Event(buf[:0], i)
		want.Add(&l)
		if got := aggs[i%parts].Add(buf); got != l.Garbage {
			t.Fatalf("line %d: reject %q, want %q (%s)", i, got, l.Garbage, buf)
		}
	}
	b := agg.NewBatch(5)
	for _, a := range aggs {
		if err := b.Merge(a.Take()); err != nil {
			t.Fatal(err)
		}
	}
	if b.Accepted != want.Good || b.Rejected != n-want.Good {
		t.Fatalf("accepted %d rejected %d, want %d and %d", b.Accepted, b.Rejected, want.Good, n-want.Good)
	}
	for k, c := range want.Rejects {
		if b.Rejects[k] != c {
			t.Errorf("rejects[%s] = %d, want %d", k, b.Rejects[k], c)
		}
	}
	if len(b.Samples) != 5 {
		t.Errorf("%d samples, want the bound 5", len(b.Samples))
	}
	if len(b.Minutes) != len(want.Minutes) {
		t.Errorf("%d minutes, want %d", len(b.Minutes), len(want.Minutes))
	}
	for k, w := range want.Minutes {
		m := b.Minutes[k]
		if m == nil {
			t.Errorf("minute %v missing", k)
			continue
		}
		if m.Requests != w.Requests || m.BytesOut != w.BytesOut || m.BytesIn != w.BytesIn || m.Status != w.Status {
			t.Errorf("minute %v: got %d/%d/%d/%v, want %d/%d/%d/%v", k,
				m.Requests, m.BytesOut, m.BytesIn, m.Status, w.Requests, w.BytesOut, w.BytesIn, w.Status)
		}
	}
	if len(b.Probes) != len(want.Probes) {
		t.Errorf("%d probes, want %d", len(b.Probes), len(want.Probes))
	}
	for id, c := range want.Probes {
		if p := b.Probes[id]; p == nil || p.Count != c {
			t.Errorf("probe %s: %+v, want count %d", id, p, c)
		}
	}
}

// TestLateLines: a line older than its neighbours lands in its own minute.
func TestLateLines(t *testing.T) {
	p := parser(t)
	a := agg.NewAggregator(p, 0)
	line := func(ts string) string {
		return `203.0.113.9 192.0.2.10 [` + ts + `] "GET / HTTP/1.1" 200 10 200 90 0.010 "-" "curl" "x"`
	}
	for _, ts := range []string{"01/May/2026:12:00:01 +0000", "01/May/2026:12:05:30 +0200", "01/May/2026:11:59:59 +0000", "01/May/2026:12:00:59 +0000"} {
		if r := a.Add([]byte(line(ts))); r != "" {
			t.Fatal(r)
		}
	}
	b := a.Take()
	at := func(s string) agg.Key {
		tm, _ := time.Parse(time.RFC3339, s)
		return agg.Key{Minute: tm.Unix(), Backend: agg.NoBackend}
	}
	for k, n := range map[agg.Key]uint64{
		at("2026-05-01T12:00:00Z"): 2,
		at("2026-05-01T10:05:00Z"): 1, // +0200 is UTC 10:05
		at("2026-05-01T11:59:00Z"): 1,
	} {
		if m := b.Minutes[k]; m == nil || m.Requests != n {
			t.Errorf("%v: %+v, want %d requests", k.Time(), m, n)
		}
	}
}

// TestMinuteSketchesMerge: visitors and latency of two halves, merged after
// a round trip through their stored encoding, match the sketches of the
// whole within the sketches' error.
func TestMinuteSketchesMerge(t *testing.T) {
	whole, a, b := agg.NewMinute(), agg.NewMinute(), agg.NewMinute()
	const clients = 50000
	for i := 0; i < 2*clients; i++ {
		ip := []byte(fmt.Sprintf("10.%d.%d.%d", i%clients>>16, i%clients>>8&0xff, i%clients&0xff))
		lat := float64(i%1000+1) / 1000 // 1 ms .. 1 s, uniform
		half := a
		if i%3 == 0 {
			half = b
		}
		for _, m := range []*agg.Minute{whole, half} {
			m.Visitors.Insert(ip)
			_ = m.Latency.Add(lat)
		}
	}
	// Through storage and back, as the store merges rows.
	stored := agg.NewMinute()
	vis, err := a.EncodeVisitors()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := a.TopURIs.MarshalTop(agg.TopStored)
	c, _ := a.TopClients.MarshalTop(agg.TopStored)
	if err := agg.DecodeMinuteSketches(stored, vis, a.EncodeLatency(), u, c); err != nil {
		t.Fatal(err)
	}
	if err := stored.Merge(b); err != nil {
		t.Fatal(err)
	}
	est := float64(stored.Visitors.Estimate())
	if math.Abs(est-clients)/clients > 0.02 {
		t.Errorf("merged visitors %v, want %d ±2%%", est, clients)
	}
	if stored.Visitors.Estimate() != whole.Visitors.Estimate() {
		t.Errorf("merged estimate %d differs from the whole's %d", stored.Visitors.Estimate(), whole.Visitors.Estimate())
	}
	p50, p95, p99, ok := stored.Quantiles()
	if !ok {
		t.Fatal("no quantiles")
	}
	for _, c := range []struct {
		got  time.Duration
		want float64
	}{{p50, 0.5}, {p95, 0.95}, {p99, 0.99}} {
		if math.Abs(c.got.Seconds()-c.want)/c.want > 0.011 {
			t.Errorf("quantile %v: got %v", c.want, c.got)
		}
	}
	if stored.Latency.GetCount() != 2*clients {
		t.Errorf("latency count %v", stored.Latency.GetCount())
	}
}

func TestTopK(t *testing.T) {
	tk := agg.NewTopK(10)
	// Heavy hitters among a long tail of singletons.
	for i := 0; i < 10000; i++ {
		switch {
		case i%4 == 0:
			tk.Add([]byte("/hot"))
		case i%10 == 1:
			tk.Add([]byte("/warm"))
		default:
			tk.Add([]byte("/tail/" + strconv.Itoa(i)))
		}
	}
	top := tk.Top(2)
	if len(top) != 2 || top[0].Key != "/hot" || top[1].Key != "/warm" {
		t.Fatalf("top = %+v", top)
	}
	// Space-saving: Count-Err <= true count <= Count.
	if top[0].Count-top[0].Err > 2500 || top[0].Count < 2500 {
		t.Errorf("/hot %+v, true count 2500", top[0])
	}
	if tk.Len() != 10 {
		t.Errorf("tracks %d keys, want the capacity 10", tk.Len())
	}

	// Exact while the keys fit, through encoding and merging.
	a, b := agg.NewTopK(10), agg.NewTopK(10)
	for i := 0; i < 5; i++ {
		for j := 0; j <= i; j++ {
			a.Add([]byte{'a' + byte(i)})
			b.Add([]byte{'a' + byte(i)})
		}
	}
	enc, err := a.MarshalTop(0)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := agg.UnmarshalTopK(enc, 10)
	if err != nil {
		t.Fatal(err)
	}
	a2.Merge(b)
	got := a2.Top(3)
	want := []agg.TopEntry{{Key: "e", Count: 10}, {Key: "d", Count: 8}, {Key: "c", Count: 6}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("merged top = %v, want %v", got, want)
	}
}

// TestBillingPercentileMonth checks the 95th percentile on a hand-built
// 30-day month: 8,640 five-minute slots, of which the top 5% (432) are
// dropped and the 433rd highest is billed.
func TestBillingPercentileMonth(t *testing.T) {
	month := time.Date(2026, 4, 15, 0, 0, 0, 0, time.UTC) // April: 30 days
	slots := agg.SlotsInMonth(month)
	if slots != 8640 {
		t.Fatalf("April has %d slots, want 8640", slots)
	}
	// 8,000 ordinary samples at 100 Mbit/s, 200 at 400 Mbit/s, 440 bursts
	// from 900 Mbit/s to 1.339 Gbit/s (one per Mbit/s). Dropping the top
	// 432 bursts leaves 8 of them: the billed sample is the 8th lowest
	// burst, 907 Mbit/s.
	var s []float64
	for i := 0; i < 8000; i++ {
		s = append(s, 100e6)
	}
	for i := 0; i < 200; i++ {
		s = append(s, 400e6)
	}
	for i := 0; i < 440; i++ {
		s = append(s, float64(900+i)*1e6)
	}
	// Shuffle deterministically: the function must sort.
	for i := range s {
		j := (i * 7919) % len(s)
		s[i], s[j] = s[j], s[i]
	}
	if got := agg.BillingPercentile(s, slots); got != 907e6 {
		t.Errorf("p95 = %v, want 907e6", got)
	}
	// The same month with 1,000 of the 100 Mbit/s slots missing from the
	// samples (no traffic then): they count as 0 bit/s at the bottom of the
	// sorted month, so the billed sample is still the 433rd highest.
	short := s[:0:0]
	n100 := 0
	for _, v := range s {
		if v == 100e6 && n100 < 1000 {
			n100++
			continue
		}
		short = append(short, v)
	}
	if got := agg.BillingPercentile(short, slots); got != 907e6 {
		t.Errorf("p95 with idle slots = %v, want 907e6", got)
	}
	// A mostly idle month bills 0.
	if got := agg.BillingPercentile([]float64{5e9, 5e9}, slots); got != 0 {
		t.Errorf("idle month p95 = %v, want 0", got)
	}
	// Small cases: 20 samples drop 1; 19 drop none.
	twenty := make([]float64, 20)
	for i := range twenty {
		twenty[i] = float64(i + 1)
	}
	if got := agg.BillingPercentile(twenty, 20); got != 19 {
		t.Errorf("20 samples: %v, want 19", got)
	}
	if got := agg.BillingPercentile(twenty[:19], 19); got != 19 {
		t.Errorf("19 samples: %v, want 19", got)
	}
	if agg.SlotsInMonth(time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)) != 8064 ||
		agg.SlotsInMonth(time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)) != 8928 {
		t.Error("SlotsInMonth for February or January is wrong")
	}
	if agg.BitsPerSecond(37_500_000) != 1e6 {
		t.Error("37.5 MB in 5 minutes is 1 Mbit/s")
	}
}

func TestProbeID(t *testing.T) {
	for uri, want := range map[string]string{
		"/__trafficlab/probe/abc-123":       "abc-123",
		"/__trafficlab/probe/abc?ts=1":      "abc",
		"/__trafficlab/probe/x.y_z~1/more":  "x.y_z~1",
		"/__trafficlab/probe/":              "",
		"/__trafficlab/probe/a%20b":         "",
		"/__trafficlab/probe":               "",
		"/__trafficlab/probes/abc":          "",
		"/index.html":                       "",
		"/x/__trafficlab/probe/abc":         "",
		"/__trafficlab/probe/" + long(98):   "",
		"/__trafficlab/probe/" + long(97):   long(97),
		"/__trafficlab/probe/abc#fragment":  "abc",
		"/__trafficlab/probe/ab\"c":         "",
		"/__trafficlab/probe/ABC.def-9_0~x": "ABC.def-9_0~x",
	} {
		id, ok := agg.ProbeID([]byte(uri))
		if string(id) != want || ok != (want != "") {
			t.Errorf("ProbeID(%q) = %q, %v; want %q", uri, id, ok, want)
		}
	}
}

// TestVerifyProbe: only a probe signed with the key is one; anything a
// visitor can make up without the key is not.
func TestVerifyProbe(t *testing.T) {
	key := []byte("k1")
	signed := agg.SignProbe(key, "run-1")
	flip := "0"
	if strings.HasSuffix(signed, "0") {
		flip = "1"
	}
	for uri, want := range map[string]string{
		agg.ProbePrefix + signed:                                     "run-1",
		agg.ProbePrefix + signed + "?t=1":                            "run-1",
		agg.ProbePrefix + "run-1":                                    "", // unsigned
		agg.ProbePrefix + agg.SignProbe([]byte("k2"), "run-1"):       "", // another key
		agg.ProbePrefix + "run-2" + signed[len("run-1"):]:            "", // another id's signature
		agg.ProbePrefix + signed[:len(signed)-1]:                     "", // cut short
		agg.ProbePrefix + signed[:len(signed)-1] + flip:              "", // one digit changed
		agg.ProbePrefix + "." + signed[len("run-1")+1:]:              "", // empty id
		agg.ProbePrefix + agg.SignProbe(key, long(agg.MaxProbeID)):   long(agg.MaxProbeID),
		agg.ProbePrefix + agg.SignProbe(key, long(agg.MaxProbeID+1)): "",
	} {
		id, ok := agg.VerifyProbe(key, []byte(uri))
		if string(id) != want || ok != (want != "") {
			t.Errorf("VerifyProbe(%q) = %q, %v; want %q", uri, id, ok, want)
		}
	}
	if _, ok := agg.VerifyProbe(nil, []byte(agg.ProbePrefix+agg.SignProbe(nil, "x"))); ok {
		t.Error("without a key, a probe signed with the empty key was accepted")
	}
}

func long(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

// TestProbeCountedAsTraffic: a signed probe is a row of its own and normal
// traffic; an unsigned one is only traffic.
func TestProbeCountedAsTraffic(t *testing.T) {
	key := []byte("secret")
	a := agg.NewAggregator(parser(t), 0, agg.WithProbeKey(key))
	line := func(uri, at, backend string) string {
		return `{"message":"198.51.100.7 192.0.2.10 [01/May/2026:12:00:` + at + ` +0000] \"GET ` + uri +
			` HTTP/1.1\" 200 0 150 80 0.001 \"-\" \"verify\" \"x\"","host":{"name":"` + backend + `"}}`
	}
	for _, e := range []string{
		line(agg.ProbePrefix+agg.SignProbe(key, "run42")+"?x=1", "05", "web-2"),
		line(agg.ProbePrefix+agg.SignProbe(key, "run42"), "02", "web-1"),
		line(agg.ProbePrefix+"run43", "03", "web-1"),
		line(agg.ProbePrefix+agg.SignProbe([]byte("guess"), "run44"), "03", "web-1"),
	} {
		if r := a.Add([]byte(e)); r != "" {
			t.Fatal(r)
		}
	}
	b := a.Take()
	p := b.Probes["run42"]
	if p == nil || p.Count != 2 || p.Backend != "web-1" || !p.FirstSeen.Equal(time.Date(2026, 5, 1, 12, 0, 2, 0, time.UTC)) {
		t.Fatalf("probe = %+v", p)
	}
	if len(b.Probes) != 1 {
		t.Errorf("probes %v: only run42 is signed", b.Probes)
	}
	if b.Accepted != 4 || len(b.Minutes) != 2 {
		t.Errorf("probes not counted as traffic: %+v", b)
	}
}

// TestDedup: a copy of a filebeat event (the same host, file, offset, read
// time and line) is skipped, whether it is a line or a reject, and whether
// the original was counted or only remembered; raw lines and events without
// an offset are always counted.
func TestDedup(t *testing.T) {
	g := testGen()
	a := agg.NewAggregator(parser(t), 5, agg.WithDedup(dedup.NewWindow(100)))
	ev := func(i int) []byte { b, _ := g.Event(nil, i); return b }
	good := ev(1)
	bad, l := g.Event(nil, 2*g.GarbageEvery-1) // a status that is not a number
	if l.Garbage != agg.RejectValue {
		t.Fatalf("test generator: line %d is %q, not a value reject", 2*g.GarbageEvery-1, l.Garbage)
	}
	other := bytes.Replace(good, []byte(`"offset":310,`), []byte(`"offset":311,`), 1)
	noOffset := bytes.Replace(good, []byte(`"offset":310,`), []byte(``), 1)
	l1 := g.Describe(1)
	raw := g.RawLine(nil, &l1)
	if bytes.Equal(other, good) || bytes.Equal(noOffset, good) {
		t.Fatal("test events not rewritten")
	}
	a.Remember(ev(2))
	for i, c := range []struct {
		in   []byte
		want string
	}{
		{good, ""}, {good, agg.Duplicate},
		{other, ""}, // another offset: another line, even with the same text
		{bad, agg.RejectValue}, {bad, agg.Duplicate},
		{noOffset, ""}, {noOffset, ""},
		{raw, ""}, {raw, ""},
		{ev(2), agg.Duplicate}, // remembered, not counted
		{ev(3), ""},
	} {
		if got := a.Add(c.in); got != c.want {
			t.Errorf("input %d: Add = %q, want %q", i, got, c.want)
		}
	}
	b := a.Take()
	if b.Accepted != 7 || b.Lines() != 8 {
		t.Errorf("accepted %d of %d lines, want 7 of 8", b.Accepted, b.Lines())
	}
}

// BenchmarkPipeline measures parse+aggregate of filebeat 7.17 events, the
// consumer's work per Kafka message, in one goroutine.
func BenchmarkPipeline(b *testing.B) {
	g := testGen()
	g.GarbageEvery, g.Clients = 0, 1_000_000
	const n = 1 << 14
	events := make([][]byte, n)
	for i := range events {
		events[i], _ = g.Event(nil, i*61) // *61: spread clients and minutes
	}
	benchAdd(b, agg.NewAggregator(parser(b), 10), events)
}

// benchAdd adds events round and round, as a consumer reads them.
func benchAdd(b *testing.B, a *agg.Aggregator, events [][]byte) {
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if r := a.Add(events[i%len(events)]); r != "" {
			b.Fatal(r)
		}
		if i%(1<<20) == 0 {
			a.Take() // a flush every ~1M lines, as the consumer does
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestImplausibleLinesRejected: a line whose time MySQL cannot store, or
// that lies outside the configured window, or that claims more bytes than
// any request has, is a counted and sampled reject, never a minute.
func TestImplausibleLinesRejected(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a := agg.NewAggregator(parser(t), 10, agg.WithTimeWindow(7*24*time.Hour, time.Hour, func() time.Time { return now }))
	line := func(at string, sent string) []byte {
		return []byte(`198.51.100.7 192.0.2.10 [` + at + `] "GET / HTTP/1.1" 200 ` + sent + ` 150 80 0.001 "-" "ua" "x"`)
	}
	for _, in := range [][]byte{
		line("31/Dec/9999:23:59:59 -2359", "10"), // year 10000 in UTC
		line("01/Jan/0001:00:00:00 +2359", "10"), // year 0 in UTC
		line("23/Apr/2026:11:59:59 +0000", "10"), // 8 days back
		line("01/May/2026:13:00:01 +0000", "10"), // more than an hour ahead
		line("01/May/2026:12:00:00 +0000", "1099511627777"),
	} {
		if r := a.Add(in); r != agg.RejectValue {
			t.Errorf("%s: reject %q, want %q", in, r, agg.RejectValue)
		}
	}
	for _, in := range [][]byte{
		line("24/Apr/2026:12:00:01 +0000", "10"),
		line("01/May/2026:12:59:59 +0000", "1099511627776"),
	} {
		if r := a.Add(in); r != "" {
			t.Errorf("%s: reject %q, want it counted", in, r)
		}
	}
	b := a.Take()
	if b.Rejected != 5 || b.Accepted != 2 || len(b.Samples) != 5 || len(b.Minutes) != 2 {
		t.Errorf("rejected %d (samples %d), accepted %d in %d minutes; want 5 (5), 2 in 2", b.Rejected, len(b.Samples), b.Accepted, len(b.Minutes))
	}
	// Without a window only the absolute bounds apply: old reference data
	// replays.
	a = agg.NewAggregator(parser(t), 0)
	if r := a.Add(line("01/Jan/2001:00:00:00 +0000", "10")); r != "" {
		t.Errorf("a 2001 line without a window: reject %q", r)
	}
	if r := a.Add(line("31/Dec/9999:23:59:59 -2359", "10")); r != agg.RejectValue {
		t.Errorf("a year-10000 line without a window: reject %q", r)
	}
}

// TestBackendStorable: backend names of any bytes become valid UTF-8 of at
// most MaxBackend bytes without control characters.
func TestBackendStorable(t *testing.T) {
	a := agg.NewAggregator(parser(t), 0)
	// As JSON string contents: raw bytes, or escapes.
	for _, host := range []string{"\xff\xfeweb", `web\u0001\u001b[31m`, strings.Repeat("é", 200), `\u0085x`} {
		ev := `{"message":"198.51.100.7 192.0.2.10 [01/May/2026:12:00:05 +0000] \"GET / HTTP/1.1\" 200 0 150 80 0.001 \"-\" \"u\" \"x\"","host":{"name":"` + host + `"}}`
		if r := a.Add([]byte(ev)); r != "" {
			t.Fatalf("%q: %s", host, r)
		}
	}
	for k := range a.Take().Minutes {
		if !utf8.ValidString(k.Backend) || len(k.Backend) > agg.MaxBackend || strings.ContainsFunc(k.Backend, func(r rune) bool { return r < 0x20 || r >= 0x7f && r < 0xa0 }) {
			t.Errorf("backend %q is not storable", k.Backend)
		}
	}
}

// BenchmarkPipelineDedup is BenchmarkPipeline with the consumer's default
// dedup window, against the same events without one. The window is smaller
// than the set of events, so each event is new when it comes round again:
// every Add hashes, inserts and pushes an old ID out, the cost of a window
// in normal operation.
func BenchmarkPipelineDedup(b *testing.B) {
	g := testGen()
	g.GarbageEvery, g.Clients = 0, 1_000_000
	const n = 1 << 18
	events := make([][]byte, n)
	for i := range events {
		events[i], _ = g.Event(nil, i*61)
	}
	for _, window := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("window=%d", window), func(b *testing.B) {
			var opts []agg.Option
			if window > 0 {
				opts = append(opts, agg.WithDedup(dedup.NewWindow(window)))
			}
			benchAdd(b, agg.NewAggregator(parser(b), 10, opts...), events)
		})
	}
}

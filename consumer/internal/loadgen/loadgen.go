// Package loadgen makes deterministic nginx access-log traffic as filebeat
// 7.17 would ship it to Kafka, and the totals the consumer must store for
// it. Tests and benchmarks share it, so the traffic they check is the
// traffic they measure.
package loadgen

import (
	"fmt"
	"strconv"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/nginxlog"
)

// Gen describes a stream of lines; line i is a pure function of i.
type Gen struct {
	Start    time.Time     // time of line 0
	Step     time.Duration // time between lines (several lines share a second)
	Backends []string      // line i is shipped by Backends[i%len]
	Clients  int           // distinct client addresses, cycled
	URIs     int           // distinct URIs, cycled
	// GarbageEvery makes every n-th line garbage (0: none): 10 gives 10%.
	GarbageEvery int
	// ProbeEvery makes every n-th good line a probe request (0: none).
	ProbeEvery int
	// Late makes every n-th good line 10 minutes older than its neighbours
	// (0: none), to check that late lines land in their own minute.
	Late int
	// ProbeKey signs the probes (agg.SignProbe); nil means ProbeKey.
	ProbeKey []byte
}

// ProbeKey is the probe key of generators that set none: the consumers
// under test must be given it (agg.WithProbeKey, config probe_key) to
// record the probes.
var ProbeKey = []byte("loadgen-probe-key")

// Line is what the generator wrote on one line.
type Line struct {
	Garbage    string // the expected reject kind, "" for a good line
	Time       time.Time
	Backend    string
	Client     string
	URI        string
	Status     int
	BytesOut   int64
	BytesIn    int64
	ReqTime    time.Duration
	ProbeID    string
	FilebeatTS time.Time
}

// Describe returns line i without encoding it.
func (g *Gen) Describe(i int) Line {
	l := Line{Backend: g.Backends[i%len(g.Backends)]}
	l.Time = g.Start.Add(time.Duration(i) * g.Step).Truncate(time.Second)
	l.FilebeatTS = l.Time.Add(137 * time.Millisecond)
	if g.GarbageEvery > 0 && i%g.GarbageEvery == g.GarbageEvery-1 {
		switch (i / g.GarbageEvery) % 4 {
		case 0:
			l.Garbage = agg.RejectMismatch // raw text in the message
		case 1:
			l.Garbage = agg.RejectValue // a status that is not a number
		case 2:
			l.Garbage = agg.RejectEvent // a truncated JSON event
		default:
			l.Garbage = agg.RejectMismatch // a raw non-JSON Kafka message
		}
		return l
	}
	if g.Late > 0 && i%g.Late == g.Late/2 {
		l.Time = l.Time.Add(-10 * time.Minute)
	}
	c := i % max(g.Clients, 1)
	if c%16 == 5 {
		l.Client = fmt.Sprintf("2001:db8:%x:%x::%x", c>>32&0xffff, c>>16&0xffff, c&0xffff)
	} else {
		l.Client = fmt.Sprintf("%d.%d.%d.%d", 10+c>>24&0x3f, c>>16&0xff, c>>8&0xff, c&0xff)
	}
	l.URI = "/articles/" + strconv.Itoa(i%max(g.URIs, 1)) + "?page=" + strconv.Itoa(i%7)
	if g.ProbeEvery > 0 && i%g.ProbeEvery == 0 {
		l.ProbeID = "p" + strconv.Itoa(i/g.ProbeEvery%500)
		key := g.ProbeKey
		if key == nil {
			key = ProbeKey
		}
		l.URI = agg.ProbePrefix + agg.SignProbe(key, l.ProbeID) + "?t=" + strconv.Itoa(i)
	}
	switch r := i % 100; {
	case r < 1:
		l.Status = 101
	case r < 80:
		l.Status = 200
	case r < 88:
		l.Status = 304
	case r < 97:
		l.Status = 404
	default:
		l.Status = 502
	}
	l.BytesOut = int64(200 + i%15000)
	l.BytesIn = int64(90 + i%700)
	l.ReqTime = time.Duration(i%997) * time.Millisecond
	return l
}

// RawLine appends line i as nginx writes it in nginxlog.Format.
func (g *Gen) RawLine(dst []byte, l *Line) []byte {
	dst = append(dst, l.Client...)
	dst = append(dst, " 192.0.2.10 ["...)
	dst = l.Time.AppendFormat(dst, "02/Jan/2006:15:04:05 -0700")
	dst = append(dst, `] "GET `...)
	dst = append(dst, l.URI...)
	dst = append(dst, ` HTTP/1.1" `...)
	if l.Garbage == agg.RejectValue {
		dst = append(dst, "2x0"...)
	} else {
		dst = strconv.AppendInt(dst, int64(l.Status), 10)
	}
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, max(l.BytesOut-180, 0), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, l.BytesOut, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, l.BytesIn, 10)
	dst = append(dst, ' ')
	ms := l.ReqTime.Milliseconds()
	dst = strconv.AppendInt(dst, ms/1000, 10)
	dst = append(dst, '.')
	dst = append(dst, byte('0'+ms/100%10), byte('0'+ms/10%10), byte('0'+ms%10))
	dst = append(dst, ` "https://www.example.com/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36" "www.example.com"`...)
	return dst
}

// Event appends input i as it sits in the Kafka topic: a filebeat 7.17
// event (what the codec.json of filebeat's kafka output writes) carrying the
// line, or garbage.
func (g *Gen) Event(dst []byte, i int) ([]byte, Line) {
	l := g.Describe(i)
	switch {
	case l.Garbage == agg.RejectEvent:
		return append(dst, `{"@timestamp":"2026-05-01T10:00:00.000Z","message":"truncated`...), l
	case l.Garbage == agg.RejectMismatch && (i/g.GarbageEvery)%4 == 3:
		return append(dst, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not a log line"...), l
	}
	var line []byte
	if l.Garbage == agg.RejectMismatch {
		line = []byte("GET / HTTP/1.1 this is not an nginx log line " + strconv.Itoa(i))
	} else {
		line = g.RawLine(nil, &l)
	}
	dst = append(dst, `{"@timestamp":"`...)
	dst = l.FilebeatTS.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	dst = append(dst, `","@metadata":{"beat":"filebeat","type":"_doc","version":"7.17.18"},"log":{"offset":`...)
	dst = strconv.AppendInt(dst, int64(i)*310, 10)
	dst = append(dst, `,"file":{"path":"/var/log/nginx/access.log"}},"message":`...)
	dst = nginxlog.AppendJSONString(dst, line)
	dst = append(dst, `,"input":{"type":"log"},"fields":{"service":"trafficlab"},"ecs":{"version":"1.12.0"},"host":{"name":"`...)
	dst = append(dst, l.Backend...)
	dst = append(dst, `"},"agent":{"version":"7.17.18","hostname":"`...)
	dst = append(dst, l.Backend...)
	dst = append(dst, `","ephemeral_id":"5b7f0c2e-3f0a-4d8e-9a51-1c2d3e4f5a6b","id":"0e9d8c7b-6a59-4837-a261-5f4e3d2c1b0a","name":"`...)
	dst = append(dst, l.Backend...)
	dst = append(dst, `","type":"filebeat"}}`...)
	return dst, l
}

// MinuteTotals are the exact counters of one minute and backend.
type MinuteTotals struct {
	Requests, BytesOut, BytesIn uint64
	Status                      [agg.StatusClasses]uint64
}

// Expect accumulates what the consumer must store for a set of lines.
type Expect struct {
	Minutes map[agg.Key]*MinuteTotals
	Probes  map[string]uint64
	Rejects map[string]uint64
	Good    uint64
}

// NewExpect returns empty totals.
func NewExpect() *Expect {
	return &Expect{Minutes: map[agg.Key]*MinuteTotals{}, Probes: map[string]uint64{}, Rejects: map[string]uint64{}}
}

// Add accounts for one generated line.
func (e *Expect) Add(l *Line) {
	if l.Garbage != "" {
		e.Rejects[l.Garbage]++
		return
	}
	e.Good++
	k := agg.Key{Minute: l.Time.Unix() / 60 * 60, Backend: l.Backend}
	m := e.Minutes[k]
	if m == nil {
		m = &MinuteTotals{}
		e.Minutes[k] = m
	}
	m.Requests++
	m.BytesOut += uint64(l.BytesOut)
	m.BytesIn += uint64(l.BytesIn)
	m.Status[l.Status/100]++
	if l.ProbeID != "" {
		e.Probes[l.ProbeID]++
	}
}

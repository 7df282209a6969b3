package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/internal/loadgen"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
)

// hostileLine is one access-log line of the product's format with every
// field given as logged.
type hostileLine struct {
	client, time, request, status, body, sent, reqLen, rt, referer, ua, host string
}

func (h hostileLine) String() string {
	or := func(s, d string) string {
		if s == "" {
			return d
		}
		return s
	}
	return fmt.Sprintf(`%s 192.0.2.10 [%s] "%s" %s %s %s %s %s "%s" "%s" "%s"`,
		or(h.client, "198.51.100.9"), or(h.time, hostileTime().Format("02/Jan/2006:15:04:05 -0700")),
		or(h.request, "GET /hostile HTTP/1.1"), or(h.status, "200"), or(h.body, "10"), or(h.sent, "200"),
		or(h.reqLen, "90"), or(h.rt, "0.001"), or(h.referer, "-"), or(h.ua, "ua"), or(h.host, "www.example.com"))
}

// hostileTime is the time of hostile lines that give none: a minute no
// ordinary line of gen() is in (those span the minutes from 10 minutes
// before its Start, the late lines, to just after it), whatever the clock
// says. A time relative to now met the late lines' minute once an hour.
func hostileTime() time.Time { return gen().Start.Add(-30 * time.Minute) }

// event wraps a line as filebeat ships it, from backend.
func event(line, backend string) []byte {
	b, _ := json.Marshal(map[string]any{"@timestamp": "2026-05-01T10:00:00.000Z", "message": line, "host": map[string]string{"name": backend}})
	return b
}

// hostileCorpus is what a broken or malicious writer to the topic (or a
// site visitor, through nginx) can put in a message: huge fields, bad
// UTF-8, control characters, absurd numbers, times at and beyond the edges.
// poison are the lines whose time MySQL cannot store, which once failed
// every commit forever.
func hostileCorpus() (msgs [][]byte, poison int) {
	big := strings.Repeat("A", 200_000)
	add := func(m []byte) { msgs = append(msgs, m) }
	for _, tm := range []string{"31/Dec/9999:23:59:59 -2359", "01/Jan/0001:00:00:00 +2359", "31/Dec/9999:23:59:59 +0000", "01/Jan/1000:00:00:00 +0000"} {
		l := hostileLine{time: tm}.String()
		add([]byte(l))
		add(event(l, "web-1"))
		poison += 2
	}
	for _, h := range []hostileLine{
		{time: "01/Jan/1970:00:00:00 +0000"},
		{time: time.Now().UTC().AddDate(0, 0, -8).Format("02/Jan/2006:15:04:05 -0700")},
		{time: time.Now().UTC().Add(3 * time.Hour).Format("02/Jan/2006:15:04:05 -0700")},
		{time: "29/Feb/2026:00:00:00 +0000"},
		{time: "01/May/2026:25:61:61 +0000"},
		{request: "GET /" + big + " HTTP/1.1"},
		{request: "GET /\xff\xfe\xfd\x80 HTTP/1.1"},
		{request: "GET /\x00\x01\x1b[31m\x7f HTTP/1.1"},
		{request: "\x16\x03\x01\x02\x00"},
		{ua: big, referer: big},
		{host: big},
		{client: "\xff\xff\xff", ua: "\xc3\x28"},
		{client: strings.Repeat("1", 5000)},
		{status: "999"}, {status: "0"}, {status: "-1"}, {status: "99999999999999999999999"},
		{sent: "1099511627777"}, {sent: "9223372036854775807"}, {sent: "99999999999999999999999"}, {sent: "-5"},
		{reqLen: "9223372036854775807"}, {body: "18446744073709551615"},
		{rt: "99999999999.999"}, {rt: "-1.000"}, {rt: "1e308"}, {rt: "NaN"},
		{request: "GET " + agg.ProbePrefix + "forged HTTP/1.1"},
		{request: "GET " + agg.ProbePrefix + agg.SignProbe([]byte("not-the-key-at-all"), "forged2") + " HTTP/1.1"},
		{request: "GET " + agg.ProbePrefix + strings.Repeat("p", 5000) + " HTTP/1.1"},
	} {
		add([]byte(h.String()))
		add(event(h.String(), "web-1"))
	}
	for _, backend := range []string{strings.Repeat("b", 100_000), "\xff\xfe", "web\x00\x01", strings.Repeat("é", 300), ""} {
		add(event(hostileLine{}.String(), backend))
	}
	add([]byte{})
	add([]byte("\x00"))
	add([]byte(`{"message": 12}`))
	add([]byte(`{"message": "` + big + `"}`))
	add([]byte(`{"message": ["a"], "host": {"name": {"x": 1}}}`))
	add([]byte(strings.Repeat("[", 100_000)))
	return msgs, poison
}

// TestHostileLines pushes the hostile corpus, interleaved with ordinary
// traffic, through Kafka, the consumer and a real MariaDB: every message
// is committed (no line blocks a commit), the poison lines are counted
// rejects, the ordinary traffic is counted exactly, and no forged probe
// makes a row.
func TestHostileLines(t *testing.T) {
	srv := mariadbtest.Shared(t)
	const parts, n = 3, 3000
	addr, cl := broker(t, parts)
	c, st := newConfig(t, srv, addr)

	hostile, poison := hostileCorpus()
	// What the aggregator decides for each hostile message, with the
	// service's own settings: MySQL must hold exactly that.
	p, err := c.Parser()
	if err != nil {
		t.Fatal(err)
	}
	ref := agg.NewAggregator(p, 0, agg.WithTimeWindow(c.TimeWindow.Back, c.TimeWindow.Ahead, time.Now), agg.WithProbeKey([]byte(c.ProbeKey)))
	for i, m := range hostile {
		r := ref.Add(m)
		if i < poison && r == "" {
			t.Errorf("poison line %q was accepted", m)
		}
	}
	hb := ref.Take()

	g := gen()
	g.GarbageEvery = 0
	exp := loadgen.NewExpect()
	ctx := context.Background()
	for i := range n {
		v, l := g.Event(nil, i)
		exp.Add(&l)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: v}, nil)
		if i%(n/len(hostile)+1) == 0 && i/(n/len(hostile)+1) < len(hostile) {
			h := hostile[i/(n/len(hostile)+1)]
			cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % parts), Value: h}, nil)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	startService(t, c)
	waitCommitted(t, st, int64(n+len(hostile)), 60*time.Second)

	rows, err := st.Minutes(ctx, agg.MinTime, agg.MaxTime)
	if err != nil {
		t.Fatal(err)
	}
	var good, other uint64
	for _, r := range rows {
		if exp.Minutes[agg.Key{Minute: r.Minute.Unix(), Backend: r.Backend}] != nil {
			good += r.Requests
		} else {
			other += r.Requests
		}
	}
	if good != exp.Good || other != hb.Accepted {
		t.Errorf("stored %d ordinary and %d hostile requests, want %d and %d", good, other, exp.Good, hb.Accepted)
	}
	rej, err := st.RejectCounts(ctx, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var rejected uint64
	for _, v := range rej {
		rejected += v
	}
	if rejected != hb.Rejected || rej[agg.RejectValue] < uint64(poison) {
		t.Errorf("rejects %v, want %d in all, at least %d of kind value", rej, hb.Rejected, poison)
	}
	for _, id := range []string{"forged", "forged2"} {
		if _, ok, err := st.Probe(ctx, id); ok || err != nil {
			t.Errorf("probe %s: stored %v (%v), want no row for a forged probe", id, ok, err)
		}
	}
	for id, want := range exp.Probes {
		if p, ok, err := st.Probe(ctx, id); !ok || err != nil || p.Count != want {
			t.Errorf("signed probe %s: %+v %v %v, want count %d", id, p, ok, err, want)
		}
	}
}

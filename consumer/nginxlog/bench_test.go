package nginxlog

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The benchmarks parse a corpus of varied lines generated with known values
// and check every parsed record against them inside the timed loop, so a
// parser that skipped work would fail rather than look fast. Run with
//
//	go test -run '^$' -bench Parse -benchmem -cpu 1 ./consumer/nginxlog/

const corpusSize = 4096

var benchCorpus = makeCorpus(corpusSize)

func reportLines(b *testing.B, n int, bytes int64) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
	b.SetBytes(bytes / int64(len(benchCorpus)))
}

func corpusBytes(line func(*sample) []byte) int64 {
	var n int64
	for i := range benchCorpus {
		n += int64(len(line(&benchCorpus[i])))
	}
	return n
}

func BenchmarkParseTrafficlab(b *testing.B) {
	p := MustCompile(Format)
	c := newChecker(p)
	var rec Record
	b.ReportAllocs()
	n := 0
	for ; b.Loop(); n++ {
		s := &benchCorpus[n%len(benchCorpus)]
		if err := p.Parse(s.line, &rec); err != nil {
			b.Fatalf("line %q: %v", s.line, err)
		}
		if d := c.check(&rec, s, false); d != "" {
			b.Fatalf("line %q: wrong %s", s.line, d)
		}
	}
	reportLines(b, n, corpusBytes(func(s *sample) []byte { return s.line }))
}

func BenchmarkParseCombined(b *testing.B) {
	p := MustCompile(CombinedName)
	c := newChecker(p)
	var rec Record
	b.ReportAllocs()
	n := 0
	for ; b.Loop(); n++ {
		s := &benchCorpus[n%len(benchCorpus)]
		if err := p.Parse(s.combLog, &rec); err != nil {
			b.Fatalf("line %q: %v", s.combLog, err)
		}
		if d := c.check(&rec, s, true); d != "" {
			b.Fatalf("line %q: wrong %s", s.combLog, d)
		}
	}
	reportLines(b, n, corpusBytes(func(s *sample) []byte { return s.combLog }))
}

func BenchmarkParseFilebeatEvent(b *testing.B) {
	p := MustCompile(Format)
	c := newChecker(p)
	var rec Record
	b.ReportAllocs()
	n := 0
	for ; b.Loop(); n++ {
		s := &benchCorpus[n%len(benchCorpus)]
		if err := p.ParseInput(s.event, &rec); err != nil {
			b.Fatalf("event %q: %v", s.event, err)
		}
		if d := c.check(&rec, s, false); d != "" {
			b.Fatalf("event %q: wrong %s", s.event, d)
		}
		if string(rec.Backend()) != s.backend {
			b.Fatalf("event %q: wrong backend %q", s.event, rec.Backend())
		}
	}
	reportLines(b, n, corpusBytes(func(s *sample) []byte { return s.event }))
}

// The regexp baseline: what a straightforward Go parser of the same format
// looks like - a regexp with one group per variable, strconv and time.Parse -
// doing the same work and passing the same checks.

var baselineRE = regexp.MustCompile(`^(\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+) (\d+) (\d+) ([\d.]+|-) "([^"]*)" "([^"]*)" "([^"]*)"$`)

type baselineRecord struct {
	addr, realip                string
	t                           time.Time
	request, method, uri, proto string
	hasParts                    bool
	status                      int
	body, sent, reqLen          int64
	rt                          time.Duration
	referer, ua, host           string
	refererNull, uaNull         bool
	unescapeBuf                 []byte
}

func baselineUnescape(r *baselineRecord, s string) string {
	if !strings.Contains(s, `\x`) {
		return s
	}
	r.unescapeBuf = appendNginxUnescape(r.unescapeBuf[:0], []byte(s))
	return string(r.unescapeBuf)
}

func baselineParse(line string, r *baselineRecord) bool {
	m := baselineRE.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	var err error
	r.addr, r.realip = m[1], m[2]
	if r.t, err = time.Parse(timeLocalLayout, m[3]); err != nil {
		return false
	}
	r.request = baselineUnescape(r, m[4])
	r.hasParts = false
	if f := strings.Fields(m[4]); len(f) == 3 && strings.HasPrefix(f[2], "HTTP/") {
		r.method, r.uri, r.proto, r.hasParts = f[0], baselineUnescape(r, f[1]), f[2], true
	}
	if r.status, err = strconv.Atoi(m[5]); err != nil {
		return false
	}
	if r.body, err = strconv.ParseInt(m[6], 10, 64); err != nil {
		return false
	}
	if r.sent, err = strconv.ParseInt(m[7], 10, 64); err != nil {
		return false
	}
	if r.reqLen, err = strconv.ParseInt(m[8], 10, 64); err != nil {
		return false
	}
	f, err := strconv.ParseFloat(m[9], 64)
	if err != nil {
		return false
	}
	r.rt = time.Duration(f*1000+0.5) * time.Millisecond
	r.referer, r.refererNull = baselineUnescape(r, m[10]), m[10] == "-"
	r.ua, r.uaNull = baselineUnescape(r, m[11]), m[11] == "-"
	r.host = baselineUnescape(r, m[12])
	return true
}

func baselineEq(s string, null bool, o opt) bool {
	if !o.ok {
		return null
	}
	return !null && s == o.s
}

func BenchmarkRegexpBaseline(b *testing.B) {
	var rec baselineRecord
	// Strings made outside the timed loop: the baseline gets its input in the
	// form it likes best.
	lines := make([]string, len(benchCorpus))
	for i := range benchCorpus {
		lines[i] = string(benchCorpus[i].line)
	}
	b.ReportAllocs()
	n := 0
	for ; b.Loop(); n++ {
		s := &benchCorpus[n%len(benchCorpus)]
		line := lines[n%len(lines)]
		if !baselineParse(line, &rec) {
			b.Fatalf("line %q: no match", line)
		}
		ok := rec.addr == s.addr && rec.realip == s.realip && rec.t.Equal(s.t) &&
			rec.request == s.request && rec.hasParts == s.method.ok &&
			(!rec.hasParts || rec.method == s.method.s && rec.uri == s.uri.s && rec.proto == s.proto.s) &&
			rec.status == s.status && rec.body == s.body && rec.sent == s.sent && rec.reqLen == s.reqLen &&
			rec.rt == s.rt && baselineEq(rec.referer, rec.refererNull, s.referer) &&
			baselineEq(rec.ua, rec.uaNull, s.ua) && rec.host == s.host
		if !ok {
			b.Fatalf("line %q: wrong values %+v", line, rec)
		}
	}
	reportLines(b, n, corpusBytes(func(s *sample) []byte { return s.line }))
}

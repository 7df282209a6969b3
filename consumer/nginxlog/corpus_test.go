package nginxlog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// This file writes log lines the way nginx does, from known values, for the
// benchmarks and the fuzz target to check parsed records against.

// opt is a string value that may be absent (logged as "-").
type opt struct {
	s  string
	ok bool
}

func some(s string) opt { return opt{s, true} }

// sample is one request with every value the trafficlab format logs.
type sample struct {
	addr, realip  string
	t             time.Time
	off           int    // t's UTC offset in seconds
	request       string // as received, before nginx escapes it
	method, uri   opt    // absent when the request line is not HTTP
	proto         opt
	status        int
	body, sent    int64
	reqLen        int64
	rt            time.Duration // whole milliseconds, as nginx logs it
	referer, ua   opt
	host          string
	user          opt    // $remote_user, for the combined format
	backend       string // host.name of the filebeat event
	line, combLog []byte // the line in the trafficlab and combined formats
	event         []byte // a filebeat event carrying line
}

// nginxEscape escapes a value like nginx's default log escaping: `"`, `\`
// and bytes outside 32..126 become \xXX with upper-case hex.
func nginxEscape(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' || c == '\\' || c < 0x20 || c > 0x7e {
			dst = append(dst, '\\', 'x', hex[c>>4], hex[c&0xf])
			continue
		}
		dst = append(dst, c)
	}
	return dst
}

// nginxValue writes a variable's value: "-" when absent, and also when the
// value is empty for variables nginx logs that way.
func nginxValue(dst []byte, o opt) []byte {
	if !o.ok {
		return append(dst, '-')
	}
	return nginxEscape(dst, o.s)
}

func appendMillis(dst []byte, d time.Duration) []byte {
	ms := d.Milliseconds()
	dst = strconv.AppendInt(dst, ms/1000, 10)
	return fmt.Appendf(dst, ".%03d", ms%1000)
}

const timeLocalLayout = "02/Jan/2006:15:04:05 -0700"

// formatTrafficlab writes s in Format, as nginx would.
func formatTrafficlab(s *sample) []byte {
	b := make([]byte, 0, 256)
	b = append(b, s.addr...)
	b = append(b, ' ')
	b = append(b, s.realip...)
	b = append(b, " ["...)
	b = s.t.AppendFormat(b, timeLocalLayout)
	b = append(b, `] "`...)
	b = nginxEscape(b, s.request)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(s.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.body, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.sent, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.reqLen, 10)
	b = append(b, ' ')
	b = appendMillis(b, s.rt)
	b = append(b, ` "`...)
	b = nginxValue(b, s.referer)
	b = append(b, `" "`...)
	b = nginxValue(b, s.ua)
	b = append(b, `" "`...)
	b = nginxEscape(b, s.host)
	return append(b, '"')
}

// formatCombined writes s in nginx's combined format.
func formatCombined(s *sample) []byte {
	b := make([]byte, 0, 256)
	b = append(b, s.addr...)
	b = append(b, " - "...)
	b = nginxValue(b, s.user)
	b = append(b, " ["...)
	b = s.t.AppendFormat(b, timeLocalLayout)
	b = append(b, `] "`...)
	b = nginxEscape(b, s.request)
	b = append(b, `" `...)
	b = strconv.AppendInt(b, int64(s.status), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, s.body, 10)
	b = append(b, ` "`...)
	b = nginxValue(b, s.referer)
	b = append(b, `" "`...)
	b = nginxValue(b, s.ua)
	return append(b, '"')
}

// jsonEscape writes s as a JSON string body the way filebeat (Go's
// encoding/json with HTML escaping) does.
func jsonEscape(dst []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	for _, c := range s {
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '<' || c == '>' || c == '&' || c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// formatEvent wraps a line in a filebeat 7.17 event like the ones in Kafka.
func formatEvent(s *sample, line []byte) []byte {
	b := make([]byte, 0, 512+len(line))
	b = append(b, `{"@timestamp":"2026-11-25T00:01:02.345Z","@metadata":{"beat":"filebeat","type":"_doc","version":"7.17.29"},"log":{"offset":`...)
	b = strconv.AppendInt(b, int64(len(line))*7, 10)
	b = append(b, `,"file":{"path":"/var/log/nginx/access.log"}},"message":"`...)
	b = jsonEscape(b, line)
	b = append(b, `","input":{"type":"log"},"ecs":{"version":"1.12.0"},"host":{"name":"`...)
	b = jsonEscape(b, []byte(s.backend))
	b = append(b, `"},"agent":{"type":"filebeat","version":"7.17.29","hostname":"`...)
	b = jsonEscape(b, []byte(s.backend))
	return append(b, `"}}`...)
}

var (
	corpusMethods = []string{"GET", "GET", "GET", "GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"}
	corpusPaths   = []string{"/", "/index.html", "/static/app.3f2a1c.js", "/static/style.css", "/api/v1/orders",
		"/images/logo.png", "/favicon.ico", "/search", "/__trafficlab/probe/7f3a9c", "/wp-login.php",
		"/download/file.tar.gz", "/products/42/reviews", "/cart/items"}
	corpusQueries = []string{"", "", "", "?q=nginx+log", "?page=2&sort=desc", "?id=12345", "?utm_source=mail&utm_campaign=x"}
	corpusUAs     = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"curl/7.88.1", "Go-http-client/1.1", "kube-probe/1.28",
		`Mozilla/5.0 (compatible; "Quoted" Bot/2.1; +http://example.com/bot)`,
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
	}
	corpusReferers = []string{"https://www.example.com/", "https://www.google.com/search?q=trafficlab", "http://shop.example.com/cart?step=2"}
	corpusHosts    = []string{"www.example.com", "shop.example.com", "api.example.com", "static.example.com", "_"}
	corpusBackends = []string{"web-1", "web-2", "web-3"}
	corpusZones    = []*time.Location{time.FixedZone("", 8*3600), time.FixedZone("", 0), time.FixedZone("", -7*3600), time.FixedZone("", 5*3600+45*60)}
	corpusGarbage  = []string{"", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "GET", "\x00\x00\x00\x00", "SSH-2.0-Go"}
)

// makeCorpus returns n varied lines with their values, deterministically.
func makeCorpus(n int) []sample {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC).Unix()
	out := make([]sample, n)
	for i := range out {
		s := &out[i]
		if rng.IntN(10) < 3 {
			s.addr = fmt.Sprintf("2001:db8:%x::%x", rng.IntN(0xffff), rng.IntN(0xffff))
		} else {
			s.addr = fmt.Sprintf("%d.%d.%d.%d", 1+rng.IntN(223), rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
		}
		s.realip = fmt.Sprintf("10.0.0.%d", 10+rng.IntN(2))
		s.t = time.Unix(base+rng.Int64N(86400), 0).In(corpusZones[rng.IntN(len(corpusZones))])
		_, s.off = s.t.Zone()
		switch r := rng.IntN(100); {
		case r < 3: // not HTTP: a TLS handshake on port 80, an empty line, ...
			s.request = pick(corpusGarbage)
		default:
			uri := pick(corpusPaths) + pick(corpusQueries)
			if r < 8 {
				uri += "/caf\u00e9?x=\"q\"\\" // escapes: UTF-8, quote, backslash
			}
			if r < 10 {
				uri += "/" + string(bytes.Repeat([]byte{'a'}, rng.IntN(2000)))
			}
			proto := "HTTP/1.1"
			if r%7 == 0 {
				proto = "HTTP/2.0"
			}
			s.method, s.uri, s.proto = some(pick(corpusMethods)), some(uri), some(proto)
			s.request = s.method.s + " " + uri + " " + proto
		}
		s.status = []int{200, 200, 200, 200, 204, 301, 304, 400, 404, 500, 502}[rng.IntN(11)]
		s.body = rng.Int64N(200000)
		s.sent = s.body + 150 + rng.Int64N(300)
		s.reqLen = 40 + rng.Int64N(2000)
		s.rt = time.Duration(rng.IntN(3000)) * time.Millisecond
		if rng.IntN(2) == 0 {
			s.referer = some(pick(corpusReferers))
		}
		if rng.IntN(20) != 0 {
			s.ua = some(pick(corpusUAs))
		}
		s.host = pick(corpusHosts)
		if rng.IntN(5) == 0 {
			s.user = some("alice")
		}
		s.backend = pick(corpusBackends)
		s.line = formatTrafficlab(s)
		s.combLog = formatCombined(s)
		s.event = formatEvent(s, s.line)
	}
	return out
}

// checker compares parsed records with samples without allocating, so the
// benchmarks can check every record they parse.
type checker struct {
	iRealip, iUser, iRequest int
}

func newChecker(p *Parser) checker {
	return checker{iRealip: p.Index("realip_remote_addr"), iUser: p.Index("remote_user"), iRequest: p.Index("request")}
}

func eqOpt(b []byte, o opt) bool {
	if !o.ok {
		return b == nil
	}
	return b != nil && string(b) == o.s
}

// check returns "" when rec holds s's values, else the first difference.
// combined selects the combined format's values.
func (c checker) check(rec *Record, s *sample, combined bool) string {
	if string(rec.ClientAddr()) != s.addr {
		return "remote_addr"
	}
	t, ok := rec.Time()
	if !ok || t.Unix() != s.t.Unix() {
		return "time_local"
	}
	if _, off := t.Zone(); off != s.off {
		return "time_local offset"
	}
	if !eqOpt(rec.Method(), s.method) || !eqOpt(rec.URI(), s.uri) || !eqOpt(rec.Protocol(), s.proto) {
		return "request parts"
	}
	if string(rec.Field(c.iRequest).Bytes()) != s.request {
		return "request"
	}
	if st, ok := rec.Status(); !ok || st != s.status {
		return "status"
	}
	if n, ok := rec.BodyBytesSent(); !ok || n != s.body {
		return "body_bytes_sent"
	}
	if !eqOpt(rec.Referer(), s.referer) || !eqOpt(rec.UserAgent(), s.ua) {
		return "referer or user agent"
	}
	if combined {
		if !eqOpt(rec.bytesAt(c.iUser), s.user) {
			return "remote_user"
		}
		return ""
	}
	if string(rec.bytesAt(c.iRealip)) != s.realip {
		return "realip_remote_addr"
	}
	if n, ok := rec.BytesSent(); !ok || n != s.sent {
		return "bytes_sent"
	}
	if n, ok := rec.RequestLength(); !ok || n != s.reqLen {
		return "request_length"
	}
	if d, ok := rec.RequestTime(); !ok || d != s.rt {
		return "request_time"
	}
	if string(rec.Host()) != s.host {
		return "host"
	}
	return ""
}

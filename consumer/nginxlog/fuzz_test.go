package nginxlog

import (
	"encoding/json"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// fuzzParsers are the formats arbitrary input is thrown at: the product's,
// nginx's, and formats that exercise lists, backtracking and the other
// escapings.
var fuzzParsers = []*Parser{
	MustCompile(Format),
	MustCompile(CombinedName),
	MustCompile(`$remote_addr $upstream_addr $upstream_status "$upstream_response_time" $status`),
	MustCompile(`$remote_addr $request $status $body_bytes_sent`),
	MustCompile(`{"t":"$time_iso8601","ua":"$http_user_agent","s":$status,"ms":$msec}`, WithEscape(EscapeJSON)),
	MustCompile(`$remote_user [$time_local] "$http_user_agent"`, WithEscape(EscapeNone)),
}

// FuzzParse checks two things. Any input, through every fuzz parser, either
// parses into a record whose JSON is valid or fails with a *ParseError or
// *EventError - never a panic. And a line nginx would write for random values
// in the trafficlab and combined formats, raw or in a filebeat event, parses
// back to exactly those values.
func FuzzParse(f *testing.F) {
	for _, tc := range parseTests {
		f.Add([]byte(tc.line), []byte{192, 0, 2, 1}, "/index.html", "https://r/", "curl/8", "www.example.com", "alice", "web-1",
			uint16(200), uint32(612), uint32(850), uint32(431), uint32(4), int64(1795564862), int16(480), uint8(0))
	}
	for _, s := range makeCorpus(20) {
		f.Add(s.event, []byte(netip.MustParseAddr("2001:db8::1").AsSlice()), "/a b\x00\"\\é", "-", "UA \"x\" \x7f\xff", "h", "-", "",
			uint16(404), uint32(0), uint32(1), uint32(0), uint32(12345), int64(0), int16(-570), uint8(7))
	}
	f.Fuzz(func(t *testing.T, raw, addr []byte, uri, referer, ua, host, user, backend string,
		status uint16, body, sent, reqLen, rtMillis uint32, unix int64, offMin int16, flags uint8) {
		for i, p := range fuzzParsers {
			var rec Record
			err := p.ParseInput(raw, &rec)
			if err == nil {
				if out := rec.AppendJSON(nil); !json.Valid(out) {
					t.Fatalf("parser %d: invalid JSON %q for %q", i, out, raw)
				}
				continue
			}
			var pe *ParseError
			var ee *EventError
			if !errors.As(err, &pe) && !errors.As(err, &ee) {
				t.Fatalf("parser %d: error %T %v", i, err, err)
			}
		}

		s := fuzzSample(addr, uri, referer, ua, host, user, backend, status, body, sent, reqLen, rtMillis, unix, offMin, flags)
		var rec Record
		for _, tc := range []struct {
			p        *Parser
			input    []byte
			combined bool
		}{
			{fuzzParsers[0], formatTrafficlab(&s), false},
			{fuzzParsers[1], formatCombined(&s), true},
			{fuzzParsers[0], formatEvent(&s, formatTrafficlab(&s)), false},
		} {
			if err := tc.p.ParseInput(tc.input, &rec); err != nil {
				t.Fatalf("%q: %v", tc.input, err)
			}
			if d := newChecker(tc.p).check(&rec, &s, tc.combined); d != "" {
				t.Fatalf("%q: wrong %s: %s", tc.input, d, rec.AppendJSON(nil))
			}
		}
		if string(rec.Backend()) != s.backend {
			t.Fatalf("backend %q, want %q", rec.Backend(), s.backend)
		}
	})
}

// fuzzSample turns fuzz arguments into values nginx could log.
func fuzzSample(addr []byte, uri, referer, ua, host, user, backend string,
	status uint16, body, sent, reqLen, rtMillis uint32, unix int64, offMin int16, flags uint8) sample {
	var s sample
	// Addresses are what nginx prints for a socket address.
	if len(addr) >= 16 {
		s.addr = netip.AddrFrom16([16]byte(addr[:16])).String()
	} else {
		var a4 [4]byte
		copy(a4[:], addr)
		s.addr = netip.AddrFrom4(a4).String()
	}
	s.realip = "10.0.0.10"
	// Times nginx can print: years 1970..9999, offsets in whole minutes.
	const maxUnix = 253402300799 - 2*86400
	unix %= maxUnix
	if unix < 0 {
		unix = -unix
	}
	off := int(offMin) % (24 * 60)
	s.t = time.Unix(unix+86400, 0).In(time.FixedZone("", off*60))
	s.off = off * 60
	methods := []string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND"}
	protos := []string{"HTTP/1.1", "HTTP/1.0", "HTTP/2.0"}
	s.method = some(methods[int(flags)%len(methods)])
	s.uri = some("/" + uri) // a request line's URI is never empty
	s.proto = some(protos[int(flags>>3)%len(protos)])
	s.request = s.method.s + " " + s.uri.s + " " + s.proto.s
	s.status, s.body, s.sent, s.reqLen = int(status), int64(body), int64(sent), int64(reqLen)
	s.rt = time.Duration(rtMillis) * time.Millisecond
	// A value that is exactly "-" is logged as "-", the same as no value.
	s.referer, s.ua, s.user = opt{referer, flags&0x20 == 0}, opt{ua, flags&0x40 == 0}, opt{user, flags&0x80 == 0}
	for _, o := range []*opt{&s.referer, &s.ua, &s.user} {
		if o.s == "-" {
			o.ok = false
		}
	}
	s.host = host
	if host == "-" {
		s.host = "_"
	}
	s.backend = backend
	return s
}

package nginxlog

import (
	"encoding/json"
	"errors"
	"hash/maphash"
	"strings"
	"testing"
)

func TestEventDecode(t *testing.T) {
	for _, tc := range []struct {
		name          string
		event         string
		message, host string
		noHost        bool
	}{
		{
			name:    "filebeat 7.17",
			event:   `{"@timestamp":"2026-11-25T00:01:02.345Z","@metadata":{"beat":"filebeat","type":"_doc","version":"7.17.29"},"log":{"offset":1234,"file":{"path":"/var/log/nginx/access.log"}},"message":"1.2.3.4 - [x] \"GET / HTTP/1.1\" 200","input":{"type":"log"},"host":{"name":"web-1"},"agent":{"type":"filebeat","version":"7.17.29"},"ecs":{"version":"1.12.0"}}`,
			message: `1.2.3.4 - [x] "GET / HTTP/1.1" 200`,
			host:    "web-1",
		},
		{
			name:    "JSON escapes in the message",
			event:   `{"message":"a \"q\" b\\x22c \u00e9 \/p \ud83d\ude00 \t\u003c","host":{"name":"kafka-1"}}`,
			message: "a \"q\" b\\x22c é /p 😀 \t<",
			host:    "kafka-1",
		},
		{
			name:    "host before message, whitespace, nested message keys ignored",
			event:   " {\n \"host\" : { \"os\": {\"name\": \"Debian\", \"message\": \"no\"}, \"ip\": [\"10.0.0.5\", \"fe80::1\"], \"name\" : \"web-2\" } ,\n \"fields\": {\"message\": \"not this\"}, \"tags\": [\"a\", {\"message\": \"nor this\"}], \"n\": -1.5e3, \"ok\": true, \"nil\": null, \"message\": \"the line\" } ",
			message: "the line",
			host:    "web-2",
		},
		{
			name:    "escaped key",
			event:   `{"mess\u0061ge":"x","\u0068ost":{"n\u0061me":"h"}}`,
			message: "x",
			host:    "h",
		},
		{
			name:    "host is not an object",
			event:   `{"host":"web-3","message":"x"}`,
			message: "x",
			noHost:  true,
		},
		{
			name:    "lone surrogate",
			event:   `{"message":"a\ud800b"}`,
			message: "a\ufffdb",
			noHost:  true,
		},
		{
			name:    "empty message",
			event:   `{"message":""}`,
			message: "",
			noHost:  true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ev Event
			// Decode twice into the same Event: reuse must not leak.
			for range 2 {
				if err := ev.Decode([]byte(tc.event)); err != nil {
					t.Fatal(err)
				}
				if string(ev.Message) != tc.message {
					t.Errorf("Message %q, want %q", ev.Message, tc.message)
				}
				if tc.noHost != (ev.Host == nil) || string(ev.Host) != tc.host {
					t.Errorf("Host %q, want %q", ev.Host, tc.host)
				}
			}
		})
	}
}

func TestEventDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ event, want string }{
		{`{"host":{"name":"web-1"}}`, `filebeat event column 1: no "message"`},
		{`{"message":"abc`, `filebeat event column 12: unterminated string`},
		{`{"message":"a\qb"}`, `filebeat event column 14: invalid escape in string`},
		{`{"message":"a\u12"}`, `filebeat event column 14: invalid escape in string`},
		{`{"message":42}`, `filebeat event column 12: "message" is not a string`},
		{`{"message":"x"} {"message":"y"}`, `filebeat event column 17: unexpected text after the event`},
		{`{"message":"x",}`, `filebeat event column 16: want a key`},
		{`{"message":"x" "host":{}}`, `filebeat event column 16: want "," or "}"`},
		{`{"a":{"b":[1,2}`, `filebeat event column 6: unterminated {`},
		{`{"a":,"message":"x"}`, `filebeat event column 6: want a value`},
		{`{"a" 1}`, `filebeat event column 6: want ":"`},
		{`{`, `filebeat event column 2: want a key`},
		{`[1]`, `filebeat event column 1: want a JSON object`},
	} {
		var ev Event
		err := ev.Decode([]byte(tc.event))
		if err == nil || err.Error() != tc.want {
			t.Errorf("Decode(%q)\n got %v\nwant %s", tc.event, err, tc.want)
		}
		if !errors.Is(err, ErrEvent) {
			t.Errorf("Decode(%q): %v is not ErrEvent", tc.event, err)
		}
		// Go's own decoder agrees that these are not usable events.
		var v struct {
			Message *string `json:"message"`
		}
		if json.Unmarshal([]byte(tc.event), &v) == nil && v.Message != nil {
			t.Errorf("encoding/json reads a message from %q", tc.event)
		}
	}
}

// TestEventMatchesEncodingJSON checks the hand-written reader against
// encoding/json on the benchmark corpus's events.
func TestEventMatchesEncodingJSON(t *testing.T) {
	var ev Event
	for _, s := range makeCorpus(300) {
		if err := ev.Decode(s.event); err != nil {
			t.Fatalf("%s: %v", s.event, err)
		}
		var v struct {
			Message string `json:"message"`
			Host    struct {
				Name string `json:"name"`
			} `json:"host"`
		}
		if err := json.Unmarshal(s.event, &v); err != nil {
			t.Fatal(err)
		}
		if string(ev.Message) != v.Message || string(ev.Host) != v.Host.Name {
			t.Fatalf("%s: got %q %q, encoding/json %q %q", s.event, ev.Message, ev.Host, v.Message, v.Host.Name)
		}
	}
}

func TestParseInput(t *testing.T) {
	p := MustCompile(Format)
	line := `203.0.113.7 10.0.0.11 [25/Nov/2026:08:01:02 +0800] "GET /caf\xC3\xA9?q=\x22x\x22 HTTP/1.1" 200 612 850 431 0.004 "-" "Mozilla/5.0" "www.example.com"`
	event, _ := json.Marshal(map[string]any{
		"@timestamp": "2026-11-25T00:01:03.000Z",
		"message":    line,
		"host":       map[string]any{"name": "web-1", "hostname": "web-1"},
		"log":        map[string]any{"file": map[string]any{"path": "/var/log/nginx/access.log"}, "offset": 99},
	})
	var raw, ev Record
	if err := p.ParseInput([]byte(line), &raw); err != nil {
		t.Fatal(err)
	}
	if err := p.ParseInput(event, &ev); err != nil {
		t.Fatal(err)
	}
	if string(ev.Backend()) != "web-1" || raw.Backend() != nil {
		t.Errorf("Backend %q %q", ev.Backend(), raw.Backend())
	}
	if string(ev.Line()) != line {
		t.Errorf("Line %q", ev.Line())
	}
	rawJSON, evJSON := string(raw.AppendJSON(nil)), string(ev.AppendJSON(nil))
	if evJSON != strings.TrimSuffix(rawJSON, "}")+`,"backend":"web-1"}` {
		t.Errorf("event JSON\n%s\nraw JSON\n%s", evJSON, rawJSON)
	}
	if string(ev.URI()) != `/café?q="x"` {
		t.Errorf("URI %q", ev.URI())
	}

	// An event without host.name is still an event: "backend" is null.
	if err := p.ParseInput([]byte(`{"message":"`+strings.ReplaceAll(strings.ReplaceAll(line, `\`, `\\`), `"`, `\"`)+`"}`), &ev); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(ev.AppendJSON(nil)), `,"backend":null}`) {
		t.Errorf("no host.name: %s", ev.AppendJSON(nil))
	}

	// A broken event is an event error, with the input kept for sampling.
	bad := []byte(`{"message":"x`)
	err := p.ParseInput(bad, &ev)
	if !errors.Is(err, ErrEvent) || string(ev.Line()) != string(bad) {
		t.Errorf("broken event: %v, Line %q", err, ev.Line())
	}
	// An event whose message does not match is a parse error.
	err = p.ParseInput([]byte(`{"message":"hello","host":{"name":"web-1"}}`), &ev)
	var pe *ParseError
	if !errors.As(err, &pe) || string(ev.Backend()) != "web-1" {
		t.Errorf("bad message: %v", err)
	}
}

// A JSON log_format: lines start with "{" too, yet are not filebeat events.
func TestParseInputJSONFormat(t *testing.T) {
	p := MustCompile(`{"ip":"$remote_addr","status":$status}`, WithEscape(EscapeJSON))
	var rec Record
	if err := p.ParseInput([]byte(`{"ip":"192.0.2.1","status":200}`), &rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.AppendJSON(nil); string(got) != `{"remote_addr":"192.0.2.1","status":200}` {
		t.Errorf("raw JSON line: %s", got)
	}
	if err := p.ParseInput([]byte(`{"message":"{\"ip\":\"192.0.2.1\",\"status\":200}","host":{"name":"web-1"}}`), &rec); err != nil {
		t.Fatal(err)
	}
	if got := rec.AppendJSON(nil); string(got) != `{"remote_addr":"192.0.2.1","status":200,"backend":"web-1"}` {
		t.Errorf("event: %s", got)
	}
}

func TestParseInputAllocs(t *testing.T) {
	p := MustCompile(Format)
	s := makeCorpus(1)[0]
	var rec Record
	if n := testing.AllocsPerRun(100, func() {
		if err := p.ParseInput(s.event, &rec); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ParseInput of an event allocates %v times", n)
	}
}

// TestEventID: filebeat encodes a map in no fixed order, so a copy it sends
// again may order the keys differently; the ID is the same. Another offset,
// read time, file, host or line is another event, and an event without
// offset or read time has no ID.
func TestEventID(t *testing.T) {
	seed := maphash.MakeSeed()
	id := func(s string) (uint64, bool) {
		t.Helper()
		var e Event
		if err := e.Decode([]byte(s)); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		return e.ID(seed)
	}
	const orig = `{"@timestamp":"2026-05-01T10:00:00.123Z","log":{"offset":310,"file":{"path":"/var/log/a.log"}},"message":"x","host":{"name":"web-1"}}`
	want, ok := id(orig)
	if !ok {
		t.Fatal("no ID")
	}
	for _, s := range []string{
		`{"host":{"name":"web-1"},"message":"x","log":{"file":{"path":"/var/log/a.log"},"offset":310},"@timestamp":"2026-05-01T10:00:00.123Z"}`,
		`{"agent":{"offset":1},"@timestamp":"2026-05-01T10:00:00.123Z","log":{"flags":["x"],"offset":310,"file":{"inode":"7","path":"/var/log/a.log"}},"message":"x","host":{"name":"web-1"}}`,
	} {
		if got, ok := id(s); !ok || got != want {
			t.Errorf("%s: ID %x %v, want %x", s, got, ok, want)
		}
	}
	for _, s := range []string{
		strings.Replace(orig, `310`, `311`, 1),
		strings.Replace(orig, `.123Z`, `.124Z`, 1),
		strings.Replace(orig, `a.log`, `b.log`, 1),
		strings.Replace(orig, `web-1`, `web-2`, 1),
		strings.Replace(orig, `"x"`, `"y"`, 1),
	} {
		if got, ok := id(s); !ok || got == want {
			t.Errorf("%s: ID %x %v, want another", s, got, ok)
		}
	}
	for _, s := range []string{
		`{"@timestamp":"2026-05-01T10:00:00.123Z","message":"x","host":{"name":"web-1"}}`,
		`{"log":{"offset":310},"message":"x"}`,
		`{"@timestamp":"2026-05-01T10:00:00.123Z","log":{"file":{"offset":310}},"message":"x"}`,
	} {
		if got, ok := id(s); ok {
			t.Errorf("%s: ID %x, want none", s, got)
		}
	}
}

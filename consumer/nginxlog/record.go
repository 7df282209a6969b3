package nginxlog

import (
	"hash/maphash"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Value is one parsed value of a Record. Its bytes alias the parsed line or
// the Record's buffer: they are valid until the next Parse into the Record.
type Value struct {
	b      []byte  // decoded string; for numbers and times, their text
	list   []Value // entries of an $upstream_* list
	t      time.Time
	i      int64 // integer, or a decimal's mantissa
	kind   Kind
	scale  uint8 // a decimal's digits after the point
	null   bool
	isList bool
}

// Kind returns the value's kind (for a list, the kind of its entries).
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether nginx wrote "-": the variable had no value.
func (v Value) IsNull() bool { return v.null }

// IsList reports whether v is an $upstream_* list; null lists are lists too.
func (v Value) IsList() bool { return v.isList }

// Len returns the number of entries of a list, 0 for other values.
func (v Value) Len() int { return len(v.list) }

// Index returns entry i of a list.
func (v Value) Index(i int) Value { return v.list[i] }

// Bytes returns a string value with nginx's escapes decoded, or the text of a
// number or time as logged; nil when null.
func (v Value) Bytes() []byte { return v.b }

// String returns Bytes as a string (allocating), "-" for null, and a list's
// entries joined with ", ".
func (v Value) String() string {
	if v.isList && !v.null {
		var b []byte
		for k, e := range v.list {
			if k > 0 {
				b = append(b, ", "...)
			}
			b = append(b, e.String()...)
		}
		return string(b)
	}
	if v.null {
		return "-"
	}
	return string(v.b)
}

// Int returns an integer value; a decimal is truncated, anything else is 0.
func (v Value) Int() int64 {
	switch v.kind {
	case KindInt:
		return v.i
	case KindDecimal:
		return v.i / pow10[v.scale]
	}
	return 0
}

// Float returns a number as a float64, 0 for anything else.
func (v Value) Float() float64 {
	switch v.kind {
	case KindInt:
		return float64(v.i)
	case KindDecimal:
		// Exact for nginx's values: both operands are exact float64s.
		return float64(v.i) / float64(pow10[v.scale])
	}
	return 0
}

// Duration returns a number of seconds ($request_time, ...) as a Duration,
// without floating-point rounding; 0 for anything else.
func (v Value) Duration() time.Duration {
	switch v.kind {
	case KindInt:
		return mulSat(v.i, int64(time.Second))
	case KindDecimal:
		if v.scale <= 9 {
			return mulSat(v.i, pow10[9-v.scale])
		}
		return time.Duration(v.i / pow10[v.scale-9])
	}
	return 0
}

func mulSat(a, b int64) time.Duration {
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return time.Duration(a * b)
}

var pow10 = [...]int64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18}

// Time returns a time value, carrying the UTC offset the line was written
// with. A decimal ($msec) is read as seconds since the epoch, in UTC.
func (v Value) Time() time.Time {
	switch v.kind {
	case KindTime:
		return v.t
	case KindDecimal:
		d := v.Duration()
		return time.Unix(int64(d/time.Second), int64(d%time.Second)).UTC()
	}
	return time.Time{}
}

// jsonTime is RFC 3339 with a numeric offset even at UTC ("+00:00", not
// "Z"), so the offset the line was written with is kept.
const jsonTime = "2006-01-02T15:04:05-07:00"

// AppendJSON appends v as JSON: null, a number, a string (times in RFC 3339)
// or an array of those for lists.
func (v Value) AppendJSON(dst []byte) []byte {
	if v.null {
		return append(dst, "null"...)
	}
	if v.isList {
		dst = append(dst, '[')
		for k, e := range v.list {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = e.AppendJSON(dst)
		}
		return append(dst, ']')
	}
	switch v.kind {
	case KindInt:
		return strconv.AppendInt(dst, v.i, 10)
	case KindDecimal:
		return appendDecimal(dst, v.i, v.scale)
	case KindTime:
		dst = append(dst, '"')
		dst = v.t.AppendFormat(dst, jsonTime)
		return append(dst, '"')
	}
	return AppendJSONString(dst, v.b)
}

// appendDecimal writes mantissa m with scale digits after the point, keeping
// trailing zeros ("0.010") as nginx wrote them.
func appendDecimal(dst []byte, m int64, scale uint8) []byte {
	var tmp [24]byte
	s := strconv.AppendInt(tmp[:0], m, 10)
	if scale == 0 {
		return append(dst, s...)
	}
	for len(s) <= int(scale) {
		s = append([]byte{'0'}, s...)
	}
	k := len(s) - int(scale)
	dst = append(dst, s[:k]...)
	dst = append(dst, '.')
	return append(dst, s[k:]...)
}

// AppendJSONString appends s as a JSON string, the way Record.AppendJSON
// writes strings. Bytes that are not UTF-8 (a decoded \xFC from a TLS probe,
// say) become U+FFFD, as JSON has no way to carry them.
func AppendJSONString(dst []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Record holds the values of one parsed line. The zero Record is ready to
// use; reuse one per goroutine so that parsing does not allocate.
type Record struct {
	p       *Parser
	line    []byte
	fields  []Value
	buf     []byte  // values whose escapes were decoded
	lists   []Value // entries of list values
	event   Event   // the filebeat event of the last ParseInput
	backend []byte
	// fromEvent: the line came from a filebeat event, so JSON output has a
	// "backend" key even when the event had no host.name.
	fromEvent bool
}

func (r *Record) reset(p *Parser, line []byte) {
	r.p, r.line, r.backend, r.fromEvent = p, line, nil, false
	if cap(r.fields) < len(p.fields) {
		r.fields = make([]Value, len(p.fields))
	}
	r.fields = r.fields[:len(p.fields)]
	r.buf, r.lists = r.buf[:0], r.lists[:0]
}

// Line returns the parsed log line: the input of Parse, or the message of a
// filebeat event. It is there even when parsing failed, for sampling.
func (r *Record) Line() []byte { return r.line }

// Backend returns the name of the host that shipped the line (host.name of a
// filebeat event), nil for raw lines.
func (r *Record) Backend() []byte { return r.backend }

// EventID returns the ID of the filebeat event the line came from (see
// Event.ID); ok is false for a raw line or an event without one.
func (r *Record) EventID(seed maphash.Seed) (id uint64, ok bool) {
	if !r.fromEvent {
		return 0, false
	}
	return r.event.ID(seed)
}

// NumFields returns the number of values, as in Parser.Fields.
func (r *Record) NumFields() int { return len(r.fields) }

// Name returns the name of value i.
func (r *Record) Name(i int) string { return r.p.fields[i].name }

// Field returns value i, in the order of Parser.Fields.
func (r *Record) Field(i int) Value { return r.fields[i] }

// Get returns the value of a variable (name without "$", lower case), or of
// a part of $request; ok is false when the format does not have it.
func (r *Record) Get(name string) (v Value, ok bool) {
	if r.p == nil {
		return Value{}, false
	}
	i, ok := r.p.byName[name]
	if !ok {
		return Value{}, false
	}
	return r.fields[i], true
}

func (r *Record) bytesAt(i int) []byte {
	if i < 0 || r.fields[i].null {
		return nil
	}
	return r.fields[i].b
}

func (r *Record) intAt(i int) (int64, bool) {
	if i < 0 || r.fields[i].null || r.fields[i].kind != KindInt {
		return 0, false
	}
	return r.fields[i].i, true
}

// ClientAddr returns $remote_addr, the client (the web servers' realip
// module puts the address from the load balancer's X-Real-IP there).
func (r *Record) ClientAddr() []byte { return r.bytesAt(r.p.iClient) }

// Time returns when the request was logged: $time_local, else
// $time_iso8601, else $msec.
func (r *Record) Time() (time.Time, bool) {
	i := r.p.iTime
	if i < 0 || r.fields[i].null {
		return time.Time{}, false
	}
	return r.fields[i].Time(), true
}

// Method returns the request method, nil when the request line was not HTTP.
func (r *Record) Method() []byte { return r.bytesAt(r.p.iMethod) }

// URI returns the request URI with its query ($request_uri, or the one in
// $request; else $uri), nil when the request line was not HTTP.
func (r *Record) URI() []byte { return r.bytesAt(r.p.iURI) }

// Protocol returns the request's protocol, such as "HTTP/1.1".
func (r *Record) Protocol() []byte { return r.bytesAt(r.p.iProto) }

// Status returns the response status.
func (r *Record) Status() (int, bool) {
	n, ok := r.intAt(r.p.iStatus)
	return int(n), ok
}

// BodyBytesSent returns $body_bytes_sent.
func (r *Record) BodyBytesSent() (int64, bool) { return r.intAt(r.p.iBody) }

// BytesSent returns $bytes_sent, the bytes out including headers.
func (r *Record) BytesSent() (int64, bool) { return r.intAt(r.p.iSent) }

// RequestLength returns $request_length, the bytes in including headers.
func (r *Record) RequestLength() (int64, bool) { return r.intAt(r.p.iReqLen) }

// RequestTime returns $request_time.
func (r *Record) RequestTime() (time.Duration, bool) {
	i := r.p.iReqTime
	if i < 0 || r.fields[i].null {
		return 0, false
	}
	return r.fields[i].Duration(), true
}

// Host returns $host (else $http_host, else $server_name).
func (r *Record) Host() []byte { return r.bytesAt(r.p.iHost) }

// Referer returns $http_referer.
func (r *Record) Referer() []byte { return r.bytesAt(r.p.iReferer) }

// UserAgent returns $http_user_agent.
func (r *Record) UserAgent() []byte { return r.bytesAt(r.p.iUA) }

// AppendJSON appends the record as one JSON object: the values in format
// order, keyed by variable name, then "backend" for a filebeat event.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, '{')
	n := 0
	for i := range r.fields {
		f := &r.p.fields[i]
		if f.dup {
			continue // a JSON object has one value per key: the first occurrence
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst = append(dst, f.jsonKey...)
		dst = r.fields[i].AppendJSON(dst)
	}
	if r.fromEvent && r.p.iBackend < 0 {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"backend":`...)
		if r.backend == nil {
			dst = append(dst, "null"...)
		} else {
			dst = AppendJSONString(dst, r.backend)
		}
	}
	return append(dst, '}')
}

package nginxlog

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
)

// ErrEvent is the cause of every EventError.
var ErrEvent = errors.New("bad filebeat event")

// EventError reports input that starts like a filebeat JSON event but is not
// one the consumer can read.
type EventError struct {
	Column int // 1-based byte offset in the event
	Msg    string
}

func (e *EventError) Error() string {
	return fmt.Sprintf("filebeat event column %d: %s", e.Column, e.Msg)
}

func (e *EventError) Unwrap() error { return ErrEvent }

// Event holds what the consumer needs from a filebeat event such as
//
//	{"@timestamp":"...","message":"<the access-log line>","host":{"name":"web-1"},"log":{...},...}
//
// The zero Event is ready to use; reuse it so that decoding does not allocate.
type Event struct {
	Message []byte // the log line, JSON escapes decoded
	Host    []byte // host.name: the machine that shipped the line; nil when absent
	// Where and when filebeat read the line: @timestamp, log.file.path and
	// log.offset, raw as they appear in the event; nil when absent. A copy
	// filebeat sends again carries the same ones (see ID).
	Stamp, Path, Offset []byte
	buf                 []byte
}

// Decode reads one filebeat event. Message and Host alias data or e's buffer,
// and are valid until the next Decode.
//
// It is not a general JSON decoder: it walks the top-level object, decodes
// the "message" string and host.name, and skips every other value - strings
// with their escapes, nested objects and arrays - without building anything.
// A "message" key nested inside another value is therefore never mistaken
// for the line. @timestamp (when filebeat read the line) only identifies
// the event: the line's own time is the time of the request.
func (e *Event) Decode(data []byte) error {
	e.Message, e.Host, e.Stamp, e.Path, e.Offset, e.buf = nil, nil, nil, nil, nil, e.buf[:0]
	r := jsonReader{data: data}
	r.ws()
	if !r.eat('{') {
		return r.errorf("want a JSON object")
	}
	found := false
	for first := true; ; first = false {
		key, more, err := r.member(first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		switch {
		case r.keyIs(key, "message"):
			if r.peek() != '"' {
				return r.errorf(`"message" is not a string`)
			}
			if e.Message, err = r.decodeString(&e.buf); err != nil {
				return err
			}
			found = true
		case r.keyIs(key, "host") && r.peek() == '{':
			if err := e.decodeHost(&r); err != nil {
				return err
			}
		case r.keyIs(key, "@timestamp") && r.peek() == '"':
			if e.Stamp, err = r.str(); err != nil {
				return err
			}
		case r.keyIs(key, "log") && r.peek() == '{':
			if err := e.decodeLog(&r); err != nil {
				return err
			}
		default:
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
	r.ws()
	if r.pos != len(data) {
		return r.errorf("unexpected text after the event")
	}
	if !found {
		return &EventError{Column: 1, Msg: `no "message"`}
	}
	return nil
}

// decodeHost reads the "host" object for its "name".
func (e *Event) decodeHost(r *jsonReader) (err error) {
	e.Host, err = r.objectString("name", &e.buf)
	return err
}

// objectString reads the object at r.pos for the string member name,
// skipping every other member; nil when it has none. With buf the string
// is decoded (decodeString), without it returned raw (str).
func (r *jsonReader) objectString(name string, buf *[]byte) (v []byte, err error) {
	r.pos++ // '{'
	for first := true; ; first = false {
		key, more, err := r.member(first)
		if err != nil || !more {
			return v, err
		}
		if r.keyIs(key, name) && r.peek() == '"' {
			if buf != nil {
				v, err = r.decodeString(buf)
			} else {
				v, err = r.str()
			}
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := r.skip(); err != nil {
			return nil, err
		}
	}
}

// decodeLog reads the "log" object for its "offset" and "file"."path".
func (e *Event) decodeLog(r *jsonReader) error {
	r.pos++ // '{'
	for first := true; ; first = false {
		key, more, err := r.member(first)
		if err != nil || !more {
			return err
		}
		switch {
		case r.keyIs(key, "offset") && r.peek() != '"' && r.peek() != '{' && r.peek() != '[':
			start := r.pos
			if err := r.skip(); err != nil {
				return err
			}
			e.Offset = r.data[start:r.pos]
		case r.keyIs(key, "file") && r.peek() == '{':
			if e.Path, err = r.objectString("path", nil); err != nil {
				return err
			}
		default:
			if err := r.skip(); err != nil {
				return err
			}
		}
	}
}

// ID returns a hash of what makes the event one line read once: the host,
// the file, the offset, the time of reading and the line. Filebeat sends a
// batch again when Kafka's answer was lost (it delivers at least once); the
// copies have the same ID. ok is false for an event without log.offset or
// @timestamp, which cannot be told from a genuine repeat. The hash is seeded:
// compare IDs made with one seed only.
func (e *Event) ID(seed maphash.Seed) (id uint64, ok bool) {
	if e.Offset == nil || e.Stamp == nil {
		return 0, false
	}
	var h maphash.Hash
	h.SetSeed(seed)
	for _, part := range [...][]byte{e.Host, e.Path, e.Offset, e.Stamp} {
		h.Write(part)
		h.WriteByte(0) // "ab"+"c" is not "a"+"bc"
	}
	h.Write(e.Message)
	return h.Sum64(), true
}

// ParseInput parses one line of input: a filebeat JSON event (input starting
// with "{"), whose message is parsed and whose host.name becomes the
// Record's Backend, or else a raw log line. For a format that itself starts
// with "{" (a JSON log_format), input that is not a filebeat event with a
// "message" is parsed as a raw line.
func (p *Parser) ParseInput(data []byte, rec *Record) error {
	if len(data) > 0 && data[0] == '{' {
		err := rec.event.Decode(data)
		if err == nil {
			rec.reset(p, rec.event.Message)
			rec.backend, rec.fromEvent = rec.event.Host, true
			return p.parse(rec.event.Message, rec)
		}
		if !p.brace {
			rec.reset(p, data) // Line is the input, for sampling rejects
			return err
		}
	}
	return p.Parse(data, rec)
}

// jsonReader is the minimal JSON walker behind Event.Decode.
type jsonReader struct {
	data []byte
	pos  int
}

func (r *jsonReader) errorf(format string, args ...any) error {
	return &EventError{Column: r.pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (r *jsonReader) ws() {
	// filebeat writes no whitespace: make that case one comparison.
	if r.pos < len(r.data) && r.data[r.pos] > ' ' {
		return
	}
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

func (r *jsonReader) peek() byte {
	if r.pos < len(r.data) {
		return r.data[r.pos]
	}
	return 0
}

func (r *jsonReader) eat(c byte) bool {
	if r.peek() == c {
		r.pos++
		return true
	}
	return false
}

// member reads the next `"key":` of an object whose "{" was read, leaving
// the reader at the value; more is false at the closing "}".
func (r *jsonReader) member(first bool) (key []byte, more bool, err error) {
	r.ws()
	if r.eat('}') {
		return nil, false, nil
	}
	if !first {
		if !r.eat(',') {
			return nil, false, r.errorf(`want "," or "}"`)
		}
		r.ws()
	}
	if r.peek() != '"' {
		return nil, false, r.errorf("want a key")
	}
	key, err = r.str()
	if err != nil {
		return nil, false, err
	}
	r.ws()
	if !r.eat(':') {
		return nil, false, r.errorf(`want ":"`)
	}
	r.ws()
	return key, true, nil
}

// keyIs compares a raw key with name, decoding escapes only if the key has
// any.
func (r *jsonReader) keyIs(key []byte, name string) bool {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key) == name
	}
	var tmp [32]byte
	dec, _ := appendJSONUnescape(tmp[:0], key)
	return string(dec) == name
}

// str reads a string at r.pos and returns its raw body, escapes undecoded.
func (r *jsonReader) str() ([]byte, error) {
	data, start := r.data, r.pos+1
	// Keys and most values are short: a plain loop finds their end sooner
	// than the call into IndexByte would.
	for i := start; i < len(data) && i < start+24; i++ {
		switch data[i] {
		case '"':
			r.pos = i + 1
			return data[start:i], nil
		case '\\':
			return r.strSlow(start)
		}
	}
	return r.strSlow(start)
}

// strSlow is str for long strings and strings with escapes.
func (r *jsonReader) strSlow(start int) ([]byte, error) {
	for i := start; ; {
		q := bytes.IndexByte(r.data[i:], '"')
		if q < 0 {
			r.pos = start - 1
			return nil, r.errorf("unterminated string")
		}
		q += i
		n := 0 // backslashes before the quote: an odd count escapes it
		for k := q - 1; k >= start && r.data[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			r.pos = q + 1
			return r.data[start:q], nil
		}
		i = q + 1
	}
}

// decodeString reads a string and decodes it, in one pass: a message has an
// escaped quote for every quote of the log line. The result aliases the
// input when the string has no escapes, else it is appended to buf.
func (r *jsonReader) decodeString(buf *[]byte) ([]byte, error) {
	data, start := r.data, r.pos+1
	q := bytes.IndexByte(data[start:], '"')
	if q < 0 {
		return nil, r.errorf("unterminated string")
	}
	q += start
	k := indexByteFrom(data, start, '\\')
	if k < 0 || k > q {
		r.pos = q + 1
		return data[start:q], nil
	}
	out, b0 := *buf, len(*buf)
	for i := start; ; {
		// k is the next backslash (or -1), q the next quote at or after i.
		if k < 0 || q < k {
			out = append(out, data[i:q]...)
			r.pos = q + 1
			break
		}
		out = append(out, data[i:k]...)
		var n int
		var ok bool
		if out, n, ok = appendJSONEscape(out, data[k:]); !ok {
			r.pos = k
			*buf = out[:b0]
			return nil, r.errorf("invalid escape in string")
		}
		i = k + n
		k = indexByteFrom(data, i, '\\')
		if q < i {
			if q = indexByteFrom(data, i, '"'); q < 0 {
				r.pos = start - 1
				*buf = out[:b0]
				return nil, r.errorf("unterminated string")
			}
		}
	}
	*buf = out
	end := len(out)
	return out[b0:end:end], nil
}

func indexByteFrom(b []byte, from int, c byte) int {
	i := bytes.IndexByte(b[from:], c)
	if i < 0 {
		return -1
	}
	return from + i
}

// skip passes over one value of any type.
func (r *jsonReader) skip() error {
	switch c := r.peek(); c {
	case '"':
		_, err := r.str()
		return err
	case '{', '[':
		// Strings are passed with IndexByte; only the short stretches of
		// structure between them are looked at byte by byte.
		start := r.pos
		depth := 0
		for r.pos < len(r.data) {
			switch r.data[r.pos] {
			case '"':
				if _, err := r.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					r.pos++
					return nil
				}
			}
			r.pos++
		}
		r.pos = start
		return r.errorf("unterminated %c", c)
	default:
		// A number, true, false or null: everything up to the next delimiter.
		start := r.pos
		for r.pos < len(r.data) {
			switch r.data[r.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if r.pos == start {
					return r.errorf("want a value")
				}
				return nil
			}
			r.pos++
		}
		if r.pos == start {
			return r.errorf("want a value")
		}
		return nil
	}
}

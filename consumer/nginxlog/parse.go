package nginxlog

import (
	"bytes"
	"errors"
	"fmt"
)

// Causes of a ParseError, for errors.Is: reject counters tell a line that is
// not in the format from one whose value is out of place.
var (
	// ErrMismatch: the line's literal text does not match the format.
	ErrMismatch = errors.New("line does not match the log format")
	// ErrValue: a typed value (time, number, list entry) is malformed.
	ErrValue = errors.New("malformed value")
)

// ParseError says where and why a line did not parse.
type ParseError struct {
	Column int    // 1-based byte offset in the line
	Field  string // the variable, without "$"; empty for literal text
	Msg    string
	Err    error // ErrMismatch or ErrValue
}

func (e *ParseError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("column %d: %s", e.Column, e.Msg)
	}
	return fmt.Sprintf("column %d: $%s: %s", e.Column, e.Field, e.Msg)
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxBacktrack bounds the candidate ends tried for ambiguous values, so that
// a hostile line costs a bounded amount of work.
const maxBacktrack = 256

// Parse parses one line (without its newline) into rec, which may be reused
// from line to line: it is overwritten, and nothing is allocated once its
// buffers have grown to fit. rec's values alias line, so they are valid while
// line is and until the next Parse into rec. On error rec's values are
// undefined and the error is a *ParseError.
func (p *Parser) Parse(line []byte, rec *Record) error {
	rec.reset(p, line)
	return p.parse(line, rec)
}

func (p *Parser) parse(line []byte, rec *Record) error {
	err := p.parseFast(line, rec)
	if err == nil || !p.choice {
		return err
	}
	// Some value may contain the literal that ends it (an unquoted $request
	// followed by a space, say): try its later occurrences too. The first
	// error still explains the failure best, so it is the one returned.
	rec.buf, rec.lists = rec.buf[:0], rec.lists[:0]
	m := matcher{p: p, rec: rec, line: line, budget: maxBacktrack}
	if bytes.HasPrefix(line, p.prefix) && m.match(0, len(p.prefix)) {
		return nil
	}
	return err
}

// parseFast takes the first occurrence of every delimiter, which is the
// right one for any line nginx wrote with a format whose values cannot
// contain their delimiters (such as Format).
func (p *Parser) parseFast(line []byte, rec *Record) error {
	if !bytes.HasPrefix(line, p.prefix) {
		return &ParseError{Column: 1, Msg: fmt.Sprintf("want %s, found %s", quote(p.prefix), excerpt(line, 0)), Err: ErrMismatch}
	}
	pos := len(p.prefix)
	for i := range p.steps {
		st := &p.steps[i]
		end, next := p.bound(st, line, pos, i == len(p.steps)-1)
		if end < 0 {
			msg := "the line ends before it"
			if pos < len(line) {
				msg = fmt.Sprintf("no %s after it (value starts %s)", quote(st.delim), excerpt(line, pos))
			}
			return &ParseError{Column: pos + 1, Field: st.name, Msg: msg, Err: ErrMismatch}
		}
		if err := p.set(rec, st, line[pos:end], pos); err != nil {
			return err
		}
		pos = next
	}
	if pos != len(line) {
		return &ParseError{Column: pos + 1, Msg: fmt.Sprintf("unexpected %s after the end of the format", excerpt(line, pos)), Err: ErrMismatch}
	}
	return nil
}

// bound finds where the value of st starting at pos ends, and where the next
// value starts; end is -1 when the delimiter is missing.
func (p *Parser) bound(st *step, line []byte, pos int, last bool) (end, next int) {
	if len(st.delim) == 0 {
		return len(line), len(line) // the last variable runs to the end of the line
	}
	if last && st.choice {
		// The closing literal is the line's suffix; anchoring there keeps a
		// copy of it inside the value from cutting the value short.
		end = len(line) - len(st.delim)
		if end < pos || !bytes.Equal(line[end:], st.delim) {
			return -1, -1
		}
		return end, len(line)
	}
	end = p.scan(st, line, pos)
	if end < 0 {
		return -1, -1
	}
	return end, end + len(st.delim)
}

// scan returns the index of the delimiter that ends the value of st at pos,
// or -1.
func (p *Parser) scan(st *step, line []byte, pos int) int {
	switch st.class {
	case classTime:
		// $time_local contains a space, so take its fixed width when the
		// delimiter is there; otherwise ("-", or a malformed time) search, and
		// let the time parser report what is wrong.
		if e := pos + st.width; e <= len(line) && bytes.HasPrefix(line[e:], st.delim) {
			return e
		}
	case classList:
		return indexList(line, pos, st.delim)
	}
	if st.jsonQuote {
		return indexJSON(line, pos, st.delim)
	}
	return index(line, pos, st.delim)
}

func index(line []byte, from int, delim []byte) int {
	var i int
	if len(delim) == 1 {
		i = bytes.IndexByte(line[from:], delim[0])
	} else {
		i = bytes.Index(line[from:], delim)
	}
	if i < 0 {
		return -1
	}
	return from + i
}

// indexJSON is index for EscapeJSON values, where `\"` is a quote inside the
// value: a delimiter starting with `"` preceded by an odd number of
// backslashes is skipped.
func indexJSON(line []byte, from int, delim []byte) int {
	start := from
	for {
		i := index(line, from, delim)
		if i < 0 {
			return -1
		}
		n := 0
		for k := i - 1; k >= start && line[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i
		}
		from = i + 1
	}
}

// indexList is index for $upstream_* lists, skipping occurrences of the
// delimiter that are part of a ", " or " : " entry separator.
func indexList(line []byte, from int, delim []byte) int {
	for {
		i := index(line, from, delim)
		if i < 0 || !inListSep(line, i) {
			return i
		}
		from = i + 1
	}
}

// inListSep reports whether line[i] is a byte of a ", " or " : " separator.
func inListSep(line []byte, i int) bool {
	at := func(k int, c byte) bool { return k >= 0 && k < len(line) && line[k] == c }
	switch line[i] {
	case ',':
		return at(i+1, ' ')
	case ':':
		return at(i-1, ' ') && at(i+1, ' ')
	case ' ':
		return at(i-1, ',') || at(i+1, ':') && at(i+2, ' ') || at(i-1, ':') && at(i-2, ' ')
	}
	return false
}

// set parses raw, the text of st's value that starts at column pos, into rec.
func (p *Parser) set(rec *Record, st *step, raw []byte, pos int) error {
	v := &rec.fields[st.field]
	if len(raw) == 1 && raw[0] == '-' || len(raw) == 0 && st.emptyNull {
		*v = Value{kind: st.kind, null: true, isList: st.list}
		if st.request {
			p.setRequest(rec, st, nil)
		}
		return nil
	}
	if st.list {
		return p.setList(rec, st, v, raw, pos)
	}
	switch st.kind {
	case KindInt:
		n, ok := parseInt(raw)
		if !ok {
			return valueError(st, raw, pos, "an integer")
		}
		*v = Value{kind: KindInt, b: raw, i: n}
	case KindDecimal:
		m, scale, ok := parseDecimal(raw)
		if !ok {
			return valueError(st, raw, pos, "a decimal number")
		}
		*v = Value{kind: KindDecimal, b: raw, i: m, scale: scale}
	case KindTime:
		var t timeValue
		var ok bool
		if st.iso {
			t, ok = parseTimeISO(raw)
		} else {
			t, ok = parseTimeLocal(raw)
		}
		if !ok {
			if st.iso {
				return valueError(st, raw, pos, "a time like 2006-01-02T15:04:05-07:00")
			}
			return valueError(st, raw, pos, "a time like 02/Jan/2006:15:04:05 -0700")
		}
		*v = Value{kind: KindTime, b: raw, t: t.time()}
	default:
		*v = Value{b: p.unescape(rec, raw)}
		if st.request {
			p.setRequest(rec, st, raw)
		}
	}
	return nil
}

func valueError(st *step, raw []byte, pos int, want string) error {
	return &ParseError{Column: pos + 1, Field: st.name, Msg: fmt.Sprintf("want %s, found %s", want, excerpt(raw, 0)), Err: ErrValue}
}

// setRequest fills the parts of $request. raw is the request line as logged
// (nil when it was "-"); its spaces are real spaces, as nginx escapes neither
// way. A request line that is not METHOD URI [HTTP/x] - an empty line, a TLS
// handshake sent to a plain-HTTP port, a lone "GET" - leaves all parts null:
// it is still a request, with a status and bytes, just not an HTTP one.
func (p *Parser) setRequest(rec *Record, st *step, raw []byte) {
	var parts [3][]byte
	ok := false
	if raw != nil {
		parts[0], parts[1], parts[2], ok = splitRequestLine(raw)
	}
	for k, fi := range st.req {
		if fi < 0 {
			continue
		}
		if !ok || parts[k] == nil {
			rec.fields[fi] = Value{null: true}
			continue
		}
		rec.fields[fi] = Value{b: p.unescape(rec, parts[k])}
	}
}

// splitRequestLine splits "METHOD URI HTTP/x.y". The URI is everything
// between the first and the last space, because nginx accepts spaces in the
// URI; "METHOD URI" alone is an HTTP/0.9 request, with a nil protocol.
func splitRequestLine(raw []byte) (method, uri, proto []byte, ok bool) {
	sp := bytes.IndexByte(raw, ' ')
	if sp <= 0 || !isMethod(raw[:sp]) {
		return nil, nil, nil, false
	}
	rest := raw[sp+1:]
	ls := bytes.LastIndexByte(rest, ' ')
	if ls < 0 {
		if len(rest) == 0 {
			return nil, nil, nil, false
		}
		return raw[:sp], rest, nil, true
	}
	if ls == 0 || !bytes.HasPrefix(rest[ls+1:], []byte("HTTP/")) {
		return nil, nil, nil, false
	}
	return raw[:sp], rest[:ls], rest[ls+1:], true
}

// isMethod accepts what nginx accepts as a method: upper-case letters, "_"
// and "-".
func isMethod(b []byte) bool {
	if len(b) > 32 {
		return false
	}
	for _, c := range b {
		if (c < 'A' || c > 'Z') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// setList parses an $upstream_* list: entries separated by ", " (servers
// tried for one upstream) and " : " (upstreams of internal redirects). Each
// entry may be "-"; an empty entry is null too. The separators are dropped:
// the list is flat.
func (p *Parser) setList(rec *Record, st *step, v *Value, raw []byte, pos int) error {
	start := len(rec.lists)
	rest, off := raw, pos
	for {
		entry, next, more := cutListEntry(rest)
		e := Value{kind: st.kind}
		switch {
		case len(entry) == 0 || len(entry) == 1 && entry[0] == '-':
			e.null = true
		case st.kind == KindInt:
			n, ok := parseInt(entry)
			if !ok {
				return valueError(st, entry, off, "a list of integers")
			}
			e.b, e.i = entry, n
		case st.kind == KindDecimal:
			m, scale, ok := parseDecimal(entry)
			if !ok {
				return valueError(st, entry, off, "a list of decimal numbers")
			}
			e.b, e.i, e.scale = entry, m, scale
		default:
			e.b = p.unescape(rec, entry)
		}
		rec.lists = append(rec.lists, e)
		if !more {
			break
		}
		off += len(rest) - len(next)
		rest = next
	}
	end := len(rec.lists)
	*v = Value{kind: st.kind, isList: true, list: rec.lists[start:end:end]}
	return nil
}

func cutListEntry(s []byte) (entry, rest []byte, more bool) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ',':
			if i+1 < len(s) && s[i+1] == ' ' {
				return s[:i], s[i+2:], true
			}
		case ' ':
			if i+2 < len(s) && s[i+1] == ':' && s[i+2] == ' ' {
				return s[:i], s[i+3:], true
			}
		}
	}
	return s, nil, false
}

// parseInt parses a non-negative decimal integer of at most 18 digits, which
// cannot overflow.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		d := c - '0'
		if d > 9 {
			return 0, false
		}
		n = n*10 + int64(d)
	}
	return n, true
}

// parseDecimal parses "123" or "0.004" into a mantissa and the number of
// digits after the point, so that the value is kept exactly (0.010 stays
// 0.010, and converts to a Duration without rounding).
func parseDecimal(b []byte) (m int64, scale uint8, ok bool) {
	if len(b) == 0 || len(b) > 19 || b[0] == '.' || b[len(b)-1] == '.' {
		return 0, 0, false
	}
	dot := -1
	for i, c := range b {
		if c == '.' {
			if dot >= 0 {
				return 0, 0, false
			}
			dot = i
			continue
		}
		d := c - '0'
		if d > 9 {
			return 0, 0, false
		}
		m = m*10 + int64(d)
	}
	if dot >= 0 {
		scale = uint8(len(b) - dot - 1)
	}
	return m, scale, true
}

// matcher is the backtracking parse, for lines the first-occurrence parse
// rejected in formats where a value may contain its own delimiter.
type matcher struct {
	p      *Parser
	rec    *Record
	line   []byte
	budget int
}

func (m *matcher) match(si, pos int) bool {
	p, line := m.p, m.line
	if si == len(p.steps) {
		return pos == len(line)
	}
	st := &p.steps[si]
	last := si == len(p.steps)-1
	if !st.choice || last {
		end, next := p.bound(st, line, pos, last)
		return end >= 0 && p.set(m.rec, st, line[pos:end], pos) == nil && m.match(si+1, next)
	}
	bufLen, listLen := len(m.rec.buf), len(m.rec.lists)
	for from := pos; ; {
		m.budget--
		if m.budget < 0 {
			return false
		}
		end := index(line, from, st.delim)
		if end < 0 {
			return false
		}
		if p.set(m.rec, st, line[pos:end], pos) == nil && m.match(si+1, end+len(st.delim)) {
			return true
		}
		// Undo what the failed attempt decoded; earlier values keep theirs.
		m.rec.buf, m.rec.lists = m.rec.buf[:bufLen], m.rec.lists[:listLen]
		from = end + 1
	}
}

// quote quotes a literal for an error message.
func quote(b []byte) string { return fmt.Sprintf("%q", b) }

// excerpt quotes the start of line[pos:] for an error message, short enough
// to keep a 64 KiB line out of the logs.
func excerpt(line []byte, pos int) string {
	const max = 40
	s := line[pos:]
	if len(s) > max {
		return fmt.Sprintf("%q...", s[:max])
	}
	return fmt.Sprintf("%q", s)
}

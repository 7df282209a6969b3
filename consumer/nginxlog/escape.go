package nginxlog

import (
	"bytes"
	"unicode/utf8"
)

// unescape returns the value raw stands for under p's escaping: raw itself
// when it holds no escape (the common case, no copy), otherwise a decoded
// copy in rec's buffer.
func (p *Parser) unescape(rec *Record, raw []byte) []byte {
	if p.escape == EscapeNone || bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	start := len(rec.buf)
	if p.escape == EscapeJSON {
		rec.buf, _ = appendJSONUnescape(rec.buf, raw)
	} else {
		rec.buf = appendNginxUnescape(rec.buf, raw)
	}
	end := len(rec.buf)
	// Cap the slice so a caller appending to it cannot overwrite the next value.
	return rec.buf[start:end:end]
}

// appendNginxUnescape decodes nginx's default escaping, where `"`, `\` and
// bytes outside 32..126 are written \xXX. A backslash that does not start
// such an escape is kept: nginx never writes one, but unescaped variables and
// hand-edited logs can.
func appendNginxUnescape(dst, raw []byte) []byte {
	for {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:i]...)
		raw = raw[i:]
		if len(raw) >= 4 && raw[1] == 'x' {
			if h, ok := unhex(raw[2]); ok {
				if l, ok := unhex(raw[3]); ok {
					dst = append(dst, h<<4|l)
					raw = raw[4:]
					continue
				}
			}
		}
		dst = append(dst, '\\')
		raw = raw[1:]
	}
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendJSONUnescape decodes the body of a JSON string (without its quotes).
// ok is false when an escape is invalid; the escape is then copied as it is,
// which is what a lenient reader of nginx's escape=json output wants, while
// the filebeat event reader rejects the event.
func appendJSONUnescape(dst, raw []byte) (out []byte, ok bool) {
	ok = true
	for {
		i := bytes.IndexByte(raw, '\\')
		if i < 0 {
			return append(dst, raw...), ok
		}
		dst = append(dst, raw[:i]...)
		var n int
		var good bool
		dst, n, good = appendJSONEscape(dst, raw[i:])
		ok = ok && good
		raw = raw[i+n:]
	}
}

// appendJSONEscape decodes the escape at the start of s (s[0] is a
// backslash) and returns how many bytes it took. An invalid escape appends
// the backslash alone and reports !ok.
func appendJSONEscape(dst, s []byte) (out []byte, n int, ok bool) {
	if len(s) < 2 {
		return append(dst, '\\'), 1, false
	}
	switch s[1] {
	case '"', '\\', '/':
		return append(dst, s[1]), 2, true
	case 'b':
		return append(dst, '\b'), 2, true
	case 'f':
		return append(dst, '\f'), 2, true
	case 'n':
		return append(dst, '\n'), 2, true
	case 'r':
		return append(dst, '\r'), 2, true
	case 't':
		return append(dst, '\t'), 2, true
	case 'u':
		r, ok := hex4(s[2:])
		if !ok {
			break
		}
		n = 6
		if r >= 0xD800 && r < 0xDC00 {
			// A UTF-16 surrogate pair spells a rune above U+FFFF.
			if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
				if r2, ok := hex4(s[8:]); ok && r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					n = 12
				}
			}
		}
		// A lone surrogate is not a rune; AppendRune writes U+FFFD for it.
		return utf8.AppendRune(dst, r), n, true
	}
	return append(dst, '\\'), 1, false
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		h, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(h)
	}
	return r, true
}

package aptsrc

import (
	"fmt"
	"strings"
)

// ParseConf flattens apt.conf syntax into "A::B::C" → value for every scalar
// assignment. It understands nested scopes ("Acquire { http { … }; };"),
// quoted values, and //, /* */ and # comments. List items (values without a
// key, as in NeverAutoRemove { "…"; };) carry no scalar and are skipped.
func ParseConf(text string) (map[string]string, error) {
	toks, err := confTokens(text)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	lower := map[string]string{} // apt keys are case-insensitive
	set := func(k, v string) {
		if old, ok := lower[strings.ToLower(k)]; ok {
			delete(out, old)
		}
		lower[strings.ToLower(k)] = k
		out[k] = v
	}
	pos := 0
	var scope func(prefix string, depth int) error
	scope = func(prefix string, depth int) error {
		for pos < len(toks) {
			t := toks[pos]
			pos++
			switch t.text {
			case "}":
				if t.quoted {
					break
				}
				if depth == 0 {
					return fmt.Errorf("line %d: unexpected }", t.line)
				}
				if pos < len(toks) && toks[pos].text == ";" && !toks[pos].quoted {
					pos++
				}
				return nil
			case ";":
				if !t.quoted {
					continue
				}
			}
			key := prefix + t.text
			if pos >= len(toks) {
				return fmt.Errorf("line %d: %q is not terminated by ;", t.line, t.text)
			}
			n := toks[pos]
			pos++
			switch {
			case n.text == "{" && !n.quoted:
				if err := scope(key+"::", depth+1); err != nil {
					return err
				}
			case n.text == ";" && !n.quoted:
				// a list item or a bare key: no scalar value
			default:
				if pos >= len(toks) || toks[pos].text != ";" || toks[pos].quoted {
					return fmt.Errorf("line %d: value of %q is not terminated by ;", n.line, key)
				}
				pos++
				if !t.quoted { // a quoted "key" is a list item, not a key
					set(key, n.text)
				}
			}
		}
		if depth > 0 {
			return fmt.Errorf("missing } for %q", strings.TrimSuffix(prefix, "::"))
		}
		return nil
	}
	if err := scope("", 0); err != nil {
		return nil, err
	}
	return out, nil
}

type confToken struct {
	text   string
	quoted bool
	line   int
}

func confTokens(s string) ([]confToken, error) {
	var toks []confToken
	line := 1
	atLineStart := true
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			line++
			atLineStart = true
			i++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			i++
			continue
		case c == '#' && atLineStart, c == '/' && i+1 < len(s) && s[i+1] == '/':
			// # lines (including #clear/#include, which the lab does not
			// need) and // comments run to the end of the line.
			for i < len(s) && s[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated /* comment", line)
			}
			line += strings.Count(s[i:i+2+end], "\n")
			i += end + 4
			continue
		}
		atLineStart = false
		switch {
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, confToken{text: string(c), line: line})
			i++
		case c == '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			toks = append(toks, confToken{text: s[i+1 : i+1+end], quoted: true, line: line})
			line += strings.Count(s[i+1:i+1+end], "\n")
			i += end + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n{};\"", rune(s[j])) {
				j++
			}
			toks = append(toks, confToken{text: s[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}

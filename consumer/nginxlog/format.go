// Package nginxlog parses nginx access-log lines with a parser compiled from
// the nginx log_format string that wrote them.
//
// The parser is driven by the format itself: Compile turns a format such as
// `$remote_addr [$time_local] "$request" $status` into a list of variables,
// each followed by the literal text that ends it, and Parse walks a line by
// searching for those literals. No regular expression runs per line, string
// values are slices of the line (copied only when nginx escaped a byte in
// them), and a Record is reused from line to line, so parsing allocates
// nothing in the common case.
//
// Values are typed by variable name, the way nginx writes them: times
// ($time_local, $time_iso8601), integers ($status, $body_bytes_sent, ...),
// decimals ($request_time, $msec, ...), lists ($upstream_addr,
// $upstream_status, ...) and strings for everything else. A lone "-" is
// nginx's "no value" and parses as null.
package nginxlog

import (
	"fmt"
	"strings"
)

// FormatName is the name trafficlab's web servers give their log_format.
const FormatName = "trafficlab"

// Format is the log_format trafficlab's web servers write. It is defined here
// and only here: the nginx templates import it, so the writer and the reader
// of the access log cannot drift apart.
//
// The web servers run nginx's realip module trusting the load balancers'
// X-Real-IP header, so $remote_addr is the client and $realip_remote_addr the
// load balancer that forwarded the request. $bytes_sent and $request_length
// are the bytes out and in (headers included) that bandwidth billing needs;
// $host tells the sites apart.
const Format = `$remote_addr $realip_remote_addr [$time_local] "$request" $status $body_bytes_sent $bytes_sent $request_length $request_time "$http_referer" "$http_user_agent" "$host"`

// CombinedName is the name of nginx's predefined format.
const CombinedName = "combined"

// CombinedFormat is nginx's predefined "combined" format, the default of the
// access_log directive.
const CombinedFormat = `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"`

// Kind is the type of a parsed value.
type Kind uint8

// The kinds of values. A list value (see Value.IsList) has the kind of its
// entries.
const (
	KindString  Kind = iota // bytes, with nginx's escapes decoded
	KindInt                 // a non-negative integer
	KindDecimal             // a non-negative decimal such as 0.004, kept exactly
	KindTime                // a time with the line's UTC offset
)

var kindNames = [...]string{"string", "int", "decimal", "time"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// Escape is the escaping nginx applied to variable values (the escape=
// parameter of log_format).
type Escape uint8

// The escapings of nginx's log_format.
const (
	// EscapeDefault: `"`, `\` and bytes below 32 or above 126 are written as \xXX.
	EscapeDefault Escape = iota
	// EscapeJSON: `"` and `\` are backslash-escaped and control bytes written
	// as \n, \u0001 ..., as in a JSON string.
	EscapeJSON
	// EscapeNone: values are written as they are.
	EscapeNone
)

var escapeNames = [...]string{"default", "json", "none"}

func (e Escape) String() string {
	if int(e) < len(escapeNames) {
		return escapeNames[e]
	}
	return fmt.Sprintf("Escape(%d)", e)
}

// ParseEscape returns the Escape named like log_format's escape= parameter:
// "default", "json" or "none".
func ParseEscape(s string) (Escape, error) {
	for i, n := range escapeNames {
		if s == n {
			return Escape(i), nil
		}
	}
	return 0, fmt.Errorf("unknown escape %q: want default, json or none", s)
}

// An Option changes how Compile builds a Parser.
type Option func(*Parser)

// WithEscape sets the escaping nginx used when it wrote the log (log_format's
// escape= parameter). The default is EscapeDefault, nginx's own default.
func WithEscape(e Escape) Option {
	return func(p *Parser) { p.escape = e }
}

// FormatError reports a log_format string that cannot be compiled.
type FormatError struct {
	Format string // the format as given to Compile (after name expansion)
	Offset int    // byte offset in Format where the problem is
	Msg    string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("log_format column %d: %s", e.Offset+1, e.Msg)
}

// class says how the end of a variable's value is found in a line.
type class uint8

const (
	// classText values may contain any byte the escaping lets through, so the
	// literal after them may occur inside the value.
	classText class = iota
	// classToken values never contain a space or a quote: addresses, names,
	// numbers. The first occurrence of the following literal ends them.
	classToken
	// classTime values have a fixed width ($time_local contains a space).
	classTime
	// classList values are entries joined by ", " and " : "; those separators
	// are skipped when looking for the literal that ends the list.
	classList
)

// field describes one value of a Record.
type field struct {
	name    string
	kind    Kind
	list    bool
	derived bool   // request_method, request_uri and server_protocol from $request
	dup     bool   // the name occurred earlier in the format: parsed, not named
	jsonKey []byte // `"name":`, for Record.AppendJSON
}

// FieldInfo describes one value a Parser yields, in format order.
type FieldInfo struct {
	Name    string // variable name without "$", lower case
	Kind    Kind
	List    bool // an $upstream_* list
	Derived bool // split out of $request rather than written by nginx
}

// step is one variable of the format and the literal that follows it.
type step struct {
	field     int    // index into Parser.fields and Record.fields
	name      string // for error messages
	delim     []byte // literal text after the variable; empty at the end of the format
	class     class
	kind      Kind
	list      bool
	width     int  // classTime: the usual width of the value
	iso       bool // classTime: $time_iso8601 rather than $time_local
	emptyNull bool // an empty value is null (ports are empty on unix sockets)
	choice    bool // the delimiter may occur inside the value: backtrack on failure
	jsonQuote bool // EscapeJSON and delim starts with `"`: skip \" inside the value
	request   bool // $request: also fill req
	req       [3]int
}

// Parser parses lines written with one log_format. It is immutable after
// Compile and safe for concurrent use; each goroutine needs its own Record.
type Parser struct {
	format string
	escape Escape
	prefix []byte // literal text before the first variable
	steps  []step
	fields []field
	byName map[string]int
	choice bool // some step is a backtracking point
	brace  bool // the format starts with "{": raw lines may look like JSON

	// Indexes of the well-known values in Record.fields, -1 when absent.
	iClient, iTime, iMethod, iURI, iProto, iStatus, iBody, iSent, iReqLen, iReqTime, iHost, iReferer, iUA, iBackend int
}

// Compile compiles a log_format string. format may also be the name of a
// predefined format: "combined" (nginx's own) or FormatName.
//
// Variables are written $name or ${name}; everything else is literal text.
// Two variables with no literal between them are an error, because nothing
// in the line would say where the first ends.
func Compile(format string, opts ...Option) (*Parser, error) {
	switch format {
	case CombinedName:
		format = CombinedFormat
	case FormatName:
		format = Format
	}
	p := &Parser{format: format, byName: make(map[string]int)}
	for _, o := range opts {
		o(p)
	}
	if p.escape > EscapeNone {
		return nil, fmt.Errorf("compile log_format: unknown escape %d", p.escape)
	}
	toks, err := tokenize(format)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, &FormatError{Format: format, Offset: 0, Msg: "empty format"}
	}
	names := make(map[string]bool)
	for _, t := range toks {
		if t.isVar {
			names[t.text] = true
		}
	}
	p.brace = strings.HasPrefix(format, "{")

	var prev *tok
	for i := range toks {
		t := &toks[i]
		if !t.isVar {
			if len(p.steps) == 0 {
				p.prefix = []byte(t.text)
			} else {
				p.steps[len(p.steps)-1].delim = []byte(t.text)
			}
			prev = t
			continue
		}
		if prev != nil && prev.isVar {
			return nil, &FormatError{Format: format, Offset: t.off, Msg: fmt.Sprintf(
				"$%s follows $%s with no literal text between them: nothing in the line would show where one ends",
				t.text, prev.text)}
		}
		prev = t
		p.addVariable(t.text, names)
	}
	for i := range p.steps {
		p.finishStep(&p.steps[i], i == len(p.steps)-1)
	}
	for i := range p.fields {
		f := &p.fields[i]
		f.jsonKey = append(AppendJSONString(nil, []byte(f.name)), ':')
	}
	p.wellKnown()
	return p, nil
}

// MustCompile is Compile for formats known to be valid, such as Format; it
// panics on error.
func MustCompile(format string, opts ...Option) *Parser {
	p, err := Compile(format, opts...)
	if err != nil {
		panic(err)
	}
	return p
}

type tok struct {
	isVar bool
	text  string // literal text, or the variable name in lower case
	off   int    // byte offset of the token in the format
}

// tokenize splits a format into literals and variables the way nginx's
// log_format does: a name is [A-Za-z0-9_]+, optionally in braces, and a "$"
// without a name is an error (nginx has no escape for a literal "$").
func tokenize(format string) ([]tok, error) {
	var toks []tok
	litStart := 0
	for i := 0; i < len(format); {
		if format[i] != '$' {
			i++
			continue
		}
		start := i
		if litStart < start {
			toks = append(toks, tok{text: format[litStart:start], off: litStart})
		}
		i++
		braced := i < len(format) && format[i] == '{'
		if braced {
			i++
		}
		j := i
		for j < len(format) && isNameByte(format[j]) {
			j++
		}
		if j == i {
			return nil, &FormatError{Format: format, Offset: start, Msg: `"$" is not followed by a variable name`}
		}
		name := strings.ToLower(format[i:j]) // nginx variable names are case-insensitive
		if braced {
			if j >= len(format) || format[j] != '}' {
				return nil, &FormatError{Format: format, Offset: start, Msg: fmt.Sprintf(`"${%s" has no closing "}"`, format[i:j])}
			}
			j++
		}
		toks = append(toks, tok{isVar: true, text: name, off: start})
		i = j
		litStart = j
	}
	if litStart < len(format) {
		toks = append(toks, tok{text: format[litStart:], off: litStart})
	}
	return toks, nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// Names split out of $request, in the order they follow it.
var requestParts = [3]string{"request_method", "request_uri", "server_protocol"}

// addVariable appends the field and the step of one variable occurrence.
// names holds every variable of the format, so that $request yields
// request_method etc. only where the format does not log them itself.
func (p *Parser) addVariable(name string, names map[string]bool) {
	st := step{field: len(p.fields), name: name, req: [3]int{-1, -1, -1}}
	st.kind, st.list, st.class, st.emptyNull = typeOf(name)
	switch name {
	case "time_local":
		st.width = len("02/Jan/2006:15:04:05 -0700")
	case "time_iso8601":
		st.width, st.iso = len("2006-01-02T15:04:05-07:00"), true
	}
	_, dup := p.byName[name]
	if !dup {
		p.byName[name] = len(p.fields)
	}
	p.fields = append(p.fields, field{name: name, kind: st.kind, list: st.list, dup: dup})
	if name == "request" && !dup {
		st.request = true
		for k, part := range requestParts {
			if names[part] {
				continue
			}
			st.req[k] = len(p.fields)
			p.byName[part] = len(p.fields)
			p.fields = append(p.fields, field{name: part, kind: KindString, derived: true})
		}
	}
	p.steps = append(p.steps, st)
}

// finishStep decides how the end of a value is found, once its delimiter is
// known.
func (p *Parser) finishStep(st *step, last bool) {
	st.jsonQuote = p.escape == EscapeJSON && len(st.delim) > 0 && st.delim[0] == '"'
	if (st.class != classText && st.class != classList) || len(st.delim) == 0 {
		return
	}
	// With nginx's escaping a value never holds a raw `"` (default: \x22,
	// json: \"), nor a control byte, so a delimiter containing one cannot
	// occur inside the value and its first occurrence is the end.
	if p.escape != EscapeNone {
		for _, c := range st.delim {
			if c == '"' || c < 0x20 || p.escape == EscapeDefault && (c == '\\' || c > 0x7e) {
				return
			}
		}
	}
	st.choice = true
	if !last {
		p.choice = true
	}
}

// typeOf types a variable by its name, following what nginx writes for it.
func typeOf(name string) (kind Kind, list bool, cls class, emptyNull bool) {
	switch name {
	case "time_local", "time_iso8601":
		return KindTime, false, classTime, false
	case "msec", "request_time", "gzip_ratio", "connection_time", "session_time":
		return KindDecimal, false, classToken, false
	case "status", "request_length", "connection", "connection_requests", "pid",
		"connections_active", "connections_reading", "connections_writing", "connections_waiting",
		"tcpinfo_rtt", "tcpinfo_rttvar", "tcpinfo_snd_cwnd", "tcpinfo_rcv_space":
		return KindInt, false, classToken, false
	case "remote_port", "server_port", "realip_remote_port", "proxy_protocol_port", "proxy_protocol_server_port":
		// Ports are empty, not "-", when the connection is over a unix socket.
		return KindInt, false, classToken, true
	case "remote_addr", "realip_remote_addr", "server_addr", "proxy_protocol_addr", "proxy_protocol_server_addr",
		"host", "hostname", "server_name", "scheme", "https", "pipe", "request_method", "server_protocol",
		"request_id", "nginx_version", "ssl_protocol", "ssl_cipher", "ssl_session_reused":
		return KindString, false, classToken, false
	}
	for _, pre := range headerPrefixes {
		if strings.HasPrefix(name, pre) {
			return KindString, false, classText, false // header, cookie and argument values are free text
		}
	}
	if rest, ok := strings.CutPrefix(name, "upstream_"); ok && !strings.HasPrefix(rest, "cache_") {
		// One entry per upstream server tried, e.g. "10.0.0.1:80, 10.0.0.2:80 : 10.0.0.3:80".
		switch {
		case rest == "status":
			return KindInt, true, classList, false
		case strings.HasSuffix(rest, "_time"):
			return KindDecimal, true, classList, false
		case strings.HasSuffix(rest, "_length") || strings.Contains(rest, "bytes"):
			return KindInt, true, classList, false
		}
		return KindString, true, classList, false
	}
	if strings.Contains(name, "bytes") { // body_bytes_sent, bytes_sent, bytes_received, ...
		return KindInt, false, classToken, false
	}
	return KindString, false, classText, false
}

// Variables whose values come from the client or the upstream as they are:
// never typed, never lists.
var headerPrefixes = []string{
	"http_", "sent_http_", "sent_trailer_", "cookie_", "arg_",
	"upstream_http_", "upstream_trailer_", "upstream_cookie_",
}

// wellKnown finds the values Record's accessors return.
func (p *Parser) wellKnown() {
	idx := func(names ...string) int {
		for _, n := range names {
			if i, ok := p.byName[n]; ok {
				return i
			}
		}
		return -1
	}
	p.iClient = idx("remote_addr")
	p.iTime = idx("time_local", "time_iso8601", "msec")
	p.iMethod = idx("request_method")
	p.iURI = idx("request_uri", "uri")
	p.iProto = idx("server_protocol")
	p.iStatus = idx("status")
	p.iBody = idx("body_bytes_sent")
	p.iSent = idx("bytes_sent")
	p.iReqLen = idx("request_length")
	p.iReqTime = idx("request_time")
	p.iHost = idx("host", "http_host", "server_name")
	p.iReferer = idx("http_referer")
	p.iUA = idx("http_user_agent")
	p.iBackend = idx("backend")
}

// Format returns the log_format string the parser was compiled from, with a
// predefined name expanded.
func (p *Parser) Format() string { return p.format }

// Escape returns the escaping the parser decodes.
func (p *Parser) Escape() Escape { return p.escape }

// Fields describes the values of a Record, in format order, with the parts
// of $request right after it. A variable that occurs twice is listed twice.
func (p *Parser) Fields() []FieldInfo {
	out := make([]FieldInfo, len(p.fields))
	for i, f := range p.fields {
		out[i] = FieldInfo{Name: f.name, Kind: f.kind, List: f.list, Derived: f.derived}
	}
	return out
}

// Index returns the index of the named value for Record.Field, or -1. Look
// the index up once and use Field in a loop: it saves a map lookup per line.
func (p *Parser) Index(name string) int {
	if i, ok := p.byName[name]; ok {
		return i
	}
	return -1
}

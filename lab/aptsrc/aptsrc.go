// Package aptsrc reads the host's apt configuration — sources in one-line
// (.list) and deb822 (.sources) form, and apt.conf settings — so the lab's
// image and machines fetch packages from exactly the mirror, with exactly the
// settings, the host uses. Nothing here names a mirror: everything comes from
// the host's files at run time.
package aptsrc

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Entry is one (type, URI, suite) source, whatever file syntax it came from.
type Entry struct {
	Type       string   // deb or deb-src
	URI        string   // e.g. http://mirror/debian
	Suite      string   // e.g. bookworm-updates
	Components []string // e.g. main
	SignedBy   string   // keyring path (or an embedded key block), may be empty
	Source     string   // file:line it was read from, for messages
}

// Host is what the lab takes from the host's apt configuration.
type Host struct {
	Entries []Entry           // every enabled source entry
	Acquire map[string]string // Acquire::* scalar settings (proxies excluded)
}

// Paths are the apt configuration locations; Default is the real host's.
type Paths struct {
	SourcesList    string // /etc/apt/sources.list
	SourcesListDir string // /etc/apt/sources.list.d
	AptConf        string // /etc/apt/apt.conf
	AptConfDir     string // /etc/apt/apt.conf.d
}

// Default are the standard locations.
var Default = Paths{
	SourcesList:    "/etc/apt/sources.list",
	SourcesListDir: "/etc/apt/sources.list.d",
	AptConf:        "/etc/apt/apt.conf",
	AptConfDir:     "/etc/apt/apt.conf.d",
}

// Read loads the host's sources and Acquire settings from p. Missing files
// and directories are not errors (a host may use either syntax).
func Read(p Paths) (*Host, error) {
	h := &Host{Acquire: map[string]string{}}
	if b, err := os.ReadFile(p.SourcesList); err == nil {
		h.Entries = append(h.Entries, ParseList(string(b), p.SourcesList)...)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	names, err := dirFiles(p.SourcesListDir)
	if err != nil {
		return nil, fmt.Errorf("read apt sources: %w", err)
	}
	for _, name := range names {
		path := filepath.Join(p.SourcesListDir, name)
		var parse func(string, string) ([]Entry, error)
		switch {
		case strings.HasSuffix(name, ".list"):
			parse = func(s, f string) ([]Entry, error) { return ParseList(s, f), nil }
		case strings.HasSuffix(name, ".sources"):
			parse = ParseDeb822
		default:
			continue // apt ignores other names (.disabled, .save, …)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read apt sources: %w", err)
		}
		es, err := parse(string(b), path)
		if err != nil {
			return nil, err
		}
		h.Entries = append(h.Entries, es...)
	}

	confs := []string{}
	names, err = dirFiles(p.AptConfDir)
	if err != nil {
		return nil, fmt.Errorf("read apt config: %w", err)
	}
	for _, name := range names {
		if aptConfName(name) {
			confs = append(confs, filepath.Join(p.AptConfDir, name))
		}
	}
	confs = append(confs, p.AptConf) // apt reads the main file last
	for _, path := range confs {
		b, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read apt config: %w", err)
		}
		settings, err := ParseConf(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for k, v := range settings {
			if keepAcquire(k) {
				h.Acquire[k] = v
			}
		}
	}
	return h, nil
}

func dirFiles(dir string) ([]string, error) {
	des, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, de := range des {
		if de.Type().IsRegular() || de.Type()&os.ModeSymlink != 0 {
			names = append(names, de.Name())
		}
	}
	sort.Strings(names) // apt's order
	return names, nil
}

// aptConfName reports whether apt itself would read a file of this name from
// apt.conf.d: only [A-Za-z0-9_.-], and an extension, if any, of .conf.
func aptConfName(name string) bool {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i:] == ".conf"
	}
	return true
}

// keepAcquire selects the settings worth copying into machines: how to fetch
// and trust the archive (Acquire::X, e.g. Check-Valid-Until for a dated
// snapshot, and Acquire::http::X / Acquire::https::X), but never the host's
// own proxies, which machines cannot reach, nor deeper trees such as
// IndexTargets that belong to packages installed on the host.
func keepAcquire(key string) bool {
	parts := strings.Split(strings.ToLower(key), "::")
	if parts[0] != "acquire" || strings.Contains(strings.ToLower(key), "proxy") {
		return false
	}
	switch len(parts) {
	case 2:
		return parts[1] != ""
	case 3:
		return (parts[1] == "http" || parts[1] == "https") && parts[2] != ""
	}
	return false
}

// ParseList parses one-line style sources ("deb [opts] uri suite comps…").
func ParseList(text, file string) []Entry {
	var out []Entry
	for i, line := range strings.Split(text, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "deb" && f[0] != "deb-src") {
			continue
		}
		e := Entry{Type: f[0], Source: fmt.Sprintf("%s:%d", file, i+1)}
		rest := f[1:]
		if strings.HasPrefix(rest[0], "[") {
			// Options may span several fields: "[ arch=amd64 signed-by=/k ]".
			var opts []string
			for len(rest) > 0 {
				tok := rest[0]
				rest = rest[1:]
				end := strings.HasSuffix(tok, "]")
				tok = strings.TrimSuffix(strings.TrimPrefix(tok, "["), "]")
				if tok != "" {
					opts = append(opts, tok)
				}
				if end {
					break
				}
			}
			for _, o := range opts {
				if k, v, ok := strings.Cut(o, "="); ok && strings.EqualFold(k, "signed-by") {
					e.SignedBy = v
				}
			}
		}
		if len(rest) < 2 {
			continue
		}
		e.URI, e.Suite, e.Components = rest[0], rest[1], rest[2:]
		out = append(out, e)
	}
	return out
}

// ParseDeb822 parses deb822 style sources: paragraphs of "Field: value"
// lines, continuation lines indented, multi-valued Types/URIs/Suites.
func ParseDeb822(text, file string) ([]Entry, error) {
	type para struct {
		line   int
		fields map[string]string
	}
	var paras []para
	cur := para{fields: map[string]string{}}
	last := ""
	flush := func() {
		if len(cur.fields) > 0 {
			paras = append(paras, cur)
		}
		cur, last = para{fields: map[string]string{}}, ""
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "#"):
			// comment: ignored, does not end the paragraph
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return nil, fmt.Errorf("%s:%d: continuation line outside a field", file, n)
			}
			cur.fields[last] += "\n" + strings.TrimSpace(line)
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, fmt.Errorf("%s:%d: expected \"Field: value\", got %q", file, n, line)
			}
			if len(cur.fields) == 0 {
				cur.line = n
			}
			last = strings.ToLower(strings.TrimSpace(k))
			cur.fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var out []Entry
	for _, p := range paras {
		if strings.EqualFold(p.fields["enabled"], "no") {
			continue
		}
		src := fmt.Sprintf("%s:%d", file, p.line)
		types, uris, suites := strings.Fields(p.fields["types"]), strings.Fields(p.fields["uris"]), strings.Fields(p.fields["suites"])
		if len(types) == 0 || len(uris) == 0 || len(suites) == 0 {
			return nil, fmt.Errorf("%s: a paragraph needs Types, URIs and Suites", src)
		}
		for _, t := range types {
			for _, u := range uris {
				for _, s := range suites {
					out = append(out, Entry{
						Type: t, URI: u, Suite: s,
						Components: strings.Fields(p.fields["components"]),
						SignedBy:   p.fields["signed-by"],
						Source:     src,
					})
				}
			}
		}
	}
	return out, nil
}

// Debian returns the binary entries of Debian's own suites for codename
// (codename, codename-updates, codename-security) that carry the main
// component; third-party repositories and other suites are dropped.
func (h *Host) Debian(codename string) []Entry {
	var out []Entry
	seen := map[string]bool{}
	for _, e := range h.Entries {
		if e.Type != "deb" {
			continue
		}
		if e.Suite != codename && e.Suite != codename+"-updates" && e.Suite != codename+"-security" {
			continue
		}
		main := false
		for _, c := range e.Components {
			main = main || c == "main"
		}
		key := e.URI + " " + e.Suite
		if !main || seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, e)
	}
	return out
}

// Mirror returns the entry for the release suite itself, which is what
// debootstrap needs.
func Mirror(entries []Entry, codename string) (Entry, error) {
	for _, e := range entries {
		if e.Suite == codename {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("the host's apt sources have no Debian %q entry with the main component", codename)
}

// Hosts returns the distinct host[:port] parts of the entries' URIs — what
// the package proxy must let machines reach.
func Hosts(entries []Entry) []string {
	set := map[string]bool{}
	for _, e := range entries {
		if u, err := url.Parse(e.URI); err == nil && u.Host != "" {
			set[u.Hostname()] = true
		}
	}
	out := make([]string, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}

// Deb822 renders entries as a deb822 sources file, one paragraph per entry.
func Deb822(entries []Entry) string {
	var b strings.Builder
	b.WriteString("# Written by trafficlab's lab from the host's apt sources.\n")
	for i, e := range entries {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Types: %s\nURIs: %s\nSuites: %s\nComponents: %s\n", e.Type, e.URI, e.Suite, strings.Join(e.Components, " "))
		if e.SignedBy != "" {
			lines := strings.Split(e.SignedBy, "\n")
			b.WriteString("Signed-By: " + lines[0] + "\n")
			for _, l := range lines[1:] {
				if l == "" {
					l = "."
				}
				b.WriteString(" " + l + "\n")
			}
		}
	}
	return b.String()
}

// AptConf renders settings as apt.conf lines, sorted for a stable hash.
func AptConf(settings map[string]string) string {
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("// Written by trafficlab's lab from the host's apt settings.\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %q;\n", k, settings[k])
	}
	return b.String()
}

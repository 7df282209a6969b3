package inventory

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The decoder walks the yaml.Node tree itself instead of using
// yaml.Node.Decode, because it must keep going after a problem (to report
// them all), know the line of every value, suggest the key a typo was meant
// to be, expand ${VAR} in every scalar and tell "absent" from "zero".

// maxNodes bounds the work done on one file. Aliases let a small file name
// a huge tree ("billion laughs"); no real inventory comes near this.
const maxNodes = 200_000

type decoder struct {
	file   string
	lookup func(string) (string, bool)
	probs  Problems
	// lines maps a path such as "hosts[3].address" to the line of its value
	// (scalars) or key (mappings and lists), so semantic checks can point
	// at what they complain about.
	lines map[string]int
	// set holds the paths given a value in the file; defaults fill the rest.
	set map[string]bool
	// bad holds paths that already have a problem, so later checks do not
	// pile a second complaint on the same mistake.
	bad map[string]bool
	// typo holds the paths an unknown key probably meant, so that "unknown
	// key adress" is not followed by "address is required".
	typo map[string]bool
	// budget is the work left before giving up on a file that aliases
	// expand beyond reason; exhausted says that was reported.
	budget    int
	exhausted bool
}

func newDecoder(file string, lookup func(string) (string, bool)) *decoder {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	return &decoder{
		file:   file,
		lookup: lookup,
		lines:  map[string]int{},
		set:    map[string]bool{},
		bad:    map[string]bool{},
		typo:   map[string]bool{},
		budget: maxNodes,
	}
}

func (d *decoder) errf(line int, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

// fail reports a problem with the value at path and marks the path bad.
func (d *decoder) fail(path string, line int, format string, args ...any) {
	d.bad[path] = true
	d.errf(line, "%s: "+format, append([]any{displayPath(path)}, args...)...)
}

// displayPath names the root for messages about the whole file.
func displayPath(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[time.Duration]()
)

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i > 100 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return short(n.Value)
	}
	return "nothing"
}

// short quotes a value for a message, cut so a pasted blob does not flood
// the terminal.
func short(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "…"
	}
	return strconv.Quote(s)
}

// value decodes n into v. line is where a problem with the value is
// reported: the value's own line for scalars, its key's for collections.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, line int) {
	if !d.spend(1, line) {
		d.bad[path] = true
		return
	}
	d.lines[path] = line
	n = deref(n)
	if isNull(n) {
		return // absent: defaults apply
	}
	t := v.Type()
	switch {
	case t == secretType:
		if s, ok := d.scalar(n, path, line); ok {
			v.Set(reflect.ValueOf(NewSecret(s)))
			d.set[path] = true
		}
	case t == durationType:
		if s, ok := d.scalar(n, path, line); ok {
			dur, err := time.ParseDuration(s)
			if err != nil {
				d.fail(path, line, "want a duration like 30s or 2m, got %s", short(s))
				return
			}
			v.SetInt(int64(dur))
			d.set[path] = true
		}
	case t.Kind() == reflect.String:
		if s, ok := d.scalar(n, path, line); ok {
			v.SetString(s)
			d.set[path] = true
		}
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		if s, ok := d.scalar(n, path, line); ok {
			i, err := strconv.ParseInt(s, 10, t.Bits())
			if err != nil {
				d.fail(path, line, "want a whole number, got %s", short(s))
				return
			}
			v.SetInt(i)
			d.set[path] = true
		}
	case t.Kind() == reflect.Bool:
		if s, ok := d.scalar(n, path, line); ok {
			switch strings.ToLower(s) {
			case "true":
				v.SetBool(true)
			case "false":
				v.SetBool(false)
			default:
				d.fail(path, line, "want true or false, got %s", short(s))
				return
			}
			d.set[path] = true
		}
	case t.Kind() == reflect.Struct:
		d.structure(n, v, path, line)
	case t.Kind() == reflect.Slice:
		d.list(n, v, path, line)
	case t.Kind() == reflect.Map:
		d.stringMap(n, v, path, line)
	default:
		// Only reachable if a field of an unsupported type is added to the
		// schema; a test decodes every field so this cannot ship.
		panic(fmt.Sprintf("inventory: no decoder for %s at %s", t, path))
	}
}

// spend takes n units of work from the budget and reports false, with a
// problem the first time, once it is used up.
func (d *decoder) spend(n, line int) bool {
	d.budget -= n
	if d.budget >= 0 {
		return true
	}
	if !d.exhausted {
		d.exhausted = true
		d.errf(line, "the file expands to more than %d values (through aliases?); refusing to read further", maxNodes)
	}
	return false
}

// scalar returns the text of a scalar with ${VAR} expanded. It reports and
// returns false for collections and unset variables.
func (d *decoder) scalar(n *yaml.Node, path string, line int) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(path, line, "want a single value, got %s", describe(n))
		return "", false
	}
	s, unset, err := expand(n.Value, d.lookup)
	if err != nil {
		d.fail(path, line, "%v", err)
		return "", false
	}
	for _, name := range unset {
		d.fail(path, line, "environment variable %s is not set", name)
	}
	return s, len(unset) == 0
}

type pair struct{ key, val *yaml.Node }

// pairs returns the entries of a mapping, with YAML merge keys (<<: *x)
// resolved: explicit keys first, then merged ones, so that the first
// occurrence of a key is the one that wins, as the merge spec says. depth
// stops a mapping that merges itself.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) (explicit, merged []pair) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			src := deref(v)
			sources := []*yaml.Node{src}
			if src != nil && src.Kind == yaml.SequenceNode {
				sources = sources[:0]
				for _, s := range src.Content {
					sources = append(sources, deref(s))
				}
			}
			for _, s := range sources {
				switch {
				case s == nil || s.Kind != yaml.MappingNode:
					d.fail(joinPath(path, "<<"), k.Line, "can only merge mappings")
					continue
				case depth > 10:
					d.fail(joinPath(path, "<<"), k.Line, "merges too deep (does a mapping merge itself?)")
					continue
				case !d.spend(len(s.Content)/2+1, k.Line):
					continue
				}
				e, m := d.pairs(s, path, depth+1)
				merged = append(merged, e...)
				merged = append(merged, m...)
			}
			continue
		}
		explicit = append(explicit, pair{k, v})
	}
	return explicit, merged
}

// entries walks a mapping's entries, reporting non-scalar and repeated keys,
// and calls fn for each key that counts.
func (d *decoder) entries(n *yaml.Node, path string, fn func(key string, k, v *yaml.Node)) {
	explicit, merged := d.pairs(n, path, 0)
	seen := map[string]int{}
	for i, p := range append(explicit, merged...) {
		k := deref(p.key)
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errf(p.key.Line, "%s: keys must be plain words, got %s", displayPath(path), describe(p.key))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if i < len(explicit) {
				d.fail(joinPath(path, k.Value), k.Line, "repeated key (first at line %d)", first)
			}
			continue // a merged key loses to an explicit one
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, p.val)
	}
}

// valueLine is where problems with a value are reported: scalars on their
// own line, collections at their key (their content may start lines later).
func valueLine(k, v *yaml.Node) int {
	if v != nil && v.Kind == yaml.ScalarNode || v != nil && v.Kind == yaml.AliasNode {
		return v.Line
	}
	return k.Line
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, line, "want a mapping (key: value), got %s", describe(n))
		return
	}
	d.set[path] = true
	t := v.Type()
	var names []string
	index := map[string]int{}
	for i := range t.NumField() {
		name := t.Field(i).Tag.Get("yaml")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
		index[name] = i
	}
	d.entries(n, path, func(key string, k, val *yaml.Node) {
		child := joinPath(path, key)
		i, ok := index[key]
		if !ok {
			// x-… keys at the top level hold YAML anchors for reuse, as
			// in docker compose files.
			if path == "" && strings.HasPrefix(key, "x-") {
				return
			}
			d.unknownKey(child, path, key, k.Line, names)
			return
		}
		d.value(val, v.Field(i), child, valueLine(k, val))
	})
}

func (d *decoder) unknownKey(child, path, key string, line int, names []string) {
	d.bad[child] = true
	if s := suggest(key, names); s != "" {
		d.typo[joinPath(path, s)] = true
		d.errf(line, "%s: unknown key%s", child, didYouMean(s))
		return
	}
	d.errf(line, "%s: unknown key; %s takes: %s", child, displayPath(path), strings.Join(names, ", "))
}

func (d *decoder) list(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.SequenceNode {
		d.fail(path, line, "want a list, got %s", describe(n))
		return
	}
	d.set[path] = true
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		if isNull(deref(item)) {
			d.fail(p, item.Line, "empty list item")
			continue
		}
		d.value(item, out.Index(i), p, item.Line)
	}
	v.Set(out)
}

func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string, line int) {
	if n.Kind != yaml.MappingNode {
		d.fail(path, line, "want a mapping (key: value), got %s", describe(n))
		return
	}
	d.set[path] = true
	m := reflect.MakeMap(v.Type())
	d.entries(n, path, func(key string, k, val *yaml.Node) {
		child := path + "[" + key + "]"
		if isNull(deref(val)) {
			d.fail(child, k.Line, "needs a value")
			return
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(val, elem, child, valueLine(k, val))
		m.SetMapIndex(reflect.ValueOf(key), elem)
	})
	v.Set(m)
}

// expand replaces ${NAME} with the variable's value and $$ with $; any other
// $ is kept, so passwords with a lone $ need no escaping. It returns the
// names of unset variables (replaced by "") so each can be reported.
func expand(s string, lookup func(string) (string, bool)) (string, []string, error) {
	if !strings.Contains(s, "$") {
		return s, nil, nil
	}
	var b strings.Builder
	var unset []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", nil, fmt.Errorf("unterminated ${ (write $$ for a literal $)")
			}
			name := s[i+2 : i+2+end]
			if !validVarName(name) {
				return "", nil, fmt.Errorf("%q is not a valid variable name (want letters, digits and _)", name)
			}
			if val, ok := lookup(name); ok {
				b.WriteString(val)
			} else {
				unset = append(unset, name)
			}
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), unset, nil
}

func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

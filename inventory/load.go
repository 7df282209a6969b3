package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads the inventory at path, expands ${VAR} from the process
// environment, fills in defaults and validates it. When anything is wrong it
// returns a nil Inventory and a Problems error holding every problem found.
// A file that cannot be read gives an ordinary error wrapping the cause.
func Load(path string) (*Inventory, error) {
	return LoadEnv(path, os.LookupEnv)
}

// LoadEnv is Load with the environment lookup supplied by the caller (tests,
// or a caller that keeps secrets elsewhere). A nil lookup treats every
// variable as unset.
func LoadEnv(path string, lookup func(string) (string, bool)) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read inventory: %w", err)
	}
	return Parse(path, data, lookup)
}

// Parse is Load for an inventory already in memory; file names it in
// problems and anchors relative paths inside it.
func Parse(file string, data []byte, lookup func(string) (string, bool)) (*Inventory, error) {
	d := newDecoder(file, lookup)
	root, err := parseYAML(data)
	if err != nil {
		return nil, Problems{syntaxProblem(file, data, err)}
	}
	inv := &Inventory{File: file}
	d.value(root, reflect.ValueOf(inv).Elem(), "", max(root.Line, 1))
	c := &checker{decoder: d, inv: inv}
	c.applyDefaults()
	c.check()
	if len(d.probs) > 0 {
		return nil, dedupe(d.probs)
	}
	inv.lines = d.lines
	return inv, nil
}

// parseYAML returns the root node of the single document in data; an empty
// file gives an empty node.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	// The YAML parser is third-party code fed arbitrary bytes; a panic in
	// it must become a problem report, not a crash of provision.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: cannot parse the file (%v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &yaml.Node{}, nil
		}
		return nil, err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("yaml: line %d: a second document starts here; an inventory is one document", max(extra.Line, 1))
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &yaml.Node{}, nil
}

var (
	yamlLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	unknownAnchor = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// syntaxProblem turns a YAML parser error into a Problem at its line.
func syntaxProblem(file string, data []byte, err error) Problem {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		// The YAML library counts lines from 0 in parser errors (as opposed
		// to scanner errors, which it corrects); all of those start so.
		if strings.HasPrefix(m[2], "did not find expected") || strings.HasPrefix(m[2], "found duplicate %") ||
			m[2] == "found incompatible YAML document" || m[2] == "found undefined tag handle" {
			line++
		}
		return Problem{File: file, Line: line, Msg: "YAML syntax: " + m[2]}
	}
	p := Problem{File: file, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		// The library gives no line for this one; the first use is it.
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			p.Line = bytes.Count(data[:i], []byte("\n")) + 1
		}
	}
	return p
}

// dedupe sorts the problems and drops repeats, which aliases produce when
// the same bad node is used twice.
func dedupe(ps Problems) Problems {
	sortProblems(ps)
	seen := map[Problem]bool{}
	out := Problems{}
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Package templates renders the files trafficlab writes on hosts.
//
// Every file is a text/template embedded in the binary under files/, named
// by its path there (for example "base/hosts.tmpl"). A user may replace any
// of them with a file of the same relative path in an override directory
// named by the inventory. Templates are parsed once, up front, so a broken
// override is reported before anything connects to a host, and rendered with
// missingkey=error so a misspelt key fails instead of writing "<no value>".
package templates

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/template"
)

//go:embed files
var builtin embed.FS

const ext = ".tmpl"

// funcs are the helpers templates may call; keep the set small so templates
// stay readable by people who know only text/template.
var funcs = template.FuncMap{
	"join": strings.Join,
}

// Set is the parsed collection of templates: the built-in ones, each
// possibly replaced by a user's override.
type Set struct {
	tmpls  map[string]*template.Template
	origin map[string]string

	mu   sync.Mutex
	used map[string]bool
}

// Load parses every built-in template and, when overrideDir is not empty,
// the overrides found there. An override whose name matches no built-in
// template is an error: it would otherwise be silently ignored.
func Load(overrideDir string) (*Set, error) {
	s := &Set{tmpls: map[string]*template.Template{}, origin: map[string]string{}, used: map[string]bool{}}
	sub, err := fs.Sub(builtin, "files")
	if err != nil {
		return nil, err
	}
	if err := s.addTree(sub, "built-in "); err != nil {
		return nil, err
	}
	if overrideDir == "" {
		return s, nil
	}
	if _, err := os.Stat(overrideDir); err != nil {
		return nil, fmt.Errorf("template override directory: %w", err)
	}
	var problems []error
	err = fs.WalkDir(os.DirFS(overrideDir), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(name) != ext {
			return err
		}
		file := filepath.Join(overrideDir, filepath.FromSlash(name))
		if _, ok := s.tmpls[name]; !ok {
			problems = append(problems, fmt.Errorf("%s: no built-in template is named %q (known: %s)",
				file, name, strings.Join(s.Names(), ", ")))
			return nil
		}
		text, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if err := s.parse(name, file, string(text)); err != nil {
			problems = append(problems, err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading template overrides: %w", err)
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Set) addTree(fsys fs.FS, label string) error {
	return fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(name) != ext {
			return err
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		return s.parse(name, label+name, string(text))
	})
}

// parse names the template after its origin so that text/template's own
// errors ("template: /etc/x/y.tmpl:3: ...") point at the file to fix.
func (s *Set) parse(name, origin, text string) error {
	t, err := template.New(origin).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return fmt.Errorf("parsing template %s: %w", origin, err)
	}
	s.tmpls[name] = t
	s.origin[name] = origin
	return nil
}

// Names lists every template, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.tmpls))
	for n := range s.tmpls {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Origin says where a template came from: "built-in NAME" or the override
// file's path.
func (s *Set) Origin(name string) string { return s.origin[name] }

// Unused lists the templates under dir/ that Render has not been asked
// for, so a role's golden test can prove it covers every template it owns.
func (s *Set) Unused(dir string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, n := range s.Names() {
		if strings.HasPrefix(n, dir+"/") && !s.used[n] {
			out = append(out, n)
		}
	}
	return out
}

// Render executes the named template with data.
func (s *Set) Render(name string, data any) ([]byte, error) {
	t, ok := s.tmpls[name]
	if !ok {
		return nil, fmt.Errorf("no template named %q", name)
	}
	s.mu.Lock()
	s.used[name] = true
	s.mu.Unlock()
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("rendering %s: %w", s.origin[name], err)
	}
	return buf.Bytes(), nil
}

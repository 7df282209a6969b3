package templates

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/internal/golden"
)

type hostEntry struct {
	Address string
	Names   []string
}

// goldenCases check the mechanism on a real template; each role's own
// golden test renders its templates from an inventory.
var goldenCases = []struct {
	name     string // golden file: testdata/<name>.golden
	template string
	data     any
}{
	{"hosts-seed", "base/hosts.tmpl", map[string]any{"Hosts": []hostEntry{
		{"192.168.0.190", []string{"kafka-1"}},
		{"192.168.0.191", []string{"kafka-2"}},
		{"192.168.0.192", []string{"kafka-3"}},
		{"192.168.0.200", []string{"www.sc.com"}},
	}}},
	{"hosts-ipv6", "base/hosts.tmpl", map[string]any{"Hosts": []hostEntry{
		{"fd00::10", []string{"kafka-1", "kafka-1.lab"}},
	}}},
}

func TestGolden(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := set.Render(c.template, c.data)
			if err != nil {
				t.Fatal(err)
			}
			golden.Assert(t, filepath.Join("testdata", c.name+".golden"), got)
		})
	}
}

func TestUnused(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Unused("base"), " "); !strings.Contains(got, "base/hosts.tmpl") {
		t.Fatalf("nothing rendered yet, Unused = %q", got)
	}
	set.Render("base/hosts.tmpl", map[string]any{"Hosts": nil})
	if got := set.Unused("base"); slices.Contains(got, "base/hosts.tmpl") {
		t.Errorf("rendered template still unused: %q", got)
	}
}

func TestMissingKeyFails(t *testing.T) {
	set, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	_, err = set.Render("base/hosts.tmpl", map[string]any{"Hostz": nil})
	if err == nil || !strings.Contains(err.Error(), `map has no entry for key "Hosts"`) {
		t.Fatalf("want a missing-key error, got %v", err)
	}
	if !strings.Contains(err.Error(), "built-in base/hosts.tmpl") {
		t.Errorf("error should name the template's origin: %v", err)
	}
}

func writeOverride(t *testing.T, name, text string) string {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOverrideReplacesBuiltin(t *testing.T) {
	dir := writeOverride(t, "base/hosts.tmpl", "{{range .Hosts}}{{.Address}} {{index .Names 0}} # mine\n{{end}}")
	set, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := set.Render("base/hosts.tmpl", map[string]any{"Hosts": []hostEntry{{"10.0.0.1", []string{"a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "10.0.0.1 a # mine\n" {
		t.Errorf("override not used: %q", got)
	}
	if want := filepath.Join(dir, "base", "hosts.tmpl"); set.Origin("base/hosts.tmpl") != want {
		t.Errorf("origin = %q, want %q", set.Origin("base/hosts.tmpl"), want)
	}
}

func TestOverrideErrors(t *testing.T) {
	tests := []struct {
		name, file, text, want string
	}{
		{"unknown name", "base/host.tmpl", "x", `base/host.tmpl: no built-in template is named "base/host.tmpl"`},
		{"syntax error with line", "base/hosts.tmpl", "ok\n{{range .Hosts}\n", "base/hosts.tmpl:2: bad character U+007D"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeOverride(t, tt.file, tt.text)
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load error = %v, want it to contain %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), dir) {
				t.Errorf("error should name the override file's full path: %v", err)
			}
		})
	}
}

func TestOverrideDirMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !strings.Contains(err.Error(), "template override directory") {
		t.Fatalf("want a clear error for a missing directory, got %v", err)
	}
}

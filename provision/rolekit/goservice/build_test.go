package goservice

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The cache key covers the consumer's sources only if every package of
// the module it imports lies under the builder's roots.
func TestConsumerRootsHoldEveryImport(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	b := ConsumerBuilder()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", b.Package)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(pkg, ModulePath+"/")
		if !ok {
			continue
		}
		covered := false
		for _, r := range b.Roots {
			covered = covered || rel == r || strings.HasPrefix(rel, r+"/")
		}
		if !covered {
			t.Errorf("%s imports %s, outside the roots %q the cache key hashes", b.Package, pkg, b.Roots)
		}
	}
}

// A build is kept by content: a second builder (another process) finds it
// without the go command; a changed source builds anew and replaces it.
func TestBuildCachedByContent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program")
	}
	mod := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(mod, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mod, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/hello\n\ngo 1.21\n")
	write("hello/main.go", "package main\n\nfunc main() { println(\"hello\") }\n")
	write("hello/main_test.go", "package main\n")
	cache := t.TempDir()
	newBuilder := func() *GoBuilder {
		return &GoBuilder{ModuleDir: mod, Package: "./hello", Roots: []string{"hello"}, CacheDir: cache}
	}

	first, err := newBuilder().Build("arm64")
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.NewFile(strings.NewReader(string(first.Content)))
	if err != nil || f.Machine != elf.EM_AARCH64 {
		t.Fatalf("not a linux/arm64 binary: %v %v", err, f)
	}
	if NewBinary(first.Content).SHA256 != first.SHA256 {
		t.Error("checksum does not match the content")
	}

	// Without the go command, only the cache can answer; a test file
	// changed does not count.
	path := os.Getenv("PATH")
	t.Setenv("PATH", t.TempDir())
	write("hello/main_test.go", "package main\n\n// changed\n")
	again, err := newBuilder().Build("arm64")
	if err != nil {
		t.Fatalf("second build was not a cache hit: %v", err)
	}
	if again.SHA256 != first.SHA256 {
		t.Error("the cache returned another binary")
	}

	write("hello/main.go", "package main\n\nfunc main() { println(\"hello again\") }\n")
	if _, err := newBuilder().Build("arm64"); err == nil {
		t.Fatal("a changed source was answered from the cache")
	}
	t.Setenv("PATH", path)
	changed, err := newBuilder().Build("arm64")
	if err != nil {
		t.Fatal(err)
	}
	if changed.SHA256 == first.SHA256 {
		t.Error("a changed source built the same binary")
	}
	if kept, _ := filepath.Glob(filepath.Join(cache, "hello-linux-arm64-*")); len(kept) != 1 {
		t.Errorf("cache holds %q, want the latest build only", kept)
	}
}

func TestBuildUnknownArchitecture(t *testing.T) {
	_, err := (&GoBuilder{}).Build("")
	if err == nil || !strings.Contains(err.Error(), "uname -m") {
		t.Fatalf("error %v", err)
	}
}

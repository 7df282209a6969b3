package goservice

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"
)

// ModulePath is the module the binaries are built from.
const ModulePath = "github.com/trafficlab/trafficlab"

// Binary is a built program.
type Binary struct {
	Content []byte
	SHA256  string // hex
}

// NewBinary describes content.
func NewBinary(content []byte) Binary {
	sum := sha256.Sum256(content)
	return Binary{Content: content, SHA256: hex.EncodeToString(sum[:])}
}

// Builder gives the binary for a Linux machine of a Go architecture.
type Builder interface {
	Build(goarch string) (Binary, error)
}

// GoBuilder cross-compiles a package of this module with the go command
// and keeps each build in a cache directory under a key made of everything
// the build reads (the source files under Roots, go.mod, go.sum, the Go
// version and the target), so that a plan with nothing changed finds the
// binary there instead of building it; one process builds each target at
// most once.
type GoBuilder struct {
	// ModuleDir is the module's root; "" means the first directory holding
	// ModulePath's go.mod at or above the working directory.
	ModuleDir string
	// Package is what to build, relative to ModuleDir: "./consumer".
	Package string
	// Roots are the directories (relative to ModuleDir) that hold every
	// package of the module that Package imports.
	Roots []string
	// CacheDir keeps the builds; "" means os.UserCacheDir()/trafficlab/build.
	CacheDir string

	mu    sync.Mutex
	built map[string]Binary // goarch → binary, for this process
}

var (
	consumerOnce    sync.Once
	consumerBuilder *GoBuilder
)

// ConsumerBuilder is the one builder of ./consumer that the consumer and
// dashboard roles share, so one `provision up` builds (or reads from the
// cache) each architecture once.
func ConsumerBuilder() *GoBuilder {
	consumerOnce.Do(func() {
		// consumer/ imports nothing else of the module today; internal/
		// is there for what it may import tomorrow (a test checks that
		// these roots hold every package it imports).
		consumerBuilder = &GoBuilder{Package: "./consumer", Roots: []string{"consumer", "internal"}}
	})
	return consumerBuilder
}

// Build returns the binary for linux/goarch.
func (b *GoBuilder) Build(goarch string) (Binary, error) {
	if goarch == "" {
		return Binary{}, errors.New("the host's architecture is unknown to Go (see `uname -m` on it): no binary can be built for it")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if bin, ok := b.built[goarch]; ok {
		return bin, nil
	}
	bin, err := b.build(goarch)
	if err != nil {
		return Binary{}, fmt.Errorf("build %s for linux/%s: %w", b.Package, goarch, err)
	}
	if b.built == nil {
		b.built = map[string]Binary{}
	}
	b.built[goarch] = bin
	return bin, nil
}

func (b *GoBuilder) build(goarch string) (Binary, error) {
	dir := b.ModuleDir
	if dir == "" {
		var err error
		if dir, err = FindModule(); err != nil {
			return Binary{}, err
		}
	}
	cache := b.CacheDir
	if cache == "" {
		user, err := os.UserCacheDir()
		if err != nil {
			return Binary{}, fmt.Errorf("no cache directory for builds: %w", err)
		}
		cache = filepath.Join(user, "trafficlab", "build")
	}
	key, err := b.key(dir, goarch)
	if err != nil {
		return Binary{}, err
	}
	name := strings.TrimPrefix(filepath.Base(b.Package), ".")
	kept := filepath.Join(cache, fmt.Sprintf("%s-linux-%s-%s", name, goarch, key[:32]))
	if content, err := os.ReadFile(kept); err == nil {
		return NewBinary(content), nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return Binary{}, fmt.Errorf("cache directory: %w", err)
	}
	tmp, err := os.CreateTemp(cache, ".build-*")
	if err != nil {
		return Binary{}, fmt.Errorf("cache directory: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	start := time.Now()
	slog.Info("building", "package", b.Package, "goos", "linux", "goarch", goarch)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp.Name(), b.Package)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binary{}, fmt.Errorf("go build in %s: %w\n%s", dir, err, strings.TrimSpace(string(out)))
	}
	slog.Info("built", "package", b.Package, "goarch", goarch, "elapsed", time.Since(start).Round(time.Millisecond))
	if err := os.Rename(tmp.Name(), kept); err != nil {
		return Binary{}, fmt.Errorf("keeping the build: %w", err)
	}
	// Older builds of the same target are of no more use.
	old, _ := filepath.Glob(filepath.Join(cache, fmt.Sprintf("%s-linux-%s-*", name, goarch)))
	for _, p := range old {
		if p != kept {
			os.Remove(p)
		}
	}
	content, err := os.ReadFile(kept)
	if err != nil {
		return Binary{}, fmt.Errorf("reading the build: %w", err)
	}
	return NewBinary(content), nil
}

// key hashes everything the build reads.
func (b *GoBuilder) key(dir, goarch string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "trafficlab build 1\x00%s\x00%s\x00linux/%s\x00", runtime.Version(), b.Package, goarch)
	files := []string{"go.mod", "go.sum"}
	for _, root := range b.Roots {
		err := filepath.WalkDir(filepath.Join(dir, root), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && p != filepath.Join(dir, root) {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && !strings.HasSuffix(p, "_test.go") {
				rel, _ := filepath.Rel(dir, p)
				files = append(files, rel)
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("reading the sources: %w", err)
		}
	}
	sort.Strings(files)
	for _, f := range files {
		content, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) && (f == "go.sum" || f == "go.mod") {
			continue // a module without dependencies has no go.sum
		}
		if err != nil {
			return "", fmt.Errorf("reading the sources: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.ToSlash(f), len(content))
		h.Write(content)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// FindModule returns the directory at or above the working directory whose
// go.mod declares ModulePath.
func FindModule() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if modulePathOf(filepath.Join(dir, "go.mod")) == ModulePath {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("building the consumer needs trafficlab's source tree: no go.mod of %s at or above %s (run provision from the repository)", ModulePath, wd)
		}
	}
}

func modulePathOf(gomod string) string {
	f, err := os.Open(gomod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// Package filebeatdist builds the lab's filebeat distribution: real
// filebeat, compiled from Elastic's Go module, packaged exactly like
// Elastic's release tarball (filebeat-VERSION-linux-ARCH.tar.gz holding
// filebeat-VERSION-linux-ARCH/filebeat, filebeat.yml, ...), so that the
// filebeat role installs it through its ordinary tarball path. Elastic's
// downloads cannot be reached from the lab; the Go module proxy can
// (DESIGN.md section 9).
//
// Builds are cached by version and architecture under the artifacts
// directory, outside any work tree: a cold build takes minutes.
package filebeatdist

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/trafficlab/trafficlab/lab/tarball"
)

// Version is the filebeat release the lab builds: the newest 7.x the Go
// module proxy serves.
const Version = "7.17.29"

// Module is the Go module filebeat is built from.
const Module = "github.com/elastic/beats/v7"

// packaging names the layout Package makes, part of the cache key beside
// the version: a change of the layout must not reuse older builds.
const packaging = "p1"

// DefaultCacheDir keeps built distributions, outside any work tree.
const DefaultCacheDir = "/var/cache/trafficlab/artifacts"

// Artifact is a built distribution: where it is and its checksum, what the
// inventory's filebeat.artifact and filebeat.sha512 take.
type Artifact struct {
	Path   string
	SHA512 string
}

// Arch is Elastic's name for a Go architecture in its tarball names.
func Arch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "386":
		return "x86"
	}
	return goarch // arm64 is arm64 in Elastic's names too
}

// TopDir is the distribution's top directory, and its file name without
// .tar.gz, as Elastic names them.
func TopDir(version, goarch string) string {
	return "filebeat-" + version + "-linux-" + Arch(goarch)
}

// Build returns the distribution for this machine's architecture (the
// lab's machines share it), from the cache when it has been built before,
// else building it: `go mod download` of the module, a writable copy of
// it (the module cache is read-only), and `go build` of ./filebeat.
// logf, if not nil, hears what takes time.
func Build(ctx context.Context, cacheDir string, logf func(format string, args ...any)) (Artifact, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	top := TopDir(Version, runtime.GOARCH)
	dir := filepath.Join(cacheDir, "filebeat-"+Version+"-"+runtime.GOARCH+"-"+packaging)
	path := filepath.Join(dir, top+".tar.gz")
	if sum, err := fileSHA512(path); err == nil {
		return Artifact{Path: path, SHA512: sum}, nil
	}
	logf("filebeat %s: building from %s (a few minutes, once)", Version, Module)
	tmp, err := os.MkdirTemp("", "filebeat-build-")
	if err != nil {
		return Artifact{}, err
	}
	defer os.RemoveAll(tmp)
	src, err := download(ctx, tmp)
	if err != nil {
		return Artifact{}, err
	}
	work := filepath.Join(tmp, "beats")
	if err := os.CopyFS(work, os.DirFS(src)); err != nil {
		return Artifact{}, fmt.Errorf("copying %s to %s: %w", src, work, err)
	}
	if err := makeWritable(work); err != nil {
		return Artifact{}, err
	}
	bin := filepath.Join(tmp, "filebeat")
	cmd := exec.CommandContext(ctx, goCommand(), "build", "-trimpath", "-buildvcs=false", "-ldflags", "-s -w", "-o", bin, "./filebeat")
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		return Artifact{}, fmt.Errorf("building filebeat %s in %s: %w\n%s", Version, work, err, out)
	}
	program, err := os.ReadFile(bin)
	if err != nil {
		return Artifact{}, err
	}
	extra := map[string][]byte{}
	for name, from := range map[string]string{
		"filebeat.yml":           "filebeat/filebeat.yml",
		"filebeat.reference.yml": "filebeat/filebeat.reference.yml",
		"LICENSE.txt":            "LICENSE.txt",
		"NOTICE.txt":             "NOTICE.txt",
	} {
		b, err := os.ReadFile(filepath.Join(work, from))
		if err != nil {
			return Artifact{}, fmt.Errorf("the module's %s: %w", from, err)
		}
		extra[name] = b
	}
	tgz, err := Package(top, program, extra)
	if err != nil {
		return Artifact{}, err
	}
	if err := tarball.Save(path, tgz); err != nil {
		return Artifact{}, err
	}
	sum := sha512.Sum512(tgz)
	return Artifact{Path: path, SHA512: hex.EncodeToString(sum[:])}, nil
}

// download fetches the module into the module cache and returns its
// directory there. It runs outside any module (in dir), so trafficlab's
// own go.mod is neither read nor changed.
func download(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, goCommand(), "mod", "download", "-json", Module+"@v"+Version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=-mod=mod")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s@v%s: %s", Module, Version, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("go mod download %s@v%s: %w\n%s", Module, Version, err, stderr.Bytes())
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@v%s: no module directory in %q", Module, Version, out)
	}
	return info.Dir, nil
}

// makeWritable gives the owner write permission on everything below dir:
// the module cache's copies are read-only, and the build writes beside
// them (and the temporary directory must be removable afterwards).
func makeWritable(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()|0o200)
	})
}

func fileSHA512(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// goCommand is the go tool on PATH, else where Go usually lives (sudo
// resets PATH).
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	for _, p := range []string{filepath.Join(os.Getenv("GOROOT"), "bin", "go"), "/usr/local/go/bin/go"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// Package makes the distribution tarball: top/filebeat (the program, mode
// 0755), the files of extra (0644) and a README.md saying how it was
// built, all under one top directory as in Elastic's tarball.
func Package(top string, program []byte, extra map[string][]byte) ([]byte, error) {
	files := map[string]tarball.File{
		"filebeat":  {Mode: 0o755, Content: program},
		"README.md": {Mode: 0o644, Content: []byte(readme)},
	}
	for n, b := range extra {
		files[n] = tarball.File{Mode: 0o644, Content: b}
	}
	return tarball.Write(top, files)
}

const readme = `# filebeat ` + Version + `, built by trafficlab's lab

This is Elastic's filebeat ` + Version + `, compiled from the Go module
` + Module + `@v` + Version + ` (CGO_ENABLED=0 go build -trimpath -ldflags "-s -w"
./filebeat) and laid out like Elastic's release tarball, because Elastic's
downloads cannot be reached from the lab. It is real filebeat, not a
stand-in; only the packaging is trafficlab's (lab/filebeatdist).

The license of filebeat is in LICENSE.txt and NOTICE.txt.
`

//go:build linux

// Package image builds the lab's Debian base image once with debootstrap,
// from the host's own mirror and apt settings, and caches it outside the work
// tree. The cache key is a hash of everything that shapes the image (package
// list, sources, apt settings, the recipe version), so a change to any of them
// builds a new image and an unchanged host reuses the old one.
package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/trafficlab/trafficlab/lab/aptsrc"
	"github.com/trafficlab/trafficlab/lab/daemon"
	"github.com/trafficlab/trafficlab/lab/progress"
	"github.com/trafficlab/trafficlab/lab/run"
	"github.com/trafficlab/trafficlab/lab/tree"
)

// Suite is the Debian release the machines run.
const Suite = "bookworm"

// recipe is bumped whenever Build's customisation changes, so old cached
// images are not reused for a different recipe.
const recipe = "6"

// Packages are installed into the image on top of debootstrap's minbase.
var Packages = []string{
	"systemd", "systemd-sysv", "dbus", "openssh-server", "python3",
	"iproute2", "ca-certificates", "procps",
}

// Spec is what an image is built from.
type Spec struct {
	CacheDir string         // e.g. /var/cache/trafficlab/images
	Apt      *aptsrc.Host   // the host's apt configuration
	Sources  []aptsrc.Entry // the Debian entries of Apt for Suite
}

// NewSpec reads the host's apt configuration and selects its Debian sources.
func NewSpec(cacheDir string, paths aptsrc.Paths) (*Spec, error) {
	h, err := aptsrc.Read(paths)
	if err != nil {
		return nil, err
	}
	s := &Spec{CacheDir: cacheDir, Apt: h, Sources: h.Debian(Suite)}
	if _, err := aptsrc.Mirror(s.Sources, Suite); err != nil {
		return nil, err
	}
	return s, nil
}

// SourcesFile is the deb822 sources file the image and machines use.
func (s *Spec) SourcesFile() string { return aptsrc.Deb822(s.Sources) }

// AptConfFile holds the host's Acquire settings for the image.
func (s *Spec) AptConfFile() string { return aptsrc.AptConf(s.Apt.Acquire) }

// Key identifies the image: suite plus a hash of what shapes it.
func (s *Spec) Key() string {
	h := sha256.New()
	fmt.Fprintf(h, "recipe %s\nsuite %s\npackages %s\n", recipe, Suite, strings.Join(Packages, ","))
	h.Write([]byte(s.SourcesFile()))
	h.Write([]byte(s.AptConfFile()))
	return Suite + "-" + hex.EncodeToString(h.Sum(nil))[:12]
}

// Dir is where the finished image lives.
func (s *Spec) Dir() string { return filepath.Join(s.CacheDir, s.Key()) }

// Ensure returns the image directory, building it first when it is not in
// the cache. The build goes to a temporary directory renamed into place only
// when complete, so an interrupted build is never mistaken for an image.
func (s *Spec) Ensure(ctx context.Context, p *progress.Printer) (string, error) {
	dir := s.Dir()
	if _, err := os.Stat(filepath.Join(dir, "etc", "os-release")); err == nil {
		p.Printf("image: %s cached", dir)
		return dir, nil
	}
	if err := os.MkdirAll(s.CacheDir, 0o755); err != nil {
		return "", fmt.Errorf("image cache: %w", err)
	}
	tmp := dir + ".tmp"
	// An interrupted build may still be running: its debootstrap, and the
	// dpkg it runs chrooted into tmp.
	daemon.KillAll(daemon.Find(func(argv []string) bool {
		return daemon.Command(argv) == "debootstrap" && daemon.HasArg(argv, tmp)
	}))
	daemon.KillAll(daemon.InRoot(tmp))
	if err := tree.Remove(tmp); err != nil {
		return "", fmt.Errorf("image: remove leftover %s: %w", tmp, err)
	}
	mirror, _ := aptsrc.Mirror(s.Sources, Suite)
	p.Printf("image: debootstrap %s from %s into %s (about a minute)", Suite, mirror.URI, tmp)
	args := []string{
		"--variant=minbase",
		"--include=" + strings.Join(Packages, ","),
		"--components=" + strings.Join(mirror.Components, ","),
	}
	if kr := mirror.SignedBy; kr != "" && !strings.Contains(kr, "\n") {
		if _, err := os.Stat(kr); err == nil {
			args = append(args, "--keyring="+kr)
		}
	}
	args = append(args, Suite, tmp, mirror.URI)
	logf, err := os.Create(dir + ".build.log")
	if err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	defer logf.Close()
	if _, err := run.With(ctx, run.Options{Stdout: logf, Stderr: logf}, "debootstrap", args...); err != nil {
		tree.Remove(tmp)
		return "", fmt.Errorf("image: build failed (log %s): %w", logf.Name(), err)
	}
	if err := s.customize(tmp); err != nil {
		tree.Remove(tmp)
		return "", fmt.Errorf("image: customize %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("image: %w", err)
	}
	p.Printf("image: %s built", dir)
	// Machines are full copies, so images of an older recipe or older apt
	// settings are no longer needed.
	old, _ := filepath.Glob(filepath.Join(s.CacheDir, Suite+"-*"))
	for _, o := range old {
		if o == dir || o == dir+".build.log" || strings.HasSuffix(o, ".tmp") {
			continue
		}
		if err := tree.Remove(o); err == nil {
			p.Printf("image: removed outdated %s", o)
		}
	}
	return dir, nil
}

// customize turns a fresh debootstrap tree into the lab's base image.
// Per-machine identity (host keys, machine-id, hostname) is removed here and
// created for each machine by package machine.
func (s *Spec) customize(root string) error {
	write := func(rel, content string, mode os.FileMode) error {
		path := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		return os.WriteFile(path, []byte(content), mode)
	}
	// The host's sources (Debian suites only) replace debootstrap's one-line
	// sources.list, and the host's Acquire settings come along (a dated
	// snapshot needs Check-Valid-Until "false").
	if err := os.Remove(filepath.Join(root, "etc/apt/sources.list")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := write("etc/apt/sources.list.d/debian.sources", s.SourcesFile(), 0o644); err != nil {
		return err
	}
	if err := write("etc/apt/apt.conf.d/90trafficlab-host", s.AptConfFile(), 0o644); err != nil {
		return err
	}
	// Host keys and machine-id must differ per machine.
	keys, _ := filepath.Glob(filepath.Join(root, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	if err := write("etc/machine-id", "", 0o444); err != nil {
		return err
	}
	os.Remove(filepath.Join(root, "var/lib/dbus/machine-id"))
	// Only the ed25519 host key exists; root logs in with keys only.
	if err := write("etc/ssh/sshd_config.d/trafficlab.conf",
		"# trafficlab lab machine\nHostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n", 0o644); err != nil {
		return err
	}
	// Nothing resolves names inside the lab (apt goes through the proxy,
	// which resolves on the host); an empty resolv.conf fails lookups fast.
	os.Remove(filepath.Join(root, "etc/resolv.conf"))
	if err := write("etc/resolv.conf", "# trafficlab lab: no DNS inside the lab; apt uses the proxy\n", 0o644); err != nil {
		return err
	}
	for _, unit := range maskUnits {
		link := filepath.Join(root, "etc/systemd/system", unit)
		os.Remove(link)
		if err := os.Symlink("/dev/null", link); err != nil {
			return err
		}
	}
	// Downloaded .debs and indexes are stale the moment the image is copied.
	for _, glob := range []string{"var/cache/apt/archives/*.deb", "var/lib/apt/lists/*_*"} {
		files, _ := filepath.Glob(filepath.Join(root, glob))
		for _, f := range files {
			os.Remove(f)
		}
	}
	return nil
}

// maskUnits: console logins nobody uses; apt's daily timers, which would
// take the dpkg lock in the middle of provisioning; and the per-user
// service manager, which no lab login needs: in a container its stop can
// hang for minutes (processes left after SIGKILL) and its start at boot,
// and every login meanwhile waits for it in pam_systemd, so provision's
// SSH sessions stalled until their keepalives gave up, and a boot waiting
// on it kept /run/nologin (pam_nologin's "System is booting up") in every
// login's output.
var maskUnits = []string{
	"console-getty.service", "getty@.service", "container-getty@.service",
	"apt-daily.timer", "apt-daily-upgrade.timer",
	"user@.service",
}

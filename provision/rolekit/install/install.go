// Package install puts software that is not an OS package on hosts, for the
// roles that need it (ZooKeeper on RHEL-like hosts, Kafka everywhere): a
// distribution tarball downloaded on the host or uploaded from the control
// machine, always checked against its SHA-512 before anything of it is
// used, kept so that a re-run fetches nothing, unpacked into a versioned
// directory behind a stable symbolic link.
//
// Every helper returns idempotent steps whose commands the roles' tests
// answer with provision/rolekit/roletest.
package install

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/step"
)

// DistDir keeps the downloaded or uploaded distributions on the hosts.
const DistDir = "/opt/trafficlab/dist"

// Tarball is one distribution to install.
type Tarball struct {
	// Source is an http(s) URL, downloaded on the host, or an absolute path
	// on the control machine, uploaded over SFTP (inventory.Load has
	// turned file:// URLs into paths).
	Source string
	// SHA512 is the expected checksum in lower-case hex. Empty means: for
	// a URL, the checksum Apache publishes at Source+".sha512"; for a
	// local file, none (the file is its own reference, and the upload is
	// checked against it).
	SHA512 string
	// Dir is the versioned directory it is unpacked into and Link the
	// stable symbolic link to Dir that units and users refer to.
	Dir, Link string
}

// NewTarball describes the tarball at source, unpacked next to link into a
// directory named after the file (kafka_2.13-3.9.1.tgz goes into
// /opt/kafka_2.13-3.9.1 for link /opt/kafka).
func NewTarball(source, sha, link string) Tarball {
	t := Tarball{Source: source, SHA512: strings.ToLower(sha), Link: link}
	dir := path.Join(path.Dir(link), stem(t.File()))
	if dir == link || stem(t.File()) == "" {
		// A file named like the link (kafka.tgz for /opt/kafka) still
		// needs a directory of its own.
		dir = link + "-dist"
	}
	t.Dir = dir
	return t
}

// stem is a file name without its archive extensions.
func stem(name string) string {
	for _, ext := range []string{".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar"} {
		if s, ok := strings.CutSuffix(name, ext); ok {
			return s
		}
	}
	return name
}

// File is the distribution's file name.
func (t Tarball) File() string {
	if i := strings.LastIndexAny(t.Source, "/"); i >= 0 {
		return t.Source[i+1:]
	}
	return t.Source
}

// Kept is where the host keeps the distribution; Kept()+".sha512" holds
// the checksum it was verified against, in sha512sum's format.
func (t Tarball) Kept() string { return DistDir + "/" + t.File() }

func (t Tarball) part() string    { return DistDir + "/." + t.File() + ".part" }
func (t Tarball) sidecar() string { return t.Kept() + ".sha512" }
func (t Tarball) remote() bool {
	return strings.HasPrefix(t.Source, "https://") || strings.HasPrefix(t.Source, "http://")
}

// Changes are the steps after whose change the installed software is
// another: a restart follows them.
func (t Tarball) Changes() []step.ID {
	return []step.ID{{Kind: step.KindUnpack, Object: t.Dir}, {Kind: step.KindLink, Object: t.Link}}
}

// Steps fetch the distribution (when the kept copy is missing or does not
// match), unpack it and point the link at it.
func (t Tarball) Steps() []step.Step {
	q := remote.ShellQuote
	marker := t.Dir + "/.trafficlab-sha512"
	fresh := t.Dir + ".trafficlab-new"
	unpack := step.Command("unpack "+t.File()+" into "+t.Dir,
		fmt.Sprintf(`test -s %s && test "$(cat %s 2>/dev/null)" = "$(cut -d' ' -f1 %s 2>/dev/null)"`, q(marker), q(marker), q(t.sidecar())),
		// Unpacked beside the old directory and swapped in, so a
		// failed unpack leaves what ran before untouched; files
		// belong to root whatever the archive says.
		// The directory says which link and kept copy it belongs to, so
		// that destroy finds the releases an upgrade left behind.
		fmt.Sprintf(`{ rm -rf %s && mkdir -p %s && tar -xf %s -C %s --strip-components=1 --no-same-owner && cut -d' ' -f1 %s > %s && printf '%%s\n' %s %s > %s && rm -rf %s && mv %s %s; }; rc=$?; [ $rc = 0 ] || rm -rf %s; exit $rc`,
			q(fresh), q(fresh), q(t.Kept()), q(fresh), q(t.sidecar()), q(fresh+"/.trafficlab-sha512"), q(t.Link), q(t.Kept()), q(fresh+"/"+ownerFile), q(t.Dir), q(fresh), q(t.Dir), q(fresh)))
	link := step.Command("link "+t.Link+" -> "+t.Dir,
		fmt.Sprintf(`test "$(readlink -- %s)" = %s`, q(t.Link), q(t.Dir)),
		fmt.Sprintf(`if [ -d %s ] && [ ! -L %s ]; then echo "%s is a directory, not the link trafficlab keeps; move it away" >&2; exit 1; fi; ln -sfn -- %s %s`,
			q(t.Link), q(t.Link), t.Link, q(t.Dir), q(t.Link)))
	changes := t.Changes()
	unpack.ID, link.ID = changes[0], changes[1]
	fetch := step.Step{ID: step.ID{Kind: step.KindFetch, Object: t.File()}, Name: "fetch " + t.File(), Check: t.checkFetched, Apply: t.fetch}
	return []step.Step{fetch, unpack, link}
}

// ownerFile, in an unpacked directory, holds the link it was unpacked for
// and the kept copy it came from, one per line.
const ownerFile = ".trafficlab-owner"

// Remove deletes the link, the unpacked directory and the kept copy, and
// the releases behind the same link that an upgrade left beside them.
func (t Tarball) Remove() []step.Step {
	q := remote.ShellQuote
	parent := path.Dir(t.Link)
	older := step.Command("remove older releases unpacked for "+t.Link,
		fmt.Sprintf(`! grep -qsxF -- %s %s/*/%s`, q(t.Link), q(parent), ownerFile),
		fmt.Sprintf(`for f in %s/*/%s; do [ "$(head -n1 "$f")" = %s ] || continue; kept=$(sed -n 2p "$f"); case $kept in %s/*) rm -f -- "$kept" "$kept.sha512";; esac; rm -rf -- "$(dirname "$f")"; done`,
			q(parent), ownerFile, q(t.Link), DistDir))
	return []step.Step{
		step.TreeAbsent(t.Link), step.TreeAbsent(t.Dir), step.TreeAbsent(t.Kept()), step.TreeAbsent(t.sidecar()), older,
		step.EmptyDirAbsent(DistDir), step.EmptyDirAbsent(path.Dir(DistDir)),
	}
}

// checkFetched finds the kept copy intact and verified against the wanted
// checksum.
func (t Tarball) checkFetched(ctx context.Context, tg *step.Target) (*step.Change, error) {
	q := remote.ShellQuote
	what := "download " + t.Source + " to " + t.Kept()
	if !t.remote() {
		what = "upload " + t.Source + " to " + t.Kept()
	}
	res, err := tg.Host.Run(ctx, fmt.Sprintf("cd %s 2>/dev/null && sha512sum -c --status %s && cat %s", q(DistDir), q(t.File()+".sha512"), q(t.File()+".sha512")))
	if err != nil {
		if remote.IsExit(err) {
			return &step.Change{Summary: what}, nil
		}
		return nil, err
	}
	have, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), " ")
	want := t.SHA512
	if want == "" && !t.remote() {
		if want, err = localSHA512(t.Source); err != nil {
			return nil, err
		}
	}
	if want != "" && have != want {
		return &step.Change{Summary: what + " (the kept copy has another checksum)"}, nil
	}
	return nil, nil
}

func (t Tarball) fetch(ctx context.Context, tg *step.Target) error {
	q := remote.ShellQuote
	want, from := t.SHA512, "the inventory"
	if t.remote() {
		if want == "" {
			from = t.Source + ".sha512"
			res, err := tg.Host.Run(ctx, "curl -fsSL --retry 3 "+q(t.Source+".sha512"))
			if err != nil {
				return fmt.Errorf("fetching the checksum %s.sha512 on the host: %w (or set the artifact's sha512 in the inventory)", t.Source, err)
			}
			if want, err = ParseChecksum(string(res.Stdout), t.File()); err != nil {
				return fmt.Errorf("%s.sha512: %w", t.Source, err)
			}
		}
		if _, err := tg.Host.Run(ctx, fmt.Sprintf("mkdir -p %s && curl -fsSL --retry 3 -o %s %s", q(DistDir), q(t.part()), q(t.Source)), remote.WithTimeout(30*time.Minute)); err != nil {
			tg.Host.Run(ctx, "rm -f "+q(t.part()))
			return fmt.Errorf("downloading %s on the host: %w", t.Source, err)
		}
	} else {
		local, err := localSHA512(t.Source)
		if err != nil {
			return err
		}
		if want != "" && local != want {
			return fmt.Errorf("%s has SHA-512 %s but the inventory says %s; nothing uploaded, nothing installed", t.Source, local, want)
		}
		want, from = local, t.Source
		content, err := os.ReadFile(t.Source)
		if err != nil {
			return fmt.Errorf("reading the artifact: %w", err)
		}
		if _, err := tg.Host.Run(ctx, "mkdir -p "+q(DistDir)); err != nil {
			return err
		}
		if err := tg.Host.Upload(ctx, t.part(), content, 0o644, ""); err != nil {
			return err
		}
	}
	res, err := tg.Host.Run(ctx, "sha512sum -- "+q(t.part()))
	if err != nil {
		return fmt.Errorf("checksumming %s: %w", t.part(), err)
	}
	got, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), " ")
	if got != want {
		tg.Host.Run(ctx, "rm -f "+q(t.part()))
		return fmt.Errorf("%w: %s arrived with SHA-512 %s, but %s says %s; removed it, nothing installed", ErrChecksum, t.Source, got, from, want)
	}
	_, err = tg.Host.Run(ctx, fmt.Sprintf("mv -f %s %s && echo %s > %s", q(t.part()), q(t.Kept()), q(want+"  "+t.File()), q(t.sidecar())))
	return err
}

// ErrChecksum is wrapped by the error of a download or upload that does not
// match its checksum.
var ErrChecksum = errors.New("checksum mismatch")

// ParseChecksum reads a published .sha512 file for the file name: either
// sha512sum's "HEX  name" or the "name: 3A1B 2C3D ..." of `gpg
// --print-md`, which Apache's Kafka releases use, spread over lines.
func ParseChecksum(text, name string) (string, error) {
	s := strings.ReplaceAll(text, name, "")
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', ':', '*':
			return -1
		}
		return r
	}, s)
	s = strings.ToLower(s)
	if len(s) != 128 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", fmt.Errorf("no SHA-512 for %s in %q", name, strings.TrimSpace(text))
	}
	return s, nil
}

// localSHA512 hashes a local file once per size and modification time: the
// check runs on every up, and a distribution is a hundred megabytes.
func localSHA512(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("the artifact: %w", err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", p, fi.Size(), fi.ModTime().UnixNano())
	hashMu.Lock()
	defer hashMu.Unlock()
	if h, ok := hashes[key]; ok {
		return h, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("the artifact: %w", err)
	}
	defer f.Close()
	h := sha512.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("reading the artifact %s: %w", p, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	hashes[key] = sum
	return sum, nil
}

var (
	hashMu sync.Mutex
	hashes = map[string]string{}
)

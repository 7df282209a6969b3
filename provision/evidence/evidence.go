// Package evidence gathers, after a failed run, what the hosts concerned
// say about it into one directory and one tarball: each unit's status and
// the end of its journal, the end of the roles' log files, the files
// trafficlab rendered for the host (secrets masked) and the run's command
// log of the host. Reading logs of one host and role (`provision logs`)
// uses the same sources.
package evidence

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
)

// Host is one host to read and what to read there.
type Host struct {
	Name  string
	Roles []string
	Logs  role.Logs
	// Files are the files trafficlab writes there, secrets masked.
	Files []role.File
}

// Lines is how much of each journal and log file is read.
var Lines = 200

// Journal returns the command that prints the last n lines of the units'
// journal.
func Journal(units []string, n int) string {
	args := []string{"journalctl", "--no-pager", "-o", "short-iso", "-n", strconv.Itoa(n)}
	for _, u := range units {
		args = append(args, "-u", remote.ShellQuote(u))
	}
	return strings.Join(args, " ")
}

// Status returns the command that prints the units' status; it exits 3
// for a stopped unit, which is an answer, not a failure.
func Status(units []string) string {
	q := make([]string, len(units))
	for i, u := range units {
		q[i] = remote.ShellQuote(u)
	}
	return "systemctl status --no-pager --full --lines=0 " + strings.Join(q, " ") + "; true"
}

// Tails returns the command that prints the last n lines of each file the
// patterns match, each under a "==> PATH <==" header; a pattern matching
// nothing says so.
func Tails(patterns []string, n int) string {
	var b strings.Builder
	for _, p := range patterns {
		// The pattern is left unquoted for the shell to expand; roles'
		// patterns are constants of this program, never user input.
		fmt.Fprintf(&b, "for f in %s; do if [ -f \"$f\" ]; then echo \"==> $f <==\"; tail -n %d \"$f\"; else echo \"==> $f: no such file <==\"; fi; done; ", p, n)
	}
	b.WriteString("true")
	return b.String()
}

// Collect writes, under dir (created 0700), a directory per host with what
// it says, and the run's command log of the host from runDir when set;
// then dir.tar.gz (0600) beside it, whose path it returns. A host that
// cannot be read gets an ERROR file saying why; the others are read all
// the same.
func Collect(ctx context.Context, conn cluster.Connector, dir, runDir, summary string, hosts []Host) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("evidence: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte(summary+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("evidence: %w", err)
	}
	for _, h := range hosts {
		hdir := filepath.Join(dir, h.Name)
		if err := os.MkdirAll(hdir, 0o700); err != nil {
			return "", fmt.Errorf("evidence: %w", err)
		}
		var errs []error
		write := func(name string, data []byte) {
			if err := os.WriteFile(filepath.Join(hdir, name), data, 0o600); err != nil {
				errs = append(errs, err)
			}
		}
		write("roles.txt", []byte(strings.Join(h.Roles, "\n")+"\n"))
		for _, f := range h.Files {
			p := filepath.Join(hdir, "rendered", filepath.FromSlash(strings.TrimPrefix(f.Path, "/")))
			if f.Block != "" {
				p += "#" + f.Block
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := os.WriteFile(p, f.Content, 0o600); err != nil {
				errs = append(errs, err)
			}
		}
		if runDir != "" {
			if b, err := os.ReadFile(filepath.Join(runDir, h.Name+".log")); err == nil {
				write("commands.log", b)
			}
		}
		c, err := conn.Client(ctx, h.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("connect: %w", err))
		} else {
			run := func(name, cmd string) {
				res, err := c.Run(ctx, cmd, remote.WithTimeout(time.Minute))
				out := append(res.Stdout, res.Stderr...)
				if err != nil {
					out = append(out, []byte("\n(error: "+err.Error()+")\n")...)
				}
				write(name, out)
			}
			if units := h.Logs.Units; len(units) > 0 {
				run("status.txt", Status(units))
				run("journal.txt", Journal(units, Lines))
			}
			if len(h.Logs.Files) > 0 {
				run("logfiles.txt", Tails(h.Logs.Files, Lines))
			}
		}
		if len(errs) > 0 {
			write("ERROR.txt", []byte(errors.Join(errs...).Error()+"\n"))
		}
	}
	tarball := strings.TrimSuffix(dir, string(filepath.Separator)) + ".tar.gz"
	if err := archive(dir, tarball); err != nil {
		return "", fmt.Errorf("evidence: %w", err)
	}
	return tarball, nil
}

// archive writes dir as a gzip-compressed tarball, readable by its owner
// only, entries named below dir's base name.
func archive(dir, tarball string) error {
	f, err := os.OpenFile(tarball, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	base := filepath.Base(dir)
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return err
	}
	slices.Sort(paths)
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(filepath.Join(base, rel))
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

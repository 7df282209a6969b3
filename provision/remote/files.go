package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

// notFoundExit is the exit status ReadFile's sudo command uses for a
// missing file, so it does not depend on the language of cat's message.
const notFoundExit = 44

// Upload writes content to the absolute path p atomically: to a temporary
// file in the same directory, which then gets its mode and owner and is
// renamed over p. owner is "", "user" or "user:group"; "" leaves the new file
// owned by root. For non-root login users the content goes to a private
// file in /tmp first and is installed with sudo.
func (c *Client) Upload(ctx context.Context, p string, content []byte, mode fs.FileMode, owner string) error {
	err := c.upload(ctx, p, content, mode, owner)
	c.log.note("upload %s (%d bytes, mode %04o, owner %q): %v", p, len(content), mode.Perm(), owner, errOrOK(err))
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("%s: upload %s: %w", c.cfg.Name, p, err)
	}
	return nil
}

func (c *Client) upload(ctx context.Context, p string, content []byte, mode fs.FileMode, owner string) error {
	if !path.IsAbs(p) || strings.HasSuffix(p, "/") {
		return errors.New("not an absolute file path")
	}
	user, group, ok := strings.Cut(owner, ":")
	if owner != "" && (user == "" || ok && group == "") {
		return fmt.Errorf("owner %q is not user or user:group", owner)
	}
	dir, base := path.Split(p)
	// Hidden and unique, in the same directory so the rename is atomic.
	staged := path.Join(dir, "."+base+".trafficlab-"+newMarker())
	written := staged
	if !c.cfg.isRoot() {
		written = "/tmp/trafficlab-upload-" + newMarker()
	}

	sc, done, err := c.sftp(ctx)
	if err != nil {
		return err
	}
	err = writePrivate(sc, written, content)
	if err == nil && c.cfg.isRoot() && owner == "" {
		// The common case needs no command at all.
		if err = sc.Chmod(staged, mode.Perm()); err == nil {
			err = sc.PosixRename(staged, p)
		}
		if err != nil {
			sc.Remove(staged)
		}
		done()
		return err
	}
	// The SFTP session is released before running a command, which needs a
	// session slot of its own.
	done()
	if err != nil {
		return err
	}

	q := ShellQuote
	var cmd string
	if c.cfg.isRoot() {
		// chmod after chown, which clears set-id bits.
		cmd = fmt.Sprintf("chown %s %s && chmod %04o %s && mv -f %s %s", q(owner), q(staged), mode.Perm(), q(staged), q(staged), q(p))
	} else {
		cmd = fmt.Sprintf("install -m %04o", mode.Perm())
		if user != "" {
			cmd += " -o " + q(user)
		}
		if group != "" {
			cmd += " -g " + q(group)
		}
		cmd += fmt.Sprintf(" %s %s && mv -f %s %s", q(written), q(staged), q(staged), q(p))
	}
	// Whatever happened, no temporary file stays behind.
	cmd = fmt.Sprintf("{ %s; }; rc=$?; rm -f %s %s; exit $rc", cmd, q(written), q(staged))
	_, err = c.Run(ctx, cmd)
	// The command itself is in the log; its complaint is what matters here.
	var exit *ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("exit status %d: %s", exit.Code, exit.Stderr)
	}
	return err
}

func errOrOK(err error) any {
	if err == nil {
		return "ok"
	}
	return err
}

// writePrivate creates p, readable by its owner only, and streams content
// into it.
func writePrivate(sc *sftp.Client, p string, content []byte) error {
	f, err := sc.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("create %s: %w", p, err)
	}
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.ReadFrom(bytes.NewReader(content))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		sc.Remove(p)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// ReadFile returns the content of the file at p; a missing file gives an
// error that matches fs.ErrNotExist. Non-root login users read through sudo.
func (c *Client) ReadFile(ctx context.Context, p string) ([]byte, error) {
	if !c.cfg.isRoot() {
		q := ShellQuote(p)
		res, err := c.Run(ctx, fmt.Sprintf("[ -e %s ] || exit %d; exec cat -- %s", q, notFoundExit, q), WithSecretStdout())
		var exit *ExitError
		if errors.As(err, &exit) && exit.Code == notFoundExit {
			return nil, fmt.Errorf("%s: read %s: %w", c.cfg.Name, p, fs.ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: read %s: %w", c.cfg.Name, p, err)
		}
		return res.Stdout, nil
	}
	sc, done, err := c.sftp(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", c.cfg.Name, p, err)
	}
	defer done()
	f, err := sc.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", c.cfg.Name, p, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", c.cfg.Name, p, err)
	}
	return data, nil
}

// sftp starts an SFTP session; ending ctx aborts its operations.
func (c *Client) sftp(ctx context.Context) (*sftp.Client, func(), error) {
	sess, closeSession, err := c.openSession(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("sftp: %w", err)
	}
	w, err := sess.StdinPipe()
	if err != nil {
		closeSession()
		return nil, nil, fmt.Errorf("sftp: %w", err)
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		closeSession()
		return nil, nil, fmt.Errorf("sftp: %w", err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		closeSession()
		return nil, nil, fmt.Errorf("sftp: %w", err)
	}
	sc, err := sftp.NewClientPipe(r, w, sftp.UseConcurrentWrites(true))
	if err != nil {
		closeSession()
		return nil, nil, fmt.Errorf("sftp: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { sc.Close() })
	return sc, func() {
		stop()
		sc.Close()
		closeSession()
	}, nil
}

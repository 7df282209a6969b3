package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/pkg/sftp"
)

// notFoundExit is the exit status ReadFile's sudo command uses for a
// missing file, so it does not depend on the language of cat's message.
const notFoundExit = 44

// Upload writes content to the absolute path p atomically, with mode and
// owner ("", "user" or "user:group"; "" leaves the file owned by root).
//
// The content goes through the stdin of one command (run as root, through
// sudo for other login users) that writes it into a new private directory
// (0700, from mktemp) beside p, creates the file no wider than its final
// mode and no wider than 0600 until it belongs to its owner, and renames it
// over p. So no other user can ever read it, not even for a moment, as they
// could when SFTP created the file with the session's umask and a chmod
// followed: OpenSSH's sftp-server honours no mode at creation from this
// SFTP client, and non-root users had to stage in world-readable /tmp.
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
	cmd, err := UploadCommand(p, mode, owner)
	if err != nil {
		return err
	}
	// The transfer takes as long as the content needs; ctx bounds it.
	_, err = c.Run(ctx, cmd, WithStdin(bytes.NewReader(content)), WithTimeout(0))
	// The command itself is in the log; its complaint is what matters here.
	var exit *ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("exit status %d: %s", exit.Code, exit.Stderr)
	}
	return err
}

// UploadCommand is the shell command Upload runs, with the content on its
// stdin, to install it at p. It is exported for tests of fake hosts.
func UploadCommand(p string, mode fs.FileMode, owner string) (string, error) {
	if !path.IsAbs(p) || strings.HasSuffix(p, "/") || path.Clean(p) != p {
		return "", errors.New("not a clean absolute file path")
	}
	user, group, ok := strings.Cut(owner, ":")
	if owner != "" && (user == "" || ok && group == "") {
		return "", fmt.Errorf("owner %q is not user or user:group", owner)
	}
	q := ShellQuote
	perm := mode.Perm()
	// Created with at most the owner's part of the final mode, and only
	// then given to its owner and opened up to perm.
	umask := 0o777 &^ (perm & 0o600)
	var b strings.Builder
	// The directory is made under the default umask (mktemp makes it
	// 0700), the file under the narrow one.
	fmt.Fprintf(&b, `d=$(mktemp -d %s) || exit 1; umask %04o; `, q(path.Dir(p)+"/.trafficlab-XXXXXXXXXXXXXXXX"), umask)
	b.WriteString(`{ cat > "$d/f"`)
	if owner != "" {
		b.WriteString(` && chown ` + q(owner) + ` "$d/f"`)
	}
	// chmod after chown, which clears set-id bits; mv -T never moves the
	// file into a directory that happens to be at p.
	fmt.Fprintf(&b, ` && chmod %04o "$d/f" && mv -fT "$d/f" %s; }; rc=$?; rm -rf "$d"; exit $rc`, perm, q(p))
	return b.String(), nil
}

func errOrOK(err error) any {
	if err == nil {
		return "ok"
	}
	return err
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

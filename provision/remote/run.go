package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// killGrace is how long a cancelled command gets to exit on SIGTERM before
// SIGKILL: sudo forwards TERM to the command, but KILL only kills sudo and
// leaves the command running as an orphan.
const killGrace = 500 * time.Millisecond

// stderrTailLines is how much of stderr an ExitError quotes.
const stderrTailLines = 20

// Result is what a command produced.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int // -1 if the command did not report one (cancelled, connection lost)
	Duration       time.Duration
}

// ExitError reports a command that exited with a non-zero status.
type ExitError struct {
	Host   string
	Cmd    string
	Code   int
	Stderr string // the last lines of stderr
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: %q: exit status %d", e.Host, shorten(e.Cmd), e.Code)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// RunOption changes how Run runs one command.
type RunOption func(*runOptions)

type runOptions struct {
	stdin        io.Reader
	timeout      time.Duration
	noSudo       bool
	secretStdout bool
	stdout       io.Writer
}

// WithStdin pipes r to the command's stdin. Secrets go here, never on the
// command line; stdin is never logged.
func WithStdin(r io.Reader) RunOption { return func(o *runOptions) { o.stdin = r } }

// WithTimeout overrides Config.CommandTimeout for one command; 0 = none.
func WithTimeout(d time.Duration) RunOption { return func(o *runOptions) { o.timeout = d } }

// WithoutSudo runs the command as the login user even when it is not root.
func WithoutSudo() RunOption { return func(o *runOptions) { o.noSudo = true } }

// WithSecretStdout keeps the command's stdout out of the log file, for
// commands that print secrets (reading back a file with passwords).
func WithSecretStdout() RunOption { return func(o *runOptions) { o.secretStdout = true } }

// WithStdout streams the command's stdout to w instead of keeping it in
// the Result, for output too large to hold or to log (a database dump):
// it never reaches the log file.
func WithStdout(w io.Writer) RunOption { return func(o *runOptions) { o.stdout = w } }

// Run runs cmd, a shell command line, on the host; as root through sudo when
// the login user is not root. A non-zero exit returns the Result and an
// *ExitError. When ctx ends or the timeout passes the remote command is
// killed and the error wraps ctx's error.
func (c *Client) Run(ctx context.Context, cmd string, opts ...RunOption) (Result, error) {
	o := runOptions{timeout: c.cfg.CommandTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	parent := ctx
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	sudo := !c.cfg.isRoot() && !o.noSudo
	start := time.Now()
	res, err := c.run(ctx, cmd, sudo, o)
	res.Duration = time.Since(start)
	if err != nil && ctx.Err() != nil && !IsExit(err) {
		res.ExitCode = -1
		if o.timeout > 0 && parent.Err() == nil {
			err = fmt.Errorf("%s: %q: timed out after %s: %w", c.cfg.Name, shorten(cmd), o.timeout, ctx.Err())
		} else {
			err = fmt.Errorf("%s: %q: cancelled: %w", c.cfg.Name, shorten(cmd), ctx.Err())
		}
	}
	c.log.record(cmd, sudo, res, o.secretStdout, err)
	slog.Debug("ssh: ran command", "host", c.cfg.Name, "cmd", cmd, "exit", res.ExitCode, "duration", res.Duration)
	return res, err
}

func (c *Client) run(ctx context.Context, cmd string, sudo bool, o runOptions) (Result, error) {
	res := Result{ExitCode: -1}
	sess, closeSession, err := c.openSession(ctx)
	if err != nil {
		return res, fmt.Errorf("%s: %q: open session: %w", c.cfg.Name, shorten(cmd), err)
	}
	defer closeSession()

	changed := make(chan struct{}, 1)
	stdout, stderr := &outBuffer{changed: changed}, &outBuffer{changed: changed}
	sess.Stdout, sess.Stderr = stdout, stderr
	line, withPassword := cmd, false
	if sudo {
		line, withPassword = c.sudoCommand(cmd)
	}
	if o.stdout != nil {
		stdout.sink = o.stdout
		if withPassword {
			stdout.keep = len(c.startedMarker()) + 1 // the marker line stays here
		}
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return res, fmt.Errorf("%s: %q: %w", c.cfg.Name, shorten(cmd), err)
	}
	if err := sess.Start(line); err != nil {
		return res, fmt.Errorf("%s: %q: start: %w", c.cfg.Name, shorten(cmd), err)
	}
	finished := make(chan struct{})
	defer close(finished)
	if withPassword {
		go c.feedSudo(stdin, o.stdin, stdout, stderr, changed, finished)
	} else {
		go feed(stdin, o.stdin)
	}

	waited := make(chan error, 1)
	go func() { waited <- sess.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		sess.Signal(ssh.SIGTERM)
		select {
		case <-waited:
		case <-time.After(killGrace):
			sess.Signal(ssh.SIGKILL)
			// Closing the channel is what makes sshd let go of the command.
			sess.Close()
			<-waited
		}
		res.Stdout, res.Stderr = c.cleanOutput(stdout.Bytes(), stderr.Bytes(), withPassword)
		return res, ctx.Err()
	}
	res.Stdout, res.Stderr = c.cleanOutput(stdout.Bytes(), stderr.Bytes(), withPassword)
	if err == nil && stdout.err != nil {
		return res, fmt.Errorf("%s: %q: writing its output: %w", c.cfg.Name, shorten(cmd), stdout.err)
	}

	var exit *ssh.ExitError
	switch {
	case err == nil:
		res.ExitCode = 0
		return res, nil
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
		e := &ExitError{Host: c.cfg.Name, Cmd: cmd, Code: res.ExitCode, Stderr: Tail(res.Stderr, stderrTailLines)}
		if withPassword && bytes.Count(stderr.Bytes(), []byte(c.promptMarker())) > 1 {
			e.Stderr = fmt.Sprintf("sudo rejected the password of user %s", c.cfg.User)
		}
		return res, e
	default:
		return res, fmt.Errorf("%s: %q: connection lost before the command finished: %w", c.cfg.Name, shorten(cmd), err)
	}
}

// IsExit reports whether err is (or wraps) a command's non-zero exit, as
// opposed to a failure to run it at all (no connection, a timeout).
func IsExit(err error) bool {
	var e *ExitError
	return errors.As(err, &e)
}

// feed copies the caller's stdin, if any, and then closes the command's.
func feed(w io.WriteCloser, r io.Reader) {
	if r != nil {
		io.Copy(w, r)
	}
	w.Close()
}

// sudoCommand wraps cmd to run as root. With a password, sudo prompts with
// a unique marker on stderr and the command first prints another marker on
// stdout: the password is written only after the prompt, and the caller's
// stdin only after the command started, so neither ever reaches the other.
func (c *Client) sudoCommand(cmd string) (line string, withPassword bool) {
	if c.cfg.SudoPassword == "" {
		return "sudo -n -- sh -c " + ShellQuote(cmd), false
	}
	return "sudo -S -p " + ShellQuote(c.promptMarker()) + " -- sh -c " +
		ShellQuote("echo "+c.startedMarker()+"; "+cmd), true
}

func (c *Client) promptMarker() string  { return "[trafficlab-sudo-" + c.sudoMarker + "]" }
func (c *Client) startedMarker() string { return "trafficlab-started-" + c.sudoMarker }

func (c *Client) feedSudo(stdin io.WriteCloser, r io.Reader, stdout, stderr *outBuffer, changed <-chan struct{}, finished <-chan struct{}) {
	prompt, started := []byte(c.promptMarker()), []byte(c.startedMarker()+"\n")
	sent := false
	for {
		select {
		case <-changed:
		case <-finished:
			stdin.Close()
			return
		}
		if bytes.HasPrefix(stdout.Bytes(), started) {
			feed(stdin, r)
			return
		}
		switch n := bytes.Count(stderr.Bytes(), prompt); {
		case n > 1: // wrong password: without more input sudo gives up
			stdin.Close()
			return
		case n == 1 && !sent:
			io.WriteString(stdin, c.cfg.SudoPassword+"\n")
			sent = true
		}
	}
}

// cleanOutput removes the sudo markers from the command's output.
func (c *Client) cleanOutput(stdout, stderr []byte, withPassword bool) ([]byte, []byte) {
	if !withPassword {
		return stdout, stderr
	}
	stdout = bytes.TrimPrefix(stdout, []byte(c.startedMarker()+"\n"))
	stderr = bytes.ReplaceAll(stderr, []byte(c.promptMarker()), nil)
	return stdout, stderr
}

// outBuffer collects output and signals each write on changed. With a
// sink, all but the first keep bytes go to the sink instead.
type outBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
	sink    io.Writer
	keep    int
	err     error // the sink's first error
}

func (b *outBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n := len(p)
	if b.sink != nil {
		k := min(len(p), max(b.keep-b.buf.Len(), 0))
		b.buf.Write(p[:k])
		if rest := p[k:]; len(rest) > 0 && b.err == nil {
			_, b.err = b.sink.Write(rest)
		}
	} else {
		b.buf.Write(p)
	}
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return n, nil
}

func (b *outBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// ShellQuote quotes s as one word for a POSIX shell.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, unsafeInShell) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func unsafeInShell(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	}
	return !strings.ContainsRune("@%+=:,./_-", r)
}

func newMarker() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Tail returns the last n lines of b, trimmed: the end of a command's
// output for an error.
func Tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\r\n\t "), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// shorten keeps long scripts from flooding error messages.
func shorten(cmd string) string {
	const max = 200
	if len(cmd) <= max {
		return cmd
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(cmd[cut]) {
		cut--
	}
	return cmd[:cut] + "…"
}

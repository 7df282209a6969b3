// Package run executes host commands for the lab: argument lists only (never
// a shell string), every command logged at debug level, and failures wrapped
// with the command line and the tail of its stderr so the caller's error says
// what failed where.
package run

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strings"
)

// Options tune one command.
type Options struct {
	Env    []string  // extra environment, appended to the current one
	Stdin  io.Reader // nil: no input
	Stdout io.Writer // nil: captured and returned
	Stderr io.Writer // nil: captured and included in the error
}

// Output runs name with args and returns its trimmed stdout.
func Output(ctx context.Context, name string, args ...string) (string, error) {
	return With(ctx, Options{}, name, args...)
}

// Quiet runs name with args and discards its stdout.
func Quiet(ctx context.Context, name string, args ...string) error {
	_, err := With(ctx, Options{}, name, args...)
	return err
}

// With runs name with args under opts and returns the trimmed stdout when it
// was captured.
func With(ctx context.Context, opts Options, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if len(opts.Env) > 0 {
		cmd.Env = append(cmd.Environ(), opts.Env...)
	}
	cmd.Stdin = opts.Stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	if opts.Stdout != nil {
		cmd.Stdout = opts.Stdout
	}
	cmd.Stderr = &stderr
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(opts.Stderr, &stderr)
	}
	slog.Debug("exec", "cmd", Line(name, args...))
	if err := cmd.Run(); err != nil {
		msg := tail(stderr.String(), 800)
		if msg == "" {
			msg = tail(stdout.String(), 400)
		}
		if msg != "" {
			return stdout.String(), fmt.Errorf("%s: %w: %s", Line(name, args...), err, msg)
		}
		return stdout.String(), fmt.Errorf("%s: %w", Line(name, args...), err)
	}
	return strings.TrimSpace(stdout.String()), nil
}

// ExitCode returns the exit status carried by err, or -1.
func ExitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// Line renders a command for messages; arguments with spaces are quoted.
func Line(name string, args ...string) string {
	parts := []string{name}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'") {
			a = fmt.Sprintf("%q", a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}

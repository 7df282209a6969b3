package sshtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ShellHandler runs each command with /bin/sh -c on this machine, in its own
// process group, which is killed when ctx ends.
func ShellHandler() ExecHandler {
	return func(ctx context.Context, s Session) int {
		cmd := exec.Command("/bin/sh", "-c", s.Command)
		cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// Output still held open by background children is given up on.
		cmd.WaitDelay = 2 * time.Second
		// Stdin through our own pipe: Wait must not wait for stdin the
		// command never reads.
		stdin, feed, err := os.Pipe()
		if err != nil {
			fmt.Fprintln(s.Stderr, err)
			return 127
		}
		cmd.Stdin = stdin
		err = cmd.Start()
		stdin.Close()
		if err != nil {
			feed.Close()
			fmt.Fprintln(s.Stderr, err)
			return 127
		}
		go func() {
			io.Copy(feed, s.Stdin)
			feed.Close()
		}()
		stop := context.AfterFunc(ctx, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
		defer stop()
		err = cmd.Wait()
		var exit *exec.ExitError
		switch {
		case err == nil || errors.Is(err, exec.ErrWaitDelay):
			return 0
		case errors.As(err, &exit):
			if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return exit.ExitCode()
		default:
			fmt.Fprintln(s.Stderr, err)
			return 1
		}
	}
}

// Sudo puts an emulation of sudo in front of next, for the command lines
// remote builds for non-root users: `sudo -n -- sh -c CMD` and
// `sudo -S -p PROMPT -- sh -c CMD`. With a password, -S prints PROMPT on
// stderr and reads the password from stdin like sudo does (three tries) and
// -n fails with "a password is required"; with "" both run at once
// (NOPASSWD). next sees CMD; a leading `echo WORD; ` (remote's marker that
// the command started) is answered here. Other commands reach next as they
// are.
func Sudo(password string, next ExecHandler) ExecHandler {
	return func(ctx context.Context, s Session) int {
		words, ok := splitWords(s.Command)
		if !ok || len(words) == 0 || words[0] != "sudo" {
			return next(ctx, s)
		}
		var stdinPassword bool
		var prompt string
		i := 1
		for ; i < len(words) && words[i] != "--"; i++ {
			switch words[i] {
			case "-n":
			case "-S":
				stdinPassword = true
			case "-p":
				i++
				if i < len(words) {
					prompt = words[i]
				}
			default:
				fmt.Fprintf(s.Stderr, "sshtest sudo: unsupported option %q\n", words[i])
				return 1
			}
		}
		rest := words[min(i+1, len(words)):]
		if len(rest) != 3 || rest[0] != "sh" || rest[1] != "-c" {
			fmt.Fprintf(s.Stderr, "sshtest sudo: expected -- sh -c CMD in %q\n", s.Command)
			return 1
		}
		if password != "" {
			if !stdinPassword {
				fmt.Fprintln(s.Stderr, "sudo: a password is required")
				return 1
			}
			if code := askPassword(s, prompt, password); code != 0 {
				return code
			}
		}
		inner := rest[2]
		if m := startMarker.FindStringSubmatch(inner); m != nil {
			fmt.Fprintln(s.Stdout, m[1])
			inner = inner[len(m[0]):]
		}
		s.Command = inner
		s.User = "root"
		return next(ctx, s)
	}
}

var startMarker = regexp.MustCompile(`^echo ([A-Za-z0-9_-]+); `)

func askPassword(s Session, prompt, password string) int {
	for range 3 {
		io.WriteString(s.Stderr, prompt)
		line, err := readLine(s.Stdin)
		if err != nil {
			fmt.Fprintln(s.Stderr, "sudo: no password was provided")
			return 1
		}
		if line == password {
			return 0
		}
		fmt.Fprintln(s.Stderr, "Sorry, try again.")
	}
	fmt.Fprintln(s.Stderr, "sudo: 3 incorrect password attempts")
	return 1
}

// readLine reads one byte at a time, like sudo, so the command gets
// everything after the password line.
func readLine(r io.Reader) (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		if buf[0] == '\n' {
			return b.String(), nil
		}
		b.WriteByte(buf[0])
	}
}

// splitWords splits a command line made of plain words, single-quoted
// strings and backslash escapes, which is what remote.ShellQuote produces.
func splitWords(line string) ([]string, bool) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch ch := line[i]; {
		case ch == ' ':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case ch == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, false
			}
			w.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case ch == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, true
}

// Reply is a scripted command's output and exit status.
type Reply struct {
	Stdout, Stderr string
	Exit           int
}

// Call is a command a Script received.
type Call struct {
	Command string
	Stdin   string
}

// Script answers commands with canned replies, for command sequences of
// systems that cannot run here (a RHEL host, say). The most recently added
// matching rule wins; unmatched commands get the Otherwise reply, by default
// exit status 0 and no output. The zero value is ready to use.
type Script struct {
	mu       sync.Mutex
	rules    []scriptRule
	fallback Reply
	calls    []Call
}

type scriptRule struct {
	match func(string) bool
	reply Reply
}

// On answers the exact command cmd with r.
func (s *Script) On(cmd string, r Reply) *Script {
	return s.add(func(c string) bool { return c == cmd }, r)
}

// OnPrefix answers commands starting with prefix with r.
func (s *Script) OnPrefix(prefix string, r Reply) *Script {
	return s.add(func(c string) bool { return strings.HasPrefix(c, prefix) }, r)
}

// OnRegexp answers commands matching the regular expression re with r.
func (s *Script) OnRegexp(re string, r Reply) *Script {
	rx := regexp.MustCompile(re)
	return s.add(rx.MatchString, r)
}

// Otherwise sets the reply to commands no rule matches.
func (s *Script) Otherwise(r Reply) *Script {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = r
	return s
}

func (s *Script) add(match func(string) bool, r Reply) *Script {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, scriptRule{match, r})
	return s
}

// Calls returns every command the script received, with its stdin, in order.
func (s *Script) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Commands returns the commands of Calls.
func (s *Script) Commands() []string {
	var cmds []string
	for _, c := range s.Calls() {
		cmds = append(cmds, c.Command)
	}
	return cmds
}

// Handler returns the ExecHandler that answers from the script.
func (s *Script) Handler() ExecHandler {
	return func(ctx context.Context, sess Session) int {
		stdin, _ := io.ReadAll(sess.Stdin)
		s.mu.Lock()
		s.calls = append(s.calls, Call{Command: sess.Command, Stdin: string(stdin)})
		r := s.fallback
		for i := len(s.rules) - 1; i >= 0; i-- {
			if s.rules[i].match(sess.Command) {
				r = s.rules[i].reply
				break
			}
		}
		s.mu.Unlock()
		io.WriteString(sess.Stdout, r.Stdout)
		io.WriteString(sess.Stderr, r.Stderr)
		return r.Exit
	}
}

package remote

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// commandLog appends every command of one host to LogDir/<name>.log, so a
// failed run can be diagnosed after the fact. A nil *commandLog logs nothing.
type commandLog struct {
	mu     sync.Mutex
	path   string
	warned bool
}

func newCommandLog(dir, name string) *commandLog {
	if dir == "" {
		return nil
	}
	return &commandLog{path: filepath.Join(dir, logFileName(name)+".log")}
}

// logFileName keeps a host name from escaping the log directory.
func logFileName(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, strings.TrimLeft(name, "."))
}

func (l *commandLog) record(cmd string, sudo bool, res Result, secretStdout bool, err error) {
	if l == nil {
		return
	}
	var b strings.Builder
	as := ""
	if sudo {
		as = " (as root through sudo)"
	}
	fmt.Fprintf(&b, "==== %s $ %s%s\n", time.Now().UTC().Format(time.RFC3339), cmd, as)
	stdout := string(res.Stdout)
	if secretStdout {
		stdout = fmt.Sprintf("[%d bytes not logged: secret]", len(res.Stdout))
	}
	section(&b, "stdout", stdout)
	section(&b, "stderr", string(res.Stderr))
	fmt.Fprintf(&b, "---- exit %d after %s\n", res.ExitCode, res.Duration.Round(time.Millisecond))
	if err != nil && !IsExit(err) {
		fmt.Fprintf(&b, "---- error: %v\n", err)
	}
	l.write(b.String())
}

// note logs an operation that is not a command, such as an upload.
func (l *commandLog) note(format string, args ...any) {
	if l == nil {
		return
	}
	l.write(fmt.Sprintf("==== %s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...)))
}

func section(b *strings.Builder, name, text string) {
	if text == "" {
		return
	}
	fmt.Fprintf(b, "---- %s\n%s", name, text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteString("\n")
	}
}

// write appends one whole entry at a time so concurrent commands do not
// interleave. Logging must never fail a command: errors are only warned
// about, once.
func (l *commandLog) write(entry string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	err := os.MkdirAll(filepath.Dir(l.path), 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
			_, err = f.WriteString(entry)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	}
	if err != nil && !l.warned {
		l.warned = true
		slog.Warn("ssh: cannot write the command log", "file", l.path, "err", err)
	}
}

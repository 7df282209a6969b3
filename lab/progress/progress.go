// Package progress prints the lab's user-facing progress lines, each stamped
// with the time since the command started: "[ 12.3s] kafka-1 sshd reachable".
package progress

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// Printer writes progress lines; it is safe for concurrent use because
// machines are brought up in parallel.
type Printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

// New returns a Printer whose clock starts now.
func New(w io.Writer) *Printer { return &Printer{w: w, start: time.Now()} }

// Elapsed is the time since the Printer was created.
func (p *Printer) Elapsed() time.Duration { return time.Since(p.start) }

// Printf prints one line, prefixed with the elapsed time.
func (p *Printer) Printf(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%5.1fs] %s\n", p.Elapsed().Seconds(), fmt.Sprintf(format, args...))
}

package engine

import (
	"context"
	"sync"
)

// hostGate lets at most n hosts be worked on at once (--concurrency); the
// resources of a host already being worked on go ahead. A nil gate, or
// n = 0, bounds nothing.
type hostGate struct {
	n       int
	mu      sync.Mutex
	active  map[string]int
	changed chan struct{} // closed and replaced whenever a host leaves
}

func newHostGate(n int) *hostGate {
	if n <= 0 {
		return nil
	}
	return &hostGate{n: n, active: map[string]int{}, changed: make(chan struct{})}
}

// enter waits for host's turn; leave ends it.
func (g *hostGate) enter(ctx context.Context, host string) (leave func(), err error) {
	if g == nil {
		return func() {}, nil
	}
	for {
		g.mu.Lock()
		if g.active[host] > 0 || len(g.active) < g.n {
			g.active[host]++
			g.mu.Unlock()
			return func() { g.leave(host) }, nil
		}
		ch := g.changed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (g *hostGate) leave(host string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.active[host]--; g.active[host] == 0 {
		delete(g.active, host)
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Pool hands out one Client per host name, connected on first use and
// shared by every caller. Hosts behind the same bastion share the bastion's
// connection too. Clients from a Pool are closed by Pool.Close, not by
// their users.
type Pool struct {
	configs map[string]Config
	mu      sync.Mutex
	entries map[string]*poolEntry
	order   []*poolEntry // connected clients, oldest first
	closed  bool
}

type poolEntry struct {
	ready  chan struct{} // closed when the connect attempt ended
	client *Client
	err    error
}

// NewPool returns a pool for the hosts in configs, keyed by host name. A
// config without a Name gets its key.
func NewPool(configs map[string]Config) *Pool {
	p := &Pool{configs: make(map[string]Config, len(configs)), entries: map[string]*poolEntry{}}
	for name, cfg := range configs {
		if cfg.Name == "" {
			cfg.Name = name
		}
		p.configs[name] = cfg
	}
	return p
}

// Get returns the client of host name, connecting it if needed. Concurrent
// callers wait for the same connection; a failed connect is tried again by
// the next Get.
func (p *Pool) Get(ctx context.Context, name string) (*Client, error) {
	cfg, ok := p.configs[name]
	if !ok {
		return nil, fmt.Errorf("%s: not in the ssh pool", name)
	}
	return p.get(ctx, cfg)
}

func (p *Pool) get(ctx context.Context, cfg Config) (*Client, error) {
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		e, found := p.entries[cfg.Name]
		if !found {
			e = &poolEntry{ready: make(chan struct{})}
			p.entries[cfg.Name] = e
		}
		p.mu.Unlock()

		if !found {
			e.client, e.err = p.connect(ctx, cfg)
			p.mu.Lock()
			if e.err != nil {
				delete(p.entries, cfg.Name)
			} else if p.closed {
				e.client.Close()
				e.client, e.err = nil, ErrClosed
			} else {
				p.order = append(p.order, e)
			}
			p.mu.Unlock()
			close(e.ready)
			return e.client, e.err
		}
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// The connecting caller gave up (its ctx ended): try ourselves.
		if e.err != nil && (errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded)) && ctx.Err() == nil {
			continue
		}
		return e.client, e.err
	}
}

func (p *Pool) connect(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Bastion == nil {
		return Connect(ctx, cfg)
	}
	// A bastion that is also an inventory host uses that host's config.
	bcfg, ok := p.configs[cfg.Bastion.Name]
	if !ok || cfg.Bastion.Name == "" {
		bcfg = *cfg.Bastion
		if bcfg.Name == "" {
			bcfg.Name = bcfg.Address
		}
	}
	bastion, err := p.get(ctx, bcfg)
	if err != nil {
		return nil, fmt.Errorf("%s: through bastion: %w", cfg.Name, err)
	}
	return connect(ctx, cfg, bastion)
}

// Close closes every client, those behind bastions before the bastions.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	order := p.order
	p.order, p.entries = nil, map[string]*poolEntry{}
	p.mu.Unlock()
	var errs []error
	for i := len(order) - 1; i >= 0; i-- {
		errs = append(errs, order[i].client.Close())
	}
	return errors.Join(errs...)
}

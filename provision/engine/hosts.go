package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
)

// hosts hands out one connection per host, shared by every resource of the
// run, with the host's facts detected once. Callers asking while a connect
// is under way wait for it (as long as their context allows); a failed
// connect is not remembered, so the next caller tries again.
type hosts struct {
	inv    *inventory.Inventory
	config func(inventory.Host) remote.Config
	logDir string

	mu      sync.Mutex
	pool    *remote.Pool
	extra   []*remote.Pool // hosts no longer in the inventory (being deleted)
	entries map[string]*hostEntry
	locks   map[string]*sync.Mutex
}

type hostEntry struct {
	ready  chan struct{}
	client *remote.Client
	os     facts.OS
	// iface is the interface carrying the host's address; ifaceErr says
	// why it is unknown. Only the roles that need it fail without it.
	iface    string
	ifaceErr error
	err      error
}

func newHosts(inv *inventory.Inventory, config func(inventory.Host) remote.Config, logDir string) *hosts {
	h := &hosts{inv: inv, config: config, logDir: logDir, entries: map[string]*hostEntry{}, locks: map[string]*sync.Mutex{}}
	cfgs := map[string]remote.Config{}
	for _, host := range inv.Hosts {
		cfgs[host.Name] = h.sshConfig(host)
	}
	h.pool = remote.NewPool(cfgs)
	return h
}

func (h *hosts) sshConfig(host inventory.Host) remote.Config {
	cfg := h.config(host)
	cfg.Name = host.Name // the per-host log is named after it
	cfg.LogDir = h.logDir
	return cfg
}

// inventoryHost returns the inventory's host of that name, or for a host
// no longer in the inventory (its resources are being deleted) one built
// from what the state remembers.
func (h *hosts) inventoryHost(name, address string) (inventory.Host, bool) {
	for _, host := range h.inv.Hosts {
		if host.Name == name {
			return host, true
		}
	}
	return inventory.Host{Name: name, Address: address, SSH: inventory.HostSSH{User: h.inv.SSH.User, Port: h.inv.SSH.Port}}, false
}

// get connects to host name (once per run) and detects its facts.
func (h *hosts) get(ctx context.Context, name, address string) (*hostEntry, error) {
	h.mu.Lock()
	e, ok := h.entries[name]
	if !ok {
		e = &hostEntry{ready: make(chan struct{})}
		h.entries[name] = e
	}
	h.mu.Unlock()
	if ok {
		select {
		case <-e.ready:
			return e, e.err
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: not answering yet: %w", name, ctx.Err())
		}
	}
	defer close(e.ready)
	e.client, e.err = h.connect(ctx, name, address)
	if e.err == nil {
		e.os, e.err = facts.Detect(ctx, e.client)
		if e.err != nil {
			e.err = fmt.Errorf("%s: %w", name, e.err)
		} else {
			e.iface, e.ifaceErr = facts.InterfaceOf(ctx, e.client, address)
		}
	}
	if e.err != nil {
		h.mu.Lock()
		if h.entries[name] == e {
			delete(h.entries, name)
		}
		h.mu.Unlock()
	}
	return e, e.err
}

// Client is the connection of host name, for the cluster's dialer.
func (h *hosts) Client(ctx context.Context, name string) (*remote.Client, error) {
	host, _ := h.inventoryHost(name, "")
	e, err := h.get(ctx, name, host.Address)
	if err != nil {
		return nil, err
	}
	return e.client, nil
}

func (h *hosts) connect(ctx context.Context, name, address string) (*remote.Client, error) {
	host, known := h.inventoryHost(name, address)
	if known {
		return h.pool.Get(ctx, name)
	}
	p := remote.NewPool(map[string]remote.Config{name: h.sshConfig(host)})
	h.mu.Lock()
	h.extra = append(h.extra, p)
	h.mu.Unlock()
	return p.Get(ctx, name)
}

// lock serialises the changes on one host: two roles installing packages
// at once would fight over the package manager's lock.
func (h *hosts) lock(name string) func() {
	h.mu.Lock()
	l, ok := h.locks[name]
	if !ok {
		l = &sync.Mutex{}
		h.locks[name] = l
	}
	h.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (h *hosts) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	err := h.pool.Close()
	for _, p := range h.extra {
		p.Close()
	}
	return err
}

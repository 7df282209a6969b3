// Package cluster reaches a provisioned cluster from the control machine,
// outside any Pulumi operation: one SSH connection per host (for status,
// drills and verify), and a dialer that reaches a service on a host by the
// name or address the cluster itself uses, tunnelled through that host's
// SSH connection (DESIGN.md section 5). Brokers advertise host names the
// control machine may not resolve, and behind a bastion they are not
// routable at all; through the tunnel both work.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
)

// DialFunc opens a connection like net.Dialer.DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Connector hands out the SSH connection of a host of the inventory, by
// name. The engine's per-run connections and a Cluster both are one.
type Connector interface {
	Client(ctx context.Context, host string) (*remote.Client, error)
}

// Cluster is the control machine's access to the hosts of an inventory.
type Cluster struct {
	Inventory *inventory.Inventory
	pool      *remote.Pool
}

// Open prepares connections to every host of inv; each connects on first
// use. logDir, when set, gets each host's command log.
func Open(inv *inventory.Inventory, logDir string) *Cluster {
	cfgs := map[string]remote.Config{}
	for _, h := range inv.Hosts {
		cfg := SSHConfig(inv, h)
		cfg.LogDir = logDir
		cfgs[h.Name] = cfg
	}
	return &Cluster{Inventory: inv, pool: remote.NewPool(cfgs)}
}

// Client returns host's connection.
func (c *Cluster) Client(ctx context.Context, host string) (*remote.Client, error) {
	return c.pool.Get(ctx, host)
}

// Run runs cmd on host and returns its standard output.
func (c *Cluster) Run(ctx context.Context, host, cmd string, opts ...remote.RunOption) (string, error) {
	cl, err := c.Client(ctx, host)
	if err != nil {
		return "", err
	}
	res, err := cl.Run(ctx, cmd, opts...)
	return string(res.Stdout), err
}

// Dial reaches a service of the cluster; see Dialer.
func (c *Cluster) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return Dialer(c.Inventory, c)(ctx, network, addr)
}

// DialOn connects from host itself to addr (its loopback services, such
// as the consumer's metrics on 127.0.0.1), through host's connection.
func (c *Cluster) DialOn(ctx context.Context, host, addr string) (net.Conn, error) {
	return DialOn(ctx, c, host, addr)
}

// DialOn connects from host to addr through host's connection.
func DialOn(ctx context.Context, conn Connector, host, addr string) (net.Conn, error) {
	cl, err := conn.Client(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s on %s: %w", addr, host, err)
	}
	return cl.DialContext(ctx, "tcp", addr)
}

// Close closes every connection.
func (c *Cluster) Close() error { return c.pool.Close() }

// Dialer returns a dialer for addresses of the cluster's hosts, "name:port"
// or "address:port": it connects from the host itself (through its SSH
// connection) to the host's inventory address. An address of no host of
// the inventory (the VIP, say) is dialled through the first host's
// connection, so it works from wherever the cluster's own hosts can reach
// it.
func Dialer(inv *inventory.Inventory, conn Connector) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		via, target, ok := Resolve(inv, host)
		if !ok {
			if len(inv.Hosts) == 0 {
				return nil, fmt.Errorf("dial %s: no hosts in the inventory to reach it through", addr)
			}
			via, target = inv.Hosts[0].Name, host
		}
		cl, err := conn.Client(ctx, via)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", addr, err)
		}
		// The far end is always TCP: SSH forwards nothing else.
		return cl.DialContext(ctx, "tcp", net.JoinHostPort(target, port))
	}
}

// Resolve maps a host name (short or with a domain) or an address of the
// inventory to the host to go through and the address to connect to there.
func Resolve(inv *inventory.Inventory, host string) (via, address string, ok bool) {
	for _, h := range inv.Hosts {
		if strings.EqualFold(h.Name, host) || h.Address == host {
			return h.Name, h.Address, true
		}
	}
	if short, _, found := strings.Cut(host, "."); found {
		for _, h := range inv.Hosts {
			if strings.EqualFold(h.Name, short) {
				return h.Name, h.Address, true
			}
		}
	}
	return "", "", false
}

// ErrNoHost is returned for a host name the inventory does not have.
var ErrNoHost = errors.New("no such host in the inventory")

// Host returns the inventory's host called name.
func Host(inv *inventory.Inventory, name string) (inventory.Host, error) {
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h, nil
		}
	}
	return inventory.Host{}, fmt.Errorf("%s: %w", name, ErrNoHost)
}

// SSHConfig is how provision reaches host h of inv.
func SSHConfig(inv *inventory.Inventory, h inventory.Host) remote.Config {
	cfg := remote.Config{
		Name:          h.Name,
		Address:       h.Address,
		Port:          h.SSH.Port,
		User:          h.SSH.User,
		KnownHosts:    inv.SSH.KnownHosts,
		HostKeyPolicy: remote.AcceptNew,
		RetryFor:      inv.SSH.ConnectTimeout,
		SudoPassword:  inv.SSH.SudoPassword.Value(),
	}
	if cfg.Port == 0 {
		cfg.Port = inv.SSH.Port
	}
	if cfg.User == "" {
		cfg.User = inv.SSH.User
	}
	if inv.SSH.HostKeyCheck == inventory.HostKeyStrict {
		cfg.HostKeyPolicy = remote.Strict
	}
	cfg.KeyFiles, cfg.UseAgent = keyFiles(inv.SSH.Key)
	if user, hostport := inv.SSH.BastionAddress(); hostport != "" {
		host, port, _ := net.SplitHostPort(hostport)
		p, _ := strconv.Atoi(port)
		b := cfg
		b.Name, b.Address, b.Port, b.Bastion = "bastion "+host, host, p, nil
		if user != "" { // [user@]host: without one, the hosts' user
			b.User = user
		}
		cfg.Bastion = &b
	}
	return cfg
}

// keyFiles returns the key to offer: the inventory's, or else the agent
// and whichever of the usual ~/.ssh keys exist, as ssh(1) would.
func keyFiles(key string) ([]string, bool) {
	if key != "" {
		return []string{key}, false
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, true
	}
	var keys []string
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		p := filepath.Join(home, ".ssh", name)
		if _, err := os.Stat(p); err == nil {
			keys = append(keys, p)
		}
	}
	return keys, true
}

package base

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

// rules is what the firewall of one host must let in: plain ports, and
// rich rules for what only some peers may reach.
type rules struct {
	ports   []string // "80/tcp"
	limited []string // ports open to some hosts only, for the step's name
	rich    []string // in firewalld's own normalized spelling, so listings compare equal
}

// clientsOf names the roles of the hosts that connect to listener l, for
// the ports that are only for the cluster's own hosts; ok is false for
// ports open to everyone (ssh, the web, the load balancer, the dashboard).
// The control machine reaches these through SSH tunnels from a host of
// the cluster, which firewalld lets in over the loopback interface.
func clientsOf(l inventory.Listener) (roles []inventory.Role, ok bool) {
	switch inventory.Role(l.Role) {
	case inventory.RoleMySQL:
		return []inventory.Role{inventory.RoleConsumer, inventory.RoleDashboard}, true
	case inventory.RoleZooKeeper:
		if l.Port == inventory.ZooKeeperClientPort {
			// Brokers are ZooKeeper's clients; the servers ask each other
			// too (the four-letter words of the quorum checks).
			return []inventory.Role{inventory.RoleZooKeeper, inventory.RoleKafka}, true
		}
		// 2888 and 3888: the ensemble's own traffic.
		return []inventory.Role{inventory.RoleZooKeeper}, true
	case inventory.RoleKafka:
		if l.Port == inventory.KafkaControllerPort || l.Port == inventory.KafkaInternalPort {
			// Every broker is also a controller (process.roles
			// broker,controller), and all of them talk to the quorum;
			// the internal listener is the brokers' alone.
			return []inventory.Role{inventory.RoleKafka}, true
		}
		return []inventory.Role{inventory.RoleKafka, inventory.RoleFilebeat, inventory.RoleConsumer}, true
	}
	return nil, false
}

// wanted derives the host's rules from its roles: the public listeners
// open to all, the cluster's internal ones (ZooKeeper, Kafka, MySQL) only
// from the hosts whose roles connect to them, VRRP only between LB hosts.
func wanted(inv *inventory.Inventory, h inventory.Host) rules {
	var r rules
	for _, l := range inv.Listeners(h) {
		port := strconv.Itoa(l.Port)
		roles, limited := clientsOf(l)
		if !limited {
			r.ports = append(r.ports, port+"/tcp")
			continue
		}
		r.limited = append(r.limited, port+"/tcp")
		for _, peer := range inv.Hosts {
			if slices.ContainsFunc(roles, peer.Has) {
				r.rich = append(r.rich, fmt.Sprintf(`rule family="%s" source address="%s" port port="%s" protocol="tcp" accept`, family(peer.Address), peer.Address, port))
			}
		}
	}
	if h.Has(inventory.RoleLB) {
		for _, peer := range inv.HostsWith(inventory.RoleLB) {
			if peer.Name != h.Name {
				r.rich = append(r.rich, fmt.Sprintf(`rule family="%s" source address="%s" protocol value="vrrp" accept`, family(peer.Address), peer.Address))
			}
		}
	}
	// By number, as people read port lists.
	byNumber := func(a, b string) int { return portNumber(a) - portNumber(b) }
	slices.SortFunc(r.ports, byNumber)
	r.ports = slices.Compact(r.ports)
	slices.SortFunc(r.limited, byNumber)
	r.limited = slices.Compact(r.limited)
	slices.Sort(r.rich)
	r.rich = slices.Compact(r.rich)
	return r
}

// name describes the rules for a step's name: "22/tcp 80/tcp, 2181/tcp
// 9092/tcp from cluster hosts".
func (r rules) name() string {
	s := strings.Join(r.ports, " ")
	if len(r.limited) > 0 {
		s += ", " + strings.Join(r.limited, " ") + " from cluster hosts"
	}
	return s
}

func portNumber(p string) int {
	n, _ := strconv.Atoi(strings.TrimSuffix(p, "/tcp"))
	return n
}

func family(addr string) string {
	if a, err := netip.ParseAddr(addr); err == nil && a.Is6() {
		return "ipv6"
	}
	return "ipv4"
}

func firewallSteps(c *role.Context) []step.Step {
	switch c.Inventory.Cluster.Firewall {
	case inventory.FirewallManaged:
		return []step.Step{step.Service("firewalld", step.Running), firewallOpen(wanted(c.Inventory, c.Host))}
	case inventory.FirewallDisabled:
		return []step.Step{step.Service("firewalld", step.Stopped)}
	}
	return nil // unmanaged: the firewall is the user's
}

// listing is the firewall as it is: permanent and runtime, which differ
// when someone changed one by hand.
type listing struct {
	permPorts, runPorts, permRich, runRich []string
}

const sep = "--trafficlab--"

// list reads the default zone at runtime and permanently: two calls of
// `--list-all`, since every firewall-cmd call starts a Python interpreter
// and this check runs on every host in every `up`.
func list(ctx context.Context, h step.Host) (listing, error) {
	res, err := h.Run(ctx, "firewall-cmd --list-all && echo "+sep+" && firewall-cmd --permanent --list-all")
	if err != nil {
		return listing{}, err
	}
	run, perm, ok := strings.Cut(string(res.Stdout), sep+"\n")
	if !ok {
		return listing{}, fmt.Errorf("unexpected firewall-cmd output %q", res.Stdout)
	}
	runPorts, runRich := parseListAll(run)
	permPorts, permRich := parseListAll(perm)
	return listing{permPorts: permPorts, runPorts: runPorts, permRich: permRich, runRich: runRich}, nil
}

// parseListAll reads the ports and rich rules out of `firewall-cmd
// --list-all`: a "  ports: a b" line, and one rule per line after
// "  rich rules:", each indented with a tab.
func parseListAll(out string) (ports, rich []string) {
	inRich := false
	for _, line := range strings.Split(out, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case inRich && strings.HasPrefix(line, "\t"):
			if trimmed != "" {
				rich = append(rich, trimmed)
			}
		case strings.HasPrefix(trimmed, "ports:"): // not forward-ports: or source-ports:
			ports = strings.Fields(strings.TrimPrefix(trimmed, "ports:"))
			inRich = false
		default:
			inRich = trimmed == "rich rules:"
		}
	}
	return ports, rich
}

// diff returns the firewall-cmd arguments that turn have into want:
// additions, then removals.
func diff(have, want []string, add, remove string) (adds, removes []string) {
	for _, w := range want {
		if !slices.Contains(have, w) {
			adds = append(adds, add+"="+remote.ShellQuote(w))
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			removes = append(removes, remove+"="+remote.ShellQuote(h))
		}
	}
	return adds, removes
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(x string) bool { return !slices.Contains(b, x) })
}

// permanent joins one firewall-cmd call per kind of change (firewall-cmd
// refuses to mix ports with rich rules, or adding with removing, in one
// call) and a reload that makes them the runtime rules too.
func permanent(groups ...[]string) string {
	var calls []string
	for _, g := range groups {
		if len(g) > 0 {
			calls = append(calls, "firewall-cmd --permanent "+strings.Join(g, " "))
		}
	}
	if len(calls) == 0 {
		return ""
	}
	return strings.Join(append(calls, "firewall-cmd --reload"), " && ")
}

// firewallOpen makes the default zone hold exactly the wanted ports and
// rich rules, permanently and at runtime; other ports are closed, since the
// inventory is the whole desired state. Services (ssh) are left alone.
func firewallOpen(want rules) step.Step {
	plan := func(ctx context.Context, t *step.Target) (string, error) {
		l, err := list(ctx, t.Host)
		if err != nil {
			return "", err
		}
		addPorts, removePorts := diff(l.permPorts, want.ports, "--add-port", "--remove-port")
		addRich, removeRich := diff(l.permRich, want.rich, "--add-rich-rule", "--remove-rich-rule")
		if cmd := permanent(addPorts, removePorts, addRich, removeRich); cmd != "" {
			return cmd, nil
		}
		// Permanent rules as wanted but runtime ones not: a hand edit
		// without --permanent, undone by loading the permanent ones.
		if !sameSet(l.runPorts, want.ports) || !sameSet(l.runRich, want.rich) {
			return "firewall-cmd --reload", nil
		}
		return "", nil
	}
	return step.Planned("firewall ports "+want.name(), plan)
}

// firewallClose removes the rules firewallOpen added, for destroy; a host
// without a running firewalld has none to remove. The SSH port stays open:
// closing it would lock the next `provision up` out.
func firewallClose(c *role.Context) step.Step {
	want := wanted(c.Inventory, c.Host)
	ssh := strconv.Itoa(c.Host.SSH.Port) + "/tcp"
	var ports []string
	for _, p := range want.ports {
		if p != ssh {
			ports = append(ports, p)
		}
	}
	plan := func(ctx context.Context, t *step.Target) (string, error) {
		if _, err := t.Host.Run(ctx, "firewall-cmd --state"); err != nil {
			var exit *remote.ExitError
			if errors.As(err, &exit) {
				return "", nil
			}
			return "", err
		}
		l, err := list(ctx, t.Host)
		if err != nil {
			return "", err
		}
		var removePorts, removeRich []string
		for _, p := range ports {
			if slices.Contains(l.permPorts, p) {
				removePorts = append(removePorts, "--remove-port="+remote.ShellQuote(p))
			}
		}
		for _, r := range want.rich {
			if slices.Contains(l.permRich, r) {
				removeRich = append(removeRich, "--remove-rich-rule="+remote.ShellQuote(r))
			}
		}
		return permanent(removePorts, removeRich), nil
	}
	return step.Planned("close firewall ports "+strings.Join(ports, " "), plan)
}

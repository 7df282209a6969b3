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
	ports []string // "2181/tcp"
	rich  []string // in firewalld's own normalized spelling, so listings compare equal
}

// wanted derives the host's rules from its roles: every listener, MySQL
// only from the consumer and dashboard hosts, VRRP only between LB hosts.
func wanted(inv *inventory.Inventory, h inventory.Host) rules {
	var r rules
	for _, l := range inv.Listeners(h) {
		if l.Role == string(inventory.RoleMySQL) {
			continue
		}
		r.ports = append(r.ports, strconv.Itoa(l.Port)+"/tcp")
	}
	if h.Has(inventory.RoleMySQL) {
		for _, peer := range inv.Hosts {
			if peer.Has(inventory.RoleConsumer) || peer.Has(inventory.RoleDashboard) {
				r.rich = append(r.rich, fmt.Sprintf(`rule family="%s" source address="%s" port port="3306" protocol="tcp" accept`, family(peer.Address), peer.Address))
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
	slices.SortFunc(r.ports, func(a, b string) int { return portNumber(a) - portNumber(b) })
	r.ports = slices.Compact(r.ports)
	slices.Sort(r.rich)
	r.rich = slices.Compact(r.rich)
	return r
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

func list(ctx context.Context, h step.Host) (listing, error) {
	res, err := h.Run(ctx, "firewall-cmd --permanent --list-ports && echo "+sep+
		" && firewall-cmd --list-ports && echo "+sep+
		" && firewall-cmd --permanent --list-rich-rules && echo "+sep+
		" && firewall-cmd --list-rich-rules")
	if err != nil {
		return listing{}, err
	}
	parts := strings.Split(string(res.Stdout), sep+"\n")
	if len(parts) != 4 {
		return listing{}, fmt.Errorf("unexpected firewall-cmd output %q", res.Stdout)
	}
	lines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	return listing{strings.Fields(parts[0]), strings.Fields(parts[1]), lines(parts[2]), lines(parts[3])}, nil
}

// diff returns the firewall-cmd arguments that turn have into want.
func diff(have, want []string, add, remove string) []string {
	var args []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			args = append(args, add+"="+remote.ShellQuote(w))
		}
	}
	for _, h := range have {
		if !slices.Contains(want, h) {
			args = append(args, remove+"="+remote.ShellQuote(h))
		}
	}
	return args
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
		args := append(diff(l.permPorts, want.ports, "--add-port", "--remove-port"),
			diff(l.permRich, want.rich, "--add-rich-rule", "--remove-rich-rule")...)
		runtimeDrift := len(diff(l.runPorts, want.ports, "+", "-"))+len(diff(l.runRich, want.rich, "+", "-")) > 0
		switch {
		case len(args) > 0:
			return "firewall-cmd --permanent " + strings.Join(args, " ") + " && firewall-cmd --reload", nil
		case runtimeDrift:
			return "firewall-cmd --reload", nil
		}
		return "", nil
	}
	return step.Planned("firewall ports "+strings.Join(want.ports, " "), plan)
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
		var args []string
		for _, p := range ports {
			if slices.Contains(l.permPorts, p) {
				args = append(args, "--remove-port="+remote.ShellQuote(p))
			}
		}
		for _, r := range want.rich {
			if slices.Contains(l.permRich, r) {
				args = append(args, "--remove-rich-rule="+remote.ShellQuote(r))
			}
		}
		if len(args) == 0 {
			return "", nil
		}
		return "firewall-cmd --permanent " + strings.Join(args, " ") + " && firewall-cmd --reload", nil
	}
	return step.Planned("close firewall ports "+strings.Join(ports, " "), plan)
}

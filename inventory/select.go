package inventory

import (
	"fmt"
	"slices"
	"strings"
)

// Select returns the hosts a limit names, in inventory order: a
// comma-separated list of host names and role names, a role standing for
// every host that carries it (as an Ansible group does). "" selects every
// host.
func (inv *Inventory) Select(limit string) ([]Host, error) {
	if strings.TrimSpace(limit) == "" {
		return inv.Hosts, nil
	}
	want := map[string]bool{}
	for _, tok := range strings.Split(limit, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return nil, fmt.Errorf("--limit %q: an empty name between commas", limit)
		}
		if slices.ContainsFunc(inv.Hosts, func(h Host) bool { return h.Name == tok }) {
			want[tok] = true
			continue
		}
		if slices.Contains(Roles, Role(tok)) {
			hosts := inv.HostsWith(Role(tok))
			if len(hosts) == 0 {
				return nil, fmt.Errorf("--limit %s: no host of %s has the %s role", tok, inv.File, tok)
			}
			for _, h := range hosts {
				want[h.Name] = true
			}
			continue
		}
		var names []string
		for _, h := range inv.Hosts {
			names = append(names, h.Name)
		}
		msg := fmt.Sprintf("--limit %s: %s has no such host or role (hosts: %s; roles: %s)", tok, inv.File, strings.Join(names, ", "), roleList())
		if s := suggest(tok, append(names, roleNames()...)); s != "" {
			msg += "; did you mean " + s + "?"
		}
		return nil, fmt.Errorf("%s", msg)
	}
	var out []Host
	for _, h := range inv.Hosts {
		if want[h.Name] {
			out = append(out, h)
		}
	}
	return out, nil
}

func roleNames() []string {
	var out []string
	for _, r := range Roles {
		out = append(out, string(r))
	}
	return out
}

func roleList() string { return strings.Join(roleNames(), ", ") }

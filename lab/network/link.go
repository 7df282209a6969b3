package network

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/trafficlab/trafficlab/lab/run"
)

// NetnsDir is where iproute2 keeps named network namespaces.
const NetnsDir = "/run/netns"

// Link is the part of `ip -j link` the lab reads.
type Link struct {
	Name   string   `json:"ifname"`
	Master string   `json:"master"`
	Flags  []string `json:"flags"`
	State  string   `json:"operstate"`
}

// Up reports whether the link is administratively up.
func (l Link) Up() bool {
	for _, f := range l.Flags {
		if f == "UP" {
			return true
		}
	}
	return false
}

func links(ctx context.Context, netns string) (map[string]Link, error) {
	args := []string{"-j", "link", "show"}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	out, err := run.Output(ctx, "ip", args...)
	if err != nil {
		return nil, err
	}
	var ls []Link
	if err := json.Unmarshal([]byte(out), &ls); err != nil {
		return nil, fmt.Errorf("parse ip -j link: %w", err)
	}
	m := map[string]Link{}
	for _, l := range ls {
		m[l.Name] = l
	}
	return m, nil
}

// LabLinks lists the host's links whose name carries the lab prefix.
func LabLinks(ctx context.Context) ([]Link, error) {
	all, err := links(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	var out []Link
	for name, l := range all {
		if strings.HasPrefix(name, Prefix) {
			out = append(out, l)
		}
	}
	return out, nil
}

// HostLink returns the state of a machine's host-side veth, if it exists.
func HostLink(ctx context.Context, machine string) (Link, bool, error) {
	host, _ := Links(machine)
	all, err := links(ctx, "")
	if err != nil {
		return Link{}, false, fmt.Errorf("list links: %w", err)
	}
	l, ok := all[host]
	return l, ok, nil
}

func addrs(ctx context.Context, netns, dev string) ([]netip.Prefix, error) {
	args := []string{"-j", "-4", "addr", "show", "dev", dev}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	out, err := run.Output(ctx, "ip", args...)
	if err != nil {
		return nil, err
	}
	var ifs []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &ifs); err != nil {
		return nil, fmt.Errorf("parse ip -j addr: %w", err)
	}
	var ps []netip.Prefix
	for _, i := range ifs {
		for _, a := range i.AddrInfo {
			if ad, err := netip.ParseAddr(a.Local); err == nil {
				ps = append(ps, netip.PrefixFrom(ad, a.PrefixLen))
			}
		}
	}
	return ps, nil
}

func has(ps []netip.Prefix, p netip.Prefix) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// EnsureBridge creates the bridge with the plan's host address, up, with
// forwarding off for packets arriving on it and no IPv6, so nothing from the
// machines is routed beyond the host. It reports whether it changed anything.
func EnsureBridge(ctx context.Context, plan Plan) (bool, error) {
	changed := false
	all, err := links(ctx, "")
	if err != nil {
		return false, fmt.Errorf("bridge %s: %w", Bridge, err)
	}
	br, ok := all[Bridge]
	if !ok {
		if err := run.Quiet(ctx, "ip", "link", "add", Bridge, "type", "bridge", "stp_state", "0"); err != nil {
			return false, fmt.Errorf("bridge %s: %w", Bridge, err)
		}
		changed = true
	}
	for _, sysctl := range []struct{ path, val string }{
		{"/proc/sys/net/ipv4/conf/" + Bridge + "/forwarding", "0"},
		{"/proc/sys/net/ipv6/conf/" + Bridge + "/disable_ipv6", "1"},
	} {
		if b, err := os.ReadFile(sysctl.path); err == nil && strings.TrimSpace(string(b)) == sysctl.val {
			continue
		}
		if err := os.WriteFile(sysctl.path, []byte(sysctl.val), 0o644); err != nil {
			return changed, fmt.Errorf("bridge %s: %w", Bridge, err)
		}
		changed = true
	}
	want := netip.PrefixFrom(plan.BridgeAddr(), plan.Subnet.Bits())
	ps, err := addrs(ctx, "", Bridge)
	if err != nil {
		return changed, fmt.Errorf("bridge %s: %w", Bridge, err)
	}
	for _, p := range ps {
		// An address from an earlier lab on another subnet would keep
		// routing that subnet to the bridge.
		if p != want {
			if err := run.Quiet(ctx, "ip", "addr", "del", p.String(), "dev", Bridge); err != nil {
				return changed, fmt.Errorf("bridge %s: %w", Bridge, err)
			}
			changed = true
		}
	}
	if !has(ps, want) {
		if err := run.Quiet(ctx, "ip", "addr", "add", want.String(), "dev", Bridge); err != nil {
			return changed, fmt.Errorf("bridge %s: %w", Bridge, err)
		}
		changed = true
	}
	if !ok || !br.Up() {
		if err := run.Quiet(ctx, "ip", "link", "set", Bridge, "up"); err != nil {
			return changed, fmt.Errorf("bridge %s: %w", Bridge, err)
		}
		changed = true
	}
	return changed, nil
}

// netnsMounted reports whether /run/netns/name is a live namespace mount
// rather than a stale file left behind by a reboot.
func netnsMounted(name string) (bool, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	defer f.Close()
	target := filepath.Join(NetnsDir, name)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == target {
			return true, nil
		}
	}
	return false, sc.Err()
}

// NetnsPath is the file nspawn's --network-namespace-path takes.
func NetnsPath(machine string) string { return filepath.Join(NetnsDir, Netns(machine)) }

// EnsureMachine creates the machine's netns and veth pair: the host side on
// the bridge and up, the peer inside renamed to eth0 with addr. It reports
// whether it changed anything.
func EnsureMachine(ctx context.Context, machine string, addr netip.Prefix) (bool, error) {
	changed := false
	ns := Netns(machine)
	host, peer := Links(machine)
	wrap := func(err error) error { return fmt.Errorf("network of %s: %w", machine, err) }

	mounted, err := netnsMounted(ns)
	if err != nil {
		return false, wrap(err)
	}
	if !mounted {
		if _, err := os.Lstat(NetnsPath(machine)); err == nil {
			// A stale file (e.g. after a reboot) blocks `ip netns add`.
			if err := os.Remove(NetnsPath(machine)); err != nil {
				return false, wrap(err)
			}
		}
		if err := run.Quiet(ctx, "ip", "netns", "add", ns); err != nil {
			return false, wrap(err)
		}
		changed = true
	}
	all, err := links(ctx, "")
	if err != nil {
		return changed, wrap(err)
	}
	inner, err := links(ctx, ns)
	if err != nil {
		return changed, wrap(err)
	}
	if _, ok := inner[GuestIf]; !ok {
		// A host side without its guest side is half of a failed attempt.
		if _, ok := all[host]; ok {
			if err := run.Quiet(ctx, "ip", "link", "del", host); err != nil {
				return changed, wrap(err)
			}
		}
		if _, ok := all[peer]; ok {
			if err := run.Quiet(ctx, "ip", "link", "del", peer); err != nil {
				return changed, wrap(err)
			}
		}
		if err := run.Quiet(ctx, "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns); err != nil {
			return changed, wrap(err)
		}
		if err := run.Quiet(ctx, "ip", "-n", ns, "link", "set", peer, "name", GuestIf); err != nil {
			return changed, wrap(err)
		}
		changed = true
		if all, err = links(ctx, ""); err != nil {
			return changed, wrap(err)
		}
		if inner, err = links(ctx, ns); err != nil {
			return changed, wrap(err)
		}
	}
	ps, err := addrs(ctx, ns, GuestIf)
	if err != nil {
		return changed, wrap(err)
	}
	if !has(ps, addr) {
		if err := run.Quiet(ctx, "ip", "-n", ns, "addr", "add", addr.String(), "dev", GuestIf); err != nil {
			return changed, wrap(err)
		}
		changed = true
	}
	for _, dev := range []string{"lo", GuestIf} {
		if !inner[dev].Up() {
			if err := run.Quiet(ctx, "ip", "-n", ns, "link", "set", dev, "up"); err != nil {
				return changed, wrap(err)
			}
			changed = true
		}
	}
	h := all[host]
	if h.Master != Bridge {
		if err := run.Quiet(ctx, "ip", "link", "set", host, "master", Bridge); err != nil {
			return changed, wrap(err)
		}
		changed = true
	}
	if !h.Up() {
		if err := run.Quiet(ctx, "ip", "link", "set", host, "up"); err != nil {
			return changed, wrap(err)
		}
		changed = true
	}
	return changed, nil
}

// SetLink takes a machine's host-side veth up or down (lab heal / lab cut).
func SetLink(ctx context.Context, machine string, up bool) error {
	host, _ := Links(machine)
	state := "down"
	if up {
		state = "up"
	}
	if err := run.Quiet(ctx, "ip", "link", "set", host, state); err != nil {
		return fmt.Errorf("set %s %s: %w", host, state, err)
	}
	return nil
}

// LabNetns lists the named network namespaces with the lab prefix.
func LabNetns() ([]string, error) {
	des, err := os.ReadDir(NetnsDir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), Prefix+"-") {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

// RemoveAll deletes every lab netns (which takes the veth pairs with it) and
// then every remaining link with the lab prefix, the bridge last. It returns
// what it removed.
func RemoveAll(ctx context.Context) ([]string, error) {
	var removed []string
	nss, err := LabNetns()
	if err != nil {
		return nil, fmt.Errorf("list netns: %w", err)
	}
	for _, ns := range nss {
		if err := run.Quiet(ctx, "ip", "netns", "delete", ns); err != nil {
			// A stale file is not a mount; remove it directly.
			if rmErr := os.Remove(filepath.Join(NetnsDir, ns)); rmErr != nil && !os.IsNotExist(rmErr) {
				return removed, fmt.Errorf("remove netns %s: %w", ns, err)
			}
		}
		removed = append(removed, "netns "+ns)
	}
	ls, err := LabLinks(ctx)
	if err != nil {
		return removed, err
	}
	// Ports before the bridge, so the bridge goes last.
	var bridge bool
	for _, l := range ls {
		if l.Name == Bridge {
			bridge = true
			continue
		}
		if err := run.Quiet(ctx, "ip", "link", "del", l.Name); err != nil {
			// Deleting one end of a veth removes the other: not an error.
			if still, _ := LabLinks(ctx); !containsLink(still, l.Name) {
				continue
			}
			return removed, fmt.Errorf("remove link %s: %w", l.Name, err)
		}
		removed = append(removed, "link "+l.Name)
	}
	if bridge {
		if err := run.Quiet(ctx, "ip", "link", "del", Bridge); err != nil {
			return removed, fmt.Errorf("remove bridge %s: %w", Bridge, err)
		}
		removed = append(removed, "bridge "+Bridge)
	}
	return removed, nil
}

func containsLink(ls []Link, name string) bool {
	for _, l := range ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

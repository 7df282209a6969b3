package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/trafficlab/trafficlab/lab/run"
)

// DefaultSubnet is a private /24 unlikely to be in use; it is checked anyway.
const DefaultSubnet = "10.231.0.0/24"

// firstMachine is the host offset of the first machine's address; the bridge
// takes offset 1, and the VIP the last usable address.
const firstMachine = 10

// Plan assigns the lab's addresses inside one subnet.
type Plan struct {
	Subnet netip.Prefix
}

// ParsePlan checks that cidr is a private IPv4 network address with room for
// the bridge, n machines and a VIP.
func ParsePlan(cidr string, n int) (Plan, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return Plan{}, fmt.Errorf("subnet %q: %w", cidr, err)
	}
	if !p.Addr().Is4() {
		return Plan{}, fmt.Errorf("subnet %s: only IPv4 is supported", p)
	}
	if p.Masked() != p {
		return Plan{}, fmt.Errorf("subnet %s: not a network address (did you mean %s?)", p, p.Masked())
	}
	if !p.Addr().IsPrivate() {
		return Plan{}, fmt.Errorf("subnet %s: not a private (RFC 1918) range; the lab never uses public addresses", p)
	}
	size := 1 << (32 - p.Bits())
	if need := firstMachine + n + 2; size < need+1 {
		return Plan{}, fmt.Errorf("subnet %s: too small for the bridge, %d machines and a VIP (need at least %d addresses)", p, n, need+1)
	}
	return Plan{Subnet: p}, nil
}

func (p Plan) offset(n int) netip.Addr {
	a := p.Subnet.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(n)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// BridgeAddr is the host's address on the bridge: proxy, NTP and SSH client.
func (p Plan) BridgeAddr() netip.Addr { return p.offset(1) }

// Machine is the address of the i-th machine (0-based).
func (p Plan) Machine(i int) netip.Addr { return p.offset(firstMachine + i) }

// VIP is an address no machine or the bridge uses: the last usable one.
func (p Plan) VIP() netip.Addr { return p.offset(1<<(32-p.Subnet.Bits()) - 2) }

// Route is one entry of the host's routing tables.
type Route struct {
	Dst   string `json:"dst"`
	Dev   string `json:"dev"`
	Table string `json:"table"`
	Type  string `json:"type"`
}

// Routes reads the host's IPv4 routes from every table.
func Routes(ctx context.Context) ([]Route, error) {
	out, err := run.Output(ctx, "ip", "-j", "-4", "route", "show", "table", "all")
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	var rs []Route
	if out == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		return nil, fmt.Errorf("read routes: parse ip -j output: %w", err)
	}
	return rs, nil
}

// CheckOverlap returns an error naming every route whose destination
// overlaps subnet. The default route and the lab's own bridge are ignored.
func CheckOverlap(subnet netip.Prefix, routes []Route) error {
	var clash []string
	for _, r := range routes {
		if r.Dst == "" || r.Dst == "default" || r.Dev == Bridge {
			continue
		}
		dst := r.Dst
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		p, err := netip.ParsePrefix(dst)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		if p.Overlaps(subnet) {
			desc := r.Dst
			if r.Type != "" && r.Type != "unicast" {
				desc = r.Type + " " + desc
			}
			if r.Dev != "" {
				desc += " dev " + r.Dev
			}
			if r.Table != "" && r.Table != "main" {
				desc += " table " + r.Table
			}
			clash = append(clash, desc)
		}
	}
	if len(clash) > 0 {
		return fmt.Errorf("subnet %s overlaps existing route(s): %s; choose another with --subnet", subnet, strings.Join(clash, "; "))
	}
	return nil
}

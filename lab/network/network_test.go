package network

import (
	"net/netip"
	"strings"
	"testing"
)

func TestLinks(t *testing.T) {
	for _, tc := range []struct{ machine, host, peer string }{
		{"kafka-1", "tlab-kafka-1", "tlab-kafka-1-p"},
		{"lb-2", "tlab-lb-2", "tlab-lb-2-p"},
		{"abcdefgh", "tlab-abcdefgh", "tlab-abcdefgh-p"}, // exactly 15
	} {
		h, p := Links(tc.machine)
		if h != tc.host || p != tc.peer {
			t.Errorf("Links(%q) = %q, %q; want %q, %q", tc.machine, h, p, tc.host, tc.peer)
		}
	}
	seen := map[string]string{}
	for _, m := range []string{"zookeeper-1", "zookeeper-2", "abcdefghi", "very-long-machine-name"} {
		h, p := Links(m)
		if len(p) > 15 || len(h) > 15 {
			t.Errorf("Links(%q) = %q, %q: longer than 15", m, h, p)
		}
		if !strings.HasPrefix(h, "tlab-") || p != h+"-p" {
			t.Errorf("Links(%q) = %q, %q: prefix or pairing lost", m, h, p)
		}
		if h2, _ := Links(m); h2 != h {
			t.Errorf("Links(%q) not stable", m)
		}
		if other, dup := seen[h]; dup {
			t.Errorf("Links(%q) and Links(%q) collide: %q", m, other, h)
		}
		seen[h] = m
	}
	if h, _ := Links("zookeeper-1"); !strings.HasPrefix(h, "tlab-zook") {
		t.Errorf("shortened name %q does not start with the machine's name", h)
	}
}

func TestPlan(t *testing.T) {
	p, err := ParsePlan("10.231.0.0/24", 6)
	if err != nil {
		t.Fatal(err)
	}
	if p.BridgeAddr().String() != "10.231.0.1" || p.Machine(0).String() != "10.231.0.10" ||
		p.Machine(5).String() != "10.231.0.15" || p.VIP().String() != "10.231.0.254" {
		t.Errorf("plan = bridge %s, machines %s..%s, vip %s", p.BridgeAddr(), p.Machine(0), p.Machine(5), p.VIP())
	}
	small, err := ParsePlan("172.31.231.0/27", 6)
	if err != nil {
		t.Fatal(err)
	}
	if small.VIP().String() != "172.31.231.30" {
		t.Errorf("VIP of a /27 = %s", small.VIP())
	}
	for _, bad := range []string{"10.231.0.5/24", "8.8.8.0/24", "10.0.0.0/29", "fd00::/64", "nonsense"} {
		if _, err := ParsePlan(bad, 6); err == nil {
			t.Errorf("ParsePlan(%q) accepted", bad)
		}
	}
}

func TestCheckOverlap(t *testing.T) {
	subnet := netip.MustParsePrefix("10.231.0.0/24")
	routes := []Route{
		{Dst: "default", Dev: "eth0"},
		{Dst: "192.0.2.0/24", Dev: "eth0"},
		{Dst: "10.231.0.0/24", Dev: Bridge}, // the lab's own bridge
		{Dst: "127.0.0.0/8", Dev: "lo", Table: "local", Type: "local"},
	}
	if err := CheckOverlap(subnet, routes); err != nil {
		t.Errorf("no overlap expected: %v", err)
	}
	clash := append(routes,
		Route{Dst: "10.0.0.0/8", Dev: "wg0"},
		Route{Dst: "10.231.0.77", Dev: "eth1", Table: "local", Type: "local"},
	)
	err := CheckOverlap(subnet, clash)
	if err == nil {
		t.Fatal("overlap not found")
	}
	for _, want := range []string{"10.0.0.0/8 dev wg0", "local 10.231.0.77 dev eth1 table local", "--subnet"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if err := CheckOverlap(netip.MustParsePrefix("10.232.0.0/24"), routes); err != nil {
		t.Errorf("adjacent subnet reported: %v", err)
	}
}

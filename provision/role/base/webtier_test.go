package base

import (
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

// With firewall: managed, the web and LB ports are open where those roles
// are (80 for the LB and 8081 for the web server sharing its host), and
// VRRP only from the other load balancers.
func TestFirewallOpensTheWebTier(t *testing.T) {
	inv := roletest.LoadExample(t, "all-in-one.yaml")
	r := wanted(inv, roletest.HostNamed(t, inv, "node-2"))
	ports := strings.Join(r.ports, " ")
	for _, p := range []string{"80/tcp", "8081/tcp"} {
		if !strings.Contains(" "+ports+" ", " "+p+" ") {
			t.Errorf("node-2 opens %s, not %s", ports, p)
		}
	}
	want := `rule family="ipv4" source address="192.168.0.190" protocol value="vrrp" accept` + "\n" +
		`rule family="ipv4" source address="192.168.0.192" protocol value="vrrp" accept`
	if got := strings.Join(vrrp(r.rich), "\n"); got != want {
		t.Errorf("node-2's rich rules:\n%s\nwant:\n%s", got, want)
	}

	seed := roletest.LoadExample(t, "seed-centos.yaml")
	if r := wanted(seed, roletest.HostNamed(t, seed, "kafka-1")); len(vrrp(r.rich)) != 0 || !strings.Contains(strings.Join(r.ports, " "), "80/tcp") {
		t.Errorf("web host kafka-1: ports %v, rich %v", r.ports, r.rich)
	}
	if r := wanted(seed, roletest.HostNamed(t, seed, "db-1")); strings.Contains(" "+strings.Join(r.ports, " ")+" ", " 80/tcp ") || len(r.rich) == 0 {
		t.Errorf("db-1 (no web tier): ports %v, rich %v", r.ports, r.rich)
	}
}

// vrrp keeps the rules that let VRRP in.
func vrrp(rich []string) []string {
	var out []string
	for _, r := range rich {
		if strings.Contains(r, `protocol value="vrrp"`) {
			out = append(out, r)
		}
	}
	return out
}

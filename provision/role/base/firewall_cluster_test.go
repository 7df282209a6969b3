package base

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

// clusterRoles puts every role on its own hosts, so that each internal
// port's sources can be told apart.
const clusterRoles = `
cluster: {name: sc, firewall: managed}
hosts:
  - {name: zk-1, address: 10.0.0.1, roles: [zookeeper]}
  - {name: zk-2, address: 10.0.0.2, roles: [zookeeper]}
  - {name: zk-3, address: 10.0.0.3, roles: [zookeeper]}
  - {name: kafka-1, address: 10.0.0.11, roles: [kafka]}
  - {name: kafka-2, address: 10.0.0.12, roles: [kafka]}
  - {name: web-1, address: 10.0.0.21, roles: [web, filebeat]}
  - {name: lb-1, address: 10.0.0.31, roles: [lb]}
  - {name: db-1, address: 10.0.0.41, roles: [mysql]}
  - {name: app-1, address: 10.0.0.51, roles: [consumer]}
  - {name: dash-1, address: fd00::61, roles: [dashboard]}
lb: {vip: 10.0.0.200/24}
`

// kraftRoles is clusterRoles without ZooKeeper, in KRaft mode.
var kraftRoles = strings.Replace(regexp.MustCompile(`(?m)^  - \{name: zk-.*\n`).ReplaceAllString(clusterRoles, ""),
	"lb: {", "kafka: {version: 3.9.1, mode: kraft}\nlb: {", 1)

// secureRoles are both with kafka.security sasl_ssl: the brokers' own
// mutual-TLS listener, 9094, is theirs alone.
var (
	secureZKRoles    = strings.Replace(clusterRoles, "lb: {", "kafka: {security: sasl_ssl}\nlb: {", 1)
	secureKRaftRoles = strings.Replace(kraftRoles, "mode: kraft}", "mode: kraft, security: tls}", 1)
)

// sources maps each port some host lets in from the given addresses only
// to those addresses, read from rich rules.
func sources(r rules) map[string][]string {
	re := regexp.MustCompile(`^rule family="ipv[46]" source address="([^"]+)" port port="(\d+)" protocol="tcp" accept$`)
	out := map[string][]string{}
	for _, rule := range r.rich {
		if m := re.FindStringSubmatch(rule); m != nil {
			out[m[2]] = append(out[m[2]], m[1])
		}
	}
	for p := range out {
		slices.Sort(out[p])
	}
	return out
}

// ZooKeeper and Kafka are open to exactly the hosts whose roles connect to
// them, never to any source.
func TestFirewallKafkaAndZooKeeperOnlyFromTheirClients(t *testing.T) {
	zkClients := []string{"10.0.0.1", "10.0.0.11", "10.0.0.12", "10.0.0.2", "10.0.0.3"}
	ensemble := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}
	kafkaClients := []string{"10.0.0.11", "10.0.0.12", "10.0.0.21", "10.0.0.51"}
	controllers := []string{"10.0.0.11", "10.0.0.12"}
	mysqlClients := []string{"10.0.0.51", "fd00::61"}
	for _, tt := range []struct {
		inventory, host string
		want            map[string][]string
	}{
		{clusterRoles, "zk-2", map[string][]string{"2181": zkClients, "2888": ensemble, "3888": ensemble}},
		{clusterRoles, "kafka-1", map[string][]string{"9092": kafkaClients}},
		{kraftRoles, "kafka-2", map[string][]string{"9092": kafkaClients, "9093": controllers}},
		{clusterRoles, "db-1", map[string][]string{"3306": mysqlClients}},
		{clusterRoles, "web-1", map[string][]string{}},
		{clusterRoles, "app-1", map[string][]string{}},
		{kraftRoles, "lb-1", map[string][]string{}},
		{secureZKRoles, "kafka-1", map[string][]string{"9092": kafkaClients, "9094": controllers}},
		{secureKRaftRoles, "kafka-2", map[string][]string{"9092": kafkaClients, "9093": controllers, "9094": controllers}},
		{secureZKRoles, "web-1", map[string][]string{}},
	} {
		inv := rt.LoadInventory(t, tt.inventory)
		r := wanted(inv, rt.HostNamed(t, inv, tt.host))
		if got := sources(r); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s (%s mode) lets in:\n %v\nwant\n %v", tt.host, inv.Kafka.Mode, got, tt.want)
		}
		for _, p := range []string{"2181/tcp", "2888/tcp", "3888/tcp", "9092/tcp", "9093/tcp", "9094/tcp", "3306/tcp"} {
			if slices.Contains(r.ports, p) {
				t.Errorf("%s opens %s to any source: %q", tt.host, p, r.ports)
			}
		}
	}
}

// On a RHEL host the rules are added through firewalld, and destroy
// removes exactly them: the SSH port and a rule of the user's stay.
func TestFirewallBrokerRulesUpAndDestroyRHEL(t *testing.T) {
	f := newFakeRHEL()
	inv := rt.LoadInventory(t, kraftRoles)
	c, tg := connectFake(t, f, inv, "kafka-1")
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, tg, steps)
	var adds []string
	for _, src := range []struct{ addr, port string }{
		{"10.0.0.11", "9092"}, {"10.0.0.11", "9093"}, {"10.0.0.12", "9092"}, {"10.0.0.12", "9093"},
		{"10.0.0.21", "9092"}, {"10.0.0.51", "9092"},
	} {
		adds = append(adds, fmt.Sprintf(`--add-rich-rule='rule family="ipv4" source address="%s" port port="%s" protocol="tcp" accept'`, src.addr, src.port))
	}
	var fw []string
	for _, cmd := range f.TakeMutating() {
		if strings.HasPrefix(cmd, "firewall-cmd") {
			fw = append(fw, cmd)
		}
	}
	want := []string{regexp.QuoteMeta("firewall-cmd --permanent --add-port=22/tcp && firewall-cmd --permanent " + strings.Join(adds, " ") + " && firewall-cmd --reload")}
	assertSequence(t, fw, want)
	if len(f.fwRich) != len(adds) || !slices.Equal(f.fwPorts, []string{"22/tcp"}) {
		t.Errorf("firewall after up: ports %q, rich rules %q", f.fwPorts, f.fwRich)
	}
	rt.AssertSecondRunIdle(t, f.Host, tg, steps)

	mine := `rule family="ipv4" source address="10.9.9.9" port port="9100" protocol="tcp" accept`
	f.fwRich = append(f.fwRich, mine)
	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, tg, remove)
	if !slices.Equal(f.fwPorts, []string{"22/tcp"}) || !slices.Equal(f.fwRich, []string{mine}) {
		t.Errorf("firewall after destroy: ports %q, rich rules %q; want 22/tcp and the user's rule", f.fwPorts, f.fwRich)
	}
}

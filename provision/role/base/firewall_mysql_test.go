package base

import (
	"slices"
	"strings"
	"testing"

	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

// MySQL's port is open only to the consumer and dashboard hosts, never to
// everyone, and no other host opens it.
func TestFirewallMySQLOnlyFromClients(t *testing.T) {
	inv := rt.LoadInventory(t, `
cluster: {name: sc, firewall: managed}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.5, roles: [mysql]}
  - {name: app-1, address: 10.0.0.6, roles: [consumer]}
  - {name: app-2, address: fd00::7, roles: [dashboard]}
`)
	db := wanted(inv, rt.HostNamed(t, inv, "db-1"))
	if slices.Contains(db.ports, "3306/tcp") {
		t.Errorf("3306 open to everyone: %q", db.ports)
	}
	want := []string{
		`rule family="ipv4" source address="10.0.0.6" port port="3306" protocol="tcp" accept`,
		`rule family="ipv6" source address="fd00::7" port port="3306" protocol="tcp" accept`,
	}
	if !slices.Equal(db.rich, want) {
		t.Errorf("rich rules:\n%s\nwant:\n%s", strings.Join(db.rich, "\n"), strings.Join(want, "\n"))
	}
	for _, name := range []string{"kafka-1", "app-1", "app-2"} {
		r := wanted(inv, rt.HostNamed(t, inv, name))
		if slices.Contains(r.ports, "3306/tcp") || strings.Contains(strings.Join(r.rich, " "), "3306") {
			t.Errorf("%s opens 3306: %q %q", name, r.ports, r.rich)
		}
	}
	if app2 := wanted(inv, rt.HostNamed(t, inv, "app-2")); !slices.Contains(app2.ports, "8080/tcp") {
		t.Errorf("the dashboard's port is not open: %q", app2.ports)
	}
}

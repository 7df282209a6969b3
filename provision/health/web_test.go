package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
)

func TestWebRows(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "www.sc.com" {
			http.Error(w, "unknown site", http.StatusNotFound)
			return
		}
		w.Write([]byte("<p>served by web-1</p>"))
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	inv := &inventory.Inventory{
		Cluster: inventory.Cluster{Domain: "www.sc.com"},
		Web:     inventory.Web{Port: p},
		Hosts: []inventory.Host{
			{Name: "web-1", Address: "127.0.0.1", Roles: []inventory.Role{inventory.RoleWeb}},
			{Name: "web-2", Address: "127.0.0.1", Roles: []inventory.Role{inventory.RoleWeb}}, // gets web-1's page
		},
	}
	var d net.Dialer
	rows := Web(context.Background(), inv, nil, d.DialContext)
	if !rows[0].OK || rows[0].State != "HTTP 200" {
		t.Errorf("web-1: %+v", rows[0])
	}
	if rows[1].OK || rows[1].State != "wrong page" {
		t.Errorf("web-2 answered with web-1's page: %+v", rows[1])
	}
	inv.Cluster.Domain = "other.example"
	if rows := Web(context.Background(), inv, nil, d.DialContext); rows[0].OK || rows[0].State != "HTTP 404" {
		t.Errorf("another site name: %+v", rows[0])
	}
}

func TestHasAddr(t *testing.T) {
	out := `1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
2: host0    inet 10.231.0.13/24 brd 10.231.0.255 scope global host0\       valid_lft forever preferred_lft forever
2: host0    inet 10.231.0.100/24 scope global secondary host0\       valid_lft forever preferred_lft forever
`
	if !HasAddr(out, netip.MustParseAddr("10.231.0.100")) || HasAddr(out, netip.MustParseAddr("10.231.0.10")) {
		t.Error("HasAddr")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP trafficlab_consumer_lag_messages Messages behind.
# TYPE trafficlab_consumer_lag_messages gauge
trafficlab_consumer_lag_messages{partition="0",topic="nginxlog"} 3
trafficlab_consumer_lag_messages{partition="1",topic="nginxlog"} 4
trafficlab_consumer_lines_total 1.5e+06
`
	m, err := ParseMetrics(strings.NewReader(text), "trafficlab_consumer_lag_messages", "trafficlab_consumer_lines_total", "absent")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := m.Sum("trafficlab_consumer_lag_messages"); v != 7 {
		t.Errorf("lag sum %v, want 7", v)
	}
	if v, _ := m.Sum("trafficlab_consumer_lines_total"); v != 1.5e6 {
		t.Errorf("lines %v, want 1.5e6", v)
	}
	if got := m.Labels("trafficlab_consumer_lag_messages", "partition"); strings.Join(got, ",") != "0,1" {
		t.Errorf("partitions %v, want 0,1", got)
	}
	if _, ok := m.Sum("absent"); ok {
		t.Error("absent metric present")
	}
	if _, err := ParseMetrics(strings.NewReader("trafficlab_consumer_lag_messages{partition=\"0\" 3\n"), "x"); err == nil {
		t.Error("a broken page parsed")
	}
}

// --limit keeps the rows of the hosts named and the cluster's own.
func TestRowsOn(t *testing.T) {
	rows := Rows{{Component: "zookeeper", Host: "kafka-1"}, {Component: "zookeeper", Host: "kafka-2", OK: true}, {Component: "vip", OK: true}, {Component: "lb", Host: "lb-1"}}
	got := rows.On([]string{"kafka-2", "lb-1"})
	if len(got) != 3 || got[0].Host != "kafka-2" || got[1].Component != "vip" || got[2].Host != "lb-1" {
		t.Errorf("On = %+v", got)
	}
	if len(got.Failed()) != 1 {
		t.Errorf("failed among the limited rows: %+v", got.Failed())
	}
}

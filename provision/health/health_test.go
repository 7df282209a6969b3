package health

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
)

func seed(t *testing.T) *inventory.Inventory {
	inv, err := inventory.LoadEnv("../../inventory/examples/seed-centos.yaml", func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// TestKafkaRows: brokers 1..3 of the inventory against a cluster that has
// ids 0..2 registered: broker 3 is reported missing, the topic's
// partitions each with their leader and ISR.
func TestKafkaRows(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addrs := kc.ListenAddrs()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		var n int
		if _, err := fmt.Sscanf(host, "kafka-%d", &n); err == nil {
			addr = addrs[n-1]
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	inv := seed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	rows := Kafka(ctx, inv, dial)
	var b strings.Builder
	rows.Print(&b)
	out := squeeze(b.String())
	for _, want := range []string{"kafka broker 1 kafka-1 registered ok", "kafka broker 3 kafka-3 missing FAIL", "topic nginxlog missing FAIL"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if len(rows.Failed()) != 2 { // broker 3, the topic
		t.Errorf("failed rows: %v", rows.Failed())
	}

	a := kafkaadmin.NewWithBrokers(addrs, func(ctx context.Context, n, a string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, n, a)
	})
	defer a.Close()
	plan, err := a.PlanTopic(ctx, kafkaadmin.TopicSpec{Name: "nginxlog", Partitions: 3, Replication: 3, MinInsync: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyTopic(ctx, plan); err != nil {
		t.Fatal(err)
	}
	b.Reset()
	rows = Kafka(ctx, inv, dial)
	rows.Print(&b)
	out = squeeze(b.String())
	for _, want := range []string{"topic nginxlog 3 partitions, replication 3 ok", "topic nginxlog-2 leader", "isr [0,1,2]"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
}

func TestKafkaUnreachable(t *testing.T) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		return nil, fmt.Errorf("dial %s: no route", addr)
	}
	rows := Kafka(context.Background(), seed(t), dial)
	if len(rows) != 1 || rows[0].OK || rows[0].State != "unreachable" || !strings.Contains(rows[0].Detail, "kafka-1:9092") {
		t.Errorf("rows %+v", rows)
	}
}

// squeeze turns every run of spaces into one, line by line.
func squeeze(s string) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

func TestParseTracking(t *testing.T) {
	synced := `Reference ID    : 0AE70001 (10.231.0.1)
Stratum         : 9
Ref time (UTC)  : Wed Nov 25 03:40:01 2026
System time     : 0.000001234 seconds slow of NTP time
Leap status     : Normal
`
	unsynced := `Reference ID    : 00000000 ()
Stratum         : 0
System time     : 0.000000000 seconds fast of NTP time
Leap status     : Not synchronised
`
	for _, tc := range []struct {
		out, state string
		ok         bool
		detail     string
	}{
		{synced, "synced", true, "source 10.231.0.1, stratum 9, 0.000001234 seconds slow of NTP time"},
		{unsynced, "not synced", false, "leap status Not synchronised"},
		{"", "unknown", false, "no tracking report"},
	} {
		state, ok, detail := ParseTracking(tc.out)
		if state != tc.state || ok != tc.ok || !strings.Contains(detail, tc.detail) {
			t.Errorf("%q: %s %v %s", tc.out, state, ok, detail)
		}
	}
}

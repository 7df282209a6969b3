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
	"github.com/trafficlab/trafficlab/provision/role"
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

	rows := Kafka(ctx, inv, role.Secrets{}, dial)
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
	rows = Kafka(ctx, inv, role.Secrets{}, dial)
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
	rows := Kafka(context.Background(), seed(t), role.Secrets{}, dial)
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

// A partition is fine only with a leader and every replica in sync: one
// replica behind fails verify, and below min.insync.replicas the row says
// acks=all writes are refused.
func TestPartitionRow(t *testing.T) {
	spec := kafkaadmin.TopicSpec{Name: "nginxlog", Partitions: 3, Replication: 3, MinInsync: 2}
	for _, tt := range []struct {
		name   string
		p      kafkaadmin.Partition
		ok     bool
		detail string
	}{
		{"in sync", kafkaadmin.Partition{ID: 0, Leader: 1, Replicas: []int{1, 2, 3}, ISR: []int{1, 2, 3}}, true, "replicas [1,2,3] isr [1,2,3]"},
		{"one behind", kafkaadmin.Partition{ID: 1, Leader: 2, Replicas: []int{1, 2, 3}, ISR: []int{2, 3}}, false, "replicas [1,2,3] isr [2,3]; under-replicated: [1] not in sync"},
		{"below min.insync", kafkaadmin.Partition{ID: 2, Leader: 3, Replicas: []int{1, 2, 3}, ISR: []int{3}}, false, "replicas [1,2,3] isr [3]; under-replicated: [1,2] not in sync, fewer than min.insync.replicas=2: acks=all writes are refused"},
		{"offline", kafkaadmin.Partition{ID: 0, Leader: -1, Replicas: []int{1, 2, 3}, ISR: []int{1}}, false, "replicas [1,2,3] isr [1]; no leader: the partition is offline"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := partitionRow(spec, tt.p)
			if r.OK != tt.ok || r.Detail != tt.detail {
				t.Errorf("got ok=%v %q, want ok=%v %q", r.OK, r.Detail, tt.ok, tt.detail)
			}
		})
	}
}

// ZooKeeper mode has exactly one controller when every broker that
// answers names the same registered one.
func TestControllerRow(t *testing.T) {
	inv := seed(t)
	for _, tt := range []struct {
		name         string
		views        map[string]int
		ok           bool
		state, host  string
		detailPrefix string
	}{
		{"agreed", map[string]int{"kafka-1:9092": 2, "kafka-2:9092": 2, "kafka-3:9092": 2}, true, "broker 2", "kafka-2", "named by all 3"},
		{"one down", map[string]int{"kafka-1:9092": 3, "kafka-3:9092": 3}, true, "broker 3", "kafka-3", "named by all 2"},
		{"split", map[string]int{"kafka-1:9092": 1, "kafka-2:9092": 2, "kafka-3:9092": 2}, false, "2 different controllers", "", "the brokers disagree: kafka-1 say 1; kafka-2,kafka-3 say 2"},
		{"none", map[string]int{"kafka-1:9092": -1}, false, "none", "", "no broker knows"},
		{"silent", map[string]int{}, false, "unknown", "", "no broker answered"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := controllerRow(inv, tt.views)
			if r.OK != tt.ok || r.State != tt.state || r.Host != tt.host || !strings.HasPrefix(r.Detail, tt.detailPrefix) {
				t.Errorf("got %+v", r)
			}
		})
	}
}

// KRaft: one active controller among as many voters as the inventory has
// kafka hosts; the row shows how far each voter is behind.
func TestQuorumRow(t *testing.T) {
	inv := seed(t)
	voters := func(ids ...int) []kafkaadmin.QuorumReplica {
		var out []kafkaadmin.QuorumReplica
		for _, id := range ids {
			out = append(out, kafkaadmin.QuorumReplica{ID: id, LogEndOffset: 100 - int64(id)})
		}
		return out
	}
	for _, tt := range []struct {
		name   string
		q      kafkaadmin.Quorum
		ok     bool
		host   string
		detail string
	}{
		{"healthy", kafkaadmin.Quorum{Leader: 2, Epoch: 5, HighWatermark: 100, Voters: voters(1, 2, 3)}, true, "kafka-2", "lag per voter 1:1 2:2 3:3"},
		{"no leader", kafkaadmin.Quorum{Leader: -1, Epoch: 5, HighWatermark: 100, Voters: voters(1, 2, 3)}, false, "", "no active controller; lag per voter 1:1 2:2 3:3"},
		{"leader not a voter", kafkaadmin.Quorum{Leader: 7, HighWatermark: 100, Voters: voters(1, 2, 3)}, false, "", "no active controller; lag per voter 1:1 2:2 3:3"},
		{"a voter short", kafkaadmin.Quorum{Leader: 1, HighWatermark: 100, Voters: voters(1, 2)}, false, "", "the inventory has 3 controllers; lag per voter 1:1 2:2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := quorumRow(inv, &tt.q)
			if r.OK != tt.ok || r.Host != tt.host || r.Detail != tt.detail {
				t.Errorf("got %+v", r)
			}
		})
	}
}

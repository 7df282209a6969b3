package kafkaadmin

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

func newCluster(t *testing.T, brokers int) *Admin {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(1, "other"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var d net.Dialer
	// A dead address first: metadata must go on to the next broker.
	dead := deadAddr(t)
	a := NewWithBrokers(append([]string{dead}, c.ListenAddrs()...), d.DialContext)
	t.Cleanup(a.Close)
	return a
}

func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestTopicLifecycle(t *testing.T) {
	a := newCluster(t, 3)
	spec := TopicSpec{Name: "nginxlog", Partitions: 3, Replication: 3, MinInsync: 2}

	plan, err := a.PlanTopic(ctx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Create || !strings.Contains(plan.String(), "create topic nginxlog (3 partitions, replication 3, min.insync.replicas=2)") {
		t.Fatalf("plan on an empty cluster: %+v %q", plan, plan)
	}
	if err := a.ApplyTopic(ctx(t), plan); err != nil {
		t.Fatal(err)
	}
	md, err := a.Metadata(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Brokers) != 3 || md.Controller < 0 {
		t.Errorf("brokers %v controller %d", md.Brokers, md.Controller)
	}
	tp := md.Topics["nginxlog"]
	if len(tp.Partitions) != 3 || tp.ReplicationFactor() != 3 {
		t.Fatalf("topic after create: %+v (topics %v)", tp, md.Topics)
	}
	for _, p := range tp.Partitions {
		if p.Leader < 0 {
			t.Errorf("partition %d has no leader", p.ID)
		}
	}
	if again, err := a.PlanTopic(ctx(t), spec); err != nil || !again.Empty() {
		t.Fatalf("second plan: %v %v", again, err)
	}

	// More partitions and another min.insync.replicas: applied in place.
	spec.Partitions, spec.MinInsync = 5, 1
	plan, err = a.PlanTopic(ctx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.String(); got != "topic nginxlog: grow to 5 partitions, set min.insync.replicas=1" {
		t.Fatalf("grow plan %q", got)
	}
	if err := a.ApplyTopic(ctx(t), plan); err != nil {
		t.Fatal(err)
	}
	if again, err := a.PlanTopic(ctx(t), spec); err != nil || !again.Empty() {
		t.Fatalf("plan after growing: %v %v", again, err)
	}

	// What Kafka cannot do says what can be done instead.
	for _, tc := range []struct {
		spec TopicSpec
		want string
	}{
		{TopicSpec{Name: "nginxlog", Partitions: 2, Replication: 3, MinInsync: 1}, "has 5 partitions and the inventory asks for 2: Kafka cannot remove partitions; keep kafka.topic.partitions at 5 or more"},
		{TopicSpec{Name: "nginxlog", Partitions: 5, Replication: 2, MinInsync: 1}, "has replication factor 3 and the inventory asks for 2"},
	} {
		_, err := a.PlanTopic(ctx(t), tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("plan %+v: got %v, want %q", tc.spec, err, tc.want)
		}
	}
}

func TestProduceAndFind(t *testing.T) {
	a := newCluster(t, 3)
	spec := TopicSpec{Name: "nginxlog", Partitions: 3, Replication: 3, MinInsync: 2}
	plan, err := a.PlanTopic(ctx(t), spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyTopic(ctx(t), plan); err != nil {
		t.Fatal(err)
	}
	w := a.Writer("nginxlog")
	defer w.Close()
	key := []byte("probe-1")
	if err := w.WriteMessages(ctx(t), kafka.Message{Key: []byte("other")}, kafka.Message{Key: key, Value: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	// The key decides the partition; look in each.
	found := false
	for p := range 3 {
		c, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := a.Find(c, "nginxlog", p, 0, key)
		cancel()
		found = found || err == nil
	}
	if !found {
		t.Fatal("the produced message was not found in any partition")
	}
	// A key no message has: every partition is read to its end, no waiting.
	for p := range 3 {
		if _, err := a.Find(ctx(t), "nginxlog", p, 0, []byte("absent")); !errors.Is(err, ErrNotFound) {
			t.Errorf("partition %d: absent key: %v", p, err)
		}
	}
	md, err := a.Metadata(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if u := md.UnderReplicated(); len(u) != 0 {
		t.Errorf("under-replicated on a healthy cluster: %v", u)
	}
}

func TestMetadataNoBroker(t *testing.T) {
	var d net.Dialer
	a := NewWithBrokers([]string{deadAddr(t)}, d.DialContext)
	_, err := a.Metadata(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "no broker answered") {
		t.Fatalf("got %v", err)
	}
}

// A preferred election asks the controller to move leaders; every partition
// has a leader after it and its preferred replica is one of its replicas.
// (kfake rotates leaders rather than choosing the preferred one; the lab's
// replace drill shows real Kafka's.)
func TestElectPreferred(t *testing.T) {
	a := newCluster(t, 3)
	plan, err := a.PlanTopic(ctx(t), TopicSpec{Name: "nginxlog", Partitions: 3, Replication: 3, MinInsync: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyTopic(ctx(t), plan); err != nil {
		t.Fatal(err)
	}
	if err := a.ElectPreferred(ctx(t), "nginxlog"); err != nil {
		t.Fatal(err)
	}
	md, err := a.Metadata(ctx(t), "nginxlog")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics["nginxlog"].Partitions {
		if p.Leader < 0 || !slices.Contains(p.Replicas, p.Preferred) {
			t.Errorf("partition %d after the election: %+v", p.ID, p)
		}
	}
	if err := a.ElectPreferred(ctx(t), "absent"); err == nil || !strings.Contains(err.Error(), "no topic absent") {
		t.Errorf("a topic that does not exist: %v", err)
	}
}

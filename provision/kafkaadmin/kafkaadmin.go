// Package kafkaadmin speaks the Kafka protocol to the cluster's brokers
// from the control machine (github.com/segmentio/kafka-go): the metadata
// that status, the rolling restart and the drills read, and the log
// topic's creation and changes. Every connection goes through the dialer it
// is given, which in provision tunnels over the brokers' SSH connections
// (package cluster), so the brokers' advertised host names never need to
// resolve on the control machine.
package kafkaadmin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/trafficlab/trafficlab/inventory"
)

// DialFunc opens a connection to a broker's advertised host:port.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Admin talks to one cluster.
type Admin struct {
	bootstrap []string
	dial      DialFunc
	transport *kafka.Transport
	client    *kafka.Client
	direct    bool // At: ask the bootstrap addresses themselves
}

// NewWithBrokers returns an Admin for the brokers at the given host:port
// addresses, reached through dial (which does TLS where the listener has
// it). Provision's roles and checks get theirs from the kafka role's
// Admin, which picks the listener and the TLS for the cluster.
func NewWithBrokers(bootstrap []string, dial DialFunc) *Admin {
	t := &kafka.Transport{
		Dial:        dial,
		DialTimeout: 5 * time.Second,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: time.Second,
		ClientID:    "trafficlab-provision",
	}
	return &Admin{bootstrap: bootstrap, dial: dial, transport: t, client: &kafka.Client{Transport: t, Timeout: 10 * time.Second}}
}

// Brokers are the bootstrap addresses.
func (a *Admin) Brokers() []string { return slices.Clone(a.bootstrap) }

// Close drops the connections.
func (a *Admin) Close() { a.transport.CloseIdleConnections() }

// Broker is one broker as the cluster reports it.
type Broker struct {
	ID   int
	Host string
	Port int
}

func (b Broker) String() string {
	return fmt.Sprintf("%d@%s", b.ID, net.JoinHostPort(b.Host, strconv.Itoa(b.Port)))
}

// Partition is one partition of a topic.
type Partition struct {
	ID       int
	Leader   int // -1 when it has none
	Replicas []int
	// Preferred is the replica Kafka gives the leadership back to (the
	// first one assigned), -1 when it has none.
	Preferred int
	ISR       []int
}

// UnderReplicated reports whether some replica is out of sync.
func (p Partition) UnderReplicated() bool { return len(p.ISR) < len(p.Replicas) }

// Topic is one topic's partitions.
type Topic struct {
	Name       string
	Partitions []Partition
}

// ReplicationFactor is the number of replicas of the first partition.
func (t Topic) ReplicationFactor() int {
	if len(t.Partitions) == 0 {
		return 0
	}
	return len(t.Partitions[0].Replicas)
}

// Metadata is what the cluster says of itself.
type Metadata struct {
	Controller int // -1 when unknown
	Brokers    []Broker
	Topics     map[string]Topic
	From       string // the broker that answered
}

// Broker returns the broker with that id.
func (m *Metadata) Broker(id int) (Broker, bool) {
	for _, b := range m.Brokers {
		if b.ID == id {
			return b, true
		}
	}
	return Broker{}, false
}

// UnderReplicated lists the partitions (topic-partition) with a replica
// out of sync, or without a leader.
func (m *Metadata) UnderReplicated() []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(m.Topics)) {
		for _, p := range m.Topics[name].Partitions {
			if p.UnderReplicated() || p.Leader < 0 {
				out = append(out, fmt.Sprintf("%s-%d", name, p.ID))
			}
		}
	}
	return out
}

// Metadata asks the brokers in turn until one answers, so that one broker
// down does not hide the others. No topics means every topic. It asks on
// a connection of its own: the transport's metadata is a cache, and status
// and the waits need what the cluster says now.
func (a *Admin) Metadata(ctx context.Context, topics ...string) (*Metadata, error) {
	var errs []error
	for _, addr := range a.bootstrap {
		m, err := a.metadata(ctx, addr, topics)
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, errors.New("kafka metadata: no brokers in the inventory")
	}
	return nil, fmt.Errorf("kafka metadata: no broker answered: %w", errors.Join(errs...))
}

func (a *Admin) metadata(ctx context.Context, addr string, topics []string) (*Metadata, error) {
	conn, err := a.Dialer().DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	m := &Metadata{Controller: -1, Topics: map[string]Topic{}, From: addr}
	brokers, err := conn.Brokers()
	if err != nil {
		return nil, err
	}
	for _, b := range brokers {
		m.Brokers = append(m.Brokers, Broker{ID: b.ID, Host: b.Host, Port: b.Port})
	}
	sort.Slice(m.Brokers, func(i, j int) bool { return m.Brokers[i].ID < m.Brokers[j].ID })
	if c, err := conn.Controller(); err == nil {
		m.Controller = c.ID
	}
	parts, err := conn.ReadPartitions(topics...)
	if err != nil {
		var ke kafka.Error
		if errors.As(err, &ke) && ke == kafka.UnknownTopicOrPartition {
			return m, nil
		}
		return nil, err
	}
	ids := func(bs []kafka.Broker) []int {
		out := make([]int, 0, len(bs))
		for _, b := range bs {
			out = append(out, b.ID)
		}
		sort.Ints(out)
		return out
	}
	for _, p := range parts {
		if strings.HasPrefix(p.Topic, "__") {
			continue // internal topics
		}
		leader := p.Leader.ID
		if p.Leader.Host == "" {
			leader = -1
		}
		preferred := -1
		if len(p.Replicas) > 0 {
			preferred = p.Replicas[0].ID
		}
		t := m.Topics[p.Topic]
		t.Name = p.Topic
		t.Partitions = append(t.Partitions, Partition{ID: p.ID, Leader: leader, Replicas: ids(p.Replicas), ISR: ids(p.Isr), Preferred: preferred})
		m.Topics[p.Topic] = t
	}
	for name, t := range m.Topics {
		sort.Slice(t.Partitions, func(i, j int) bool { return t.Partitions[i].ID < t.Partitions[j].ID })
		m.Topics[name] = t
	}
	return m, nil
}

// TopicConfig reads the named settings of a topic (all when keys is empty).
func (a *Admin) TopicConfig(ctx context.Context, topic string, keys ...string) (map[string]string, error) {
	var errs []error
	for _, addr := range a.bootstrap {
		res, err := a.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{
			Addr:      kafka.TCP(addr),
			Resources: []kafka.DescribeConfigRequestResource{{ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: keys}},
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		out := map[string]string{}
		for _, r := range res.Resources {
			if r.Error != nil {
				return nil, fmt.Errorf("describe topic %s: %w", topic, r.Error)
			}
			for _, e := range r.ConfigEntries {
				out[e.ConfigName] = e.ConfigValue
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("describe topic %s: no broker answered: %w", topic, errors.Join(errs...))
}

// TopicSpec is the topic the inventory asks for.
type TopicSpec struct {
	Name        string
	Partitions  int
	Replication int
	MinInsync   int
}

// SpecFrom reads the log topic from the inventory: partitions default to
// one per broker.
func SpecFrom(inv *inventory.Inventory) TopicSpec {
	t := inv.Kafka.Topic // Load has given Partitions its default (one per broker)
	return TopicSpec{Name: t.Name, Partitions: t.Partitions, Replication: t.Replication, MinInsync: t.MinInsync}
}

// minInsync is the topic setting the spec's MinInsync maps to.
const minInsync = "min.insync.replicas"

// TopicPlan is what it takes to make the topic as asked.
type TopicPlan struct {
	Spec          TopicSpec
	Create        bool
	AddPartitions int               // the new total, 0 when unchanged
	SetConfig     map[string]string // settings to change
	// via is the broker that answered the plan's metadata request: the
	// changes go to a broker known to be up (kafka-go does not try the
	// next address of a list when the first is down).
	via string
}

// Empty reports whether the topic is already as asked.
func (p *TopicPlan) Empty() bool { return !p.Create && p.AddPartitions == 0 && len(p.SetConfig) == 0 }

// String says what the plan does, in one line.
func (p *TopicPlan) String() string {
	s := p.Spec
	if p.Create {
		return fmt.Sprintf("create topic %s (%d partitions, replication %d, %s=%d)", s.Name, s.Partitions, s.Replication, minInsync, s.MinInsync)
	}
	var parts []string
	if p.AddPartitions > 0 {
		parts = append(parts, fmt.Sprintf("grow to %d partitions", p.AddPartitions))
	}
	for _, k := range slices.Sorted(maps.Keys(p.SetConfig)) {
		parts = append(parts, fmt.Sprintf("set %s=%s", k, p.SetConfig[k]))
	}
	if len(parts) == 0 {
		return "topic " + s.Name + " is as asked"
	}
	return "topic " + s.Name + ": " + strings.Join(parts, ", ")
}

// PlanTopic compares the topic on the cluster with spec. What Kafka cannot
// do in place — fewer partitions, another replication factor — is an error
// that says what is possible instead.
func (a *Admin) PlanTopic(ctx context.Context, spec TopicSpec) (*TopicPlan, error) {
	md, err := a.Metadata(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	plan := &TopicPlan{Spec: spec, via: md.From}
	t, ok := md.Topics[spec.Name]
	if !ok || len(t.Partitions) == 0 {
		plan.Create = true
		return plan, nil
	}
	have := len(t.Partitions)
	switch {
	case spec.Partitions < have:
		return nil, fmt.Errorf("topic %s has %d partitions and the inventory asks for %d: Kafka cannot remove partitions; keep kafka.topic.partitions at %d or more, or delete and re-create the topic by hand (its messages are lost)", spec.Name, have, spec.Partitions, have)
	case spec.Partitions > have:
		plan.AddPartitions = spec.Partitions
	}
	if rf := t.ReplicationFactor(); rf != spec.Replication {
		return nil, fmt.Errorf("topic %s has replication factor %d and the inventory asks for %d: changing it needs a partition reassignment (kafka-reassign-partitions.sh), which provision does not do; set kafka.topic.replication to %d", spec.Name, rf, spec.Replication, rf)
	}
	cfg, err := a.TopicConfig(ctx, spec.Name, minInsync)
	if err != nil {
		return nil, err
	}
	if want := strconv.Itoa(spec.MinInsync); cfg[minInsync] != want {
		plan.SetConfig = map[string]string{minInsync: want}
	}
	return plan, nil
}

// ApplyTopic carries out a plan.
func (a *Admin) ApplyTopic(ctx context.Context, p *TopicPlan) error {
	addr := kafka.TCP(p.via)
	s := p.Spec
	if p.Create {
		res, err := a.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Addr: addr, Topics: []kafka.TopicConfig{{
			Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.Replication,
			ConfigEntries: []kafka.ConfigEntry{{ConfigName: minInsync, ConfigValue: strconv.Itoa(s.MinInsync)}},
		}}})
		if err == nil {
			err = res.Errors[s.Name]
		}
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", s.Name, err)
		}
		return nil
	}
	if p.AddPartitions > 0 {
		res, err := a.client.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Addr: addr, Topics: []kafka.TopicPartitionsConfig{{Name: s.Name, Count: int32(p.AddPartitions)}}})
		if err == nil {
			err = res.Errors[s.Name]
		}
		if err != nil {
			return fmt.Errorf("add partitions to topic %s: %w", s.Name, err)
		}
	}
	if len(p.SetConfig) > 0 {
		var cfgs []kafka.IncrementalAlterConfigsRequestConfig
		for k, v := range p.SetConfig {
			cfgs = append(cfgs, kafka.IncrementalAlterConfigsRequestConfig{Name: k, Value: v, ConfigOperation: kafka.ConfigOperationSet})
		}
		res, err := a.client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{Addr: addr, Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name, Configs: cfgs,
		}}})
		if err == nil {
			for _, r := range res.Resources {
				if r.Error != nil {
					err = r.Error
				}
			}
		}
		if err != nil {
			return fmt.Errorf("change the settings of topic %s: %w", s.Name, err)
		}
	}
	return nil
}

// ElectPreferred gives the leadership of every partition of topic back to
// its preferred replica where that replica is in sync, as
// kafka-leader-election.sh --election-type preferred does: after a broker
// came back, it leads its share again without waiting for Kafka's own
// rebalance (leader.imbalance.check.interval.seconds, 5 minutes). A
// partition already led by it is no error.
func (a *Admin) ElectPreferred(ctx context.Context, topic string) error {
	md, err := a.Metadata(ctx, topic)
	if err != nil {
		return err
	}
	t, ok := md.Topics[topic]
	if !ok || len(t.Partitions) == 0 {
		return fmt.Errorf("elect preferred leaders: no topic %s", topic)
	}
	var ids []int
	for _, p := range t.Partitions {
		ids = append(ids, p.ID)
	}
	res, err := a.client.ElectLeaders(ctx, &kafka.ElectLeadersRequest{Addr: kafka.TCP(md.From), Topic: topic, Partitions: ids, Timeout: 30 * time.Second})
	if err == nil {
		err = res.Error
	}
	if err != nil {
		// The answer waits until the broker asked sees the new leaders,
		// and can outlast the client's timeout when the election itself
		// went through: the metadata says whether it did.
		if werr := a.waitPreferred(ctx, topic, electWait); werr != nil {
			return fmt.Errorf("elect preferred leaders of %s: %w (and %w)", topic, err, werr)
		}
		return nil
	}
	var errs []error
	for _, r := range res.PartitionResults {
		if r.Error != nil && !errors.Is(r.Error, kafka.ElectionNotNeeded) {
			errs = append(errs, fmt.Errorf("partition %d: %w", r.Partition, r.Error))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("elect preferred leaders of %s: %w", topic, errors.Join(errs...))
	}
	return nil
}

// electWait bounds the wait for preferred leaders after an election whose
// answer was lost.
const electWait = 30 * time.Second

// waitPreferred waits until every partition of topic is led by its
// preferred replica.
func (a *Admin) waitPreferred(ctx context.Context, topic string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		md, err := a.Metadata(ctx, topic)
		var off []string
		if err == nil {
			for _, p := range md.Topics[topic].Partitions {
				if p.Leader != p.Preferred {
					off = append(off, fmt.Sprintf("partition %d led by %d, not %d", p.ID, p.Leader, p.Preferred))
				}
			}
			if len(off) == 0 {
				return nil
			}
			err = errors.New(strings.Join(off, ", "))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", wait, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Writer returns a producer to topic that waits for every in-sync replica
// (acks=all), as filebeat does.
func (a *Admin) Writer(topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(a.bootstrap...),
		Topic:        topic,
		Transport:    a.transport,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.Hash{},
		BatchTimeout: 10 * time.Millisecond,
		MaxAttempts:  10,
	}
}

// Dialer is a kafka-go dialer for readers, tunnelled like the rest.
func (a *Admin) Dialer() *kafka.Dialer {
	return &kafka.Dialer{DialFunc: a.dial, Timeout: 10 * time.Second, ClientID: "trafficlab-provision"}
}

// ErrNotFound says Find read the whole partition without the key.
var ErrNotFound = errors.New("no such message")

// Find reads partition p of topic from offset first to its end and returns
// the offset of the first message whose key is key, or ErrNotFound.
func (a *Admin) Find(ctx context.Context, topic string, p int, first int64, key []byte) (int64, error) {
	var errs []error
	var end int64 = -1
	for _, addr := range a.bootstrap {
		conn, err := a.Dialer().DialLeader(ctx, "tcp", addr, topic, p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		end, err = conn.ReadLastOffset()
		conn.Close()
		if err == nil {
			break
		}
		errs = append(errs, err)
	}
	if end < 0 {
		return 0, fmt.Errorf("end of %s/%d: %w", topic, p, errors.Join(errs...))
	}
	if end <= first {
		return 0, ErrNotFound
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: a.bootstrap, Topic: topic, Partition: p, Dialer: a.Dialer(), MaxWait: 500 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return 0, err
	}
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			return 0, fmt.Errorf("read %s/%d: %w", topic, p, err)
		}
		if string(m.Key) == string(key) {
			return m.Offset, nil
		}
		if m.Offset+1 >= end {
			return 0, ErrNotFound
		}
	}
}

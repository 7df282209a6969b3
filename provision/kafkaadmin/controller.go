package kafkaadmin

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ControllerViews asks every bootstrap broker on its own which broker is
// the controller (ZooKeeper mode: the one broker that won the election in
// ZooKeeper). A healthy cluster has exactly one, and every broker names
// it; brokers that do not answer are left out of the map.
func (a *Admin) ControllerViews(ctx context.Context) map[string]int {
	out := map[string]int{}
	for _, addr := range a.bootstrap {
		if m, err := a.metadata(ctx, addr, []string{}); err == nil {
			out[addr] = m.Controller
		}
	}
	return out
}

// At is an Admin for other addresses of the same cluster (the KRaft
// controllers' listener), through the same dialer.
// Requests go to those addresses themselves: controllers answer no
// Metadata request, so nothing can be routed through them.
func (a *Admin) At(bootstrap []string) *Admin { return NewWithControllers(bootstrap, a.dial) }

// NewWithControllers returns an Admin that asks the KRaft controllers at
// the given addresses themselves (Quorum).
func NewWithControllers(addrs []string, dial DialFunc) *Admin {
	b := NewWithBrokers(addrs, dial)
	b.direct = true
	return b
}

// Quorum is the KRaft controller quorum as its leader, the active
// controller, reports it.
type Quorum struct {
	Leader        int // the active controller's node id, -1 when none
	Epoch         int
	HighWatermark int64
	Voters        []QuorumReplica
	Observers     []QuorumReplica // brokers that are not voters
}

// QuorumReplica is one member's place in the metadata log.
type QuorumReplica struct {
	ID           int
	LogEndOffset int64
}

// Lag is how far the replica is behind the quorum's high watermark.
func (q *Quorum) Lag(r QuorumReplica) int64 { return max(0, q.HighWatermark-r.LogEndOffset) }

// metadataTopic is KRaft's metadata log, the one partition of which the
// controllers replicate as the quorum.
const metadataTopic = "__cluster_metadata"

// Quorum describes the KRaft controller quorum (DescribeQuorum, what
// kafka-metadata-quorum.sh describe --status shows). A broker that gets
// the request forwards it to the active controller. kafka-go has no
// DescribeQuorum, so this one request goes through franz-go, over the
// same dialer.
func (a *Admin) Quorum(ctx context.Context) (*Quorum, error) {
	cl, err := a.franz()
	if err != nil {
		return nil, fmt.Errorf("kafka quorum: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = metadataTopic
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	p.Partition = 0
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	if !a.direct {
		res, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("kafka quorum: %w", err)
		}
		return quorumOf(res)
	}
	// Only the active controller describes the quorum: the first that
	// does.
	err = errors.New("kafka quorum: no controller to ask")
	for _, b := range cl.SeedBrokers() {
		r, rerr := b.Request(ctx, req)
		if rerr != nil {
			err = fmt.Errorf("kafka quorum: %w", rerr)
			continue
		}
		q, qerr := quorumOf(r.(*kmsg.DescribeQuorumResponse))
		if qerr == nil {
			return q, nil
		}
		err = qerr
	}
	return nil, err
}

// quorumOf reads a DescribeQuorum answer.
func quorumOf(res *kmsg.DescribeQuorumResponse) (*Quorum, error) {
	if e := kerr.ErrorForCode(res.ErrorCode); e != nil {
		return nil, fmt.Errorf("kafka quorum: %w", e)
	}
	// The metadata log has one partition: the first one answered.
	for _, t := range res.Topics {
		if len(t.Partitions) == 0 {
			continue
		}
		p := t.Partitions[0]
		if e := kerr.ErrorForCode(p.ErrorCode); e != nil {
			return nil, fmt.Errorf("kafka quorum: %s-%d: %w", t.Topic, p.Partition, e)
		}
		q := &Quorum{Leader: int(p.LeaderID), Epoch: int(p.LeaderEpoch), HighWatermark: p.HighWatermark}
		for _, v := range p.CurrentVoters {
			q.Voters = append(q.Voters, QuorumReplica{ID: int(v.ReplicaID), LogEndOffset: v.LogEndOffset})
		}
		for _, o := range p.Observers {
			q.Observers = append(q.Observers, QuorumReplica{ID: int(o.ReplicaID), LogEndOffset: o.LogEndOffset})
		}
		slices.SortFunc(q.Voters, func(a, b QuorumReplica) int { return a.ID - b.ID })
		slices.SortFunc(q.Observers, func(a, b QuorumReplica) int { return a.ID - b.ID })
		return q, nil
	}
	return nil, errors.New("kafka quorum: the answer names no " + metadataTopic + " partition")
}

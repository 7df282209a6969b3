package drill

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
)

// Kafka stops one broker while messages are produced with acks=all and
// consumed; every acknowledged message must be read back, and the
// partitions' leaders move to the other brokers.
var Kafka = Drill{
	Name:    "kafka",
	Summary: "stop a broker while producing (acks=all) and consuming; no acknowledged message may be lost",
	Needs:   inventory.RoleKafka,
	Run:     runKafka,
}

// Kafka drill timings.
var (
	kafkaOutage  = 15 * time.Second // how long the broker stays down
	kafkaTimeout = 5 * time.Minute
)

func runKafka(ctx context.Context, env *Env, res *Result) error {
	inv := env.Inventory
	brokers := inv.HostsWith(inventory.RoleKafka)
	first, err := env.Cluster.Client(ctx, brokers[0].Name)
	if err != nil {
		return err
	}
	caps, err := kafka.ReadCapabilities(ctx, first)
	if err != nil {
		return err
	}
	if reason := caps.SkipReason("the kafka drill"); reason != "" {
		return Skip("%s", strings.TrimPrefix(reason, "the kafka drill is skipped: "))
	}
	spec := kafkaadmin.SpecFrom(inv)
	if len(brokers) < 2 || spec.Replication < 2 {
		return Skip("the topic has replication %d on %d broker(s): a stopped broker takes its partitions with it", spec.Replication, len(brokers))
	}
	a := kafkaadmin.New(inv, env.Cluster.Dial)
	defer a.Close()
	md, err := a.Metadata(ctx, spec.Name)
	if err != nil {
		return err
	}
	t, ok := md.Topics[spec.Name]
	if !ok || len(t.Partitions) == 0 {
		return fmt.Errorf("topic %s is missing: run provision up first", spec.Name)
	}
	if u := md.UnderReplicated(); len(u) > 0 {
		return fmt.Errorf("the cluster is not healthy before the drill: under-replicated %v", u)
	}
	// The victim leads partition 0, so that leadership must move.
	victimID := t.Partitions[0].Leader
	var victim inventory.Host
	for _, h := range brokers {
		if kafka.ID(inv, h) == victimID {
			victim = h
		}
	}
	if victim.Name == "" {
		return fmt.Errorf("partition 0's leader %d is no broker of the inventory", victimID)
	}
	before := leaders(t)
	ends, err := endOffsets(ctx, a, spec.Name, len(t.Partitions))
	if err != nil {
		return err
	}

	env.Restore("start Kafka on "+victim.Name+" and wait for no under-replicated partition", func(ctx context.Context) error {
		if err := env.Systemctl(ctx, victim.Name, "start", kafka.Unit); err != nil {
			return err
		}
		return Poll(ctx, time.Second, kafkaTimeout, func(ctx context.Context) (bool, string) {
			md, err := a.Metadata(ctx)
			if err != nil {
				return false, err.Error()
			}
			if _, ok := md.Broker(victimID); !ok {
				return false, "broker not registered yet"
			}
			u := md.UnderReplicated()
			return len(u) == 0, fmt.Sprintf("under-replicated: %v", u)
		})
	})

	// Produce one message every 20 ms; remember which were acknowledged.
	prefix := "drill-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"
	w := a.Writer(spec.Name)
	w.Async = false
	pctx, stopProducing := context.WithCancel(ctx)
	var mu sync.Mutex
	acked := map[string]bool{}
	failedWrites := 0
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; pctx.Err() == nil; i++ {
			key := prefix + strconv.Itoa(i)
			wctx, cancel := context.WithTimeout(pctx, 30*time.Second)
			err := w.WriteMessages(wctx, kafkago.Message{Key: []byte(key), Value: []byte(key)})
			cancel()
			mu.Lock()
			if err == nil {
				acked[key] = true
			} else if pctx.Err() == nil {
				failedWrites++
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(2 * time.Second)
	env.Logf("stopping broker %d on %s (it leads partition 0)", victimID, victim.Name)
	if err := env.Systemctl(ctx, victim.Name, "stop", kafka.Unit); err != nil {
		stopProducing()
		wg.Wait()
		return err
	}
	time.Sleep(kafkaOutage)
	mdDuring, err := a.Metadata(ctx, spec.Name)
	moved := 0
	if err == nil {
		for p, l := range leaders(mdDuring.Topics[spec.Name]) {
			if before[p] != l {
				moved++
			}
		}
	}
	env.Logf("starting broker %d again", victimID)
	if err := env.Systemctl(ctx, victim.Name, "start", kafka.Unit); err != nil {
		stopProducing()
		wg.Wait()
		return err
	}
	time.Sleep(2 * time.Second)
	stopProducing()
	wg.Wait()
	w.Close()

	// Read back everything produced since the drill began.
	seen, err := readFrom(ctx, a, spec.Name, ends, prefix)
	if err != nil {
		return err
	}
	lost := 0
	for k := range acked {
		if !seen[k] {
			lost++
		}
	}
	res.Figure("acknowledged", float64(len(acked)), "messages", "")
	res.Figure("lost", float64(lost), "messages", "0")
	res.Figure("unacknowledged writes", float64(failedWrites), "", "")
	res.Figure("leader changes", float64(moved), "partitions", "")
	if len(acked) == 0 {
		return errors.New("no message was acknowledged during the drill")
	}
	if lost > 0 {
		return fmt.Errorf("%d of %d acknowledged messages were not read back", lost, len(acked))
	}
	return nil
}

func leaders(t kafkaadmin.Topic) map[int]int {
	out := map[int]int{}
	for _, p := range t.Partitions {
		out[p.ID] = p.Leader
	}
	return out
}

// endOffsets reads each partition's next offset.
func endOffsets(ctx context.Context, a *kafkaadmin.Admin, topic string, n int) (map[int]int64, error) {
	out := map[int]int64{}
	for p := range n {
		conn, err := a.Dialer().DialLeader(ctx, "tcp", a.Brokers()[0], topic, p)
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		off, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		out[p] = off
	}
	return out, nil
}

// readFrom reads every partition from the given offsets to its end and
// returns the keys with prefix.
func readFrom(ctx context.Context, a *kafkaadmin.Admin, topic string, from map[int]int64, prefix string) (map[string]bool, error) {
	seen := map[string]bool{}
	ends, err := endOffsets(ctx, a, topic, len(from))
	if err != nil {
		return nil, err
	}
	for p, start := range from {
		if ends[p] <= start {
			continue
		}
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: a.Brokers(), Topic: topic, Partition: p, Dialer: a.Dialer(), MaxWait: 500 * time.Millisecond})
		if err := r.SetOffset(start); err != nil {
			r.Close()
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		for {
			m, err := r.ReadMessage(rctx)
			if err != nil {
				cancel()
				r.Close()
				return nil, fmt.Errorf("read back partition %d: %w", p, err)
			}
			if k := string(m.Key); len(k) >= len(prefix) && k[:len(prefix)] == prefix {
				seen[k] = true
			}
			if m.Offset+1 >= ends[p] {
				break
			}
		}
		cancel()
		r.Close()
	}
	return seen, nil
}

package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
)

// Kafka shows replication at work while messages are produced with
// acks=all and consumed: the leader of partition 0 stops (another replica
// takes over, the ISR shrinks, nothing acknowledged is lost) and starts
// again (it rejoins the ISR); then two of three brokers stop, so that only
// one replica is left, below min.insync.replicas: acks=all writes must be
// refused, not acknowledged, until the brokers are back.
var Kafka = Drill{
	Name:    "kafka",
	Summary: "stop a partition leader, then two brokers, while producing (acks=all); no acknowledged message may be lost",
	Needs:   inventory.RoleKafka,
	Run:     runKafka,
}

// Kafka drill timings.
var (
	kafkaOutage      = 15 * time.Second // how long the leader stays down
	kafkaRefusedFor  = 5 * time.Second  // how long writes are tried below min.insync
	kafkaTimeout     = 5 * time.Minute
	kafkaPollLeader  = 200 * time.Millisecond
	kafkaPollWatcher = 500 * time.Millisecond
	// kafkaWriteTimeout bounds one try of the drill's producer, and
	// kafkaWriteBound a write with its retries.
	kafkaWriteTimeout = 10 * time.Second
	kafkaWriteBound   = 30 * time.Second
)

func runKafka(ctx context.Context, env *Env, res *Result) error {
	inv := env.Inventory
	brokers := inv.HostsWith(inventory.RoleKafka)
	spec := kafkaadmin.SpecFrom(inv)
	if len(brokers) < 2 || spec.Replication < 2 {
		return Skip("the topic has replication %d on %d broker(s): a stopped broker takes its partitions with it", spec.Replication, len(brokers))
	}
	a, err := kafka.Admin(inv, env.Secrets, env.Cluster.Dial)
	if err != nil {
		return err
	}
	defer a.Close()
	t, err := healthyTopic(ctx, a, spec.Name)
	if err != nil {
		return err
	}
	// The victim leads partition 0, so that leadership must move.
	victimID := t.Partitions[0].Leader
	victim, ok := kafka.HostOf(inv, victimID)
	if !ok {
		return fmt.Errorf("partition 0's leader %d is no broker of the inventory", victimID)
	}
	ends, err := endOffsets(ctx, a, spec.Name, len(t.Partitions))
	if err != nil {
		return err
	}
	env.Logf("leader (领导者): the broker that takes a partition's writes; isr (同步副本, in-sync replicas): the replicas caught up with it. acks=all waits for every replica in the ISR, and min.insync.replicas=%d refuses writes when fewer are in it.", spec.MinInsync)
	watch := watchPartitions(ctx, env, a, spec.Name, t)
	defer watch()

	p := startProducer(ctx, a, spec.Name)
	defer p.stop()
	time.Sleep(2 * time.Second)

	// Step 1: the leader of partition 0 stops and starts again.
	startAndSync := func(h inventory.Host) func(context.Context) error {
		return func(ctx context.Context) error {
			if err := env.Systemctl(ctx, h.Name, "start", kafka.Unit); err != nil {
				return err
			}
			return waitInSync(ctx, a, spec.Name, kafkaTimeout)
		}
	}
	env.Restore("start Kafka on "+victim.Name+" and wait for no under-replicated partition", startAndSync(victim))
	before := leaders(t)
	env.Logf("stopping broker %d on %s (it leads partition 0)", victimID, victim.Name)
	stopped := time.Now()
	if err := env.Systemctl(ctx, victim.Name, "stop", kafka.Unit); err != nil {
		return err
	}
	newLeader, err := waitLeader(ctx, a, spec.Name, 0, func(l int) bool { return l >= 0 && l != victimID })
	if err != nil {
		return fmt.Errorf("partition 0 got no new leader after broker %d stopped: %w", victimID, err)
	}
	toLeader := time.Since(stopped)
	env.Logf("partition 0 is led by broker %d %.2fs after broker %d was told to stop", newLeader, toLeader.Seconds(), victimID)
	moved := 0
	if mdDown, err := a.Metadata(ctx, spec.Name); err == nil {
		for id, l := range leaders(mdDown.Topics[spec.Name]) {
			if before[id] != l {
				moved++
			}
		}
	}
	if rest := kafkaOutage - time.Since(stopped); rest > 0 {
		time.Sleep(rest)
	}
	env.Logf("starting broker %d again", victimID)
	started := time.Now()
	if err := env.Systemctl(ctx, victim.Name, "start", kafka.Unit); err != nil {
		return err
	}
	if err := waitInSync(ctx, a, spec.Name, kafkaTimeout); err != nil {
		return fmt.Errorf("broker %d did not rejoin the ISR: %w%s", victimID, err, brokerLog(ctx, env, victim.Name))
	}
	rejoin := time.Since(started)
	env.Logf("broker %d is back in the ISR of every partition %.2fs after its start", victimID, rejoin.Seconds())
	res.Figure("time to a new leader of partition 0", toLeader.Seconds(), "s", "≤ 10 s")
	res.Figure("leader changes", float64(moved), "partitions", "")
	res.Figure("ISR rejoin after the start", rejoin.Seconds(), "s", "")

	// Step 2: two of three brokers stop, leaving one replica: below
	// min.insync.replicas acks=all must be refused.
	var belowAcked, belowRefused int
	twoDown := len(brokers) >= 3 && spec.Replication >= 3 && spec.MinInsync >= 2
	if twoDown {
		var pair []inventory.Host
		for _, h := range brokers {
			if h.Name != victim.Name && len(pair) < 2 {
				pair = append(pair, h)
			}
		}
		for _, h := range pair {
			env.Restore("start Kafka on "+h.Name+" and wait for no under-replicated partition", startAndSync(h))
		}
		env.Logf("stopping brokers %d and %d: only broker %d keeps a replica", kafka.ID(inv, pair[0]), kafka.ID(inv, pair[1]), victimID)
		var wg sync.WaitGroup
		errs := make([]error, len(pair))
		for i, h := range pair {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = env.Systemctl(ctx, h.Name, "stop", kafka.Unit) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if err := waitISR(ctx, a, spec.Name, func(isr []int) bool { return len(isr) < spec.MinInsync }); err != nil {
			return fmt.Errorf("with two brokers stopped the ISR did not shrink below min.insync.replicas: %w", err)
		}
		p.mark() // from here on, below min.insync.replicas
		below := time.Now()
		// At least kafkaRefusedFor, and until a write has been answered: one
		// sent to a broker as it stopped can hang for the writer's timeout.
		time.Sleep(kafkaRefusedFor)
		phase := p.markAnswered(ctx, kafkaWriteBound)
		belowAcked, belowRefused = phase.acked, phase.refused
		env.Logf("below min.insync.replicas for %.1fs: %d writes refused (%s), %d acknowledged", time.Since(below).Seconds(), phase.refused, phase.lastErr, phase.acked)
		started := time.Now()
		for i, h := range pair {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = env.Systemctl(ctx, h.Name, "start", kafka.Unit) }()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if err := waitInSync(ctx, a, spec.Name, kafkaTimeout); err != nil {
			return fmt.Errorf("the two brokers did not rejoin the ISR: %w", err)
		}
		env.Logf("both brokers back in the ISR %.2fs after their start", time.Since(started).Seconds())
		res.Figure("two brokers down: acks=all writes refused", float64(belowRefused), "", "> 0")
		res.Figure("two brokers down: writes acknowledged below min.insync", float64(belowAcked), "", "0")
		res.Figure("two brokers down: ISR rejoin", time.Since(started).Seconds(), "s", "")
	}
	time.Sleep(2 * time.Second)
	acked, failed := p.stop()

	// Everything acknowledged is in the log: read it back.
	seen, err := readFrom(ctx, a, spec.Name, ends, p.prefix)
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
	res.Figure("unacknowledged writes", float64(failed), "", "")
	switch {
	case len(acked) == 0:
		return errors.New("no message was acknowledged during the drill")
	case lost > 0:
		return fmt.Errorf("%d of %d acknowledged messages were not read back", lost, len(acked))
	case toLeader > 10*time.Second:
		return fmt.Errorf("partition 0 took %.1fs to get a new leader (target 10 s)", toLeader.Seconds())
	case belowAcked > 0:
		return fmt.Errorf("%d acks=all writes were acknowledged with fewer than min.insync.replicas=%d replicas in sync", belowAcked, spec.MinInsync)
	case twoDown && belowRefused == 0:
		return errors.New("no write was tried while two brokers were down")
	}
	return nil
}

// producer writes one message with acks=all every 20 ms and remembers
// which were acknowledged, and per phase how many were refused and why.
type producer struct {
	prefix string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	acked   map[string]bool
	failed  int
	phase   phaseCount
	lastAck time.Time
	stall   time.Duration // the longest time without an acknowledgement
}

type phaseCount struct {
	acked, refused int
	lastErr        string
}

// healthyTopic is the drill's topic as the cluster has it before a drill:
// there, and no partition of the cluster under-replicated (a drill on a
// broken cluster proves nothing).
func healthyTopic(ctx context.Context, a *kafkaadmin.Admin, topic string) (kafkaadmin.Topic, error) {
	md, err := a.Metadata(ctx, topic)
	if err != nil {
		return kafkaadmin.Topic{}, err
	}
	t, ok := md.Topics[topic]
	if !ok || len(t.Partitions) == 0 {
		return kafkaadmin.Topic{}, fmt.Errorf("topic %s is missing: run provision up first", topic)
	}
	if u := md.UnderReplicated(); len(u) > 0 {
		return kafkaadmin.Topic{}, fmt.Errorf("the cluster is not healthy before the drill: under-replicated %v", u)
	}
	return t, nil
}

func startProducer(ctx context.Context, a *kafkaadmin.Admin, topic string) *producer {
	pctx, cancel := context.WithCancel(ctx)
	p := &producer{prefix: "drill-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-", cancel: cancel, done: make(chan struct{}), acked: map[string]bool{}, lastAck: time.Now()}
	w := a.Writer(topic)
	w.Async = false
	w.BatchSize = 1
	// A refusal must come back as one, not retried for long.
	w.MaxAttempts = 3
	w.WriteTimeout = kafkaWriteTimeout
	go func() {
		defer close(p.done)
		defer w.Close()
		for i := 0; pctx.Err() == nil; i++ {
			key := p.prefix + strconv.Itoa(i)
			wctx, cancel := context.WithTimeout(pctx, kafkaWriteBound)
			err := w.WriteMessages(wctx, kafkago.Message{Key: []byte(key), Value: []byte(key)})
			cancel()
			p.mu.Lock()
			switch {
			case err == nil:
				p.acked[key] = true
				p.phase.acked++
				now := time.Now()
				p.stall = max(p.stall, now.Sub(p.lastAck))
				p.lastAck = now
			case pctx.Err() == nil:
				p.failed++
				p.phase.refused++
				p.phase.lastErr = writeError(err)
			}
			p.mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return p
}

// mark starts a new phase and returns the counts of the one that ended.
func (p *producer) mark() phaseCount {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.phase
	p.phase = phaseCount{}
	return c
}

// markAnswered waits, at most wait, until a write of the current phase
// has been acknowledged or refused, then starts a new phase and returns
// the counts of the one that ended.
func (p *producer) markAnswered(ctx context.Context, wait time.Duration) phaseCount {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		p.mu.Lock()
		answered := p.phase.acked+p.phase.refused > 0
		p.mu.Unlock()
		if answered {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return p.mark()
}

// stop ends production (once) and returns what was acknowledged and how
// many writes were not.
func (p *producer) stop() (map[string]bool, int) {
	p.cancel()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked, p.failed
}

// longestStall is the longest time production went without an
// acknowledgement.
func (p *producer) longestStall() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stall
}

// writeError names a producer error, the Kafka error inside kafka-go's
// per-message wrapper when there is one.
func writeError(err error) string {
	var we kafkago.WriteErrors
	if errors.As(err, &we) {
		for _, e := range we {
			if e != nil {
				err = e
				break
			}
		}
	}
	var ke kafkago.Error
	if errors.As(err, &ke) {
		return ke.Title()
	}
	return err.Error()
}

// watchPartitions logs every change of a partition's leader or ISR until
// the returned function is called: the lesson of the drill, as it
// happens.
func watchPartitions(ctx context.Context, env *Env, a *kafkaadmin.Admin, topic string, t kafkaadmin.Topic) func() {
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	last := map[int]kafkaadmin.Partition{}
	for _, p := range t.Partitions {
		last[p.ID] = p
		env.Logf("partition %d: leader %d, isr %v", p.ID, p.Leader, p.ISR)
	}
	go func() {
		defer close(done)
		for wctx.Err() == nil {
			select {
			case <-wctx.Done():
				return
			case <-time.After(kafkaPollWatcher):
			}
			md, err := a.Metadata(wctx, topic)
			if err != nil {
				continue
			}
			for _, p := range md.Topics[topic].Partitions {
				old := last[p.ID]
				if old.Leader == p.Leader && slices.Equal(old.ISR, p.ISR) {
					continue
				}
				what := ""
				switch {
				case len(p.ISR) < len(old.ISR):
					what = " (ISR shrinks 同步副本减少)"
				case len(p.ISR) > len(old.ISR):
					what = " (ISR grows 同步副本恢复)"
				case old.Leader != p.Leader:
					what = " (new leader 领导者切换)"
				}
				if old.Leader == p.Leader {
					env.Logf("partition %d: leader %d, isr %v → %v%s", p.ID, p.Leader, old.ISR, p.ISR, what)
				} else {
					env.Logf("partition %d: leader %d → %d, isr %v → %v%s", p.ID, old.Leader, p.Leader, old.ISR, p.ISR, what)
				}
				last[p.ID] = p
			}
		}
	}()
	return func() { cancel(); <-done }
}

// waitLeader polls until partition p's leader satisfies ok.
func waitLeader(ctx context.Context, a *kafkaadmin.Admin, topic string, p int, ok func(int) bool) (int, error) {
	leader := -1
	err := Poll(ctx, kafkaPollLeader, time.Minute, func(ctx context.Context) (bool, string) {
		md, err := a.Metadata(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		for _, part := range md.Topics[topic].Partitions {
			if part.ID == p {
				leader = part.Leader
				return ok(leader), fmt.Sprintf("leader %d", leader)
			}
		}
		return false, "no partition " + strconv.Itoa(p)
	})
	return leader, err
}

// waitISR polls until every partition's ISR satisfies ok.
func waitISR(ctx context.Context, a *kafkaadmin.Admin, topic string, ok func([]int) bool) error {
	return Poll(ctx, kafkaPollLeader, time.Minute, func(ctx context.Context) (bool, string) {
		md, err := a.Metadata(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		for _, part := range md.Topics[topic].Partitions {
			if !ok(part.ISR) {
				return false, fmt.Sprintf("partition %d isr %v", part.ID, part.ISR)
			}
		}
		return true, ""
	})
}

// waitInSync polls until every broker is registered and no partition is
// under-replicated.
func waitInSync(ctx context.Context, a *kafkaadmin.Admin, topic string, timeout time.Duration) error {
	return Poll(ctx, time.Second, timeout, func(ctx context.Context) (bool, string) {
		md, err := a.Metadata(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		u := md.UnderReplicated()
		return len(u) == 0, fmt.Sprintf("under-replicated: %v", u)
	})
}

// brokerLog is the end of the broker's log on host, for an error ("" when
// the host cannot be reached).
func brokerLog(ctx context.Context, env *Env, host string) string {
	c, err := env.Cluster.Client(ctx, host)
	if err != nil {
		return ""
	}
	return kafka.LastLogLines(ctx, c)
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
		var errs []error
		for _, addr := range a.Brokers() {
			conn, err := a.Dialer().DialLeader(ctx, "tcp", addr, topic, p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			off, err := conn.ReadLastOffset()
			conn.Close()
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out[p] = off
			break
		}
		if _, ok := out[p]; !ok {
			return nil, fmt.Errorf("partition %d: %w", p, errors.Join(errs...))
		}
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

package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/store"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/verify"
)

// Upgrade applies the inventories of Env.Via in turn with provision up
// (ZooKeeper → migrating → kraft → ZooKeeper taken off → Kafka 4, or any
// path the phase checks allow) while the cluster carries traffic: a
// producer writes with acks=all, and signed probes go through the VIP,
// nginx, filebeat, Kafka and the consumer into MySQL. Afterwards every
// acknowledged message must be read back and every probe the site
// answered must be counted in MySQL exactly once. Nothing is undone: the
// cluster stays where the last inventory put it.
var Upgrade = Drill{
	Name:     "upgrade",
	Summary:  "apply inventories in turn with up while producing (acks=all) and probing through the VIP; nothing acknowledged lost, every probe in MySQL exactly once",
	Needs:    inventory.RoleKafka,
	Explicit: true,
	Run:      runUpgrade,
}

// Upgrade drill timings.
var (
	probeEvery = 100 * time.Millisecond
	// probeSettle bounds the wait for the last probes to reach MySQL.
	probeSettle = 3 * time.Minute
)

// skippedCopies adds up the copies of filebeat events the running
// consumers skipped (consumer.MetricDuplicates).
func skippedCopies(ctx context.Context, env *Env) float64 {
	var n float64
	for _, h := range env.Inventory.HostsWith(inventory.RoleConsumer) {
		m, err := health.Metrics(ctx, env.Cluster, h.Name, consumer.MetricsListen, consumer.MetricDuplicates)
		if err != nil {
			env.Logf("%s: consumer metrics: %v", h.Name, err)
			continue
		}
		v, _ := m.Sum(consumer.MetricDuplicates)
		n += v
	}
	return n
}

func runUpgrade(ctx context.Context, env *Env, res *Result) error {
	inv := env.Inventory
	switch {
	case len(env.Via) == 0:
		return errors.New("drill upgrade needs the inventories to go through, in order: --via FILE (repeated)")
	case env.UpWith == nil:
		return errors.New("drill upgrade needs a way to run up (provision drill gives it one)")
	}
	spec := kafkaadmin.SpecFrom(inv)
	a, err := kafka.Admin(inv, env.Secrets, env.Cluster.Dial)
	if err != nil {
		return err
	}
	defer a.Close()
	t, err := healthyTopic(ctx, a, spec.Name)
	if err != nil {
		return err
	}
	ends, err := endOffsets(ctx, a, spec.Name, len(t.Partitions))
	if err != nil {
		return err
	}

	var pr *prober
	if len(inv.HostsWith(inventory.RoleLB)) > 0 && len(inv.HostsWith(inventory.RoleConsumer)) > 0 {
		st, _, err := verify.DialStore(ctx, inv, env.Cluster, env.Secrets)
		if err != nil {
			return err
		}
		defer st.Close()
		pr = startProber(ctx, env, st)
		defer pr.stop()
	} else {
		env.Logf("no load balancer or no consumer: no probes through the VIP, only the producer")
	}
	p := startProducer(ctx, a, spec.Name)
	defer p.stop()
	time.Sleep(2 * time.Second)

	var upErr error
	for i, file := range env.Via {
		phase := fmt.Sprintf("phase %d of %d (%s)", i+1, len(env.Via), filepath.Base(file))
		env.Logf("%s: provision up -i %s", phase, file)
		start := time.Now()
		next, err := env.UpWith(ctx, file)
		took := time.Since(start)
		if err != nil {
			upErr = fmt.Errorf("%s: provision up -i %s: %w", phase, file, err)
			break
		}
		env.Logf("%s: Kafka %s, kafka.mode %s, done in %.1fs; producer: %d acknowledged so far", phase, next.Kafka.Version, next.Kafka.Mode, took.Seconds(), p.mark().acked)
		res.Figure(fmt.Sprintf("%s: Kafka %s %s", phase, next.Kafka.Version, next.Kafka.Mode), took.Seconds(), "s", "")
	}
	time.Sleep(2 * time.Second) // writes to the cluster as it ends
	acked, failed := p.stop()
	stall := p.longestStall()
	seen, err := readFrom(ctx, a, spec.Name, ends, p.prefix)
	if err != nil {
		return errors.Join(upErr, err)
	}
	missing := 0
	for k := range acked {
		if !seen[k] {
			missing++
		}
	}
	res.Figure("acknowledged", float64(len(acked)), "messages", "")
	res.Figure("lost", float64(missing), "messages", "0")
	res.Figure("unacknowledged writes", float64(failed), "", "")
	res.Figure("longest produce stall", stall.Seconds(), "s", "")
	var probeErr error
	if pr != nil {
		pr.stop()
		c := pr.check(ctx, probeSettle)
		res.Figure("probes answered through the VIP", float64(c.answered), "", "")
		res.Figure("probes not answered", float64(c.refused), "", "")
		res.Figure("probes missing in MySQL", float64(c.lost), "", "0")
		res.Figure("probes counted twice", float64(c.twice), "", "0")
		res.Figure("copies filebeat resent, skipped by the consumers (since they last started)", skippedCopies(ctx, env), "", "")
		res.Figure("longest pause of the probes' path (VIP to MySQL)", c.pause.Seconds(), "s", "")
		switch {
		case c.err != nil:
			probeErr = c.err
		case c.answered == 0:
			probeErr = errors.New("no probe was answered through the VIP during the drill")
		case c.lost > 0 || c.twice > 0:
			probeErr = fmt.Errorf("of %d probes answered, %d are missing in MySQL and %d counted more than once", c.answered, c.lost, c.twice)
		}
	}
	switch {
	case upErr != nil:
		return upErr
	case len(acked) == 0:
		return errors.New("no message was acknowledged during the drill")
	case missing > 0:
		return fmt.Errorf("%d of %d acknowledged messages were not read back", missing, len(acked))
	}
	return probeErr
}

// prober sends a signed probe with an id of its own through the VIP every
// probeEvery, and watches how the probes arrive in MySQL.
type prober struct {
	env    *Env
	st     *store.Store
	prefix string
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	answered []string // ids the site answered 200 for
	refused  int
	pause    time.Duration // the longest time MySQL got no new probe while one was due
}

func startProber(ctx context.Context, env *Env, st *store.Store) *prober {
	run := make([]byte, 4)
	rand.Read(run)
	ctx, cancel := context.WithCancel(ctx)
	pr := &prober{env: env, st: st, prefix: "u" + hex.EncodeToString(run) + "-", cancel: cancel, done: make(chan struct{})}
	inv := env.Inventory
	client := health.HTTPClient(env.Cluster.Dial, 10*time.Second)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("%s%d", pr.prefix, i)
			code, _, err := health.Get(ctx, client, inv.LB.VIPURL(agg.ProbePrefix+agg.SignProbe([]byte(env.Secrets.ProbeKey), id)), inv.Cluster.Domain)
			if ctx.Err() != nil {
				return // cut short by stop: neither answered nor refused
			}
			pr.mu.Lock()
			if err == nil && code == http.StatusOK {
				pr.answered = append(pr.answered, id)
			} else {
				pr.refused++
			}
			pr.mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		pr.watch(ctx)
	}()
	go func() { wg.Wait(); close(pr.done) }()
	return pr
}

// watch measures the longest time the probes' count in MySQL did not grow
// while the site had answered probes MySQL did not have yet.
func (pr *prober) watch(ctx context.Context) {
	var last int
	since := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		n, err := pr.count(ctx)
		if err != nil {
			continue // MySQL or the tunnel away: the pause goes on
		}
		pr.mu.Lock()
		due := len(pr.answered)
		switch {
		case n > last || n >= due:
			since = time.Now()
		default:
			pr.pause = max(pr.pause, time.Since(since))
		}
		pr.mu.Unlock()
		last = max(last, n)
	}
}

// count is how many of the drill's probes MySQL has.
func (pr *prober) count(ctx context.Context) (int, error) {
	var n int
	err := pr.st.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM probes WHERE probe_id LIKE ?`, pr.prefix+"%").Scan(&n)
	return n, err
}

func (pr *prober) stop() {
	pr.once.Do(func() { pr.cancel(); <-pr.done })
}

// probeCheck is how the probes ended up in MySQL.
type probeCheck struct {
	answered, refused int
	lost, twice       int
	pause             time.Duration
	err               error
}

// check waits, at most settle, until MySQL counts every answered probe
// once. A probe the site did not answer may or may not be in MySQL (nginx
// may have logged it): it is neither lost nor counted twice if it is
// there once.
func (pr *prober) check(ctx context.Context, settle time.Duration) probeCheck {
	pr.mu.Lock()
	answered := append([]string(nil), pr.answered...)
	c := probeCheck{answered: len(answered), refused: pr.refused, pause: pr.pause}
	pr.mu.Unlock()
	want := map[string]bool{}
	for _, id := range answered {
		want[id] = true
	}
	c.err = Poll(ctx, time.Second, settle, func(ctx context.Context) (bool, string) {
		rows, err := pr.st.DB().QueryContext(ctx, `SELECT probe_id, request_count FROM probes WHERE probe_id LIKE ?`, pr.prefix+"%")
		if err != nil {
			return false, err.Error()
		}
		defer rows.Close()
		got := 0
		c.twice = 0
		for rows.Next() {
			var id string
			var n int
			if err := rows.Scan(&id, &n); err != nil {
				return false, err.Error()
			}
			if n > 1 {
				c.twice += n - 1
			}
			if want[id] {
				got++
			}
		}
		if err := rows.Err(); err != nil {
			return false, err.Error()
		}
		c.lost = len(want) - got
		if c.twice > 0 {
			return true, "" // a probe counted twice never goes away
		}
		return c.lost == 0, fmt.Sprintf("%d of %d answered probes in MySQL", got, len(want))
	})
	if c.err != nil && c.lost > 0 {
		c.err = nil // reported as lost probes
	}
	return c
}

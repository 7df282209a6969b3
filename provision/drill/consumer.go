package drill

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/alert"
	"github.com/trafficlab/trafficlab/consumer/store"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	mysqlrole "github.com/trafficlab/trafficlab/provision/role/mysql"
	"github.com/trafficlab/trafficlab/provision/rolekit/goservice"
	"github.com/trafficlab/trafficlab/provision/verify"
)

// Consumer breaks the consumers and their database under load and checks
// that MySQL ends with exactly the lines produced, none lost, none counted
// twice: SIGKILLs that systemd answers with a restart (each consumer in
// turn); with several consumers, one SIGKILLed and kept down — the others
// must take its partitions over, the alert evaluator's lease must move,
// and started again it must take its share back; and MySQL stopped for
// 30 s.
var Consumer = Drill{
	Name:    "consumer",
	Summary: "SIGKILL consumers under load (one kept down while the group rebalances), stop MySQL 30 s; the totals in MySQL must be exact",
	Needs:   inventory.RoleConsumer,
	Run:     runConsumer,
}

// Consumer drill sizes.
var (
	consumerProbes   = 5    // probe ids, each counted exactly in the probes table
	consumerPerProbe = 4000 // lines per probe id in the kill rounds
	consumerKills    = 3
	consumerSettle   = 3 * time.Minute
	// streamRate is the steady load (lines/s) while a consumer is down
	// and while MySQL is.
	streamRate = 500
	// mysqlDown is how long MySQL stays stopped.
	mysqlDown = 30 * time.Second
	// leaseWait bounds the wait for the alert evaluator's lease to move:
	// its holder renews it every minute for three.
	leaseWait = 5 * time.Minute
)

// consumerDrill is the state the drill's phases share.
type consumerDrill struct {
	env     *Env
	res     *Result
	st      *store.Store
	w       *kafkago.Writer
	hosts   []string // the consumer hosts
	unit    string
	topic   string
	backend string
	ledger  *ledger
}

func runConsumer(ctx context.Context, env *Env, res *Result) error {
	inv := env.Inventory
	d := &consumerDrill{env: env, res: res, unit: consumer.Service.Unit(), topic: kafkaadmin.SpecFrom(inv).Name}
	for _, h := range inv.HostsWith(inventory.RoleConsumer) {
		d.hosts = append(d.hosts, h.Name)
	}
	d.backend = d.hosts[0]
	if webs := inv.HostsWith(inventory.RoleWeb); len(webs) > 0 {
		d.backend = webs[0].Name
	}
	for _, h := range d.hosts {
		if err := env.Systemctl(ctx, h, "is-active --quiet", d.unit); err != nil {
			return fmt.Errorf("the consumer is not running on %s before the drill: %w", h, err)
		}
	}
	st, _, err := verify.DialStore(ctx, inv, env.Cluster, env.Secrets)
	if err != nil {
		return err
	}
	defer st.Close()
	d.st = st
	for _, h := range d.hosts {
		env.Restore("make sure "+d.unit+" runs on "+h, func(ctx context.Context) error {
			return env.Systemctl(ctx, h, "start", d.unit)
		})
	}
	a, err := kafka.Admin(inv, env.Secrets, env.Cluster.Dial)
	if err != nil {
		return err
	}
	defer a.Close()
	d.w = a.Writer(d.topic)
	d.w.BatchSize = 500
	defer d.w.Close()
	d.ledger = newLedger(env.Secrets.ProbeKey, d.backend)

	err = d.kills(ctx)
	if err == nil && len(d.hosts) > 1 {
		err = d.failover(ctx)
	}
	if err == nil {
		err = d.mysqlOutage(ctx)
	}
	// Whatever failed, say how the totals stand.
	lost, twice, werr := d.exact(ctx, consumerSettle)
	res.Figure("lines", float64(d.ledger.total()), "", "")
	res.Figure("lines lost", float64(lost), "", "0")
	res.Figure("lines counted twice", float64(twice), "", "0")
	if err != nil {
		return err
	}
	return werr
}

// kills SIGKILLs the consumers in turn while they work through a load of
// lines, each time waiting for systemd to have restarted the one killed.
func (d *consumerDrill) kills(ctx context.Context) error {
	env := d.env
	restartsBefore := d.restarts(ctx)
	total := consumerProbes * consumerPerProbe
	env.Logf("producing %d lines and SIGKILLing a consumer %d times meanwhile (%d consumers: %s)", total, consumerKills, len(d.hosts), strings.Join(d.hosts, ", "))
	// Produce in consumerKills+1 parts; after each but the last, kill a
	// consumer while it works through the lines, and wait for systemd to
	// have restarted it before the next part.
	part := total / (consumerKills + 1)
	start := time.Now()
	var lastKill time.Time
	for k := 0; k <= consumerKills; k++ {
		n := part
		if k == consumerKills {
			n = total - k*part
		}
		if err := d.ledger.produce(ctx, d.w, n); err != nil {
			return err
		}
		if k == consumerKills {
			break
		}
		host := d.hosts[k%len(d.hosts)]
		pid, err := mainPID(ctx, env, host, d.unit)
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond) // in the middle of its work
		env.Logf("SIGKILL %s (pid %d) on %s after %d lines (%d of %d)", d.unit, pid, host, d.ledger.total(), k+1, consumerKills)
		// The main process only (the consumer has no other): where the
		// unit's cgroup cannot be read (cgroup v1 inside a container)
		// systemctl kill fails to list the rest after killing it.
		if err := env.Systemctl(ctx, host, "kill --kill-whom=main --signal=SIGKILL", d.unit); err != nil {
			return err
		}
		lastKill = time.Now()
		if err := Poll(ctx, 200*time.Millisecond, time.Minute, func(ctx context.Context) (bool, string) {
			p, err := mainPID(ctx, env, host, d.unit)
			return err == nil && p != 0 && p != pid, fmt.Sprintf("pid %d (%v)", p, err)
		}); err != nil {
			return fmt.Errorf("systemd did not restart the consumer on %s: %w", host, err)
		}
	}
	env.Logf("%d lines produced in %.1fs; waiting for the totals", total, time.Since(start).Seconds())
	_, _, err := d.exact(ctx, consumerSettle)
	d.res.Figure("kills", float64(consumerKills), "", "")
	d.res.Figure("restarts by systemd", float64(d.restarts(ctx)-restartsBefore), "", "")
	d.res.Figure("exact totals after the last kill", round2(time.Since(lastKill).Seconds()), "s", "")
	if err != nil {
		return fmt.Errorf("after the kills: %w", err)
	}
	if n := d.restarts(ctx) - restartsBefore; n < consumerKills {
		return fmt.Errorf("systemd restarted the consumers %d times after %d kills", n, consumerKills)
	}
	return nil
}

// failover SIGKILLs one consumer — the alert evaluator's holder when a
// consumer host holds it — and keeps it down under a steady load: the
// others must consume its partitions again within the session timeout
// and a rebalance, and one of them must take the evaluator's lease when
// it expires. Started again, the consumer must take partitions back.
func (d *consumerDrill) failover(ctx context.Context) error {
	env := d.env
	// Wait for a settled group: each partition held by one consumer.
	var held map[string][]string
	if err := Poll(ctx, time.Second, 2*time.Minute, func(ctx context.Context) (bool, string) {
		var why string
		held, why = d.assignment(ctx)
		return why == "", fmt.Sprintf("%v %s", held, why)
	}); err != nil {
		return fmt.Errorf("the group did not settle before the failover: %w", err)
	}
	// The victim holds partitions (with more consumers than partitions,
	// some hold none), and the lease when its holder does.
	holder, _ := leaseHolder(ctx, d.st)
	victim, holds := "", false
	for _, h := range d.hosts {
		if len(held[h]) == 0 {
			continue
		}
		if holderHost(holder) == h {
			victim, holds = h, true
			break
		}
		victim = h
	}
	parts := held[victim]
	stream := d.ledger.stream(ctx, d.w, streamRate)
	defer stream.stop()
	time.Sleep(2 * time.Second) // lines flowing to every partition

	what := "partitions " + strings.Join(parts, ",")
	if holds {
		what += " and the alert evaluator's lease"
	}
	env.Logf("SIGKILL %s on %s and keep it down (it holds %s)", d.unit, victim, what)
	if _, err := env.Cluster.Run(ctx, victim, "systemctl kill --kill-whom=main --signal=SIGKILL "+d.unit+" && systemctl stop "+d.unit, remote.WithTimeout(time.Minute)); err != nil {
		return fmt.Errorf("%s: kill and stop %s: %w", victim, d.unit, err)
	}
	killed := time.Now()
	before, err := d.st.Offsets(ctx, goservice.ConsumerGroup, d.topic)
	if err != nil {
		return err
	}
	// Consumed again: a survivor holds each of the victim's partitions and
	// MySQL's offset of it has moved past where the victim left it.
	if err := Poll(ctx, 200*time.Millisecond, 2*time.Minute, func(ctx context.Context) (bool, string) {
		held, _ := d.assignment(ctx)
		now, err := d.st.Offsets(ctx, goservice.ConsumerGroup, d.topic)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range parts {
			n, _ := strconv.Atoi(p)
			if holderOf(held, p, victim) == "" || now[int32(n)] <= before[int32(n)] {
				return false, fmt.Sprintf("partition %s: held %v, offset %d (was %d)", p, held, now[int32(n)], before[int32(n)])
			}
		}
		return true, ""
	}); err != nil {
		return fmt.Errorf("the other consumers did not take %s's partitions over: %w", victim, err)
	}
	rebalance := time.Since(killed)
	held, _ = d.assignment(ctx)
	var to []string
	for _, p := range parts {
		to = append(to, p+"→"+holderOf(held, p, victim))
	}
	env.Logf("partitions %s consumed again %.1fs after the kill", strings.Join(to, " "), rebalance.Seconds())
	d.res.Figure("partitions of the killed consumer consumed again after", round2(rebalance.Seconds()), "s", "≤ 15 s")

	if holds {
		var now string
		if err := Poll(ctx, 2*time.Second, leaseWait, func(ctx context.Context) (bool, string) {
			now, _ = leaseHolder(ctx, d.st)
			h := holderHost(now)
			return h != "" && h != victim, "held by " + now
		}); err != nil {
			return fmt.Errorf("the alert evaluator's lease did not move from %s: %w", victim, err)
		}
		env.Logf("alert evaluator: lease of %s taken by %s %.0fs after the kill", holder, now, time.Since(killed).Seconds())
		d.res.Figure("alert evaluator taken over after", round2(time.Since(killed).Seconds()), "s", "≤ 4 min")
	}

	if err := env.Systemctl(ctx, victim, "start", d.unit); err != nil {
		return err
	}
	started := time.Now()
	if err := Poll(ctx, 200*time.Millisecond, 2*time.Minute, func(ctx context.Context) (bool, string) {
		held, why := d.assignment(ctx)
		return why == "" && len(held[victim]) > 0, fmt.Sprintf("%v %s", held, why)
	}); err != nil {
		return fmt.Errorf("%s did not take partitions back: %w", victim, err)
	}
	held, _ = d.assignment(ctx)
	env.Logf("%s rejoined and holds partitions %s %.1fs after its start", victim, strings.Join(held[victim], ","), time.Since(started).Seconds())
	d.res.Figure("restarted consumer holds partitions again after", round2(time.Since(started).Seconds()), "s", "")
	return stream.stop()
}

// mysqlOutage stops the database for mysqlDown under a steady load; the
// consumers retry their commits and, once it is back, the totals must be
// exact.
func (d *consumerDrill) mysqlOutage(ctx context.Context) error {
	env := d.env
	dbs := env.Inventory.HostsWith(inventory.RoleMySQL)
	if len(dbs) == 0 {
		return nil
	}
	db := dbs[0].Name
	c, err := env.Cluster.Client(ctx, db)
	if err != nil {
		return err
	}
	hostOS, err := facts.Detect(ctx, c)
	if err != nil {
		return fmt.Errorf("%s: %w", db, err)
	}
	srv := mysqlrole.ServerOf(hostOS)
	env.Restore("make sure "+srv.Unit+" runs on "+db, func(ctx context.Context) error {
		return env.Systemctl(ctx, db, "start", srv.Unit)
	})
	restartsBefore := d.restarts(ctx)
	stream := d.ledger.stream(ctx, d.w, streamRate)
	defer stream.stop()
	time.Sleep(2 * time.Second)
	env.Logf("stop %s on %s for %v under load", srv.Name, db, mysqlDown)
	if err := env.Systemctl(ctx, db, "stop", srv.Unit); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(mysqlDown):
	}
	if err := env.Systemctl(ctx, db, "start", srv.Unit); err != nil {
		return err
	}
	back := time.Now()
	time.Sleep(2 * time.Second) // lines on top of the backlog
	if err := stream.stop(); err != nil {
		return err
	}
	d.res.Figure("MySQL stopped", mysqlDown.Seconds(), "s", "")
	_, _, err = d.exact(ctx, consumerSettle)
	d.res.Figure("exact totals after MySQL came back", round2(time.Since(back).Seconds()), "s", "")
	d.res.Figure("consumer restarts during the MySQL outage", float64(d.restarts(ctx)-restartsBefore), "", "")
	if err != nil {
		return fmt.Errorf("after the MySQL outage: %w", err)
	}
	return nil
}

// exact waits until MySQL counts every line the ledger produced. It
// returns what is missing and what is counted too often when it gives up
// (a line counted twice never goes away: it stops at once).
func (d *consumerDrill) exact(ctx context.Context, timeout time.Duration) (lost, twice uint64, err error) {
	want := d.ledger.counts()
	err = Poll(ctx, time.Second, timeout, func(ctx context.Context) (bool, string) {
		lost, twice = 0, 0
		got := map[string]uint64{}
		for id, n := range want {
			p, ok, err := d.st.Probe(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			if ok {
				got[id] = p.Count
			}
			switch {
			case got[id] < n:
				lost += n - got[id]
			case got[id] > n:
				twice += got[id] - n
			}
		}
		if twice > 0 {
			return true, ""
		}
		return lost == 0, fmt.Sprintf("counted %v of %v", got, want)
	})
	if err == nil && twice > 0 {
		err = fmt.Errorf("%d lines counted twice", twice)
	}
	return lost, twice, err
}

// assignment reads which partitions each running consumer holds (from
// its metrics); why is not empty while a partition is held by none or
// by two.
func (d *consumerDrill) assignment(ctx context.Context) (held map[string][]string, why string) {
	held = map[string][]string{}
	owner := map[string]string{}
	for _, h := range d.hosts {
		m, err := health.Metrics(ctx, d.env.Cluster, h, consumer.MetricsListen, consumer.MetricLag)
		if err != nil {
			continue // not running
		}
		for _, p := range m.Labels(consumer.MetricLag, "partition") {
			if o, ok := owner[p]; ok {
				why = fmt.Sprintf("partition %s shown by %s and %s", p, o, h)
			}
			owner[p] = h
			held[h] = append(held[h], p)
		}
	}
	if why == "" && len(owner) == 0 {
		why = "no partition held"
	}
	return held, why
}

// holderOf is the host other than not that holds partition p.
func holderOf(held map[string][]string, p, not string) string {
	for h, ps := range held {
		if h != not && slices.Contains(ps, p) {
			return h
		}
	}
	return ""
}

// restarts sums how often systemd restarted the consumers.
func (d *consumerDrill) restarts(ctx context.Context) int {
	n := 0
	for _, h := range d.hosts {
		r, _ := nRestarts(ctx, d.env, h, d.unit)
		n += r
	}
	return n
}

// leaseHolder reads who holds the alert evaluator's lease ("" when no one
// holds an unexpired one).
func leaseHolder(ctx context.Context, st *store.Store) (string, error) {
	var h string
	err := st.DB().QueryRowContext(ctx, `SELECT holder FROM alert_lease WHERE name = ? AND expires_at > UTC_TIMESTAMP()`, alert.LeaseName).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return h, err
}

// holderHost is the host part of a lease holder ("kafka-2/812" or
// "kafka-2.example.org/812").
func holderHost(holder string) string {
	h, _, _ := strings.Cut(holder, "/")
	h, _, _ = strings.Cut(h, ".")
	return h
}

// ledger produces the drill's probe lines and counts them per probe id as
// Kafka acknowledged them.
type ledger struct {
	key, backend string
	ids          []string
	mu           sync.Mutex
	want         map[string]uint64
	n            int
}

func newLedger(key, backend string) *ledger {
	run := make([]byte, 4)
	rand.Read(run)
	l := &ledger{key: key, backend: backend, want: map[string]uint64{}}
	for i := range consumerProbes {
		l.ids = append(l.ids, fmt.Sprintf("dc%s-%d", hex.EncodeToString(run), i))
	}
	return l
}

// produce writes n lines, spread over the probe ids, in batches.
func (l *ledger) produce(ctx context.Context, w *kafkago.Writer, n int) error {
	msgs := make([]kafkago.Message, 0, 500)
	ids := make([]string, 0, 500)
	for j := 0; j < n; j++ {
		l.mu.Lock()
		id := l.ids[l.n%len(l.ids)]
		l.n++
		l.mu.Unlock()
		msgs = append(msgs, kafkago.Message{Value: drillEvent(l.key, id, l.backend, time.Now())})
		ids = append(ids, id)
		if len(msgs) == cap(msgs) || j == n-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return fmt.Errorf("produce the drill's lines: %w", err)
			}
			l.mu.Lock()
			for _, id := range ids {
				l.want[id]++
			}
			l.mu.Unlock()
			msgs, ids = msgs[:0], ids[:0]
		}
	}
	return nil
}

// streaming is a steady load running until stop.
type streaming struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stream produces rate lines/s, in tenths of a second, until stop.
func (l *ledger) stream(ctx context.Context, w *kafkago.Writer, rate int) *streaming {
	ctx, cancel := context.WithCancel(ctx)
	s := &streaming{cancel: cancel, done: make(chan error, 1)}
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				s.done <- nil
				return
			case <-t.C:
			}
			// A write cut short by stop is not counted: its lines may or
			// may not be in Kafka, so the drill must not produce any then.
			if err := l.produce(context.WithoutCancel(ctx), w, rate/10); err != nil {
				s.done <- err
				return
			}
		}
	}()
	return s
}

// stop ends the load and says whether every write was acknowledged.
func (s *streaming) stop() error {
	s.once.Do(func() { s.cancel(); s.err = <-s.done })
	return s.err
}

// total is the number of lines acknowledged.
func (l *ledger) total() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for _, c := range l.want {
		n += c
	}
	return n
}

// counts copies the acknowledged lines per probe id.
func (l *ledger) counts() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.want)
}

// drillEvent is a filebeat event holding one access-log line of the
// product's format for probe id, signed with the cluster's probe key (the
// consumer records only signed probes).
// The lines are probe lines of a real backend (the first web host, or the
// consumer's host), as verify's probes are: counted like any traffic of
// that backend, so that no made-up backend appears in the dashboard or
// falls silent afterwards (backend_silent).
func drillEvent(probeKey, id, backend string, t time.Time) []byte {
	line := fmt.Sprintf(`192.0.2.7 192.0.2.1 [%s] "GET %s%s HTTP/1.1" 200 12 240 80 0.001 "-" "trafficlab-drill" "drill"`,
		t.Format("02/Jan/2006:15:04:05 -0700"), agg.ProbePrefix, agg.SignProbe([]byte(probeKey), id))
	b, _ := json.Marshal(map[string]any{
		"@timestamp": t.UTC().Format(time.RFC3339Nano),
		"message":    line,
		"host":       map[string]string{"name": backend},
	})
	return b
}

// mainPID reads the unit's main process id (0 when it has none).
func mainPID(ctx context.Context, env *Env, host, unit string) (int, error) {
	out, err := env.Cluster.Run(ctx, host, "systemctl show -p MainPID --value "+unit)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// nRestarts reads how often systemd restarted the unit.
func nRestarts(ctx context.Context, env *Env, host, unit string) (int, error) {
	out, err := env.Cluster.Run(ctx, host, "systemctl show -p NRestarts --value "+unit)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

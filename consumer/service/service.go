// Package service is the consumer's long-running process: it reads the
// access-log topic partition by partition with kafka-go, aggregates the
// lines, and commits aggregates and offsets to MySQL together.
//
// # Exactly once
//
// Kafka offsets are never committed to Kafka. Each partition worker owns an
// aggregator and the offset after the last line it aggregated, updated
// together under a lock. Every flush interval the committer takes each
// worker's batch with its offset, merges them, and writes the aggregates and
// the new offsets in one MySQL transaction, with a compare-and-set on the
// offsets it started from (store.Commit). At start and after a conflict the
// workers start from the offsets in MySQL. So whatever instant the process
// dies at, MySQL holds the aggregates of exactly the lines before its
// offsets: lines after them were not counted and are read again.
//
// While MySQL is down the committer retries with backoff and the workers
// stop fetching once their batches are large; nothing is committed that is
// not stored, and Kafka keeps the backlog. Kafka errors are retried per
// partition with backoff. Neither is fatal.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/alert"
	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/dedup"
	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/consumer/store"
)

// Service is a configured consumer.
type Service struct {
	cfg     *config.Config
	log     *slog.Logger
	parser  *nginxlog.Parser
	store   *store.Store
	dialer  *kafka.Dialer
	metrics *metrics

	mu        sync.Mutex
	commitErr failures  // commits to MySQL
	groupErr  failures  // joins of the consumer group
	workers   []*worker // of the current session, for /healthz
	// windows are the dedup windows of the partitions of the last
	// session, with the offset each ends at, for the next session.
	windows map[int32]savedWindow

	// partitionCheck is how often the topic is checked for new partitions.
	partitionCheck time.Duration
	// retentionEvery is how often old rows are deleted.
	retentionEvery time.Duration
}

// New prepares a consumer; it connects to nothing yet.
func New(cfg *config.Config, log *slog.Logger) (*Service, error) {
	p, err := cfg.Parser()
	if err != nil {
		return nil, fmt.Errorf("log format: %w", err)
	}
	dialer, err := kafkaDialer(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	st, err := store.Open(cfg.MySQL)
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg:            cfg,
		log:            log,
		parser:         p,
		store:          st,
		dialer:         dialer,
		metrics:        newMetrics(),
		partitionCheck: 5 * time.Second,
		retentionEvery: time.Hour,
	}, nil
}

// kafkaDialer connects to the brokers as kafka.tls and kafka.sasl say.
func kafkaDialer(k config.Kafka) (*kafka.Dialer, error) {
	d := &kafka.Dialer{Timeout: 10 * time.Second, ClientID: k.ClientID, DualStack: true}
	tlsConfig, err := k.TLSConfig()
	if err != nil {
		return nil, err
	}
	d.TLS = tlsConfig
	if k.SASL.Mechanism != "" {
		algo := scram.SHA512
		if k.SASL.Mechanism == "SCRAM-SHA-256" {
			algo = scram.SHA256
		}
		if d.SASLMechanism, err = scram.Mechanism(algo, k.SASL.Username, k.SASL.Password); err != nil {
			return nil, fmt.Errorf("kafka.sasl: %w", err)
		}
	}
	return d, nil
}

// Close releases the database handle.
func (s *Service) Close() error { return s.store.Close() }

// Handler serves /metrics and /healthz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{Registry: s.metrics.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Health(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// unhealthyAfter is how long commits or every partition may fail before
// /healthz reports it: short outages are retried silently.
const unhealthyAfter = 30 * time.Second

// Health returns why the consumer is unhealthy, nil when it is not.
func (s *Service) Health() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commitErr.longerThan(unhealthyAfter) {
		return fmt.Errorf("commits to MySQL failing since %s: %v", s.commitErr.since.UTC().Format(time.RFC3339), s.commitErr.last)
	}
	if s.groupErr.longerThan(unhealthyAfter) {
		return fmt.Errorf("cannot join the Kafka consumer group since %s: %v", s.groupErr.since.UTC().Format(time.RFC3339), s.groupErr.last)
	}
	failing := 0
	var since time.Time
	for _, w := range s.workers {
		if bad, t := w.failing(); bad && time.Since(t) > unhealthyAfter {
			failing++
			since = t
		}
	}
	if failing > 0 && failing == len(s.workers) {
		return fmt.Errorf("kafka unreachable for every partition since %s", since.UTC().Format(time.RFC3339))
	}
	return nil
}

// failures is a run of failures of one kind: since when, and the last.
type failures struct {
	since time.Time // zero while it succeeds
	last  error
}

// record notes an attempt's outcome: nil ends the run.
func (f *failures) record(err error) {
	switch {
	case err == nil:
		*f = failures{}
	case f.since.IsZero():
		*f = failures{since: time.Now(), last: err}
	default:
		f.last = err
	}
}

func (f *failures) longerThan(d time.Duration) bool {
	return !f.since.IsZero() && time.Since(f.since) > d
}

func (s *Service) setGroupErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groupErr.record(err)
}

func (s *Service) setCommitErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitErr.record(err)
}

// Run consumes until ctx is cancelled (SIGTERM), then flushes and commits
// what it has and returns nil. It returns an error only for what retrying
// cannot fix.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Listen != "" {
		ln, err := net.Listen("tcp", s.cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
		}
		srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		s.log.Info("serving /metrics and /healthz", "addr", ln.Addr().String())
	}
	if err := s.migrate(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before MySQL ever answered: nothing to flush
		}
		return err
	}
	if s.cfg.Alerts.Enabled {
		host, _ := os.Hostname()
		ev, err := alert.NewEvaluator(s.cfg.Alerts, s.store, s.log.With("part", "alerts"), fmt.Sprintf("%s/%d", host, os.Getpid()))
		if err != nil {
			return err
		}
		// Only the consumer holding the evaluator's lease in MySQL
		// evaluates; the others keep trying to take it every minute.
		evalCtx, stopEval := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); ev.Run(evalCtx) }()
		defer func() { stopEval(); <-done }()
	}
	return s.consume(ctx)
}

// consume takes part in the consumer group until ctx ends: each
// generation of the group gives this consumer its partitions, read in
// sessions from MySQL's offsets. A generation ends when a consumer joins
// or leaves or the topic grows; the session then stops its workers and
// commits what it read before the group goes on (the group waits for
// that), so the partitions' next owners start where it stopped.
func (s *Service) consume(ctx context.Context) error {
	k := s.cfg.Kafka
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: k.Group, Brokers: k.Brokers, Dialer: s.dialer, Topics: []string{k.Topic},
		// A rebalance waits this long for every member to rejoin, a dead
		// one included: the session timeout, so that a consumer killed
		// during a rebalance holds the others up no longer than one
		// killed at any other moment.
		SessionTimeout: k.SessionTimeout, RebalanceTimeout: k.SessionTimeout,
		HeartbeatInterval: k.SessionTimeout / 5, JoinGroupBackoff: time.Second,
		WatchPartitionChanges: true, PartitionWatchInterval: s.partitionCheck,
		// Offsets live in MySQL: the group never commits any to Kafka,
		// and the assignments' offsets from Kafka are not read.
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) { s.log.Debug("kafka group: " + fmt.Sprintf(msg, args...)) }),
	})
	if err != nil {
		return fmt.Errorf("kafka: consumer group %s: %w", k.Group, err)
	}
	// Closing leaves the group at once: the others take the partitions
	// without waiting for the session timeout.
	defer cg.Close()
	bo := newBackoff(500*time.Millisecond, 10*time.Second)
	for {
		gen, err := cg.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.metrics.kafkaErrors.Inc()
			s.setGroupErr(err)
			d := bo.next()
			s.log.Warn("kafka: joining the consumer group; retrying", "group", k.Group, "err", err, "in", d)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(d):
			}
			continue
		}
		bo.reset()
		s.setGroupErr(nil)
		var parts []int32
		for _, a := range gen.Assignments[k.Topic] {
			parts = append(parts, int32(a.ID))
		}
		slices.Sort(parts)
		s.metrics.generation.Set(float64(gen.ID))
		s.metrics.assigned.Set(float64(len(parts)))
		s.log.Info("group generation", "group", k.Group, "generation", gen.ID, "member", gen.MemberID, "partitions", parts)
		done := make(chan error, 1)
		gen.Start(func(gctx context.Context) { done <- s.generation(ctx, gctx, parts) })
		err = <-done
		// Partitions of another consumer from now on: their figures are
		// that one's to report.
		for _, p := range parts {
			s.metrics.lag.DeleteLabelValues(partLabel(p))
			s.metrics.committed.DeleteLabelValues(partLabel(p))
		}
		s.metrics.assigned.Set(0)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// generation reads parts until the generation (gctx) or the consumer
// (ctx) ends, in sessions: a commit that conflicts starts a new one from
// MySQL's offsets.
func (s *Service) generation(ctx, gctx context.Context, parts []int32) error {
	for {
		err := s.session(ctx, gctx, parts)
		if errors.Is(err, store.ErrConflict) {
			s.metrics.conflicts.Inc()
			s.log.Warn("offsets moved in MySQL under this consumer; restarting from MySQL's offsets", "err", err)
			continue
		}
		return err
	}
}

// migrate applies the schema, retrying while MySQL is unavailable.
func (s *Service) migrate(ctx context.Context) error {
	bo := newBackoff(200*time.Millisecond, 10*time.Second)
	for {
		done, err := s.store.Migrate(ctx)
		if err == nil {
			s.setCommitErr(nil)
			if len(done) > 0 {
				s.log.Info("schema migrated", "versions", done)
			}
			// Summaries for minutes stored before they existed: in the
			// background, as it reads every such minute once.
			go func() {
				n, err := s.store.BackfillTop(ctx)
				if err != nil && ctx.Err() == nil {
					s.log.Warn("backfilling the hour and day top lists failed; the next start tries again", "err", err)
				} else if n > 0 {
					s.log.Info("backfilled hour and day top lists", "summaries", n)
				}
			}()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.setCommitErr(err) // /healthz tells an unreachable MySQL at start too
		d := bo.next()
		s.log.Warn("mysql: migrating the schema failed; retrying", "err", err, "in", d)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// retry calls f until it succeeds or ctx ends.
func retry[T any](ctx context.Context, s *Service, what string, f func(context.Context) (T, error)) (T, error) {
	bo := newBackoff(200*time.Millisecond, 10*time.Second)
	for {
		v, err := f(ctx)
		if err == nil {
			return v, nil
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		d := bo.next()
		s.log.Warn(what+" failed; retrying", "err", err, "in", d)
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(d):
		}
	}
}

// dialLeader connects to the leader of a partition, asking each broker in
// turn where it is.
func (s *Service) dialLeader(ctx context.Context, part int32) (*kafka.Conn, error) {
	var errs []error
	for _, b := range s.cfg.Kafka.Brokers {
		conn, err := s.dialer.DialLeader(ctx, "tcp", b, s.cfg.Kafka.Topic, int(part))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	return nil, fmt.Errorf("connect to the leader of partition %d: %w", part, errors.Join(errs...))
}

// session runs workers on parts from the offsets in MySQL until ctx (a
// graceful stop) or gctx (the group's generation) ends, then commits what
// they read and returns nil; or until a commit conflicts (store.ErrConflict:
// start again).
func (s *Service) session(ctx, gctx context.Context, parts []int32) error {
	// Either end stops the session; ctx alone decides whether the process
	// goes on.
	both, cancelBoth := context.WithCancel(ctx)
	defer cancelBoth()
	stopBoth := context.AfterFunc(gctx, cancelBoth)
	defer stopBoth()
	offsets, err := retry(both, s, "mysql: reading offsets", func(ctx context.Context) (map[int32]int64, error) {
		return s.store.Offsets(ctx, s.cfg.Kafka.Group, s.cfg.Kafka.Topic)
	})
	if err != nil {
		return nil // stopped while waiting: nothing consumed yet
	}
	ss := &session{s: s, workers: map[int32]*worker{}, expected: map[int32]store.PartitionOffsets{}}
	// Workers stop when the session says so, not when ctx ends: on SIGTERM
	// they must stop before the final take, at a line boundary.
	wctx, stopWorkers := context.WithCancel(context.Background())
	defer func() {
		stopWorkers()
		for _, w := range ss.workers {
			<-w.done
		}
		ss.saveWindows()
	}()
	ss.start(wctx, parts, offsets)
	s.log.Info("consuming", "topic", s.cfg.Kafka.Topic, "group", s.cfg.Kafka.Group, "partitions", parts, "offsets", offsets)

	flush := time.NewTicker(s.cfg.FlushInterval)
	defer flush.Stop()
	retention := time.NewTimer(10 * time.Second) // soon after start, then hourly
	defer retention.Stop()
	for {
		select {
		case <-both.Done():
			stopWorkers()
			for _, w := range ss.workers {
				<-w.done
			}
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			defer cancel()
			err := ss.flush(sctx)
			switch {
			case errors.Is(err, store.ErrConflict):
				// Another consumer committed these partitions first: what
				// this one read is theirs to count.
				s.log.Warn("final commit conflicts: another consumer has moved on; nothing of this session is counted", "err", err)
			case err != nil:
				// Not stored, so not committed: the lines are read again.
				s.log.Error("final flush failed; the lines since the last commit will be read again", "err", err)
			case ctx.Err() != nil:
				s.log.Info("stopped after a final commit")
			default:
				s.log.Info("generation over: committed what was read", "partitions", parts)
			}
			return nil
		case <-flush.C:
			if err := ss.flush(both); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return err
				}
				if both.Err() == nil {
					return err
				}
				// The session ended during retries: the next loop does
				// the final flush.
			}
		case <-retention.C:
			retention.Reset(s.retentionEvery)
			n, err := s.store.Retain(both, time.Now(), s.cfg.Retention.MinuteDays, s.cfg.Retention.BandwidthMonths)
			if err != nil {
				s.log.Warn("retention failed; will try again", "err", err)
			} else if n > 0 {
				s.log.Info("retention", "deleted_rows", n)
			}
		}
	}
}

// session is the committer's state between two restarts.
type session struct {
	s        *Service
	workers  map[int32]*worker
	expected map[int32]store.PartitionOffsets // what MySQL holds, as last read or written
	pending  *pendingCommit                   // taken from the workers, not yet committed
}

type pendingCommit struct {
	batch *agg.Batch
	to    map[int32]int64
}

func (ss *session) start(ctx context.Context, parts []int32, offsets map[int32]int64) {
	for _, p := range parts {
		next, stored := offsets[p]
		ss.expected[p] = store.PartitionOffsets{Partition: p, Stored: stored, From: next}
		if !stored {
			next = -1 // the earliest line Kafka has
		} else {
			ss.s.metrics.committed.WithLabelValues(partLabel(p)).Set(float64(next))
		}
		seen, warm := ss.s.window(p, next)
		w := newWorker(ss.s, p, next, seen, warm)
		ss.workers[p] = w
		go w.run(ctx)
	}
	ws := make([]*worker, 0, len(ss.workers))
	for _, w := range ss.workers {
		ws = append(ws, w)
	}
	ss.s.mu.Lock()
	ss.s.workers = ws
	ss.s.mu.Unlock()
}

// savedWindow is a dedup window and the offset after its last event.
type savedWindow struct {
	seen *dedup.Window
	end  int64
}

// window returns the dedup window of partition p for a session starting at
// offset next (-1: the earliest), and whether it must be filled from the
// events before next. The last session's window does when it ends right
// there: this process went on from where it stopped. Otherwise (another
// consumer counted the partition meanwhile, or this one's last commit
// failed) the events before next are read again.
func (s *Service) window(p int32, next int64) (*dedup.Window, bool) {
	if s.cfg.DedupWindow == 0 {
		return nil, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sw, ok := s.windows[p]; ok && sw.end == next && sw.seen.Size() == s.cfg.DedupWindow {
		delete(s.windows, p) // one session at a time owns it
		return sw.seen, false
	}
	return dedup.NewWindow(s.cfg.DedupWindow), next > 0
}

// saveWindows keeps the workers' dedup windows for the next session; the
// workers have stopped.
func (ss *session) saveWindows() {
	s := ss.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.windows = map[int32]savedWindow{}
	for p, w := range ss.workers {
		w.mu.Lock()
		next := w.next
		w.mu.Unlock()
		// A worker stopped while still filling its window holds only part
		// of what came before its offset: the next session fills it anew.
		if w.seen != nil && next >= 0 && w.warmPos >= w.warmTo {
			s.windows[p] = savedWindow{seen: w.seen, end: next}
		}
	}
}

// take moves what the workers aggregated into the pending commit.
func (ss *session) take() error {
	if ss.pending == nil {
		ss.pending = &pendingCommit{batch: agg.NewBatch(ss.s.cfg.RejectSamples), to: map[int32]int64{}}
	}
	for p, w := range ss.workers {
		b, next := w.take()
		if next < 0 {
			continue // not connected yet: nothing read
		}
		if err := ss.pending.batch.Merge(b); err != nil {
			return fmt.Errorf("merge partition %d: %w", p, err)
		}
		ss.pending.to[p] = next
	}
	return nil
}

// flush takes the workers' batches and commits them, retrying with backoff
// until it succeeds, the commit conflicts, or ctx ends.
func (ss *session) flush(ctx context.Context) error {
	s := ss.s
	if err := ss.take(); err != nil {
		return err
	}
	pc := ss.pending
	c := &store.Commit{Group: s.cfg.Kafka.Group, Topic: s.cfg.Kafka.Topic, Batch: pc.batch, KeepSamples: s.cfg.RejectSamples}
	for p, to := range pc.to {
		e := ss.expected[p]
		if e.Stored && e.From == to {
			continue
		}
		c.Partitions = append(c.Partitions, store.PartitionOffsets{Partition: p, Stored: e.Stored, From: e.From, To: to})
	}
	if len(c.Partitions) == 0 {
		ss.pending = nil // nothing read since the last commit
		return nil
	}
	slices.SortFunc(c.Partitions, func(a, b store.PartitionOffsets) int { return int(a.Partition - b.Partition) })
	bo := newBackoff(100*time.Millisecond, 5*time.Second)
	for {
		c.Now = time.Now()
		start := time.Now()
		err := s.store.Commit(ctx, c)
		if err == nil || errors.Is(err, store.ErrAlreadyCommitted) {
			s.metrics.flush.Observe(time.Since(start).Seconds())
			s.metrics.committedLines.Add(float64(pc.batch.Lines()))
			for _, p := range c.Partitions {
				ss.expected[p.Partition] = store.PartitionOffsets{Partition: p.Partition, Stored: true, From: p.To}
				s.metrics.committed.WithLabelValues(partLabel(p.Partition)).Set(float64(p.To))
			}
			ss.pending = nil
			s.setCommitErr(nil)
			s.log.Debug("committed", "lines", pc.batch.Lines(), "minutes", len(pc.batch.Minutes), "took", time.Since(start))
			return nil
		}
		if errors.Is(err, store.ErrConflict) {
			return err
		}
		s.metrics.commitErrors.Inc()
		s.setCommitErr(err)
		d := bo.next()
		s.log.Warn("mysql: commit failed; retrying", "err", err, "in", d, "lines", pc.batch.Lines())
		select {
		case <-ctx.Done():
			return fmt.Errorf("commit: %w (gave up: %w)", err, ctx.Err())
		case <-time.After(d):
		}
	}
}

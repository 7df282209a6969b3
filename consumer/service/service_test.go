package service_test

import (
	"bufio"
	"context"
	"fmt"
	consumerrole "github.com/trafficlab/trafficlab/provision/role/consumer"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/internal/loadgen"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/consumer/service"
	"github.com/trafficlab/trafficlab/consumer/store"
)

// childEnv makes the test binary run the consumer service with the config
// file it names, so that tests can SIGKILL a real consumer process.
const childEnv = "TRAFFICLAB_TEST_CONSUMER_CONFIG"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(runChild(path))
	}
	code := m.Run()
	mariadbtest.StopShared()
	os.Exit(code)
}

func runChild(path string) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	svc, err := service.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer svc.Close()
	if err := svc.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "run:", err)
		return 1
	}
	return 0
}

const topic = "nginxlog"

// broker starts an in-process Kafka with the topic.
func broker(t *testing.T, partitions int) (addr string, cl *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond), kfake.SeedTopics(int32(partitions), topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr = c.ListenAddrs()[0]
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.GzipCompression()), // filebeat's default
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return addr, cl
}

// produce writes events [from, to) of g round-robin over the partitions and
// adds them to exp.
func produce(t *testing.T, cl *kgo.Client, g *loadgen.Gen, from, to, partitions int, exp *loadgen.Expect) {
	t.Helper()
	if err := produceErr(cl, g, from, to, partitions, exp); err != nil {
		t.Fatal(err)
	}
}

func produceErr(cl *kgo.Client, g *loadgen.Gen, from, to, partitions int, exp *loadgen.Expect) error {
	ctx := context.Background()
	var failed atomic.Value
	for i := from; i < to; i++ {
		v, l := g.Event(nil, i)
		exp.Add(&l)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	return nil
}

func committed(st *store.Store) int64 {
	off, _ := st.Offsets(context.Background(), "trafficlab-consumer", topic)
	var sum int64
	for _, o := range off {
		sum += o
	}
	return sum
}

var dbSeq atomic.Int32

func newConfig(t *testing.T, srv *mariadbtest.Server, brokerAddr string) (*config.Config, *store.Store) {
	t.Helper()
	mc, err := srv.NewDatabase(context.Background(), fmt.Sprintf("sv%d_%d", os.Getpid(), dbSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	c := config.Defaults()
	c.Kafka.Brokers = []string{brokerAddr}
	// A killed consumer's partitions wait this long for the group to
	// give them to the next one.
	c.Kafka.SessionTimeout = time.Second
	c.MySQL = mc
	c.FlushInterval = 200 * time.Millisecond
	c.ShutdownTimeout = 10 * time.Second
	c.Listen = ""
	c.RejectSamples = 20
	c.ProbeKey = string(loadgen.ProbeKey)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &c, st
}

// writeConfig writes c as the 0600 YAML file a deployment has.
func writeConfig(t *testing.T, c *config.Config) string {
	t.Helper()
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "consumer.yaml")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(p); err != nil {
		t.Fatalf("written config does not load: %v\n%s", err, data)
	}
	return p
}

// waitCommitted waits until MySQL's offsets cover n messages.
func waitCommitted(t *testing.T, st *store.Store, n int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var sum int64
	for time.Now().Before(deadline) {
		off, err := st.Offsets(context.Background(), "trafficlab-consumer", topic)
		if err == nil {
			sum = 0
			for _, o := range off {
				sum += o
			}
			if sum == n {
				return
			}
			if sum > n {
				t.Fatalf("offsets sum to %d, more than the %d messages produced", sum, n)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("after %v, offsets cover %d of %d messages", timeout, sum, n)
}

// verify compares everything MySQL holds with what was produced.
func verify(t *testing.T, st *store.Store, exp *loadgen.Expect) {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Minutes(ctx, time.Unix(0, 0), time.Now().AddDate(10, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(exp.Minutes) {
		t.Errorf("%d minute rows, want %d", len(rows), len(exp.Minutes))
	}
	var requests uint64
	bad := 0
	for _, r := range rows {
		requests += r.Requests
		w := exp.Minutes[agg.Key{Minute: r.Minute.Unix(), Backend: r.Backend}]
		if w == nil {
			t.Errorf("unexpected row %s %s", r.Minute, r.Backend)
			continue
		}
		if r.Requests != w.Requests || r.BytesOut != w.BytesOut || r.BytesIn != w.BytesIn || r.Status != w.Status {
			if bad++; bad <= 5 {
				t.Errorf("%s %s: requests/out/in/status %d/%d/%d/%v, want %d/%d/%d/%v", r.Minute, r.Backend,
					r.Requests, r.BytesOut, r.BytesIn, r.Status, w.Requests, w.BytesOut, w.BytesIn, w.Status)
			}
		}
	}
	if requests != exp.Good {
		t.Errorf("%d requests stored, want %d", requests, exp.Good)
	}
	for id, n := range exp.Probes {
		p, ok, err := st.Probe(ctx, id)
		if err != nil || !ok || p.Count != n {
			t.Errorf("probe %s: %+v %v %v, want count %d", id, p, ok, err, n)
		}
	}
	rej, err := st.RejectCounts(ctx, time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range exp.Rejects {
		if rej[k] != n {
			t.Errorf("rejects[%s] = %d, want %d", k, rej[k], n)
		}
	}
	if len(rej) != len(exp.Rejects) {
		t.Errorf("rejects %v, want %v", rej, exp.Rejects)
	}
}

func gen() *loadgen.Gen {
	return &loadgen.Gen{
		// Recent lines: retention (35 days) runs 10 s after start and
		// would rightly delete older ones.
		Start:        time.Now().UTC().Truncate(time.Hour).Add(-2 * time.Hour),
		Step:         3 * time.Millisecond,
		Backends:     []string{"web-1", "web-2", "web-3"},
		Clients:      20000,
		URIs:         300,
		GarbageEvery: 10,
		ProbeEvery:   997,
		Late:         101,
	}
}

// startService runs a Service in-process until the test ends or stop is
// called; stop returns what Run returned. exited is closed when Run returns.
func startService(t *testing.T, c *config.Config) (svc *service.Service, stop func() error, exited <-chan struct{}) {
	t.Helper()
	svc, err := service.New(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		runErr = svc.Run(ctx)
	}()
	stop = sync.OnceValue(func() error {
		cancel()
		<-done
		svc.Close()
		return runErr
	})
	t.Cleanup(func() { stop() })
	return svc, stop, done
}

// TestGarbageAndMetrics: 10% garbage lines are counted as rejects by kind
// while every good line is counted, and /metrics says so.
func TestGarbageAndMetrics(t *testing.T) {
	srv := mariadbtest.Shared(t)
	const parts, n = 3, 20000
	addr, cl := broker(t, parts)
	c, st := newConfig(t, srv, addr)
	exp := loadgen.NewExpect()
	produce(t, cl, gen(), 0, n, parts, exp)
	svc, _, _ := startService(t, c)
	waitCommitted(t, st, n, 60*time.Second)
	verify(t, st, exp)
	if got := exp.Rejects[agg.RejectMismatch] + exp.Rejects[agg.RejectValue] + exp.Rejects[agg.RejectEvent]; got != n/10 {
		t.Fatalf("the generator made %d garbage lines, want %d", got, n/10)
	}
	// The alert evaluator runs inside the service and took the lease.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var holder string
		err := st.DB().QueryRow(`SELECT holder FROM alert_lease WHERE name = 'alerts' AND expires_at > UTC_TIMESTAMP()`).Scan(&holder)
		if err == nil && strings.HasSuffix(holder, fmt.Sprintf("/%d", os.Getpid())) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no alert lease held by this process: %q, %v", holder, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	samples, err := st.RejectSamples(context.Background(), 100)
	if err != nil || len(samples) == 0 || len(samples) > c.RejectSamples {
		t.Errorf("%d reject samples (%v), want 1..%d", len(samples), err, c.RejectSamples)
	}

	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		fmt.Sprintf("trafficlab_consumer_lines_total %d", n),
		fmt.Sprintf(`trafficlab_consumer_rejects_total{kind="event"} %d`, exp.Rejects[agg.RejectEvent]),
		fmt.Sprintf(`trafficlab_consumer_rejects_total{kind="mismatch"} %d`, exp.Rejects[agg.RejectMismatch]),
		fmt.Sprintf(`trafficlab_consumer_committed_offset{partition="0"} %d`, (n+parts-1)/parts),
		`trafficlab_consumer_lag_messages{partition="2"} 0`,
		"trafficlab_consumer_flush_seconds_bucket",
		"trafficlab_consumer_committed_lines_total",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// What provision's verify and drills read (provision/role/consumer).
	for _, name := range []string{consumerrole.MetricLag, consumerrole.MetricAssigned, consumerrole.MetricGeneration} {
		if !strings.Contains(body, "\n"+name) {
			t.Errorf("/metrics lacks %s, which provision reads", name)
		}
	}
	rec = httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != 200 {
		t.Errorf("/healthz: %d %s", rec.Code, rec.Body)
	}
}

// child is a consumer process.
type child struct {
	cmd   *exec.Cmd
	done  chan error
	ready chan struct{} // closed when it logged that it is consuming
}

// childLog is the file the consumer processes of a test log into; its last
// lines are shown when the test fails.
func childLog(t *testing.T, lines int) (*os.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "consumers.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			t.Logf("consumers' log tail:\n%s", tail(path, lines))
		}
	})
	return f, path
}

// seeded is a random source whose seed the test logs, to run it again.
func seeded(t *testing.T) *rand.Rand {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return rand.New(rand.NewPCG(seed, 0))
}

func startChild(t *testing.T, cfgPath string, log io.Writer) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+cfgPath)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan error, 1), ready: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		ready := false
		for sc.Scan() {
			fmt.Fprintln(log, sc.Text())
			if !ready && strings.Contains(sc.Text(), "msg=consuming") {
				ready = true
				close(c.ready)
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		c.done <- err
	}()
	return c
}

// TestKillNine kills the consumer process with SIGKILL at random moments
// while lines keep arriving, at least a dozen times, then checks that
// MySQL's totals are exact: no line lost, none counted twice.
func TestKillNine(t *testing.T) {
	t.Parallel()
	srv := mariadbtest.Shared(t)
	const (
		parts        = 4
		minLines     = 200_000
		maxLines     = 1_000_000 // bounds the test if kills keep missing the load (at the slower load, 500k left too little room)
		minKills     = 12
		minUnderLoad = 10
		step         = 2500
		// About 15,000 lines/s: each restarted consumer waits for the
		// group to give it the partitions (about a session timeout).
		stepPause        = 160 * time.Millisecond
		shutdownDeadline = 20 * time.Second
	)
	addr, cl := broker(t, parts)
	c, st := newConfig(t, srv, addr)
	c.FlushInterval = 150 * time.Millisecond // many commits: kills land in them too
	cfgPath := writeConfig(t, c)
	logf, _ := childLog(t, 60)
	rng := seeded(t)
	exp := loadgen.NewExpect()
	g := gen()
	// The load goes on until at least minLines were sent and enough kills
	// hit a consumer with uncommitted lines.
	var produced atomic.Int64
	var enough atomic.Bool
	prodErr := make(chan error, 1)
	go func() {
		for i := 0; i < maxLines && (i < minLines || !enough.Load()); i += step {
			if err := produceErr(cl, g, i, i+step, parts, exp); err != nil {
				prodErr <- err
				return
			}
			produced.Store(int64(i + step))
			time.Sleep(stepPause)
		}
		prodErr <- nil
	}()
	kills, underLoad := 0, 0
	for producing := true; producing; {
		ch := startChild(t, cfgPath, logf)
		// Most kills land while the consumer fetches, aggregates and
		// commits; one in four anywhere, start-up included.
		if rng.IntN(4) > 0 {
			select {
			case <-ch.ready:
			case <-time.After(30 * time.Second):
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(650)) * time.Millisecond * raceSlowdown)
		if err := ch.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := <-ch.done; err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("kill %d: consumer exited with %v before it was killed", kills, err)
		}
		kills++
		if committed(st) < produced.Load() {
			underLoad++ // killed with lines read or waiting, not committed
		}
		if kills >= minKills && underLoad >= minUnderLoad {
			enough.Store(true)
		}
		select {
		case err := <-prodErr:
			if err != nil {
				t.Fatal(err)
			}
			producing = false
		default:
		}
	}
	n := produced.Load()
	t.Logf("%d lines, %d kills, %d of them with uncommitted lines; %d lines committed by the last kill", n, kills, underLoad, committed(st))
	if kills < minKills || underLoad < minUnderLoad {
		t.Errorf("only %d kills, %d under load; want %d and %d", kills, underLoad, minKills, minUnderLoad)
	}

	ch := startChild(t, cfgPath, logf)
	waitCommitted(t, st, n, 120*time.Second)
	select {
	case <-ch.ready: // SIGTERM before the handler is installed would just kill it
	case <-time.After(30 * time.Second):
		t.Fatal("the last consumer never started consuming")
	}
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-ch.done:
		if err != nil {
			t.Errorf("consumer after SIGTERM: %v", err)
		}
	case <-time.After(shutdownDeadline):
		_ = ch.cmd.Process.Kill()
		t.Errorf("consumer did not stop within %v of SIGTERM", shutdownDeadline)
	}
	verify(t, st, exp)
}

// TestSIGTERMFlushes: with a flush interval longer than the test, only
// the final flush on SIGTERM can commit the lines.
func TestSIGTERMFlushes(t *testing.T) {
	srv := mariadbtest.Shared(t)
	const parts, n = 2, 5000
	addr, cl := broker(t, parts)
	c, st := newConfig(t, srv, addr)
	c.FlushInterval = 5 * time.Minute
	exp := loadgen.NewExpect()
	produce(t, cl, gen(), 0, n, parts, exp)
	logPath := filepath.Join(t.TempDir(), "consumer.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	ch := startChild(t, writeConfig(t, c), logf)
	select {
	case <-ch.ready:
	case <-time.After(30 * time.Second):
		_ = ch.cmd.Process.Kill()
		t.Fatalf("the consumer never started consuming:\n%s", tail(logPath, 30))
	}
	// The log has no per-line record: give the consumer ample time to read
	// the lines, then check nothing was committed yet.
	time.Sleep(2 * time.Second)
	if off, _ := st.Offsets(context.Background(), "trafficlab-consumer", topic); len(off) != 0 {
		t.Fatalf("committed before SIGTERM: %v", off)
	}
	_ = ch.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-ch.done; err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, tail(logPath, 30))
	}
	waitCommitted(t, st, n, time.Second)
	verify(t, st, exp)
	if !strings.Contains(tail(logPath, 5), "stopped after a final commit") {
		t.Errorf("log tail:\n%s", tail(logPath, 5))
	}
}

// TestMariaDBOutage stops MariaDB for 30 s while lines keep arriving: the
// consumer retries without crashing, reports itself unhealthy meanwhile,
// and ends with exact totals.
func TestMariaDBOutage(t *testing.T) {
	t.Parallel()
	mariadbtest.Require(t)
	srv, err := mariadbtest.Start() // its own server: the others' tests go on
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	const parts, n = 3, 60_000
	addr, cl := broker(t, parts)
	c, st := newConfig(t, srv, addr)
	exp := loadgen.NewExpect()
	g := gen()
	svc, stop, exited := startService(t, c)

	produce(t, cl, g, 0, n/3, parts, exp)
	waitCommitted(t, st, n/3, 60*time.Second)
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	produce(t, cl, g, n/3, 2*n/3, parts, exp)
	time.Sleep(time.Until(stopped.Add(unhealthyWait())))
	if err := svc.Health(); err == nil {
		t.Error("healthy although MySQL has been down for more than 30s")
	} else {
		t.Logf("health during the outage: %v", err)
	}
	select {
	case <-exited:
		t.Fatalf("the consumer stopped during the outage: %v", stop())
	default:
	}
	produce(t, cl, g, 2*n/3, n, parts, exp)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("MariaDB was down %v", time.Since(stopped).Round(time.Second))
	waitCommitted(t, st, n, 90*time.Second)
	verify(t, st, exp)
	if err := svc.Health(); err != nil {
		t.Errorf("unhealthy after recovery: %v", err)
	}
}

func unhealthyWait() time.Duration { return 31 * time.Second }

func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var all []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		all = append(all, sc.Text())
	}
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// TestKafkaOutage starts the consumer before its broker exists, then
// restarts the broker (same data directory and port) during the load: the
// consumer keeps retrying and ends with exact totals.
func TestKafkaOutage(t *testing.T) {
	srv := mariadbtest.Shared(t)
	const parts, n = 2, 9000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dataDir := t.TempDir()
	startBroker := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond), kfake.Ports(port), kfake.DataDir(dataDir), kfake.SeedTopics(parts, topic))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, st := newConfig(t, srv, addr)
	svc, _, done := startService(t, c)
	time.Sleep(1500 * time.Millisecond) // retrying against nothing

	exp := loadgen.NewExpect()
	g := gen()
	producer := func() *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	k := startBroker()
	cl := producer()
	produce(t, cl, g, 0, n/3, parts, exp)
	waitCommitted(t, st, n/3, 60*time.Second)
	produce(t, cl, g, n/3, 2*n/3, parts, exp)
	cl.Close()
	k.Close()
	time.Sleep(2 * time.Second) // broker down: fetches fail and are retried
	select {
	case err := <-done:
		t.Fatalf("the consumer stopped while Kafka was down: %v", err)
	default:
	}
	k = startBroker()
	defer k.Close()
	cl = producer()
	defer cl.Close()
	produce(t, cl, g, 2*n/3, n, parts, exp)
	waitCommitted(t, st, n, 60*time.Second)
	verify(t, st, exp)
	if err := svc.Health(); err != nil {
		t.Errorf("unhealthy after recovery: %v", err)
	}
}

package service_test

import (
	"context"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/trafficlab/trafficlab/consumer/internal/loadgen"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
)

// TestGroupKills runs three consumers of one group on a six-partition
// topic, the group sharing the partitions among them, and SIGKILLs one of
// them at random moments (rebalances included) while lines keep arriving;
// each killed consumer is started again after a pause, and rejoins. Then
// MySQL's totals must be exact: nothing lost, nothing counted twice,
// whoever held a partition when.
func TestGroupKills(t *testing.T) {
	t.Parallel()
	srv := mariadbtest.Shared(t)
	const (
		parts     = 6
		consumers = 3
		minLines  = 200_000
		maxLines  = 400_000
		minKills  = 8
		step      = 2500
		stepPause = 120 * time.Millisecond // about 20,000 lines/s
	)
	addr, cl := broker(t, parts)
	c, st := newConfig(t, srv, addr)
	c.FlushInterval = 150 * time.Millisecond
	cfgPath := writeConfig(t, c)
	logf, logPath := childLog(t, 80)
	rng := seeded(t)

	running := make([]*child, consumers)
	for i := range running {
		running[i] = startChild(t, cfgPath, logf)
	}
	defer func() {
		for _, ch := range running {
			_ = ch.cmd.Process.Kill()
		}
	}()

	exp := loadgen.NewExpect()
	g := gen()
	prodErr := make(chan error, 1)
	enough := make(chan struct{})
	var produced atomic.Int64
	go func() {
		for i := 0; i < maxLines; i += step {
			if i >= minLines {
				select {
				case <-enough:
					prodErr <- nil
					return
				default:
				}
			}
			if err := produceErr(cl, g, i, i+step, parts, exp); err != nil {
				prodErr <- err
				return
			}
			produced.Store(int64(i + step))
			time.Sleep(stepPause)
		}
		prodErr <- nil
	}()
	kills := 0
	for producing := true; producing; {
		time.Sleep(time.Duration(300+rng.IntN(1500)) * time.Millisecond * raceSlowdown)
		i := rng.IntN(consumers)
		if err := running[i].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := <-running[i].done; err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("kill %d: consumer %d exited with %v before it was killed", kills, i, err)
		}
		kills++
		if kills == minKills {
			close(enough)
		}
		// Sometimes at once (a rebalance in progress), sometimes after
		// the group has given its partitions to the others.
		time.Sleep(time.Duration(rng.IntN(2500)) * time.Millisecond)
		running[i] = startChild(t, cfgPath, logf)
		select {
		case err := <-prodErr:
			if err != nil {
				t.Fatal(err)
			}
			producing = false
		default:
		}
	}
	if kills < minKills {
		t.Errorf("only %d kills, want %d", kills, minKills)
	}
	n := produced.Load()
	waitCommitted(t, st, n, 120*time.Second)
	for i, ch := range running {
		select {
		case <-ch.ready: // SIGTERM before the handler is installed would just kill it
		case <-time.After(30 * time.Second):
			t.Fatalf("consumer %d never started consuming", i)
		}
		_ = ch.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-ch.done:
			if err != nil {
				t.Errorf("consumer %d after SIGTERM: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("consumer %d did not stop within 30s of SIGTERM", i)
		}
	}
	t.Logf("%d lines, %d kills of %d consumers", n, kills, consumers)
	// The group shared the partitions: some generation gave a consumer a
	// third of them.
	if log, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(log), `msg="group generation"`) || !regexp.MustCompile(`msg="group generation" .* partitions="\[\d \d\]"`).Match(log) {
		t.Errorf("no generation gave a consumer two of the six partitions (err %v)", err)
	}
	verify(t, st, exp)
}

// TestTopicGrows: partitions added to the topic while a consumer runs are
// consumed without a restart (the group's leader sees them and the group
// rebalances).
func TestTopicGrows(t *testing.T) {
	t.Parallel()
	srv := mariadbtest.Shared(t)
	const before, after, n = 2, 4, 8000
	addr, cl := broker(t, before)
	c, st := newConfig(t, srv, addr)
	startService(t, c)
	exp := loadgen.NewExpect()
	g := gen()
	produce(t, cl, g, 0, n/2, before, exp)
	waitCommitted(t, st, n/2, 60*time.Second)

	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, after
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	res, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if e := kerr.ErrorForCode(res.Topics[0].ErrorCode); e != nil {
		t.Fatal(e)
	}
	// Lines on every partition, the new ones included, from a client
	// that knows them.
	cl2, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	produce(t, cl2, g, n/2, n, after, exp)
	waitCommitted(t, st, n, 60*time.Second)
	off, err := st.Offsets(context.Background(), "trafficlab-consumer", topic)
	if err != nil || len(off) != after {
		t.Fatalf("offsets of %d partitions (%v), want %d: %v", len(off), err, after, off)
	}
	verify(t, st, exp)
}

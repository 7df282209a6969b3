package kafka

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

// logHost is a broker host whose server.log ends with log.
type logHost struct {
	name, log string
}

func (h logHost) Name() string { return h.name }
func (h logHost) Run(_ context.Context, cmd string, _ ...remote.RunOption) (remote.Result, error) {
	if cmd == fmt.Sprintf("tail -n %d %s/server.log", logTail, LogDir) {
		return remote.Result{Stdout: []byte(h.log)}, nil
	}
	return remote.Result{}, fmt.Errorf("unexpected command %q", cmd)
}
func (h logHost) ReadFile(context.Context, string) ([]byte, error)                  { return nil, fs.ErrNotExist }
func (h logHost) Upload(context.Context, string, []byte, fs.FileMode, string) error { return nil }

// TestRollingRestart: three brokers whose configuration changed at once
// restart one at a time, each only after it is back in the cluster's
// metadata and nothing is under-replicated, in the order the lines say.
func TestRollingRestart(t *testing.T) {
	// Broker ids 0..3: the inventory's kafka-1..3 are ids 1..3.
	kc, err := kfake.NewCluster(kfake.NumBrokers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addrs := kc.ListenAddrs()
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		var n int
		if _, err := fmt.Sscanf(host, "kafka-%d", &n); err == nil {
			addr = addrs[n]
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	inv := rt.LoadExample(t, "seed-centos.yaml")
	b := New().(*broker)

	var mu sync.Mutex
	var lines []string
	running := 0
	var wg sync.WaitGroup
	for _, h := range inv.HostsWith("kafka") {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &role.Context{Inventory: inv, Host: h, Dial: dial, Note: func(f string, a ...any) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, fmt.Sprintf(f, a...))
			}}
			restart := func(context.Context) error {
				mu.Lock()
				running++
				if running > 1 {
					t.Errorf("%s restarted while another broker was restarting", h.Name)
				}
				mu.Unlock()
				time.Sleep(30 * time.Millisecond)
				mu.Lock()
				running--
				mu.Unlock()
				return nil
			}
			if err := b.rolling(context.Background(), c, &step.Target{Host: logHost{name: h.Name}}, restart); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	out := strings.Join(lines, "\n")
	if n := strings.Count(out, "no under-replicated partitions"); n != 3 {
		t.Errorf("want three waits for in-sync replicas:\n%s", out)
	}
	// Each restart is followed by its own waits before the next starts.
	var order []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "kafka: restarting broker"):
			order = append(order, "restart")
		case strings.Contains(l, "back in the cluster"):
			order = append(order, "back")
		case strings.Contains(l, "no under-replicated"):
			order = append(order, "in-sync")
		}
	}
	if got := strings.Join(order, " "); got != strings.TrimSpace(strings.Repeat("restart back in-sync ", 3)) {
		t.Errorf("order %q:\n%s", got, out)
	}
}

// A broker that does not come back stops the roll with the end of its
// log in the error, and no other broker restarts after it.
func TestRollingRestartStopsOnBrokenBroker(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addrs := kc.ListenAddrs()
	// kafka-1 never answers again after its restart.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		var n int
		if _, err := fmt.Sscanf(host, "kafka-%d", &n); err == nil {
			if n == 1 {
				return nil, errors.New("connection refused")
			}
			addr = addrs[n]
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	defer func(d time.Duration) { BackTimeout = d }(BackTimeout)
	BackTimeout = 2 * time.Second
	inv := rt.LoadExample(t, "seed-centos.yaml")
	b := New().(*broker)
	brokers := inv.HostsWith("kafka")
	c := &role.Context{Inventory: inv, Host: brokers[0], Dial: dial, Note: func(string, ...any) {}}
	host := logHost{name: "kafka-1", log: "[2026-12-03 10:00:00,000] ERROR Exiting Kafka due to fatal exception (kafka.Kafka)\njava.lang.OutOfMemoryError: Java heap space\n"}
	err = b.rolling(context.Background(), c, &step.Target{Host: host}, func(context.Context) error { return nil })
	if err == nil {
		t.Fatal("a broker that never came back was taken as restarted")
	}
	for _, want := range []string{"broker 1 did not come back", "last lines of /var/log/kafka/server.log on kafka-1:", "java.lang.OutOfMemoryError: Java heap space"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// The next broker's turn comes: it refuses to restart.
	restarted := false
	c2 := &role.Context{Inventory: inv, Host: brokers[1], Dial: dial, Note: func(string, ...any) {}}
	err = b.rolling(context.Background(), c2, &step.Target{Host: logHost{name: "kafka-2"}}, func(context.Context) error { restarted = true; return nil })
	if restarted || err == nil || !strings.Contains(err.Error(), "broker 2 not restarted: the rolling restart stopped at an earlier broker: broker 1 did not come back") {
		t.Errorf("restarted %v, err %v", restarted, err)
	}
}

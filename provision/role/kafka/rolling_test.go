package kafka

import (
	"context"
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
	rt "github.com/trafficlab/trafficlab/provision/role/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

// capsHost is a host whose distribution has the given capabilities file
// ("" for none, as Apache's).
type capsHost struct {
	name, caps string
}

func (h capsHost) Name() string { return h.name }
func (h capsHost) Run(context.Context, string, ...remote.RunOption) (remote.Result, error) {
	return remote.Result{}, nil
}
func (h capsHost) ReadFile(_ context.Context, p string) ([]byte, error) {
	if p != Home+"/"+CapabilitiesFile || h.caps == "" {
		return nil, fs.ErrNotExist
	}
	return []byte(h.caps), nil
}
func (h capsHost) Upload(context.Context, string, []byte, fs.FileMode, string) error { return nil }

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
			if err := b.rolling(context.Background(), c, &step.Target{Host: capsHost{name: h.Name}}, restart); err != nil {
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

// A distribution that declares it does not replicate skips the wait for
// in-sync replicas and says why.
func TestRollingRestartWithoutReplication(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	addrs := kc.ListenAddrs()
	dial := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addrs[1])
	}
	inv := rt.LoadExample(t, "seed-centos.yaml")
	var lines []string
	c := &role.Context{Inventory: inv, Host: inv.HostsWith("kafka")[0], Dial: dial, Note: func(f string, a ...any) { lines = append(lines, fmt.Sprintf(f, a...)) }}
	host := capsHost{name: "kafka-1", caps: "name: a test stand-in\nreplication: none\n"}
	if err := New().(*broker).rolling(context.Background(), c, &step.Target{Host: host}, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	out := strings.Join(lines, "\n")
	if !strings.Contains(out, "the wait for under-replicated partitions is skipped: a test stand-in keeps a single copy of each partition") {
		t.Errorf("no skip reason:\n%s", out)
	}
}

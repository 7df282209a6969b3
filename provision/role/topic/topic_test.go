package topic

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

// kfakeDial maps the inventory's kafka-N to the Nth broker of a kfake
// cluster, as the cluster's SSH tunnel maps names to hosts.
func kfakeDial(t *testing.T, brokers int) func(context.Context, string, string) (net.Conn, error) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addrs := kc.ListenAddrs()
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, _ := net.SplitHostPort(addr)
		var n int
		if _, err := fmt.Sscanf(host, "kafka-%d", &n); err == nil {
			addr = addrs[n-1]
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// controlOnly is the owner's connection: the topic's steps must not use it.
type controlOnly struct{ t *testing.T }

func (h controlOnly) Name() string { return "kafka-1" }
func (h controlOnly) Run(context.Context, string, ...remote.RunOption) (remote.Result, error) {
	h.t.Error("the topic ran a command on its host")
	return remote.Result{}, nil
}
func (h controlOnly) ReadFile(context.Context, string) ([]byte, error) {
	h.t.Error("the topic read a file on its host")
	return nil, nil
}
func (h controlOnly) Upload(context.Context, string, []byte, fs.FileMode, string) error {
	h.t.Error("the topic uploaded a file to its host")
	return nil
}

func TestTopicSteps(t *testing.T) {
	inv := rt.LoadExample(t, "seed-centos.yaml")
	owner, _ := Owner(inv)
	if owner.Name != "kafka-1" {
		t.Fatalf("owner %s", owner.Name)
	}
	// One resource per cluster: only the owner carries it.
	for _, h := range inv.Hosts {
		if got, want := role.Applies(New(), inv, h), h.Name == "kafka-1"; got != want {
			t.Errorf("Applies on %s = %v", h.Name, got)
		}
	}
	c := &role.Context{Inventory: inv, Host: owner, Dial: kfakeDial(t, 3)}
	steps, err := topicSteps(New(), c)
	if err != nil || len(steps) != 1 {
		t.Fatalf("steps %v %v", steps, err)
	}
	run := func(dry bool) []step.Result {
		tg := &step.Target{Host: controlOnly{t}, DryRun: dry}
		res, err := tg.Run(context.Background(), steps, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if res := run(true); res[0].Status != step.WouldChange || !strings.Contains(res[0].Change.Summary, "create topic nginxlog (3 partitions, replication 3") {
		t.Errorf("preview: %+v", res[0])
	}
	if res := run(false); res[0].Status != step.Changed {
		t.Errorf("first run: %+v", res[0])
	}
	if res := run(false); res[0].Status != step.Unchanged {
		t.Errorf("second run changed: %+v", res[0])
	}

	// Fewer partitions: the step fails with what is possible.
	inv.Kafka.Topic.Partitions = 2
	steps, _ = topicSteps(New(), c)
	tg := &step.Target{Host: controlOnly{t}}
	_, err = tg.Run(context.Background(), steps, nil)
	if err == nil || !strings.Contains(err.Error(), "Kafka cannot remove partitions") {
		t.Errorf("fewer partitions: %v", err)
	}

	// Offline (render), the step says so rather than pretending.
	c.Dial = nil
	steps, _ = topicSteps(New(), c)
	if _, err := (&step.Target{Host: controlOnly{t}}).Run(context.Background(), steps, nil); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline: %v", err)
	}
}

// A probe (preview, refresh) of the topic while no broker answers reports
// it as drift at once instead of waiting for the brokers.
func TestProbeWithoutBrokers(t *testing.T) {
	inv := rt.LoadExample(t, "seed-centos.yaml")
	owner, _ := Owner(inv)
	var dials atomic.Int32
	c := &role.Context{Inventory: inv, Host: owner, Dial: func(ctx context.Context, _, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, fmt.Errorf("dial %s: connection refused", addr)
	}}
	steps, _ := topicSteps(New(), c)
	res, err := (&step.Target{Host: controlOnly{t}, DryRun: true}).Run(context.Background(), steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != step.WouldChange || !strings.Contains(res[0].Change.Summary, "check topic nginxlog: kafka metadata: no broker answered") {
		t.Errorf("probe: %+v %v", res[0], res[0].Change)
	}
	// One look: each broker asked once, none again.
	if n := dials.Load(); n != 3 {
		t.Errorf("the probe dialled %d times, want each of the 3 brokers once", n)
	}
}

// topicSteps are the role's steps but the metadata.version one (the kafka
// role's own, tested there): seed-centos runs ZooKeeper mode.
func topicSteps(r role.Role, c *role.Context) ([]step.Step, error) {
	steps, err := rt.Steps(r, c)
	return slices.DeleteFunc(steps, func(s step.Step) bool { return s.ID.Kind == kafka.KindFeature }), err
}

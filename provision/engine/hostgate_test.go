package engine

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
)

// At most n hosts at once, however many resources each has; a host
// already in goes ahead; a cancelled wait gives up.
func TestHostGate(t *testing.T) {
	g := newHostGate(2)
	var mu sync.Mutex
	active, most := map[string]int{}, 0
	var wg sync.WaitGroup
	for i := range 24 {
		host := []string{"a", "b", "c", "d", "e", "f"}[i%6]
		wg.Add(1)
		go func() {
			defer wg.Done()
			leave, err := g.enter(context.Background(), host)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			active[host]++
			most = max(most, len(active))
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			if active[host]--; active[host] == 0 {
				delete(active, host)
			}
			mu.Unlock()
			leave()
		}()
	}
	wg.Wait()
	if most > 2 {
		t.Errorf("%d hosts worked on at once, want at most 2", most)
	}

	l1, _ := g.enter(context.Background(), "a")
	l2, _ := g.enter(context.Background(), "b")
	l3, err := g.enter(context.Background(), "a") // a is in: no wait
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.enter(ctx, "c"); err == nil {
		t.Error("a third host entered a gate of two")
	}
	l1()
	l3()
	if l4, err := g.enter(context.Background(), "c"); err != nil {
		t.Errorf("c after a left: %v", err)
	} else {
		l4()
	}
	l2()

	var none *hostGate // no --concurrency
	if leave, err := none.enter(context.Background(), "x"); err != nil {
		t.Error(err)
	} else {
		leave()
	}
}

// --limit: the URNs of the limited hosts' resources, the topic only with
// the host that carries it.
func TestTargets(t *testing.T) {
	inv, err := inventory.Load("../../inventory/examples/seed-centos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := inv.Select("kafka-2,lb")
	if err != nil {
		t.Fatal(err)
	}
	got := targets("sc", inv, Roles(), hosts)
	want := []string{
		"urn:pulumi:sc::trafficlab::trafficlab:index:Base::kafka-2-base",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Zookeeper::kafka-2-zookeeper",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Kafka::kafka-2-kafka",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Web::kafka-2-web",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Filebeat::kafka-2-filebeat",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Base::lb-1-base",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Lb::lb-1-lb",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Base::lb-2-base",
		"urn:pulumi:sc::trafficlab::trafficlab:index:Lb::lb-2-lb",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if all := targets("sc", inv, Roles(), nil); all != nil {
		t.Errorf("no limit: %d targets, want none (every resource)", len(all))
	}
	if kafka1, _ := inv.Select("kafka-1"); !slices.ContainsFunc(targets("sc", inv, Roles(), kafka1), func(u string) bool { return strings.HasSuffix(u, "::kafka-1-topic") }) {
		t.Error("kafka-1 carries the topic: its limit should target it")
	}
}

func TestCheckConcurrency(t *testing.T) {
	for _, tc := range []struct {
		file string
		n    int
		err  string
	}{
		{"seed-centos.yaml", 0, ""},
		{"seed-centos.yaml", 2, ""},
		{"seed-centos.yaml", 1, "--concurrency 1: a quorum of the ZooKeeper servers needs 2 hosts"},
		{"kraft.yaml", 1, "--concurrency 1: a quorum of the KRaft controllers needs 2 hosts"},
		{"seed-centos.yaml", -1, "want 1 or more"},
	} {
		inv, err := inventory.Load("../../inventory/examples/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		err = CheckConcurrency(inv, tc.n)
		if (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s, %d: %v, want %q", tc.file, tc.n, err, tc.err)
		}
	}
}

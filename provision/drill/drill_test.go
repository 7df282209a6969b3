package drill

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/inventory"
)

func TestRunRestoresLastFirstWhateverHappens(t *testing.T) {
	inv := &inventory.Inventory{Hosts: []inventory.Host{{Name: "a", Roles: []inventory.Role{inventory.RoleZooKeeper}}}}
	var out strings.Builder
	env := NewEnv(inv, nil, &out)
	var order []string
	mk := func(name string, runErr, restoreErr error) Drill {
		return Drill{Name: name, Summary: name, Needs: inventory.RoleZooKeeper, Run: func(ctx context.Context, env *Env, res *Result) error {
			env.Restore("first", func(context.Context) error { order = append(order, name+":first"); return nil })
			env.Restore("second", func(context.Context) error { order = append(order, name+":second"); return restoreErr })
			res.Figure("gap", 1.5, "s", "≤ 3 s")
			return runErr
		}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // interrupted: the undo steps still run
	results := []*Result{
		Run(ctx, env, mk("ok", nil, nil)),
		Run(ctx, env, mk("broken", errors.New("leader never elected"), nil)),
		Run(ctx, env, mk("skip", Skip("no replication"), nil)),
		Run(ctx, env, mk("norestore", nil, errors.New("unit will not start"))),
	}
	want := "ok:second ok:first broken:second broken:first skip:second skip:first norestore:second norestore:first"
	if got := strings.Join(order, " "); got != want {
		t.Errorf("restore order %q, want %q", got, want)
	}
	for i, w := range []struct {
		outcome  Outcome
		restored bool
		reason   string
	}{{Passed, true, ""}, {Failed, true, "leader never elected"}, {Skipped, true, "no replication"}, {Failed, false, "could not second: unit will not start"}} {
		r := results[i]
		if r.Outcome != w.outcome || r.Restored != w.restored || r.Reason != w.reason {
			t.Errorf("%s: %+v, want %+v", r.Drill, r, w)
		}
	}
	if !AnyFailed(results) || AnyFailed(results[:1]) {
		t.Error("AnyFailed")
	}
	var tb strings.Builder
	Table(&tb, results)
	if !strings.Contains(tb.String(), "gap 1.50 s (target ≤ 3 s)") {
		t.Errorf("table:\n%s", tb.String())
	}
	// A drill whose role no host has is skipped with that reason.
	rs := RunAll(context.Background(), env, []Drill{{Name: "lb", Needs: inventory.RoleLB, Run: func(context.Context, *Env, *Result) error { t.Error("ran"); return nil }}})
	if rs[0].Outcome != Skipped || rs[0].Reason != "no host has the lb role" {
		t.Errorf("%+v", rs[0])
	}
}

func TestSelect(t *testing.T) {
	all := []Drill{{Name: "zookeeper"}, {Name: "kafka"}, {Name: "lb"}, {Name: "replace", TakesHost: true}, {Name: "upgrade", Explicit: true}}
	for _, c := range []struct {
		args []string
		want string // drill[@target] ...
		err  string
	}{
		{args: []string{"lb", "zookeeper"}, want: "zookeeper lb"},
		{args: []string{"all"}, want: "zookeeper kafka lb"},
		{args: []string{"replace", "kafka-2"}, want: "replace@kafka-2"},
		{args: []string{"all", "upgrade"}, want: "zookeeper kafka lb upgrade"},
		{args: []string{"replace", "kafka-2", "lb", "replace", "kafka-3", "all"}, want: "zookeeper kafka lb replace@kafka-2 replace@kafka-3"},
		{args: []string{"kafak"}, err: `no drill "kafak" (have: zookeeper, kafka, lb, replace, upgrade, all)`},
		{args: []string{"replace"}, err: "drill replace needs a host: drill replace HOST"},
		{args: []string{"replace", "lb"}, err: `drill replace needs a host before "lb"`},
		{args: []string{"replace", "all"}, err: `drill replace needs a host before "all"`},
		{args: nil, err: "name a drill"},
	} {
		got, err := Select(all, c.args)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.args, err, c.err)
			}
			continue
		}
		var names []string
		for _, d := range got {
			n := d.Name
			if d.Target != "" {
				n += "@" + d.Target
			}
			names = append(names, n)
		}
		if err != nil || strings.Join(names, " ") != c.want {
			t.Errorf("%v: %v %v, want %s", c.args, names, err, c.want)
		}
	}
}

// The consumer drill's lines are probes the consumer records: signed with
// the cluster's key, and with no key (or another) only traffic.
func TestDrillEventSigned(t *testing.T) {
	p, err := nginxlog.Compile(nginxlog.Format)
	if err != nil {
		t.Fatal(err)
	}
	ev := drillEvent("the-cluster-probe-key", "dc1-0", "web-1", time.Now())
	for key, want := range map[string]bool{"the-cluster-probe-key": true, "another-key-entirely": false} {
		a := agg.NewAggregator(p, 0, agg.WithProbeKey([]byte(key)))
		if r := a.Add(ev); r != "" {
			t.Fatalf("the drill's line is rejected: %s", r)
		}
		if got := a.Take().Probes["dc1-0"] != nil; got != want {
			t.Errorf("with key %s: recorded %v, want %v", key, got, want)
		}
	}
}

// replace refuses what it cannot mean anything for, before it touches the
// cluster (there is none here).
func TestReplaceRefuses(t *testing.T) {
	inv := &inventory.Inventory{Hosts: []inventory.Host{
		{Name: "kafka-1", Roles: []inventory.Role{inventory.RoleKafka}},
		{Name: "db", Roles: []inventory.Role{inventory.RoleMySQL}},
	}}
	env := NewEnv(inv, nil, io.Discard)
	env.Up = func(context.Context, []string) error { t.Error("up ran"); return nil }
	for target, want := range map[string]struct {
		outcome Outcome
		reason  string
	}{
		"nope":    {Failed, `no host "nope" in the inventory`},
		"db":      {Failed, "db has no kafka role"},
		"kafka-1": {Skipped, "on 1 broker(s)"},
	} {
		d := Replace
		d.Target = target
		r := Run(context.Background(), env, d)
		if r.Outcome != want.outcome || !strings.Contains(r.Reason, want.reason) {
			t.Errorf("replace %s: %s %q, want %s %q", target, r.Outcome, r.Reason, want.outcome, want.reason)
		}
	}
}

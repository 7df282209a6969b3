package drill

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// ZooKeeper stops the ensemble's leader, measures how long the others
// take to elect a new one, starts it again and waits for it to rejoin.
var ZooKeeper = Drill{
	Name:    "zookeeper",
	Summary: "stop the ZooKeeper leader, measure the re-election, restart it",
	Needs:   inventory.RoleZooKeeper,
	Run:     runZooKeeper,
}

// ZooKeeper drill bounds.
var (
	ZKElectionTarget = 10 * time.Second // reported with the figure
	zkTimeout        = 2 * time.Minute
	zkPoll           = 100 * time.Millisecond
)

// zkModes asks every server its mode concurrently; "" for one not serving.
func zkModes(ctx context.Context, env *Env, hosts []inventory.Host) []string {
	modes := make([]string, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := env.Cluster.Client(ctx, h.Name)
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if m, err := zookeeper.Mode(cctx, cl); err == nil {
				modes[i] = m
			}
		}()
	}
	wg.Wait()
	return modes
}

func describeModes(hosts []inventory.Host, modes []string) string {
	var parts []string
	for i, h := range hosts {
		m := modes[i]
		if m == "" {
			m = "not serving"
		}
		parts = append(parts, h.Name+"="+m)
	}
	return strings.Join(parts, " ")
}

func runZooKeeper(ctx context.Context, env *Env, res *Result) error {
	hosts := env.Inventory.HostsWith(inventory.RoleZooKeeper)
	if len(hosts) < 3 {
		return Skip("an ensemble of %d server(s) has no election to measure: stopping its leader stops ZooKeeper", len(hosts))
	}
	modes := zkModes(ctx, env, hosts)
	e := zookeeper.ReadEnsemble(modes, len(hosts))
	if !e.Quorum || e.Serving != len(hosts) {
		return fmt.Errorf("the ensemble is not healthy before the drill (%s): fix it first (provision status)", describeModes(hosts, modes))
	}
	leader := hosts[e.Leader]
	env.Logf("leader is %s (%s)", leader.Name, describeModes(hosts, modes))

	env.Restore("start ZooKeeper on "+leader.Name+" and wait for the whole ensemble to serve", func(ctx context.Context) error {
		if err := env.Systemctl(ctx, leader.Name, "start", zookeeper.Unit); err != nil {
			return err
		}
		return Poll(ctx, 500*time.Millisecond, zkTimeout, func(ctx context.Context) (bool, string) {
			m := zkModes(ctx, env, hosts)
			e := zookeeper.ReadEnsemble(m, len(hosts))
			return e.Quorum && e.Serving == len(hosts), describeModes(hosts, m)
		})
	})
	env.Logf("stopping %s on %s", zookeeper.Unit, leader.Name)
	stopped := time.Now()
	if err := env.Systemctl(ctx, leader.Name, "stop", zookeeper.Unit); err != nil {
		return err
	}
	var rest []inventory.Host
	for _, h := range hosts {
		if h.Name != leader.Name {
			rest = append(rest, h)
		}
	}
	var newLeader string
	err := Poll(ctx, zkPoll, zkTimeout, func(ctx context.Context) (bool, string) {
		m := zkModes(ctx, env, rest)
		e := zookeeper.ReadEnsemble(m, len(hosts))
		if e.Quorum {
			newLeader = rest[e.Leader].Name
		}
		return e.Quorum, describeModes(rest, m)
	})
	if err != nil {
		return fmt.Errorf("no new leader among the others: %w", err)
	}
	election := time.Since(stopped)
	env.Logf("%s leads after %.2fs", newLeader, election.Seconds())
	res.Figure("re-election", round2(election.Seconds()), "s", fmt.Sprintf("≤ %v", ZKElectionTarget))

	env.Logf("starting %s on %s again", zookeeper.Unit, leader.Name)
	started := time.Now()
	if err := env.Systemctl(ctx, leader.Name, "start", zookeeper.Unit); err != nil {
		return err
	}
	err = Poll(ctx, 250*time.Millisecond, zkTimeout, func(ctx context.Context) (bool, string) {
		m := zkModes(ctx, env, hosts)
		e := zookeeper.ReadEnsemble(m, len(hosts))
		return e.Quorum && e.Serving == len(hosts), describeModes(hosts, m)
	})
	if err != nil {
		return fmt.Errorf("%s did not rejoin: %w", leader.Name, err)
	}
	res.Figure("rejoin", round2(time.Since(started).Seconds()), "s", "")
	if election > ZKElectionTarget {
		return fmt.Errorf("re-election took %.2fs, more than %v", election.Seconds(), ZKElectionTarget)
	}
	return nil
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

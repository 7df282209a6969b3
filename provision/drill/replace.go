package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
)

// Replace loses a broker host with its data while messages are produced
// (acks=all), rebuilds it with `provision up --limit HOST`, and measures
// how long until every partition's ISR is whole again: the broker comes
// back under its old id with an empty disk and copies its replicas from
// the others. Then the preferred leaders are elected, so that the rebuilt
// broker leads its share again and the read-back of everything
// acknowledged comes from it where it leads. Nothing acknowledged may be
// lost.
//
// By default the loss is the broker's disk: Kafka stops and its log
// directories are emptied. Env.Recreate replaces the whole machine
// instead (`lab destroy-machine HOST && lab up` in the lab, a new VM in
// real life).
var Replace = Drill{
	Name:      "replace",
	Summary:   "lose a broker host with its data, rebuild it with up --limit, measure the time to a full ISR while producing (acks=all); no acknowledged message may be lost",
	Needs:     inventory.RoleKafka,
	TakesHost: true,
	Run:       runReplace,
}

// replaceTimeout bounds the wait for a whole ISR after the rebuild.
var replaceTimeout = 10 * time.Minute

func runReplace(ctx context.Context, env *Env, res *Result) error {
	inv := env.Inventory
	h, ok := inv.Host(env.Target)
	switch {
	case !ok:
		return fmt.Errorf("no host %q in the inventory", env.Target)
	case !h.Has(inventory.RoleKafka):
		return fmt.Errorf("%s has no kafka role: the drill measures a broker's return (to rebuild another host, recreate it and run provision up --limit %s)", h.Name, h.Name)
	case env.Up == nil:
		return errors.New("drill replace needs a way to run up (provision drill gives it one)")
	}
	spec := kafkaadmin.SpecFrom(inv)
	if n := len(inv.HostsWith(inventory.RoleKafka)); n < 2 || spec.Replication < 2 {
		return Skip("the topic has replication %d on %d broker(s): a lost broker takes its partitions' only copy with it", spec.Replication, n)
	}
	dirs, err := kafka.LogDirs(inv, h)
	if err != nil {
		return err
	}
	id := kafka.ID(inv, h)
	a, err := kafka.Admin(inv, env.Secrets, env.Cluster.Dial)
	if err != nil {
		return err
	}
	defer a.Close()
	t, err := healthyTopic(ctx, a, spec.Name)
	if err != nil {
		return err
	}
	ends, err := endOffsets(ctx, a, spec.Name, len(t.Partitions))
	if err != nil {
		return err
	}
	watch := watchPartitions(ctx, env, a, spec.Name, t)
	defer watch()
	p := startProducer(ctx, a, spec.Name)
	defer p.stop()
	time.Sleep(2 * time.Second)

	// Registered before the loss: whatever happens after it, the host is
	// rebuilt, once.
	rebuilt := false
	rebuild := func(ctx context.Context) error {
		if err := env.Up(ctx, []string{h.Name}); err != nil {
			return fmt.Errorf("provision up --limit %s: %w", h.Name, err)
		}
		rebuilt = true
		return nil
	}
	env.Restore("rebuild "+h.Name+" with provision up --limit "+h.Name+" and wait for no under-replicated partition", func(ctx context.Context) error {
		if !rebuilt {
			if err := rebuild(ctx); err != nil {
				return err
			}
		}
		return waitInSync(ctx, a, spec.Name, replaceTimeout)
	})

	lost := time.Now()
	if env.Recreate != "" {
		env.Logf("losing %s (broker %d) with everything on it: %s", h.Name, id, env.Recreate)
		if err := recreate(ctx, env, h.Name); err != nil {
			return err
		}
	} else {
		env.Logf("losing the disk of broker %d on %s: Kafka stops and %s are emptied", id, h.Name, strings.Join(dirs, ", "))
		if err := loseDisk(ctx, env, h.Name, dirs); err != nil {
			return err
		}
	}
	env.Logf("%s is lost %.1fs after the start of the loss; rebuilding it: provision up --limit %s", h.Name, time.Since(lost).Seconds(), h.Name)
	upStart := time.Now()
	if err := rebuild(ctx); err != nil {
		return fmt.Errorf("%w%s", err, brokerLog(ctx, env, h.Name))
	}
	upTime := time.Since(upStart)
	if err := waitInSync(ctx, a, spec.Name, replaceTimeout); err != nil {
		return fmt.Errorf("after the rebuild of %s, broker %d did not get back into the ISR of every partition: %w%s", h.Name, id, err, brokerLog(ctx, env, h.Name))
	}
	full := time.Since(lost)
	env.Logf("every partition's ISR is whole %.1fs after the loss (up took %.1fs)", full.Seconds(), upTime.Seconds())

	md, err := a.Metadata(ctx, spec.Name)
	if err != nil {
		return err
	}
	if _, ok := md.Broker(id); !ok {
		return fmt.Errorf("broker %d is not in the cluster's metadata after the rebuild of %s: %v", id, h.Name, md.Brokers)
	}
	if err := a.ElectPreferred(ctx, spec.Name); err != nil {
		return err
	}
	preferred, led, err := ledBy(ctx, a, spec.Name, id)
	if err != nil {
		return err
	}
	env.Logf("preferred leaders elected: broker %d leads %d of the %d partitions it is preferred for", id, led, preferred)
	time.Sleep(2 * time.Second) // some writes to the rebuilt broker as leader
	acked, failed := p.stop()
	stall := p.longestStall()
	seen, err := readFrom(ctx, a, spec.Name, ends, p.prefix)
	if err != nil {
		return err
	}
	missing := 0
	for k := range acked {
		if !seen[k] {
			missing++
		}
	}
	res.Figure("up --limit "+h.Name, upTime.Seconds(), "s", "")
	res.Figure("full ISR after the loss", full.Seconds(), "s", "")
	res.Figure("partitions led by the rebuilt broker", float64(led), "", fmt.Sprintf("= %d", preferred))
	res.Figure("acknowledged", float64(len(acked)), "messages", "")
	res.Figure("lost", float64(missing), "messages", "0")
	res.Figure("unacknowledged writes", float64(failed), "", "")
	res.Figure("longest produce stall", stall.Seconds(), "s", "")
	switch {
	case len(acked) == 0:
		return errors.New("no message was acknowledged during the drill")
	case missing > 0:
		return fmt.Errorf("%d of %d acknowledged messages were not read back", missing, len(acked))
	case led < preferred:
		return fmt.Errorf("broker %d leads %d of the %d partitions it is the preferred leader of after the election", id, led, preferred)
	}
	return nil
}

// loseDisk stops the broker and empties its log directories: a disk
// replaced, the host itself still there.
func loseDisk(ctx context.Context, env *Env, host string, dirs []string) error {
	if err := env.Systemctl(ctx, host, "stop", kafka.Unit); err != nil {
		return err
	}
	var q []string
	for _, d := range dirs {
		q = append(q, remote.ShellQuote(d))
	}
	if _, err := env.Cluster.Run(ctx, host, "find "+strings.Join(q, " ")+" -mindepth 1 -delete", remote.WithTimeout(2*time.Minute)); err != nil {
		return fmt.Errorf("%s: empty the log directories: %w", host, err)
	}
	return nil
}

// recreate runs the user's command that replaces the machine, on the
// control machine, with the host's name in TRAFFICLAB_HOST.
func recreate(ctx context.Context, env *Env, host string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", env.Recreate)
	cmd.Env = append(os.Environ(), "TRAFFICLAB_HOST="+host)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("--recreate %q for %s: %w\n%s", env.Recreate, host, err, remote.Tail(out, 20))
	}
	return nil
}

// ledBy counts the partitions of topic whose preferred replica is broker
// id, and how many of those it leads.
func ledBy(ctx context.Context, a *kafkaadmin.Admin, topic string, id int) (preferred, led int, err error) {
	md, err := a.Metadata(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	for _, p := range md.Topics[topic].Partitions {
		if p.Preferred == id {
			preferred++
			if p.Leader == id {
				led++
			}
		}
	}
	return preferred, led, nil
}

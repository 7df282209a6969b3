package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Rolling restart waits: how long a restarted broker may take to be back in
// the cluster's metadata, and the cluster to have no under-replicated
// partition again (replicas catch up on what they missed).
var (
	BackTimeout      = 3 * time.Minute
	InSyncTimeout    = 10 * time.Minute
	rollPollInterval = time.Second
)

// rolling restarts the broker of t's host when it is its turn: one broker
// at a time, the next only after this one is back in the metadata and no
// partition of the cluster is under-replicated (over the Kafka protocol,
// through c.Dial). A broker that does not recover stops the roll: the
// error carries the last lines of its log, and no other broker restarts.
// A nil restart waits the same way for a broker started in this run.
func (b *broker) rolling(ctx context.Context, c *role.Context, t *step.Target, restart func(context.Context) error) error {
	waited := time.Now()
	b.turn.Lock()
	defer b.turn.Unlock()
	id := ID(c.Inventory, c.Host)
	if b.halted != nil {
		return fmt.Errorf("broker %d not restarted: the rolling restart stopped at an earlier broker: %w", id, b.halted)
	}
	err := b.restartAndWait(ctx, c, t, restart, id, waited)
	if err != nil {
		b.halted = err
	}
	return err
}

// restartAndWait is one broker's turn of the roll.
func (b *broker) restartAndWait(ctx context.Context, c *role.Context, t *step.Target, restart func(context.Context) error, id int, waited time.Time) error {
	what := "restart"
	if restart == nil {
		what = "start"
	}
	if w := time.Since(waited); w > time.Second {
		c.Notef("kafka: broker %d's turn (%s) after waiting %.1fs for the others", id, what, w.Seconds())
	}
	start := time.Now()
	if restart == nil {
		c.Notef("kafka: broker %d started in this run: waiting for it to be back and for its replicas to catch up", id)
	} else {
		c.Notef("kafka: restarting broker %d (one broker at a time)", id)
		if err := restart(ctx); err != nil {
			return err
		}
	}
	if c.Dial == nil {
		return nil // no way to talk to the cluster (tests without one)
	}
	dial, err := AdminDial(c.Inventory, c.Secrets, c.Dial)
	if err != nil {
		return err
	}
	self := kafkaadmin.NewWithBrokers([]string{net.JoinHostPort(c.Host.Name, strconv.Itoa(AdminPort(c.Inventory)))}, dial)
	defer self.Close()
	if err := waitFor(ctx, BackTimeout, func(ctx context.Context) (bool, string, error) {
		md, err := self.Metadata(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		if _, ok := md.Broker(id); !ok {
			return false, fmt.Sprintf("broker %d is not in the metadata yet", id), nil
		}
		return true, "", nil
	}); err != nil {
		return fmt.Errorf("broker %d did not come back after its %s: %w%s", id, what, err, LastLogLines(ctx, t.Host))
	}
	c.Notef("kafka: broker %d back in the cluster after %.1fs", id, time.Since(start).Seconds())

	all := kafkaadmin.NewWithBrokers(AdminBrokers(c.Inventory), dial)
	defer all.Close()
	syncStart := time.Now()
	if err := waitFor(ctx, InSyncTimeout, func(ctx context.Context) (bool, string, error) {
		md, err := all.Metadata(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		if u := md.UnderReplicated(); len(u) > 0 {
			return false, fmt.Sprintf("%d under-replicated partitions: %s", len(u), strings.Join(u[:min(len(u), 5)], ", ")), nil
		}
		return true, "", nil
	}); err != nil {
		return fmt.Errorf("after the %s of broker %d, the cluster did not get its replicas in sync (no further broker restarts): %w%s", what, id, err, LastLogLines(ctx, t.Host))
	}
	c.Notef("kafka: no under-replicated partitions %.1fs after broker %d was back; next broker may restart", time.Since(syncStart).Seconds(), id)
	return nil
}

// waitFor polls ready until it says yes, ctx ends or timeout passes; the
// error then carries the last reason it gave.
func waitFor(ctx context.Context, timeout time.Duration, ready func(context.Context) (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		ok, why, err := ready(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		last = why
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up after %v: %s", timeout, last)
		case <-time.After(rollPollInterval):
		}
	}
}

// logTail is how many lines of the broker's log an error carries.
const logTail = 20

// LastLogLines returns the end of the broker's server.log on h, as a
// paragraph to append to an error ("" when it cannot be read: the error
// says enough without it).
func LastLogLines(ctx context.Context, h step.Host) string { return lastLines(ctx, h, LogDir) }

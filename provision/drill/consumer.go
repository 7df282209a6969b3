package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/verify"
)

// Consumer SIGKILLs the consumer while it works through a load of lines;
// after systemd has restarted it, MySQL must hold exactly the lines
// produced: none lost, none counted twice.
var Consumer = Drill{
	Name:    "consumer",
	Summary: "SIGKILL the consumer under load; after systemd restarts it, the totals in MySQL must be exact",
	Needs:   inventory.RoleConsumer,
	Run:     runConsumer,
}

// Consumer drill sizes.
var (
	consumerProbes   = 5    // probe ids, each counted exactly in the probes table
	consumerPerProbe = 4000 // lines per probe id
	consumerKills    = 3
	consumerSettle   = 3 * time.Minute
)

func runConsumer(ctx context.Context, env *Env, res *Result) error {
	inv := env.Inventory
	host := inv.HostsWith(inventory.RoleConsumer)[0].Name
	unit := consumer.Service.Unit()
	backend := host
	if webs := inv.HostsWith(inventory.RoleWeb); len(webs) > 0 {
		backend = webs[0].Name
	}
	if err := env.Systemctl(ctx, host, "is-active --quiet", unit); err != nil {
		return fmt.Errorf("the consumer is not running before the drill: %w", err)
	}
	st, _, err := verify.DialStore(ctx, inv, env.Cluster, env.Secrets)
	if err != nil {
		return err
	}
	defer st.Close()
	env.Restore("make sure "+unit+" runs on "+host, func(ctx context.Context) error {
		return env.Systemctl(ctx, host, "start", unit)
	})
	restartsBefore, _ := nRestarts(ctx, env, host, unit)

	a, err := kafka.Admin(inv, env.Secrets, env.Cluster.Dial)
	if err != nil {
		return err
	}
	defer a.Close()
	w := a.Writer(kafkaadmin.SpecFrom(inv).Name)
	w.BatchSize = 500
	defer w.Close()

	run := make([]byte, 4)
	rand.Read(run)
	ids := make([]string, consumerProbes)
	for i := range ids {
		ids[i] = fmt.Sprintf("dc%s-%d", hex.EncodeToString(run), i)
	}
	total := consumerProbes * consumerPerProbe
	env.Logf("producing %d lines (%d probe ids × %d) and killing the consumer %d times meanwhile", total, consumerProbes, consumerPerProbe, consumerKills)
	// Produce in consumerKills+1 parts; after each but the last, kill the
	// consumer while it works through the lines, and wait for systemd to
	// have restarted it before the next part.
	part := total / (consumerKills + 1)
	kills := 0
	start := time.Now()
	var lastKill time.Time
	msgs := make([]kafkago.Message, 0, 500)
	for i := 0; i < total; {
		n := min(part, total-i)
		if kills == consumerKills {
			n = total - i
		}
		for j := 0; j < n; j++ {
			msgs = append(msgs, kafkago.Message{Value: drillEvent(env.Secrets.ProbeKey, ids[(i+j)%len(ids)], backend, time.Now())})
			if len(msgs) == cap(msgs) || j == n-1 {
				if err := w.WriteMessages(ctx, msgs...); err != nil {
					return fmt.Errorf("produce the drill's lines: %w", err)
				}
				msgs = msgs[:0]
			}
		}
		i += n
		if kills == consumerKills || i >= total {
			break
		}
		pid, err := mainPID(ctx, env, host, unit)
		if err != nil {
			return err
		}
		time.Sleep(300 * time.Millisecond) // in the middle of its work
		kills++
		env.Logf("SIGKILL %s (pid %d) on %s after %d lines (%d of %d)", unit, pid, host, i, kills, consumerKills)
		if err := env.Systemctl(ctx, host, "kill --signal=SIGKILL", unit); err != nil {
			return err
		}
		lastKill = time.Now()
		if err := Poll(ctx, 200*time.Millisecond, time.Minute, func(ctx context.Context) (bool, string) {
			p, err := mainPID(ctx, env, host, unit)
			return err == nil && p != 0 && p != pid, fmt.Sprintf("pid %d (%v)", p, err)
		}); err != nil {
			return fmt.Errorf("systemd did not restart the consumer: %w", err)
		}
	}
	env.Logf("%d lines produced in %.1fs; waiting for the totals", total, time.Since(start).Seconds())

	var counts map[string]uint64
	err = Poll(ctx, time.Second, consumerSettle, func(ctx context.Context) (bool, string) {
		counts = map[string]uint64{}
		done := true
		for _, id := range ids {
			p, ok, err := st.Probe(ctx, id)
			if err != nil {
				return false, err.Error()
			}
			if ok {
				counts[id] = p.Count
			}
			if counts[id] < uint64(consumerPerProbe) {
				done = false
			}
		}
		return done, fmt.Sprintf("counted %v of %d each", counts, consumerPerProbe)
	})
	settled := time.Since(lastKill)
	var counted uint64
	for _, c := range counts {
		counted += c
	}
	restartsAfter, _ := nRestarts(ctx, env, host, unit)
	res.Figure("lines", float64(total), "", "")
	res.Figure("kills", float64(kills), "", "")
	res.Figure("restarts by systemd", float64(restartsAfter-restartsBefore), "", "")
	lost := int64(total) - int64(counted)
	res.Figure("lines lost", float64(max(lost, 0)), "", "0")
	res.Figure("lines counted twice", float64(max(-lost, 0)), "", "0")
	res.Figure("exact totals after the last kill", round2(settled.Seconds()), "s", "")
	if err != nil {
		return fmt.Errorf("totals not exact: %w", err)
	}
	if lost != 0 {
		return fmt.Errorf("%d lines produced, %d counted", total, counted)
	}
	if restartsAfter-restartsBefore < kills {
		return fmt.Errorf("systemd restarted the consumer %d times after %d kills", restartsAfter-restartsBefore, kills)
	}
	return nil
}

// drillEvent is a filebeat event holding one access-log line of the
// product's format for probe id, signed with the cluster's probe key (the
// consumer records only signed probes).
// The lines are probe lines of a real backend (the first web host, or the
// consumer's host), as verify's probes are: counted like any traffic of
// that backend, so that no made-up backend appears in the dashboard or
// falls silent afterwards (backend_silent).
func drillEvent(probeKey, id, backend string, t time.Time) []byte {
	line := fmt.Sprintf(`192.0.2.7 192.0.2.1 [%s] "GET %s%s HTTP/1.1" 200 12 240 80 0.001 "-" "trafficlab-drill" "drill"`,
		t.Format("02/Jan/2006:15:04:05 -0700"), agg.ProbePrefix, agg.SignProbe([]byte(probeKey), id))
	b, _ := json.Marshal(map[string]any{
		"@timestamp": t.UTC().Format(time.RFC3339Nano),
		"message":    line,
		"host":       map[string]string{"name": backend},
	})
	return b
}

// mainPID reads the unit's main process id (0 when it has none).
func mainPID(ctx context.Context, env *Env, host, unit string) (int, error) {
	out, err := env.Cluster.Run(ctx, host, "systemctl show -p MainPID --value "+unit)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// nRestarts reads how often systemd restarted the unit.
func nRestarts(ctx context.Context, env *Env, host, unit string) (int, error) {
	out, err := env.Cluster.Run(ctx, host, "systemctl show -p NRestarts --value "+unit)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
	"github.com/trafficlab/trafficlab/provision/zkmeta"
)

// kafkaPhase is where the state says the cluster's metadata is: each
// broker's and each controller process's kafka.mode as last applied.
type kafkaPhase struct {
	brokers     map[string]inventory.KafkaMode
	controllers map[string]inventory.KafkaMode
	zookeeper   bool // the state has ZooKeeper servers
	// The release each broker and controller last ran, by host; missing
	// for resources applied before trafficlab recorded it.
	brokerVersions, controllerVersions map[string]string
}

// phaseOf reads the phase from a deployment (Pulumi's state, version 3).
// A broker applied before trafficlab recorded its mode ran in ZooKeeper
// mode when the state has ZooKeeper servers, else in KRaft mode.
func phaseOf(deployment json.RawMessage) (kafkaPhase, error) {
	resources, err := stateResources(deployment)
	if err != nil {
		return kafkaPhase{}, err
	}
	p := kafkaPhase{brokers: map[string]inventory.KafkaMode{}, controllers: map[string]inventory.KafkaMode{},
		brokerVersions: map[string]string{}, controllerVersions: map[string]string{}}
	unknown := []string{}
	for _, res := range resources {
		host, _ := res.Inputs["host"].(string)
		settings, _ := res.Inputs["settings"].(map[string]any)
		mode, _ := settings["mode"].(string)
		version, _ := settings["version"].(string)
		switch res.Type {
		case provider.TypeOf(zookeeper.Name):
			p.zookeeper = true
		case provider.TypeOf(kafka.Name):
			if version != "" {
				p.brokerVersions[host] = version
			}
			if mode == "" {
				unknown = append(unknown, host)
				continue
			}
			p.brokers[host] = inventory.KafkaMode(mode)
		case provider.TypeOf(kafka.ControllerName):
			p.controllers[host] = inventory.KafkaMode(mode)
			if version != "" {
				p.controllerVersions[host] = version
			}
		}
	}
	for _, h := range unknown {
		p.brokers[h] = inventory.KafkaKRaft
		if p.zookeeper {
			p.brokers[h] = inventory.KafkaZooKeeper
		}
	}
	return p, nil
}

// in lists the hosts whose mode is m, sorted.
func in(modes map[string]inventory.KafkaMode, m inventory.KafkaMode) []string {
	var out []string
	for h, x := range modes {
		if x == m {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// checkTransition refuses a kafka.mode (and kafka.controllers) the cluster
// cannot go to from the phase the state records, with what to do instead:
// ZooKeeper → migrating → kraft, one up each, as Kafka's migration goes;
// back from migrating to ZooKeeper while every broker still runs in
// ZooKeeper mode (rollBack); no way back once the controllers have left
// migration mode.
func checkTransition(p kafkaPhase, inv *inventory.Inventory) error {
	k := inv.Kafka
	where := inv.Where("kafka.mode")
	if len(p.brokers) == 0 && len(p.controllers) == 0 {
		switch {
		case k.Mode == inventory.KafkaMigrating:
			return fmt.Errorf("%s: kafka.mode is migrating, but no broker has run yet: the migration moves a running ZooKeeper cluster to KRaft; a new cluster starts with kraft (or zookeeper)", where)
		case k.SeparateControllers():
			return fmt.Errorf("%s: kafka.controllers: separate is what a migration from ZooKeeper leaves; a new KRaft cluster runs combined nodes (kafka.controllers: combined)", inv.Where("kafka.controllers"))
		}
		return nil
	}
	finalised := in(p.controllers, inventory.KafkaKRaft)
	kraftBrokers := in(p.brokers, inventory.KafkaKRaft)
	switch {
	case len(p.controllers) == 0 && len(kraftBrokers) > 0:
		// A KRaft cluster from the start: combined nodes.
		if k.Mode != inventory.KafkaKRaft {
			return fmt.Errorf("%s: kafka.mode is %s, but the brokers run in KRaft mode: Kafka has no way from KRaft back to ZooKeeper", where, k.Mode)
		}
		if k.SeparateControllers() {
			return fmt.Errorf("%s: kafka.controllers is separate, but the controllers run inside the brokers (combined): trafficlab does not move them out", inv.Where("kafka.controllers"))
		}
	case len(p.controllers) == 0:
		// ZooKeeper mode.
		if k.Mode == inventory.KafkaKRaft {
			return fmt.Errorf("%s: the brokers run in ZooKeeper mode; moving them to KRaft goes through the migration: set kafka.mode: migrating and run up (the KRaft controllers copy the metadata), then kafka.mode: kraft and up again", where)
		}
	case len(finalised) > 0:
		if k.Mode != inventory.KafkaKRaft {
			return fmt.Errorf("%s: kafka.mode is %s, but the migration was finalised (the controllers on %s left migration mode): Kafka cannot go back to ZooKeeper after that", where, k.Mode, strings.Join(finalised, ", "))
		}
		if !k.SeparateControllers() {
			return fmt.Errorf("%s: the cluster's controllers run in processes of their own since its migration: set kafka.controllers: separate", inv.Where("kafka.controllers"))
		}
	default:
		// Migrating, or on the way to kraft (some brokers there).
		switch k.Mode {
		case inventory.KafkaZooKeeper:
			if len(kraftBrokers) > 0 {
				return fmt.Errorf("%s: the brokers on %s already run as KRaft brokers: set kafka.mode: migrating and run up to move them back to migration mode first", where, strings.Join(kraftBrokers, ", "))
			}
			// Allowed: rollBack and the brokers' restarts undo the
			// migration (validation refuses kafka.controllers here).
		case inventory.KafkaKRaft:
			if !k.SeparateControllers() {
				return fmt.Errorf("%s: the migration's controllers run in processes of their own and stay so: set kafka.controllers: separate", inv.Where("kafka.controllers"))
			}
			if len(inv.HostsWith(inventory.RoleZooKeeper)) == 0 && p.zookeeper {
				return fmt.Errorf("%s: keep the zookeeper roles until this up has finalised the migration (the controllers write ZooKeeper until then, and the brokers need it until they leave it); take them off in the next up", inv.Where("hosts"))
			}
		}
	}
	return nil
}

// kafkaChange is what checkKafkaMode found to do beyond the roles' plans.
type kafkaChange struct {
	// adopt is the cluster id ZooKeeper holds when the migration begins
	// and it is not the stack's: the controllers must be formatted with
	// the id the brokers already have.
	adopt string
	// note says what a new kafka.version restarts, in which order.
	note string
	// protocol is the inter-broker protocol to keep while a ZooKeeper-mode
	// upgrade rolls (inventory.Kafka.RunningProtocol).
	protocol string
	// rollback lists the hosts whose KRaft controllers a migration rolled
	// back to ZooKeeper stops before the brokers restart (rollBack).
	rollback []string
}

// checkKafkaMode refuses, before anything changes, a kafka.mode or
// kafka.version the cluster cannot go to from where the state has it, and
// says what the change takes.
func checkKafkaMode(ctx context.Context, inv *inventory.Inventory, deployment json.RawMessage, stackID string, dial zkmeta.DialFunc) (kafkaChange, error) {
	if len(inv.HostsWith(inventory.RoleKafka)) == 0 {
		return kafkaChange{}, nil
	}
	p, err := phaseOf(deployment)
	if err != nil {
		return kafkaChange{}, err
	}
	if err := checkTransition(p, inv); err != nil {
		return kafkaChange{}, err
	}
	if err := checkVersion(p, inv); err != nil {
		return kafkaChange{}, err
	}
	ch := kafkaChange{note: upgradeNote(p, inv), protocol: runningProtocol(p, inv)}
	if inv.Kafka.Mode == inventory.KafkaZooKeeper && len(p.controllers) > 0 {
		ch.rollback = sortedKeys(p.controllers)
		ch.note = fmt.Sprintf("kafka: rollback to ZooKeeper mode (the migration is not finalised): stops the KRaft controllers on %s, deletes their claim on /controller and the migration's record /migration in ZooKeeper so that a broker is the controller again, then restarts the brokers one at a time without the migration settings and removes the controllers",
			strings.Join(ch.rollback, ", "))
	}
	ch.adopt, err = clusterIDToAdopt(ctx, p, inv, stackID, dial)
	return ch, err
}

// rollBack does the part of Kafka's rollback of a migration (brokers still
// in ZooKeeper mode) that must come before the brokers restart: the KRaft
// controllers stop, and their claim on /controller goes, so that a broker
// (in migration mode still) is elected the ZooKeeper-mode controller; the
// migration's record goes too, so that a later migration starts afresh.
// Run again (an up resumed), it stops nothing running and deletes no
// broker's claim.
func rollBack(ctx context.Context, inv *inventory.Inventory, hosts []string, run func(ctx context.Context, host, cmd string) error, dial zkmeta.DialFunc, out io.Writer) error {
	unit := kafka.ControllerUnit
	for _, h := range hosts {
		// A host whose unit is gone (removed by an earlier attempt) has
		// nothing to stop.
		cmd := fmt.Sprintf("if systemctl cat %[1]s >/dev/null 2>&1; then systemctl stop %[1]s; fi", unit)
		if err := run(ctx, h, cmd); err != nil {
			return fmt.Errorf("rollback: stop the KRaft controller on %s: %w", h, err)
		}
		fmt.Fprintf(out, "%s: kafka: rollback: KRaft controller stopped\n", h)
	}
	zc, closeZK, err := openZooKeeper(ctx, inv, dial)
	if err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	defer closeZK()
	brokers := map[int]bool{}
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		brokers[kafka.ID(inv, h)] = true
	}
	deleted, id, err := zc.DeleteControllerOf(func(id int) bool { return !brokers[id] })
	if err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	if deleted {
		fmt.Fprintf(out, "kafka: rollback: deleted /controller (held by KRaft controller %d): a broker takes the controller role\n", id)
	}
	had, err := zc.DeleteMigration()
	if err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	if had {
		fmt.Fprintln(out, "kafka: rollback: deleted the migration's record /migration")
	}
	return nil
}

// openZooKeeper starts a session with the inventory's ZooKeeper servers;
// the session (reconnects included) lasts a minute at most. closeZK ends
// it.
func openZooKeeper(ctx context.Context, inv *inventory.Inventory, dial zkmeta.DialFunc) (zc *zkmeta.Client, closeZK func(), err error) {
	var servers []string
	for _, z := range inv.HostsWith(inventory.RoleZooKeeper) {
		servers = append(servers, net.JoinHostPort(z.Name, strconv.Itoa(zookeeper.ClientPort)))
	}
	zctx, cancel := context.WithTimeout(ctx, time.Minute)
	if zc, err = zkmeta.Open(zctx, servers, dial); err != nil {
		cancel()
		return nil, nil, err
	}
	return zc, func() { zc.Close(); cancel() }, nil
}

// clusterIDToAdopt reads, when the migration is about to begin, the
// cluster id ZooKeeper holds; "" when it is the stack's or there is no
// migration to begin.
func clusterIDToAdopt(ctx context.Context, p kafkaPhase, inv *inventory.Inventory, stackID string, dial zkmeta.DialFunc) (string, error) {
	if inv.Kafka.Mode != inventory.KafkaMigrating || len(p.controllers) > 0 {
		return "", nil
	}
	zc, closeZK, err := openZooKeeper(ctx, inv, dial)
	if err != nil {
		return "", fmt.Errorf("the migration needs the cluster id the brokers keep in ZooKeeper: %w", err)
	}
	defer closeZK()
	id, err := zc.ClusterID()
	if err != nil {
		return "", fmt.Errorf("the migration needs the cluster id the brokers keep in ZooKeeper: %w", err)
	}
	if !kafka.ValidClusterID(id) {
		return "", fmt.Errorf("ZooKeeper's /cluster/id holds %q, which is no Kafka cluster id: the controllers cannot be formatted for it", id)
	}
	if id == stackID {
		return "", nil
	}
	return id, nil
}

// checkVersion refuses a kafka.version the cluster cannot go to from the
// releases the state records: no downgrade to an older release (the
// cluster may already use what only the newer one knows), and no new
// release in the same up as a change of kafka.mode (Kafka's procedures
// take one at a time: upgrade, then migrate).
func checkVersion(p kafkaPhase, inv *inventory.Inventory) error {
	k := inv.Kafka
	where := inv.Where("kafka.version")
	for _, ran := range []struct {
		what     string
		versions map[string]string
		modes    map[string]inventory.KafkaMode
	}{{"broker", p.brokerVersions, p.brokers}, {"controller", p.controllerVersions, p.controllers}} {
		for _, h := range sortedKeys(ran.versions) {
			v := ran.versions[h]
			c, ok := inventory.CompareVersions(k.Version, v, false)
			if !ok {
				continue
			}
			if c < 0 {
				return fmt.Errorf("%s: kafka.version is %s, but the %s on %s runs Kafka %s: trafficlab does not downgrade to an older release (the cluster may already use what only %s knows); set kafka.version: %s", where, k.Version, ran.what, h, v, kafka.ProtocolVersion(v), v)
			}
			if m, ok := ran.modes[h]; ok && m != k.Mode && v != k.Version {
				return fmt.Errorf("%s: kafka.version changes from %s to %s in the same up as kafka.mode from %s to %s (the %s on %s): change one at a time, the release first", where, v, k.Version, m, k.Mode, ran.what, h)
			}
		}
	}
	return nil
}

// upgradeNote says, before anything changes, what a new kafka.version
// restarts and in which order; "" when every broker and controller
// already runs it.
func upgradeNote(p kafkaPhase, inv *inventory.Inventory) string {
	k := inv.Kafka
	var from []string
	stale := func(versions map[string]string, id func(inventory.Host) int, what string) []string {
		var out []string
		for _, h := range inv.HostsWith(inventory.RoleKafka) {
			if v, ok := versions[h.Name]; ok && v != k.Version {
				out = append(out, fmt.Sprintf("%d (%s)", id(h), h.Name))
				if !slices.Contains(from, v) {
					from = append(from, v)
				}
			}
		}
		if len(out) == 0 {
			return nil
		}
		return []string{what + " " + strings.Join(out, ", ")}
	}
	brokers := stale(p.brokerVersions, func(h inventory.Host) int { return kafka.ID(inv, h) }, "brokers")
	var controllers []string
	if k.SeparateControllers() {
		controllers = stale(p.controllerVersions, func(h inventory.Host) int { return kafka.ControllerID(inv, h) }, "controllers")
	}
	if len(brokers)+len(controllers) == 0 {
		return ""
	}
	order := append(controllers, brokers...)
	if k.Mode == inventory.KafkaKRaft && !k.SeparateControllers() {
		order[0] = strings.Replace(order[0], "brokers", "nodes (broker and controller)", 1)
	}
	slices.Sort(from)
	note := fmt.Sprintf("kafka: upgrade %s → %s: restarts one at a time, each after the cluster is back in sync, in the order the hosts get ready: %s", strings.Join(from, ", "), k.Version, strings.Join(order, ", then "))
	switch {
	case k.Mode == inventory.KafkaKRaft:
		note += "; then metadata.version is raised to the highest level every node supports"
	case len(from) == 1:
		if c, _ := inventory.CompareVersions(from[0], k.Version, false); c < 0 {
			note += fmt.Sprintf("; inter.broker.protocol.version stays %s while older brokers run, and the next up raises it (one more rolling restart)", kafka.ProtocolVersion(from[0]))
		}
	}
	return note
}

// runningProtocol is the inter-broker protocol brokers in ZooKeeper mode
// must keep while an upgrade rolls: that of the oldest release one of them
// ran, when it is older than kafka.version's; "" otherwise.
func runningProtocol(p kafkaPhase, inv *inventory.Inventory) string {
	if inv.Kafka.Mode != inventory.KafkaZooKeeper {
		return ""
	}
	oldest := ""
	for _, v := range p.brokerVersions {
		if c, ok := inventory.CompareVersions(v, inv.Kafka.Version, false); ok && c < 0 {
			if o, _ := inventory.CompareVersions(v, oldest, false); oldest == "" || o < 0 {
				oldest = v
			}
		}
	}
	if oldest == "" {
		return ""
	}
	return kafka.ProtocolVersion(oldest)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

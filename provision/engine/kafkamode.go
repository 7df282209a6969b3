package engine

import (
	"context"
	"encoding/json"
	"fmt"
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
}

// phaseOf reads the phase from a deployment (Pulumi's state, version 3).
// A broker applied before trafficlab recorded its mode ran in ZooKeeper
// mode when the state has ZooKeeper servers, else in KRaft mode.
func phaseOf(deployment json.RawMessage) (kafkaPhase, error) {
	resources, err := stateResources(deployment)
	if err != nil {
		return kafkaPhase{}, err
	}
	p := kafkaPhase{brokers: map[string]inventory.KafkaMode{}, controllers: map[string]inventory.KafkaMode{}}
	unknown := []string{}
	for _, res := range resources {
		host, _ := res.Inputs["host"].(string)
		settings, _ := res.Inputs["settings"].(map[string]any)
		mode, _ := settings["mode"].(string)
		switch res.Type {
		case provider.TypeOf(zookeeper.Name):
			p.zookeeper = true
		case provider.TypeOf(kafka.Name):
			if mode == "" {
				unknown = append(unknown, host)
				continue
			}
			p.brokers[host] = inventory.KafkaMode(mode)
		case provider.TypeOf(kafka.ControllerName):
			p.controllers[host] = inventory.KafkaMode(mode)
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
// no way back once the controllers have left migration mode.
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
			return fmt.Errorf("%s: going back from migrating to zookeeper is not something trafficlab does yet; Kafka allows it before the migration is finalised: stop the controllers, delete /controller and /migration in ZooKeeper, and restart the brokers without the migration settings (see Kafka's migration guide); or go on with kafka.mode: kraft", where)
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

// checkKafkaMode refuses, before anything changes, a kafka.mode the
// cluster cannot go to from where the state has it; and when the
// migration is about to begin, returns the cluster id ZooKeeper holds if
// it is not the stack's: the controllers must be formatted with the id the
// brokers already have.
func checkKafkaMode(ctx context.Context, inv *inventory.Inventory, deployment json.RawMessage, stackID string, dial zkmeta.DialFunc) (adopt string, err error) {
	if len(inv.HostsWith(inventory.RoleKafka)) == 0 {
		return "", nil
	}
	p, err := phaseOf(deployment)
	if err != nil {
		return "", err
	}
	if err := checkTransition(p, inv); err != nil {
		return "", err
	}
	if inv.Kafka.Mode != inventory.KafkaMigrating || len(p.controllers) > 0 {
		return "", nil
	}
	var servers []string
	for _, z := range inv.HostsWith(inventory.RoleZooKeeper) {
		servers = append(servers, net.JoinHostPort(z.Name, strconv.Itoa(zookeeper.ClientPort)))
	}
	zctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	zc, err := zkmeta.Open(zctx, servers, dial)
	if err != nil {
		return "", fmt.Errorf("the migration needs the cluster id the brokers keep in ZooKeeper: %w", err)
	}
	defer zc.Close()
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

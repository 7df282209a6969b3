package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/provider"
)

// state is a deployment with resources given as "role host [mode
// [version]]".
func state(t *testing.T, resources ...string) json.RawMessage {
	t.Helper()
	type res struct {
		Type   string         `json:"type"`
		Inputs map[string]any `json:"inputs"`
	}
	var doc struct {
		Resources []res `json:"resources"`
	}
	for _, r := range resources {
		f := strings.Fields(r)
		in := map[string]any{"host": f[1]}
		if len(f) > 2 {
			settings := map[string]any{"mode": f[2]}
			if len(f) > 3 {
				settings["version"] = f[3]
			}
			in["settings"] = settings
		}
		doc.Resources = append(doc.Resources, res{Type: provider.TypeOf(f[0]), Inputs: in})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The migration goes one phase per up, ZooKeeper → migrating → kraft,
// resumes where an up stopped, and never goes back once finalised.
func TestKafkaModeTransitions(t *testing.T) {
	zk := []string{"zookeeper k1", "kafka k1 zookeeper", "kafka k2 zookeeper"}
	legacyZK := []string{"zookeeper k1", "kafka k1", "kafka k2"}
	migrating := []string{"zookeeper k1", "kafka-controller k1 migrating", "kafka-controller k2 migrating", "kafka k1 migrating", "kafka k2 migrating"}
	halfway := []string{"zookeeper k1", "kafka-controller k1 migrating", "kafka-controller k2 migrating", "kafka k1 kraft", "kafka k2 migrating"}
	finalised := []string{"zookeeper k1", "kafka-controller k1 kraft", "kafka-controller k2 migrating", "kafka k1 kraft", "kafka k2 kraft"}
	combined := []string{"kafka k1 kraft", "kafka k2 kraft"}
	rollingBack := []string{"zookeeper k1", "kafka-controller k1 migrating", "kafka-controller k2 migrating", "kafka k1 zookeeper", "kafka k2 migrating"}
	for _, tc := range []struct {
		name        string
		state       []string
		mode        inventory.KafkaMode
		controllers inventory.KafkaControllers
		noZK        bool
		refused     string // "" when allowed
	}{
		{"new zookeeper cluster", nil, inventory.KafkaZooKeeper, "", false, ""},
		{"new kraft cluster", nil, inventory.KafkaKRaft, inventory.ControllersCombined, true, ""},
		{"new cluster migrating", nil, inventory.KafkaMigrating, inventory.ControllersSeparate, false, "no broker has run yet"},
		{"new cluster with separate controllers", nil, inventory.KafkaKRaft, inventory.ControllersSeparate, true, "what a migration from ZooKeeper leaves"},
		{"zookeeper stays", zk, inventory.KafkaZooKeeper, "", false, ""},
		{"zookeeper to migrating", zk, inventory.KafkaMigrating, inventory.ControllersSeparate, false, ""},
		{"state before modes were recorded", legacyZK, inventory.KafkaMigrating, inventory.ControllersSeparate, false, ""},
		{"zookeeper straight to kraft", zk, inventory.KafkaKRaft, inventory.ControllersSeparate, false, "set kafka.mode: migrating and run up"},
		{"migrating again (resumed)", migrating, inventory.KafkaMigrating, inventory.ControllersSeparate, false, ""},
		{"migrating to kraft", migrating, inventory.KafkaKRaft, inventory.ControllersSeparate, false, ""},
		{"migrating to kraft, combined", migrating, inventory.KafkaKRaft, inventory.ControllersCombined, false, "set kafka.controllers: separate"},
		{"migrating to kraft dropping zookeeper at once", migrating, inventory.KafkaKRaft, inventory.ControllersSeparate, true, "keep the zookeeper roles until this up has finalised"},
		{"migrating back to zookeeper (rollback)", migrating, inventory.KafkaZooKeeper, "", false, ""},
		{"rollback resumed", rollingBack, inventory.KafkaZooKeeper, "", false, ""},
		{"halfway to kraft, resumed", halfway, inventory.KafkaKRaft, inventory.ControllersSeparate, false, ""},
		{"halfway back to migrating", halfway, inventory.KafkaMigrating, inventory.ControllersSeparate, false, ""},
		{"halfway back to zookeeper", halfway, inventory.KafkaZooKeeper, "", false, "k1 already run as KRaft brokers"},
		{"finalised stays", finalised, inventory.KafkaKRaft, inventory.ControllersSeparate, false, ""},
		{"finalised, zookeeper taken off", finalised, inventory.KafkaKRaft, inventory.ControllersSeparate, true, ""},
		{"finalised back to migrating", finalised, inventory.KafkaMigrating, inventory.ControllersSeparate, false, "the migration was finalised (the controllers on k1 left migration mode)"},
		{"finalised back to zookeeper", finalised, inventory.KafkaZooKeeper, "", false, "Kafka cannot go back to ZooKeeper after that"},
		{"combined kraft to zookeeper", combined, inventory.KafkaZooKeeper, "", false, "no way from KRaft back to ZooKeeper"},
		{"combined kraft to separate", combined, inventory.KafkaKRaft, inventory.ControllersSeparate, true, "does not move them out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roles := []inventory.Role{inventory.RoleZooKeeper, inventory.RoleKafka}
			if tc.noZK {
				roles = roles[1:]
			}
			inv := &inventory.Inventory{
				Hosts: []inventory.Host{{Name: "k1", Roles: roles}, {Name: "k2", Roles: []inventory.Role{inventory.RoleKafka}}},
				Kafka: inventory.Kafka{Mode: tc.mode, Controllers: tc.controllers},
			}
			p, err := phaseOf(state(t, tc.state...))
			if err != nil {
				t.Fatal(err)
			}
			err = checkTransition(p, inv)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refused != "" && err == nil:
				t.Errorf("allowed, want refused with %q", tc.refused)
			case tc.refused != "" && !strings.Contains(err.Error(), tc.refused):
				t.Errorf("refused with %q, want %q in it", err, tc.refused)
			}
		})
	}
}

// A new kafka.version is refused when it goes back to an older release or
// comes with a new kafka.mode; otherwise preview and up say what restarts
// in which order, and a ZooKeeper cluster keeps the old protocol while
// its brokers roll.
func TestKafkaVersionChanges(t *testing.T) {
	zk38 := []string{"zookeeper k1", "kafka k1 zookeeper 3.8.1", "kafka k2 zookeeper 3.8.1"}
	zkHalf := []string{"zookeeper k1", "kafka k1 zookeeper 3.9.2", "kafka k2 zookeeper 3.8.1"}
	migrated := []string{"kafka-controller k1 kraft 3.9.2", "kafka-controller k2 kraft 3.9.2", "kafka k1 kraft 3.9.2", "kafka k2 kraft 3.9.2"}
	combined := []string{"kafka k1 kraft 4.0.0", "kafka k2 kraft 4.0.0"}
	for _, tc := range []struct {
		name        string
		state       []string
		mode        inventory.KafkaMode
		controllers inventory.KafkaControllers
		version     string
		refused     string
		note        string // "" when no note
		protocol    string
	}{
		{"same release", migrated, inventory.KafkaKRaft, inventory.ControllersSeparate, "3.9.2", "", "", ""},
		{"patch release, zookeeper", zk38, inventory.KafkaZooKeeper, "", "3.8.2", "", "kafka: upgrade 3.8.1 → 3.8.2: restarts one at a time, each after the cluster is back in sync, in the order the hosts get ready: brokers 1 (k1), 2 (k2)", ""},
		{"new release, zookeeper", zk38, inventory.KafkaZooKeeper, "", "3.9.2", "",
			"kafka: upgrade 3.8.1 → 3.9.2: restarts one at a time, each after the cluster is back in sync, in the order the hosts get ready: brokers 1 (k1), 2 (k2); inter.broker.protocol.version stays 3.8 while older brokers run, and the next up raises it (one more rolling restart)", "3.8"},
		{"zookeeper roll resumed", zkHalf, inventory.KafkaZooKeeper, "", "3.9.2", "", "kafka: upgrade 3.8.1 → 3.9.2: restarts one at a time, each after the cluster is back in sync, in the order the hosts get ready: brokers 2 (k2); inter.broker.protocol.version stays 3.8 while older brokers run, and the next up raises it (one more rolling restart)", "3.8"},
		{"migrated to kafka 4", migrated, inventory.KafkaKRaft, inventory.ControllersSeparate, "4.4.0", "",
			"kafka: upgrade 3.9.2 → 4.4.0: restarts one at a time, each after the cluster is back in sync, in the order the hosts get ready: controllers 3001 (k1), 3002 (k2), then brokers 1 (k1), 2 (k2); then metadata.version is raised to the highest level every node supports", ""},
		{"combined nodes", combined, inventory.KafkaKRaft, inventory.ControllersCombined, "4.1.0", "",
			"kafka: upgrade 4.0.0 → 4.1.0: restarts one at a time, each after the cluster is back in sync, in the order the hosts get ready: nodes (broker and controller) 1 (k1), 2 (k2); then metadata.version is raised to the highest level every node supports", ""},
		{"downgrade", combined, inventory.KafkaKRaft, inventory.ControllersCombined, "3.9.2", "trafficlab does not downgrade to an older release", "", ""},
		{"patch downgrade", combined, inventory.KafkaKRaft, inventory.ControllersCombined, "4.0.1", "", "kafka: upgrade 4.0.0 → 4.0.1: restarts one at a time, each after the cluster is back in sync, in the order the hosts get ready: nodes (broker and controller) 1 (k1), 2 (k2); then metadata.version is raised to the highest level every node supports", ""},
		{"new release while migrating", zk38, inventory.KafkaMigrating, inventory.ControllersSeparate, "3.9.2", "in the same up as kafka.mode from zookeeper to migrating", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roles := []inventory.Role{inventory.RoleKafka}
			if tc.mode != inventory.KafkaKRaft {
				roles = append(roles, inventory.RoleZooKeeper)
			}
			inv := &inventory.Inventory{
				Hosts: []inventory.Host{{Name: "k1", Roles: roles}, {Name: "k2", Roles: []inventory.Role{inventory.RoleKafka}}},
				Kafka: inventory.Kafka{Mode: tc.mode, Controllers: tc.controllers, Version: tc.version},
			}
			p, err := phaseOf(state(t, tc.state...))
			if err != nil {
				t.Fatal(err)
			}
			err = checkVersion(p, inv)
			switch {
			case tc.refused == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Fatalf("got %v, want refused with %q", err, tc.refused)
			case tc.refused != "":
				return
			}
			if got := upgradeNote(p, inv); got != tc.note {
				t.Errorf("note:\n%s\nwant:\n%s", got, tc.note)
			}
			if got := runningProtocol(p, inv); got != tc.protocol {
				t.Errorf("protocol %q, want %q", got, tc.protocol)
			}
		})
	}
}

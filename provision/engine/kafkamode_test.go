package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/provider"
)

// state is a deployment with resources given as "role host mode".
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
			in["settings"] = map[string]any{"mode": f[2]}
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
		{"migrating back to zookeeper", migrating, inventory.KafkaZooKeeper, "", false, "not something trafficlab does yet"},
		{"halfway to kraft, resumed", halfway, inventory.KafkaKRaft, inventory.ControllersSeparate, false, ""},
		{"halfway back to migrating", halfway, inventory.KafkaMigrating, inventory.ControllersSeparate, false, ""},
		{"halfway back to zookeeper", halfway, inventory.KafkaZooKeeper, "", false, "k1 already run as KRaft brokers"},
		{"finalised stays", finalised, inventory.KafkaKRaft, inventory.ControllersSeparate, false, ""},
		{"finalised, zookeeper taken off", finalised, inventory.KafkaKRaft, inventory.ControllersSeparate, true, ""},
		{"finalised back to migrating", finalised, inventory.KafkaMigrating, inventory.ControllersSeparate, false, "the migration was finalised (the controllers on k1 left migration mode)"},
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

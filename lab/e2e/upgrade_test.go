//go:build lab && linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/lab/kafkadist"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
)

// checkUpgrade takes the ZooKeeper-mode lab through the whole path with
// `provision drill upgrade`: kafka.mode migrating, back to zookeeper (the
// rollback Kafka allows before the migration is finalised), migrating
// again, then kraft, then the zookeeper roles off, then Kafka 4 (the lab's
// KRaft release), while the
// drill produces and probes through the VIP. Every phase passes, nothing
// acknowledged is lost, every probe is in MySQL exactly once; the
// message produced at the start is still there, verify passes, and the
// test's inventory is the last phase's from then on.
func (e *env) checkUpgrade(ctx context.Context, a *kafkaadmin.Admin, probe string) []figure {
	e.t.Helper()
	art, err := kafkadist.Build(ctx, kafkadist.KRaftVersion, kafkadist.DefaultCacheDir, e.t.Logf)
	if err != nil {
		e.t.Fatalf("assemble Kafka %s for the upgrade: %v", kafkadist.KRaftVersion, err)
	}
	phases := []struct {
		name string
		edit func(doc map[string]any)
	}{
		{"migrating", func(doc map[string]any) { kafkaSection(doc)["mode"] = "migrating" }},
		{"rollback", func(doc map[string]any) {
			kafkaSection(doc)["mode"] = "zookeeper"
			delete(kafkaSection(doc), "controllers")
		}},
		{"migrating-again", func(doc map[string]any) { kafkaSection(doc)["mode"] = "migrating" }},
		{"kraft", func(doc map[string]any) {
			kafkaSection(doc)["mode"] = "kraft"
			kafkaSection(doc)["controllers"] = "separate"
		}},
		{"no-zookeeper", func(doc map[string]any) {
			hosts, _ := doc["hosts"].([]any)
			for _, h := range hosts {
				hm, _ := h.(map[string]any)
				roles, _ := hm["roles"].([]any)
				hm["roles"] = slices.DeleteFunc(roles, func(r any) bool { return r == string(inventory.RoleZooKeeper) })
			}
		}},
		{"kafka-" + kafkadist.KRaftVersion, func(doc map[string]any) {
			k := kafkaSection(doc)
			k["version"], k["artifact"], k["sha512"] = kafkadist.KRaftVersion, art.Path, art.SHA512
		}},
	}
	b, err := os.ReadFile(e.inv)
	if err != nil {
		e.t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		e.t.Fatal(err)
	}
	args := []string{"drill", "--json", "upgrade"}
	var first, last string
	for i, p := range phases {
		p.edit(doc)
		out, err := yaml.Marshal(doc)
		if err != nil {
			e.t.Fatal(err)
		}
		last = filepath.Join(e.state, fmt.Sprintf("upgrade-%d-%s.yaml", i+1, p.name))
		if err := os.WriteFile(last, out, 0o600); err != nil {
			e.t.Fatal(err)
		}
		args = append(args, "--via", last)
		if first == "" {
			first = last
		}
	}
	out, progress, err := e.provisionOut(ctx, args...)
	e.t.Logf("drill upgrade:\n%s", progress)
	var rs []drillResult
	if jerr := json.Unmarshal([]byte(out), &rs); jerr != nil || len(rs) != 1 {
		e.t.Fatalf("drill upgrade: %v (%v)\n%s", jerr, err, out)
	}
	d := rs[0]
	if d.Outcome != "passed" {
		e.t.Errorf("drill upgrade: %s: %s; want passed", d.Outcome, d.Reason)
	}
	for _, name := range []string{"lost", "probes missing in MySQL", "probes counted twice"} {
		if v, ok := d.figure(name); !ok || v != 0 {
			e.t.Errorf("drill upgrade: %s = %v (reported %v), want 0", name, v, ok)
		}
	}
	if !strings.Contains(progress, "kafka: upgrade "+kafkadist.ZooKeeperVersion+" → "+kafkadist.KRaftVersion+": restarts one at a time") {
		e.t.Errorf("up to Kafka %s did not say what it restarts in which order", kafkadist.KRaftVersion)
	}
	for _, want := range []string{"kafka: rollback to ZooKeeper mode", "kafka: rollback: KRaft controller stopped", "kafka: rollback: deleted the migration's record /migration"} {
		if !strings.Contains(progress, want) {
			e.t.Errorf("up back to kafka.mode zookeeper did not say %q", want)
		}
	}
	if !strings.Contains(progress, "raise metadata.version") {
		e.t.Errorf("up to Kafka %s did not raise metadata.version", kafkadist.KRaftVersion)
	}
	figs := d.figures()

	// From here on the test's inventory is the upgraded cluster's.
	b, err = os.ReadFile(last)
	if err != nil {
		e.t.Fatal(err)
	}
	e.writeInventory(b)
	if _, err := e.findKey(ctx, a, probe); err != nil {
		e.t.Errorf("after the upgrade, the message produced before it: %v", err)
	}
	if s := e.provisionOK(ctx, "preview"); len(s.Changes) != 0 {
		e.t.Errorf("preview after the upgrade shows changes: %+v", s.Changes)
	}
	// Back to migrating (the first phase's inventory) is refused: the
	// migration is finalised.
	kept := e.inv
	e.inv = first
	stdout, stderr, err := e.provisionOut(ctx, "preview")
	e.inv = kept
	if said := stdout + stderr; err == nil || !strings.Contains(said, "Kafka cannot go back to ZooKeeper") {
		e.t.Errorf("preview back to migrating after the upgrade: %v\n%s", err, tail(said, 10))
	}
	return append(figs, e.checkVerify(ctx, "verify after the upgrade")...)
}

func kafkaSection(doc map[string]any) map[string]any {
	k, _ := doc["kafka"].(map[string]any)
	if k == nil {
		k = map[string]any{}
		doc["kafka"] = k
	}
	return k
}

package inventory

import (
	"strings"
	"testing"
)

const selectSrc = `
cluster: {name: lab}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat, consumer]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat, consumer]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat, consumer]}
  - {name: lb-1, address: 10.0.0.4, roles: [lb], lb: {priority: 150}}
  - {name: lb-2, address: 10.0.0.5, roles: [lb], lb: {priority: 100}}
  - {name: db-1, address: 10.0.0.9, roles: [mysql, dashboard]}
lb: {vip: 10.0.0.100/24}
`

func TestSelect(t *testing.T) {
	inv, err := Parse("lab.yaml", []byte(selectSrc), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ limit, want, err string }{
		{"", "kafka-1,kafka-2,kafka-3,lb-1,lb-2,db-1", ""},
		{"kafka-2", "kafka-2", ""},
		{"db-1,kafka-2", "kafka-2,db-1", ""}, // inventory order
		{"lb", "lb-1,lb-2", ""},
		{"lb, mysql ,kafka-1", "kafka-1,lb-1,lb-2,db-1", ""},
		{"kafka-2,kafka-2", "kafka-2", ""},
		{"kafka-4", "", "--limit kafka-4: lab.yaml has no such host or role (hosts: kafka-1, kafka-2, kafka-3, lb-1, lb-2, db-1; roles: zookeeper"},
		{"kafak-2", "", "did you mean kafka-2?"},
		{"kafka-1,,kafka-2", "", "an empty name between commas"},
	} {
		hosts, err := inv.Select(tc.limit)
		var names []string
		for _, h := range hosts {
			names = append(names, h.Name)
		}
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("Select(%q): err %v, want %q", tc.limit, err, tc.err)
		case tc.err == "" && (err != nil || strings.Join(names, ",") != tc.want):
			t.Errorf("Select(%q) = %v, %v; want %s", tc.limit, names, err, tc.want)
		}
	}
	// A role no host has: a KRaft cluster has no ZooKeeper.
	kraft, err := Parse("kraft.yaml", []byte(strings.ReplaceAll(selectSrc, "zookeeper, ", "")+"kafka: {mode: kraft, version: 4.1.0}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kraft.Select("zookeeper"); err == nil || !strings.Contains(err.Error(), "no host of kraft.yaml has the zookeeper role") {
		t.Errorf("Select(zookeeper) on a KRaft cluster: %v", err)
	}
}

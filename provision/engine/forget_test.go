package engine

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
)

// Dropping resources removes them and every reference to them, and keeps
// the rest of the state as written (numbers included).
func TestDropResources(t *testing.T) {
	const state = `{"manifest":{"time":"2026-12-04T10:00:00Z"},"secrets_providers":{"type":"passphrase"},"resources":[
{"urn":"urn:pulumi:lab::trafficlab::pulumi:pulumi:Stack::trafficlab-lab","type":"pulumi:pulumi:Stack"},
{"urn":"urn:pulumi:lab::trafficlab::trafficlab:index:Base::kafka-2-base","inputs":{"port":9092}},
{"urn":"urn:pulumi:lab::trafficlab::trafficlab:index:Kafka::kafka-2-kafka","dependencies":["urn:pulumi:lab::trafficlab::trafficlab:index:Base::kafka-2-base"]},
{"urn":"urn:pulumi:lab::trafficlab::trafficlab:index:Kafka::kafka-1-kafka","inputs":{"big":12345678901234567890},
 "dependencies":["urn:pulumi:lab::trafficlab::trafficlab:index:Kafka::kafka-2-kafka","urn:pulumi:lab::trafficlab::trafficlab:index:Base::kafka-1-base"],
 "propertyDependencies":{"x":["urn:pulumi:lab::trafficlab::trafficlab:index:Kafka::kafka-2-kafka"]}}
]}`
	out, dropped, err := dropResources(json.RawMessage(state), func(urn string) bool { return strings.Contains(urn, "::kafka-2-") })
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 2 {
		t.Errorf("dropped %v, want kafka-2's two resources", dropped)
	}
	s := string(out)
	for _, want := range []string{`"kafka-1-kafka"`, `"dependencies":["urn:pulumi:lab::trafficlab::trafficlab:index:Base::kafka-1-base"]`, `"x":[]`, `12345678901234567890`, `"secrets_providers":{"type":"passphrase"}`} {
		if !strings.Contains(s, want) && !strings.Contains(s, strings.ReplaceAll(want, `"kafka-1-kafka"`, `::kafka-1-kafka"`)) {
			t.Errorf("the state lacks %s:\n%s", want, s)
		}
	}
	if strings.Contains(s, "kafka-2") {
		t.Errorf("kafka-2 is still referenced:\n%s", s)
	}
	if _, _, err := dropResources(json.RawMessage(`{"resources": 7}`), func(string) bool { return true }); err == nil {
		t.Error("a broken state was accepted")
	}
}

// The hosts the state has resources on and the inventory no longer names,
// a broker among them known as one.
func TestDeparted(t *testing.T) {
	const state = `{"resources":[
{"urn":"urn:pulumi:lab::trafficlab::pulumi:pulumi:Stack::trafficlab-lab","type":"pulumi:pulumi:Stack"},
{"type":"trafficlab:index:Base","inputs":{"host":"kafka-1","address":"10.0.0.11"}},
{"type":"trafficlab:index:Base","inputs":{"host":"kafka-3","address":"10.0.0.13"}},
{"type":"trafficlab:index:Kafka","inputs":{"host":"kafka-3","address":"10.0.0.13"}},
{"type":"trafficlab:index:Web","inputs":{"host":"web-9","address":"10.0.0.29"}},
{"type":"trafficlab:index:Topic","inputs":{"name":"nginxlog"}}
]}`
	inv := &inventory.Inventory{Hosts: []inventory.Host{{Name: "kafka-1"}}}
	got, err := departed(json.RawMessage(state), inv)
	if err != nil {
		t.Fatal(err)
	}
	want := []departedHost{{name: "kafka-3", address: "10.0.0.13", broker: true}, {name: "web-9", address: "10.0.0.29"}}
	if !slices.Equal(got, want) {
		t.Errorf("departed %+v, want %+v", got, want)
	}
}

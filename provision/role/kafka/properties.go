package kafka

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// Property is one line of server.properties.
type Property struct{ Key, Value string }

// Group is a commented block of server.properties.
type Group struct {
	Title      string
	Properties []Property
}

// segmentBytes is Kafka's default segment size. Retention by size deletes
// whole segments, so a size limit gets segments a quarter of it (at least
// 1 MiB), or the limit would not bite until a segment filled.
const (
	segmentBytes    = 1 << 30
	minSegmentBytes = 1 << 20
)

// Properties renders the broker properties of host h, grouped as they are
// written: trafficlab's own, then the inventory's kafka.properties, which
// win over trafficlab's.
func Properties(inv *inventory.Inventory, h inventory.Host) ([]Group, error) {
	id := ID(inv, h)
	if id == 0 {
		return nil, fmt.Errorf("%s does not have the kafka role", h.Name)
	}
	k := inv.Kafka
	brokers := inv.HostsWith(inventory.RoleKafka)
	itoa := strconv.Itoa
	// Brokers bind every address and advertise the host's name: Debian
	// maps a host's own name to 127.0.1.1, which no other host reaches.
	// With TLS the brokers talk among themselves on a listener of their
	// own, where both ends show the cluster CA's certificates.
	cl := clientListener(k)
	listeners := []string{fmt.Sprintf("%s://0.0.0.0:%d", cl, Port)}
	advertised := []string{fmt.Sprintf("%s://%s:%d", cl, h.Name, Port)}
	protocols := []string{cl + ":" + cl}
	interBroker := cl
	if k.TLS() {
		listeners = append(listeners, fmt.Sprintf("%s://0.0.0.0:%d", internal, InternalPort))
		advertised = append(advertised, fmt.Sprintf("%s://%s:%d", internal, h.Name, InternalPort))
		protocols = append(protocols, internal+":SSL")
		interBroker = internal
	}
	controller := "CONTROLLER:PLAINTEXT"
	if k.TLS() {
		controller = "CONTROLLER:SSL"
	}
	var identity Group
	switch {
	case k.Mode == inventory.KafkaKRaft && !k.SeparateControllers():
		identity = Group{"This node: a broker and a KRaft controller, reached by its host's name", []Property{
			{"process.roles", "broker,controller"},
			{"node.id", itoa(id)},
			{"controller.quorum.voters", Voters(inv)},
			{"listeners", strings.Join(listeners, ",") + fmt.Sprintf(",CONTROLLER://0.0.0.0:%d", ControllerPort)},
			{"advertised.listeners", strings.Join(advertised, ",")},
			{"controller.listener.names", "CONTROLLER"},
			{"inter.broker.listener.name", interBroker},
			{"listener.security.protocol.map", strings.Join(append([]string{controller}, protocols...), ",")},
		}}
	case k.Mode == inventory.KafkaKRaft:
		identity = Group{"This broker: a KRaft broker, its controllers in processes of their own (the cluster was migrated from ZooKeeper)", []Property{
			{"process.roles", "broker"},
			{"node.id", itoa(id)},
			{"controller.quorum.voters", Voters(inv)},
			{"listeners", strings.Join(listeners, ",")},
			{"advertised.listeners", strings.Join(advertised, ",")},
			{"controller.listener.names", "CONTROLLER"},
			{"inter.broker.listener.name", interBroker},
			{"listener.security.protocol.map", strings.Join(append([]string{controller}, protocols...), ",")},
		}}
	default:
		identity = Group{"This broker: it binds every address and is reached by its host's name", []Property{
			{"broker.id", itoa(id)},
			{"listeners", strings.Join(listeners, ",")},
			{"advertised.listeners", strings.Join(advertised, ",")},
		}}
		if k.Mode == inventory.KafkaMigrating {
			// The controllers' listener must be in the map for the broker
			// to reach them.
			identity.Properties = append(identity.Properties,
				Property{"listener.security.protocol.map", strings.Join(append([]string{controller}, protocols...), ",")},
				Property{"inter.broker.listener.name", interBroker})
		} else if k.TLS() {
			identity.Properties = append(identity.Properties,
				Property{"listener.security.protocol.map", strings.Join(protocols, ",")},
				Property{"inter.broker.listener.name", interBroker})
		}
	}

	segment := int64(segmentBytes)
	if b := k.Retention.Bytes; b > 0 && b/4 < segment {
		segment = max(b/4, minSegmentBytes)
	}
	storage := Group{"Log storage; retention per partition, whichever limit comes first", []Property{
		{"log.dirs", DataDir},
		{"log.retention.hours", itoa(k.Retention.Hours)},
		{"log.retention.bytes", strconv.FormatInt(k.Retention.Bytes, 10)},
		{"log.segment.bytes", strconv.FormatInt(segment, 10)},
		{"log.retention.check.interval.ms", "300000"},
	}}

	// The internal topics get the log topic's durability, as far as there
	// are brokers for it.
	internalRF := min(3, len(brokers))
	durability := Group{"Topics: none made by accident; acks=all writes survive a broker down", []Property{
		{"num.partitions", itoa(k.Topic.Partitions)},
		{"default.replication.factor", itoa(k.Topic.Replication)},
		{"min.insync.replicas", itoa(k.Topic.MinInsync)},
		{"offsets.topic.replication.factor", itoa(internalRF)},
		{"transaction.state.log.replication.factor", itoa(internalRF)},
		{"transaction.state.log.min.isr", itoa(max(1, min(k.Topic.MinInsync, internalRF)))},
		{"unclean.leader.election.enable", "false"},
		{"auto.create.topics.enable", "false"},
	}}
	groups := []Group{identity, storage, durability}
	if g := securityGroup(k); g != nil {
		groups = append(groups, *g)
	}

	if k.UsesZooKeeper() {
		groups = append(groups, zooKeeperGroup(inv))
	}
	if k.Mode == inventory.KafkaZooKeeper && k.RunningProtocol != "" {
		groups = append(groups, Group{"Upgrade under way: brokers older than " + k.Version + " still run, so every broker keeps their protocol; the next up, with all on " + k.Version + ", drops this line", []Property{
			{"inter.broker.protocol.version", k.RunningProtocol},
		}})
	}
	if k.Mode == inventory.KafkaMigrating {
		groups = append(groups, Group{"Migration to KRaft: the KRaft controllers copy the metadata out of ZooKeeper and then run the cluster, writing ZooKeeper as well", []Property{
			{"zookeeper.metadata.migration.enable", "true"},
			{"controller.quorum.voters", Voters(inv)},
			{"controller.listener.names", "CONTROLLER"},
			// Kafka's procedure pins the brokers' protocol to the release
			// they run during the migration.
			{"inter.broker.protocol.version", ProtocolVersion(k.Version)},
		}})
	}

	// The user's properties are merged last: a key given there replaces
	// trafficlab's line rather than repeating it further down.
	if len(k.Properties) > 0 {
		user := Group{Title: "From the inventory's kafka.properties, which win over the lines above"}
		for _, key := range sortedKeys(k.Properties) {
			user.Properties = append(user.Properties, Property{key, escape(k.Properties[key])})
			for i := range groups {
				groups[i].Properties = slices.DeleteFunc(groups[i].Properties, func(p Property) bool { return p.Key == key })
			}
		}
		groups = append(groups, user)
	}
	return groups, nil
}

// zooKeeperGroup names the ensemble, for brokers in ZooKeeper mode and
// for brokers and controllers during the migration.
func zooKeeperGroup(inv *inventory.Inventory) Group {
	var ensemble []string
	for _, z := range inv.HostsWith(inventory.RoleZooKeeper) {
		ensemble = append(ensemble, fmt.Sprintf("%s:%d", z.Name, zookeeper.ClientPort))
	}
	return Group{"The ZooKeeper ensemble that keeps the cluster's metadata", []Property{
		{"zookeeper.connect", strings.Join(ensemble, ",")},
		{"zookeeper.connection.timeout.ms", "18000"},
	}}
}

// Voters is controller.quorum.voters: every controller's node id, host
// name and port. A migration from ZooKeeper needs this static quorum.
func Voters(inv *inventory.Inventory) string {
	var voters []string
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		voters = append(voters, fmt.Sprintf("%d@%s:%d", ControllerID(inv, h), h.Name, ControllerPort))
	}
	return strings.Join(voters, ",")
}

// ProtocolVersion is the inter-broker protocol of a release: its major
// and minor version ("3.9" for 3.9.1).
func ProtocolVersion(version string) string {
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		return version
	}
	return parts[0] + "." + parts[1]
}

// merged is the host's properties as a map, the inventory's winning.
func merged(inv *inventory.Inventory, h inventory.Host) (map[string]string, error) {
	groups, err := Properties(inv, h)
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, g := range groups {
		for _, p := range g.Properties {
			m[p.Key] = p.Value
		}
	}
	return m, nil
}

// escape writes a value as java.util.Properties reads it back: backslashes
// doubled, leading blanks kept. Line breaks are refused by validation.
func escape(v string) string {
	v = strings.ReplaceAll(v, `\`, `\\`)
	if strings.HasPrefix(v, " ") || strings.HasPrefix(v, "\t") {
		v = `\` + v
	}
	return v
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

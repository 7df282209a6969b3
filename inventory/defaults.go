package inventory

import (
	"fmt"
	"time"
)

// Defaults. They follow the seed (www.sc.com, Asia/Shanghai, topic nginxlog
// with replication 3 and min.insync 2) and DESIGN.md section 4.
const (
	defaultDomain         = "www.sc.com"
	defaultTimezone       = "Asia/Shanghai"
	defaultKafkaVersion   = "3.9.1"
	defaultTopic          = "nginxlog"
	defaultVRID           = 51
	defaultDashboardPort  = 8080
	defaultConnectTimeout = 2 * time.Minute

	// ZooKeeper 3.8 is the line Kafka 3.9 is built and tested against.
	defaultZooKeeperArtifact = "https://archive.apache.org/dist/zookeeper/zookeeper-3.8.4/apache-zookeeper-3.8.4-bin.tar.gz"
)

// KafkaArtifactURL is the Apache archive URL of a Kafka release. Scala 2.13
// builds exist for every 3.x and 4.x release (4.x has no other).
func KafkaArtifactURL(version string) string {
	return fmt.Sprintf("https://archive.apache.org/dist/kafka/%s/kafka_2.13-%s.tgz", version, version)
}

// firstLBPriority and the ones after it: the first lb host is the master
// (150), the others backups counting down from 100, so the master stays
// clear of them.
const (
	firstLBPriority = 150
	nextLBPriority  = 100
)

// applyDefaults fills in every setting the file leaves out. A setting that
// failed to decode counts as left out, so its default keeps later checks
// from tripping over the same mistake twice.
func (c *checker) applyDefaults() {
	inv := c.inv
	str := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	num := func(p *int, path string, v int) {
		if !c.set[path] {
			*p = v
		}
	}

	str(&inv.Cluster.Domain, defaultDomain)
	str(&inv.Cluster.Timezone, defaultTimezone)
	str((*string)(&inv.Cluster.Firewall), string(FirewallManaged))
	str((*string)(&inv.Cluster.SELinux), string(SELinuxKeep))

	str(&inv.SSH.User, "root")
	num(&inv.SSH.Port, "ssh.port", 22)
	str(&inv.SSH.KnownHosts, "~/.ssh/known_hosts")
	str((*string)(&inv.SSH.HostKeyCheck), string(HostKeyAcceptNew))
	if !c.set["ssh.connect_timeout"] {
		inv.SSH.ConnectTimeout = defaultConnectTimeout
	}

	str(&inv.Kafka.Version, defaultKafkaVersion)
	if inv.Kafka.Security == "" {
		inv.Kafka.Security = KafkaPlaintext
	}
	if inv.Kafka.Mode == "" {
		// Kafka 4 has no ZooKeeper mode, so naming a 4.x version is enough.
		if v, ok := parseVersion(inv.Kafka.Version); ok && v.major >= 4 {
			inv.Kafka.Mode = KafkaKRaft
		} else {
			inv.Kafka.Mode = KafkaZooKeeper
		}
	}
	if inv.Kafka.Controllers == "" {
		// A migration needs controllers of their own, and a migrated
		// cluster keeps them.
		inv.Kafka.Controllers = ControllersCombined
		if inv.Kafka.Mode == KafkaMigrating {
			inv.Kafka.Controllers = ControllersSeparate
		}
	}
	if _, ok := parseVersion(inv.Kafka.Version); ok {
		str(&inv.Kafka.Artifact, KafkaArtifactURL(inv.Kafka.Version))
	}
	str(&inv.Kafka.Heap, "1g")
	str(&inv.Kafka.Topic.Name, defaultTopic)
	brokers := len(inv.HostsWith(RoleKafka))
	if inv.Kafka.Topic.Partitions == 0 {
		inv.Kafka.Topic.Partitions = brokers
	}
	// Three replicas as in the seed, fewer when there are fewer brokers so
	// that a small lab works without touching the topic settings.
	num(&inv.Kafka.Topic.Replication, "kafka.topic.replication", min(3, max(brokers, 1)))
	// One replica may be down and producers with acks=all still write.
	num(&inv.Kafka.Topic.MinInsync, "kafka.topic.min_insync", max(1, inv.Kafka.Topic.Replication-1))
	num(&inv.Kafka.Retention.Hours, "kafka.retention.hours", 168)
	if !c.set["kafka.retention.bytes"] {
		inv.Kafka.Retention.Bytes = -1
	}
	if inv.Kafka.Properties == nil {
		inv.Kafka.Properties = map[string]string{}
	}

	str(&inv.ZooKeeper.Heap, "512m")
	if inv.Kafka.UsesZooKeeper() {
		str(&inv.ZooKeeper.Artifact, defaultZooKeeperArtifact)
	}

	num(&inv.Web.Port, "web.port", 80)
	num(&inv.LB.Port, "lb.port", 80)
	str((*string)(&inv.LB.Algorithm), string(RoundRobin))
	num(&inv.LB.VirtualRouterID, "lb.virtual_router_id", defaultVRID)

	str(&inv.MySQL.Database, "traffic")
	str(&inv.MySQL.User, "consumer")
	num(&inv.Dashboard.Port, "dashboard.port", defaultDashboardPort)
	str((*string)(&inv.Alerts.Speed), string(AlertsNormal))

	// Per host: SSH falls back to the shared settings, weights to 1, and lb
	// priorities count down while skipping the ones given explicitly.
	taken := map[int]bool{}
	for i, h := range inv.Hosts {
		if h.Has(RoleLB) && c.set[hostPath(i, "lb.priority")] {
			taken[h.LB.Priority] = true
		}
	}
	next := firstLBPriority
	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		str(&h.SSH.User, inv.SSH.User)
		num(&h.SSH.Port, hostPath(i, "ssh.port"), inv.SSH.Port)
		num(&h.Web.Weight, hostPath(i, "web.weight"), 1)
		if h.Has(RoleLB) && !c.set[hostPath(i, "lb.priority")] {
			for next > 0 && taken[next] {
				next = nextPriority(next)
			}
			// Past 1 there is nothing left; 0 is then reported as out of
			// range.
			h.LB.Priority = next
			taken[next] = true
			next = nextPriority(next)
		}
	}
}

func nextPriority(p int) int {
	if p == firstLBPriority {
		return nextLBPriority
	}
	return max(p-1, 0)
}

func hostPath(i int, rest string) string {
	return fmt.Sprintf("hosts[%d].%s", i, rest)
}

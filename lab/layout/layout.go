// Package layout defines the lab's machine layouts and writes the inventory
// (in the schema of package inventory) that points trafficlab's provisioner
// at them.
package layout

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/trafficlab/trafficlab/lab/kafkadist"
)

const (
	kafkaZooKeeperVersion = kafkadist.ZooKeeperVersion
	kafkaKRaftVersion     = kafkadist.KRaftVersion
)

// Machine is one machine of a layout.
type Machine struct {
	Name       string
	Roles      []string
	LBPriority int // keepalived priority, for machines with the lb role
}

// Layout is a named set of machines.
type Layout struct {
	Name     string
	Machines []Machine
	WebPort  int // set when web and lb share machines: web moves off the LB port
	// KafkaVersion and KafkaMode are what the brokers run: a release
	// lab/kafkadist assembles.
	KafkaVersion string
	KafkaMode    string
	// KafkaSecurity is kafka.security; "" leaves the default (plaintext).
	KafkaSecurity string
}

// Heaps of the lab's JVMs, small enough for six machines with three
// brokers and three ZooKeeper servers on one box (DESIGN.md section 9).
const (
	KafkaHeap     = "320m"
	ZooKeeperHeap = "128m"
)

var (
	// Every worker machine also runs a consumer: the three form the
	// consumer group and share the topic's partitions (one each at the
	// default of a partition per broker), so a dead consumer machine
	// costs a rebalance, not the data path, and db-1 keeps only the data.
	worker = []string{"zookeeper", "kafka", "web", "filebeat", "consumer"}
	// Brokers of a KRaft cluster are their own controllers: no ZooKeeper.
	kraftWorker = []string{"kafka", "web", "filebeat", "consumer"}
	allIn       = []string{"zookeeper", "kafka", "web", "filebeat", "lb"}
	data        = []string{"mysql", "dashboard"}
)

func roles(sets ...[]string) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

// seedShape is the seed's six machines, the three Kafka machines carrying
// the roles of workers.
func seedShape(workers []string) []Machine {
	return []Machine{
		{Name: "kafka-1", Roles: roles(workers)},
		{Name: "kafka-2", Roles: roles(workers)},
		{Name: "kafka-3", Roles: roles(workers)},
		{Name: "lb-1", Roles: []string{"lb"}, LBPriority: 150},
		{Name: "lb-2", Roles: []string{"lb"}, LBPriority: 100},
		{Name: "db-1", Roles: roles(data)},
	}
}

var layouts = map[string]Layout{
	// The seed's shape: three Kafka/web machines, an LB pair, a database.
	"default": {Name: "default", KafkaVersion: kafkaZooKeeperVersion, KafkaMode: "zookeeper", Machines: seedShape(worker)},
	// The seed's shape on Kafka 4: three brokers that are also the KRaft
	// controller quorum (combined nodes, as the seed's three machines
	// would be), no ZooKeeper; and Kafka closed to strangers, as a
	// production cluster would be: TLS everywhere, SCRAM logins.
	"kraft": {Name: "kraft", KafkaVersion: kafkaKRaftVersion, KafkaMode: "kraft", KafkaSecurity: "sasl_ssl", Machines: seedShape(kraftWorker)},
	// Three all-in-one machines: every machine is a broker, web server and
	// load balancer (web on its own port), the first also holds the data
	// and the one consumer.
	"minimal": {Name: "minimal", WebPort: 8081, KafkaVersion: kafkaZooKeeperVersion, KafkaMode: "zookeeper", Machines: []Machine{
		{Name: "node-1", Roles: roles(allIn, data, []string{"consumer"}), LBPriority: 150},
		{Name: "node-2", Roles: roles(allIn), LBPriority: 100},
		{Name: "node-3", Roles: roles(allIn), LBPriority: 50},
	}},
}

// Names lists the layouts.
func Names() []string {
	out := make([]string, 0, len(layouts))
	for n := range layouts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Get returns the named layout.
func Get(name string) (Layout, error) {
	l, ok := layouts[name]
	if !ok {
		return Layout{}, fmt.Errorf("unknown layout %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return l, nil
}

// Params are the lab facts the inventory records.
type Params struct {
	Addresses    []netip.Addr // per machine, in layout order
	Prefix       int          // subnet prefix length
	VIP          netip.Addr
	NTPServer    netip.Addr
	PackageProxy string
	KeyFile      string
	KnownHosts   string
	// KafkaArtifact and KafkaSHA512 point the kafka role at the Apache
	// Kafka the lab assembles from Maven Central (lab/kafkadist), since
	// Apache's tarball cannot be downloaded here; empty leaves the
	// inventory's default.
	KafkaArtifact, KafkaSHA512 string
	// FilebeatArtifact and FilebeatSHA512 point the filebeat role at the
	// filebeat the lab builds from its Go module (lab/filebeatdist);
	// empty leaves the inventory's default.
	FilebeatArtifact, FilebeatSHA512 string
}

// Inventory schema (see package inventory); only what the lab sets.
type (
	inventoryDoc struct {
		Cluster   cluster    `yaml:"cluster"`
		SSH       sshConf    `yaml:"ssh"`
		Hosts     []host     `yaml:"hosts"`
		LB        lb         `yaml:"lb"`
		ZooKeeper *zookeeper `yaml:"zookeeper,omitempty"`
		Kafka     kafka      `yaml:"kafka"`
		Filebeat  *filebeat  `yaml:"filebeat,omitempty"`
		Web       *web       `yaml:"web,omitempty"`
		Alerts    alerts     `yaml:"alerts"`
	}
	cluster struct {
		Name         string   `yaml:"name"`
		Domain       string   `yaml:"domain"`
		Timezone     string   `yaml:"timezone"`
		Firewall     string   `yaml:"firewall"`
		SELinux      string   `yaml:"selinux"`
		NTPServers   []string `yaml:"ntp_servers,flow"`
		PackageProxy string   `yaml:"package_proxy"`
	}
	sshConf struct {
		User         string `yaml:"user"`
		Port         int    `yaml:"port"`
		Key          string `yaml:"key"`
		KnownHosts   string `yaml:"known_hosts"`
		HostKeyCheck string `yaml:"host_key_check"`
	}
	host struct {
		Name    string   `yaml:"name"`
		Address string   `yaml:"address"`
		Roles   []string `yaml:"roles,flow"`
		LB      *hostLB  `yaml:"lb,omitempty"`
	}
	hostLB struct {
		Priority int `yaml:"priority"`
	}
	lb struct {
		VIP string `yaml:"vip"`
	}
	zookeeper struct {
		Heap string `yaml:"heap"`
	}
	kafka struct {
		Version  string `yaml:"version"`
		Mode     string `yaml:"mode"`
		Security string `yaml:"security,omitempty"`
		Heap     string `yaml:"heap"`
		Artifact string `yaml:"artifact,omitempty"`
		SHA512   string `yaml:"sha512,omitempty"`
	}
	web struct {
		Port int `yaml:"port"`
	}
	alerts struct {
		Speed string `yaml:"speed"`
	}
	filebeat struct {
		Artifact string `yaml:"artifact"`
		SHA512   string `yaml:"sha512,omitempty"`
	}
)

// Inventory renders the layout's inventory. It holds no secrets: the key is
// referenced by path, and passwords are the provisioner's business.
func (l Layout) Inventory(p Params) ([]byte, error) {
	if len(p.Addresses) != len(l.Machines) {
		return nil, fmt.Errorf("inventory: %d addresses for %d machines", len(p.Addresses), len(l.Machines))
	}
	inv := inventoryDoc{
		Cluster: cluster{
			Name: "lab", Domain: "www.sc.com", Timezone: "Asia/Shanghai",
			Firewall: "managed", SELinux: "permissive",
			NTPServers:   []string{p.NTPServer.String()},
			PackageProxy: p.PackageProxy,
		},
		SSH:   sshConf{User: "root", Port: 22, Key: p.KeyFile, KnownHosts: p.KnownHosts, HostKeyCheck: "strict"},
		LB:    lb{VIP: netip.PrefixFrom(p.VIP, p.Prefix).String()},
		Kafka: kafka{Version: l.KafkaVersion, Mode: l.KafkaMode, Security: l.KafkaSecurity, Heap: KafkaHeap, Artifact: p.KafkaArtifact, SHA512: p.KafkaSHA512},
		// Lab traffic is made on the spot: alerts judge within minutes.
		Alerts: alerts{Speed: "fast"},
	}
	if l.KafkaMode == "zookeeper" {
		inv.ZooKeeper = &zookeeper{Heap: ZooKeeperHeap}
	}
	if l.WebPort != 0 {
		inv.Web = &web{Port: l.WebPort}
	}
	if p.FilebeatArtifact != "" {
		inv.Filebeat = &filebeat{Artifact: p.FilebeatArtifact, SHA512: p.FilebeatSHA512}
	}
	for i, m := range l.Machines {
		h := host{Name: m.Name, Address: p.Addresses[i].String(), Roles: m.Roles}
		if m.LBPriority != 0 {
			h.LB = &hostLB{Priority: m.LBPriority}
		}
		inv.Hosts = append(inv.Hosts, h)
	}
	var b bytes.Buffer
	b.WriteString("# trafficlab inventory for the lab's machines (layout " + l.Name + "),\n# written by `lab up`; rewritten on every up.\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(inv); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return b.Bytes(), nil
}

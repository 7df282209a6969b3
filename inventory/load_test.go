package inventory

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func mustParse(t *testing.T, yaml string, lookup func(string) (string, bool)) *Inventory {
	t.Helper()
	inv, err := Parse("test.yaml", []byte(yaml), lookup)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, numbered(yaml))
	}
	return inv
}

// The examples are what users copy first, so they must stay valid with
// nothing in the environment (secrets are generated when left empty).
func TestExamplesValidateWithEmptyEnvironment(t *testing.T) {
	want := map[string]int{"seed-centos.yaml": 6, "all-in-one.yaml": 3, "kraft.yaml": 6}
	files, err := filepath.Glob("examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		delete(want, filepath.Base(f))
		inv, err := LoadEnv(f, noEnv)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		if inv.File != f {
			t.Errorf("%s: File = %q", f, inv.File)
		}
	}
	if len(want) > 0 {
		t.Errorf("examples missing: %v", want)
	}
}

func TestSeedExample(t *testing.T) {
	inv, err := LoadEnv("examples/seed-centos.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var brokers []string
	for _, h := range inv.HostsWith(RoleKafka) {
		brokers = append(brokers, h.Name+"="+h.Address)
	}
	if got := strings.Join(brokers, " "); got != "kafka-1=192.168.0.190 kafka-2=192.168.0.191 kafka-3=192.168.0.192" {
		t.Errorf("brokers: %s", got)
	}
	if inv.Kafka.Mode != KafkaZooKeeper || inv.Cluster.Firewall != FirewallManaged || inv.Cluster.SELinux != SELinuxKeep {
		t.Errorf("mode %s firewall %s selinux %s", inv.Kafka.Mode, inv.Cluster.Firewall, inv.Cluster.SELinux)
	}
	if inv.Kafka.Topic.Partitions != 3 {
		t.Errorf("partitions 0 should mean one per broker, got %d", inv.Kafka.Topic.Partitions)
	}
	lbs := inv.HostsWith(RoleLB)
	if len(lbs) != 2 || lbs[0].LB.Priority != 150 || lbs[1].LB.Priority != 100 {
		t.Errorf("lb hosts: %+v", lbs)
	}
}

func TestAllInOneExample(t *testing.T) {
	inv, err := LoadEnv("examples/all-in-one.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	var prios []int
	for _, h := range inv.HostsWith(RoleLB) {
		prios = append(prios, h.LB.Priority)
		if !h.Has(RoleWeb) {
			t.Errorf("%s: no web role", h.Name)
		}
	}
	if !slices.Equal(prios, []int{150, 100, 99}) {
		t.Errorf("default priorities %v", prios)
	}
	if inv.Web.Port != 8081 || inv.LB.Port != 80 {
		t.Errorf("web port %d lb port %d", inv.Web.Port, inv.LB.Port)
	}
}

func TestKRaftExample(t *testing.T) {
	inv, err := LoadEnv("examples/kraft.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Kafka.Mode != KafkaKRaft || len(inv.HostsWith(RoleZooKeeper)) != 0 {
		t.Errorf("mode %s, zookeeper hosts %d", inv.Kafka.Mode, len(inv.HostsWith(RoleZooKeeper)))
	}
	if inv.ZooKeeper.Artifact != "" {
		t.Errorf("zookeeper artifact defaulted in kraft mode: %s", inv.ZooKeeper.Artifact)
	}
	if want := "https://archive.apache.org/dist/kafka/4.1.0/kafka_2.13-4.1.0.tgz"; inv.Kafka.Artifact != want {
		t.Errorf("artifact %s", inv.Kafka.Artifact)
	}
}

const minimal = `cluster: {name: lab}
hosts:
  - {name: node-1, address: 10.0.0.11, roles: [zookeeper, kafka, web, filebeat, mysql, consumer, dashboard]}
zookeeper: {toy: true}
`

func TestDefaults(t *testing.T) {
	inv := mustParse(t, minimal, noEnv)
	want := Inventory{
		File: "test.yaml",
		Cluster: Cluster{
			Name: "lab", Domain: "www.sc.com", Timezone: "Asia/Shanghai",
			Firewall: FirewallManaged, SELinux: SELinuxKeep,
		},
		SSH: SSH{
			User: "root", Port: 22, KnownHosts: "~/.ssh/known_hosts",
			HostKeyCheck: HostKeyAcceptNew, ConnectTimeout: 2 * time.Minute,
		},
		Hosts: []Host{{
			Name: "node-1", Address: "10.0.0.11",
			Roles: []Role{RoleZooKeeper, RoleKafka, RoleWeb, RoleFilebeat, RoleMySQL, RoleConsumer, RoleDashboard},
			SSH:   HostSSH{User: "root", Port: 22},
			Web:   HostWeb{Weight: 1},
		}},
		ZooKeeper: ZooKeeper{Toy: true, Heap: "512m", Artifact: defaultZooKeeperArtifact},
		Kafka: Kafka{
			Version:     "3.9.1",
			Mode:        KafkaZooKeeper,
			Controllers: ControllersCombined,
			Artifact:    "https://archive.apache.org/dist/kafka/3.9.1/kafka_2.13-3.9.1.tgz",
			Heap:        "1g",
			// One broker: one partition, one replica, and min.insync 1 so
			// that the toy cluster takes writes.
			Topic:      Topic{Name: "nginxlog", Partitions: 1, Replication: 1, MinInsync: 1},
			Retention:  Retention{Hours: 168, Bytes: -1},
			Properties: map[string]string{},
			Security:   KafkaPlaintext,
		},
		Web:       Web{Port: 80},
		LB:        LB{Port: 80, Algorithm: RoundRobin, VirtualRouterID: 51},
		MySQL:     MySQL{Database: "traffic", User: "consumer"},
		Dashboard: Dashboard{Port: 8080},
		Alerts:    Alerts{Speed: AlertsNormal},
	}
	if inv.Where("kafka.security") != "test.yaml:1" || inv.Where("hosts[0].roles") != "test.yaml:3" {
		t.Errorf("Where: kafka.security at %s (a default: the file), hosts[0].roles at %s", inv.Where("kafka.security"), inv.Where("hosts[0].roles"))
	}
	inv.lines = nil // compared through Where
	if !reflect.DeepEqual(*inv, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", *inv, want)
	}
}

func TestDefaultsFollowBrokerCount(t *testing.T) {
	inv := mustParse(t, base, noEnv)
	if got := inv.Kafka.Topic; got != (Topic{Name: "nginxlog", Partitions: 3, Replication: 3, MinInsync: 2}) {
		t.Errorf("topic %+v", got)
	}
	// Kafka 4 has only KRaft, so the version alone picks the mode.
	inv = mustParse(t, noZooKeeper(map[int]string{23: "  version: 4.0.0"}), noEnv)
	if inv.Kafka.Mode != KafkaKRaft {
		t.Errorf("mode for 4.0.0: %s", inv.Kafka.Mode)
	}
}

func TestLBPriorityDefaultsSkipExplicitOnes(t *testing.T) {
	yaml := edit(map[int]string{
		15: "    roles: [lb]",
		18: "    roles: [lb]\n    lb: {priority: 150}",
		21: "    roles: [mysql, consumer, dashboard, lb]",
	})
	inv := mustParse(t, yaml, noEnv)
	var got []int
	for _, h := range inv.HostsWith(RoleLB) {
		got = append(got, h.LB.Priority)
	}
	if !slices.Equal(got, []int{100, 150, 99}) {
		t.Errorf("priorities %v", got)
	}
}

func TestEnvExpansion(t *testing.T) {
	yaml := plus(`ssh:
  user: ${SSH_USER}
  port: ${SSH_PORT}
  sudo_password: ${SUDO_PASS}
mysql:
  password: "pa$$word-${SUFFIX}"
  root_password: "lone $ stays"
dashboard: {port: "${EMPTY}9090"}
`)
	inv := mustParse(t, yaml, env(map[string]string{
		"SSH_USER": "admin", "SSH_PORT": "2222", "SUDO_PASS": "s3cret", "SUFFIX": "x", "EMPTY": "",
	}))
	if inv.SSH.User != "admin" || inv.SSH.Port != 2222 || inv.SSH.SudoPassword.Value() != "s3cret" {
		t.Errorf("ssh: %+v (sudo %q)", inv.SSH, inv.SSH.SudoPassword.Value())
	}
	if inv.Hosts[0].SSH != (HostSSH{User: "admin", Port: 2222}) {
		t.Errorf("per-host ssh does not inherit: %+v", inv.Hosts[0].SSH)
	}
	if got := inv.MySQL.Password.Value(); got != "pa$word-x" {
		t.Errorf("password %q", got)
	}
	if got := inv.MySQL.RootPassword.Value(); got != "lone $ stays" {
		t.Errorf("root password %q", got)
	}
	if inv.Dashboard.Port != 9090 {
		t.Errorf("dashboard port %d", inv.Dashboard.Port)
	}
}

func TestEnvExpansionReportsEveryUnsetVariable(t *testing.T) {
	_, err := Parse("test.yaml", []byte(plus("mysql: {user: \"${A}_${B}\", password: \"${C}\"}\n")), env(map[string]string{"B": "b"}))
	want := "test.yaml:27: mysql.user: environment variable A is not set\n" +
		"test.yaml:27: mysql.password: environment variable C is not set"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

func TestExpand(t *testing.T) {
	lookup := env(map[string]string{"A": "1", "B_2": "two", "DOLLAR": "$X"})
	for in, want := range map[string]string{
		"plain":        "plain",
		"${A}":         "1",
		"x${A}y${B_2}": "x1ytwo",
		"$$":           "$",
		"$${A}":        "${A}",
		"$":            "$",
		"a$b":          "a$b",
		"${DOLLAR}":    "$X", // values are not expanded again
	} {
		got, unset, err := expand(in, lookup)
		if err != nil || len(unset) > 0 || got != want {
			t.Errorf("expand(%q) = %q, %v, %v; want %q", in, got, unset, err, want)
		}
	}
	for _, in := range []string{"${", "${A", "${}", "${A-B}", "${1}"} {
		if _, _, err := expand(in, lookup); err == nil {
			t.Errorf("expand(%q): no error", in)
		}
	}
}

func TestMergeKeysAndExtensionFields(t *testing.T) {
	yaml := `x-broker: &broker
  roles: [zookeeper, kafka, web, filebeat]
  ssh: {user: ops}
cluster: {name: sc}
hosts:
  - {<<: *broker, name: kafka-1, address: 192.168.0.190}
  - {<<: *broker, name: kafka-2, address: 192.168.0.191}
  - <<: *broker
    name: kafka-3
    address: 192.168.0.192
    ssh: {user: root}
  - {name: db-1, address: 192.168.0.195, roles: [mysql, consumer, dashboard]}
`
	inv := mustParse(t, yaml, noEnv)
	if len(inv.HostsWith(RoleKafka)) != 3 {
		t.Fatalf("kafka hosts: %+v", inv.Hosts)
	}
	if inv.Hosts[0].SSH.User != "ops" || inv.Hosts[2].SSH.User != "root" {
		t.Errorf("explicit keys must win over merged ones: %+v", inv.Hosts)
	}
}

func TestRelativePathsStartAtTheInventory(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "tpl"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "dl"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "dl", "kafka.tgz"), []byte("k"), 0o644))
	must(os.WriteFile(filepath.Join(dir, "dl", "filebeat.rpm"), []byte("f"), 0o644))
	yaml := edit(map[int]string{
		2:  "  name: sc\n  templates: tpl",
		23: "  version: 3.9.1\n  artifact: dl/kafka.tgz",
	}) + "filebeat: {artifact: \"file://" + filepath.Join(dir, "dl", "filebeat.rpm") + "\"}\n"
	path := filepath.Join(dir, "inventory.yaml")
	must(os.WriteFile(path, []byte(yaml), 0o644))
	inv, err := LoadEnv(path, noEnv)
	must(err)
	if want := filepath.Join(dir, "tpl"); inv.Cluster.Templates != want {
		t.Errorf("templates %q, want %q", inv.Cluster.Templates, want)
	}
	if want := filepath.Join(dir, "dl", "kafka.tgz"); inv.Kafka.Artifact != want {
		t.Errorf("kafka artifact %q, want %q", inv.Kafka.Artifact, want)
	}
	if want := filepath.Join(dir, "dl", "filebeat.rpm"); inv.Filebeat.Artifact != want {
		t.Errorf("filebeat artifact %q, want %q", inv.Filebeat.Artifact, want)
	}
}

// full sets every key of the schema, so this test fails when a field is
// added that the decoder cannot fill or the file cannot name.
var full = `cluster:
  name: sc
  domain: www.sc.com
  timezone: UTC
  firewall: disabled
  selinux: enforcing
  ntp_servers: [ntp.aliyun.com, 192.168.0.1]
  package_proxy: http://192.168.0.1:3142
  templates: examples
ssh:
  user: admin
  port: 2222
  key: ~/.ssh/lab
  known_hosts: ~/.ssh/lab_known_hosts
  host_key_check: strict
  bastion: jump@gw.sc.com:2200
  connect_timeout: 30s
  sudo_password: sudo
hosts:
  - name: kafka-1
    address: 192.168.0.190
    roles: [zookeeper, kafka, web, lb, filebeat, mysql, consumer, dashboard]
    ssh: {user: root, port: 22}
    lb: {priority: 200}
    web: {weight: 3}
  - {name: kafka-2, address: 192.168.0.191, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 192.168.0.192, roles: [zookeeper, kafka, web, filebeat]}
zookeeper:
  toy: true
  heap: 256m
  artifact: https://mirror.sc.com/zookeeper.tgz
  sha512: ` + sha + `
kafka:
  version: 3.8.1
  mode: kraft
  artifact: https://mirror.sc.com/kafka.tgz
  sha512: ` + sha + `
  heap: 2g
  topic: {name: access, partitions: 6, replication: 2, min_insync: 1}
  retention: {hours: 24, bytes: 1073741824}
  properties: {log.segment.bytes: 104857600}
  security: sasl_ssl
  ca: {cert: CA_CERT, key: CA_KEY}
web:
  port: 8081
lb:
  vip: 192.168.0.200/24
  port: 80
  algorithm: weighted
  virtual_router_id: 7
  unicast: true
  nopreempt: true
  auth_pass: vrrp
filebeat:
  artifact: https://mirror.sc.com/filebeat.rpm
  sha512: ` + sha + `
mysql:
  database: traffic
  user: consumer
  password: pw
  root_password: rootpw
dashboard:
  port: 9090
  password: dashpw
alerts:
  speed: fast
  webhook: https://hooks.example.org/trafficlab
`

var sha = strings.Repeat("0123456789abcdef", 8)

func TestEveryKeyDecodes(t *testing.T) {
	// kraft needs 3.9; full says 3.8.1 to prove mode is taken as given,
	// then fixes the version, since Parse must return an inventory.
	_, err := Parse("full.yaml", []byte(full), noEnv)
	if err == nil || !strings.Contains(err.Error(), "kraft mode needs Kafka 3.9") {
		t.Fatalf("want the kraft version problem, got %v", err)
	}
	yaml := strings.Replace(full, "version: 3.8.1", "version: 3.9.1", 1)
	cert, key := writeCA(t)
	yaml = strings.NewReplacer("CA_CERT", cert, "CA_KEY", key).Replace(yaml)
	yaml = strings.ReplaceAll(yaml, "[zookeeper, kafka", "[kafka")
	inv := mustParse(t, yaml, noEnv)
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		if v.Kind() == reflect.Struct && v.Type() != secretType {
			for i := range v.NumField() {
				if v.Type().Field(i).Tag.Get("yaml") == "-" {
					continue // set by provision, not read from the file
				}
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
			return
		}
		if v.Kind() == reflect.Slice && v.Len() > 0 && v.Index(0).Kind() == reflect.Struct {
			walk(v.Index(0), path+"[0]")
			return
		}
		if v.IsZero() {
			t.Errorf("%s is not set by the full inventory", path)
		}
	}
	walk(reflect.ValueOf(*inv), "inv")
	if inv.Kafka.Properties["log.segment.bytes"] != "104857600" {
		t.Errorf("properties: %v", inv.Kafka.Properties)
	}
	if inv.SSH.ConnectTimeout != 30*time.Second || inv.Kafka.Retention.Bytes != 1<<30 {
		t.Errorf("connect timeout %v, retention bytes %d", inv.SSH.ConnectTimeout, inv.Kafka.Retention.Bytes)
	}
	if u, hp := inv.SSH.BastionAddress(); u != "jump" || hp != "gw.sc.com:2200" {
		t.Errorf("bastion %q %q", u, hp)
	}
}

func TestHelpers(t *testing.T) {
	inv := mustParse(t, base, noEnv)
	if got := len(inv.HostsWith(RoleZooKeeper)); got != 3 {
		t.Errorf("zookeeper hosts %d", got)
	}
	if inv.HostsWith(Role("nope")) != nil {
		t.Errorf("unknown role has hosts")
	}
	if h := inv.Hosts[5]; !h.Has(RoleMySQL) || h.Has(RoleKafka) {
		t.Errorf("Has on %+v", h)
	}
	if p := inv.LB.VIPPrefix(); p.String() != "192.168.0.200/24" {
		t.Errorf("VIPPrefix %v", p)
	}
	for in, want := range map[string][2]string{
		"":                  {"", ""},
		"gw":                {"root", "gw:22"},
		"ops@gw:2200":       {"ops", "gw:2200"},
		"10.0.0.1":          {"root", "10.0.0.1:22"},
		"[fe80::1]:2222":    {"root", "[fe80::1]:2222"},
		"ops@[2001:db8::1]": {"ops", "[2001:db8::1]:22"},
		"2001:db8::1":       {"root", "[2001:db8::1]:22"},
	} {
		u, hp := SSH{User: "root", Bastion: in}.BastionAddress()
		if [2]string{u, hp} != want {
			t.Errorf("BastionAddress(%q) = %q %q, want %q", in, u, hp, want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	var ps Problems
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &ps) {
		t.Errorf("got %v", err)
	}
}

func TestProblemsError(t *testing.T) {
	ps := Problems{{"b.yaml", 3, "c"}, {"a.yaml", 9, "b"}, {"a.yaml", 2, "a"}, {"a.yaml", 0, "whole file"}}
	want := "a.yaml: whole file\na.yaml:2: a\na.yaml:9: b\nb.yaml:3: c"
	if got := ps.Error(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if ps[0].File != "b.yaml" {
		t.Errorf("Error() reordered the slice")
	}
}

func TestAliasExpansionIsBounded(t *testing.T) {
	// Each host's roles alias one long list: 2000 hosts × 200 roles is far
	// more work than any inventory, and must stop with a problem.
	var b strings.Builder
	b.WriteString("x-roles: &r [" + strings.Repeat("web, ", 199) + "web]\ncluster: {name: sc}\nhosts:\n")
	for i := range 2000 {
		b.WriteString("  - {name: h" + itoa(i) + ", address: 10.0.0.1, roles: *r}\n")
	}
	start := time.Now()
	_, err := Parse("bomb.yaml", []byte(b.String()), noEnv)
	if err == nil || !strings.Contains(err.Error(), "refusing to read further") {
		t.Errorf("got %.300v", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSelfMerge(t *testing.T) {
	_, err := Parse("m.yaml", []byte("cluster: &c\n  name: sc\n  <<: *c\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "m.yaml:3: cluster.<<: merges too deep") {
		t.Errorf("got %v", err)
	}
}

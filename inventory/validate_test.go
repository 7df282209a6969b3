package inventory

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid inventory in the seed's shape. Bad inventories are made by
// replacing some of its lines, so each case shows only its mistake and the
// expected line numbers can be read off this listing.
const base = `cluster:
  name: sc
hosts:
  - name: kafka-1
    address: 192.168.0.190
    roles: [zookeeper, kafka, web, filebeat]
  - name: kafka-2
    address: 192.168.0.191
    roles: [zookeeper, kafka, web, filebeat]
  - name: kafka-3
    address: 192.168.0.192
    roles: [zookeeper, kafka, web, filebeat]
  - name: lb-1
    address: 192.168.0.193
    roles: [lb]
  - name: lb-2
    address: 192.168.0.194
    roles: [lb]
  - name: db-1
    address: 192.168.0.195
    roles: [mysql, consumer, dashboard]
kafka:
  version: 3.9.1
  topic: {name: nginxlog, replication: 3, min_insync: 2}
lb:
  vip: 192.168.0.200/24
`

// edit returns base with the given lines (numbered as in base) replaced; a
// replacement may span several lines or be empty to delete the line.
func edit(repl map[int]string) string {
	lines := strings.Split(strings.TrimSuffix(base, "\n"), "\n")
	var out []string
	for i, l := range lines {
		if r, ok := repl[i+1]; ok {
			if r != "" {
				out = append(out, r)
			}
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n") + "\n"
}

// plus returns base with more lines appended, starting at line 27.
func plus(more string) string { return base + more }

// noZooKeeper is the base without zookeeper roles, for kraft cases.
func noZooKeeper(repl map[int]string) string {
	return strings.ReplaceAll(edit(repl), "[zookeeper, kafka", "[kafka")
}

const roles3 = "    roles: [kafka, web, filebeat]"

func TestBaseIsValid(t *testing.T) {
	if _, err := Parse("test.yaml", []byte(base), nil); err != nil {
		t.Fatalf("base inventory: %v", err)
	}
}

func TestBadInventories(t *testing.T) {
	long := strings.Repeat("a", 127)
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"yaml syntax", edit(map[int]string{2: "  name: [sc"}),
			[]string{"test.yaml:2: YAML syntax: did not find expected ',' or ']'"}},
		{"tab indentation", edit(map[int]string{5: "\taddress: 192.168.0.190"}),
			[]string{"test.yaml:4: YAML syntax: found a tab character that violates indentation"}},
		{"second document", plus("---\ncluster: {name: other}\n"),
			[]string{"test.yaml:27: YAML syntax: a second document starts here; an inventory is one document"}},
		{"top level not a mapping", "- kafka-1\n- kafka-2\n",
			[]string{"test.yaml:1: top level: want a mapping (key: value), got a list"}},
		{"misspelled host key", edit(map[int]string{8: "    adress: 192.168.0.191"}),
			[]string{`test.yaml:8: hosts[1].adress: unknown key (did you mean "address"?)`}},
		{"misspelled section", plus("kakfa:\n  heap: 2g\n"),
			[]string{`test.yaml:27: kakfa: unknown key (did you mean "kafka"?)`}},
		{"misspelled nested key", edit(map[int]string{24: "  topic: {name: nginxlog, replicaton: 3, min_insync: 2}"}),
			[]string{`test.yaml:24: kafka.topic.replicaton: unknown key (did you mean "replication"?)`}},
		{"unknown key without a guess", plus("  colour: blue\n"),
			[]string{"test.yaml:27: lb.colour: unknown key; lb takes: vip, port, algorithm, virtual_router_id, unicast, nopreempt, auth_pass"}},
		{"alias key", edit(map[int]string{20: "    ip: 192.168.0.195"}),
			[]string{`test.yaml:20: hosts[5].ip: unknown key (did you mean "address"?)`}},
		{"per-host ssh takes user and port only", edit(map[int]string{21: "    roles: [mysql, consumer, dashboard]\n    ssh: {user: admin, key: ~/.ssh/db}"}),
			[]string{"test.yaml:22: hosts[5].ssh.key: unknown key; hosts[5].ssh takes: user, port"}},
		{"repeated key", edit(map[int]string{2: "  name: sc\n  name: sd"}),
			[]string{"test.yaml:3: cluster.name: repeated key (first at line 2)"}},
		{"port not a number", plus("ssh:\n  port: abc\n"),
			[]string{`test.yaml:28: ssh.port: want a whole number, got "abc"`}},
		{"bool not a bool", plus("  unicast: maybe\n"),
			[]string{`test.yaml:27: lb.unicast: want true or false, got "maybe"`}},
		{"list where a scalar goes", edit(map[int]string{2: "  name: [sc, sd]"}),
			[]string{"test.yaml:2: cluster.name: want a single value, got a list"}},
		{"scalar where a list goes", edit(map[int]string{15: "    roles: lb"}),
			[]string{`test.yaml:15: hosts[3].roles: want a list, got "lb"`}},
		{"host not a mapping", edit(map[int]string{19: "  - db-1", 20: "", 21: ""}),
			[]string{
				`test.yaml:3: no host has the role "mysql" (needed to store the traffic)`,
				`test.yaml:3: no host has the role "consumer" (needed to turn the log stream into traffic figures)`,
				`test.yaml:19: hosts[5]: want a mapping (key: value), got "db-1"`,
			}},
		{"trailing comma in a flow list is fine", edit(map[int]string{21: "    roles: [mysql, consumer, dashboard, ]"}),
			nil},
		{"empty list item", edit(map[int]string{21: "    roles:\n      - mysql\n      -\n      - consumer\n      - dashboard"}),
			[]string{"test.yaml:23: hosts[5].roles[1]: empty list item"}},
		{"duration", plus("ssh:\n  connect_timeout: forever\n"),
			[]string{`test.yaml:28: ssh.connect_timeout: want a duration like 30s or 2m, got "forever"`}},
		{"duplicate host name", edit(map[int]string{7: "  - name: kafka-1"}),
			[]string{`test.yaml:7: hosts[1].name: "kafka-1" is already the name of hosts[0] (line 4)`}},
		{"duplicate host name differing in case", edit(map[int]string{7: "  - name: KAFKA-1"}),
			[]string{`test.yaml:7: hosts[1].name: "KAFKA-1" is already the name of hosts[0] (line 4)`}},
		{"duplicate address", edit(map[int]string{8: "    address: 192.168.0.190"}),
			[]string{"test.yaml:8: hosts[1].address: 192.168.0.190 is already the address of kafka-1 (line 5)"}},
		{"missing address", edit(map[int]string{8: ""}),
			[]string{"test.yaml:7: hosts[1].address: required"}},
		{"invalid address", edit(map[int]string{20: "    address: 192.168.0.300"}),
			[]string{`test.yaml:20: hosts[5].address: "192.168.0.300" is not an IP address`}},
		{"invalid host name", edit(map[int]string{4: "  - name: kafka_1"}),
			[]string{`test.yaml:4: hosts[0].name: "kafka_1" is not a valid host name (letters, digits and "-", at most 63, not starting or ending with "-")`}},
		{"unknown role with a guess", edit(map[int]string{21: "    roles: [mysql, consumr, dashboard]"}),
			[]string{`test.yaml:21: hosts[5].roles[1]: unknown role "consumr" (did you mean "consumer"?)`}},
		{"unknown role by software name", edit(map[int]string{18: "    roles: [keepalived]"}),
			[]string{`test.yaml:18: hosts[4].roles[0]: unknown role "keepalived" (did you mean "lb"?)`}},
		{"unknown role without a guess", edit(map[int]string{21: "    roles: [mysql, consumer, grafana]"}),
			[]string{`test.yaml:21: hosts[5].roles[2]: unknown role "grafana"; known roles: zookeeper, kafka, web, lb, filebeat, mysql, consumer, dashboard`}},
		{"duplicate role", edit(map[int]string{21: "    roles: [mysql, consumer, dashboard, mysql]"}),
			[]string{`test.yaml:21: hosts[5].roles[3]: role "mysql" is listed twice`}},
		{"no roles", edit(map[int]string{21: "    roles: []"}),
			[]string{
				`test.yaml:3: no host has the role "mysql" (needed to store the traffic)`,
				`test.yaml:3: no host has the role "consumer" (needed to turn the log stream into traffic figures)`,
				"test.yaml:21: hosts[5].roles: required: list at least one role, e.g. [kafka, web]",
			}},
		{"no mysql host", edit(map[int]string{21: "    roles: [consumer, dashboard]"}),
			[]string{`test.yaml:3: no host has the role "mysql" (needed to store the traffic)`}},
		{"no kafka host", strings.ReplaceAll(base, "[zookeeper, kafka, web", "[zookeeper, web"),
			[]string{`test.yaml:3: no host has the role "kafka" (needed to carry the access log stream)`}},
		{"no zookeeper in zookeeper mode", noZooKeeper(nil),
			[]string{`test.yaml:3: no host has the role "zookeeper" (needed by Kafka in zookeeper mode; or set kafka.mode: kraft)`}},
		{"two mysql hosts", edit(map[int]string{12: "    roles: [zookeeper, kafka, web, filebeat, mysql]"}),
			[]string{"test.yaml:21: hosts[5].roles[0]: kafka-3 already has the mysql role; trafficlab runs a single database"}},
		{"zookeeper hosts in kraft mode", edit(map[int]string{23: "  version: 3.9.1\n  mode: kraft", 12: roles3, 9: roles3}),
			[]string{`test.yaml:6: hosts[0].roles[0]: role "zookeeper" is not used in kraft mode (kafka.mode: kraft)`}},
		{"no zookeeper while migrating", noZooKeeper(map[int]string{23: "  version: 3.9.1\n  mode: migrating"}),
			[]string{`test.yaml:3: no host has the role "zookeeper" (needed by Kafka in migrating mode; or set kafka.mode: kraft)`}},
		{"migrating to kafka 4", edit(map[int]string{23: "  version: 4.0.0\n  mode: migrating"}),
			[]string{"test.yaml:24: kafka.mode: the migration from ZooKeeper runs on Kafka 3.9, the last release with both; kafka.version is 4.0.0 (upgrade to 4 after kafka.mode: kraft)"}},
		{"migrating on kafka 3.8", edit(map[int]string{23: "  version: 3.8.1\n  mode: migrating"}),
			[]string{"test.yaml:24: kafka.mode: migrating mode needs Kafka 3.9 or later, kafka.version is 3.8.1"}},
		{"migrating to combined controllers", edit(map[int]string{23: "  version: 3.9.1\n  mode: migrating\n  controllers: combined"}),
			[]string{"test.yaml:25: kafka.controllers: a migration from ZooKeeper needs KRaft controllers in processes of their own (Kafka does not migrate to combined nodes): use separate, the default in migrating mode"}},
		{"kafka 4 before zookeeper is gone", edit(map[int]string{23: "  version: 4.0.0\n  mode: kraft\n  controllers: separate"}),
			[]string{"test.yaml:23: kafka.version: Kafka 4.0.0 has no ZooKeeper, and hosts here still have the zookeeper role (a migration not yet finalised on 3.9 needs it): finish the migration on 3.9 and take the zookeeper roles off, then upgrade"}},
		{"controllers in zookeeper mode", edit(map[int]string{23: "  version: 3.9.1\n  controllers: separate"}),
			[]string{"test.yaml:24: kafka.controllers: zookeeper mode has no KRaft controllers; kafka.controllers is for migrating and kraft"}},
		{"controllers typo", noZooKeeper(map[int]string{23: "  version: 3.9.1\n  mode: kraft\n  controllers: seperate"}),
			[]string{`test.yaml:25: kafka.controllers: "seperate" is not one of combined, separate (did you mean "separate"?)`}},
		{"filebeat without web", edit(map[int]string{12: "    roles: [zookeeper, kafka, filebeat]"}),
			[]string{"test.yaml:12: hosts[2].roles[2]: filebeat needs the web role on the same host (it reads the local nginx access log)"}},
		{"lb hosts without a VIP", edit(map[int]string{25: "", 26: ""}),
			[]string{"test.yaml:15: hosts[3].roles[0]: the lb role needs lb.vip, the address keepalived moves between the lb hosts (e.g. 192.168.0.200/24)"}},
		{"VIP without lb hosts", edit(map[int]string{13: "", 14: "", 15: "", 16: "", 17: "", 18: ""}),
			[]string{"test.yaml:20: lb.vip: set, but no host has the lb role"}},
		{"even ensemble", edit(map[int]string{12: roles3}),
			[]string{"test.yaml:3: 2 hosts have the zookeeper role; an ensemble needs an odd number of at least 3 (2 survive no more failures than 1)"}},
		{"single node without toy", edit(map[int]string{9: roles3, 12: roles3}),
			[]string{"test.yaml:3: 1 host has the zookeeper role; an ensemble needs an odd number of at least 3 so a majority survives a failure (set zookeeper.toy: true to run a single node anyway)"}},
		{"replication above brokers", edit(map[int]string{24: "  topic: {name: nginxlog, replication: 4, min_insync: 2}"}),
			[]string{"test.yaml:24: kafka.topic.replication: 4 replicas need 4 brokers, but only 3 hosts have the kafka role"}},
		{"min_insync above replication", edit(map[int]string{24: "  topic: {name: nginxlog, replication: 2, min_insync: 3}"}),
			[]string{"test.yaml:24: kafka.topic.min_insync: 3 is more than kafka.topic.replication (2); producers with acks=all could never write"}},
		{"min_insync below 1", edit(map[int]string{24: "  topic: {name: nginxlog, replication: 3, min_insync: 0}"}),
			[]string{"test.yaml:24: kafka.topic.min_insync: must be at least 1, got 0"}},
		{"negative partitions", edit(map[int]string{24: "  topic:\n    partitions: -1"}),
			[]string{"test.yaml:25: kafka.topic.partitions: must be 0 (one per broker) or more, got -1"}},
		{"zookeeper mode with kafka 4", edit(map[int]string{23: "  version: 4.0.0\n  mode: zookeeper"}),
			[]string{"test.yaml:24: kafka.mode: zookeeper mode is gone from Kafka 4.0.0 (removed in 4.0); use kafka.mode: kraft or a 3.x kafka.version"}},
		{"kraft with kafka 3.7", noZooKeeper(map[int]string{23: "  version: 3.7.0\n  mode: kraft"}),
			[]string{"test.yaml:24: kafka.mode: kraft mode needs Kafka 3.9 or later, kafka.version is 3.7.0"}},
		{"kafka 2", edit(map[int]string{23: "  version: 2.8.2"}),
			[]string{"test.yaml:23: kafka.version: Kafka 2.8.2 is too old; trafficlab runs Kafka 3.x and 4.x"}},
		{"bad version", edit(map[int]string{23: "  version: 3.9"}),
			[]string{`test.yaml:23: kafka.version: "3.9" is not a version like 3.9.1`}},
		{"VIP is a host address", edit(map[int]string{26: "  vip: 192.168.0.193/24"}),
			[]string{"test.yaml:26: lb.vip: 192.168.0.193 is the address of host lb-1; the VIP must be an unused address"}},
		{"VIP outside the lb subnet", edit(map[int]string{26: "  vip: 192.168.1.200/24"}),
			[]string{
				"test.yaml:26: lb.vip: lb host lb-1 (192.168.0.193) is outside 192.168.1.0/24, the subnet of the VIP; keepalived can only move the VIP between hosts on that subnet",
				"test.yaml:26: lb.vip: lb host lb-2 (192.168.0.194) is outside 192.168.1.0/24, the subnet of the VIP; keepalived can only move the VIP between hosts on that subnet",
			}},
		{"VIP prefix too narrow for one lb host", edit(map[int]string{26: "  vip: 192.168.0.195/31"}),
			[]string{
				"test.yaml:26: lb.vip: 192.168.0.195 is the address of host db-1; the VIP must be an unused address",
				"test.yaml:26: lb.vip: lb host lb-1 (192.168.0.193) is outside 192.168.0.194/31, the subnet of the VIP; keepalived can only move the VIP between hosts on that subnet",
			}},
		{"VIP without prefix", edit(map[int]string{26: "  vip: 192.168.0.200"}),
			[]string{`test.yaml:26: lb.vip: "192.168.0.200" has no prefix length; write it like 192.168.0.200/24 (the prefix is the subnet keepalived puts it on)`}},
		{"VIP not an address", edit(map[int]string{26: "  vip: banana"}),
			[]string{`test.yaml:26: lb.vip: "banana" is not an address with a prefix length, like 192.168.0.200/24`}},
		{"VIP is the network address", edit(map[int]string{26: "  vip: 192.168.0.0/24"}),
			[]string{"test.yaml:26: lb.vip: 192.168.0.0 is the network address of 192.168.0.0/24, not a usable address"}},
		{"port out of range", plus("web:\n  port: 70000\n"),
			[]string{"test.yaml:28: web.port: 70000 is not a port number (1-65535)"}},
		{"web and lb on one host and port", edit(map[int]string{15: "    roles: [lb, web]"}),
			[]string{"test.yaml:15: hosts[3].roles: web and lb both listen on port 80 on lb-1; set web.port to a different port, e.g. 8080"}},
		{"web and lb on the same explicit port", edit(map[int]string{15: "    roles: [lb, web]", 18: "    roles: [lb, web]", 26: "  vip: 192.168.0.200/24\nweb: {port: 80}"}),
			[]string{"test.yaml:27: web.port: web and lb both listen on port 80 on lb-1, lb-2; set web.port to a different port, e.g. 8080"}},
		{"alert speed unknown", plus("alerts:\n  speed: quick\n"),
			[]string{"test.yaml:28: alerts.speed: \"quick\" is not one of normal, fast"}},
		{"alert webhook not a URL", plus("alerts:\n  webhook: hooks.example.org/x\n"),
			[]string{"test.yaml:28: alerts.webhook: not an http(s) URL like https://hooks.example.com/… (the value is a secret and not shown)"}},
		{"two roles on one port", plus("dashboard:\n  port: 3306\n"),
			[]string{"test.yaml:28: dashboard.port: mysql and dashboard both listen on port 3306 on db-1; change dashboard.port"}},
		{"role on the per-host ssh port", edit(map[int]string{6: "    roles: [zookeeper, kafka, web, filebeat]\n    ssh: {port: 2181}"}),
			[]string{"test.yaml:7: hosts[0].ssh.port: ssh and zookeeper both listen on port 2181 on kafka-1; change hosts[0].ssh.port"}},
		{"lb priority collision", edit(map[int]string{15: "    roles: [lb]\n    lb: {priority: 120}", 18: "    roles: [lb]\n    lb: {priority: 120}"}),
			[]string{"test.yaml:20: hosts[4].lb.priority: 120 is already the priority of lb-1 (line 16); each lb host needs its own"}},
		{"lb priority out of range", edit(map[int]string{18: "    roles: [lb]\n    lb: {priority: 255}"}),
			[]string{"test.yaml:19: hosts[4].lb.priority: 255 is not a VRRP priority (1-254)"}},
		{"lb settings on a non-lb host", edit(map[int]string{21: "    roles: [mysql, consumer, dashboard]\n    lb: {priority: 10}"}),
			[]string{"test.yaml:22: hosts[5].lb: only hosts with the lb role take lb settings"}},
		{"web weight out of range", edit(map[int]string{6: "    roles: [zookeeper, kafka, web, filebeat]\n    web: {weight: 0}"}),
			[]string{"test.yaml:7: hosts[0].web.weight: 0 is not a weight (1-100)"}},
		{"VRRP password too long", plus("  auth_pass: verysecretpass\n"),
			[]string{"test.yaml:27: lb.auth_pass: keepalived uses at most 8 characters, this one has 14"}},
		{"virtual router id", plus("  virtual_router_id: 300\n"),
			[]string{"test.yaml:27: lb.virtual_router_id: 300 is not a VRRP router id (1-255)"}},
		{"algorithm typo", plus("  algorithm: round-robin\n"),
			[]string{`test.yaml:27: lb.algorithm: "round-robin" is not one of round_robin, weighted, ip_hash, least_conn (did you mean "round_robin"?)`}},
		{"unset variable", plus("mysql:\n  password: ${MYSQL_PASS}\n"),
			[]string{"test.yaml:28: mysql.password: environment variable MYSQL_PASS is not set"}},
		{"unset variable in a number", plus("ssh: {port: \"${SSH_PORT}\"}\n"),
			[]string{"test.yaml:27: ssh.port: environment variable SSH_PORT is not set"}},
		{"bad variable name", plus("mysql: {user: \"${1x}\"}\n"),
			[]string{`test.yaml:27: mysql.user: "1x" is not a valid variable name (want letters, digits and _)`}},
		{"unterminated variable", plus("mysql: {password: \"${PASS\"}\n"),
			[]string{"test.yaml:27: mysql.password: unterminated ${ (write $$ for a literal $)"}},
		{"sha512 not hex", edit(map[int]string{23: "  version: 3.9.1\n  sha512: " + long + "g"}),
			[]string{"test.yaml:24: kafka.sha512: want the 128 hex digits of a SHA-512 (as sha512sum prints them), got 128 characters"}},
		{"plain http artifact without sha512", edit(map[int]string{23: "  version: 3.9.1\n  artifact: http://mirror.lan/kafka.tgz"}),
			[]string{"test.yaml:24: kafka.artifact: a plain http:// download needs kafka.sha512 (or use https://)"}},
		{"missing local artifact", edit(map[int]string{23: "  version: 3.9.1\n  artifact: ./nope/kafka.tgz"}),
			[]string{`test.yaml:24: kafka.artifact: file "./nope/kafka.tgz" does not exist (relative paths start at the inventory's directory)`}},
		{"ftp artifact", plus("filebeat: {artifact: \"ftp://elastic/filebeat.rpm\"}\n"),
			[]string{`test.yaml:27: filebeat.artifact: "ftp://elastic/filebeat.rpm": want an https:// URL, a file:// URL or a local path`}},
		{"package proxy", edit(map[int]string{2: "  name: sc\n  package_proxy: ftp://proxy:21"}),
			[]string{`test.yaml:3: cluster.package_proxy: "ftp://proxy:21" is not a proxy URL like http://host:3128`}},
		{"bastion", plus("ssh:\n  bastion: root@jump:99999\n"),
			[]string{`test.yaml:28: ssh.bastion: "root@jump:99999" is not [user@]host[:port]: "99999" is not a port number (1-65535)`}},
		{"timezone", edit(map[int]string{2: "  name: sc\n  timezone: Mars/Olympus_Mons"}),
			[]string{`test.yaml:3: cluster.timezone: "Mars/Olympus_Mons" is not an IANA time zone name like Asia/Shanghai or UTC`}},
		{"domain", edit(map[int]string{2: "  name: sc\n  domain: www..sc.com"}),
			[]string{`test.yaml:3: cluster.domain: "www..sc.com" is not a valid DNS name`}},
		{"selinux typo", edit(map[int]string{2: "  name: sc\n  selinux: permisive"}),
			[]string{`test.yaml:3: cluster.selinux: "permisive" is not one of keep, enforcing, permissive, disabled (did you mean "permissive"?)`}},
		{"ntp server", edit(map[int]string{2: "  name: sc\n  ntp_servers: [ntp.aliyun.com, \"not a host\"]"}),
			[]string{`test.yaml:3: cluster.ntp_servers[1]: "not a host" is not a host name or IP address`}},
		{"templates directory", edit(map[int]string{2: "  name: sc\n  templates: ./no-such-dir"}),
			[]string{`test.yaml:3: cluster.templates: directory "./no-such-dir" does not exist (relative paths start at the inventory's directory)`}},
		{"heap size", plus("zookeeper:\n  heap: lots\n"),
			[]string{`test.yaml:28: zookeeper.heap: "lots" is not a heap size like 512m or 1g`}},
		{"repeated section", plus("kafka:\n  retention: {hours: 0}\n"),
			[]string{"test.yaml:27: kafka: repeated key (first at line 22)"}},
		{"retention hours", edit(map[int]string{24: "  topic: {name: nginxlog}\n  retention: {hours: 0, bytes: -2}"}),
			[]string{
				"test.yaml:25: kafka.retention.hours: want -1 (no limit) or at least 1, got 0",
				"test.yaml:25: kafka.retention.bytes: want -1 (no limit) or at least 1, got -2",
			}},
		{"topic name", edit(map[int]string{24: "  topic: {name: nginx log}"}),
			[]string{`test.yaml:24: kafka.topic.name: "nginx log" is not a valid topic name (letters, digits, ".", "_", "-")`}},
		{"property without a value", edit(map[int]string{24: "  properties:\n    log.segment.bytes:"}),
			[]string{"test.yaml:25: kafka.properties[log.segment.bytes]: needs a value"}},
		{"mysql names", plus("mysql: {database: traffic-db, user: consumer}\n"),
			[]string{`test.yaml:27: mysql.database: "traffic-db" is not a plain database name (letters, digits and _, at most 64)`}},
		{"ssh user", plus("ssh: {user: \"Bad User\"}\n"),
			[]string{`test.yaml:27: ssh.user: "Bad User" is not a valid user name`}},
		{"cluster name missing", edit(map[int]string{2: ""}),
			[]string{`test.yaml:1: cluster.name: required: a short name like "sc" (it becomes the Pulumi stack name)`}},
		{"cluster name invalid", edit(map[int]string{2: "  name: Shanghai Cluster"}),
			[]string{`test.yaml:2: cluster.name: "Shanghai Cluster" is not a valid name: a lowercase letter, then up to 31 lowercase letters, digits or "-"`}},
		{"no hosts", "cluster: {name: sc}\nhosts: []\n",
			[]string{"test.yaml:2: hosts: required: list at least one host"}},
		{"empty file", "",
			[]string{
				`test.yaml:1: cluster.name: required: a short name like "sc" (it becomes the Pulumi stack name)`,
				"test.yaml:1: hosts: required: list at least one host",
			}},
		{"merge of a scalar", plus("web:\n  <<: 80\n"),
			[]string{"test.yaml:28: web.<<: can only merge mappings"}},
		{"three planted mistakes", edit(map[int]string{
			8:  "    adress: 192.168.0.191",
			24: "  topic: {name: nginxlog, replication: 5, min_insync: 2}",
			26: "  vip: 192.168.0.300/24",
		}),
			[]string{
				`test.yaml:8: hosts[1].adress: unknown key (did you mean "address"?)`,
				"test.yaml:24: kafka.topic.replication: 5 replicas need 5 brokers, but only 3 hosts have the kafka role",
				`test.yaml:26: lb.vip: "192.168.0.300/24" is not an address with a prefix length, like 192.168.0.200/24`,
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := Parse("test.yaml", []byte(tc.yaml), nil)
			var got []string
			var ps Problems
			switch {
			case errors.As(err, &ps):
				for _, p := range ps {
					got = append(got, p.Error())
				}
				if inv != nil {
					t.Errorf("got an inventory along with problems")
				}
			case err != nil:
				t.Fatalf("error is %T, not Problems: %v", err, err)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems:\n%s\nwant:\n%s\ninventory:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"), numbered(tc.yaml))
			}
		})
	}
	if len(cases) < 35 {
		t.Errorf("only %d cases", len(cases))
	}
}

func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		b.WriteString(strings.Repeat(" ", 3-len(itoa(i+1))) + itoa(i+1) + "  " + l + "\n")
	}
	return b.String()
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b  string
		patch bool
		want  int
		ok    bool
	}{
		{"3.9.2", "4.4.0", false, -1, true},
		{"3.9.2", "3.9.0", false, 0, true},
		{"3.9.2", "3.9.0", true, 1, true},
		{"4.10.0", "4.9.1", false, 1, true},
		{"3.9", "3.9.0", false, 0, false},
	} {
		got, ok := CompareVersions(c.a, c.b, c.patch)
		if got != c.want || ok != c.ok {
			t.Errorf("CompareVersions(%s, %s, %v) = %d, %v; want %d, %v", c.a, c.b, c.patch, got, ok, c.want, c.ok)
		}
	}
}

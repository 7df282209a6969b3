package kafka

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/install"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

const (
	kafkaURL  = "https://archive.apache.org/dist/kafka/3.9.1/kafka_2.13-3.9.1.tgz"
	clusterID = "MkU3OEVBNTcwNTJENDM2Qg"
)

// The tarball the fake host downloads: the fake's tar unpacks it.
var kafkaTarball = rt.FakeTarball(map[string]string{
	"bin/kafka-server-start.sh": "#!/bin/sh\n",
	"bin/kafka-storage.sh":      "#!/bin/sh\n",
	"libs/kafka_2.13-3.9.1.jar": "jar",
})

const testInventory = `
cluster: {name: sc, firewall: unmanaged}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.4, roles: [lb, mysql, consumer, dashboard]}
lb: {vip: 10.0.0.100/24, port: 81}
kafka: {mode: MODE, heap: 2g, artifact: ` + kafkaURL + `, sha512: SHA}
`

func testInv(t *testing.T, mode inventory.KafkaMode, sha string) *inventory.Inventory {
	t.Helper()
	text := strings.Replace(testInventory, "MODE", string(mode), 1)
	if mode == inventory.KafkaKRaft {
		text = strings.ReplaceAll(text, "zookeeper, kafka", "kafka")
	}
	return rt.LoadInventory(t, strings.Replace(text, "SHA", sha, 1))
}

// newHost is a fresh host whose broker listens once it runs, and whose
// kafka-storage.sh writes meta.properties into the log directory.
func newHost(h *rt.Host) *rt.Host {
	h.URLs[kafkaURL] = kafkaTarball
	h.Handle("^"+rt.Quote(step.TCPProbe(Port, ""))+"$", false, func(m []string, s sshtest.Session) int {
		if !h.Active[Unit] {
			fmt.Fprintln(s.Stderr, "bash: connect: Connection refused")
			return 1
		}
		return 0
	})
	// Each family's: with JAVA_HOME on RHEL-like hosts, without on Debian.
	for _, system := range []facts.OS{rt.Rocky9(), rt.Debian12()} {
		h.Handle("^"+rt.Pattern(FormatCommand(system, "CLUSTER-ID", []string{"LOG-DIR"}), "CLUSTER-ID", "LOG-DIR")+"$", true, func(m []string, s sshtest.Session) int {
			if _, ok := h.Files[h.Resolve(Home+"/bin/kafka-storage.sh")]; !ok {
				return 127
			}
			h.Files[m[2]+"/meta.properties"] = rt.File{Content: "version=1\ncluster.id=" + m[1] + "\nnode.id=1\n", Mode: "644", Owner: "kafka:kafka"}
			return 0
		})
	}
	return h
}

func TestRHELZooKeeperMode(t *testing.T) {
	h := newHost(rt.NewRHEL())
	inv := testInv(t, inventory.KafkaZooKeeper, rt.SHA512(kafkaTarball))
	c, tg := rt.Connect(t, h, inv, "kafka-3")
	var restarted []string
	role := New(WithRestart(func(ctx context.Context, t *step.Target, restart func(context.Context) error) error {
		restarted = append(restarted, t.Host.Name())
		return restart(ctx)
	}))
	steps, err := rt.Steps(role, c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		`sh -c .*dnf install -y -q.* sh java-17-openjdk-headless tar`,
		rt.Quote(`useradd --system --user-group --no-create-home --home-dir /var/lib/trafficlab/kafka --shell /usr/sbin/nologin kafka`),
		rt.Quote(`mkdir -p /opt/trafficlab/dist && curl -fsSL --retry 3 -o /opt/trafficlab/dist/.kafka_2.13-3.9.1.tgz.part ` + kafkaURL),
		rt.Quote(`mv -f /opt/trafficlab/dist/.kafka_2.13-3.9.1.tgz.part /opt/trafficlab/dist/kafka_2.13-3.9.1.tgz && echo '` + rt.SHA512(kafkaTarball) + `  kafka_2.13-3.9.1.tgz' > /opt/trafficlab/dist/kafka_2.13-3.9.1.tgz.sha512`),
		`\{ rm -rf /opt/kafka_2.13-3.9.1.trafficlab-new && .* tar -xf /opt/trafficlab/dist/kafka_2.13-3.9.1.tgz .*`,
		`if \[ -d /opt/kafka \] .* ln -sfn -- /opt/kafka_2.13-3.9.1 /opt/kafka`,
		rt.Quote(`install -d -m 0755 -o root -g root -- /etc/trafficlab/kafka`),
		rt.Quote(`install -d -m 0750 -o kafka -g kafka -- /var/lib/trafficlab/kafka`),
		rt.Quote(`install -d -m 0750 -o kafka -g kafka -- /var/log/kafka`),
		rt.Upload("0644", "root:root", ConfigFile),
		`mkdir -p /etc/systemd/system`,
		rt.Upload("0644", "root:root", UnitFile),
		`systemctl daemon-reload`,
		// A broker not running yet is started, not restarted.
		`systemctl enable --now trafficlab-kafka.service`,
	})
	if len(restarted) != 0 {
		t.Errorf("the first start went through the restart hook: %q", restarted)
	}
	conf, _ := h.File(ConfigFile)
	for _, want := range []string{"broker.id=3\n", "advertised.listeners=PLAINTEXT://kafka-3:9092\n", "zookeeper.connect=kafka-1:2181,kafka-2:2181,kafka-3:2181\n"} {
		if !strings.Contains(conf.Content, want) {
			t.Errorf("server.properties lacks %q:\n%s", want, conf.Content)
		}
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// A property changed in the inventory: the running broker restarts,
	// through the engine's hook.
	inv.Kafka.Properties["log.retention.check.interval.ms"] = "60000"
	steps, _ = rt.Steps(role, c)
	changed := rt.Apply(t, tg, steps)
	if strings.Join(changed, ",") != "file "+ConfigFile+","+RestartStep {
		t.Errorf("changed %q", changed)
	}
	rt.AssertSequence(t, h.TakeMutating(), []string{rt.Upload("0644", "root:root", ConfigFile), `systemctl restart trafficlab-kafka.service`})
	if strings.Join(restarted, ",") != "kafka-3" {
		t.Errorf("restart hook called for %q", restarted)
	}

	// A new distribution restarts it too, and leaves the old one beside.
	h.URLs["https://example.org/kafka_2.13-3.9.2.tgz"] = kafkaTarball + "new"
	inv.Kafka.Artifact, inv.Kafka.SHA512 = "https://example.org/kafka_2.13-3.9.2.tgz", rt.SHA512(kafkaTarball+"new")
	steps, _ = rt.Steps(role, c)
	rt.Apply(t, tg, steps)
	if f, _ := h.File(Home); f.Link != "/opt/kafka_2.13-3.9.2" {
		t.Errorf("%s -> %q", Home, f.Link)
	}
	if m := h.TakeMutating(); !strings.Contains(m[len(m)-1], "systemctl restart") {
		t.Errorf("no restart after the upgrade: %q", m)
	}
}

func TestKRaftFormatsOnce(t *testing.T) {
	h := newHost(rt.NewDebian("none"))
	inv := testInv(t, inventory.KafkaKRaft, rt.SHA512(kafkaTarball))
	c, tg := rt.Connect(t, h, inv, "kafka-1")
	c.Values = map[string]string{ClusterIDKey: clusterID}
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	m := h.TakeMutating()
	rt.AssertSequence(t, m[0:1], []string{`sh -c .*apt-get install -y -q.* sh openjdk-17-jre-headless curl`})
	rt.AssertSequence(t, m[9:], []string{
		rt.Upload("0644", "root:root", ConfigFile),
		rt.Quote(`LOG_DIR=/var/log/kafka /opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id ` + clusterID + ` --config /etc/trafficlab/kafka/server.properties && chown -R kafka:kafka /var/lib/trafficlab/kafka`),
		`mkdir -p /etc/systemd/system`,
		rt.Upload("0644", "root:root", UnitFile),
		`systemctl daemon-reload`,
		`systemctl enable --now trafficlab-kafka.service`,
	})
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// Another cluster's storage is never reformatted.
	c.Values = map[string]string{ClusterIDKey: "AAAAAAAAAAAAAAAAAAAAAg"}
	steps, _ = rt.Steps(New(), c)
	_, err = rt.TryApply(tg, steps)
	if err == nil || !strings.Contains(err.Error(), `kafka-1: kafka storage format: checking: /var/lib/trafficlab/kafka/meta.properties belongs to cluster "`+clusterID+`"`) || !strings.Contains(err.Error(), "refusing to reformat") {
		t.Errorf("error %v", err)
	}

	c.Values = map[string]string{ClusterIDKey: ""}
	if _, err := rt.Steps(New(), c); err == nil || !strings.Contains(err.Error(), "cluster id") {
		t.Errorf("Steps without a cluster id: %v", err)
	}
}

func TestRemove(t *testing.T) {
	h := newHost(rt.NewRHEL())
	c, tg := rt.Connect(t, h, testInv(t, inventory.KafkaZooKeeper, rt.SHA512(kafkaTarball)), "kafka-1")
	steps, _ := rt.Steps(New(), c)
	rt.Apply(t, tg, steps)
	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, remove)
	for _, p := range []string{"/etc/trafficlab", "/var/lib/trafficlab", "/var/log/kafka", "/opt/trafficlab", "/opt/kafka", UnitFile} {
		if left := h.Paths(p); len(left) != 0 {
			t.Errorf("destroy left %q", left)
		}
	}
	if h.Users["kafka"] || h.Active[Unit] {
		t.Error("destroy left the user or the service")
	}
	rt.AssertSecondRunIdle(t, h, tg, remove)
	if keeps := strings.Join(New().Keeps(c), "; "); !strings.Contains(keeps, "java-17-openjdk-headless") {
		t.Errorf("Keeps: %s", keeps)
	}
}

// An upgrade unpacks the new release beside the old one (which may still
// run a process until its restart) and points /opt/kafka at it; destroy
// removes both releases and both kept copies.
func TestUpgradeThenRemove(t *testing.T) {
	h := newHost(rt.NewRHEL())
	old := testInv(t, inventory.KafkaZooKeeper, rt.SHA512(kafkaTarball))
	c, tg := rt.Connect(t, h, old, "kafka-1")
	steps, _ := rt.Steps(New(WithRestart(func(ctx context.Context, _ *step.Target, restart func(context.Context) error) error {
		return restart(ctx)
	})), c)
	rt.Apply(t, tg, steps)

	newURL := strings.ReplaceAll(kafkaURL, "3.9.1", "3.9.2")
	newTarball := rt.FakeTarball(map[string]string{"bin/kafka-server-start.sh": "#!/bin/sh\n", "bin/kafka-storage.sh": "#!/bin/sh\n", "libs/kafka_2.13-3.9.2.jar": "jar"})
	h.URLs[newURL] = newTarball
	c.Inventory.Kafka.Version, c.Inventory.Kafka.Artifact, c.Inventory.Kafka.SHA512 = "3.9.2", newURL, rt.SHA512(newTarball)
	restarted := 0
	steps, _ = rt.Steps(New(WithRestart(func(ctx context.Context, _ *step.Target, restart func(context.Context) error) error {
		restarted++
		return restart(ctx)
	})), c)
	rt.Apply(t, tg, steps)
	if restarted != 1 || h.Resolve(Home) != "/opt/kafka_2.13-3.9.2" {
		t.Fatalf("after the upgrade: %d restarts, %s -> %s; want one restart onto 3.9.2", restarted, Home, h.Resolve(Home))
	}
	if len(h.Paths("/opt/kafka_2.13-3.9.1")) == 0 {
		t.Error("the upgrade removed the old release, which a process may still run from")
	}
	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, remove)
	for _, p := range []string{"/opt/kafka_2.13-3.9.1", "/opt/kafka_2.13-3.9.2", "/opt/trafficlab", "/opt/kafka"} {
		if left := h.Paths(p); len(left) != 0 {
			t.Errorf("destroy after an upgrade left %q", left)
		}
	}
}

func TestClusterID(t *testing.T) {
	for range 100 {
		id, err := NewClusterID()
		if err != nil || !ValidClusterID(id) || len(id) != 22 {
			t.Fatalf("NewClusterID() = %q, %v", id, err)
		}
	}
	for _, bad := range []string{"", "short", "AAAAAAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAAAAAAAAAQ", "-AAAAAAAAAAAAAAAAAAAAA", "MkU3OEVBNTcwNTJENDM2Qg=="} {
		if ValidClusterID(bad) {
			t.Errorf("ValidClusterID(%q)", bad)
		}
	}
	if !ValidClusterID(clusterID) {
		t.Errorf("Kafka's own example id %q refused", clusterID)
	}
}

// examples are the example inventories in both modes: as written, and the
// ZooKeeper-mode ones switched to KRaft (Kafka 3.9 has both).
func examples(t *testing.T) map[string]*inventory.Inventory {
	out := map[string]*inventory.Inventory{}
	for _, name := range []string{"seed-centos", "all-in-one", "kraft"} {
		inv := rt.LoadExample(t, name+".yaml")
		out[name] = inv
		if inv.Kafka.Mode == inventory.KafkaZooKeeper {
			k := rt.LoadExample(t, name+".yaml")
			k.Kafka.Mode = inventory.KafkaKRaft
			out[name+"-as-kraft"] = k
		}
	}
	return out
}

// Every key of every rendered server.properties is one Kafka 3.9 knows: a
// misspelt key would silently do nothing.
func TestPropertiesKeysAreKafkas(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "..", "..", "shared", "data", "kafka-3.9-broker-config-keys.txt"))
	if err != nil {
		t.Fatalf("the list of Kafka's keys (../shared beside the repository): %v", err)
	}
	defer f.Close()
	known := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			known[line] = true
		}
	}
	if len(known) < 300 {
		t.Fatalf("only %d keys read", len(known))
	}
	set := rt.Templates(t)
	checked := map[inventory.KafkaMode]int{}
	for name, inv := range examples(t) {
		for _, h := range inv.HostsWith(inventory.RoleKafka) {
			c := rt.Offline(t, inv, h.Name, rt.Debian12())
			c.Templates = set
			files, err := New().Files(c)
			if err != nil {
				t.Fatal(err)
			}
			keys := 0
			for _, line := range strings.Split(string(files[0].Content), "\n") {
				if line = strings.TrimSpace(line); line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				key, _, ok := strings.Cut(line, "=")
				if !ok || !known[key] {
					t.Errorf("%s %s: %q is not a Kafka 3.9 broker property", name, h.Name, line)
				}
				keys++
			}
			if keys < 15 {
				t.Errorf("%s %s: only %d properties", name, h.Name, keys)
			}
			checked[inv.Kafka.Mode]++
		}
	}
	if checked[inventory.KafkaZooKeeper] < 6 || checked[inventory.KafkaKRaft] < 9 {
		t.Errorf("brokers checked: %v", checked)
	}
}

// Every file the role writes, for both families and modes and the example
// inventories, as golden files.
func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	ex := examples(t)
	custom := rt.LoadExample(t, "seed-centos.yaml")
	custom.Kafka.Retention = inventory.Retention{Hours: -1, Bytes: 100 << 20}
	custom.Kafka.Properties = map[string]string{"num.partitions": "6", "log.dirs": "/data/k1,/data/k2", "compression.type": "zstd"}
	saslZK := rt.LoadExample(t, "seed-centos.yaml")
	saslZK.Kafka.Security = inventory.KafkaSASLSSL
	tlsKRaft := rt.LoadExample(t, "kraft.yaml")
	tlsKRaft.Kafka.Security = inventory.KafkaTLS
	migrating := rt.LoadExample(t, "seed-centos.yaml")
	migrating.Kafka.Mode, migrating.Kafka.Controllers = inventory.KafkaMigrating, inventory.ControllersSeparate
	migratingTLS := rt.LoadExample(t, "seed-centos.yaml")
	migratingTLS.Kafka.Mode, migratingTLS.Kafka.Controllers = inventory.KafkaMigrating, inventory.ControllersSeparate
	migratingTLS.Kafka.Security = inventory.KafkaSASLSSL
	migrated := rt.LoadExample(t, "seed-centos.yaml")
	migrated.Kafka.Mode, migrated.Kafka.Controllers = inventory.KafkaKRaft, inventory.ControllersSeparate
	for _, tt := range []struct {
		name string
		inv  *inventory.Inventory
		host string
		os   facts.OS
		role role.Role
	}{
		{"migrating-debian12-kafka-2", migrating, "kafka-2", rt.Debian12(), New()},
		{"migrating-controller-debian12-kafka-2", migrating, "kafka-2", rt.Debian12(), NewController()},
		{"migrating-sasl-ssl-rocky9-kafka-1", migratingTLS, "kafka-1", rt.Rocky9(), New()},
		{"migrating-controller-sasl-ssl-rocky9-kafka-1", migratingTLS, "kafka-1", rt.Rocky9(), NewController()},
		{"migrated-debian12-kafka-3", migrated, "kafka-3", rt.Debian12(), New()},
		{"migrated-controller-debian12-kafka-3", migrated, "kafka-3", rt.Debian12(), NewController()},
		{"seed-sasl-ssl-debian12-kafka-1", saslZK, "kafka-1", rt.Debian12(), nil},
		{"kraft-tls-rocky9-kafka-2", tlsKRaft, "kafka-2", rt.Rocky9(), nil},
		{"seed-rocky9-kafka-1", ex["seed-centos"], "kafka-1", rt.Rocky9(), nil},
		{"seed-debian12-kafka-2", ex["seed-centos"], "kafka-2", rt.Debian12(), nil},
		{"kraft-rocky9-kafka-1", ex["kraft"], "kafka-1", rt.Rocky9(), nil},
		{"kraft-debian12-kafka-3", ex["kraft"], "kafka-3", rt.Debian12(), nil},
		{"all-in-one-debian12-node-1", ex["all-in-one"], "node-1", rt.Debian12(), nil},
		{"seed-properties-debian12-kafka-1", custom, "kafka-1", rt.Debian12(), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Files alone: no connection and no cluster id, as `render`
			// calls it.
			c := rt.Offline(t, tt.inv, tt.host, tt.os)
			c.Templates = set
			c.Secrets = role.Secrets{KafkaCA: "(CA certificate)\n", KafkaCerts: map[string]string{tt.host: "(key and certificate of " + tt.host + ")\n"}}
			ro := tt.role
			if ro == nil {
				ro = New()
			}
			rt.AssertFiles(t, ro, c, filepath.Join("testdata", tt.name+".golden"))
		})
	}
	if unused := set.Unused("kafka"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

// The inventory's properties win, once: no key appears twice.
func TestPropertiesMergedLast(t *testing.T) {
	inv := rt.LoadExample(t, "seed-centos.yaml")
	inv.Kafka.Properties = map[string]string{"num.partitions": "6", "log.dirs": "/data/a, /data/b", "x.path": `C:\tmp`}
	groups, err := Properties(inv, inv.Hosts[0])
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, g := range groups {
		for _, p := range g.Properties {
			seen[p.Key]++
		}
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s appears %d times", k, n)
		}
	}
	last := groups[len(groups)-1]
	if fmt.Sprint(last.Properties) != `[{log.dirs /data/a, /data/b} {num.partitions 6} {x.path C:\\tmp}]` {
		t.Errorf("user group %v", last.Properties)
	}
	m, _ := merged(inv, inv.Hosts[0])
	if got := logDirs(m); strings.Join(got, " ") != "/data/a /data/b" {
		t.Errorf("log dirs %q", got)
	}
}

func TestListenerPort(t *testing.T) {
	for in, want := range map[string]int{
		"PLAINTEXT://0.0.0.0:9092":                     9092,
		"CONTROLLER://0.0.0.0:9093,PLAINTEXT://:19092": 19092,
		"": Port,
		"SASL_SSL://kafka-1:9094,PLAINTEXT://kafka-1:9092": 9094,
	} {
		if got := listenerPort(map[string]string{"listeners": in}); got != want {
			t.Errorf("listenerPort(%q) = %d, want %d", in, got, want)
		}
	}
}

// A checksum mismatch stops the role before anything is installed.
func TestWrongChecksum(t *testing.T) {
	h := newHost(rt.NewRHEL())
	c, tg := rt.Connect(t, h, testInv(t, inventory.KafkaZooKeeper, strings.Repeat("f", 128)), "kafka-1")
	steps, _ := rt.Steps(New(), c)
	_, err := rt.TryApply(tg, steps)
	if !errors.Is(err, install.ErrChecksum) || !regexp.MustCompile(`kafka-1: fetch kafka_2.13-3.9.1.tgz: checksum mismatch: .* removed it, nothing installed`).MatchString(err.Error()) {
		t.Fatalf("error %v", err)
	}
	if p := append(h.Paths("/opt/kafka"), h.Paths("/etc/trafficlab")...); len(p) != 0 {
		t.Errorf("installed anyway: %q", p)
	}
}

// While a ZooKeeper-mode upgrade rolls onto a newer release, every broker
// keeps the protocol of the oldest one still running; the user's own
// inter.broker.protocol.version wins, and KRaft has no such line.
func TestRunningProtocolPinned(t *testing.T) {
	inv := rt.LoadExample(t, "seed-centos.yaml")
	inv.Kafka.RunningProtocol = "3.8"
	m, err := merged(inv, inv.Hosts[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := m["inter.broker.protocol.version"]; got != "3.8" {
		t.Errorf("inter.broker.protocol.version %q during the upgrade, want 3.8", got)
	}
	inv.Kafka.Properties = map[string]string{"inter.broker.protocol.version": "3.7"}
	if m, _ = merged(inv, inv.Hosts[0]); m["inter.broker.protocol.version"] != "3.7" {
		t.Errorf("the inventory's protocol lost: %q", m["inter.broker.protocol.version"])
	}
	inv.Kafka.Properties, inv.Kafka.RunningProtocol = nil, ""
	if m, _ = merged(inv, inv.Hosts[0]); m["inter.broker.protocol.version"] != "" {
		t.Errorf("pinned %q with no upgrade under way", m["inter.broker.protocol.version"])
	}
}

// On a migrated cluster (separate controllers, ZooKeeper gone) the
// brokers are removed before the controllers they need: the kafka user,
// the distribution and the configuration directory go with the
// controllers, never from under a running controller.
func TestSharedRemovedLast(t *testing.T) {
	inv := testInv(t, inventory.KafkaKRaft, rt.SHA512(kafkaTarball))
	ids := func(steps []step.Step) string {
		var out []string
		for _, s := range steps {
			out = append(out, s.Name)
		}
		return strings.Join(out, "; ")
	}
	for _, separate := range []bool{false, true} {
		inv.Kafka.Controllers = inventory.ControllersCombined
		if separate {
			inv.Kafka.Controllers = inventory.ControllersSeparate
		}
		c := &role.Context{Inventory: inv, Host: inv.Hosts[0], OS: rt.Debian12()}
		broker, _ := New().Remove(c)
		ctrl, _ := NewController().Remove(c)
		b, k := ids(broker), ids(ctrl)
		if got := strings.Contains(b, "remove user kafka"); got == separate {
			t.Errorf("separate controllers %v: the broker's removal removes the kafka user: %v\n%s", separate, got, b)
		}
		if got := strings.Contains(k, "remove user kafka"); got != separate {
			t.Errorf("separate controllers %v: the controller's removal removes the kafka user: %v\n%s", separate, got, k)
		}
	}
}

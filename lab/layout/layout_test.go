package layout

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/lab/kafkadist"
)

var update = flag.Bool("update", false, "rewrite the golden inventories in testdata/")

func params(n int) Params {
	p := Params{
		Prefix:       24,
		VIP:          netip.MustParseAddr("10.231.0.254"),
		NTPServer:    netip.MustParseAddr("10.231.0.1"),
		PackageProxy: "http://10.231.0.1:3128",
		KeyFile:      "/var/lib/trafficlab/lab/id_ed25519",
		KnownHosts:   "/var/lib/trafficlab/lab/known_hosts",
	}
	for i := range n {
		p.Addresses = append(p.Addresses, netip.AddrFrom4([4]byte{10, 231, 0, byte(10 + i)}))
	}
	return p
}

// TestInventoryGolden pins the YAML the lab writes for each layout, and
// proves the provisioner's own loader accepts it.
func TestInventoryGolden(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			l, err := Get(name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Inventory(params(len(l.Machines)))
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("inventory for %s differs from %s:\n%s", name, golden, got)
			}
			inv, err := inventory.Parse(golden, got, func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatalf("inventory.Parse rejects the lab's inventory: %v", err)
			}
			if len(inv.Hosts) != len(l.Machines) {
				t.Errorf("parsed %d hosts, want %d", len(inv.Hosts), len(l.Machines))
			}
			if inv.SSH.KnownHosts != "/var/lib/trafficlab/lab/known_hosts" || string(inv.SSH.HostKeyCheck) != "strict" {
				t.Errorf("ssh settings not carried: %+v", inv.SSH)
			}
		})
	}
}

func TestLayouts(t *testing.T) {
	def, _ := Get("default")
	if len(def.Machines) != 6 {
		t.Errorf("default has %d machines, want 6", len(def.Machines))
	}
	min, _ := Get("minimal")
	if len(min.Machines) != 3 || min.WebPort != 8081 {
		t.Errorf("minimal = %+v, want 3 machines with web on 8081", min)
	}
	for _, m := range min.Machines {
		if m.LBPriority == 0 {
			t.Errorf("%s has the lb role but no priority", m.Name)
		}
	}
	// Each layout's brokers run a release the lab can assemble, in the
	// mode it is for: ZooKeeper mode on 3.x (with a ZooKeeper ensemble),
	// KRaft on 4.x (with none).
	for _, name := range Names() {
		l, _ := Get(name)
		if _, err := kafkadist.Lookup(l.KafkaVersion); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		zk := 0
		for _, m := range l.Machines {
			for _, r := range m.Roles {
				if r == "zookeeper" {
					zk++
				}
			}
		}
		switch {
		case l.KafkaMode == "zookeeper" && (zk != 3 || !strings.HasPrefix(l.KafkaVersion, "3.")):
			t.Errorf("%s: ZooKeeper mode on Kafka %s with %d ZooKeeper servers", name, l.KafkaVersion, zk)
		case l.KafkaMode == "kraft" && zk != 0:
			t.Errorf("%s: KRaft mode with %d ZooKeeper servers", name, zk)
		case l.KafkaMode != "zookeeper" && l.KafkaMode != "kraft":
			t.Errorf("%s: Kafka mode %q", name, l.KafkaMode)
		}
	}
	if _, err := Get("huge"); err == nil {
		t.Error("unknown layout accepted")
	}
	if _, err := def.Inventory(params(2)); err == nil {
		t.Error("inventory with too few addresses accepted")
	}
}

// The lab's Kafka and filebeat artifacts, when given, land in the
// inventory as the roles' artifacts and checksums, and the loader accepts
// them.
func TestInventoryArtifacts(t *testing.T) {
	l, _ := Get("default")
	p := params(len(l.Machines))
	p.KafkaArtifact = filepath.Join(t.TempDir(), "kafka_2.13-3.9.2.tgz")
	if err := os.WriteFile(p.KafkaArtifact, []byte("kafka"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.KafkaSHA512 = strings.Repeat("ab", 64)
	p.FilebeatArtifact = filepath.Join(t.TempDir(), "filebeat-7.17.29-linux-x86_64.tar.gz")
	if err := os.WriteFile(p.FilebeatArtifact, []byte("filebeat"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.FilebeatSHA512 = strings.Repeat("cd", 64)
	got, err := l.Inventory(p)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("lab.yaml", got, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if inv.Kafka.Artifact != p.KafkaArtifact || inv.Kafka.SHA512 != p.KafkaSHA512 {
		t.Errorf("kafka %+v", inv.Kafka)
	}
	if inv.Filebeat.Artifact != p.FilebeatArtifact || inv.Filebeat.SHA512 != p.FilebeatSHA512 {
		t.Errorf("filebeat %+v", inv.Filebeat)
	}
}

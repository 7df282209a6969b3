package zookeeper

import (
	"errors"
	"fmt"
	"github.com/trafficlab/trafficlab/provision/step"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/rolekit/install"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

const zkURL = "https://archive.apache.org/dist/zookeeper/zookeeper-3.8.4/apache-zookeeper-3.8.4-bin.tar.gz"

// The tarball the fake host downloads: the fake's tar unpacks it.
var zkTarball = rt.FakeTarball(map[string]string{
	"lib/zookeeper-3.8.4.jar": "jar",
	"conf/logback.xml":        "<configuration/>",
})

const testInventory = `
cluster: {name: sc, firewall: unmanaged}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.4, roles: [lb, mysql, consumer, dashboard]}
lb: {vip: 10.0.0.100/24, port: 81}
zookeeper: {heap: 256m, artifact: ` + zkURL + `, sha512: SHA}
`

func inventoryWithSHA(t *testing.T, sha string) *inventory.Inventory {
	t.Helper()
	text := strings.Replace(testInventory, ", sha512: SHA", "", 1)
	if sha != "" {
		text = strings.Replace(testInventory, "SHA", sha, 1)
	}
	return rt.LoadInventory(t, text)
}

// newRHEL is a fresh Rocky host whose ZooKeeper answers srvr as follower
// once it runs.
func newRHEL() *rt.Host {
	h := rt.NewRHEL()
	h.URLs[zkURL] = zkTarball
	answerSrvr(h, "Mode: follower")
	return h
}

func answerSrvr(h *rt.Host, mode string) {
	h.Handle("^"+rt.Quote(step.TCPProbe(ClientPort, "srvr"))+"$", false, func(m []string, s sshtest.Session) int {
		if !h.Active[Unit] {
			fmt.Fprintln(s.Stderr, "bash: connect: Connection refused")
			return 1
		}
		fmt.Fprintf(s.Stdout, "Zookeeper version: 3.8.4\nLatency min/avg/max: 0/0.0/0\n%s\nNode count: 5\n", mode)
		return 0
	})
}

// The RHEL-like sequence, tarball path: packages, user, download with the
// inventory's checksum, unpack, link, directories, files, unit, start, the
// quorum; then a second run touches nothing.
func TestRHELTarball(t *testing.T) {
	h := newRHEL()
	inv := inventoryWithSHA(t, rt.SHA512(zkTarball))
	c, tg := rt.Connect(t, h, inv, "kafka-2")
	if c.OS.Family != facts.RHEL {
		t.Fatalf("detected %+v", c.OS)
	}
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		`sh -c .*dnf install -y -q.* sh java-17-openjdk-headless tar`,
		rt.Quote(`useradd --system --user-group --no-create-home --home-dir /var/lib/trafficlab/zookeeper --shell /usr/sbin/nologin zookeeper`),
		rt.Quote(`mkdir -p /opt/trafficlab/dist && curl -fsSL --retry 3 -o /opt/trafficlab/dist/.apache-zookeeper-3.8.4-bin.tar.gz.part ` + zkURL),
		rt.Quote(`mv -f /opt/trafficlab/dist/.apache-zookeeper-3.8.4-bin.tar.gz.part /opt/trafficlab/dist/apache-zookeeper-3.8.4-bin.tar.gz && echo '` + rt.SHA512(zkTarball) + `  apache-zookeeper-3.8.4-bin.tar.gz' > /opt/trafficlab/dist/apache-zookeeper-3.8.4-bin.tar.gz.sha512`),
		`\{ rm -rf /opt/apache-zookeeper-3.8.4-bin.trafficlab-new .* tar -xf /opt/trafficlab/dist/apache-zookeeper-3.8.4-bin.tar.gz .*`,
		`if \[ -d /opt/zookeeper \] .* ln -sfn -- /opt/apache-zookeeper-3.8.4-bin /opt/zookeeper`,
		rt.Quote(`install -d -m 0755 -o root -g root -- /etc/trafficlab/zookeeper`),
		rt.Quote(`install -d -m 0750 -o zookeeper -g zookeeper -- /var/lib/trafficlab/zookeeper`),
		rt.Upload("0644", "root:root", ConfigFile),
		rt.Upload("0644", "zookeeper:zookeeper", MyIDFile),
		`mkdir -p /etc/systemd/system`,
		rt.Upload("0644", "root:root", UnitFile),
		`systemctl daemon-reload`,
		// Not running yet: no restart, the next step starts it.
		`systemctl enable --now trafficlab-zookeeper.service`,
	})
	if f, _ := h.File(MyIDFile); f.Content != "2\n" {
		t.Errorf("myid %q, want 2", f.Content)
	}
	if f, _ := h.File(Link); f.Link != "/opt/apache-zookeeper-3.8.4-bin" {
		t.Errorf("%s -> %q", Link, f.Link)
	}
	if _, ok := h.File("/opt/apache-zookeeper-3.8.4-bin/lib/zookeeper-3.8.4.jar"); !ok {
		t.Error("the tarball is not unpacked")
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// A new zoo.cfg restarts the running server.
	f, _ := h.File(ConfigFile)
	f.Content += "# edited by hand\n"
	h.Files[ConfigFile] = f
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Upload("0644", "root:root", ConfigFile),
		`systemctl restart trafficlab-zookeeper.service`,
	})
}

// Without a checksum in the inventory, the one Apache publishes next to
// the tarball is fetched first (sha512sum's format for ZooKeeper).
func TestDownloadChecksPublishedChecksum(t *testing.T) {
	h := newRHEL()
	h.URLs[zkURL+".sha512"] = rt.SHA512(zkTarball) + " *apache-zookeeper-3.8.4-bin.tar.gz\n"
	c, tg := rt.Connect(t, h, inventoryWithSHA(t, ""), "kafka-1")
	steps, _ := rt.Steps(New(), c)
	rt.Apply(t, tg, steps)
	if f, _ := h.File("/opt/trafficlab/dist/apache-zookeeper-3.8.4-bin.tar.gz.sha512"); !strings.HasPrefix(f.Content, rt.SHA512(zkTarball)) {
		t.Errorf("kept checksum %q", f.Content)
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)
}

// A download that does not match its checksum: a clear error, and nothing
// installed, not even the download.
func TestDownloadWrongChecksum(t *testing.T) {
	for _, tt := range []struct {
		name, sha, published, from string
	}{
		{"inventory", strings.Repeat("ab", 64), "", "the inventory says " + strings.Repeat("ab", 64)},
		{"published", "", strings.Repeat("CD", 64) + "  apache-zookeeper-3.8.4-bin.tar.gz\n", zkURL + ".sha512 says " + strings.Repeat("cd", 64)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newRHEL()
			if tt.published != "" {
				h.URLs[zkURL+".sha512"] = tt.published
			}
			c, tg := rt.Connect(t, h, inventoryWithSHA(t, tt.sha), "kafka-1")
			steps, _ := rt.Steps(New(), c)
			_, err := rt.TryApply(tg, steps)
			if !errors.Is(err, install.ErrChecksum) {
				t.Fatalf("error %v, want a checksum mismatch", err)
			}
			for _, want := range []string{"kafka-1: fetch apache-zookeeper-3.8.4-bin.tar.gz:", zkURL + " arrived with SHA-512 " + rt.SHA512(zkTarball), tt.from, "nothing installed"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if left := append(h.Paths("/opt/trafficlab"), h.Paths("/opt/zookeeper")...); len(left) != 1 || left[0] != "/opt/trafficlab/dist" {
				t.Errorf("left behind: %q", left)
			}
			if _, ok := h.File(ConfigFile); ok {
				t.Error("went on after the failed download")
			}
		})
	}
}

// A local artifact is uploaded over SFTP, checked on the host, and not
// uploaded again.
func TestUploadLocalArtifact(t *testing.T) {
	dir := t.TempDir()
	local := filepath.Join(dir, "apache-zookeeper-3.8.4-bin.tar.gz")
	if err := os.WriteFile(local, []byte(zkTarball), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := inventoryWithSHA(t, "")
	inv.ZooKeeper.Artifact = local
	h := newRHEL()
	c, tg := rt.Connect(t, h, inv, "kafka-3")
	steps, _ := rt.Steps(New(), c)
	rt.Apply(t, tg, steps)
	m := h.TakeMutating()
	rt.AssertSequence(t, m[2:5], []string{
		`mkdir -p /opt/trafficlab/dist`,
		rt.Upload("0644", "", "/opt/trafficlab/dist/.apache-zookeeper-3.8.4-bin.tar.gz.part"),
		rt.Quote(`mv -f /opt/trafficlab/dist/.apache-zookeeper-3.8.4-bin.tar.gz.part /opt/trafficlab/dist/apache-zookeeper-3.8.4-bin.tar.gz && echo`) + ".*",
	})
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// The inventory's checksum does not match the file: refused before
	// anything is sent.
	inv.ZooKeeper.SHA512 = strings.Repeat("0", 128)
	h2 := newRHEL()
	c, tg = rt.Connect(t, h2, inv, "kafka-3")
	steps, _ = rt.Steps(New(), c)
	if _, err := rt.TryApply(tg, steps); err == nil || !strings.Contains(err.Error(), "nothing uploaded") {
		t.Fatalf("error %v", err)
	}
	if p := h2.Paths("/opt/trafficlab"); len(p) != 0 {
		t.Errorf("uploaded anyway: %q", p)
	}
}

// Debian: Java and ZooKeeper from packages, the package's user, our unit.
func TestDebianPackage(t *testing.T) {
	h := rt.NewDebian("none")
	h.Installed["zookeeper"] = func(h *rt.Host) { h.Users["zookeeper"] = true }
	answerSrvr(h, "Mode: leader")
	c, tg := rt.Connect(t, h, inventoryWithSHA(t, ""), "kafka-1")
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		`sh -c .*apt-get install -y -q.* sh openjdk-17-jre-headless zookeeper`,
		rt.Quote(`install -d -m 0755 -o root -g root -- /etc/trafficlab/zookeeper`),
		rt.Quote(`install -d -m 0750 -o zookeeper -g zookeeper -- /var/lib/trafficlab/zookeeper`),
		rt.Upload("0644", "root:root", ConfigFile),
		rt.Upload("0644", "zookeeper:zookeeper", MyIDFile),
		`mkdir -p /etc/systemd/system`,
		rt.Upload("0644", "root:root", UnitFile),
		`systemctl daemon-reload`,
		`systemctl enable --now trafficlab-zookeeper.service`,
	})
	rt.AssertSecondRunIdle(t, h, tg, steps)

	remove, _ := New().Remove(c)
	rt.Apply(t, tg, remove)
	if left := append(h.Paths("/etc/trafficlab"), h.Paths("/var/lib/trafficlab")...); len(left) != 0 {
		t.Errorf("destroy left %q", left)
	}
	if !h.Users["zookeeper"] || !h.Packages["zookeeper"] {
		t.Error("destroy removed the package or its user")
	}
	if keeps := strings.Join(New().Keeps(c), "; "); !strings.Contains(keeps, "zookeeper user") {
		t.Errorf("Keeps: %s", keeps)
	}
}

// No quorum: the wait ends with what the server said and what to look at.
func TestNoQuorum(t *testing.T) {
	defer func(t time.Duration, p time.Duration) { QuorumTimeout, step.Poll = t, p }(QuorumTimeout, step.Poll)
	QuorumTimeout, step.Poll = 50*time.Millisecond, 10*time.Millisecond
	h := rt.NewRHEL()
	h.URLs[zkURL] = zkTarball
	h.Handle("^"+rt.Quote(step.TCPProbe(ClientPort, "srvr"))+"$", false, func(m []string, s sshtest.Session) int {
		fmt.Fprintln(s.Stdout, "This ZooKeeper instance is not currently serving requests")
		return 0
	})
	c, tg := rt.Connect(t, h, inventoryWithSHA(t, rt.SHA512(zkTarball)), "kafka-1")
	steps, _ := rt.Steps(New(), c)
	_, err := rt.TryApply(tg, steps)
	for _, want := range []string{"kafka-1: zookeeper quorum: checking: not ready after 50ms", "not currently serving requests", "majority of kafka-1, kafka-2, kafka-3", "journalctl -u trafficlab-zookeeper.service"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

// destroy on a RHEL-like host removes everything the role added, the
// tarball and the user included; a second destroy does nothing.
func TestRHELRemove(t *testing.T) {
	h := newRHEL()
	c, tg := rt.Connect(t, h, inventoryWithSHA(t, rt.SHA512(zkTarball)), "kafka-1")
	steps, _ := rt.Steps(New(), c)
	rt.Apply(t, tg, steps)
	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, remove)
	for _, dir := range []string{"/etc/trafficlab", "/var/lib/trafficlab", "/opt/trafficlab", "/opt/zookeeper", "/opt/apache-zookeeper", UnitFile} {
		if left := h.Paths(dir); len(left) != 0 {
			t.Errorf("destroy left %q", left)
		}
	}
	if h.Users["zookeeper"] || h.Active[Unit] {
		t.Error("destroy left the user or the service")
	}
	rt.AssertSecondRunIdle(t, h, tg, remove)
}

func TestParseSrvr(t *testing.T) {
	for _, tt := range []struct{ out, mode, err string }{
		{"Zookeeper version: 3.8.0\nMode: leader\nNode count: 4\n", "leader", ""},
		{"Mode: standalone\n", "standalone", ""},
		{"This ZooKeeper instance is not currently serving requests\n", "", "not currently serving"},
		{"", "", "no answer"},
	} {
		mode, err := ParseSrvr(tt.out)
		if mode != tt.mode || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseSrvr(%q) = %q, %v", tt.out, mode, err)
		}
	}
}

// Every file the role writes, for both families and the example
// inventories, as golden files.
func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	toy := rt.LoadInventory(t, "cluster: {name: toy}\nhosts:\n  - {name: one, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat, lb, mysql, consumer, dashboard]}\n"+
		"web: {port: 8081}\nlb: {vip: 10.0.0.100/24}\nzookeeper: {toy: true}\n")
	for _, tt := range []struct {
		name string
		inv  *inventory.Inventory
		host string
		os   facts.OS
	}{
		{"seed-rocky9-kafka-1", rt.LoadExample(t, "seed-centos.yaml"), "kafka-1", rt.Rocky9()},
		{"seed-debian12-kafka-3", rt.LoadExample(t, "seed-centos.yaml"), "kafka-3", rt.Debian12()},
		{"all-in-one-debian12-node-2", rt.LoadExample(t, "all-in-one.yaml"), "node-2", rt.Debian12()},
		{"toy-debian12", toy, "one", rt.Debian12()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// Files alone: no connection, no cluster id, as `render` calls it.
			c := rt.Offline(t, tt.inv, tt.host, tt.os)
			c.Templates = set
			rt.AssertFiles(t, New(), c, filepath.Join("testdata", tt.name+".golden"))
		})
	}
	if unused := set.Unused("zookeeper"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

func TestFilesRefusesOtherHosts(t *testing.T) {
	inv := rt.LoadExample(t, "seed-centos.yaml")
	_, err := New().Files(rt.Offline(t, inv, "lb-1", rt.Debian12()))
	if err == nil {
		t.Fatal("rendered zoo.cfg for a host without the role")
	}
}

// The ensemble's modes: one leader and a majority serving is a quorum.
func TestReadEnsemble(t *testing.T) {
	for _, tc := range []struct {
		modes  []string
		leader int
		ok     bool
	}{
		{[]string{"follower", "leader", "follower"}, 1, true},
		{[]string{"", "leader", "follower"}, 1, true},
		{[]string{"", "leader", ""}, 1, false},
		{[]string{"follower", "follower", ""}, -1, false},
	} {
		e := ReadEnsemble(tc.modes, 3)
		if l, ok := e.Leader, e.Quorum; l != tc.leader || ok != tc.ok {
			t.Errorf("%v: %d %v", tc.modes, l, ok)
		}
	}
}

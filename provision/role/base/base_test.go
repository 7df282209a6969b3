package base

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

const testInventory = `
cluster:
  name: sc
  ntp_servers: [10.231.0.1]
  package_proxy: http://10.231.0.1:3128
  selinux: permissive
hosts:
  - {name: kafka-1, address: 10.231.0.10, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.231.0.11, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.231.0.12, roles: [zookeeper, kafka, web, filebeat]}
  - {name: lb-1, address: 10.231.0.13, roles: [lb]}
  - {name: lb-2, address: 10.231.0.14, roles: [lb]}
  - {name: db-1, address: 10.231.0.15, roles: [mysql, consumer, dashboard]}
lb: {vip: 10.231.0.254/24}
`

var (
	loadInventory = roletest.LoadInventory
	apply         = roletest.Apply
	installCmd    = roletest.Upload
)

func connectFake(t *testing.T, f *fakeHost, inv *inventory.Inventory, name string) (*role.Context, *step.Target) {
	t.Helper()
	return roletest.Connect(t, f.Host, inv, name)
}

func assertSequence(t *testing.T, got, want []string) {
	t.Helper()
	roletest.AssertSequence(t, got, want)
}

func TestRHELFreshHostConvergesThenTouchesNothing(t *testing.T) {
	f := newFakeRHEL()
	inv := loadInventory(t, testInventory)
	c, tg := connectFake(t, f, inv, "db-1")
	if c.OS.Family != facts.RHEL || c.OS.Container != "" {
		t.Fatalf("detected %+v", c.OS)
	}
	steps, err := roletest.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, tg, steps)
	assertSequence(t, f.TakeMutating(), []string{
		`hostnamectl set-hostname db-1`,
		installCmd("0644", "root:root", "/etc/hosts"),
		installCmd("0644", "root:root", "/etc/dnf/dnf.conf"),
		`sh -c .*dnf install -y -q.* sh lsof vim-enhanced chrony tzdata firewalld`,
		`timedatectl set-timezone Asia/Shanghai`,
		`cp -p /etc/chrony.conf /etc/chrony.conf.trafficlab-orig`,
		installCmd("0644", "root:root", "/etc/chrony.conf"),
		`systemctl daemon-reload && systemctl restart chronyd.service`,
		`systemctl enable --now firewalld`,
		regexp.QuoteMeta(`firewall-cmd --permanent --add-port=22/tcp --add-port=8080/tcp && firewall-cmd --permanent --add-rich-rule='rule family="ipv4" source address="10.231.0.15" port port="3306" protocol="tcp" accept' && firewall-cmd --reload`),
		`sed -i 's/\^SELINUX=\.\*/SELINUX=permissive/' /etc/selinux/config`,
		`setenforce 0`,
	})
	if got := f.Files["/etc/dnf/dnf.conf"].Content; got != "[main]\ngpgcheck=1\n# BEGIN trafficlab proxy\nproxy=http://10.231.0.1:3128\n# END trafficlab proxy\n" {
		t.Errorf("dnf.conf:\n%s", got)
	}

	// A second run, as `up --force` does it: every step unchanged and not
	// one command that changes anything.
	roletest.AssertSecondRunIdle(t, f.Host, tg, steps)
}

func TestRHELDestroyRemovesWhatItAdded(t *testing.T) {
	f := newFakeRHEL()
	inv := loadInventory(t, testInventory)
	c, tg := connectFake(t, f, inv, "lb-1")
	origHosts, origChrony := f.Files["/etc/hosts"].Content, f.Files["/etc/chrony.conf"].Content
	steps, _ := roletest.Steps(New(), c)
	apply(t, tg, steps)
	if got := strings.Join(f.fwRich, "\n"); got != `rule family="ipv4" source address="10.231.0.14" protocol value="vrrp" accept` {
		t.Errorf("lb-1 lets VRRP in from: %q", got)
	}
	f.TakeMutating()

	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, tg, remove)
	if got := f.Files["/etc/hosts"].Content; got != origHosts {
		t.Errorf("/etc/hosts after destroy:\n%s", got)
	}
	if got := f.Files["/etc/chrony.conf"].Content; got != origChrony {
		t.Errorf("chrony.conf not restored:\n%s", got)
	}
	if _, ok := f.Files["/etc/chrony.conf.trafficlab-orig"]; ok {
		t.Error("the backup of chrony.conf is left behind")
	}
	if got := f.Files["/etc/dnf/dnf.conf"].Content; got != "[main]\ngpgcheck=1\n" {
		t.Errorf("dnf.conf after destroy:\n%s", got)
	}
	// The SSH port stays open, or the next `provision up` is locked out.
	if strings.Join(f.fwPorts, " ") != "22/tcp" || len(f.fwRich) != 0 {
		t.Errorf("firewall after destroy: ports %q, rich rules %q", f.fwPorts, f.fwRich)
	}
	f.TakeMutating()
	apply(t, tg, remove)
	if m := f.TakeMutating(); len(m) != 0 {
		t.Errorf("a second destroy changed things:\n%s", strings.Join(m, "\n"))
	}
	keeps := strings.Join(New().Keeps(c), "; ")
	for _, want := range []string{"vim-enhanced", "hostname lb-1", "timezone Asia/Shanghai", "SELinux"} {
		if !strings.Contains(keeps, want) {
			t.Errorf("Keeps does not mention %q: %s", want, keeps)
		}
	}
}

func TestDebianContainer(t *testing.T) {
	f := newFakeDebianContainer()
	inv := loadInventory(t, testInventory)
	c, tg := connectFake(t, f, inv, "kafka-1")
	if c.OS.Family != facts.Debian || c.OS.Container != "systemd-nspawn" {
		t.Fatalf("detected %+v", c.OS)
	}
	steps, _ := roletest.Steps(New(), c)
	apply(t, tg, steps)
	assertSequence(t, f.TakeMutating(), []string{
		`hostnamectl set-hostname kafka-1`,
		installCmd("0644", "root:root", "/etc/hosts"),
		installCmd("0644", "root:root", "/etc/apt/apt.conf.d/90trafficlab-proxy"),
		`sh -c .*apt-get install -y -q.* sh wget lsof vim chrony firewalld`,
		`timedatectl set-timezone Asia/Shanghai`,
		`cp -p /etc/chrony/chrony.conf /etc/chrony/chrony.conf.trafficlab-orig`,
		installCmd("0644", "root:root", "/etc/chrony/chrony.conf"),
		`mkdir -p /etc/systemd/system/chrony.service.d`,
		installCmd("0644", "root:root", "/etc/systemd/system/chrony.service.d/trafficlab.conf"),
		`systemctl daemon-reload`,
		`systemctl daemon-reload && systemctl restart chrony.service`,
		`systemctl enable --now firewalld`,
		// ZooKeeper from the ensemble and the brokers (the same hosts
		// here), Kafka also from the consumer on db-1.
		regexp.QuoteMeta(`firewall-cmd --permanent --add-port=22/tcp --add-port=80/tcp && firewall-cmd --permanent ` + strings.Join(richAccepts(
			"10.231.0.10", "2181", "10.231.0.10", "2888", "10.231.0.10", "3888", "10.231.0.10", "9092",
			"10.231.0.11", "2181", "10.231.0.11", "2888", "10.231.0.11", "3888", "10.231.0.11", "9092",
			"10.231.0.12", "2181", "10.231.0.12", "2888", "10.231.0.12", "3888", "10.231.0.12", "9092",
			"10.231.0.15", "9092"), " ") + ` && firewall-cmd --reload`),
	})
	if m := apply(t, tg, steps); len(m) != 0 {
		t.Errorf("second run changed %q", m)
	}
}

// richAccepts returns the --add-rich-rule arguments that let in each
// address, port pair.
func richAccepts(pairs ...string) []string {
	var out []string
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, fmt.Sprintf(`--add-rich-rule='rule family="ipv4" source address="%s" port port="%s" protocol="tcp" accept'`, pairs[i], pairs[i+1]))
	}
	return out
}

// A port closed by hand at runtime (firewall-cmd --remove-port without
// --permanent) is found and repaired with a reload.
func TestFirewallRuntimeDriftIsRepaired(t *testing.T) {
	f := newFakeRHEL()
	inv := loadInventory(t, testInventory)
	c, tg := connectFake(t, f, inv, "kafka-2")
	steps, _ := roletest.Steps(New(), c)
	apply(t, tg, steps)
	f.TakeMutating()
	f.fwRun = f.fwRun[1:]
	if changed := apply(t, tg, steps); strings.Join(changed, ",") != "firewall ports 22/tcp 80/tcp, 2181/tcp 2888/tcp 3888/tcp 9092/tcp from cluster hosts" {
		t.Fatalf("changed %q", changed)
	}
	assertSequence(t, f.TakeMutating(), []string{`firewall-cmd --reload`})
}

func TestFirewallModes(t *testing.T) {
	for _, tt := range []struct{ mode, want string }{
		{"disabled", "service firewalld stopped"},
		{"unmanaged", ""},
	} {
		inv := loadInventory(t, strings.Replace(testInventory, "selinux: permissive", "selinux: permissive\n  firewall: "+tt.mode, 1))
		var names []string
		for _, s := range firewallSteps(&role.Context{Inventory: inv, Host: inv.Hosts[0]}) {
			names = append(names, s.Name)
		}
		if got := strings.Join(names, ","); got != tt.want {
			t.Errorf("firewall %s: steps %q, want %q", tt.mode, got, tt.want)
		}
	}
}

// The files the role writes, rendered for each family, as golden files: a
// reviewer sees every byte that lands on a host.
func TestFilesGolden(t *testing.T) {
	inv := loadInventory(t, testInventory)
	set := roletest.Templates(t)
	for _, tt := range []struct {
		name      string
		host      string
		os        facts.OS
		container string
	}{
		{"rocky9-lb-1", "lb-1", roletest.Rocky9(), ""},
		{"debian12-container-kafka-1", "kafka-1", roletest.Debian12(), "systemd-nspawn"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := roletest.Offline(t, inv, tt.host, tt.os)
			c.OS.Container, c.Templates = tt.container, set
			roletest.AssertFiles(t, New(), c, filepath.Join("testdata", tt.name+".golden"))
		})
	}
	if unused := set.Unused("base"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

// What firewalld 1.3 (Debian 12) printed on a lab machine.
const listAllOutput = `public
  target: default
  icmp-block-inversion: no
  interfaces: 
  sources: 
  services: dhcpv6-client ssh
  ports: 22/tcp 80/tcp 2181/tcp
  protocols: 
  forward: yes
  masquerade: no
  forward-ports: port=8080:proto=tcp:toport=80:toaddr=
  source-ports: 
  icmp-blocks: 
  rich rules: 
	rule family="ipv4" source address="10.231.0.12" protocol value="vrrp" accept
	rule family="ipv4" source address="10.231.0.10" port port="3306" protocol="tcp" accept
`

func TestParseListAll(t *testing.T) {
	ports, rich := parseListAll(listAllOutput)
	if strings.Join(ports, " ") != "22/tcp 80/tcp 2181/tcp" {
		t.Errorf("ports %q", ports)
	}
	want := []string{
		`rule family="ipv4" source address="10.231.0.12" protocol value="vrrp" accept`,
		`rule family="ipv4" source address="10.231.0.10" port port="3306" protocol="tcp" accept`,
	}
	if strings.Join(rich, "\n") != strings.Join(want, "\n") {
		t.Errorf("rich rules %q", rich)
	}
	if ports, rich := parseListAll(strings.Replace(listAllOutput, "  ports: 22/tcp 80/tcp 2181/tcp", "  ports: ", 1)); len(ports) != 0 || len(rich) != 2 {
		t.Errorf("empty ports: %q %q", ports, rich)
	}
}

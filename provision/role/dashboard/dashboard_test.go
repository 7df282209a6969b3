package dashboard

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/goservice"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

const testInventory = `
cluster: {name: sc}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.5, roles: [mysql, consumer, dashboard]}
dashboard: {port: 80}
`

// fixedBinary stands in for the go build.
type fixedBinary string

func (b fixedBinary) Build(string) (goservice.Binary, error) {
	return goservice.NewBinary([]byte(b)), nil
}

// The dashboard next to the consumer: its own user, binary copy,
// configuration and unit, listening on the host's address at the
// inventory's port (80: the unit may bind it), logging in to MySQL with
// its read-only account and holding its login but not the consumer's
// secrets; a second run touches nothing.
func TestRHEL(t *testing.T) {
	h := rt.NewRHEL()
	h.Handle("^"+rt.Pattern(goservice.SHA256Command("PATH"), "PATH")+"$", false, func(m []string, s sshtest.Session) int {
		f, ok := h.Files[m[1]]
		if !ok {
			return 1
		}
		fmt.Fprintf(s.Stdout, "%s  %s\n", goservice.NewBinary([]byte(f.Content)).SHA256, m[1])
		return 0
	})
	c, tg := rt.Connect(t, h, rt.LoadInventory(t, testInventory), "db-1")
	c.Secrets = role.Secrets{MySQLPassword: "secret-pw", MySQLDashboardPassword: "dash-db-pw", DashboardPassword: "login-pw", ProbeKey: "probe-key-of-the-test"}
	steps, err := rt.Steps(New(WithBuilder(fixedBinary("\x7fELF"))), c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Quote(`useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin trafficlab-dashboard`),
		rt.Quote(`install -d -m 0755 -o root -g root -- /usr/local/lib/trafficlab/dashboard`),
		rt.Upload("0755", "root:root", "/usr/local/lib/trafficlab/dashboard/consumer"),
		rt.Quote(`install -d -m 0755 -o root -g root -- /etc/trafficlab/dashboard`),
		rt.Upload("0600", "trafficlab-dashboard:trafficlab-dashboard", "/etc/trafficlab/dashboard/dashboard.yaml"),
		`mkdir -p /etc/systemd/system`,
		rt.Upload("0644", "root:root", "/etc/systemd/system/trafficlab-dashboard.service"),
		`systemctl daemon-reload`,
		`systemctl try-restart trafficlab-dashboard.service`,
		`systemctl enable --now trafficlab-dashboard.service`,
	})
	for _, cmd := range h.TakeAll() {
		if strings.Contains(cmd, "-pw") {
			t.Errorf("the password is on a command line: %q", cmd)
		}
	}
	f, _ := h.File(Service.ConfigFile())
	cfg, err := config.Parse([]byte(f.Content))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dashboard.Listen != "10.0.0.5:80" || cfg.Listen != "" {
		t.Errorf("dashboard.listen %q, listen %q", cfg.Dashboard.Listen, cfg.Listen)
	}
	if cfg.MySQL.User != "consumer_dash" || cfg.MySQL.Password != "dash-db-pw" || cfg.Dashboard.Password != "login-pw" || cfg.ProbeKey != "" {
		t.Errorf("mysql %s (password %v), login set %v, probe key set %v: want the read-only account, the login, no probe key",
			cfg.MySQL.User, cfg.MySQL.Password == "dash-db-pw", cfg.Dashboard.Password == "login-pw", cfg.ProbeKey != "")
	}
	unit, _ := h.File(Service.UnitFile())
	for _, want := range []string{"ExecStart=/usr/local/lib/trafficlab/dashboard/consumer dashboard --config /etc/trafficlab/dashboard/dashboard.yaml", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "After=network-online.target mysqld.service\n"} {
		if !strings.Contains(unit.Content, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit.Content)
		}
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)
}

// dashboard_url, as the engine exports it (engine.OutputRole), with an
// IPv6 address in brackets.
func TestURL(t *testing.T) {
	outputs, ok := New().(interface {
		Outputs(*inventory.Inventory) map[string]string
	})
	if !ok {
		t.Fatal("the role adds no stack outputs")
	}
	inv := rt.LoadInventory(t, testInventory)
	if got := outputs.Outputs(inv)["dashboard_url"]; got != "http://10.0.0.5:80/" {
		t.Errorf("dashboard_url %q", got)
	}
	inv.Hosts[3].Address = "fd00::5"
	if got := URL(inv); got != "http://[fd00::5]:80/" {
		t.Errorf("IPv6 URL %q", got)
	}
}

func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	c := rt.Offline(t, rt.LoadExample(t, "seed-centos.yaml"), "db-1", rt.Debian12())
	c.Templates = set
	c.Secrets = role.Secrets{MySQLPassword: "********", MySQLDashboardPassword: "********", DashboardPassword: "********", ProbeKey: "********"}
	rt.AssertFiles(t, New(), c, filepath.Join("testdata", "seed-debian12-db-1.golden"), rt.ShowSecret)
	if unused := set.Unused("consumer"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

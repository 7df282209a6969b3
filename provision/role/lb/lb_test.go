package lb

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/nginx"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

const testInventory = `
cluster: {name: sc, firewall: unmanaged}
hosts:
  - {name: web-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat], web: {weight: 3}}
  - {name: web-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: web-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: lb-1, address: 10.0.0.11, roles: [lb, mysql, consumer, dashboard], lb: {priority: 150}}
  - {name: lb-2, address: 10.0.0.12, roles: [lb], lb: {priority: 100}}
lb: {vip: 10.0.0.100/24, virtual_router_id: 42}
`

// The VRRP password of the tests: it must never show in a command.
const vrrpPass = "s3cr3t!x"

// lbHost answers nginx's and keepalived's commands; the health check
// passes while nginx runs, and inv's VIP answers while keepalived does.
func lbHost(h *rt.Host, inv *inventory.Inventory) *rt.Host {
	h.Installed["nginx"] = func(h *rt.Host) {
		h.Files["/etc/nginx/conf.d"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
	}
	h.Installed["keepalived"] = func(h *rt.Host) {
		h.Files["/etc/keepalived"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
	}
	h.Handle("^"+rt.Quote(nginx.TestCommand)+"$", true, func(m []string, s sshtest.Session) int { return 0 })
	h.Handle("^"+rt.Quote(KeepalivedTest)+"$", true, func(m []string, s sshtest.Session) int {
		_, ok := h.Files[KeepalivedConf]
		return rt.Exit(ok && h.Users[ScriptUser])
	})
	h.Handle("^systemctl reload ("+rt.Quote(Unit)+"|"+rt.Quote(KeepalivedUnit)+")$", true, func(m []string, s sshtest.Session) int {
		return rt.Exit(h.Active[m[1]])
	})
	h.Handle("^"+rt.Pattern(nginx.RelabelCommand([]string{"PATHS"}), "PATHS")+"$", true, func(m []string, s sshtest.Session) int { return 0 })
	h.Handle("^"+rt.Quote(CheckScript)+"$", false, func(m []string, s sshtest.Session) int {
		_, ok := h.Files[Conf]
		return rt.Exit(ok && h.Active[Unit])
	})
	h.Handle("^"+rt.Quote(nginx.ReloadIfRunningCommand)+"$", true, func(m []string, s sshtest.Session) int { return 0 })
	// The VIP answers once keepalived runs (here, or on the other LB).
	h.Handle("^"+rt.Quote(VIPProbe(inv))+"$", false, func(m []string, s sshtest.Session) int {
		return rt.Exit(h.Active[KeepalivedUnit])
	})
	return h
}

func connect(t *testing.T, h *rt.Host, inv *inventory.Inventory, name string) (*role.Context, *step.Target, func() []string) {
	c, tg := rt.Connect(t, h, inv, name)
	c.Interface = "eth0"
	c.Secrets.VRRPAuth = vrrpPass
	run := func() []string {
		t.Helper()
		steps, err := rt.Steps(New(), c)
		if err != nil {
			t.Fatal(err)
		}
		return rt.Apply(t, tg, steps)
	}
	t.Cleanup(func() {
		for _, cmd := range h.TakeAll() {
			if strings.Contains(cmd, vrrpPass) {
				t.Errorf("the VRRP password is on a command line: %s", cmd)
			}
		}
	})
	return c, tg, run
}

func TestRHELConvergesThenReloadsWhatChanged(t *testing.T) {
	inv := rt.LoadInventory(t, testInventory)
	h := lbHost(rt.NewRHEL(), inv)
	c, tg, run := connect(t, h, inv, "lb-2")
	run()
	rt.AssertSequence(t, h.TakeMutating(), []string{
		`sh -c .*dnf install -y -q.* sh nginx`,
		`sh -c .*dnf install -y -q.* sh keepalived`,
		rt.Quote(`useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin keepalived_script`),
		rt.Quote(`install -d -m 0755 -o root -g root -- /usr/libexec/keepalived`),
		rt.Upload("0644", "root:root", Conf),
		rt.Upload("0755", "root:root", CheckScript),
		rt.Upload("0600", "root:root", KeepalivedConf),
		rt.Quote(`if command -v restorecon >/dev/null; then restorecon -R /etc/nginx/conf.d/trafficlab-lb.conf /usr/libexec/keepalived/trafficlab-check-nginx.sh /etc/keepalived/keepalived.conf; fi`),
		rt.Quote(`nginx -t -q`),
		rt.Quote(`systemctl enable --now nginx.service`),
		`t=\$\(mktemp\) .* keepalived -t .*`,
		rt.Quote(`systemctl enable --now keepalived.service`),
	})
	ka, _ := h.File(KeepalivedConf)
	for _, want := range []string{
		"state BACKUP\n", "interface eth0\n", "virtual_router_id 42\n", "priority 100\n",
		"auth_type PASS\n        auth_pass " + vrrpPass + "\n", "10.0.0.100/24 dev eth0\n",
		"enable_script_security\n", "script_user keepalived_script\n", `script "` + CheckScript + `"`,
	} {
		if !strings.Contains(ka.Content, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, ka.Content)
		}
	}
	if strings.Contains(ka.Content, "unicast") || strings.Contains(ka.Content, "nopreempt") {
		t.Errorf("unicast or nopreempt without asking:\n%s", ka.Content)
	}
	rt.AssertSecondRunIdle(t, h, tg, mustSteps(t, c))

	// A new priority touches keepalived only: tested, then reloaded.
	c.Host.LB.Priority = 120
	run()
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Upload("0600", "root:root", KeepalivedConf),
		`if command -v restorecon .*`,
		`t=\$\(mktemp\) .* keepalived -t .*`,
		rt.Quote(`systemctl reload keepalived.service`),
	})
	// A new algorithm touches nginx only, reloaded, never restarted.
	inv.LB.Algorithm = inventory.LeastConn
	run()
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Upload("0644", "root:root", Conf),
		`if command -v restorecon .*`,
		rt.Quote(`nginx -t -q`),
		rt.Quote(`systemctl reload nginx.service`),
	})
}

func mustSteps(t *testing.T, c *role.Context) []step.Step {
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

func TestRemove(t *testing.T) {
	inv := rt.LoadInventory(t, testInventory)
	h := lbHost(rt.NewDebian("none"), inv)
	c, tg, run := connect(t, h, inv, "lb-1")
	run()
	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, remove)
	for _, p := range []string{Conf, CheckScript, CheckScriptDir, KeepalivedConf} {
		if _, ok := h.File(p); ok {
			t.Errorf("destroy left %s", p)
		}
	}
	if h.Active[KeepalivedUnit] || h.Users[ScriptUser] {
		t.Error("destroy left keepalived running or its script user")
	}
	if !h.Packages["nginx"] || !h.Packages["keepalived"] {
		t.Error("destroy removed a package")
	}
	rt.AssertSecondRunIdle(t, h, tg, remove)
}

func TestStepsNeedInterfaceAndPassword(t *testing.T) {
	c := rt.Offline(t, rt.LoadInventory(t, testInventory), "lb-1", rt.Rocky9())
	c.Secrets.VRRPAuth = vrrpPass
	if _, err := rt.Steps(New(), c); err == nil || !strings.Contains(err.Error(), "network interface carrying 10.0.0.11 is unknown") {
		t.Errorf("without an interface: %v", err)
	}
	c.Interface, c.Secrets.VRRPAuth = "eth0", ""
	if _, err := rt.Steps(New(), c); err == nil || !strings.Contains(err.Error(), "no VRRP password") {
		t.Errorf("without a password: %v", err)
	}
	// render asks no host: the interface shows as a placeholder.
	c.Interface = ""
	files, err := New().Files(c)
	if err != nil || !strings.Contains(string(files[2].Content), "interface "+interfacePlaceholder+"\n") {
		t.Errorf("Files without an interface (%v):\n%s", err, files[2].Content)
	}
	if !files[2].Secret || files[2].Mode != 0o600 {
		t.Errorf("keepalived.conf: secret %v, mode %o", files[2].Secret, files[2].Mode)
	}
}

// The upstream for each algorithm: weights only for "weighted".
func TestUpstream(t *testing.T) {
	for _, tt := range []struct {
		algo      inventory.LBAlgorithm
		method    string
		firstLine string
	}{
		{inventory.RoundRobin, "", "    server 10.0.0.1:80 max_fails=2 fail_timeout=10s; # web-1\n"},
		{inventory.Weighted, "", "    server 10.0.0.1:80 weight=3 max_fails=2 fail_timeout=10s; # web-1\n    server 10.0.0.2:80 weight=1 "},
		{inventory.IPHash, "    ip_hash;\n", "    server 10.0.0.1:80 max_fails=2 fail_timeout=10s; # web-1\n"},
		{inventory.LeastConn, "    least_conn;\n", "    server 10.0.0.1:80 max_fails=2 fail_timeout=10s; # web-1\n"},
	} {
		t.Run(string(tt.algo), func(t *testing.T) {
			inv := rt.LoadInventory(t, testInventory)
			inv.LB.Algorithm = tt.algo
			c := rt.Offline(t, inv, "lb-1", rt.Debian12())
			c.Interface = "eth0"
			files, err := New().Files(c)
			if err != nil {
				t.Fatal(err)
			}
			conf := string(files[0].Content)
			want := "    zone trafficlab_web 64k;\n" + tt.method + tt.firstLine
			if !strings.Contains(conf, want) {
				t.Errorf("lb.conf lacks %q:\n%s", want, conf)
			}
			for _, h := range []string{"proxy_set_header X-Real-IP $remote_addr;", "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "proxy_set_header Host $host;", "listen 80 default_server;"} {
				if !strings.Contains(conf, h) {
					t.Errorf("lb.conf lacks %q", h)
				}
			}
		})
	}
}

func TestUnicastAndNoPreempt(t *testing.T) {
	inv := rt.LoadInventory(t, testInventory)
	inv.LB.Unicast, inv.LB.NoPreempt = true, true
	c := rt.Offline(t, inv, "lb-1", rt.Debian12())
	c.Interface, c.Secrets.VRRPAuth = "ens3", vrrpPass
	files, err := New().Files(c)
	if err != nil {
		t.Fatal(err)
	}
	ka := string(files[2].Content)
	for _, want := range []string{"    nopreempt\n", "    unicast_src_ip 10.0.0.11\n    unicast_peer {\n        10.0.0.12\n    }\n"} {
		if !strings.Contains(ka, want) {
			t.Errorf("keepalived.conf lacks %q:\n%s", want, ka)
		}
	}
}

func TestOutputs(t *testing.T) {
	inv := rt.LoadInventory(t, testInventory)
	got := New().(interface {
		Outputs(*inventory.Inventory) map[string]string
	}).Outputs(inv)
	if got["vip"] != "10.0.0.100" || got["site_url"] != "http://www.sc.com/" || got["vip_url"] != "http://10.0.0.100/" || len(got) != 3 {
		t.Errorf("outputs %v", got)
	}
}

// Every file the role writes, for the example inventories, as golden files.
func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	for _, tt := range []struct {
		name, example, host string
		os                  facts.OS
	}{
		{"seed-rocky9-lb-1", "seed-centos", "lb-1", rt.Rocky9()},
		{"seed-debian12-lb-2", "seed-centos", "lb-2", rt.Debian12()},
		{"all-in-one-debian12-node-3", "all-in-one", "node-3", rt.Debian12()},
		{"kraft-rocky9-lb-2", "kraft", "lb-2", rt.Rocky9()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rt.Offline(t, rt.LoadExample(t, tt.example+".yaml"), tt.host, tt.os)
			c.Templates, c.Interface, c.Secrets.VRRPAuth = set, "eth0", "********"
			rt.AssertFiles(t, New(), c, filepath.Join("testdata", tt.name+".golden"), rt.ShowSecret)
		})
	}
	if unused := set.Unused("lb"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

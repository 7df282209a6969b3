package web

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role/base"
	"github.com/trafficlab/trafficlab/provision/rolekit/nginx"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

const testInventory = `
cluster: {name: sc, firewall: unmanaged}
hosts:
  - {name: web-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: web-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: web-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: lb-1, address: 10.0.0.11, roles: [lb, mysql, consumer, dashboard]}
  - {name: lb-2, address: 10.0.0.12, roles: [lb]}
lb: {vip: 10.0.0.100/24}
`

// nginxHost answers the commands of nginx's reload: `nginx -t` passes
// unless the test sets bad, and a reload is recorded.
func nginxHost(h *rt.Host, bad *bool) *rt.Host {
	h.Installed["nginx"] = func(h *rt.Host) {
		h.Files["/etc/nginx/conf.d"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
	}
	h.Handle("^"+rt.Quote(nginx.TestCommand)+"$", true, func(m []string, s sshtest.Session) int {
		if *bad {
			fmt.Fprintln(s.Stderr, `nginx: [emerg] unknown directive "bogus" in /etc/nginx/conf.d/trafficlab-web.conf:3`)
			return 1
		}
		return 0
	})
	h.Handle("^systemctl reload "+rt.Quote(Unit)+"$", true, func(m []string, s sshtest.Session) int {
		return rt.Exit(h.Active[Unit])
	})
	h.Handle("^"+rt.Pattern(nginx.RelabelCommand([]string{"PATHS"}), "PATHS")+"$", true, func(m []string, s sshtest.Session) int { return 0 })
	h.Handle("^rm -f "+rt.Quote(nginx.DebianDefaultSite)+"$", true, func(m []string, s sshtest.Session) int {
		delete(h.Files, nginx.DebianDefaultSite)
		return 0
	})
	h.Handle("^"+rt.Quote(nginx.ReloadIfRunningCommand)+"$", true, func(m []string, s sshtest.Session) int { return 0 })
	return h
}

func TestRHELInstallsThenReloadsNeverRestarts(t *testing.T) {
	bad := false
	h := nginxHost(rt.NewRHEL(), &bad)
	inv := rt.LoadInventory(t, testInventory)
	c, tg := rt.Connect(t, h, inv, "web-2")
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		`sh -c .*dnf install -y -q.* sh nginx`,
		rt.Quote(`install -d -m 0755 -o root -g root -- /var/www/trafficlab`),
		rt.Upload("0644", "root:root", SiteConf),
		rt.Upload("0644", "root:root", Page),
		rt.Quote(`if command -v restorecon >/dev/null; then restorecon -R /var/www/trafficlab /etc/nginx/conf.d/trafficlab-web.conf; fi`),
		// Tested before the first start too; not running yet, so no reload.
		rt.Quote(`nginx -t -q`),
		rt.Quote(`systemctl enable --now nginx.service`),
	})
	conf, _ := h.File(SiteConf)
	for _, want := range []string{
		"listen 80 default_server;\n", "server_name www.sc.com;\n",
		"set_real_ip_from 10.0.0.11;\n    set_real_ip_from 10.0.0.12;\n    set_real_ip_from 10.0.0.100;\n    real_ip_header X-Real-IP;\n",
		"access_log /var/log/nginx/trafficlab-access.log trafficlab;\n",
		"add_header X-Served-By web-2 always;\n",
	} {
		if !strings.Contains(conf.Content, want) {
			t.Errorf("site conf lacks %q:\n%s", want, conf.Content)
		}
	}
	page, _ := h.File(Page)
	if !strings.Contains(page.Content, `<strong id="served-by">web-2</strong> (10.0.0.2)`) {
		t.Errorf("page does not name its host:\n%s", page.Content)
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// A new site name: the page and server block change, nginx is tested
	// and reloaded, never restarted.
	inv.Cluster.Domain = "www.example.org"
	steps, _ = rt.Steps(New(), c)
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Upload("0644", "root:root", SiteConf),
		rt.Upload("0644", "root:root", Page),
		`if command -v restorecon .*`,
		rt.Quote(`nginx -t -q`),
		rt.Quote(`systemctl reload nginx.service`),
	})

	// A configuration nginx refuses is never loaded, and the error says why.
	bad = true
	inv.Cluster.Domain = "www.example.net"
	steps, _ = rt.Steps(New(), c)
	_, err = rt.TryApply(tg, steps)
	if err == nil || !strings.Contains(err.Error(), "web-2: test and reload nginx: nginx refuses the configuration, left the running one alone") || !strings.Contains(err.Error(), `unknown directive "bogus"`) {
		t.Fatalf("error %v", err)
	}
	for _, cmd := range h.TakeMutating() {
		if strings.Contains(cmd, "systemctl reload") || strings.Contains(cmd, "restart") {
			t.Errorf("reloaded a configuration nginx refused: %s", cmd)
		}
	}
}

// Debian's default site holds port 80 as default_server: it goes, and
// comes back neither on a second run nor by destroy (Keeps says so).
func TestDebianDisablesDefaultSite(t *testing.T) {
	bad := false
	h := nginxHost(rt.NewDebian("none"), &bad)
	h.Installed["nginx"] = func(h *rt.Host) {
		h.Files["/etc/nginx/conf.d"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
		h.Files["/etc/nginx/sites-enabled/default"] = rt.File{Link: "/etc/nginx/sites-available/default", Mode: "777", Owner: "root:root"}
		h.Enabled[Unit], h.Active[Unit] = "enabled", true // Debian starts what it installs
	}
	c, tg := rt.Connect(t, h, rt.LoadInventory(t, testInventory), "web-1")
	steps, _ := rt.Steps(New(), c)
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		`sh -c .*apt-get install -y -q.* sh nginx`,
		rt.Quote(`rm -f /etc/nginx/sites-enabled/default`),
		rt.Quote(`install -d -m 0755 -o root -g root -- /var/www/trafficlab`),
		rt.Upload("0644", "root:root", SiteConf),
		rt.Upload("0644", "root:root", Page),
		rt.Quote(`nginx -t -q`),
		rt.Quote(`systemctl reload nginx.service`),
	})
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// nginx wrote the access log, logrotate rotated it; another log stays.
	for _, p := range []string{AccessLog, AccessLog + ".1", AccessLog + ".2.gz", "/var/log/nginx/error.log"} {
		h.Files[p] = rt.File{Content: "line\n", Mode: "640", Owner: "www-data:adm"}
	}
	remove, _ := New().Remove(c)
	rt.Apply(t, tg, remove)
	if _, ok := h.File("/var/log/nginx/error.log"); !ok {
		t.Error("destroy removed nginx's own error log")
	}
	for _, p := range []string{SiteConf, Root, AccessLog, AccessLog + ".1", AccessLog + ".2.gz"} {
		if left := h.Paths(p); len(left) != 0 {
			t.Errorf("destroy left %q", left)
		}
	}
	if !h.Packages["nginx"] {
		t.Error("destroy removed the nginx package")
	}
	rt.AssertSecondRunIdle(t, h, tg, remove)
	if keeps := strings.Join(New().Keeps(c), "; "); !strings.Contains(keeps, "nginx package") || !strings.Contains(keeps, "default site") {
		t.Errorf("Keeps: %s", keeps)
	}
}

// The access log is written in the consumer's format, taken from the
// consumer's own constant, and the parser reads that format.
func TestLogFormatIsTheConsumers(t *testing.T) {
	inv := rt.LoadExample(t, "seed-centos.yaml")
	files, err := New().Files(rt.Offline(t, inv, "kafka-1", rt.Rocky9()))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^log_format (\S+) '([^']*)';$`).FindStringSubmatch(string(files[0].Content))
	if m == nil || m[1] != nginxlog.FormatName || m[2] != nginxlog.Format {
		t.Fatalf("log_format %q, want %s '%s'", m, nginxlog.FormatName, nginxlog.Format)
	}
	if _, err := nginxlog.Compile(m[2]); err != nil {
		t.Errorf("the consumer cannot parse the format: %v", err)
	}
	if !strings.Contains(string(files[0].Content), "access_log "+AccessLog+" "+nginxlog.FormatName+";") {
		t.Errorf("the access log does not use the format")
	}
}

// Every host resolves the site name to the VIP: the base role's /etc/hosts
// block carries it, on every host of every example inventory.
func TestSiteNameResolvesToVIP(t *testing.T) {
	for _, name := range []string{"seed-centos", "all-in-one", "kraft"} {
		inv := rt.LoadExample(t, name+".yaml")
		line := inv.LB.VIPPrefix().Addr().String() + "\t" + inv.Cluster.Domain + "\n"
		for _, h := range inv.Hosts {
			files, err := base.New().Files(rt.Offline(t, inv, h.Name, rt.Debian12()))
			if err != nil {
				t.Fatal(err)
			}
			if files[0].Path != "/etc/hosts" || !strings.Contains(string(files[0].Content), line) {
				t.Errorf("%s %s: /etc/hosts block lacks %q:\n%s", name, h.Name, line, files[0].Content)
			}
		}
	}
}

// Every file the role writes, for the example inventories, as golden files.
func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	for _, tt := range []struct {
		name, example, host string
		os                  facts.OS
	}{
		{"seed-rocky9-kafka-1", "seed-centos", "kafka-1", rt.Rocky9()},
		{"all-in-one-debian12-node-2", "all-in-one", "node-2", rt.Debian12()},
		{"kraft-debian12-kafka-3", "kraft", "kafka-3", rt.Debian12()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rt.Offline(t, rt.LoadExample(t, tt.example+".yaml"), tt.host, tt.os)
			c.Templates = set
			rt.AssertFiles(t, New(), c, filepath.Join("testdata", tt.name+".golden"))
		})
	}
	if unused := set.Unused("web"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

func TestRealIPFrom(t *testing.T) {
	inv := rt.LoadInventory(t, testInventory)
	if got := strings.Join(RealIPFrom(inv), " "); got != "10.0.0.11 10.0.0.12 10.0.0.100" {
		t.Errorf("RealIPFrom = %s", got)
	}
	// The same cluster without load balancers (as validation would refuse).
	noLB := rt.LoadInventory(t, testInventory)
	noLB.Hosts = noLB.Hosts[:3]
	if got := RealIPFrom(noLB); len(got) != 0 {
		t.Errorf("without load balancers: %q", got)
	}
	files, err := New().Files(rt.Offline(t, noLB, noLB.Hosts[0].Name, rt.Debian12()))
	if err != nil || strings.Contains(string(files[0].Content), "real_ip") {
		t.Errorf("realip configured without load balancers (%v):\n%s", err, files[0].Content)
	}
}

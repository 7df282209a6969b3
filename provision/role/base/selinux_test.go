package base

import (
	"context"
	"slices"
	"strings"
	"testing"

	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

// webAndLB is a host carrying the web tier and a load balancer, so nginx
// listens on 80 (the LB) and 8081 (the web server), which RHEL's policy
// labels transproxy_port_t.
const webAndLB = `
cluster: {name: sc, firewall: unmanaged%s}
hosts:
  - {name: node-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat, lb, mysql, consumer, dashboard]}
zookeeper: {toy: true}
web: {port: 8081}
lb: {vip: 10.0.0.200/24}
`

func selinuxCommands(cmds []string) []string {
	var out []string
	for _, c := range cmds {
		if strings.Contains(c, "selinux") || strings.Contains(c, "setenforce") || strings.Contains(c, "semanage") ||
			strings.Contains(c, "setsebool") || strings.Contains(c, "policycoreutils") {
			out = append(out, c)
		}
	}
	return out
}

// By default an enforcing host stays enforcing, at once and after a
// reboot, and gets what nginx needs to listen on 8081 and to proxy.
func TestSELinuxEnforcingHostIsKeptAndGetsWhatNginxNeeds(t *testing.T) {
	f := newFakeRHEL()
	inv := rt.LoadInventory(t, strings.Replace(webAndLB, "%s", "", 1))
	c, tg := connectFake(t, f, inv, "node-1")
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, tg, steps)
	assertSequence(t, selinuxCommands(f.TakeMutating()), []string{
		`sh -c .*dnf install -y -q.* sh policycoreutils-python-utils`,
		rt.Quote(`semanage port -a -t http_port_t -p tcp 8081 2>/dev/null || semanage port -m -t http_port_t -p tcp 8081`),
		rt.Quote(`setsebool -P httpd_can_network_relay 1`),
	})
	if f.selinux != "Enforcing" || !strings.Contains(f.Files[selinuxConfig].Content, "SELINUX=enforcing\n") {
		t.Errorf("SELinux %s, config:\n%s", f.selinux, f.Files[selinuxConfig].Content)
	}
	if !slices.Equal(f.httpPorts, []string{"8081"}) || !f.booleans[relayBoolean] {
		t.Errorf("http_port_t extra ports %q, booleans %v", f.httpPorts, f.booleans)
	}
	rt.AssertSecondRunIdle(t, f.Host, tg, steps)
	if keeps := strings.Join(New().Keeps(c), "; "); !strings.Contains(keeps, relayBoolean) {
		t.Errorf("Keeps does not say the boolean stays: %s", keeps)
	}
}

// The mode changes only when the inventory asks, and preview says that it
// asked.
func TestSELinuxModeChangesOnlyWhenAsked(t *testing.T) {
	f := newFakeRHEL()
	inv := rt.LoadInventory(t, strings.Replace(webAndLB, "%s", ", selinux: permissive", 1))
	c, tg := connectFake(t, f, inv, "node-1")
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	preview := &step.Target{Host: tg.Host, OS: tg.OS, DryRun: true}
	res, err := preview.Run(context.Background(), steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, r := range res {
		if strings.HasPrefix(r.Step, "selinux permissive") && r.Change != nil {
			said = append(said, r.Change.Summary)
		}
	}
	want := []string{
		"set SELINUX=permissive in /etc/selinux/config (now SELINUX=enforcing), as cluster.selinux: permissive asks",
		"setenforce 0: SELinux from Enforcing to Permissive now, as cluster.selinux: permissive asks",
	}
	if !slices.Equal(said, want) {
		t.Errorf("preview says:\n%s\nwant:\n%s", strings.Join(said, "\n"), strings.Join(want, "\n"))
	}
	if m := f.TakeMutating(); len(m) != 0 {
		t.Errorf("preview changed things:\n%s", strings.Join(m, "\n"))
	}

	apply(t, tg, steps)
	if f.selinux != "Permissive" || !strings.Contains(f.Files[selinuxConfig].Content, "SELINUX=permissive\n") {
		t.Errorf("asked for permissive: SELinux %s, config:\n%s", f.selinux, f.Files[selinuxConfig].Content)
	}
	rt.AssertSecondRunIdle(t, f.Host, tg, steps)
}

// Debian has no SELinux: nothing of it runs there, whatever the setting.
func TestSELinuxNothingOnDebian(t *testing.T) {
	f := newFakeDebianContainer()
	inv := rt.LoadInventory(t, strings.Replace(webAndLB, "%s", ", selinux: enforcing", 1))
	c, tg := connectFake(t, f, inv, "node-1")
	steps, _ := rt.Steps(New(), c)
	apply(t, tg, steps)
	if got := selinuxCommands(f.TakeAll()); len(got) != 0 {
		t.Errorf("SELinux commands on Debian: %q", got)
	}
}

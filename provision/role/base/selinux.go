package base

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

const selinuxConfig = "/etc/selinux/config"

// selinuxSteps are the RHEL-like host's SELinux steps: its mode only when
// cluster.selinux asks for one (keep, the default, leaves it alone), and
// what the roles need to work on a host that enforces.
func selinuxSteps(c *role.Context) []step.Step {
	steps := selinuxModeSteps(c.Inventory.Cluster.SELinux)
	return append(steps, enforcingNeeds(c)...)
}

var selinuxLine = regexp.MustCompile(`(?m)^SELINUX=(\S*)`)

// selinuxModeSteps set the mode for the next boot (the config file) and for
// the running system (setenforce). A running kernel cannot switch SELinux
// off or back on: "disabled" runs permissive until the next boot, and a
// disabled kernel gets the wanted mode at its next boot. What preview
// shows says that the inventory asked for the change.
func selinuxModeSteps(mode inventory.SELinuxMode) []step.Step {
	if mode == inventory.SELinuxKeep || mode == "" {
		return nil
	}
	line := "SELINUX=" + string(mode)
	asked := "as cluster.selinux: " + string(mode) + " asks"
	return []step.Step{
		{
			ID:   step.ID{Kind: step.KindFile, Object: selinuxConfig, Block: "SELINUX"},
			Name: "selinux " + string(mode) + " at boot",
			Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
				b, err := t.Host.ReadFile(ctx, selinuxConfig)
				if err != nil {
					return nil, err
				}
				now := "unset"
				if m := selinuxLine.FindSubmatch(b); m != nil {
					now = string(m[1])
				}
				if now == string(mode) {
					return nil, nil
				}
				return &step.Change{Summary: fmt.Sprintf("set %s in %s (now SELINUX=%s), %s", line, selinuxConfig, now, asked)}, nil
			},
			Apply: func(ctx context.Context, t *step.Target) error {
				_, err := t.Host.Run(ctx, "sed -i 's/^SELINUX=.*/"+line+"/' "+selinuxConfig)
				return err
			},
		},
		{
			Name: "selinux " + string(mode) + " now",
			Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
				cmd, now, err := setenforce(ctx, t, mode)
				if err != nil || cmd == "" {
					return nil, err
				}
				return &step.Change{Summary: fmt.Sprintf("%s: SELinux from %s to %s now, %s", cmd, now, map[string]string{"setenforce 1": "Enforcing", "setenforce 0": "Permissive"}[cmd], asked)}, nil
			},
			Apply: func(ctx context.Context, t *step.Target) error {
				cmd, _, err := setenforce(ctx, t, mode)
				if err != nil || cmd == "" {
					return err
				}
				_, err = t.Host.Run(ctx, cmd)
				return err
			},
		},
	}
}

// setenforce returns the setenforce command that gives the running system
// mode, "" when it has it or cannot switch (SELinux disabled in the
// kernel), and getenforce's answer.
func setenforce(ctx context.Context, t *step.Target, mode inventory.SELinuxMode) (cmd, now string, err error) {
	res, err := t.Host.Run(ctx, "getenforce")
	if err != nil {
		return "", "", err
	}
	switch now = strings.TrimSpace(string(res.Stdout)); {
	case now == "Permissive" && mode == inventory.SELinuxEnforcing:
		return "setenforce 1", now, nil
	case now == "Enforcing" && mode != inventory.SELinuxEnforcing:
		return "setenforce 0", now, nil
	}
	return "", now, nil
}

// httpPorts are the ports RHEL's policy labels http_port_t, where nginx
// (httpd_t) may listen without a label of ours.
var httpPorts = []int{80, 81, 443, 488, 8008, 8009, 8443, 9000}

// semanagePackage brings semanage on RHEL 8 and 9.
const semanagePackage = "policycoreutils-python-utils"

// relayBoolean lets nginx (httpd_t) connect to the web hosts' http ports,
// which the load balancer's proxy_pass does; it is narrower than
// httpd_can_network_connect (any port).
const relayBoolean = "httpd_can_network_relay"

// enforcingNeeds are what the roles of the host need from SELinux when it
// enforces; each is a no-op where SELinux is disabled. Everything else
// trafficlab runs needs nothing: Kafka, ZooKeeper, filebeat, the consumer
// and the dashboard are started by systemd from unlabelled binaries and
// run unconfined (so the dashboard's 8080, http_cache_port_t, needs no
// label), MySQL uses its packaged paths and port, nginx's files are
// relabelled after upload (nginx.Relabel), and keepalived's check script
// lives in its libexec directory, labelled for scripts keepalived may run.
func enforcingNeeds(c *role.Context) []step.Step {
	if c.OS.Family != facts.RHEL {
		return nil
	}
	var ports []int
	if c.Host.Has(inventory.RoleWeb) {
		ports = append(ports, c.Inventory.Web.Port)
	}
	if c.Host.Has(inventory.RoleLB) {
		ports = append(ports, c.Inventory.LB.Port)
	}
	slices.Sort(ports)
	ports = slices.Compact(ports)
	var steps []step.Step
	for _, p := range ports {
		if slices.Contains(httpPorts, p) {
			continue
		}
		if len(steps) == 0 {
			steps = append(steps, step.Packages(map[facts.Family][]string{facts.RHEL: {semanagePackage}}))
		}
		n := strconv.Itoa(p)
		steps = append(steps, step.Command("selinux: nginx may listen on "+n+"/tcp",
			// The port among http_port_t's, in its own or the policy's list.
			`! selinuxenabled || semanage port -l | awk '$1 == "http_port_t" && $2 == "tcp" { for (i = 3; i <= NF; i++) { sub(",", "", $i); if ($i == "`+n+`") found = 1 } } END { exit !found }'`,
			// -a for a port of no type yet, -m for one of another type
			// (8081 is transproxy_port_t).
			"semanage port -a -t http_port_t -p tcp "+n+" 2>/dev/null || semanage port -m -t http_port_t -p tcp "+n))
	}
	if c.Host.Has(inventory.RoleLB) {
		steps = append(steps, step.Command("selinux: nginx may proxy to the web hosts",
			"! selinuxenabled || getsebool "+relayBoolean+" | grep -q -- '--> on$'",
			"setsebool -P "+relayBoolean+" 1"))
	}
	return steps
}

// selinuxKeeps says what destroy leaves of the SELinux settings.
func selinuxKeeps(c *role.Context) []string {
	keeps := []string{"the SELinux mode"}
	if len(enforcingNeeds(c)) > 0 {
		keeps = append(keeps, "the SELinux port labels and booleans nginx needs ("+relayBoolean+", http_port_t)")
	}
	return keeps
}

// Package lb is the role of the load balancers: the distribution's nginx
// balancing over the web hosts (passing the client's address in
// X-Real-IP), and keepalived holding the VIP on one of them, moving it
// when nginx there stops answering.
package lb

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/web"
	"github.com/trafficlab/trafficlab/provision/rolekit/nginx"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Where the role keeps things, the same on every family.
const (
	// Unit is nginx, KeepalivedUnit the distribution's keepalived.
	Unit           = nginx.Unit
	KeepalivedUnit = "keepalived.service"
	// Conf is the load balancer's nginx configuration.
	Conf = nginx.ConfDir + "/trafficlab-lb.conf"
	// AccessLog records which web host answered each request.
	AccessLog = nginx.LogDir + "/trafficlab-lb-access.log"
	// KeepalivedConf is where both families' keepalived unit reads its
	// configuration; it holds the VRRP password.
	KeepalivedConf = "/etc/keepalived/keepalived.conf"
	// CheckScript is keepalived's health check of nginx, where RHEL's
	// SELinux policy lets keepalived run scripts (its libexec directory,
	// labelled keepalived_unconfined_script_exec_t); Debian has no such
	// directory, the role makes it.
	CheckScriptDir = "/usr/libexec/keepalived"
	CheckScript    = CheckScriptDir + "/trafficlab-check-nginx.sh"
	// HealthPath is what the check asks nginx for (from 127.0.0.1 only).
	HealthPath = "/__trafficlab/lb-health"
	// ScriptUser runs the check: keepalived's conventional name for it.
	ScriptUser = "keepalived_script"
	// Instance is the VRRP instance's name in keepalived.conf and its logs.
	Instance = "trafficlab_vip"

	// MaxFails failures within FailTimeout take a web host out of the
	// upstream for FailTimeout.
	MaxFails    = 2
	FailTimeout = "10s"

	upstream      = "trafficlab_web"
	logFormatName = "trafficlab_lb"
	checkName     = "trafficlab_nginx"
)

// New returns the lb role.
func New() role.Role { return lb{} }

type lb struct{}

// Name is the role's name.
const Name = "lb"

func (lb) Name() string             { return Name }
func (lb) On(h inventory.Host) bool { return h.Has(inventory.RoleLB) }

// Needs: the web servers are the load balancers' upstream.
func (lb) Needs(*inventory.Inventory) []string { return []string{web.Name} }

// NeedsInterface: keepalived brings the VIP up on the interface carrying
// the host's address, detected on the host.
func (lb) NeedsInterface() {}

// Outputs are the stack's entry points to the site: the VIP, the site by
// its name (which every host of the cluster resolves to the VIP) and by
// the VIP itself, for clients outside that do not.
func (lb) Outputs(inv *inventory.Inventory) map[string]string {
	vip := inv.LB.VIPPrefix()
	if !vip.IsValid() {
		return nil
	}
	return map[string]string{
		"vip":      vip.Addr().String(),
		"site_url": inv.LB.SiteURL(inv.Cluster.Domain, "/"),
		"vip_url":  inv.LB.VIPURL("/"),
	}
}

// server is one web host in the upstream.
type server struct {
	Name     string
	HostPort string // address:port, an IPv6 address in brackets
	Weight   int    // 0: not written
}

// Method is the nginx upstream directive for the algorithm; "" for round
// robin, nginx's default.
func Method(a inventory.LBAlgorithm) string {
	switch a {
	case inventory.IPHash:
		return "ip_hash"
	case inventory.LeastConn:
		return "least_conn"
	}
	return ""
}

// interfacePlaceholder stands in for the interface where nothing asked
// the host (provision render).
const interfacePlaceholder = "INTERFACE-CARRYING-HOST-ADDRESS"

func (lb) Files(c *role.Context) ([]role.File, error) {
	inv := c.Inventory
	var servers []server
	for _, h := range inv.HostsWith(inventory.RoleWeb) {
		s := server{Name: h.Name, HostPort: net.JoinHostPort(h.Address, strconv.Itoa(inv.Web.Port))}
		if inv.LB.Algorithm == inventory.Weighted {
			s.Weight = h.Web.Weight
		}
		servers = append(servers, s)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("no host has the web role: the load balancer has nothing to balance over")
	}
	conf, err := c.Templates.Render("lb/lb.conf.tmpl", map[string]any{
		"Host": c.Host.Name, "Domain": inv.Cluster.Domain, "Port": inv.LB.Port,
		"Upstream": upstream, "Method": Method(inv.LB.Algorithm), "Servers": servers,
		"MaxFails": MaxFails, "FailTimeout": FailTimeout, "ConnectTimeout": "2s",
		"LogFormatName": logFormatName, "AccessLog": AccessLog, "HealthPath": HealthPath,
	})
	if err != nil {
		return nil, err
	}
	vip := inv.LB.VIPPrefix()
	if !vip.IsValid() {
		return nil, fmt.Errorf("lb.vip %q is not an address in CIDR form", inv.LB.VIP)
	}
	var peers []string
	if inv.LB.Unicast {
		for _, h := range inv.HostsWith(inventory.RoleLB) {
			if h.Name != c.Host.Name {
				peers = append(peers, h.Address)
			}
		}
	}
	iface := c.Interface
	if iface == "" {
		iface = interfacePlaceholder
	}
	keepalived, err := c.Templates.Render("lb/keepalived.conf.tmpl", map[string]any{
		"Host": c.Host.Name, "Address": c.Host.Address, "VIP": vip.String(), "Interface": iface,
		"VirtualRouterID": inv.LB.VirtualRouterID, "Priority": c.Host.LB.Priority, "NoPreempt": inv.LB.NoPreempt,
		"AuthPass": c.Secrets.VRRPAuth, "Peers": peers, "Instance": Instance,
		"ScriptUser": ScriptUser, "CheckName": checkName, "CheckScript": CheckScript,
	})
	if err != nil {
		return nil, err
	}
	check, err := c.Templates.Render("lb/check-nginx.sh.tmpl", map[string]any{
		"ScriptUser": ScriptUser, "Port": inv.LB.Port, "HealthPath": HealthPath,
	})
	if err != nil {
		return nil, err
	}
	return []role.File{
		{Path: Conf, Content: conf, Mode: 0o644, Owner: "root:root"},
		{Path: CheckScript, Content: check, Mode: 0o755, Owner: "root:root"},
		{Path: KeepalivedConf, Content: keepalived, Mode: 0o600, Owner: "root:root", Secret: true},
	}, nil
}

// KeepalivedTest checks keepalived.conf as keepalived would read it, on a
// copy whose script user is root: keepalived 2.2.7 (Debian 12) kills its
// own config test ("Terminated", exit 143) whenever scripts run as another
// user, whatever the configuration says (fixed in 2.2.8). The copy is
// 0600 (mktemp), as it holds the VRRP password, and is removed after.
const KeepalivedTest = `t=$(mktemp) && sed 's/^\([[:space:]]*script_user\)[[:space:]].*/\1 root/' ` + KeepalivedConf +
	` > "$t" && keepalived -t -f "$t"; rc=$?; rm -f "$t"; exit $rc`

func (l lb) Plan(c *role.Context) (role.Plan, error) {
	if c.Interface == "" {
		return role.Plan{}, fmt.Errorf("the network interface carrying %s is unknown, so keepalived cannot be told where the VIP goes", c.Host.Address)
	}
	if c.Secrets.VRRPAuth == "" {
		return role.Plan{}, fmt.Errorf("no VRRP password (lb.auth_pass, or the one kept in the stack)")
	}
	files, err := l.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	steps := []step.Step{
		nginx.Packages(),
		step.Packages(map[facts.Family][]string{c.OS.Family: {"keepalived"}}),
		step.User(ScriptUser, "/nonexistent"),
		step.Dir(CheckScriptDir, 0o755, "root:root"),
	}
	var nginxChanges, keepalivedChanges []step.ID
	for _, s := range nginx.DisableDefaultSite(c.OS) {
		steps = append(steps, s)
		nginxChanges = append(nginxChanges, s.ID)
	}
	for _, f := range files {
		s := step.File(f.Spec())
		steps = append(steps, s)
		if f.Path == Conf {
			nginxChanges = append(nginxChanges, s.ID)
		} else {
			keepalivedChanges = append(keepalivedChanges, s.ID)
		}
	}
	steps = append(steps, nginx.Relabel(c.OS, []string{Conf, CheckScript, KeepalivedConf}, append(nginxChanges, keepalivedChanges...)...)...)
	steps = append(steps,
		nginx.Reload(nginxChanges...),
		step.Service(Unit, step.Running),
		// nginx answers before keepalived may put the VIP here.
		step.Wait("nginx answers keepalived's check", 30*time.Second,
			fmt.Sprintf("see `journalctl -u %s` and %s/error.log on this host", Unit, nginx.LogDir),
			func(ctx context.Context, h step.Host) (bool, string, error) {
				_, err := h.Run(ctx, CheckScript)
				if remote.IsExit(err) {
					return false, fmt.Sprintf("%s fails: nginx does not answer %s on port %d", CheckScript, HealthPath, c.Inventory.LB.Port), nil
				}
				return err == nil, "", err
			}),
		step.TestAndReload("keepalived", KeepalivedUnit, KeepalivedTest, keepalivedChanges...),
		keepalivedRunning(),
		vipWait(c.Inventory),
	)
	return role.Plan{Files: files, Steps: steps}, nil
}

// keepalivedRunning starts keepalived, trying again on failure: a start
// moments after it was stopped by hand failed once in the end-to-end run
// ("control process exited with error code"; the journal was not kept),
// and the same start succeeds a little later.
func keepalivedRunning() step.Step {
	s := step.Service(KeepalivedUnit, step.Running)
	s.Retries = 2
	return s
}

// VIPTimeout bounds the wait for the VIP to answer: the load balancers
// elect a holder a few VRRP advertisements after keepalived starts.
var VIPTimeout = time.Minute

// vipWait makes the load balancer ready only once the site's port answers
// on the VIP (on this host, or the one that holds it), so that what runs
// after `up` (verify, clients) finds it there.
func vipWait(inv *inventory.Inventory) step.Step {
	vip := inv.LB.VIPPrefix().Addr()
	probe := VIPProbe(inv)
	return step.Wait("the VIP "+vip.String()+" answers", VIPTimeout,
		fmt.Sprintf("no load balancer took the VIP: see `journalctl -u %s` on each (VRRP between them blocked? both in FAULT?)", KeepalivedUnit),
		func(ctx context.Context, h step.Host) (bool, string, error) {
			_, err := h.Run(ctx, probe, remote.WithTimeout(5*time.Second))
			if err != nil {
				return false, "nothing answers on the VIP yet", nil
			}
			return true, "", nil
		})
}

// VIPProbe connects to the site's port on the VIP from the host: it
// succeeds once a load balancer holds the VIP and its nginx accepts
// connections.
func VIPProbe(inv *inventory.Inventory) string {
	return "bash -c " + remote.ShellQuote(fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", inv.LB.VIPPrefix().Addr(), inv.LB.Port))
}

func (lb) Remove(c *role.Context) ([]step.Step, error) {
	steps := []step.Step{
		// keepalived first: the VIP leaves this host (to a backup that
		// is still up) before its nginx stops balancing.
		step.Service(KeepalivedUnit, step.Stopped),
		step.FileAbsent(KeepalivedConf),
		step.FileAbsent(CheckScript),
		step.UserAbsent(ScriptUser),
		step.FileAbsent(Conf),
		nginx.ReloadIfRunning(step.FileID(Conf).Removal()),
		nginx.RemoveLogs(AccessLog),
	}
	if c.OS.Family != facts.RHEL {
		// RHEL's keepalived package owns the directory; on Debian the
		// role made it.
		steps = append(steps, step.EmptyDirAbsent(CheckScriptDir))
	}
	return steps, nil
}

// Logs: nginx and keepalived (VRRP state changes go to its journal).
func (lb) Logs(*role.Context) role.Logs {
	return role.Logs{Units: []string{nginx.Unit, KeepalivedUnit}, Files: []string{nginx.LogDir + "/error.log", AccessLog}}
}

func (lb) Keeps(c *role.Context) []string {
	keeps := []string{
		"the nginx and keepalived packages, and nginx's service as it runs now (keepalived is stopped and disabled)",
	}
	if c.OS.Family == facts.RHEL {
		keeps = append(keeps, "no keepalived.conf: the package's sample one, which trafficlab replaced, is not restored")
	}
	if len(nginx.DisableDefaultSite(c.OS)) > 0 {
		keeps = append(keeps, "the distribution's default site disabled ("+nginx.DebianDefaultSite+" removed)")
	}
	return keeps
}

// Package base is the role every host gets: its name, the cluster's names
// in /etc/hosts, the seed's tools, time (chrony and the timezone), the
// package proxy, the firewall and SELinux.
package base

import (
	"fmt"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

// New returns the base role.
func New() role.Role { return base{} }

// Name is the role's name. Every other role on a host builds on it: the
// engine configures a host's base first and removes it last.
const Name = "base"

type base struct{}

func (base) Name() string                        { return Name }
func (base) On(inventory.Host) bool              { return true }
func (base) Needs(*inventory.Inventory) []string { return nil }
func (base) Keeps(c *role.Context) []string {
	keeps := []string{
		"the packages installed (" + strings.Join(packages(c.OS), ", ") + ")",
		"the hostname " + c.Host.Name,
		"the timezone " + c.Inventory.Cluster.Timezone,
	}
	if c.OS.Family == facts.RHEL {
		keeps = append(keeps, selinuxKeeps(c)...)
	}
	if c.Inventory.Cluster.Firewall == inventory.FirewallManaged {
		keeps = append(keeps, "firewalld running (only the ports trafficlab opened are closed again)")
	}
	return keeps
}

// Logs: chrony's unit, whose journal says whether time is synced.
func (base) Logs(c *role.Context) role.Logs {
	return role.Logs{Units: []string{distroOf(c.OS).chronyUnit}}
}

// The block trafficlab keeps in /etc/hosts.
const hostsFile, hostsBlock = "/etc/hosts", "hosts"

// distro holds where the two families differ for this role.
type distro struct {
	chronyConf, chronyUnit, driftFile, chronyExec string
}

func distroOf(os facts.OS) distro {
	if os.Family == facts.RHEL {
		return distro{"/etc/chrony.conf", "chronyd.service", "/var/lib/chrony/drift", "/usr/sbin/chronyd -x $OPTIONS"}
	}
	// "!" as in Debian's own unit: chronyd starts as root and drops to
	// _chrony itself.
	return distro{"/etc/chrony/chrony.conf", "chrony.service", "/var/lib/chrony/chrony.drift", "!/usr/sbin/chronyd -x $DAEMON_OPTS"}
}

// packages are the seed's tools plus what this role runs.
func packages(os facts.OS) []string {
	vim := "vim"
	if os.Family == facts.RHEL {
		vim = "vim-enhanced"
	}
	return []string{"wget", "lsof", vim, "chrony", "tzdata"}
}

// chronyBackup keeps the distribution's chrony.conf so destroy can put it back.
func chronyBackup(d distro) string { return d.chronyConf + ".trafficlab-orig" }

const (
	aptProxyFile = "/etc/apt/apt.conf.d/90trafficlab-proxy"
	dnfConf      = "/etc/dnf/dnf.conf"
	proxyBlock   = "proxy"
)

func (base) Files(c *role.Context) ([]role.File, error) {
	var files []role.File
	render := func(name string, data any) ([]byte, error) {
		return c.Templates.Render(name, data)
	}

	type hostLine struct {
		Address string
		Names   []string
	}
	var lines []hostLine
	for _, h := range c.Inventory.Hosts {
		lines = append(lines, hostLine{h.Address, []string{h.Name}})
	}
	if vip := c.Inventory.LB.VIPPrefix(); vip.IsValid() {
		lines = append(lines, hostLine{vip.Addr().String(), []string{c.Inventory.Cluster.Domain}})
	}
	hosts, err := render("base/hosts.tmpl", map[string]any{"Hosts": lines})
	if err != nil {
		return nil, err
	}
	files = append(files, role.File{Path: hostsFile, Block: hostsBlock, Content: hosts, Mode: 0o644})

	if proxy := c.Inventory.Cluster.PackageProxy; proxy != "" {
		if c.OS.Family == facts.RHEL {
			files = append(files, role.File{Path: dnfConf, Block: proxyBlock, Content: []byte("proxy=" + proxy + "\n"), Mode: 0o644})
		} else {
			b, err := render("base/apt-proxy.conf.tmpl", map[string]any{"Proxy": proxy})
			if err != nil {
				return nil, err
			}
			files = append(files, role.File{Path: aptProxyFile, Content: b, Mode: 0o644, Owner: "root:root"})
		}
	}

	d := distroOf(c.OS)
	if servers := c.Inventory.Cluster.NTPServers; len(servers) > 0 {
		b, err := render("base/chrony.conf.tmpl", map[string]any{
			"Servers": servers, "DriftFile": d.driftFile, "Container": c.OS.Container != "",
		})
		if err != nil {
			return nil, err
		}
		files = append(files, role.File{Path: d.chronyConf, Content: b, Mode: 0o644, Owner: "root:root"})
	}
	if c.OS.Container != "" {
		b, err := render("base/chrony-container.conf.tmpl", map[string]any{"ExecStart": d.chronyExec})
		if err != nil {
			return nil, err
		}
		files = append(files, role.File{Path: dropInPath(d), Content: b, Mode: 0o644, Owner: "root:root"})
	}
	return files, nil
}

func dropInPath(d distro) string { return "/etc/systemd/system/" + d.chronyUnit + ".d/trafficlab.conf" }

func (b base) Plan(c *role.Context) (role.Plan, error) {
	files, err := b.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	byPath := map[string]role.File{}
	for _, f := range files {
		byPath[f.Path] = f
	}
	d := distroOf(c.OS)
	name := remote.ShellQuote(c.Host.Name)
	steps := []step.Step{
		step.Command("hostname "+c.Host.Name,
			fmt.Sprintf(`test "$(hostname)" = %s && test "$(cat /etc/hostname 2>/dev/null)" = %s`, name, name),
			"hostnamectl set-hostname "+name),
		byPath[hostsFile].Step(),
	}

	// The proxy comes before any package is installed through it.
	switch {
	case c.Inventory.Cluster.PackageProxy == "" && c.OS.Family == facts.RHEL:
		steps = append(steps, step.BlockAbsent(dnfConf, proxyBlock))
	case c.Inventory.Cluster.PackageProxy == "":
		steps = append(steps, step.FileAbsent(aptProxyFile))
	case c.OS.Family == facts.RHEL:
		steps = append(steps, byPath[dnfConf].Step())
	default:
		steps = append(steps, byPath[aptProxyFile].Step())
	}

	pkgs := packages(c.OS)
	if c.Inventory.Cluster.Firewall == inventory.FirewallManaged {
		pkgs = append(pkgs, "firewalld")
	}
	steps = append(steps, step.Packages(map[facts.Family][]string{c.OS.Family: pkgs}))

	zone := remote.ShellQuote(c.Inventory.Cluster.Timezone)
	steps = append(steps, step.Command("timezone "+c.Inventory.Cluster.Timezone,
		// /etc/localtime itself, not `timedatectl show`: that asks
		// timedated over D-Bus, which can take 25 s to answer on a busy
		// host and made a converged host look drifted.
		`case "$(readlink /etc/localtime)" in */zoneinfo/`+c.Inventory.Cluster.Timezone+`) ;; *) exit 1;; esac`,
		"timedatectl set-timezone "+zone))

	steps = append(steps, chronySteps(c, d, byPath)...)
	steps = append(steps, firewallSteps(c)...)
	if c.OS.Family == facts.RHEL {
		steps = append(steps, selinuxSteps(c)...)
	}
	return role.Plan{Files: files, Steps: steps}, nil
}

func chronySteps(c *role.Context, d distro, byPath map[string]role.File) []step.Step {
	var steps, changes []step.Step
	if f, ok := byPath[d.chronyConf]; ok {
		backup := remote.ShellQuote(chronyBackup(d))
		conf := remote.ShellQuote(d.chronyConf)
		steps = append(steps, step.Command("keep the distribution's "+d.chronyConf,
			"test -e "+backup, "cp -p "+conf+" "+backup))
		changes = append(changes, f.Step())
	}
	if f, ok := byPath[dropInPath(d)]; ok {
		changes = append(changes, step.DropIn(d.chronyUnit, "trafficlab", f.Content))
	} else {
		changes = append(changes, step.FileAbsent(dropInPath(d)))
	}
	steps = append(steps, changes...)
	unit := remote.ShellQuote(d.chronyUnit)
	// A restart, not a start: a running chronyd keeps its old sources.
	steps = append(steps,
		step.OnChange("restart "+d.chronyUnit, "systemctl daemon-reload && systemctl restart "+unit, step.IDs(changes...)...),
		step.Service(d.chronyUnit, step.Running))
	return steps
}

func (base) Remove(c *role.Context) ([]step.Step, error) {
	d := distroOf(c.OS)
	backup, conf := remote.ShellQuote(chronyBackup(d)), remote.ShellQuote(d.chronyConf)
	steps := []step.Step{
		step.BlockAbsent(hostsFile, hostsBlock),
		step.Command("restore the distribution's "+d.chronyConf,
			"! test -e "+backup,
			"mv -f "+backup+" "+conf+" && systemctl try-restart "+remote.ShellQuote(d.chronyUnit)),
		step.FileAbsent(dropInPath(d)),
		step.OnChange("reload systemd", "systemctl daemon-reload", step.FileID(dropInPath(d)).Removal()),
	}
	if c.OS.Family == facts.RHEL {
		steps = append(steps, step.BlockAbsent(dnfConf, proxyBlock))
	} else {
		steps = append(steps, step.FileAbsent(aptProxyFile))
	}
	if c.Inventory.Cluster.Firewall == inventory.FirewallManaged {
		steps = append(steps, firewallClose(c))
	}
	return steps, nil
}

// Package nginx holds what the web and lb roles share about the
// distribution's nginx: the package, where server blocks go, the
// distribution's default site, SELinux labels, and the one way
// trafficlab reloads it (configuration tested first, reloaded, never
// restarted).
package nginx

import (
	"strings"

	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/step"
)

const (
	// Unit is the distribution's nginx service.
	Unit = "nginx.service"
	// ConfDir is included in the http block by both families' nginx.conf.
	ConfDir = "/etc/nginx/conf.d"
	// LogDir is the distribution's log directory, rotated by its logrotate
	// rule (/var/log/nginx/*.log).
	LogDir = "/var/log/nginx"
	// DebianDefaultSite is the link that enables Debian's and Ubuntu's
	// default site, which takes port 80 as default_server.
	DebianDefaultSite = "/etc/nginx/sites-enabled/default"

	// TestCommand checks the whole configuration as nginx would load it.
	TestCommand = "nginx -t -q"
	// ReloadIfRunningCommand tests the configuration and reloads nginx if
	// it runs (ReloadIfRunning).
	ReloadIfRunningCommand = "if systemctl is-active --quiet " + Unit + "; then " + TestCommand + " && systemctl reload " + Unit + "; fi"
)

// Packages keeps nginx installed: the distribution's package on Debian and
// Ubuntu, AppStream's on RHEL-like 8 and 9 (no EPEL needed).
func Packages() step.Step {
	return step.Packages(map[facts.Family][]string{facts.RHEL: {"nginx"}, facts.Debian: {"nginx"}})
}

// DisableDefaultSite keeps Debian's default site disabled: it listens on
// port 80 as default_server too, and nginx refuses two default servers on
// one port. RHEL-like hosts have their default server in nginx.conf
// without default_server, so a server of ours marked default_server wins
// there without touching it. The site itself stays in sites-available.
func DisableDefaultSite(os facts.OS) []step.Step {
	if os.Family != facts.Debian {
		return nil
	}
	q := remote.ShellQuote(DebianDefaultSite)
	return []step.Step{step.Command("disable the default site "+DebianDefaultSite,
		"! test -e "+q+" && ! test -L "+q, "rm -f "+q)}
}

// Relabel gives files uploaded into paths the SELinux labels the policy
// names for them (an upload inherits its directory's label, which for a
// directory trafficlab made may not be one nginx may read when SELinux
// enforces), after any of the steps after names changed. Nothing on
// hosts without SELinux.
func Relabel(os facts.OS, paths []string, after ...step.ID) []step.Step {
	if os.Family != facts.RHEL {
		return nil
	}
	return []step.Step{step.OnChange("restore SELinux labels of "+strings.Join(paths, " "), RelabelCommand(paths), after...)}
}

// RelabelCommand restores the SELinux labels of paths, on hosts that have
// restorecon (Relabel).
func RelabelCommand(paths []string) string {
	var q []string
	for _, p := range paths {
		q = append(q, remote.ShellQuote(p))
	}
	return "if command -v restorecon >/dev/null; then restorecon -R " + strings.Join(q, " ") + "; fi"
}

// Reload tests the configuration with `nginx -t` and reloads a running
// nginx when any of the steps after names changed something in this run
// (step.TestAndReload).
func Reload(after ...step.ID) step.Step {
	return step.TestAndReload("nginx", Unit, TestCommand, after...)
}

// ReloadIfRunning is Reload for destroy: after our files are gone, a
// running nginx (which may serve the other role, or the distribution's
// page) reloads without them; a stopped one stays stopped.
func ReloadIfRunning(after ...step.ID) step.Step {
	return step.OnChange("reload nginx without trafficlab's files", ReloadIfRunningCommand, after...)
}

// RemoveLogs removes an access log of trafficlab's and the copies
// logrotate made of it (name.1, name.2.gz, ...): trafficlab's files, which
// destroy takes away like the rest of the traffic's data.
func RemoveLogs(log string) step.Step {
	q := remote.ShellQuote(log)
	return step.Command("remove "+log+"*", "! ls -d "+q+" "+q+".* 2>/dev/null | grep -q .", "rm -f "+q+" "+q+".*")
}

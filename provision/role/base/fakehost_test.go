package base

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

// fakeHost is the shared fake host plus what only the base role touches:
// the hostname, the timezone, firewalld and SELinux.
type fakeHost struct {
	*roletest.Host
	hostname string
	timezone string
	fwPorts  []string // permanent == runtime unless edited by a test
	fwRun    []string
	fwRich   []string
	selinux  string // getenforce
	booleans map[string]bool
	// httpPorts are the ports labelled http_port_t beyond the policy's.
	httpPorts []string
}

func newFakeRHEL() *fakeHost {
	h := roletest.NewRHEL()
	h.Files["/etc/chrony.conf"] = roletest.File{Content: "pool 2.rocky.pool.ntp.org iburst\n", Mode: "644", Owner: "root:root"}
	h.Files["/etc/selinux/config"] = roletest.File{Content: "SELINUX=enforcing\nSELINUXTYPE=targeted\n", Mode: "644", Owner: "root:root"}
	h.Files["/etc/dnf/dnf.conf"] = roletest.File{Content: "[main]\ngpgcheck=1\n", Mode: "644", Owner: "root:root"}
	h.Packages["wget"] = true
	h.Enabled["chronyd.service"] = "enabled"
	h.Enabled["firewalld"] = "disabled"
	h.Active["chronyd.service"] = true
	f := &fakeHost{Host: h, hostname: "localhost.localdomain", timezone: "America/New_York", selinux: "Enforcing", booleans: map[string]bool{}}
	f.handleBase()
	return f
}

func newFakeDebianContainer() *fakeHost {
	h := roletest.NewDebian("systemd-nspawn")
	h.Packages["tzdata"] = true
	// Debian's chrony package brings its configuration and enables itself.
	h.Installed["chrony"] = func(h *roletest.Host) {
		h.Files["/etc/chrony/chrony.conf"] = roletest.File{Content: "pool 2.debian.pool.ntp.org iburst\n", Mode: "644", Owner: "root:root"}
		h.Enabled["chrony.service"] = "enabled"
	}
	f := &fakeHost{Host: h, hostname: "tlab-kafka-1", timezone: "Etc/UTC"}
	f.handleBase()
	return f
}

// handleBase adds the commands of the base role the shared fake does not
// know.
func (f *fakeHost) handleBase() {
	h := f.Host
	h.Handle(`^test "\$\(hostname\)" = (\S+) && test "\$\(cat /etc/hostname 2>/dev/null\)" = (\S+)$`, false, func(m []string, s sshtest.Session) int {
		return roletest.Exit(f.hostname == m[1] && h.Files["/etc/hostname"].Content == m[1]+"\n")
	})
	h.Handle(`^hostnamectl set-hostname (\S+)$`, true, func(m []string, s sshtest.Session) int {
		f.hostname = m[1]
		h.Files["/etc/hostname"] = roletest.File{Content: m[1] + "\n", Mode: "644", Owner: "root:root"}
		return 0
	})
	h.Handle(`^case "\$\(readlink /etc/localtime\)" in \*/zoneinfo/(\S+)\) ;; \*\) exit 1;; esac$`, false, func(m []string, s sshtest.Session) int {
		return roletest.Exit(f.timezone == m[1])
	})
	h.Handle(`^timedatectl set-timezone (\S+)$`, true, func(m []string, s sshtest.Session) int {
		f.timezone = m[1]
		return 0
	})
	h.Handle(`^mv -f (\S+) (\S+) && systemctl try-restart (\S+)$`, true, func(m []string, s sshtest.Session) int {
		h.Files[m[2]] = h.Files[m[1]]
		delete(h.Files, m[1])
		return 0
	})
	h.Handle(`^firewall-cmd --list-all && echo (\S+) && firewall-cmd --permanent --list-all$`, false, func(m []string, s sshtest.Session) int {
		if !h.Active["firewalld"] {
			fmt.Fprintln(s.Stderr, "FirewallD is not running")
			return 252
		}
		fmt.Fprint(s.Stdout, listAll(f.fwRun, f.fwRich), m[1]+"\n", listAll(f.fwPorts, f.fwRich))
		return 0
	})
	h.Handle(`^firewall-cmd --state$`, false, func(m []string, s sshtest.Session) int {
		return roletest.Exit(h.Active["firewalld"])
	})
	h.Handle(`^(firewall-cmd --permanent .* && )+firewall-cmd --reload$`, true, func(m []string, s sshtest.Session) int {
		for _, call := range strings.Split(s.Command, " && ") {
			// firewall-cmd refuses mixed kinds of change in one call.
			if strings.Contains(call, "-port=") && strings.Contains(call, "-rich-rule=") ||
				strings.Contains(call, "--add-") && strings.Contains(call, "--remove-") {
				fmt.Fprintln(s.Stderr, "firewall-cmd: error: argument not allowed with argument")
				return 2
			}
		}
		for _, a := range regexp.MustCompile(`--(add|remove)-(port|rich-rule)=('[^']*'|\S+)`).FindAllStringSubmatch(s.Command, -1) {
			v := strings.Trim(a[3], "'")
			list := &f.fwPorts
			if a[2] == "rich-rule" {
				list = &f.fwRich
			}
			if a[1] == "add" {
				*list = append(*list, v)
			} else {
				*list = slices.DeleteFunc(*list, func(x string) bool { return x == v })
			}
		}
		f.fwRun = slices.Clone(f.fwPorts)
		return 0
	})
	h.Handle(`^firewall-cmd --reload$`, true, func(m []string, s sshtest.Session) int {
		f.fwRun = slices.Clone(f.fwPorts)
		return 0
	})
	h.Handle(`^grep -qx '(\S+)' /etc/selinux/config$`, false, func(m []string, s sshtest.Session) int {
		return roletest.Exit(slices.Contains(strings.Split(h.Files["/etc/selinux/config"].Content, "\n"), m[1]))
	})
	h.Handle(`^sed -i 's/\^SELINUX=\.\*/(\S+)/' /etc/selinux/config$`, true, func(m []string, s sshtest.Session) int {
		c := h.Files["/etc/selinux/config"]
		c.Content = regexp.MustCompile(`(?m)^SELINUX=.*$`).ReplaceAllString(c.Content, m[1])
		h.Files["/etc/selinux/config"] = c
		return 0
	})
	h.Handle(`^getenforce$`, false, func(m []string, s sshtest.Session) int {
		fmt.Fprintln(s.Stdout, f.selinux)
		return 0
	})
	// The enforcing needs: checks as `! selinuxenabled || CHECK`.
	h.Handle(`^! selinuxenabled \|\| getsebool (\S+) \| grep -q -- '--> on\$'$`, false, func(m []string, s sshtest.Session) int {
		return roletest.Exit(f.selinux == "Disabled" || f.booleans[m[1]])
	})
	h.Handle(`^setsebool -P (\S+) 1$`, true, func(m []string, s sshtest.Session) int {
		f.booleans[m[1]] = true
		return 0
	})
	h.Handle(`^! selinuxenabled \|\| semanage port -l \| awk '.*\$i == "(\d+)".*'$`, false, func(m []string, s sshtest.Session) int {
		if !h.Packages["policycoreutils-python-utils"] {
			return 127
		}
		return roletest.Exit(f.selinux == "Disabled" || slices.Contains(f.httpPorts, m[1]))
	})
	h.Handle(`^semanage port -a -t http_port_t -p tcp (\d+) 2>/dev/null \|\| semanage port -m -t http_port_t -p tcp (\d+)$`, true, func(m []string, s sshtest.Session) int {
		f.httpPorts = append(f.httpPorts, m[1])
		return 0
	})
	h.Handle(`^setenforce ([01])$`, true, func(m []string, s sshtest.Session) int {
		f.selinux = map[string]string{"0": "Permissive", "1": "Enforcing"}[m[1]]
		return 0
	})
}

// listAll prints a zone the way `firewall-cmd --list-all` does.
func listAll(ports, rich []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "public\n  target: default\n  services: dhcpv6-client ssh\n  ports: %s\n  protocols: \n  forward: yes\n  forward-ports: \n  source-ports: 9999/udp\n  rich rules: \n", strings.Join(ports, " "))
	for _, r := range rich {
		fmt.Fprintf(&b, "\t%s\n", r)
	}
	return b.String()
}

package base

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
)

// fakeHost is a RHEL-like or Debian host in memory: it answers exactly the
// command lines the base role and the SSH transport send (the login user
// is not root, so even file reads and writes are commands), keeps state
// between them, and records which commands changed something. It lets the
// role's whole command sequence for a family this machine cannot run be
// tested through the real transport.
type fakeHost struct {
	mu       sync.Mutex
	rhel     bool
	osRel    string
	virt     string // systemd-detect-virt --container
	hostname string
	files    map[string]fakeFile
	pkgs     map[string]bool
	enabled  map[string]string
	active   map[string]bool
	timezone string
	fwPorts  []string // permanent == runtime unless edited by a test
	fwRun    []string
	fwRich   []string
	selinux  string // getenforce
	mutating []string
	all      []string
}

type fakeFile struct {
	content     string
	mode, owner string
}

func newFakeRHEL() *fakeHost {
	return &fakeHost{
		rhel:     true,
		osRel:    "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n",
		virt:     "none",
		hostname: "localhost.localdomain",
		files: map[string]fakeFile{
			"/etc/hosts":          {"127.0.0.1   localhost localhost.localdomain\n", "644", "root:root"},
			"/etc/chrony.conf":    {"pool 2.rocky.pool.ntp.org iburst\n", "644", "root:root"},
			"/etc/selinux/config": {"SELINUX=enforcing\nSELINUXTYPE=targeted\n", "644", "root:root"},
			"/etc/dnf/dnf.conf":   {"[main]\ngpgcheck=1\n", "644", "root:root"},
		},
		pkgs:     map[string]bool{"wget": true},
		enabled:  map[string]string{"chronyd.service": "enabled", "firewalld": "disabled"},
		active:   map[string]bool{"chronyd.service": true},
		timezone: "America/New_York",
		selinux:  "Enforcing",
	}
}

func newFakeDebianContainer() *fakeHost {
	return &fakeHost{
		osRel:    "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
		virt:     "systemd-nspawn",
		hostname: "tlab-kafka-1",
		files: map[string]fakeFile{
			"/etc/hosts": {"127.0.0.1 localhost\n", "644", "root:root"},
		},
		pkgs:     map[string]bool{"tzdata": true},
		enabled:  map[string]string{},
		active:   map[string]bool{},
		timezone: "Etc/UTC",
	}
}

var (
	reQuoted = `'?([^' ]+)'?`
	fakeCmds = []struct {
		re       *regexp.Regexp
		mutating bool
		do       func(f *fakeHost, m []string, s sshtest.Session) int
	}{
		{regexp.MustCompile(`^cat /etc/os-release$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			fmt.Fprint(s.Stdout, f.osRel)
			return 0
		}},
		{regexp.MustCompile(`^systemd-detect-virt --container`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			fmt.Fprintln(s.Stdout, f.virt)
			return map[bool]int{true: 1, false: 0}[f.virt == "none"]
		}},
		{regexp.MustCompile(`^test "\$\(hostname\)" = (\S+) && test "\$\(cat /etc/hostname 2>/dev/null\)" = (\S+)$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			return exit(f.hostname == m[1] && f.files["/etc/hostname"].content == m[1]+"\n")
		}},
		{regexp.MustCompile(`^hostnamectl set-hostname (\S+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			f.hostname = m[1]
			f.files["/etc/hostname"] = fakeFile{m[1] + "\n", "644", "root:root"}
			return 0
		}},
		{regexp.MustCompile(`^stat -c '%a %U:%G' -- ` + reQuoted + ` 2>/dev/null \|\| echo missing$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			if file, ok := f.files[m[1]]; ok {
				fmt.Fprintf(s.Stdout, "%s %s\n", file.mode, file.owner)
			} else {
				fmt.Fprintln(s.Stdout, "missing")
			}
			return 0
		}},
		{regexp.MustCompile(`^\[ -e (\S+) \] \|\| exit 44; exec cat -- (\S+)$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			file, ok := f.files[m[1]]
			if !ok {
				return 44
			}
			fmt.Fprint(s.Stdout, file.content)
			return 0
		}},
		// remote.Upload for a non-root user: the content is in a real
		// file under /tmp; install it into the fake.
		{regexp.MustCompile(`^\{ install -m 0(\d+)(?: -o (\S+))?(?: -g (\S+))? (/tmp/\S+) \S+ && mv -f \S+ (\S+); \}; rc=\$\?; rm -f \S+ \S+; exit \$rc$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			b, err := os.ReadFile(m[4])
			if err != nil {
				fmt.Fprintln(s.Stderr, err)
				return 1
			}
			os.Remove(m[4])
			owner := "root:root"
			if m[2] != "" {
				owner = m[2] + ":" + m[3]
			}
			f.files[m[5]] = fakeFile{string(b), m[1], owner}
			return 0
		}},
		{regexp.MustCompile(`^sh -c .*(rpm -q|dpkg-query).* sh (.+)$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			for _, p := range strings.Fields(m[2]) {
				if !f.pkgs[p] {
					fmt.Fprintln(s.Stdout, p)
				}
			}
			return 0
		}},
		{regexp.MustCompile(`^sh -c .*(dnf install|apt-get install).* sh (.+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			for _, p := range strings.Fields(m[2]) {
				f.pkgs[p] = true
				if p == "chrony" && !f.rhel {
					f.files["/etc/chrony/chrony.conf"] = fakeFile{"pool 2.debian.pool.ntp.org iburst\n", "644", "root:root"}
					f.enabled["chrony.service"] = "enabled"
				}
			}
			return 0
		}},
		{regexp.MustCompile(`^test "\$\(timedatectl show --property=Timezone --value\)" = (\S+)$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			return exit(f.timezone == m[1])
		}},
		{regexp.MustCompile(`^timedatectl set-timezone (\S+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			f.timezone = m[1]
			return 0
		}},
		{regexp.MustCompile(`^(!? ?)test -e (\S+)$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			_, ok := f.files[m[2]]
			return exit(ok == (m[1] == ""))
		}},
		{regexp.MustCompile(`^cp -p (\S+) (\S+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			f.files[m[2]] = f.files[m[1]]
			return 0
		}},
		{regexp.MustCompile(`^mv -f (\S+) (\S+) && systemctl try-restart (\S+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			f.files[m[2]] = f.files[m[1]]
			delete(f.files, m[1])
			return 0
		}},
		{regexp.MustCompile(`^mkdir -p (\S+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int { return 0 }},
		{regexp.MustCompile(`^rm -f (\S+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			delete(f.files, m[1])
			return 0
		}},
		{regexp.MustCompile(`^systemctl daemon-reload(?: && systemctl restart (\S+))?$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			if m[1] != "" {
				f.active[m[1]] = true
			}
			return 0
		}},
		{regexp.MustCompile(`^systemctl is-enabled (\S+) 2>/dev/null; systemctl is-active \S+ 2>/dev/null; true$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			if e := f.enabled[m[1]]; e != "" {
				fmt.Fprintln(s.Stdout, e)
			}
			fmt.Fprintln(s.Stdout, map[bool]string{true: "active", false: "inactive"}[f.active[m[1]]])
			return 0
		}},
		{regexp.MustCompile(`^systemctl (enable --now|start) (\S+)$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			if m[1] == "enable --now" {
				f.enabled[m[2]] = "enabled"
			}
			f.active[m[2]] = true
			return 0
		}},
		{regexp.MustCompile(`^firewall-cmd --permanent --list-ports && echo (\S+) && firewall-cmd --list-ports .* --list-rich-rules$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			if !f.active["firewalld"] {
				fmt.Fprintln(s.Stderr, "FirewallD is not running")
				return 252
			}
			rich := strings.Join(f.fwRich, "\n")
			fmt.Fprintf(s.Stdout, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n", strings.Join(f.fwPorts, " "), m[1], strings.Join(f.fwRun, " "), m[1], rich, m[1], rich)
			return 0
		}},
		{regexp.MustCompile(`^firewall-cmd --state$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			return exit(f.active["firewalld"])
		}},
		{regexp.MustCompile(`^(firewall-cmd --permanent .* && )+firewall-cmd --reload$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
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
		}},
		{regexp.MustCompile(`^firewall-cmd --reload$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			f.fwRun = slices.Clone(f.fwPorts)
			return 0
		}},
		{regexp.MustCompile(`^grep -qx '(\S+)' /etc/selinux/config$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			return exit(slices.Contains(strings.Split(f.files["/etc/selinux/config"].content, "\n"), m[1]))
		}},
		{regexp.MustCompile(`^sed -i 's/\^SELINUX=\.\*/(\S+)/' /etc/selinux/config$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			c := f.files["/etc/selinux/config"]
			c.content = regexp.MustCompile(`(?m)^SELINUX=.*$`).ReplaceAllString(c.content, m[1])
			f.files["/etc/selinux/config"] = c
			return 0
		}},
		{regexp.MustCompile(`^getenforce$`), false, func(f *fakeHost, m []string, s sshtest.Session) int {
			fmt.Fprintln(s.Stdout, f.selinux)
			return 0
		}},
		{regexp.MustCompile(`^setenforce ([01])$`), true, func(f *fakeHost, m []string, s sshtest.Session) int {
			f.selinux = map[string]string{"0": "Permissive", "1": "Enforcing"}[m[1]]
			return 0
		}},
	}
)

func exit(ok bool) int {
	if ok {
		return 0
	}
	return 1
}

func (f *fakeHost) handler(ctx context.Context, s sshtest.Session) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.all = append(f.all, s.Command)
	for _, c := range fakeCmds {
		if m := c.re.FindStringSubmatch(s.Command); m != nil {
			if c.mutating {
				f.mutating = append(f.mutating, s.Command)
			}
			return c.do(f, m, s)
		}
	}
	fmt.Fprintf(s.Stderr, "fake host: unknown command %s\n", strconv.Quote(s.Command))
	return 127
}

func (f *fakeHost) takeMutating() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.mutating
	f.mutating = nil
	return m
}

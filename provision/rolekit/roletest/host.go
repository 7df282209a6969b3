// Package roletest tests roles' command sequences through the real SSH
// transport against a host kept in memory.
//
// A Host answers exactly the command lines the transport and the step
// helpers send (the login user is not root, so even file reads and writes
// are commands), keeps state between them, and records which commands
// changed something. A role's whole command sequence for a family this
// machine cannot run (RHEL-like) is then tested command by command, and a
// second run proves that the checks find nothing left to do.
//
// The built-in handlers cover the transport, files and directories,
// packages, systemd units, system users and distribution tarballs; a test
// adds handlers for the commands only its role sends with Handle.
package roletest

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
)

// File is a file, directory or symbolic link on the fake host.
type File struct {
	Content string
	Mode    string // octal as stat's %a prints it: "644"
	Owner   string // user:group
	Dir     bool
	Link    string // target, for a symbolic link
}

// Handler answers one command. m holds the submatches of the handler's
// pattern; the host is locked while a handler runs, so handlers use the
// Host's fields directly.
type Handler func(m []string, s sshtest.Session) int

type handler struct {
	re       *regexp.Regexp
	mutating bool
	do       Handler
}

// Host is a RHEL-like or Debian host in memory. Tests read and set its
// fields between runs; handlers change them during runs.
type Host struct {
	mu sync.Mutex

	OSRelease string
	Virt      string // what systemd-detect-virt --container prints: "none" or the container kind
	Machine   string // what uname -m prints: "x86_64" unless a test says otherwise
	Files     map[string]File
	Packages  map[string]bool
	Enabled   map[string]string // systemctl is-enabled
	Active    map[string]bool   // systemctl is-active
	Users     map[string]bool
	// Installed runs (with the host locked) when a package gets
	// installed, for packages that bring files or users with them.
	Installed map[string]func(h *Host)
	// URLs are what curl downloads: URL to content.
	URLs map[string]string
	// Fail makes a command matching a pattern exit 1 with the pattern on
	// stderr, for failure paths.
	Fail []string

	extra    []handler // the test's own, tried before the built-ins
	builtin  []handler
	mutating []string
	all      []string
}

// RockyRelease and DebianRelease are os-release files the hosts start with.
const (
	RockyRelease  = "NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.4\"\nPRETTY_NAME=\"Rocky Linux 9.4 (Blue Onyx)\"\n"
	DebianRelease = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"
)

// NewRHEL returns a Rocky Linux 9 virtual machine with nothing of
// trafficlab's on it.
func NewRHEL() *Host {
	h := newHost(RockyRelease, "none", "/etc/dnf", "/etc/selinux")
	h.Files["/etc/hosts"] = File{Content: "127.0.0.1   localhost localhost.localdomain\n", Mode: "644", Owner: "root:root"}
	return h
}

// NewDebian returns a Debian 12 host; container is what
// systemd-detect-virt --container prints ("none" for a virtual machine).
func NewDebian(container string) *Host {
	h := newHost(DebianRelease, container, "/etc/apt/apt.conf.d")
	h.Files["/etc/hosts"] = File{Content: "127.0.0.1 localhost\n", Mode: "644", Owner: "root:root"}
	return h
}

// commonDirs exist on every host; uploads into a directory that does not
// exist fail, as they would on a real host.
var commonDirs = []string{"/etc", "/etc/systemd/system", "/opt", "/usr", "/var/lib", "/var/log"}

func newHost(osRelease, virt string, dirs ...string) *Host {
	h := &Host{
		OSRelease: osRelease,
		Virt:      virt,
		Machine:   "x86_64",
		Files:     map[string]File{},
		Packages:  map[string]bool{},
		Enabled:   map[string]string{},
		Active:    map[string]bool{},
		Users:     map[string]bool{"root": true},
		Installed: map[string]func(*Host){},
		URLs:      map[string]string{},
	}
	for _, d := range append(commonDirs, dirs...) {
		h.Files[d] = File{Dir: true, Mode: "755", Owner: "root:root"}
	}
	h.builtin = builtins(h)
	return h
}

// Handle adds a handler for commands matching the regular expression re
// (anchored by the caller as needed). Handlers added later are tried
// first, and before every built-in one. mutating commands are recorded
// by TakeMutating.
func (h *Host) Handle(re string, mutating bool, do Handler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.extra = append([]handler{{regexp.MustCompile(re), mutating, do}}, h.extra...)
}

// Lock and Unlock guard the fields while the host may be serving commands.
func (h *Host) Lock()   { h.mu.Lock() }
func (h *Host) Unlock() { h.mu.Unlock() }

// withPrefix lists the file p and the files named p.<anything>.
func (h *Host) withPrefix(p string) []string {
	var out []string
	for f := range h.Files {
		if f == p || strings.HasPrefix(f, p+".") {
			out = append(out, f)
		}
	}
	return out
}

// File returns the file at path.
func (h *Host) File(path string) (File, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.Files[path]
	return f, ok
}

// Paths lists every path on the host under prefix, sorted.
func (h *Host) Paths(prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for p := range h.Files {
		if strings.HasPrefix(p, prefix) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// TakeMutating returns the commands that changed something since the last
// call, in order, and forgets them.
func (h *Host) TakeMutating() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.mutating
	h.mutating = nil
	return m
}

// TakeAll returns every command received since the last call and forgets
// them.
func (h *Host) TakeAll() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.all
	h.all = nil
	return a
}

// ExecHandler is the sshtest handler serving the host.
func (h *Host) ExecHandler(ctx context.Context, s sshtest.Session) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.all = append(h.all, s.Command)
	for _, f := range h.Fail {
		if regexp.MustCompile(f).MatchString(s.Command) {
			fmt.Fprintf(s.Stderr, "fake host: failing %q as the test asked\n", f)
			return 1
		}
	}
	for _, list := range [][]handler{h.extra, h.builtin} {
		for _, c := range list {
			if m := c.re.FindStringSubmatch(s.Command); m != nil {
				if c.mutating {
					h.mutating = append(h.mutating, s.Command)
				}
				return c.do(m, s)
			}
		}
	}
	fmt.Fprintf(s.Stderr, "fake host: unknown command %s\n", strconv.Quote(s.Command))
	return 127
}

// Exit is 0 when ok, else 1: a shell test's exit status.
func Exit(ok bool) int {
	if ok {
		return 0
	}
	return 1
}

// SHA512 is the hex SHA-512 of s, as sha512sum prints it.
func SHA512(s string) string {
	sum := sha512.Sum512([]byte(s))
	return hex.EncodeToString(sum[:])
}

// exists reports whether anything is at path: a file, a directory (given
// or implied by a file below it) or a link.
func (h *Host) exists(path string) bool {
	if _, ok := h.Files[path]; ok {
		return true
	}
	for p := range h.Files {
		if strings.HasPrefix(p, path+"/") {
			return true
		}
	}
	return false
}

// Resolve follows the symbolic links among path's directories and at its
// end, as the kernel would.
func (h *Host) Resolve(path string) string {
	for range 40 {
		changed := false
		for p, f := range h.Files {
			if f.Link == "" {
				continue
			}
			if path == p || strings.HasPrefix(path, p+"/") {
				target := f.Link
				if !strings.HasPrefix(target, "/") {
					target = p[:strings.LastIndex(p, "/")+1] + target
				}
				path = target + strings.TrimPrefix(path, p)
				changed = true
				break
			}
		}
		if !changed {
			break
		}
	}
	return path
}

// removeAll deletes path and everything below it.
func (h *Host) removeAll(path string) {
	for p := range h.Files {
		if p == path || strings.HasPrefix(p, path+"/") {
			delete(h.Files, p)
		}
	}
}

// rename moves path and everything below it to to.
func (h *Host) rename(from, to string) {
	h.removeAll(to)
	for p, f := range h.Files {
		if p == from || strings.HasPrefix(p, from+"/") {
			delete(h.Files, p)
			h.Files[to+strings.TrimPrefix(p, from)] = f
		}
	}
}

// unquote undoes remote.ShellQuote for one word.
func unquote(w string) string {
	if len(w) >= 2 && w[0] == '\'' && w[len(w)-1] == '\'' {
		return strings.ReplaceAll(w[1:len(w)-1], `'\''`, "'")
	}
	return w
}

// word matches one shell word as remote.ShellQuote writes it.
const word = `('(?:[^']|'\\'')*'|[^' ;&|]+)`

// ownerFile is what install.Tarball leaves in an unpacked directory: the
// link it was unpacked for and the kept copy it came from.
const ownerFile = ".trafficlab-owner"

// releases are the directories right under parent unpacked for link,
// with their kept copies.
func (h *Host) releases(parent, link string) map[string]string {
	out := map[string]string{}
	for p, f := range h.Files {
		dir, name := path.Split(p)
		dir = strings.TrimSuffix(dir, "/")
		if name != ownerFile || path.Dir(dir) != parent {
			continue
		}
		if lines := strings.Split(f.Content, "\n"); len(lines) > 1 && lines[0] == link {
			out[dir] = lines[1]
		}
	}
	return out
}

func builtins(h *Host) []handler {
	type hd = handler
	re := regexp.MustCompile
	return []hd{
		{re(`^cat /etc/os-release$`), false, func(m []string, s sshtest.Session) int {
			fmt.Fprint(s.Stdout, h.OSRelease)
			return 0
		}},
		{re(`^systemd-detect-virt --container`), false, func(m []string, s sshtest.Session) int {
			fmt.Fprintln(s.Stdout, h.Virt)
			return Exit(h.Virt != "none")
		}},
		{re(`^uname -m$`), false, func(m []string, s sshtest.Session) int {
			fmt.Fprintln(s.Stdout, h.Machine)
			return 0
		}},
		{re(`^stat -c '%a %U:%G' -- ` + word + ` 2>/dev/null \|\| echo missing$`), false, func(m []string, s sshtest.Session) int {
			if f, ok := h.Files[unquote(m[1])]; ok {
				fmt.Fprintf(s.Stdout, "%s %s\n", f.Mode, f.Owner)
			} else {
				fmt.Fprintln(s.Stdout, "missing")
			}
			return 0
		}},
		{re(`^\[ -e (\S+) \] \|\| exit 44; exec cat -- (\S+)$`), false, func(m []string, s sshtest.Session) int {
			f, ok := h.Files[h.Resolve(unquote(m[1]))]
			if !ok {
				return 44
			}
			fmt.Fprint(s.Stdout, f.Content)
			return 0
		}},
		// remote.Upload: the content comes on stdin.
		{re(`^d=\$\(mktemp -d ` + word + `\) \|\| exit 1; umask 0[0-7]+; \{ cat > "\$d/f"(?: && chown ` + word + ` "\$d/f")? && chmod 0([0-7]+) "\$d/f" && mv -fT "\$d/f" ` + word + `; \}; rc=\$\?; rm -rf "\$d"; exit \$rc$`), true, func(m []string, s sshtest.Session) int {
			b, err := io.ReadAll(s.Stdin)
			if err != nil {
				fmt.Fprintln(s.Stderr, err)
				return 1
			}
			path := unquote(m[4])
			if dir := path[:strings.LastIndex(path, "/")]; dir != "" && !h.exists(dir) {
				fmt.Fprintf(s.Stderr, "mktemp: failed to create directory via template '%s': No such file or directory\n", unquote(m[1]))
				return 1
			}
			owner := "root:root"
			if m[2] != "" {
				user, group, ok := strings.Cut(unquote(m[2]), ":")
				if !h.Users[user] {
					fmt.Fprintf(s.Stderr, "chown: invalid user: %s\n", m[2])
					return 1
				}
				if !ok {
					group = "root"
				}
				owner = user + ":" + group
			}
			h.Files[path] = File{Content: string(b), Mode: m[3], Owner: owner}
			return 0
		}},
		{re(`^sh -c .*(rpm -q|dpkg-query).* sh (.+)$`), false, func(m []string, s sshtest.Session) int {
			for _, p := range strings.Fields(m[2]) {
				if !h.Packages[p] {
					fmt.Fprintln(s.Stdout, p)
				}
			}
			return 0
		}},
		{re(`^sh -c .*(dnf install|apt-get install).* sh (.+)$`), true, func(m []string, s sshtest.Session) int {
			for _, p := range strings.Fields(m[2]) {
				h.Packages[p] = true
				if f := h.Installed[p]; f != nil {
					f(h)
				}
			}
			return 0
		}},
		{re(`^(!? ?)test -e (\S+)$`), false, func(m []string, s sshtest.Session) int {
			return Exit(h.exists(unquote(m[2])) == (m[1] == ""))
		}},
		{re(`^! test -e ` + word + ` && ! test -L ` + word + `$`), false, func(m []string, s sshtest.Session) int {
			return Exit(!h.exists(unquote(m[1])))
		}},
		{re(`^cp -p (\S+) (\S+)$`), true, func(m []string, s sshtest.Session) int {
			h.Files[m[2]] = h.Files[m[1]]
			return 0
		}},
		{re(`^mkdir -p ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			p := unquote(m[1])
			if !h.exists(p) {
				h.Files[p] = File{Dir: true, Mode: "755", Owner: "root:root"}
			}
			return 0
		}},
		{re(`^rm -f ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			delete(h.Files, unquote(m[1]))
			return 0
		}},
		// A file and its rotated copies (nginx.RemoveLogs).
		{re(`^! ls -d ` + word + ` ` + word + `\.\* 2>/dev/null \| grep -q \.$`), false, func(m []string, s sshtest.Session) int {
			return Exit(len(h.withPrefix(unquote(m[1]))) == 0)
		}},
		{re(`^rm -f ` + word + ` ` + word + `\.\*$`), true, func(m []string, s sshtest.Session) int {
			for _, p := range h.withPrefix(unquote(m[1])) {
				delete(h.Files, p)
			}
			return 0
		}},
		{re(`^rm -rf ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			h.removeAll(unquote(m[1]))
			return 0
		}},
		{re(`^rmdir ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			h.removeAll(unquote(m[1]))
			return 0
		}},
		{re(`^ls -A ` + word + ` 2>/dev/null$`), false, func(m []string, s sshtest.Session) int {
			dir := unquote(m[1])
			if !h.exists(dir) {
				return 2
			}
			seen := map[string]bool{}
			for p := range h.Files {
				if rest, ok := strings.CutPrefix(p, dir+"/"); ok {
					seen[strings.Split(rest, "/")[0]] = true
				}
			}
			for n := range seen {
				fmt.Fprintln(s.Stdout, n)
			}
			return 0
		}},

		// Directories with an owner and mode.
		{re(`^test "\$\(stat -c '%U:%G %a' -- ` + word + ` 2>/dev/null\)" = '(\S+) (\d+)'$`), false, func(m []string, s sshtest.Session) int {
			f, ok := h.Files[unquote(m[1])]
			return Exit(ok && f.Dir && f.Owner == m[2] && f.Mode == m[3])
		}},
		{re(`^install -d -m 0(\d+) -o (\S+) -g (\S+) -- ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			if !h.Users[unquote(m[2])] {
				fmt.Fprintf(s.Stderr, "install: invalid user %s\n", m[2])
				return 1
			}
			h.Files[unquote(m[4])] = File{Dir: true, Mode: m[1], Owner: unquote(m[2]) + ":" + unquote(m[3])}
			return 0
		}},

		// System users.
		{re(`^(!? ?)id -u ` + word + ` >/dev/null 2>&1$`), false, func(m []string, s sshtest.Session) int {
			return Exit(h.Users[unquote(m[2])] == (m[1] == ""))
		}},
		{re(`^useradd --system --user-group --no-create-home --home-dir \S+ --shell /usr/sbin/nologin ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			h.Users[unquote(m[1])] = true
			return 0
		}},
		{re(`^userdel ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			delete(h.Users, unquote(m[1]))
			return 0
		}},

		// systemd.
		{re(`^systemctl daemon-reload(?: && systemctl restart (\S+))?$`), true, func(m []string, s sshtest.Session) int {
			if m[1] != "" {
				h.Active[m[1]] = true
			}
			return 0
		}},
		{re(`^systemctl is-enabled (\S+) 2>/dev/null; systemctl is-active \S+ 2>/dev/null; true$`), false, func(m []string, s sshtest.Session) int {
			unit := unquote(m[1])
			if e := h.Enabled[unit]; e != "" {
				fmt.Fprintln(s.Stdout, e)
			} else if h.exists("/etc/systemd/system/" + unit) {
				fmt.Fprintln(s.Stdout, "disabled")
			}
			fmt.Fprintln(s.Stdout, map[bool]string{true: "active", false: "inactive"}[h.Active[unit]])
			return 0
		}},
		{re(`^systemctl is-active --quiet ` + word + `$`), false, func(m []string, s sshtest.Session) int {
			return Exit(h.Active[unquote(m[1])])
		}},
		{re(`^systemctl (enable --now|start|restart|try-restart|disable --now|stop) ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			unit := unquote(m[2])
			switch m[1] {
			case "try-restart":
			case "enable --now":
				h.Enabled[unit] = "enabled"
				h.Active[unit] = true
			case "start", "restart":
				h.Active[unit] = true
			case "disable --now":
				h.Enabled[unit] = "disabled"
				h.Active[unit] = false
			case "stop":
				h.Active[unit] = false
			}
			return 0
		}},

		// Distribution tarballs (package install): download, checksum,
		// unpack, link.
		{re(`^curl -fsSL --retry 3 ` + word + `$`), false, func(m []string, s sshtest.Session) int {
			body, ok := h.URLs[unquote(m[1])]
			if !ok {
				fmt.Fprintln(s.Stderr, "curl: (22) The requested URL returned error: 404")
				return 22
			}
			fmt.Fprint(s.Stdout, body)
			return 0
		}},
		{re(`^mkdir -p ` + word + ` && curl -fsSL --retry 3 -o ` + word + ` ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			body, ok := h.URLs[unquote(m[3])]
			if !ok {
				fmt.Fprintln(s.Stderr, "curl: (22) The requested URL returned error: 404")
				return 22
			}
			h.Files[unquote(m[1])] = File{Dir: true, Mode: "755", Owner: "root:root"}
			h.Files[unquote(m[2])] = File{Content: body, Mode: "644", Owner: "root:root"}
			return 0
		}},
		{re(`^sha512sum -- ` + word + `$`), false, func(m []string, s sshtest.Session) int {
			f, ok := h.Files[unquote(m[1])]
			if !ok {
				fmt.Fprintf(s.Stderr, "sha512sum: %s: No such file or directory\n", m[1])
				return 1
			}
			fmt.Fprintf(s.Stdout, "%s  %s\n", SHA512(f.Content), unquote(m[1]))
			return 0
		}},
		{re(`^cd ` + word + ` 2>/dev/null && sha512sum -c --status ` + word + ` && cat ` + word + `$`), false, func(m []string, s sshtest.Session) int {
			dir := unquote(m[1])
			side, ok := h.Files[dir+"/"+unquote(m[2])]
			if !ok {
				return 1
			}
			sum, name, _ := strings.Cut(strings.TrimSpace(side.Content), "  ")
			f, ok := h.Files[dir+"/"+name]
			if !ok || SHA512(f.Content) != sum {
				return 1
			}
			fmt.Fprint(s.Stdout, side.Content)
			return 0
		}},
		{re(`^mv -f ` + word + ` ` + word + ` && echo ` + word + ` > ` + word + `$`), true, func(m []string, s sshtest.Session) int {
			h.rename(unquote(m[1]), unquote(m[2]))
			h.Files[unquote(m[4])] = File{Content: unquote(m[3]) + "\n", Mode: "644", Owner: "root:root"}
			return 0
		}},
		{re(`^test -s \S+ && test "\$\(cat ` + word + ` 2>/dev/null\)" = "\$\(cut -d' ' -f1 ` + word + ` 2>/dev/null\)"$`), false, func(m []string, s sshtest.Session) int {
			marker, ok1 := h.Files[unquote(m[1])]
			side, ok2 := h.Files[unquote(m[2])]
			sum, _, _ := strings.Cut(side.Content, " ")
			return Exit(ok1 && ok2 && strings.TrimSpace(marker.Content) == sum)
		}},
		// The unpack command: the archive's content is a list of
		// "path\ncontent" entries separated by "\x00", see Tarball.
		{re(`^\{ rm -rf ` + word + ` && mkdir -p \S+ && tar -xf ` + word + ` -C \S+ --strip-components=1 --no-same-owner && cut -d' ' -f1 ` + word + ` > \S+ && printf '%s\\n' ` + word + ` ` + word + ` > \S+ && rm -rf ` + word + ` && mv \S+ \S+; \}; rc=\$\?; \[ \$rc = 0 \] \|\| rm -rf \S+; exit \$rc$`), true, func(m []string, s sshtest.Session) int {
			tmp, archive, side, link, kept, dir := unquote(m[1]), unquote(m[2]), unquote(m[3]), unquote(m[4]), unquote(m[5]), unquote(m[6])
			a, ok := h.Files[archive]
			if !ok {
				fmt.Fprintf(s.Stderr, "tar: %s: Cannot open: No such file or directory\n", archive)
				return 2
			}
			h.removeAll(tmp)
			h.removeAll(dir)
			for path, content := range UnpackFake(a.Content) {
				h.Files[dir+"/"+path] = File{Content: content, Mode: "644", Owner: "root:root"}
			}
			sum, _, _ := strings.Cut(h.Files[side].Content, " ")
			h.Files[dir+"/.trafficlab-sha512"] = File{Content: sum + "\n", Mode: "644", Owner: "root:root"}
			h.Files[dir+"/"+ownerFile] = File{Content: link + "\n" + kept + "\n", Mode: "644", Owner: "root:root"}
			h.Files[dir] = File{Dir: true, Mode: "755", Owner: "root:root"}
			return 0
		}},
		// Releases unpacked for a link: install.Tarball.Remove.
		{re(`^! grep -qsxF -- ` + word + ` ` + word + `/\*/` + ownerFile + `$`), false, func(m []string, s sshtest.Session) int {
			return Exit(len(h.releases(unquote(m[2]), unquote(m[1]))) == 0)
		}},
		{re(`^for f in ` + word + `/\*/` + ownerFile + `; do \[ "\$\(head -n1 "\$f"\)" = ` + word + ` \] .*; done$`), true, func(m []string, s sshtest.Session) int {
			for dir, kept := range h.releases(unquote(m[1]), unquote(m[2])) {
				h.removeAll(dir)
				delete(h.Files, kept)
				delete(h.Files, kept+".sha512")
			}
			return 0
		}},
		{re(`^test "\$\(readlink -- ` + word + `\)" = ` + word + `$`), false, func(m []string, s sshtest.Session) int {
			f, ok := h.Files[unquote(m[1])]
			return Exit(ok && f.Link == unquote(m[2]))
		}},
		{re(`^if \[ -d ` + word + ` \] && \[ ! -L \S+ \]; then .*; fi; ln -sfn -- ` + word + ` \S+$`), true, func(m []string, s sshtest.Session) int {
			link := unquote(m[1])
			if f, ok := h.Files[link]; ok && f.Dir {
				fmt.Fprintf(s.Stderr, "%s is a directory\n", link)
				return 1
			}
			h.Files[link] = File{Link: unquote(m[2]), Mode: "777", Owner: "root:root"}
			return 0
		}},
	}
}

// FakeTarball makes the content of a fake distribution tarball: the
// fake's tar unpacks it into these files (paths relative to the top
// directory). Real tarballs cannot be unpacked by the fake.
func FakeTarball(files map[string]string) string {
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var b strings.Builder
	b.WriteString("fake-tarball\x00")
	for _, p := range paths {
		b.WriteString(p + "\n" + files[p] + "\x00")
	}
	return b.String()
}

// UnpackFake reads what FakeTarball wrote.
func UnpackFake(s string) map[string]string {
	out := map[string]string{}
	entries := strings.Split(strings.TrimPrefix(s, "fake-tarball\x00"), "\x00")
	for _, e := range entries {
		if p, c, ok := strings.Cut(e, "\n"); ok {
			out[p] = c
		}
	}
	return out
}

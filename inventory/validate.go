package inventory

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // zone names must validate the same on hosts without /usr/share/zoneinfo
	"unicode"
	"unicode/utf8"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
)

// checker runs the semantic checks on a decoded inventory. It shares the
// decoder's bookkeeping: lines to point at, and which paths were set, bad or
// probably misspelled.
type checker struct {
	*decoder
	inv *Inventory
	// roleTypo holds roles that an unknown role name was probably meant to
	// be, so "no host has the role" does not repeat that mistake.
	roleTypo map[Role]bool
}

// line finds the line of path, or of its nearest ancestor in the file (a
// default has no line of its own).
func (c *checker) line(path string) int { return lineOf(c.lines, path) }

func lineOf(lines map[string]int, path string) int {
	for p := path; ; p = parentPath(p) {
		if l := lines[p]; l > 0 {
			return l
		}
		if p == "" {
			return 1
		}
	}
}

func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i > 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// report adds a problem about the value at path, prefixed with the path.
func (c *checker) report(path, format string, args ...any) {
	c.bad[path] = true
	c.errf(c.line(path), "%s: "+format, append([]any{path}, args...)...)
}

// reportAt adds a problem that is not about one value (a role nobody has)
// at the line of path.
func (c *checker) reportAt(path, format string, args ...any) {
	c.errf(c.line(path), format, args...)
}

// missing reports whether a required value is absent for a reason not
// already reported.
func (c *checker) missing(path string) bool {
	return !c.set[path] && c.ok(path) && !c.typo[path]
}

// ok reports whether neither the value at path nor anything containing it
// has a problem yet; checks skip what is already reported.
func (c *checker) ok(path string) bool {
	for p := path; ; p = parentPath(p) {
		if c.bad[p] {
			return false
		}
		if p == "" {
			return true
		}
	}
}

func (c *checker) check() {
	c.roleTypo = map[Role]bool{}
	c.checkCluster()
	c.checkSSH()
	c.checkHosts()
	c.checkRoles()
	c.checkZooKeeper()
	c.checkKafka()
	c.checkPorts()
	c.checkLB()
	c.checkMySQL()
	c.artifact("filebeat", &c.inv.Filebeat.Artifact, &c.inv.Filebeat.SHA512)
	c.checkAlerts()
}

func (c *checker) checkAlerts() {
	a := c.inv.Alerts
	c.enum("alerts.speed", string(a.Speed), string(AlertsNormal), string(AlertsFast))
	// The URL is a secret: no message shows it, nor url.Parse's error,
	// which quotes it.
	if a.Webhook.IsSet() && c.ok("alerts.webhook") {
		u, err := url.Parse(a.Webhook.Value())
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.report("alerts.webhook", "not an http(s) URL like https://hooks.example.com/… (the value is a secret and not shown)")
		}
	}
}

var (
	clusterName = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	heapSize    = regexp.MustCompile(`^[1-9][0-9]*[kKmMgG]$`)
	versionRE   = regexp.MustCompile(`^(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})\.(0|[1-9][0-9]{0,3})$`)
	topicName   = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	propKey     = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)
	unixUser    = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	sqlName     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	hexSHA512   = regexp.MustCompile(`^[0-9a-fA-F]{128}$`)
)

func (c *checker) enum(path, value string, allowed ...string) {
	if !c.ok(path) || slices.Contains(allowed, value) {
		return
	}
	c.report(path, "%q is not one of %s%s", value, strings.Join(allowed, ", "), didYouMean(suggest(value, allowed)))
}

func (c *checker) port(path string, p int) {
	if c.ok(path) && (p < 1 || p > 65535) {
		c.report(path, "%d is not a port number (1-65535)", p)
	}
}

func (c *checker) heap(path, v string) {
	if c.ok(path) && !heapSize.MatchString(v) {
		c.report(path, "%q is not a heap size like 512m or 1g", v)
	}
}

func (c *checker) checkCluster() {
	cl := &c.inv.Cluster
	switch {
	case c.missing("cluster.name") && cl.Name == "":
		c.report("cluster.name", `required: a short name like "sc" (it becomes the Pulumi stack name)`)
	case c.ok("cluster.name") && !clusterName.MatchString(cl.Name):
		c.report("cluster.name", "%q is not a valid name: a lowercase letter, then up to 31 lowercase letters, digits or \"-\"", cl.Name)
	}
	if c.ok("cluster.domain") && !validDNSName(cl.Domain) {
		c.report("cluster.domain", "%q is not a valid DNS name", cl.Domain)
	}
	if c.ok("cluster.timezone") {
		if _, err := time.LoadLocation(cl.Timezone); err != nil || cl.Timezone == "Local" {
			c.report("cluster.timezone", "%q is not an IANA time zone name like Asia/Shanghai or UTC", cl.Timezone)
		}
	}
	c.enum("cluster.firewall", string(cl.Firewall), string(FirewallManaged), string(FirewallDisabled), string(FirewallUnmanaged))
	c.enum("cluster.selinux", string(cl.SELinux), string(SELinuxKeep), string(SELinuxEnforcing), string(SELinuxPermissive), string(SELinuxDisabled))
	for i, s := range cl.NTPServers {
		p := fmt.Sprintf("cluster.ntp_servers[%d]", i)
		if c.ok(p) && !validHostOrIP(s) {
			c.report(p, "%q is not a host name or IP address", s)
		}
	}
	if cl.PackageProxy != "" && c.ok("cluster.package_proxy") {
		u, err := url.Parse(cl.PackageProxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || !validHostOrIP(u.Hostname()) || !validPortText(u.Port(), true) || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(u.User.String(), `"\ `) {
			c.report("cluster.package_proxy", "%q is not a proxy URL like http://host:3128", cl.PackageProxy)
		}
	}
	if cl.Templates != "" && c.ok("cluster.templates") {
		dir := c.localPath(cl.Templates)
		switch fi, err := os.Stat(dir); {
		case err != nil:
			c.report("cluster.templates", "directory %q does not exist (relative paths start at the inventory's directory)", cl.Templates)
		case !fi.IsDir():
			c.report("cluster.templates", "%q is not a directory", cl.Templates)
		default:
			cl.Templates = dir
		}
	}
}

// localPath resolves a path written in the inventory: ~ is the user's home,
// and relative paths start at the inventory file's directory, so the file
// means the same thing whatever directory provision runs in.
func (c *checker) localPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(filepath.Dir(c.file), p)
}

func (c *checker) checkSSH() {
	s := &c.inv.SSH
	if c.ok("ssh.user") && !unixUser.MatchString(s.User) {
		c.report("ssh.user", "%q is not a valid user name", s.User)
	}
	c.port("ssh.port", s.Port)
	c.enum("ssh.host_key_check", string(s.HostKeyCheck), string(HostKeyAcceptNew), string(HostKeyStrict))
	if s.Bastion != "" && c.ok("ssh.bastion") {
		if _, _, _, err := parseBastion(s.Bastion); err != nil {
			c.report("ssh.bastion", "%q is not [user@]host[:port]: %v", s.Bastion, err)
		}
	}
	if c.ok("ssh.connect_timeout") && s.ConnectTimeout <= 0 {
		c.report("ssh.connect_timeout", "must be more than 0, got %v", s.ConnectTimeout)
	}
	c.password("ssh.sudo_password", s.SudoPassword, true, "sudo's password line")
	if s.Key != "" && c.ok("ssh.key") {
		c.checkKeyFile(s.Key)
	}
}

// checkKeyFile refuses a private key other users may read, as ssh does
// ("UNPROTECTED PRIVATE KEY FILE"); a missing one is left to the
// connection, which names it. The path is read as the SSH transport reads
// it: ~ is the home directory, anything else as given.
func (c *checker) checkKeyFile(key string) {
	p := key
	if rest, ok := strings.CutPrefix(key, "~/"); ok {
		home, err := os.UserHomeDir()
		if err != nil {
			return
		}
		p = filepath.Join(home, rest)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.IsDir() {
		return
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		c.report("ssh.key", "%q can be read by other users (mode %04o), so ssh refuses it: chmod 600 %s", key, perm, p)
	}
}

// parseBastion splits [user@]host[:port]; host may be a name, an IPv4
// address or a bracketed IPv6 address. port is 0 when not given.
func parseBastion(s string) (user, host string, port int, err error) {
	hostport := s
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, hostport = s[:i], s[i+1:]
		if !unixUser.MatchString(user) {
			return "", "", 0, fmt.Errorf("%q is not a valid user name", user)
		}
	}
	host = hostport
	if strings.HasPrefix(hostport, "[") || strings.Count(hostport, ":") == 1 {
		h, p, splitErr := splitHostPort(hostport)
		if splitErr != nil {
			return "", "", 0, splitErr
		}
		host = h
		if p != "" {
			if !validPortText(p, false) {
				return "", "", 0, fmt.Errorf("%q is not a port number (1-65535)", p)
			}
			port, _ = strconv.Atoi(p)
		}
	}
	if !validHostOrIP(host) {
		return "", "", 0, fmt.Errorf("%q is not a host name or IP address", host)
	}
	return user, host, port, nil
}

// splitHostPort is net.SplitHostPort that also accepts "[v6]" without a
// port.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return s[1 : len(s)-1], "", nil
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", "", fmt.Errorf("cannot split host and port")
	}
	return h, p, nil
}

func validPortText(p string, emptyOK bool) bool {
	if p == "" {
		return emptyOK
	}
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535 && strconv.Itoa(n) == p
}

// validLabel is an RFC 1123 host name label.
func validLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

func validDNSName(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for l := range strings.SplitSeq(s, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

func validHostOrIP(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return !strings.Contains(s, "%")
	}
	return validDNSName(s)
}

// hostAddr parses a host address; ok is false for anything the checks
// already reported.
func (c *checker) hostAddr(i int) (netip.Addr, bool) {
	if !c.ok(hostPath(i, "address")) || c.inv.Hosts[i].Address == "" {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(c.inv.Hosts[i].Address)
	return a.Unmap(), err == nil
}

// hostOK reports whether host i decoded as a mapping; a host that did not
// has already been reported and is skipped by every check.
func (c *checker) hostOK(i int) bool { return c.ok(fmt.Sprintf("hosts[%d]", i)) }

func (c *checker) checkHosts() {
	inv := c.inv
	if len(inv.Hosts) == 0 {
		if c.ok("hosts") && !c.typo["hosts"] {
			c.report("hosts", "required: list at least one host")
		}
		return
	}
	names := map[string]int{}
	addrs := map[netip.Addr]int{}
	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		if !c.hostOK(i) {
			continue
		}
		np, ap, rp := hostPath(i, "name"), hostPath(i, "address"), hostPath(i, "roles")
		switch {
		case h.Name == "":
			if c.missing(np) {
				c.report(np, "required")
			}
		case !c.ok(np):
		case !validLabel(h.Name):
			c.report(np, "%q is not a valid host name (letters, digits and \"-\", at most 63, not starting or ending with \"-\")", h.Name)
		default:
			key := strings.ToLower(h.Name)
			if j, dup := names[key]; dup {
				c.report(np, "%q is already the name of hosts[%d] (line %d)", h.Name, j, c.line(hostPath(j, "name")))
			} else {
				names[key] = i
			}
		}

		switch {
		case h.Address == "":
			if c.missing(ap) {
				c.report(ap, "required")
			}
		case !c.ok(ap):
		default:
			a, err := netip.ParseAddr(h.Address)
			switch {
			case err != nil || a.Zone() != "":
				c.report(ap, "%q is not an IP address", h.Address)
			case a.IsUnspecified() || a.IsMulticast():
				c.report(ap, "%s cannot be a host's address", h.Address)
			default:
				a = a.Unmap()
				if j, dup := addrs[a]; dup {
					c.report(ap, "%s is already the address of %s (line %d)", h.Address, hostLabel(inv.Hosts[j], j), c.line(hostPath(j, "address")))
				} else {
					addrs[a] = i
				}
				h.Address = a.String()
			}
		}

		if len(h.Roles) == 0 && c.ok(rp) && !c.typo[rp] {
			c.report(rp, "required: list at least one role, e.g. [kafka, web]")
		}
		seen := map[Role]int{}
		for j, r := range h.Roles {
			p := fmt.Sprintf("%s[%d]", rp, j)
			if !c.ok(p) {
				continue
			}
			seen[r]++
			switch {
			case !slices.Contains(Roles, r):
				c.unknownRole(p, r)
			case seen[r] == 2: // once per role, however often it repeats
				c.report(p, "role %q is listed twice", r)
			}
		}

		if c.set[hostPath(i, "ssh.user")] && c.ok(hostPath(i, "ssh.user")) && !unixUser.MatchString(h.SSH.User) {
			c.report(hostPath(i, "ssh.user"), "%q is not a valid user name", h.SSH.User)
		}
		if c.set[hostPath(i, "ssh.port")] {
			c.port(hostPath(i, "ssh.port"), h.SSH.Port)
		}
		if c.set[hostPath(i, "lb")] && !h.Has(RoleLB) {
			c.report(hostPath(i, "lb"), "only hosts with the lb role take lb settings")
		}
		if c.set[hostPath(i, "web")] && !h.Has(RoleWeb) {
			c.report(hostPath(i, "web"), "only hosts with the web role take web settings")
		}
		if h.Has(RoleLB) && c.ok(hostPath(i, "lb.priority")) && (h.LB.Priority < 1 || h.LB.Priority > 254) {
			c.report(hostPath(i, "lb.priority"), "%d is not a VRRP priority (1-254)", h.LB.Priority)
		}
		if h.Has(RoleWeb) && c.ok(hostPath(i, "web.weight")) && (h.Web.Weight < 1 || h.Web.Weight > 100) {
			c.report(hostPath(i, "web.weight"), "%d is not a weight (1-100)", h.Web.Weight)
		}
	}
}

func (c *checker) unknownRole(path string, r Role) {
	known := make([]string, len(Roles))
	for i, k := range Roles {
		known[i] = string(k)
	}
	var guesses []Role
	if a, ok := roleAliases[strings.ToLower(string(r))]; ok {
		guesses = a
	} else if s := suggest(string(r), known); s != "" {
		guesses = []Role{Role(s)}
	}
	if len(guesses) == 0 {
		c.report(path, "unknown role %q; known roles: %s", r, strings.Join(known, ", "))
		return
	}
	quoted := make([]string, len(guesses))
	for i, g := range guesses {
		c.roleTypo[g] = true
		quoted[i] = strconv.Quote(string(g))
	}
	c.report(path, "unknown role %q (did you mean %s?)", r, strings.Join(quoted, " or "))
}

// hostLabel names a host in messages: by name, or by position when it has
// none.
func hostLabel(h Host, i int) string {
	if h.Name != "" {
		return h.Name
	}
	return fmt.Sprintf("hosts[%d]", i)
}

// rolePath is the path of role r in host i's role list, for pointing at it.
func rolePath(h Host, i int, r Role) string {
	j := slices.Index(h.Roles, r)
	if j < 0 {
		return hostPath(i, "roles")
	}
	return fmt.Sprintf("hosts[%d].roles[%d]", i, j)
}

// Why each role must exist somewhere: the data path breaks without it.
var neededFor = []struct {
	role Role
	why  string
}{
	{RoleKafka, "to carry the access log stream"},
	{RoleWeb, "to serve the site and write the access log"},
	{RoleFilebeat, "to ship the access log to Kafka"},
	{RoleMySQL, "to store the traffic"},
	{RoleConsumer, "to turn the log stream into traffic figures"},
}

func (c *checker) checkRoles() {
	inv := c.inv
	if len(inv.Hosts) == 0 || !c.ok("hosts") {
		return
	}
	needed := neededFor
	if inv.Kafka.UsesZooKeeper() {
		needed = append([]struct {
			role Role
			why  string
		}{{RoleZooKeeper, "by Kafka in " + string(inv.Kafka.Mode) + " mode; or set kafka.mode: kraft"}}, needed...)
	}
	for _, n := range needed {
		if len(inv.HostsWith(n.role)) == 0 && !c.roleTypo[n.role] {
			c.reportAt("hosts", "no host has the role %q (needed %s)", n.role, n.why)
		}
	}
	mysqlAt := -1
	for i, h := range inv.Hosts {
		if !c.hostOK(i) {
			continue
		}
		if h.Has(RoleFilebeat) && !h.Has(RoleWeb) {
			c.report(rolePath(h, i, RoleFilebeat), "filebeat needs the web role on the same host (it reads the local nginx access log)")
		}
		// A migrated cluster (separate controllers) keeps the ensemble
		// until the role is taken off, the migration's last step.
		if h.Has(RoleZooKeeper) && inv.Kafka.Mode == KafkaKRaft && !inv.Kafka.SeparateControllers() && c.ok("kafka.mode") && c.ok("kafka.controllers") {
			c.report(rolePath(h, i, RoleZooKeeper), "role \"zookeeper\" is not used in kraft mode (kafka.mode: kraft)")
		}
		if h.Has(RoleMySQL) {
			if mysqlAt >= 0 {
				c.report(rolePath(h, i, RoleMySQL), "%s already has the mysql role; trafficlab runs a single database", hostLabel(inv.Hosts[mysqlAt], mysqlAt))
			} else {
				mysqlAt = i
			}
		}
	}
}

func (c *checker) checkZooKeeper() {
	inv := c.inv
	zk := &inv.ZooKeeper
	c.heap("zookeeper.heap", zk.Heap)
	c.artifact("zookeeper", &zk.Artifact, &zk.SHA512)
	if !inv.Kafka.UsesZooKeeper() {
		return
	}
	n := len(inv.HostsWith(RoleZooKeeper))
	switch {
	case n == 0: // reported by checkRoles
	case n == 1 && zk.Toy:
	case n == 1:
		c.reportAt("hosts", "1 host has the zookeeper role; an ensemble needs an odd number of at least 3 so a majority survives a failure (set zookeeper.toy: true to run a single node anyway)")
	case n%2 == 0:
		c.reportAt("hosts", "%d hosts have the zookeeper role; an ensemble needs an odd number of at least 3 (%d survive no more failures than %d)", n, n, n-1)
	}
}

type version struct{ major, minor, patch int }

func parseVersion(s string) (version, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return version{}, false
	}
	var v version
	v.major, _ = strconv.Atoi(m[1])
	v.minor, _ = strconv.Atoi(m[2])
	v.patch, _ = strconv.Atoi(m[3])
	return v, true
}

// CompareVersions compares two release numbers like 3.9.2 by their major
// and minor parts only (the protocol a release speaks: 3.9.0 and 3.9.2
// are equal), and patch too when patch is true; ok is false when either is
// no release number.
func CompareVersions(a, b string, patch bool) (int, bool) {
	x, xok := parseVersion(a)
	y, yok := parseVersion(b)
	if !xok || !yok {
		return 0, false
	}
	parts := [][2]int{{x.major, y.major}, {x.minor, y.minor}}
	if patch {
		parts = append(parts, [2]int{x.patch, y.patch})
	}
	for _, d := range parts {
		if d[0] != d[1] {
			return cmp.Compare(d[0], d[1]), true
		}
	}
	return 0, true
}

func (c *checker) checkKafka() {
	inv := c.inv
	k := &inv.Kafka
	v, vok := parseVersion(k.Version)
	if !vok && c.ok("kafka.version") {
		c.report("kafka.version", "%q is not a version like 3.9.1", k.Version)
	}
	c.enum("kafka.mode", string(k.Mode), string(KafkaZooKeeper), string(KafkaMigrating), string(KafkaKRaft))
	c.enum("kafka.controllers", string(k.Controllers), string(ControllersCombined), string(ControllersSeparate))
	modePath := "kafka.mode"
	if !c.set[modePath] {
		modePath = "kafka.version"
	}
	if vok && c.ok("kafka.version") && c.ok("kafka.mode") {
		switch {
		case v.major < 3:
			c.report("kafka.version", "Kafka %s is too old; trafficlab runs Kafka 3.x and 4.x", k.Version)
		case k.Mode == KafkaZooKeeper && v.major >= 4:
			c.report(modePath, "zookeeper mode is gone from Kafka %s (removed in 4.0); use kafka.mode: kraft or a 3.x kafka.version", k.Version)
		case k.Mode == KafkaMigrating && v.major >= 4:
			c.report(modePath, "the migration from ZooKeeper runs on Kafka 3.9, the last release with both; kafka.version is %s (upgrade to 4 after kafka.mode: kraft)", k.Version)
		case k.Mode != KafkaZooKeeper && v.major == 3 && v.minor < 9:
			c.report(modePath, "%s mode needs Kafka 3.9 or later, kafka.version is %s", k.Mode, k.Version)
		case k.Mode == KafkaKRaft && v.major >= 4 && len(inv.HostsWith(RoleZooKeeper)) > 0:
			c.report("kafka.version", "Kafka %s has no ZooKeeper, and hosts here still have the zookeeper role (a migration not yet finalised on 3.9 needs it): finish the migration on 3.9 and take the zookeeper roles off, then upgrade", k.Version)
		}
	}
	if c.ok("kafka.mode") && c.ok("kafka.controllers") && c.set["kafka.controllers"] {
		switch {
		case k.Mode == KafkaZooKeeper:
			c.report("kafka.controllers", "zookeeper mode has no KRaft controllers; kafka.controllers is for migrating and kraft")
		case k.Mode == KafkaMigrating && k.Controllers == ControllersCombined:
			c.report("kafka.controllers", "a migration from ZooKeeper needs KRaft controllers in processes of their own (Kafka does not migrate to combined nodes): use separate, the default in migrating mode")
		}
	}
	c.artifact("kafka", &k.Artifact, &k.SHA512)
	c.heap("kafka.heap", k.Heap)
	c.enum("kafka.security", string(k.Security), string(KafkaPlaintext), string(KafkaTLS), string(KafkaSASLSSL))
	c.checkKafkaCA()

	t := &k.Topic
	if c.ok("kafka.topic.name") && (!topicName.MatchString(t.Name) || t.Name == "." || t.Name == "..") {
		c.report("kafka.topic.name", "%q is not a valid topic name (letters, digits, \".\", \"_\", \"-\")", t.Name)
	}
	if c.ok("kafka.topic.partitions") && t.Partitions < 0 {
		c.report("kafka.topic.partitions", "must be 0 (one per broker) or more, got %d", t.Partitions)
	}
	brokers := len(inv.HostsWith(RoleKafka))
	switch {
	case !c.ok("kafka.topic.replication"):
	case t.Replication < 1:
		c.report("kafka.topic.replication", "must be at least 1, got %d", t.Replication)
	case brokers > 0 && t.Replication > brokers:
		c.report("kafka.topic.replication", "%d replicas need %d brokers, but %s the kafka role", t.Replication, t.Replication, hostCount(brokers))
	}
	switch {
	case !c.ok("kafka.topic.min_insync"):
	case t.MinInsync < 1:
		c.report("kafka.topic.min_insync", "must be at least 1, got %d", t.MinInsync)
	case t.Replication >= 1 && t.MinInsync > t.Replication && c.ok("kafka.topic.replication"):
		c.report("kafka.topic.min_insync", "%d is more than kafka.topic.replication (%d); producers with acks=all could never write", t.MinInsync, t.Replication)
	}
	if c.ok("kafka.retention.hours") && (k.Retention.Hours == 0 || k.Retention.Hours < -1) {
		c.report("kafka.retention.hours", "want -1 (no limit) or at least 1, got %d", k.Retention.Hours)
	}
	if c.ok("kafka.retention.bytes") && (k.Retention.Bytes == 0 || k.Retention.Bytes < -1) {
		c.report("kafka.retention.bytes", "want -1 (no limit) or at least 1, got %d", k.Retention.Bytes)
	}
	for _, key := range sortedKeys(k.Properties) {
		p := "kafka.properties[" + key + "]"
		switch {
		case !propKey.MatchString(key):
			c.report(p, "%q is not a property name", key)
		case strings.ContainsAny(k.Properties[key], "\r\n"):
			c.report(p, "value spans lines; server.properties takes one line per property")
		case key == "log.dirs" || key == "log.dir":
			c.logDirs(p, k.Properties[key])
		}
	}
}

// checkKafkaCA reads the user's CA (kafka.ca), which must be a CA whose
// key is given, in files only the user can read.
func (c *checker) checkKafkaCA() {
	ca := &c.inv.Kafka.CA
	if ca.Cert == "" && ca.Key == "" {
		return
	}
	switch {
	case ca.Cert == "":
		c.report("kafka.ca.key", "kafka.ca.key needs kafka.ca.cert, the CA's certificate")
		return
	case !c.inv.Kafka.TLS() && c.ok("kafka.security"):
		c.report("kafka.ca.cert", "a CA is used only with kafka.security tls or sasl_ssl, not %s", c.inv.Kafka.Security)
		return
	}
	var text []byte
	for _, f := range []struct {
		path string
		p    *string
	}{{"kafka.ca.cert", &ca.Cert}, {"kafka.ca.key", &ca.Key}} {
		if *f.p == "" || !c.ok(f.path) {
			continue
		}
		full := c.localPath(*f.p)
		b, err := os.ReadFile(full)
		if err != nil {
			c.report(f.path, "cannot read %q: %v (relative paths start at the inventory's directory)", *f.p, errors.Unwrap(err))
			return
		}
		*f.p = full
		text = append(text, b...)
		text = append(text, '\n')
	}
	// The key: in kafka.ca.key, or in the certificate's file.
	keyPath, keyFile := "kafka.ca.key", ca.Key
	if ca.Key == "" {
		keyPath, keyFile = "kafka.ca.cert", ca.Cert
	}
	if _, err := kafkatls.ParseCA(text, nil); err != nil {
		c.report(keyPath, "not a usable CA: %v", err)
		return
	}
	if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		c.report(keyPath, "the CA's private key can be read by other users (mode %04o): chmod 600 %s", fi.Mode().Perm(), keyFile)
		return
	}
	ca.PEM = NewSecret(string(text))
}

// TrafficlabDataDir is where trafficlab keeps the data of what it runs;
// the brokers' default log.dirs is its kafka directory.
const TrafficlabDataDir = "/var/lib/trafficlab"

// logDirPath is what a log directory may be spelt with: it reaches root's
// commands (install -d, chown -R, and rm -rf at destroy).
var logDirPath = regexp.MustCompile(`^(/[A-Za-z0-9._@+=-]+)+$`)

// systemDirs are directories the system, its packages or trafficlab's
// other roles own: a log directory may be none of them, nor hold one, nor
// be inside one of systemTrees. Kafka's user would get them (chown -R)
// and destroy would delete them.
var (
	systemDirs = []string{
		"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/lost+found",
		"/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/snap", "/srv", "/sys", "/tmp",
		"/usr", "/var", "/var/cache", "/var/lib", "/var/local", "/var/lock", "/var/log", "/var/mail",
		"/var/opt", "/var/run", "/var/spool", "/var/tmp", "/var/www", "/opt/kafka",
	}
	systemTrees = []string{
		"/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root", "/run",
		"/sbin", "/sys", "/tmp", "/usr", "/var/tmp", "/opt/trafficlab",
	}
	// Directly inside these, every directory is a package's (/var/lib/mysql,
	// /var/log/nginx).
	packageParents = []string{"/var", "/var/lib", "/var/log", "/var/cache", "/var/spool"}
)

func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// logDirs checks each directory of a log.dirs value (see logDirProblem),
// one complaint per value.
func (c *checker) logDirs(path, value string) {
	var dirs []string
	for _, d := range strings.Split(value, ",") {
		d = strings.TrimSpace(d)
		if why := logDirProblem(d, dirs); why != "" {
			c.report(path, "%s: %s; give Kafka directories of its own, like %s/kafka or /data/kafka", short(d), why, TrafficlabDataDir)
			return
		}
		dirs = append(dirs, d)
	}
}

// logDirProblem says what is wrong with d as a log directory beside
// others: it must be absolute and clean, plainly spelt, not a system
// directory, and not nested with another. "" means nothing.
func logDirProblem(d string, others []string) string {
	switch {
	case d == "":
		return "an empty directory"
	case !strings.HasPrefix(d, "/"):
		return "not an absolute path"
	case d == "/":
		return "the root directory"
	case filepath.Clean(d) != d:
		return "not a clean path (no .., //, or trailing /)"
	case !logDirPath.MatchString(d):
		return "only letters, digits and ._@+=- may name a directory"
	case slices.Contains(systemDirs, d) || slices.ContainsFunc(systemDirs, func(s string) bool { return within(s, d) }):
		return "a system directory, or one that holds one"
	case slices.ContainsFunc(systemTrees, func(s string) bool { return within(d, s) }):
		return "inside a system directory"
	case slices.Contains(packageParents, filepath.Dir(d)):
		return "a directory of the system's packages"
	case within(d, TrafficlabDataDir) && !within(d, TrafficlabDataDir+"/kafka"):
		return "a directory of trafficlab's other roles"
	}
	for _, o := range others {
		if within(d, o) || within(o, d) {
			return "the same as or nested with " + o
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func hostCount(n int) string {
	if n == 1 {
		return "only 1 host has"
	}
	return fmt.Sprintf("only %d hosts have", n)
}

// artifact checks and normalizes section.artifact and section.sha512: after
// it, the artifact is an http(s) URL or an absolute local path.
func (c *checker) artifact(section string, a, sha *string) {
	ap, sp := section+".artifact", section+".sha512"
	if *sha != "" && c.ok(sp) {
		if !hexSHA512.MatchString(*sha) {
			c.report(sp, "want the 128 hex digits of a SHA-512 (as sha512sum prints them), got %d characters", len(*sha))
		} else {
			*sha = strings.ToLower(*sha)
		}
	}
	if *a == "" || !c.ok(ap) {
		return
	}
	if scheme, _, isURL := strings.Cut(*a, "://"); isURL {
		u, err := url.Parse(*a)
		switch {
		case err != nil:
			c.report(ap, "%q is not a valid URL", *a)
		case scheme == "https" || scheme == "http":
			if u.Hostname() == "" {
				c.report(ap, "%q has no host", *a)
			} else if !plainFileName(path.Base(u.Path)) || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.HasSuffix(u.Path, "/") {
				// The name after the last / becomes the file kept on
				// the hosts (and removed at destroy).
				c.report(ap, "%q does not end in a plain file name, like kafka_2.13-3.9.1.tgz (no query or fragment)", *a)
			} else if !c.artifactName(ap, section, path.Base(u.Path)) {
			} else if scheme == "http" && *sha == "" && c.ok(sp) {
				// https downloads are checked against the .sha512 file
				// published next to them; over plain http that file could
				// be forged along with the download.
				c.report(ap, "a plain http:// download needs %s (or use https://)", sp)
			}
		case scheme == "file":
			if (u.Host != "" && u.Host != "localhost") || !filepath.IsAbs(u.Path) {
				c.report(ap, "%q: a file URL needs an absolute path, like file:///srv/kafka.tgz", *a)
				return
			}
			c.localArtifact(ap, a, u.Path)
		default:
			c.report(ap, "%q: want an https:// URL, a file:// URL or a local path", *a)
		}
		return
	}
	c.localArtifact(ap, a, *a)
}

// artifactPrefixes are how each distribution's file name starts: the
// name, less its extension, becomes the directory unpacked under /opt,
// which destroy removes, so it must be the component's and no other
// program's (google.tgz would be /opt/google).
var artifactPrefixes = map[string][]string{
	"kafka":     {"kafka"},
	"zookeeper": {"apache-zookeeper", "zookeeper"},
	"filebeat":  {"filebeat"},
}

// artifactName reports, and returns false, when name does not start as
// section's distributions do.
func (c *checker) artifactName(path, section, name string) bool {
	prefixes := artifactPrefixes[section]
	if len(prefixes) == 0 || slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
		return true
	}
	c.report(path, "the file name %q must start with %s: it names the directory unpacked under /opt, which destroy removes", name, strings.Join(prefixes, " or "))
	return false
}

var fileNameRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)

// plainFileName is a name the hosts may keep a downloaded file under.
func plainFileName(s string) bool {
	return s != "." && s != ".." && fileNameRE.MatchString(s)
}

func (c *checker) localArtifact(path string, a *string, p string) {
	full := c.localPath(p)
	if !plainFileName(filepath.Base(full)) {
		c.report(path, "%q is not a plain file name, like kafka_2.13-3.9.1.tgz", filepath.Base(full))
		return
	}
	if !c.artifactName(path, strings.TrimSuffix(path, ".artifact"), filepath.Base(full)) {
		return
	}
	switch fi, err := os.Stat(full); {
	case err != nil:
		c.report(path, "file %q does not exist (relative paths start at the inventory's directory)", p)
	case fi.IsDir():
		c.report(path, "%q is a directory, not a file", p)
	default:
		*a = full
	}
}

// portUser is something on a host that listens on a port.
type portUser struct {
	name string // role, or "ssh"
	port int
	path string // the setting that chooses the port; "" for fixed ports
}

// listeners lists what listens on host i, with the path of the setting that
// chose each port, if any.
func (c *checker) listeners(i int) []portUser {
	var out []portUser
	for _, l := range c.inv.Listeners(c.inv.Hosts[i]) {
		u := portUser{l.Role, l.Port, l.Setting}
		if l.Role == "ssh" && c.set[hostPath(i, "ssh.port")] {
			u.path = hostPath(i, "ssh.port")
		}
		out = append(out, u)
	}
	return out
}

// checkPorts finds two things on one host wanting the same port. Ports are
// mostly global settings, so one problem names every host with the clash.
func (c *checker) checkPorts() {
	inv := c.inv
	type clash struct {
		a, b  portUser
		hosts []string
		first int
	}
	var clashes []*clash
	byKey := map[string]*clash{}
	for i, h := range inv.Hosts {
		if !c.hostOK(i) {
			continue
		}
		ls := c.listeners(i)
		for x := range ls {
			for y := x + 1; y < len(ls); y++ {
				a, b := ls[x], ls[y]
				if a.port != b.port || a.port < 1 || a.port > 65535 || a.name == b.name {
					continue
				}
				key := fmt.Sprintf("%s/%s/%d/%s/%s", a.name, b.name, a.port, a.path, b.path)
				cl := byKey[key]
				if cl == nil {
					cl = &clash{a: a, b: b, first: i}
					byKey[key] = cl
					clashes = append(clashes, cl)
				}
				cl.hosts = append(cl.hosts, hostLabel(h, i))
			}
		}
	}
	for _, cl := range clashes {
		anchor := hostPath(cl.first, "roles")
		change := cl.a.path
		if change == "" || (cl.a.name == "ssh" && cl.b.path != "") {
			// Rather move the role than sshd.
			change = cl.b.path
		}
		if c.set[change] {
			anchor = change
		}
		on := strings.Join(cl.hosts, ", ")
		if cl.a.name == "web" && cl.b.name == "lb" {
			c.report(anchor, "web and lb both listen on port %d on %s; set web.port to a different port, e.g. %d", cl.a.port, on, c.freePort(cl.a.port))
			continue
		}
		c.report(anchor, "%s and %s both listen on port %d on %s; change %s", cl.a.name, cl.b.name, cl.a.port, on, change)
	}
}

// freePort suggests a web port that nothing else uses on the web hosts.
func (c *checker) freePort(taken int) int {
	used := map[int]bool{taken: true}
	for i, h := range c.inv.Hosts {
		if !h.Has(RoleWeb) {
			continue
		}
		for _, l := range c.listeners(i) {
			if l.name != "web" {
				used[l.port] = true
			}
		}
	}
	p := 8080
	for used[p] {
		p++
	}
	return p
}

func (c *checker) checkLB() {
	inv := c.inv
	lb := &inv.LB
	c.port("web.port", inv.Web.Port)
	c.port("lb.port", lb.Port)
	c.port("dashboard.port", inv.Dashboard.Port)
	c.enum("lb.algorithm", string(lb.Algorithm), string(RoundRobin), string(Weighted), string(IPHash), string(LeastConn))
	if c.ok("lb.virtual_router_id") && (lb.VirtualRouterID < 1 || lb.VirtualRouterID > 255) {
		c.report("lb.virtual_router_id", "%d is not a VRRP router id (1-255)", lb.VirtualRouterID)
	}
	if pw := lb.AuthPass.Value(); pw != "" && c.ok("lb.auth_pass") {
		// keepalived.conf takes it raw: it must be one word of the file.
		// keepalived uses only the first 8 characters, so longer ones
		// would pass for shorter ones.
		switch n := len(pw); {
		case n > 8:
			c.report("lb.auth_pass", "keepalived uses at most 8 characters, this one has %d", n)
		case strings.IndexFunc(pw, notKeepalivedWord) >= 0:
			c.report("lb.auth_pass", "must be one word of keepalived.conf: printable ASCII without spaces, quotes, backslashes, braces, $, # or ! (which start comments)")
		}
	}

	// Priorities must differ or keepalived elects by address, which is
	// rarely what the user meant.
	prio := map[int]int{}
	var lbHosts []int
	for i, h := range inv.Hosts {
		if !c.hostOK(i) || !h.Has(RoleLB) {
			continue
		}
		lbHosts = append(lbHosts, i)
		pp := hostPath(i, "lb.priority")
		if !c.ok(pp) {
			continue
		}
		if j, dup := prio[h.LB.Priority]; dup {
			c.report(pp, "%d is already the priority of %s (line %d); each lb host needs its own", h.LB.Priority, hostLabel(inv.Hosts[j], j), c.line(hostPath(j, "lb.priority")))
		} else {
			prio[h.LB.Priority] = i
		}
	}

	if !c.ok("lb.vip") {
		return
	}
	if lb.VIP == "" {
		if len(lbHosts) > 0 && !c.typo["lb.vip"] {
			i := lbHosts[0]
			c.report(rolePath(inv.Hosts[i], i, RoleLB), "the lb role needs lb.vip, the address keepalived moves between the lb hosts (e.g. 192.168.0.200/24)")
		}
		return
	}
	if len(lbHosts) == 0 {
		c.report("lb.vip", "set, but no host has the lb role")
		return
	}
	vip, err := netip.ParsePrefix(lb.VIP)
	if err != nil || vip.Addr().Zone() != "" {
		if a, aerr := netip.ParseAddr(lb.VIP); aerr == nil && a.Zone() == "" {
			c.report("lb.vip", "%q has no prefix length; write it like %s/24 (the prefix is the subnet keepalived puts it on)", lb.VIP, lb.VIP)
		} else {
			c.report("lb.vip", "%q is not an address with a prefix length, like 192.168.0.200/24", lb.VIP)
		}
		return
	}
	addr, subnet := vip.Addr().Unmap(), vip.Masked()
	if addr.Is4() && vip.Bits() < 31 {
		switch addr {
		case subnet.Addr():
			c.report("lb.vip", "%s is the network address of %s, not a usable address", addr, subnet)
			return
		case broadcast(subnet):
			c.report("lb.vip", "%s is the broadcast address of %s, not a usable address", addr, subnet)
			return
		}
	}
	for i, h := range inv.Hosts {
		if a, ok := c.hostAddr(i); ok && a == addr {
			c.report("lb.vip", "%s is the address of host %s; the VIP must be an unused address", addr, hostLabel(h, i))
		}
	}
	for _, i := range lbHosts {
		h := inv.Hosts[i]
		if a, ok := c.hostAddr(i); ok && !subnet.Contains(a) {
			c.report("lb.vip", "lb host %s (%s) is outside %s, the subnet of the VIP; keepalived can only move the VIP between hosts on that subnet", hostLabel(h, i), a, subnet)
		}
	}
}

// broadcast is the last address of an IPv4 prefix.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// notKeepalivedWord is what may not be in a word of keepalived.conf:
// anything but printable ASCII, blanks, the comment starters # and !,
// quotes, the escape, block braces and $ (parameter substitution).
func notKeepalivedWord(r rune) bool {
	return r <= ' ' || r > '~' || strings.ContainsRune("#!\"'\\{}$", r)
}

// password reports a secret that cannot be passed on as it must: a
// control character (a line break ends sudo's password line and cannot be
// in a MySQL option file); quoteOK false also refuses the double quote,
// which a double-quoted MySQL option value cannot hold. Messages never
// show the value.
func (c *checker) password(path string, s Secret, quoteOK bool, why string) {
	pw := s.Value()
	if pw == "" || !c.ok(path) {
		return
	}
	switch {
	case strings.IndexFunc(pw, unicode.IsControl) >= 0 || !utf8.ValidString(pw):
		c.report(path, "holds a line break or another control character (or is not UTF-8), which %s cannot carry; choose another", why)
	case !quoteOK && strings.Contains(pw, `"`):
		c.report(path, "holds a double quote, which %s cannot hold; choose another", why)
	}
}

func (c *checker) checkMySQL() {
	m := &c.inv.MySQL
	c.password("mysql.password", m.Password, true, "the consumer's configuration")
	c.password("mysql.root_password", m.RootPassword, false, "the root client's MySQL option file")
	if c.ok("mysql.database") && (!sqlName.MatchString(m.Database) || len(m.Database) > 64) {
		c.report("mysql.database", "%q is not a plain database name (letters, digits and _, at most 64)", m.Database)
	}
	if c.ok("mysql.user") && (!sqlName.MatchString(m.User) || len(m.User) > 32) {
		c.report("mysql.user", "%q is not a plain user name (letters, digits and _, at most 32)", m.User)
	}
}

package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// A field of the inventory whose value reaches a shell, a configuration
// file or a path on the hosts, and where in base a value for it goes.
type field struct {
	path   string
	line   int
	yaml   func(v string) string // the inventory with v (YAML-quoted) there
	secret bool                  // messages must not show the value
}

func at(line int, text string) func(string) string {
	return func(v string) string { return edit(map[int]string{line: strings.ReplaceAll(text, "V", v)}) }
}

func after(text string) func(string) string {
	return func(v string) string { return plus(strings.ReplaceAll(text, "V", v)) }
}

var fields = map[string]field{
	"cluster.name":          {"cluster.name", 2, at(2, "  name: V"), false},
	"cluster.domain":        {"cluster.domain", 3, at(2, "  name: sc\n  domain: V"), false},
	"cluster.timezone":      {"cluster.timezone", 3, at(2, "  name: sc\n  timezone: V"), false},
	"cluster.selinux":       {"cluster.selinux", 3, at(2, "  name: sc\n  selinux: V"), false},
	"cluster.ntp_servers":   {"cluster.ntp_servers[0]", 3, at(2, "  name: sc\n  ntp_servers: [V]"), false},
	"cluster.package_proxy": {"cluster.package_proxy", 3, at(2, "  name: sc\n  package_proxy: V"), false},
	"ssh.user":              {"ssh.user", 28, after("ssh:\n  user: V\n"), false},
	"ssh.bastion":           {"ssh.bastion", 28, after("ssh:\n  bastion: V\n"), false},
	"ssh.sudo_password":     {"ssh.sudo_password", 28, after("ssh:\n  sudo_password: V\n"), true},
	"host name":             {"hosts[0].name", 4, at(4, "  - name: V"), false},
	"host address":          {"hosts[0].address", 5, at(5, "    address: V"), false},
	"host role":             {"hosts[0].roles[4]", 6, at(6, "    roles: [zookeeper, kafka, web, filebeat, V]"), false},
	"host ssh user":         {"hosts[0].ssh.user", 7, at(6, "    roles: [zookeeper, kafka, web, filebeat]\n    ssh: {user: V}"), false},
	"host ssh port":         {"hosts[0].ssh.port", 7, at(6, "    roles: [zookeeper, kafka, web, filebeat]\n    ssh: {port: V}"), false},
	"kafka.version":         {"kafka.version", 23, at(23, "  version: V"), false},
	"kafka.artifact":        {"kafka.artifact", 24, at(23, "  version: 3.9.1\n  artifact: V"), false},
	"kafka.sha512":          {"kafka.sha512", 24, at(23, "  version: 3.9.1\n  sha512: V"), false},
	"kafka.heap":            {"kafka.heap", 24, at(23, "  version: 3.9.1\n  heap: V"), false},
	"kafka.topic.name":      {"kafka.topic.name", 24, at(24, "  topic: {name: V, replication: 3, min_insync: 2}"), false},
	"log.dirs":              {"kafka.properties[log.dirs]", 24, at(23, "  version: 3.9.1\n  properties: {log.dirs: V}"), false},
	"log.dir":               {"kafka.properties[log.dir]", 24, at(23, "  version: 3.9.1\n  properties: {log.dir: V}"), false},
	"property value":        {"kafka.properties[listeners]", 24, at(23, "  version: 3.9.1\n  properties: {listeners: V}"), false},
	"zookeeper.artifact":    {"zookeeper.artifact", 28, after("zookeeper:\n  artifact: V\n"), false},
	"zookeeper.heap":        {"zookeeper.heap", 28, after("zookeeper:\n  heap: V\n"), false},
	"filebeat.artifact":     {"filebeat.artifact", 28, after("filebeat:\n  artifact: V\n"), false},
	"web.port":              {"web.port", 28, after("web:\n  port: V\n"), false},
	"lb.vip":                {"lb.vip", 26, at(26, "  vip: V"), false},
	"lb.auth_pass":          {"lb.auth_pass", 27, after("  auth_pass: V\n"), true},
	"mysql.database":        {"mysql.database", 28, after("mysql:\n  database: V\n"), false},
	"mysql.user":            {"mysql.user", 28, after("mysql:\n  user: V\n"), false},
	"mysql.password":        {"mysql.password", 28, after("mysql:\n  password: V\n"), true},
	"mysql.root_password":   {"mysql.root_password", 28, after("mysql:\n  root_password: V\n"), true},
	"alerts.webhook":        {"alerts.webhook", 28, after("alerts:\n  webhook: V\n"), true},
}

// shellish is what an attacker or a slip puts into a value bound for a
// shell or a configuration file.
var shellish = []string{"$(touch /tmp/pwned)", "`id`", "a;rm -rf /", "a b", "a\nb", "a'b", `a"b`, "a#b", "../../etc"}

// hostile lists, per field, values that must be refused at the field's
// line: the shellish ones unless the field is listed in mayHold, and the
// field's own.
var hostile = map[string][]string{
	"cluster.name":          shellish,
	"cluster.domain":        shellish,
	"cluster.timezone":      append(shellish, "/etc/passwd", "Local"),
	"cluster.selinux":       shellish,
	"cluster.ntp_servers":   shellish,
	"cluster.package_proxy": append(shellish, `http://h:3128/?"x`, "http://h:3128/#x", "http://h:3128/a;b", "ftp://h:21"),
	"ssh.user":              append(shellish, "-oProxyCommand=id", "Root"),
	"ssh.bastion":           append(shellish, "-oProxyCommand=id", "h:0", "u;id@h"),
	"ssh.sudo_password":     {"a\nb", "a\rb", "a\x00b", "a\tb"},
	"host name":             append(shellish, "-x", "kafka_1"),
	"host address":          append(shellish, "localhost", "10.0.0.1/24", "0.0.0.0", "fe80::1%eth0"),
	"host role":             shellish,
	"host ssh user":         shellish,
	"host ssh port":         {"22;id", "0", "65536", "-1"},
	"kafka.version":         append(shellish, "3.9.1;id", "3.9"),
	"kafka.artifact": {"https://h/k.tgz?x=$(id)", "https://h/k.tgz#x", "https://h/..", "https://h/", "https://h/a;b.tgz",
		"https://h/a%20b.tgz", "ftp://h/k.tgz", "file://h/k.tgz", "./no/such.tgz", "https://h/google.tgz", "https://h/trafficlab.tgz"},
	"kafka.sha512":        append(shellish, strings.Repeat("g", 128)),
	"kafka.heap":          append(shellish, "1g;id", "1t"),
	"kafka.topic.name":    append(shellish, ".."),
	"log.dirs":            {"/", "/, /etc", "/etc", "/var/lib", "relative/dir", "/data/../etc", "/data/k;id", "/data/k b", "/var/lib/mysql", "/data/a,/data/a/b", "/var/lib/trafficlab/zookeeper", "/usr/local/kafka", "/opt/trafficlab/k", "/data/kafka/", "/tmp/kafka", "/home", "$(id)"},
	"log.dir":             {"/", "/etc/kafka", "x"},
	"property value":      {"a\nlog.dirs=/", "a\rb"},
	"zookeeper.artifact":  {"https://h/", "https://h/z.tgz?x", "https://h/..", "https://h/kafka.tgz"},
	"zookeeper.heap":      shellish,
	"filebeat.artifact":   {"https://h/f.tgz#x", "https://h/..", "ftp://h/f.tgz"},
	"web.port":            {"80;id", "0", "65536"},
	"lb.vip":              append(shellish, "10.0.0.1", "192.168.0.200/24;id"),
	"lb.auth_pass":        {"ab cd", "a#b", "a!b", "a\nb", `a"b`, "a'b", `a\b`, "a{b", "a}b", "a$b", "ab\tc", "123456789", "é"},
	"mysql.database":      append(shellish, "traffic`x", strings.Repeat("a", 65)),
	"mysql.user":          append(shellish, "x'@'%", strings.Repeat("a", 33)),
	"mysql.password":      {"a\nb", "a\x00b", "a\x1bb"},
	"mysql.root_password": {`pa"ss`, "pa\nss", "pa\x00ss"},
	"alerts.webhook":      {"hooks.example.org/T0KEN", "javascript:alert(1)", "ftp://h/T0KEN", "https:///T0KEN"},
}

// accepted are values that must pass: secrets never reach a shell, so
// they may hold what a shell would take as code.
var accepted = map[string][]string{
	"ssh.sudo_password":   {"p'a;$(id)`x\" #!"},
	"mysql.password":      {"p'a;$(id)`x\" #!\\"},
	"mysql.root_password": {"p'a;$(id)`x #!\\"},
	"lb.auth_pass":        {"Ab3-_.+=", "x", "a@b%c^d~"},
	"log.dirs":            {"/data/kafka", "/data/k1, /data/k2", "/var/lib/trafficlab/kafka", "/srv/kafka", "/var/lib/kafka/data"},
	"alerts.webhook":      {"https://hooks.example.org/services/T0KEN"},
	"kafka.artifact":      {"https://mirror.lan/kafka/kafka_2.13-3.9.1.tgz", "https://mirror.lan/kafka.tgz"},
	"zookeeper.artifact":  {"https://h/zookeeper.tgz", "https://h/apache-zookeeper-3.8.4-bin.tar.gz"},
}

// TestHostileInventoryValues: every value above that could change a
// command, a configuration file or a path is refused, at its line, under
// its name, and a secret's message never shows it.
func TestHostileInventoryValues(t *testing.T) {
	for name, values := range hostile {
		f, ok := fields[name]
		if !ok {
			t.Fatalf("no field %q", name)
		}
		for _, v := range values {
			t.Run(name+"="+strconv.Quote(v), func(t *testing.T) {
				text := f.yaml(strconv.Quote(v))
				inv, err := Parse("test.yaml", []byte(text), nil)
				var ps Problems
				if !errors.As(err, &ps) {
					t.Fatalf("accepted (%v); inventory:\n%s\nparsed as %+v", err, numbered(text), inv)
				}
				prefix := fmt.Sprintf("test.yaml:%d: %s", f.line, f.path)
				found := false
				for _, p := range ps {
					found = found || strings.HasPrefix(p.Error(), prefix)
					if f.secret && len(v) > 2 && strings.Contains(p.Error(), v) {
						t.Errorf("the message shows the secret: %s", p)
					}
				}
				if !found {
					t.Errorf("no problem at %s; got:\n%v", prefix, err)
				}
			})
		}
	}
	for name, values := range accepted {
		f := fields[name]
		for _, v := range values {
			if _, err := Parse("test.yaml", []byte(f.yaml(strconv.Quote(v))), nil); err != nil {
				t.Errorf("%s %q refused: %v", name, v, err)
			}
		}
	}
}

// A private key others may read is refused, as ssh refuses it.
func TestSSHKeyReadableByOthers(t *testing.T) {
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	text := plus("ssh:\n  key: " + key + "\n")
	_, err := Parse("test.yaml", []byte(text), nil)
	want := fmt.Sprintf(`test.yaml:28: ssh.key: %q can be read by other users (mode 0644), so ssh refuses it: chmod 600 %s`, key, key)
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse("test.yaml", []byte(text), nil); err != nil {
		t.Errorf("a 0600 key: %v", err)
	}
}

// assertSafe checks what an accepted inventory hands to shells,
// configuration files and paths on the hosts: whatever the input, nothing
// of it can change a command or a file's structure. The fuzz target and
// the corpus share it.
func assertSafe(t *testing.T, inv *Inventory) {
	t.Helper()
	for _, h := range inv.Hosts {
		if !validLabel(h.Name) {
			t.Errorf("host name %q accepted", h.Name)
		}
		if _, err := netip.ParseAddr(h.Address); err != nil || strings.Contains(h.Address, "%") {
			t.Errorf("host address %q accepted", h.Address)
		}
		if !unixUser.MatchString(h.SSH.User) {
			t.Errorf("ssh user %q accepted", h.SSH.User)
		}
	}
	for _, key := range []string{"log.dirs", "log.dir"} {
		var dirs []string
		for _, d := range strings.Split(inv.Kafka.Properties[key], ",") {
			if d = strings.TrimSpace(d); d == "" && inv.Kafka.Properties[key] == "" {
				continue
			}
			if why := logDirProblem(d, dirs); why != "" {
				t.Errorf("%s %q accepted: %s", key, d, why)
			}
			dirs = append(dirs, d)
		}
	}
	for k, v := range inv.Kafka.Properties {
		if strings.ContainsAny(k+v, "\r\n") {
			t.Errorf("property %q=%q accepted", k, v)
		}
	}
	if pw := inv.LB.AuthPass.Value(); len(pw) > 8 || strings.IndexFunc(pw, notKeepalivedWord) >= 0 {
		t.Errorf("auth_pass of %d characters accepted", len(pw))
	}
	for _, pw := range []string{inv.MySQL.Password.Value(), inv.MySQL.RootPassword.Value(), inv.SSH.SudoPassword.Value()} {
		if strings.IndexFunc(pw, unicode.IsControl) >= 0 {
			t.Error("a password with a control character accepted")
		}
	}
	if strings.Contains(inv.MySQL.RootPassword.Value(), `"`) {
		t.Error("a root password with a double quote accepted")
	}
	for section, a := range map[string]string{"kafka": inv.Kafka.Artifact, "zookeeper": inv.ZooKeeper.Artifact, "filebeat": inv.Filebeat.Artifact} {
		if a == "" {
			continue
		}
		name := a[strings.LastIndex(a, "/")+1:]
		ok := slices.ContainsFunc(artifactPrefixes[section], func(p string) bool { return strings.HasPrefix(name, p) })
		if !plainFileName(name) || !ok {
			t.Errorf("%s artifact %q, kept on the hosts as %q, accepted", section, a, name)
		}
	}
	for _, s := range []string{inv.Cluster.Name, inv.Kafka.Topic.Name, inv.MySQL.Database, inv.MySQL.User, inv.Kafka.Heap, inv.ZooKeeper.Heap} {
		if strings.ContainsAny(s, " \t\n;'\"`$\\#") {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestAcceptedExamplesAreSafe(t *testing.T) {
	files, _ := filepath.Glob("examples/*.yaml")
	for _, name := range files {
		inv, err := LoadEnv(name, noEnv)
		if err != nil {
			t.Fatal(err)
		}
		assertSafe(t, inv)
	}
}

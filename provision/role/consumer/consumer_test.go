package consumer

import (
	"fmt"
	"github.com/trafficlab/trafficlab/provision/step"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/goservice"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

const testInventory = `
cluster: {name: sc}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.5, roles: [mysql, dashboard]}
  - {name: app-1, address: 10.0.0.6, roles: [consumer]}
kafka: {topic: {name: weblog}}
mysql: {database: traffic, user: consumer}
dashboard: {port: 8088}
`

// password needs quoting in YAML in every way there is.
const password = `p@ss: "w'o\rd" #1 \x`

// builtBinary stands in for the go build: a builder that returns content
// it was given, counting the calls.
type builtBinary struct {
	content string
	arches  []string
}

func (b *builtBinary) Build(goarch string) (goservice.Binary, error) {
	b.arches = append(b.arches, goarch)
	return goservice.NewBinary([]byte(b.content)), nil
}

// sha256sum, which the fake host lacks, over its files.
func answerSHA256(h *rt.Host) {
	h.Handle("^"+rt.Pattern(goservice.SHA256Command("PATH"), "PATH")+"$", false, func(m []string, s sshtest.Session) int {
		f, ok := h.Files[m[1]]
		if !ok {
			fmt.Fprintf(s.Stderr, "sha256sum: %s: No such file or directory\n", m[1])
			return 1
		}
		fmt.Fprintf(s.Stdout, "%s  %s\n", goservice.NewBinary([]byte(f.Content)).SHA256, m[1])
		return 0
	})
}

// answerHealthz answers the consumer's /healthz while its unit runs.
func answerHealthz(h *rt.Host) {
	h.Handle("^"+rt.Quote(HealthProbe())+"$", false, func(m []string, s sshtest.Session) int {
		if !h.Active[Service.Unit()] {
			fmt.Fprintln(s.Stderr, "bash: connect: Connection refused")
			return 1
		}
		fmt.Fprint(s.Stdout, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n")
		return 0
	})
}

// The RHEL-like sequence: user, binary, configuration, unit, start; a
// second run touches nothing; a new build or configuration restarts the
// service; no command carries the password; destroy removes it all.
func TestRHEL(t *testing.T) {
	h := rt.NewRHEL()
	h.Machine = "aarch64"
	answerSHA256(h)
	answerHealthz(h)
	c, tg := rt.Connect(t, h, rt.LoadInventory(t, testInventory), "app-1")
	c.Secrets.MySQLPassword, c.Secrets.ProbeKey = password, "probe-key-of-the-test"
	bin := &builtBinary{content: "\x7fELF consumer v1"}
	steps, err := rt.Steps(New(WithBuilder(bin)), c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bin.arches, []string{"arm64"}) {
		t.Errorf("built for %q, want the host's arm64", bin.arches)
	}
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Quote(`useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin trafficlab-consumer`),
		rt.Quote(`install -d -m 0755 -o root -g root -- /usr/local/lib/trafficlab/consumer`),
		rt.Upload("0755", "root:root", "/usr/local/lib/trafficlab/consumer/consumer"),
		rt.Quote(`install -d -m 0755 -o root -g root -- /etc/trafficlab/consumer`),
		rt.Upload("0600", "trafficlab-consumer:trafficlab-consumer", "/etc/trafficlab/consumer/consumer.yaml"),
		`mkdir -p /etc/systemd/system`,
		rt.Upload("0644", "root:root", "/etc/systemd/system/trafficlab-consumer.service"),
		`systemctl daemon-reload`,
		`systemctl try-restart trafficlab-consumer.service`,
		`systemctl enable --now trafficlab-consumer.service`,
	})
	if f, _ := h.File(Service.Binary()); f.Content != bin.content || f.Mode != "755" {
		t.Errorf("binary %q mode %s", f.Content, f.Mode)
	}
	f, _ := h.File(Service.ConfigFile())
	cfg, err := config.Parse([]byte(f.Content))
	if err != nil {
		t.Fatalf("the consumer refuses its configuration: %v\n%s", err, f.Content)
	}
	if cfg.MySQL.Password != password || cfg.MySQL.Host != "10.0.0.5" || cfg.Kafka.Topic != "weblog" {
		t.Errorf("configuration read back as %+v", cfg.MySQL)
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// A new build: uploaded, and the running service restarted.
	bin.content = "\x7fELF consumer v2"
	steps, _ = rt.Steps(New(WithBuilder(bin)), c)
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Upload("0755", "root:root", "/usr/local/lib/trafficlab/consumer/consumer"),
		`systemctl try-restart trafficlab-consumer.service`,
	})
	// A new password: the configuration, and a restart.
	c.Secrets.MySQLPassword = "another"
	steps, _ = rt.Steps(New(WithBuilder(bin)), c)
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Upload("0600", "trafficlab-consumer:trafficlab-consumer", "/etc/trafficlab/consumer/consumer.yaml"),
		`systemctl try-restart trafficlab-consumer.service`,
	})
	for _, cmd := range h.TakeAll() {
		if strings.Contains(cmd, "another") || strings.Contains(cmd, "p@ss") {
			t.Errorf("the password is on a command line: %q", cmd)
		}
	}

	remove, _ := New(WithBuilder(bin)).Remove(c)
	rt.Apply(t, tg, remove)
	for _, p := range []string{"/usr/local/lib/trafficlab", "/etc/trafficlab", Service.UnitFile()} {
		if left := h.Paths(p); len(left) != 0 {
			t.Errorf("destroy left %q", left)
		}
	}
	if h.Users[Service.User()] || h.Active[Service.Unit()] {
		t.Error("destroy left the user or the service")
	}
	rt.AssertSecondRunIdle(t, h, tg, remove)
}

// A machine Go has no port for: a clear error before anything is done.
func TestUnknownMachine(t *testing.T) {
	c := rt.Offline(t, rt.LoadInventory(t, testInventory), "app-1", rt.Rocky9())
	c.OS.Machine, c.OS.Arch = "sparc64", facts.GOARCH("sparc64")
	c.Secrets = role.Secrets{MySQLPassword: "x", ProbeKey: "probe-key-of-the-test"}
	_, err := rt.Steps(New(WithBuilder(goservice.ConsumerBuilder())), c)
	if err == nil || !strings.Contains(err.Error(), "app-1 (sparc64)") {
		t.Fatalf("error %v", err)
	}
}

// Every file, as golden files, for a host of its own and one that also
// runs the database and a broker (the unit starts after them).
func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	aio := rt.LoadExample(t, "all-in-one.yaml")
	sasl := rt.LoadExample(t, "all-in-one.yaml")
	sasl.Kafka.Security = inventory.KafkaSASLSSL
	for _, tt := range []struct {
		name string
		inv  *inventory.Inventory
		host string
		os   facts.OS
	}{
		{"rocky9-app-1", rt.LoadInventory(t, testInventory), "app-1", rt.Rocky9()},
		{"all-in-one-debian12-node-1", aio, "node-1", rt.Debian12()},
		{"sasl-ssl-debian12-node-1", sasl, "node-1", rt.Debian12()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := rt.Offline(t, tt.inv, tt.host, tt.os)
			c.Templates = set
			c.Secrets = role.Secrets{MySQLPassword: "********", ProbeKey: strings.Repeat("*", 32),
				KafkaCA: "(CA certificate)\n", KafkaConsumerPassword: "(SCRAM password)"}
			for _, f := range rt.AssertFiles(t, New(), c, filepath.Join("testdata", tt.name+".golden"), rt.ShowSecret) {
				if f.Path == Service.ConfigFile() {
					if _, err := config.Parse(f.Content); err != nil {
						t.Errorf("the consumer refuses %s: %v", f.Path, err)
					}
				}
			}
		})
	}
}

// A consumer that does not come up: the wait ends saying what it saw and
// where to look.
func TestNotAnswering(t *testing.T) {
	defer func(d, p time.Duration) { HealthTimeout, step.Poll = d, p }(HealthTimeout, step.Poll)
	HealthTimeout, step.Poll = 50*time.Millisecond, 10*time.Millisecond
	h := rt.NewRHEL()
	answerSHA256(h)
	h.Handle("^"+rt.Quote(HealthProbe())+"$", false, func(m []string, s sshtest.Session) int {
		fmt.Fprint(s.Stdout, "HTTP/1.0 503 Service Unavailable\r\n\r\nmysql: commits failing for 45s\n")
		return 0
	})
	c, tg := rt.Connect(t, h, rt.LoadInventory(t, testInventory), "app-1")
	c.Secrets.MySQLPassword, c.Secrets.ProbeKey = password, "probe-key-of-the-test"
	steps, _ := rt.Steps(New(WithBuilder(&builtBinary{content: "x"})), c)
	_, err := rt.TryApply(tg, steps)
	for _, want := range []string{"not ready after 50ms", `"HTTP/1.0 503 Service Unavailable"`, "journalctl -u trafficlab-consumer.service"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
}

package filebeat

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/install"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

const fbURL = "https://example.org/filebeat-7.17.29-linux-x86_64.tar.gz"

var fbTarball = rt.FakeTarball(map[string]string{
	"filebeat":     "ELF",
	"filebeat.yml": "# Elastic's sample\n",
})

const testInventory = `
cluster: {name: sc, firewall: unmanaged}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.4, roles: [lb, mysql, consumer, dashboard]}
lb: {vip: 10.0.0.100/24, port: 81}
kafka: {topic: {name: weblog}}
filebeat: {artifact: ` + fbURL + `, sha512: SHA}
`

// fbHost answers `filebeat test config`: it passes when the binary and the
// configuration are in place.
func fbHost(h *rt.Host) *rt.Host {
	h.URLs[fbURL] = fbTarball
	h.Handle("^"+rt.Quote(RestartCommand())+"$", true, func(m []string, s sshtest.Session) int {
		_, bin := h.Files[h.Resolve(Home+"/filebeat")]
		_, conf := h.Files[ConfigFile]
		if !bin || !conf {
			fmt.Fprintln(s.Stderr, "Exiting: error loading config file")
			return 1
		}
		return 0
	})
	return h
}

func TestRHELInstallsThenRestartsOnChange(t *testing.T) {
	h := fbHost(rt.NewRHEL())
	inv := rt.LoadInventory(t, strings.Replace(testInventory, "SHA", rt.SHA512(fbTarball), 1))
	c, tg := rt.Connect(t, h, inv, "kafka-2")
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		`sh -c .*dnf install -y -q.* sh tar`,
		rt.Quote(`mkdir -p /opt/trafficlab/dist && curl -fsSL --retry 3 -o /opt/trafficlab/dist/.filebeat-7.17.29-linux-x86_64.tar.gz.part ` + fbURL),
		rt.Quote(`mv -f /opt/trafficlab/dist/.filebeat-7.17.29-linux-x86_64.tar.gz.part /opt/trafficlab/dist/filebeat-7.17.29-linux-x86_64.tar.gz && echo '` + rt.SHA512(fbTarball) + `  filebeat-7.17.29-linux-x86_64.tar.gz' > /opt/trafficlab/dist/filebeat-7.17.29-linux-x86_64.tar.gz.sha512`),
		`\{ rm -rf /opt/filebeat-7.17.29-linux-x86_64.trafficlab-new && .* tar -xf /opt/trafficlab/dist/filebeat-7.17.29-linux-x86_64.tar.gz .*`,
		`if \[ -d /opt/filebeat \] .* ln -sfn -- /opt/filebeat-7.17.29-linux-x86_64 /opt/filebeat`,
		rt.Quote(`install -d -m 0755 -o root -g root -- /etc/trafficlab/filebeat`),
		rt.Quote(`install -d -m 0750 -o root -g root -- /var/lib/trafficlab/filebeat`),
		rt.Quote(`install -d -m 0750 -o root -g root -- /var/log/trafficlab/filebeat`),
		rt.Upload("0600", "root:root", ConfigFile),
		`mkdir -p /etc/systemd/system`,
		rt.Upload("0644", "root:root", UnitFile),
		`systemctl daemon-reload`,
		// Tested before the first start; nothing running to restart.
		rt.Quote(RestartCommand()),
		`systemctl enable --now trafficlab-filebeat.service`,
	})
	conf, _ := h.File(ConfigFile)
	for _, want := range []string{
		"name: kafka-2\n", "  - type: filestream\n    # ", "    id: trafficlab-nginx-access\n", "      - /var/log/nginx/trafficlab-access.log\n",
		`    - "kafka-1:9092"` + "\n" + `    - "kafka-2:9092"` + "\n" + `    - "kafka-3:9092"` + "\n",
		`  topic: "weblog"` + "\n", "  required_acks: -1\n", "  max_retries: -1\n", "  compression: gzip\n",
	} {
		if !strings.Contains(conf.Content, want) {
			t.Errorf("filebeat.yml lacks %q:\n%s", want, conf.Content)
		}
	}
	unit, _ := h.File(UnitFile)
	if !strings.Contains(unit.Content, "ExecStart=/opt/filebeat/filebeat --environment systemd -c /etc/trafficlab/filebeat/filebeat.yml --path.home /opt/filebeat --path.config /etc/trafficlab/filebeat --path.data /var/lib/trafficlab/filebeat --path.logs /var/log/trafficlab/filebeat\n") {
		t.Errorf("unit:\n%s", unit.Content)
	}
	rt.AssertSecondRunIdle(t, h, tg, steps)

	// A new topic: tested, then restarted.
	inv.Kafka.Topic.Name = "nginxlog"
	steps, _ = rt.Steps(New(), c)
	rt.Apply(t, tg, steps)
	rt.AssertSequence(t, h.TakeMutating(), []string{
		rt.Upload("0600", "root:root", ConfigFile),
		rt.Quote(RestartCommand()),
	})

	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	rt.Apply(t, tg, remove)
	for _, p := range []string{"/etc/trafficlab", "/var/lib/trafficlab", "/var/log/trafficlab", "/opt/trafficlab", "/opt/filebeat", UnitFile} {
		if left := h.Paths(p); len(left) != 0 {
			t.Errorf("destroy left %q", left)
		}
	}
	if h.Active[Unit] {
		t.Error("destroy left filebeat running")
	}
	rt.AssertSecondRunIdle(t, h, tg, remove)
}

// A tarball that does not match the inventory's checksum stops the role
// before anything is installed.
func TestWrongChecksum(t *testing.T) {
	h := fbHost(rt.NewRHEL())
	inv := rt.LoadInventory(t, strings.Replace(testInventory, "SHA", strings.Repeat("e", 128), 1))
	c, tg := rt.Connect(t, h, inv, "kafka-1")
	steps, _ := rt.Steps(New(), c)
	_, err := rt.TryApply(tg, steps)
	if !errors.Is(err, install.ErrChecksum) || !regexp.MustCompile(`kafka-1: fetch filebeat-7\.17\.29-linux-x86_64\.tar\.gz: checksum mismatch: .* removed it, nothing installed`).MatchString(err.Error()) {
		t.Fatalf("error %v", err)
	}
	if p := append(append(h.Paths("/opt/filebeat"), h.Paths("/etc/trafficlab")...), h.Paths("/opt/trafficlab/dist/filebeat")...); len(p) != 0 {
		t.Errorf("installed anyway: %q", p)
	}
	if h.Active[Unit] {
		t.Error("filebeat started anyway")
	}
}

func TestArtifact(t *testing.T) {
	inv := rt.LoadExample(t, "seed-centos.yaml")
	if got := Tarball(inv); got.Source != DefaultArtifact() || got.SHA512 != "" || got.Dir != "/opt/filebeat-7.17.29-linux-x86_64" {
		t.Errorf("default tarball %+v", got)
	}
	inv.Filebeat.Artifact = "https://example.org/filebeat-7.17.29-x86_64.rpm"
	c := rt.Offline(t, inv, "kafka-1", rt.Rocky9())
	if _, err := rt.Steps(New(), c); err == nil || !strings.Contains(err.Error(), "only Elastic's tarball") {
		t.Errorf("a package as the artifact: %v", err)
	}
}

// Every file the role writes, for the example inventories, as golden files.
func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	for _, tt := range []struct {
		name, example, host string
		os                  facts.OS
	}{
		{"seed-rocky9-kafka-1", "seed-centos", "kafka-1", rt.Rocky9()},
		{"all-in-one-debian12-node-2", "all-in-one", "node-2", rt.Debian12()},
		{"kraft-debian12-kafka-3", "kraft", "kafka-3", rt.Debian12()},
		{"kraft-sasl-ssl-debian12-kafka-2", "kraft", "kafka-2", rt.Debian12()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			inv := rt.LoadExample(t, tt.example+".yaml")
			if strings.Contains(tt.name, "sasl-ssl") {
				inv.Kafka.Security = inventory.KafkaSASLSSL
			}
			c := rt.Offline(t, inv, tt.host, tt.os)
			c.Templates = set
			c.Secrets = role.Secrets{KafkaCA: "(CA certificate)\n", KafkaFilebeatPassword: "FilebeatSCRAMPassword"}
			rt.AssertFiles(t, New(), c, filepath.Join("testdata", tt.name+".golden"))
		})
	}
	if unused := set.Unused("filebeat"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

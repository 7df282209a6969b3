// Package filebeat is the role of the log shippers: Elastic's filebeat
// (the tarball the inventory names, downloaded on the host or uploaded,
// checked against its SHA-512, unpacked behind /opt/filebeat), reading the
// web server's access log with a filestream input and writing every line
// to the log topic on all brokers, under a systemd unit of trafficlab's.
package filebeat

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/topic"
	"github.com/trafficlab/trafficlab/provision/role/web"
	"github.com/trafficlab/trafficlab/provision/rolekit/install"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Where the role keeps things, the same on every family.
const (
	Unit       = "trafficlab-filebeat.service"
	UnitFile   = "/etc/systemd/system/" + Unit
	ConfigDir  = "/etc/trafficlab/filebeat"
	ConfigFile = ConfigDir + "/filebeat.yml"
	// CAFile is the Kafka cluster CA's certificate, with kafka.security
	// tls or sasl_ssl.
	CAFile = ConfigDir + "/kafka-ca.pem"
	// DataDir is filebeat's path.data: its registry of what has been
	// shipped, kept apart from the distribution so that a new version
	// carries on where the old one stopped.
	DataDir = "/var/lib/trafficlab/filebeat"
	// LogDir is path.logs; with the journal as its log, filebeat writes
	// nothing there unless told to.
	LogDir = "/var/log/trafficlab/filebeat"
	// Home is the stable link to the unpacked distribution.
	Home = "/opt/filebeat"
	// InputID is the filestream input's id, the key of its registry
	// entries: it must never change.
	InputID = "trafficlab-nginx-access"

	// Compression is the Kafka output's codec.
	Compression = "gzip"
	// KafkaProtocol is the Kafka version filebeat speaks: 2.6 uses request
	// versions Kafka 4, which dropped the oldest, still serves.
	KafkaProtocol = "2.6.0"

	// StatsAddr is filebeat's HTTP endpoint of its own counters (/stats),
	// on the loopback only.
	StatsAddr = "127.0.0.1:5066"

	// DefaultVersion is the release installed when the inventory names no
	// artifact.
	DefaultVersion = "7.17.29"
)

// DefaultArtifact is Elastic's tarball of DefaultVersion for x86-64 Linux,
// checked against the .sha512 Elastic publishes beside it.
func DefaultArtifact() string {
	return "https://artifacts.elastic.co/downloads/beats/filebeat/filebeat-" + DefaultVersion + "-linux-x86_64.tar.gz"
}

// New returns the filebeat role.
func New() role.Role { return shipper{} }

type shipper struct{}

// Name is the role's name.
const Name = "filebeat"

func (shipper) Name() string             { return Name }
func (shipper) On(h inventory.Host) bool { return h.Has(inventory.RoleFilebeat) }

// Needs: filebeat ships to the brokers, into the topic (and, with
// sasl_ssl, as the account the topic role keeps), from the web server's
// access log.
func (shipper) Needs(*inventory.Inventory) []string {
	return []string{kafka.Name, web.Name, topic.Name}
}

// Tarball is the distribution the inventory names (or the default), as
// installed on hosts.
func Tarball(inv *inventory.Inventory) install.Tarball {
	src := inv.Filebeat.Artifact
	if src == "" {
		src = DefaultArtifact()
	}
	return install.NewTarball(src, inv.Filebeat.SHA512, Home)
}

// Brokers are the addresses filebeat bootstraps from: every broker, by the
// host name it advertises.
func Brokers(inv *inventory.Inventory) []string {
	var out []string
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		out = append(out, h.Name+":"+strconv.Itoa(kafka.Port))
	}
	return out
}

func statsPort() string {
	_, port, _ := net.SplitHostPort(StatsAddr)
	return port
}

// Command is how the unit runs filebeat: trafficlab's configuration and
// data directories, logging to the journal.
func Command() string {
	return Home + "/filebeat --environment systemd" + paths()
}

// TestCommand is `filebeat test config` on the configuration in place.
func TestCommand() string {
	return Home + "/filebeat test config" + paths()
}

// RestartCommand tests the configuration in place and restarts a running
// filebeat with it (the step RestartStep).
func RestartCommand() string {
	return TestCommand() + " && systemctl try-restart " + Unit
}

func paths() string {
	return " -c " + ConfigFile + " --path.home " + Home + " --path.config " + ConfigDir +
		" --path.data " + DataDir + " --path.logs " + LogDir
}

func (shipper) Files(c *role.Context) ([]role.File, error) {
	inv := c.Inventory
	brokers := Brokers(inv)
	if len(brokers) == 0 {
		return nil, fmt.Errorf("no host has the kafka role: filebeat has nowhere to ship to")
	}
	data := map[string]any{
		"Host": c.Host.Name, "InputID": InputID, "AccessLog": web.AccessLog,
		"Brokers": brokers, "Topic": inv.Kafka.Topic.Name, "Compression": Compression, "KafkaProtocol": KafkaProtocol,
		"Security": inv.Kafka.Security, "CAFile": "", "Mechanism": "", "Username": "", "Password": "", "StatsPort": statsPort(),
	}
	var extra []role.File
	if inv.Kafka.TLS() {
		if c.Secrets.KafkaCA == "" {
			return nil, fmt.Errorf("kafka.security %s: no Kafka CA certificate in the stack (provision up makes it)", inv.Kafka.Security)
		}
		data["CAFile"] = CAFile
		extra = append(extra, role.File{Path: CAFile, Content: []byte(c.Secrets.KafkaCA), Mode: 0o644, Owner: "root:root"})
	}
	secret := false
	if inv.Kafka.Security == inventory.KafkaSASLSSL {
		if c.Secrets.KafkaFilebeatPassword == "" {
			return nil, fmt.Errorf("kafka.security sasl_ssl: no SCRAM password for %s in the stack (provision up makes it)", kafka.FilebeatUser)
		}
		data["Mechanism"], data["Username"], data["Password"] = kafka.SCRAM, kafka.FilebeatUser, c.Secrets.KafkaFilebeatPassword
		secret = true
	}
	conf, err := c.Templates.Render("filebeat/filebeat.yml.tmpl", data)
	if err != nil {
		return nil, err
	}
	unit, err := c.Templates.Render("filebeat/filebeat.service.tmpl", map[string]any{"Unit": Unit, "Command": Command()})
	if err != nil {
		return nil, err
	}
	return append([]role.File{
		// filebeat refuses a configuration others may write.
		{Path: ConfigFile, Content: conf, Mode: 0o600, Owner: "root:root", Secret: secret},
		{Path: UnitFile, Content: unit, Mode: 0o644, Owner: "root:root", Unit: Unit},
	}, extra...), nil
}

// RestartStep is the name of the step that tests the configuration and
// restarts filebeat after it or the distribution changed.
const RestartStep = "test config and restart " + Unit

func (f shipper) Plan(c *role.Context) (role.Plan, error) {
	t := Tarball(c.Inventory)
	if name := t.File(); !strings.HasSuffix(name, ".tar.gz") && !strings.HasSuffix(name, ".tgz") {
		return role.Plan{}, fmt.Errorf("filebeat.artifact %s: only Elastic's tarball (.tar.gz) is supported, not its packages", t.Source)
	}
	files, err := f.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	steps := []step.Step{
		// curl fetches the tarball on Debian's minimal hosts; RHEL-like
		// ones all have it (as curl-minimal on 9).
		step.Packages(map[facts.Family][]string{facts.RHEL: {"tar"}, facts.Debian: {"curl", "tar"}}),
	}
	steps = append(steps, t.Steps()...)
	changes := t.Changes()
	steps = append(steps,
		step.Dir(ConfigDir, 0o755, "root:root"),
		step.Dir(DataDir, 0o750, "root:root"),
		step.Dir(LogDir, 0o750, "root:root"))
	for _, file := range files {
		s := file.Step()
		steps = append(steps, s)
		changes = append(changes, s.ID)
	}
	// try-restart: a filebeat not running yet is started by the next step
	// with the tested configuration.
	steps = append(steps,
		step.OnChange(RestartStep, RestartCommand(), changes...),
		step.Service(Unit, step.Running))
	return role.Plan{Files: files, Steps: steps}, nil
}

func (shipper) Remove(c *role.Context) ([]step.Step, error) {
	steps := append(step.UnitAbsent(Unit),
		step.TreeAbsent(ConfigDir),
		step.TreeAbsent(DataDir),
		step.TreeAbsent(LogDir),
	)
	steps = append(steps, Tarball(c.Inventory).Remove()...)
	return append(steps,
		step.EmptyDirAbsent("/etc/trafficlab"),
		step.EmptyDirAbsent("/var/lib/trafficlab"),
		step.EmptyDirAbsent("/var/log/trafficlab")), nil
}

// Logs: filebeat logs to the journal.
func (shipper) Logs(*role.Context) role.Logs { return role.Logs{Units: []string{Unit}} }

func (shipper) Keeps(c *role.Context) []string {
	pk := "tar"
	if c.OS.Family == facts.Debian {
		pk = "curl, tar"
	}
	return []string{"the packages installed (" + pk + ")", "the access log it read (the web role's)"}
}

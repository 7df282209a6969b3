// Package goservice deploys a binary of this module as a systemd service,
// the one way the consumer and dashboard roles do it: the binary
// cross-compiled for the host (GoBuilder, cached by content), uploaded over
// SFTP (atomically, 0755), the configuration file the consumer reads
// (consumer/config, with the MySQL password: 0600, owned by the service's
// own system user), a hardened unit, and a restart only when the binary, the
// configuration or the unit changed.
package goservice

import (
	"context"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/mysql"
	"github.com/trafficlab/trafficlab/provision/step"
)

// LibDir holds the binaries, one directory per service.
const LibDir = "/usr/local/lib/trafficlab"

// ConsumerGroup names the consumer's offsets in MySQL.
const ConsumerGroup = "trafficlab-consumer"

// Service is one binary of this module run by systemd.
type Service struct {
	Name        string // "consumer": the user is trafficlab-NAME, the unit trafficlab-NAME.service
	Description string // for the unit
	// Command is the binary's subcommand ("run", "dashboard"); it is
	// given --config ConfigFile.
	Command string
}

// Unit is the service's systemd unit.
func (s Service) Unit() string { return "trafficlab-" + s.Name + ".service" }

// UnitFile is where the unit is kept.
func (s Service) UnitFile() string { return "/etc/systemd/system/" + s.Unit() }

// User is the system user the service runs as; it owns ConfigFile.
func (s Service) User() string { return "trafficlab-" + s.Name }

// BinaryDir holds the service's copy of the binary: each service has its
// own, so removing one role never takes the other's binary away.
func (s Service) BinaryDir() string { return LibDir + "/" + s.Name }

// Binary is the uploaded program.
func (s Service) Binary() string { return s.BinaryDir() + "/consumer" }

// ConfigDir holds ConfigFile.
func (s Service) ConfigDir() string { return "/etc/trafficlab/" + s.Name }

// ConfigFile is the consumer/config file the service reads.
func (s Service) ConfigFile() string { return s.ConfigDir() + "/" + s.Name + ".yaml" }

// KafkaCAFile is the Kafka cluster CA's certificate, for a service that
// reads Kafka (not the dashboard) with kafka.security tls or sasl_ssl.
func (s Service) KafkaCAFile() string { return s.ConfigDir() + "/kafka-ca.pem" }

// readsKafka: `consumer dashboard` reads MySQL only.
func (s Service) readsKafka() bool { return s.Command != "dashboard" }

// ConfigOptions are what differs between the services' configurations.
type ConfigOptions struct {
	// Listen is the address of /metrics and /healthz; "" turns them off.
	Listen string
	// DashboardListen is where `consumer dashboard` serves HTTP.
	DashboardListen string
}

// Files renders the configuration and the unit. after lists units on the
// same host to start after (the database, a broker).
func (s Service) Files(c *role.Context, o ConfigOptions, after []string) ([]role.File, error) {
	conf, err := s.config(c, o)
	if err != nil {
		return nil, err
	}
	lowPort := false
	if _, p, err := net.SplitHostPort(o.DashboardListen); err == nil && s.Command == "dashboard" {
		n, _ := strconv.Atoi(p)
		lowPort = n > 0 && n < 1024
	}
	unit, err := c.Templates.Render("consumer/service.tmpl", map[string]any{
		"Description": s.Description, "Unit": s.Unit(), "After": after, "User": s.User(),
		"Binary": s.Binary(), "Args": s.Command + " --config " + s.ConfigFile(), "BindLowPort": lowPort,
	})
	if err != nil {
		return nil, err
	}
	files := []role.File{
		{Path: s.ConfigFile(), Content: conf, Mode: 0o600, Owner: s.User() + ":" + s.User(), Secret: true},
		{Path: s.UnitFile(), Content: unit, Mode: 0o644, Owner: "root:root", Unit: s.Unit()},
	}
	if c.Inventory.Kafka.TLS() && s.readsKafka() {
		files = append(files, role.File{Path: s.KafkaCAFile(), Content: []byte(c.Secrets.KafkaCA), Mode: 0o644, Owner: "root:root"})
	}
	return files, nil
}

// config renders the consumer/config file from the inventory: the brokers
// by name (the base role's /etc/hosts resolves them), MySQL by address (the
// account is granted to client addresses, and the server listens on its
// host's address only).
func (s Service) config(c *role.Context, o ConfigOptions) ([]byte, error) {
	inv := c.Inventory
	var brokers []string
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		brokers = append(brokers, strconv.Quote(net.JoinHostPort(h.Name, strconv.Itoa(kafka.Port))))
	}
	dbs := inv.HostsWith(inventory.RoleMySQL)
	if len(brokers) == 0 || len(dbs) == 0 {
		return nil, fmt.Errorf("the %s needs a host with the kafka role and one with the mysql role", s.Name)
	}
	// strconv.Quote's escapes are all YAML double-quoted escapes too.
	q := strconv.Quote
	// Each file holds only the secrets of its own service: the dashboard
	// its read-only account and its login, the consumer its writer
	// account and the probe key.
	user, password := inv.MySQL.User, c.Secrets.MySQLPassword
	var probeKey, dashPassword string
	if s.Command == "dashboard" {
		user, password = mysql.DashboardUser(inv), c.Secrets.MySQLDashboardPassword
		if dashPassword = c.Secrets.DashboardPassword; dashPassword == "" {
			return nil, fmt.Errorf("no password for the dashboard's login (dashboard.password, or the one kept in the stack)")
		}
	} else if probeKey = c.Secrets.ProbeKey; probeKey == "" {
		return nil, fmt.Errorf("no probe key for the %s (the one kept in the stack)", s.Name)
	}
	if password == "" {
		return nil, fmt.Errorf("no password for the %s's MySQL account %s (mysql.password, or the one kept in the stack)", s.Name, user)
	}
	var caFile, kafkaPassword string
	if inv.Kafka.TLS() && s.readsKafka() {
		if c.Secrets.KafkaCA == "" {
			return nil, fmt.Errorf("kafka.security %s: no Kafka CA certificate in the stack (provision up makes it)", inv.Kafka.Security)
		}
		caFile = s.KafkaCAFile()
	}
	if inv.Kafka.Security == inventory.KafkaSASLSSL && s.readsKafka() {
		if kafkaPassword = c.Secrets.KafkaConsumerPassword; kafkaPassword == "" {
			return nil, fmt.Errorf("kafka.security sasl_ssl: no SCRAM password for %s in the stack (provision up makes it)", kafka.ConsumerUser)
		}
		kafkaPassword = q(kafkaPassword)
	}
	return c.Templates.Render("consumer/config.yaml.tmpl", map[string]any{
		"Command": s.Command, "User": s.User(),
		"Brokers": brokers, "Topic": q(inv.Kafka.Topic.Name), "Group": q(ConsumerGroup),
		"MySQLHost": q(dbs[0].Address), "MySQLPort": mysql.Port, "MySQLUser": q(user),
		"MySQLPassword": q(password), "MySQLDatabase": q(inv.MySQL.Database),
		"ProbeKey": q(probeKey), "DashboardPassword": q(dashPassword),
		"Listen": q(o.Listen), "DashboardListen": q(o.DashboardListen),
		"FastAlerts": inv.Alerts.Speed == inventory.AlertsFast, "Webhook": q(inv.Alerts.Webhook.Value()),
		"DashboardURL":  q(DashboardURL(inv)),
		"KafkaSecurity": inv.Kafka.Security, "KafkaCAFile": caFile,
		"KafkaMechanism": kafka.SCRAM, "KafkaUser": q(kafka.ConsumerUser), "KafkaPassword": kafkaPassword,
	})
}

// DashboardURL is the dashboard's page on the first dashboard host: the
// stack output, and where alert notices link to.
func DashboardURL(inv *inventory.Inventory) string {
	hs := inv.HostsWith(inventory.RoleDashboard)
	if len(hs) == 0 {
		return ""
	}
	return "http://" + net.JoinHostPort(hs[0].Address, strconv.Itoa(inv.Dashboard.Port)) + "/"
}

// LocalAfter lists the units of roles on the same host that the service
// starts after at boot: the database, the broker.
func LocalAfter(c *role.Context) []string {
	var after []string
	if c.Host.Has(inventory.RoleMySQL) {
		after = append(after, mysql.ServerOf(c.OS).Unit)
	}
	if c.Host.Has(inventory.RoleKafka) {
		after = append(after, kafka.Unit)
	}
	return after
}

// KindBinary is the kind of the step that uploads the binary (Object: its
// path on the host).
const KindBinary step.Kind = "binary"

// Plan deploys the service: files come from Files, bin from a Builder.
// The binary's checksum is a setting ("binary"), so a new build changes
// the resource's inputs and `preview` shows it.
func (s Service) Plan(files []role.File, bin Binary) role.Plan {
	bs := s.binaryStep(bin)
	steps := []step.Step{
		step.User(s.User(), "/nonexistent"),
		step.Dir(s.BinaryDir(), 0o755, "root:root"),
		bs,
		step.Dir(s.ConfigDir(), 0o755, "root:root"),
	}
	changes := []step.ID{bs.ID}
	for _, f := range files {
		st := f.Step()
		steps = append(steps, st)
		changes = append(changes, st.ID)
	}
	steps = append(steps,
		// try-restart: a service not running yet is left to the next step.
		step.OnChange("restart "+s.Unit(), "systemctl try-restart "+s.Unit(), changes...),
		step.Service(s.Unit(), step.Running))
	return role.Plan{Files: files, Steps: steps, Settings: map[string]string{"binary": "sha256:" + bin.SHA256}}
}

// binaryStep keeps the binary as built: checked by its checksum on the
// host (not read back: it is megabytes), uploaded to a temporary file and
// renamed into place, so a running service never sees half a binary.
func (s Service) binaryStep(bin Binary) step.Step {
	p := s.Binary()
	q := remote.ShellQuote(p)
	return step.Step{
		ID:   step.ID{Kind: KindBinary, Object: p},
		Name: fmt.Sprintf("binary %s (sha256 %s)", p, bin.SHA256[:12]),
		Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
			res, err := t.Host.Run(ctx, "stat -c '%a %U:%G' -- "+q+" 2>/dev/null || echo missing")
			if err != nil {
				return nil, err
			}
			if st := strings.TrimSpace(string(res.Stdout)); st == "missing" {
				return &step.Change{Summary: fmt.Sprintf("upload %s (%d bytes)", p, len(bin.Content))}, nil
			} else if st != "755 root:root" {
				return &step.Change{Summary: fmt.Sprintf("upload %s again (mode and owner %s, want 755 root:root)", p, st)}, nil
			}
			res, err = t.Host.Run(ctx, SHA256Command(p))
			if err != nil {
				return nil, err
			}
			if have, _, _ := strings.Cut(strings.TrimSpace(string(res.Stdout)), " "); have != bin.SHA256 {
				return &step.Change{Summary: fmt.Sprintf("upload %s (%d bytes, sha256 %s; the host has %.12s)", p, len(bin.Content), bin.SHA256[:12], have)}, nil
			}
			return nil, nil
		},
		Apply: func(ctx context.Context, t *step.Target) error {
			return t.Host.Upload(ctx, p, bin.Content, 0o755, "root:root")
		},
	}
}

// SHA256Command prints the SHA-256 of the file at path as sha256sum does:
// how the binary on the host is checked.
func SHA256Command(path string) string { return "sha256sum -- " + remote.ShellQuote(path) }

// Remove stops the service and removes what Plan added.
func (s Service) Remove() []step.Step {
	return append(step.UnitAbsent(s.Unit()),
		step.TreeAbsent(s.ConfigDir()),
		step.TreeAbsent(s.BinaryDir()),
		step.EmptyDirAbsent(LibDir),
		step.EmptyDirAbsent(path.Dir(s.ConfigDir())),
		step.UserAbsent(s.User()),
	)
}

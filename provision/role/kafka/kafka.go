// Package kafka is the role of the brokers: Java 17, the Kafka distribution
// named by the inventory (downloaded on the host or uploaded, checked
// against its SHA-512, unpacked into a versioned directory behind
// /opt/kafka), a kafka system user, the log directories, server.properties
// for ZooKeeper or KRaft mode, KRaft's storage format, and a systemd unit;
// with kafka.security tls or sasl_ssl, the broker's PEM key and
// certificates and the listeners that use them (security.go).
//
// A change of configuration or distribution restarts the broker when it is
// its turn: one broker at a time, the next only when this one is back and
// no partition is under-replicated (rolling.go); a broker that does not
// recover halts the roll.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
	"github.com/trafficlab/trafficlab/provision/rolekit/install"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Where the role keeps things.
const (
	Unit       = "trafficlab-kafka.service"
	UnitFile   = "/etc/systemd/system/" + Unit
	ConfigDir  = "/etc/trafficlab/kafka"
	ConfigFile = ConfigDir + "/server.properties"
	// DataDir is log.dirs unless the inventory's properties say otherwise.
	DataDir = "/var/lib/trafficlab/kafka"
	// LogDir takes the broker's own logs (server.log, the GC log).
	LogDir = "/var/log/kafka"
	// Home is the stable link to the unpacked distribution.
	Home = "/opt/kafka"

	// Port is the clients' and brokers' listener, ControllerPort the
	// KRaft controllers' (see inventory.Listeners).
	Port           = inventory.KafkaPort
	ControllerPort = inventory.KafkaControllerPort

	user = "kafka"
)

// RestartStep is the name of the step that restarts a running broker after
// its configuration or distribution changed.
const RestartStep = "restart " + Unit

// ListenTimeout bounds the wait for a started broker to accept
// connections: a broker replays its logs before it listens.
var ListenTimeout = 3 * time.Minute

// Restarter restarts the broker of t's host by calling restart (which runs
// `systemctl restart`), when the role has found that its configuration or
// distribution changed while it ran.
type Restarter func(ctx context.Context, t *step.Target, restart func(context.Context) error) error

// Option configures the role.
type Option func(*broker)

// WithRestart makes restarts go through r instead of the role's own
// rolling restart: for tests that have no cluster to wait on.
func WithRestart(r Restarter) Option { return func(b *broker) { b.restarter = r } }

// New returns the Kafka role.
func New(opts ...Option) role.Role {
	b := &broker{}
	for _, o := range opts {
		o(b)
	}
	return b
}

type broker struct {
	restarter Restarter
	// turn is held by the broker restarting and until the cluster has
	// recovered from it, so that brokers restart one at a time. Roles
	// live for the whole provision run, and every host's resource runs in
	// this process.
	turn sync.Mutex
	// halted, under turn, is why the roll stopped: a broker that did not
	// recover from its restart. No broker restarts after it in this run.
	halted error
}

// Name is the role's name.
const Name = "kafka"

func (*broker) Name() string             { return Name }
func (*broker) On(h inventory.Host) bool { return h.Has(inventory.RoleKafka) }

// Needs: in ZooKeeper mode the ensemble is configured and started before
// any broker, and removed after all of them.
// While migrating, the brokers are moved onto the KRaft controllers, which
// are configured and started first. A migrated cluster (separate
// controllers, ZooKeeper gone) upgrades its controllers before its
// brokers, so that no controller is older than a broker it serves; only
// the up that finalises the migration (ZooKeeper still there) has the
// brokers first (see the controller role's Needs).
func (*broker) Needs(inv *inventory.Inventory) []string {
	switch {
	case inv.Kafka.Mode == inventory.KafkaZooKeeper:
		return []string{zookeeper.Name}
	case inv.Kafka.Mode == inventory.KafkaMigrating:
		return []string{zookeeper.Name, ControllerName}
	case controllersFirst(inv):
		return []string{ControllerName}
	}
	return nil
}

// controllersFirst: KRaft with separate controllers, the migration behind
// it (no zookeeper hosts left).
func controllersFirst(inv *inventory.Inventory) bool {
	return inv.Kafka.Mode == inventory.KafkaKRaft && inv.Kafka.SeparateControllers() && len(inv.HostsWith(inventory.RoleZooKeeper)) == 0
}

// ClusterIDKey is the stack value holding the cluster's id (role.Value).
const ClusterIDKey = "kafkaClusterId"

// Values: the cluster id, which `kafka-storage.sh format` writes into
// every broker's log directories in KRaft mode. It is made once and kept,
// since brokers formatted with different ids never form one cluster; in
// ZooKeeper mode too, so that a cluster moved to KRaft later keeps one id.
// Not a secret: it is in every broker's meta.properties.
func (*broker) Values(*inventory.Inventory) []role.Value {
	return []role.Value{{Key: ClusterIDKey, New: NewClusterID, Valid: func(id string) error {
		if !ValidClusterID(id) {
			return fmt.Errorf("%q is not a Kafka cluster id", id)
		}
		return nil
	}}}
}

// distro holds where the families differ for this role.
type distro struct {
	packages []string
	javaHome string // "" leaves kafka-run-class.sh to find java on PATH
}

func distroOf(os facts.OS) distro {
	if os.Family == facts.RHEL {
		// curl comes with every RHEL-like system (as curl-minimal on 9,
		// which conflicts with the curl package).
		return distro{packages: []string{"java-17-openjdk-headless", "tar"}, javaHome: "/usr/lib/jvm/jre-17"}
	}
	return distro{packages: []string{"openjdk-17-jre-headless", "curl"}}
}

// Tarball is the distribution the inventory names, as installed on hosts.
func Tarball(inv *inventory.Inventory) install.Tarball {
	return install.NewTarball(inv.Kafka.Artifact, inv.Kafka.SHA512, Home)
}

// ID is the host's broker.id (ZooKeeper mode) or node.id (KRaft): its place
// among the kafka hosts in the inventory, from 1; 0 when it has none.
func ID(inv *inventory.Inventory, h inventory.Host) int {
	return inv.Ordinal(inventory.RoleKafka, h)
}

// controllerIDBase is added to a host's place among the kafka hosts for
// the node id of its controller process when controllers run separately:
// node ids are one namespace for brokers and controllers.
const controllerIDBase = 3000

// ControllerID is the node id of h's KRaft controller: the broker's own
// id on combined nodes, controllerIDBase above it in a controller process.
func ControllerID(inv *inventory.Inventory, h inventory.Host) int {
	if inv.Kafka.SeparateControllers() {
		return controllerIDBase + ID(inv, h)
	}
	return ID(inv, h)
}

// HostOf is the kafka host whose broker (node) id is id, the inverse of
// ID; ok is false when no host has it.
func HostOf(inv *inventory.Inventory, id int) (inventory.Host, bool) {
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		if ID(inv, h) == id {
			return h, true
		}
	}
	return inventory.Host{}, false
}

func (b *broker) Files(c *role.Context) ([]role.File, error) {
	props, err := Properties(c.Inventory, c.Host)
	if err != nil {
		return nil, err
	}
	what := "broker"
	if c.Inventory.Kafka.Mode == inventory.KafkaKRaft && !c.Inventory.Kafka.SeparateControllers() {
		what = "broker and KRaft controller"
	}
	return processFiles(c, props, process{what: what, unit: Unit, unitFile: UnitFile, config: ConfigFile, logDir: LogDir})
}

// process is one Kafka JVM of a host: the broker, or a controller of its
// own.
type process struct{ what, unit, unitFile, config, logDir string }

// processFiles renders a process's properties, its systemd unit and the
// TLS files it reads.
func processFiles(c *role.Context, props []Group, p process) ([]role.File, error) {
	conf, err := c.Templates.Render("kafka/server.properties.tmpl", map[string]any{"Groups": props})
	if err != nil {
		return nil, err
	}
	var after []string
	if c.Inventory.Kafka.UsesZooKeeper() && c.Host.Has(inventory.RoleZooKeeper) {
		// Started after the ZooKeeper server beside it and stopped before
		// it. Wants, not Requires: stopping ZooKeeper alone (a drill)
		// must not take the process down with it.
		after = append(after, zookeeper.Unit)
	}
	unit, err := c.Templates.Render("kafka/kafka.service.tmpl", map[string]any{
		"What": p.what, "Unit": p.unit, "After": after, "Heap": c.Inventory.Kafka.Heap, "LogDir": p.logDir,
		"JavaHome": distroOf(c.OS).javaHome, "Home": Home, "Config": p.config,
	})
	if err != nil {
		return nil, err
	}
	tls, err := tlsFiles(c)
	if err != nil {
		return nil, err
	}
	return append([]role.File{
		{Path: p.config, Content: conf, Mode: 0o644, Owner: "root:root"},
		{Path: p.unitFile, Content: unit, Mode: 0o644, Owner: "root:root", Unit: p.unit},
	}, tls...), nil
}

// listening waits until something on the host accepts connections on
// port: a Kafka process replays its logs before it listens.
func listening(what string, port int, unit, logDir string) step.Step {
	return step.Wait(fmt.Sprintf("%s listening on %d", what, port), ListenTimeout,
		fmt.Sprintf("see `journalctl -u %s` and %s/server.log on this host", unit, logDir), portOpen(port))
}

// portOpen probes port on the host's loopback address.
func portOpen(port int) step.Probe {
	return func(ctx context.Context, h step.Host) (bool, string, error) {
		_, err := h.Run(ctx, step.TCPProbe(port, ""), remote.WithTimeout(10*time.Second))
		if remote.IsExit(err) {
			return false, fmt.Sprintf("nothing accepts connections on port %d", port), nil
		}
		return err == nil, "", err
	}
}

func (b *broker) Plan(c *role.Context) (role.Plan, error) {
	files, err := b.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	merged, err := merged(c.Inventory, c.Host)
	if err != nil {
		return role.Plan{}, err
	}
	kraft := c.Inventory.Kafka.Mode == inventory.KafkaKRaft
	clusterID := c.Values[ClusterIDKey]
	if kraft && !ValidClusterID(clusterID) {
		return role.Plan{}, fmt.Errorf("KRaft mode needs the cluster id kept in the stack, got %q (want 22 characters of URL-safe base64, see kafka.NewClusterID)", clusterID)
	}
	d := distroOf(c.OS)
	t := Tarball(c.Inventory)
	steps := []step.Step{
		step.Packages(map[facts.Family][]string{c.OS.Family: d.packages}),
		step.User(user, DataDir),
	}
	steps = append(steps, t.Steps()...)
	changes := t.Changes()
	steps = append(steps, step.Dir(ConfigDir, 0o755, "root:root"))
	if kraft && c.Inventory.Kafka.SeparateControllers() && len(c.Inventory.HostsWith(inventory.RoleZooKeeper)) > 0 {
		steps = append(steps, copiedBeforeLeaving(c))
	}
	for _, dir := range logDirs(merged) {
		if !within(dir, DataDir) {
			steps = append(steps, makeLogDir(dir))
		}
		steps = append(steps, step.Dir(dir, 0o750, user+":"+user))
	}
	steps = append(steps, step.Dir(LogDir, 0o750, user+":"+user))
	if c.Inventory.Kafka.TLS() {
		steps = append(steps, step.Dir(TLSDir, 0o750, "root:"+user))
	}
	for _, f := range files {
		s := f.Step()
		if kraft && f.Path == ConfigFile {
			// The storage is formatted with the configuration in place.
			steps = append(steps, s)
			changes = append(changes, s.ID)
			s = formatStep(c.OS, clusterID, logDirs(merged), ConfigFile, LogDir)
		}
		steps = append(steps, s)
		changes = append(changes, s.ID)
	}
	port := listenerPort(merged)
	started := step.Service(Unit, step.Running)
	steps = append(steps,
		b.restartStep(c, changes...),
		started,
		listening("kafka", port, Unit, LogDir),
		b.startedStep(c, started.ID))
	if c.Inventory.Kafka.Mode == inventory.KafkaMigrating {
		steps = append(steps, waitCopied(c))
	}
	return role.Plan{Files: files, Steps: steps, Settings: settings(c.Inventory)}, nil
}

// settings are what the engine reads back from the state to know where
// each broker and controller is: the mode and the release it last ran.
func settings(inv *inventory.Inventory) map[string]string {
	return map[string]string{"mode": string(inv.Kafka.Mode), "version": inv.Kafka.Version}
}

// startedStep holds the host's remaining steps, after this run started its
// broker (a rebuilt host, an empty disk, a broker stopped by hand), until
// the broker is back in the cluster and no partition is under-replicated:
// the rolling turn is taken for it, so no other broker restarts while this
// one still copies its replicas.
func (b *broker) startedStep(c *role.Context, service step.ID) step.Step {
	return step.AfterChange("kafka replicas in sync after its start", "wait until broker "+strconv.Itoa(ID(c.Inventory, c.Host))+" is back and no partition is under-replicated", []step.ID{service},
		func(ctx context.Context, t *step.Target) error {
			if b.restarter != nil {
				return nil // tests without a cluster to wait on
			}
			return b.rolling(ctx, c, t, nil)
		})
}

// restartStep restarts a running broker when one of the steps after names
// changed something in this run, rolling unless the role was given a
// restarter.
func (b *broker) restartStep(c *role.Context, after ...step.ID) step.Step {
	return step.RestartStale(Unit, []string{ConfigFile, UnitFile, Home}, after, func(ctx context.Context, t *step.Target, restart func(context.Context) error) error {
		if b.restarter != nil {
			return b.restarter(ctx, t, restart)
		}
		return b.rolling(ctx, c, t, restart)
	})
}

// formatStep runs `kafka-storage.sh format` once: a log directory that
// already holds the cluster's meta.properties is left alone, and one
// formatted for another cluster is an error, never reformatted (that would
// throw its data away).
func formatStep(os facts.OS, clusterID string, dirs []string, config, logDir string) step.Step {
	return step.Planned("kafka storage format", func(ctx context.Context, t *step.Target) (string, error) {
		formatted := 0
		for _, dir := range dirs {
			b, err := t.Host.ReadFile(ctx, dir+"/meta.properties")
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", err
			}
			if got := metaClusterID(string(b)); got != clusterID {
				return "", fmt.Errorf("%s/meta.properties belongs to cluster %q, but this cluster's id is %q: refusing to reformat it, which would delete its data (remove the directory by hand if that is what you want)", dir, got, clusterID)
			}
			formatted++
		}
		if formatted == len(dirs) {
			return "", nil
		}
		return formatCommand(os, clusterID, dirs, config, logDir), nil
	})
}

// FormatCommand formats the log directories dirs for the cluster
// clusterID with the configuration in place, as root on a host running os,
// then gives them to the kafka user: the tool needs no running broker.
func FormatCommand(os facts.OS, clusterID string, dirs []string) string {
	return formatCommand(os, clusterID, dirs, ConfigFile, LogDir)
}

func formatCommand(os facts.OS, clusterID string, dirs []string, config, logDir string) string {
	q := remote.ShellQuote
	env := "LOG_DIR=" + logDir
	if javaHome := distroOf(os).javaHome; javaHome != "" {
		env += " JAVA_HOME=" + javaHome
	}
	chown := "chown -R " + user + ":" + user
	for _, dir := range dirs {
		chown += " " + q(dir)
	}
	return fmt.Sprintf("%s %s/bin/kafka-storage.sh format --ignore-formatted --cluster-id %s --config %s && %s",
		env, Home, q(clusterID), config, chown)
}

func metaClusterID(meta string) string {
	for _, line := range strings.Split(meta, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster.id="); ok {
			return v
		}
	}
	return ""
}

func (b *broker) Remove(c *role.Context) ([]step.Step, error) {
	merged, err := merged(c.Inventory, c.Host)
	if err != nil {
		return nil, err
	}
	steps := step.UnitAbsent(Unit)
	for _, dir := range logDirs(merged) {
		if within(dir, DataDir) {
			steps = append(steps, step.TreeAbsent(dir))
		} else {
			steps = append(steps, removeLogDir(dir))
		}
	}
	steps = append(steps, step.TreeAbsent(LogDir))
	if controllersFirst(c.Inventory) {
		// The controllers, which the brokers need, are removed after
		// them and take what both use with them.
		return append(steps, step.FileAbsent(ConfigFile)), nil
	}
	return append(steps, sharedAbsent(c.Inventory)...), nil
}

// sharedAbsent removes what a host's broker and controller processes share
// (the configuration directory, the distribution, the kafka user), for
// the one of the two roles removed last.
func sharedAbsent(inv *inventory.Inventory) []step.Step {
	steps := append([]step.Step{step.TreeAbsent(ConfigDir)}, Tarball(inv).Remove()...)
	return append(steps,
		step.UserAbsent(user),
		step.EmptyDirAbsent("/etc/trafficlab"),
		step.EmptyDirAbsent("/var/lib/trafficlab"))
}

// Logs: the journal, and the broker's own logs (server.log, the
// controller's, the GC log).
func (*broker) Logs(*role.Context) role.Logs {
	return role.Logs{Units: []string{Unit}, Files: []string{LogDir + "/*.log"}}
}

func (*broker) Keeps(c *role.Context) []string {
	keeps := []string{"the packages installed (" + strings.Join(distroOf(c.OS).packages, ", ") + ")"}
	if merged, err := merged(c.Inventory, c.Host); err == nil {
		for _, dir := range logDirs(merged) {
			if !within(dir, DataDir) {
				keeps = append(keeps, "the log directory "+dir+" with its data, unless trafficlab made it (it holds "+CreatedMark+")")
			}
		}
	}
	return keeps
}

// CreatedMark is the file trafficlab leaves in a log directory outside
// DataDir that it made, so that destroy deletes that directory and no
// other: log.dirs may name a directory the user made, mounted or filled.
// Kafka loads only directories from a log directory and ignores it.
const CreatedMark = ".trafficlab-created"

func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// makeLogDir makes a missing log directory, marked as trafficlab's.
func makeLogDir(dir string) step.Step {
	q := remote.ShellQuote(dir)
	return step.Command("make "+dir, "test -e "+q+" || test -L "+q, "mkdir -p -- "+q+" && touch -- "+q+"/"+CreatedMark)
}

// removeLogDir deletes a log directory outside DataDir only when it holds
// trafficlab's mark (and is no link to somewhere else).
func removeLogDir(dir string) step.Step {
	q := remote.ShellQuote(dir)
	return step.Command("remove "+dir+" if trafficlab made it", "test -L "+q+" || ! test -f "+q+"/"+CreatedMark, "rm -rf -- "+q)
}

// LogDirs are the broker's log directories on h: what a lost disk takes
// with it.
func LogDirs(inv *inventory.Inventory, h inventory.Host) ([]string, error) {
	props, err := merged(inv, h)
	if err != nil {
		return nil, err
	}
	return logDirs(props), nil
}

// logDirs are the directories of log.dirs (or log.dir) in the broker's
// properties.
func logDirs(props map[string]string) []string {
	v := props["log.dirs"]
	if v == "" {
		v = props["log.dir"]
	}
	var dirs []string
	for _, d := range strings.Split(v, ",") {
		if d = strings.TrimSpace(d); d != "" && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// listenerPort is the port of the broker's first non-controller listener.
func listenerPort(props map[string]string) int {
	for _, l := range strings.Split(props["listeners"], ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(l), "://")
		if !ok || name == "CONTROLLER" {
			continue
		}
		if _, p, err := net.SplitHostPort(addr); err == nil {
			if n, err := strconv.Atoi(p); err == nil {
				return n
			}
		}
	}
	return Port
}

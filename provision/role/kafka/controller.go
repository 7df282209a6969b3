package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
	"github.com/trafficlab/trafficlab/provision/step"
	"github.com/trafficlab/trafficlab/provision/zkmeta"
)

// Where a KRaft controller of its own (kafka.controllers: separate) keeps
// things, beside the broker on the same host.
const (
	ControllerUnit       = "trafficlab-kafka-controller.service"
	ControllerUnitFile   = "/etc/systemd/system/" + ControllerUnit
	ControllerConfigFile = ConfigDir + "/controller.properties"
	ControllerDataDir    = "/var/lib/trafficlab/kafka-controller"
	ControllerLogDir     = "/var/log/kafka-controller"
)

// ControllerName is the controller role's name.
const ControllerName = "kafka-controller"

// NewController returns the role of the KRaft controllers that run in
// processes of their own: what Kafka's migration from ZooKeeper needs
// (it does not migrate to combined nodes), and what a migrated cluster
// keeps. Combined nodes (the default for a new KRaft cluster) are the
// kafka role's.
func NewController() role.Role { return &controller{} }

type controller struct {
	// turn and halted: as the broker's, one controller at a time.
	turn   sync.Mutex
	halted error
}

func (*controller) Name() string             { return ControllerName }
func (*controller) On(h inventory.Host) bool { return h.Has(inventory.RoleKafka) }

// Enabled: only clusters with separate controllers have this role.
func (*controller) Enabled(inv *inventory.Inventory) bool { return inv.Kafka.SeparateControllers() }

// Needs: while migrating, the controllers start after ZooKeeper, whose
// metadata they copy, and before the brokers, which are then moved onto
// them; in KRaft mode they are taken out of migration mode only after
// every broker runs as a KRaft broker, as Kafka's procedure requires.
// After that (ZooKeeper gone) they come first: upgrades go controllers
// first.
func (*controller) Needs(inv *inventory.Inventory) []string {
	switch {
	case inv.Kafka.Mode == inventory.KafkaMigrating:
		return []string{zookeeper.Name}
	case controllersFirst(inv):
		return nil
	}
	return []string{Name}
}

func (*controller) Values(inv *inventory.Inventory) []role.Value { return (&broker{}).Values(inv) }

// ControllerProperties renders the properties of h's controller process.
func ControllerProperties(inv *inventory.Inventory, h inventory.Host) ([]Group, error) {
	if ID(inv, h) == 0 {
		return nil, fmt.Errorf("%s does not have the kafka role", h.Name)
	}
	k := inv.Kafka
	// The controller reaches the brokers on their inter-broker listener
	// (while migrating, it sends them the ZooKeeper controller's
	// requests), so that listener's protocol is in its map too.
	controller, interBroker, protocol := "CONTROLLER:PLAINTEXT", clientListener(k), clientListener(k)
	if k.TLS() {
		controller, interBroker, protocol = "CONTROLLER:SSL", internal, "SSL"
	}
	groups := []Group{
		{"This node: a KRaft controller in a process of its own, beside the broker of this host", []Property{
			{"process.roles", "controller"},
			{"node.id", strconv.Itoa(ControllerID(inv, h))},
			{"controller.quorum.voters", Voters(inv)},
			{"listeners", fmt.Sprintf("CONTROLLER://0.0.0.0:%d", ControllerPort)},
			{"controller.listener.names", "CONTROLLER"},
			{"inter.broker.listener.name", interBroker},
			{"listener.security.protocol.map", controller + "," + interBroker + ":" + protocol},
		}},
		{"The metadata log", []Property{{"log.dirs", ControllerDataDir}}},
	}
	if k.TLS() {
		groups = append(groups, Group{"TLS: the cluster CA's certificates, PEM; brokers and controllers authenticate each other", []Property{
			{"ssl.keystore.type", "PEM"},
			{"ssl.keystore.location", KeystoreFile},
			{"ssl.truststore.type", "PEM"},
			{"ssl.truststore.location", CAFile},
			{"ssl.endpoint.identification.algorithm", "https"},
			{"listener.name.controller.ssl.client.auth", "required"},
		}})
	}
	if k.Mode == inventory.KafkaMigrating {
		zk := zooKeeperGroup(inv)
		zk.Title = "Migration from ZooKeeper: copy the metadata out of this ensemble, then keep writing it there until the migration is finalised"
		zk.Properties = append([]Property{{"zookeeper.metadata.migration.enable", "true"}}, zk.Properties...)
		groups = append(groups, zk)
	}
	return groups, nil
}

func (c *controller) Files(rc *role.Context) ([]role.File, error) {
	props, err := ControllerProperties(rc.Inventory, rc.Host)
	if err != nil {
		return nil, err
	}
	// The TLS files are the broker's; written here too, so that a
	// controller on a rebuilt host does not wait for the broker's role.
	return processFiles(rc, props, process{what: "KRaft controller", unit: ControllerUnit, unitFile: ControllerUnitFile, config: ControllerConfigFile, logDir: ControllerLogDir})
}

func (c *controller) Plan(rc *role.Context) (role.Plan, error) {
	files, err := c.Files(rc)
	if err != nil {
		return role.Plan{}, err
	}
	clusterID := rc.Values[ClusterIDKey]
	if !ValidClusterID(clusterID) {
		return role.Plan{}, fmt.Errorf("the KRaft controllers need the cluster id kept in the stack, got %q", clusterID)
	}
	d := distroOf(rc.OS)
	t := Tarball(rc.Inventory)
	steps := []step.Step{
		step.Packages(map[facts.Family][]string{rc.OS.Family: d.packages}),
		step.User(user, DataDir),
	}
	steps = append(steps, t.Steps()...)
	changes := t.Changes()
	steps = append(steps,
		step.Dir(ConfigDir, 0o755, "root:root"),
		step.Dir(ControllerDataDir, 0o750, user+":"+user),
		step.Dir(ControllerLogDir, 0o750, user+":"+user))
	if rc.Inventory.Kafka.TLS() {
		steps = append(steps, step.Dir(TLSDir, 0o750, "root:"+user))
	}
	for _, f := range files {
		s := f.Step()
		steps = append(steps, s)
		changes = append(changes, s.ID)
		if f.Path == ControllerConfigFile {
			s = formatStep(rc.OS, clusterID, []string{ControllerDataDir}, ControllerConfigFile, ControllerLogDir)
			steps = append(steps, s)
			changes = append(changes, s.ID)
		}
	}
	started := step.Service(ControllerUnit, step.Running)
	steps = append(steps,
		step.RestartStale(ControllerUnit, []string{ControllerConfigFile, ControllerUnitFile, Home}, changes, func(ctx context.Context, t *step.Target, restart func(context.Context) error) error {
			return c.rolling(ctx, rc, t, restart)
		}),
		started,
		listening("kafka controller", ControllerPort, ControllerUnit, ControllerLogDir))
	return role.Plan{Files: files, Steps: steps, Settings: settings(rc.Inventory)}, nil
}

// rolling restarts this host's controller when it is its turn, then waits
// until the quorum has a leader again and this controller has caught up
// with it. A controller that does not recover stops the roll.
func (c *controller) rolling(ctx context.Context, rc *role.Context, t *step.Target, restart func(context.Context) error) error {
	c.turn.Lock()
	defer c.turn.Unlock()
	id := ControllerID(rc.Inventory, rc.Host)
	if c.halted != nil {
		return fmt.Errorf("controller %d not restarted: the rolling restart stopped at an earlier controller: %w", id, c.halted)
	}
	rc.Notef("kafka: restarting controller %d (one controller at a time)", id)
	start := time.Now()
	if err := restart(ctx); err != nil {
		c.halted = err
		return err
	}
	if rc.Dial == nil {
		return nil
	}
	// Its own listener first: until it is back, the leader still counts
	// the log end the stopped controller had.
	open := portOpen(ControllerPort)
	err := waitFor(ctx, ListenTimeout, func(ctx context.Context) (bool, string, error) { return open(ctx, t.Host) })
	if err == nil {
		err = waitQuorum(ctx, rc, id)
	}
	if err != nil {
		err = fmt.Errorf("controller %d after its restart: %w%s", id, err, lastLines(ctx, t.Host, ControllerLogDir))
		c.halted = err
		return err
	}
	rc.Notef("kafka: controller %d back in the quorum and caught up after %.1fs", id, time.Since(start).Seconds())
	return nil
}

// waitQuorum waits until the controllers' quorum has a leader and voter id
// is no more than a few records behind it, asking the controllers
// themselves (a broker in ZooKeeper mode does not forward the question).
func waitQuorum(ctx context.Context, rc *role.Context, id int) error {
	dial, err := AdminDial(rc.Inventory, rc.Secrets, rc.Dial)
	if err != nil {
		return err
	}
	a := kafkaadmin.NewWithControllers(ControllerAddrs(rc.Inventory), dial)
	defer a.Close()
	return waitFor(ctx, BackTimeout, func(ctx context.Context) (bool, string, error) {
		q, err := a.Quorum(ctx)
		if err != nil {
			return false, err.Error(), nil
		}
		if q.Leader < 0 {
			return false, "the quorum has no leader", nil
		}
		for _, v := range q.Voters {
			if v.ID == id {
				if lag := q.Lag(v); lag > maxVoterLag {
					return false, fmt.Sprintf("controller %d is %d records behind the leader", id, lag), nil
				}
				return true, "", nil
			}
		}
		return false, fmt.Sprintf("controller %d is not among the voters %v", id, q.Voters), nil
	})
}

// ControllerAddrs are the controllers' listeners, which answer for the
// quorum themselves (brokers in ZooKeeper mode do not forward to it).
func ControllerAddrs(inv *inventory.Inventory) []string {
	var addrs []string
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		addrs = append(addrs, net.JoinHostPort(h.Name, strconv.Itoa(ControllerPort)))
	}
	return addrs
}

// ControllerHostOf is the kafka host whose controller has node id id.
func ControllerHostOf(inv *inventory.Inventory, id int) (inventory.Host, bool) {
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		if ControllerID(inv, h) == id {
			return h, true
		}
	}
	return inventory.Host{}, false
}

// maxVoterLag is how far behind a restarted controller may be and count as
// caught up: the log moves on while it is asked.
const maxVoterLag = 10

// Remove: the controller's own unit, files and metadata log; on a
// migrated cluster, whose controllers are removed after the brokers, also
// what the two processes share.
func (c *controller) Remove(rc *role.Context) ([]step.Step, error) {
	steps := append(step.UnitAbsent(ControllerUnit),
		step.FileAbsent(ControllerConfigFile),
		step.TreeAbsent(ControllerDataDir),
		step.TreeAbsent(ControllerLogDir))
	if controllersFirst(rc.Inventory) {
		steps = append(steps, sharedAbsent(rc.Inventory)...)
	}
	return steps, nil
}

func (c *controller) Logs(*role.Context) role.Logs {
	return role.Logs{Units: []string{ControllerUnit}, Files: []string{ControllerLogDir + "/*.log"}}
}

func (c *controller) Keeps(rc *role.Context) []string {
	if controllersFirst(rc.Inventory) {
		return []string{"the packages installed (" + strings.Join(distroOf(rc.OS).packages, ", ") + ")"}
	}
	return []string{"the Kafka distribution, the kafka user and the TLS files, which are the broker's"}
}

// lastLines is the end of server.log in dir on h, as LastLogLines.
func lastLines(ctx context.Context, h step.Host, dir string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	file := dir + "/server.log"
	res, err := h.Run(ctx, fmt.Sprintf("tail -n %d %s", logTail, file), remote.WithTimeout(10*time.Second))
	out := strings.TrimRight(string(res.Stdout), "\n")
	if err != nil || out == "" {
		return ""
	}
	return fmt.Sprintf("\nlast lines of %s on %s:\n%s", file, h.Name(), out)
}

// CopyTimeout bounds the wait for the KRaft controllers to copy the
// metadata out of ZooKeeper once every broker runs in migration mode.
var CopyTimeout = 5 * time.Minute

// migrationState asks ZooKeeper, through c.Dial, how far the migration is.
func migrationState(ctx context.Context, c *role.Context) (zkmeta.Migration, bool, error) {
	var servers []string
	for _, z := range c.Inventory.HostsWith(inventory.RoleZooKeeper) {
		servers = append(servers, net.JoinHostPort(z.Name, strconv.Itoa(zookeeper.ClientPort)))
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	zc, err := zkmeta.Open(ctx, servers, zkmeta.DialFunc(c.Dial))
	if err != nil {
		return zkmeta.Migration{}, false, err
	}
	defer zc.Close()
	return zc.Migration()
}

// waitCopied holds a broker in migration mode until the KRaft controllers
// have copied the metadata out of ZooKeeper: they start once every broker
// has registered with them, so the last broker to restart lets them all
// go on. kafka.mode: kraft is safe only after it.
func waitCopied(c *role.Context) step.Step {
	return step.Wait("kafka metadata copied to the KRaft controllers", CopyTimeout,
		fmt.Sprintf("the controllers copy it once every broker runs in migration mode; see `journalctl -u %s` and %s/server.log on the kafka hosts", ControllerUnit, ControllerLogDir),
		func(ctx context.Context, _ step.Host) (bool, string, error) {
			return copied(ctx, c)
		})
}

func copied(ctx context.Context, c *role.Context) (bool, string, error) {
	if c.Dial == nil {
		return true, "", nil // planning offline
	}
	m, ok, err := migrationState(ctx, c)
	switch {
	case err != nil:
		return false, err.Error(), nil
	case !ok:
		return false, "no KRaft controller has taken the cluster over yet (no /migration in ZooKeeper)", nil
	case !m.Copied():
		return false, fmt.Sprintf("controller %d has not finished copying the metadata out of ZooKeeper", m.ControllerID), nil
	}
	return true, "", nil
}

// copiedBeforeLeaving refuses to move a broker that still runs in
// migration mode to KRaft before the controllers have the metadata: the
// broker would join a cluster that knows none of its topics.
func copiedBeforeLeaving(c *role.Context) step.Step {
	return step.Wait("kafka metadata copied before the broker leaves ZooKeeper", 30*time.Second,
		"run provision up with kafka.mode: migrating until it succeeds first",
		func(ctx context.Context, h step.Host) (bool, string, error) {
			b, err := h.ReadFile(ctx, ConfigFile)
			if err != nil || !strings.Contains(string(b), "\nzookeeper.metadata.migration.enable=true") {
				return true, "", nil // not in migration mode (any more)
			}
			return copied(ctx, c)
		})
}

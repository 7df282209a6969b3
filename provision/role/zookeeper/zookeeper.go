// Package zookeeper is the role of the hosts that form the ZooKeeper
// ensemble Kafka keeps its metadata in (Kafka's ZooKeeper mode): Java 17,
// ZooKeeper itself (Debian's package, or Apache's tarball on RHEL-like
// hosts, which package none), myid and zoo.cfg, and a systemd unit of
// trafficlab's. The role is done only when the ensemble has a quorum.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/install"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Where the role keeps things, the same on every family. The data lives
// apart from Debian's /var/lib/zookeeper, whose myid is a link into the
// package's example configuration.
const (
	Unit       = "trafficlab-zookeeper.service"
	ConfigDir  = "/etc/trafficlab/zookeeper"
	ConfigFile = ConfigDir + "/zoo.cfg"
	DataDir    = "/var/lib/trafficlab/zookeeper"
	MyIDFile   = DataDir + "/myid"
	UnitFile   = "/etc/systemd/system/" + Unit
	ClientPort = inventory.ZooKeeperClientPort
	user       = "zookeeper"
	// Link is where the Apache tarball is unpacked on RHEL-like hosts.
	Link = "/opt/zookeeper"
)

// QuorumTimeout bounds the wait for the ensemble's quorum on `up`: the
// other servers are configured at the same time, so a few of them may
// start a minute later than this one.
var QuorumTimeout = 3 * time.Minute

// New returns the ZooKeeper role.
func New() role.Role { return zk{turn: &sync.Mutex{}} }

type zk struct {
	// turn is held by the server restarting until it serves again, so that
	// a configuration change restarts the ensemble one server at a time
	// and it never loses its quorum. Roles live for the whole run.
	turn *sync.Mutex
}

// Name is the role's name.
const Name = "zookeeper"

func (zk) Name() string                        { return Name }
func (zk) On(h inventory.Host) bool            { return h.Has(inventory.RoleZooKeeper) }
func (zk) Needs(*inventory.Inventory) []string { return nil }

// distro holds where the families differ for this role.
type distro struct {
	packages  []string
	java      string
	classPath string
	jvmFlags  []string
	install   string // what the unit runs, for its comment
	tarball   bool   // Apache's tarball rather than a package
}

func distroOf(os facts.OS) distro {
	if os.Family == facts.RHEL {
		return distro{
			packages: []string{"java-17-openjdk-headless", "tar"},
			// The alternatives link of Java 17 itself: /usr/bin/java may
			// be another Java installed beside it.
			java: "/usr/lib/jvm/jre-17/bin/java",
			// Java expands lib/* itself; conf/ holds the tarball's
			// logback.xml, which logs to the console (the journal).
			classPath: Link + "/lib/*:" + Link + "/conf",
			install:   "Apache's tarball, unpacked behind " + Link,
			tarball:   true,
		}
	}
	return distro{
		// The package depends on default-jre (17 on Debian 12); naming
		// 17 keeps Kafka's Java the same on both roles.
		packages: []string{"openjdk-17-jre-headless", "zookeeper"},
		java:     "/usr/bin/java",
		// zookeeper.jar's manifest names its dependencies in
		// /usr/share/java; slf4j-simple sends the log to stderr, the
		// journal (the package leaves logging unbound).
		classPath: "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
		jvmFlags:  []string{"-Dorg.slf4j.simpleLogger.showDateTime=false"},
		install:   "Debian's zookeeper package",
	}
}

// tarball is the Apache distribution of RHEL-like hosts.
func tarball(inv *inventory.Inventory) install.Tarball {
	return install.NewTarball(inv.ZooKeeper.Artifact, inv.ZooKeeper.SHA512, Link)
}

// ID is the host's server number in the ensemble (its myid): its place
// among the zookeeper hosts in the inventory, from 1; 0 when it has none.
func ID(inv *inventory.Inventory, h inventory.Host) int {
	return inv.Ordinal(inventory.RoleZooKeeper, h)
}

type server struct {
	ID   int
	Host string
}

func (zk) Files(c *role.Context) ([]role.File, error) {
	id := ID(c.Inventory, c.Host)
	if id == 0 {
		return nil, fmt.Errorf("%s does not have the zookeeper role", c.Host.Name)
	}
	ensemble := c.Inventory.HostsWith(inventory.RoleZooKeeper)
	var servers []server
	// One server alone runs standalone; listing it would ask for a quorum
	// of one over the network for nothing.
	if len(ensemble) > 1 {
		for i, h := range ensemble {
			addr := h.Name
			if h.Name == c.Host.Name {
				// A server tells its peers its own election address as
				// it resolves it, and Debian resolves a host's own name
				// to 127.0.1.1: a peer that calls back there reaches
				// itself, and the ensemble may never form. Its inventory
				// address is where the others reach it.
				addr = h.Address
			}
			servers = append(servers, server{i + 1, addr})
		}
	}
	cfg, err := c.Templates.Render("zookeeper/zoo.cfg.tmpl", map[string]any{"DataDir": DataDir, "Servers": servers,
		"ClientPort": ClientPort, "PeerPort": inventory.ZooKeeperPeerPort, "ElectionPort": inventory.ZooKeeperElectionPort})
	if err != nil {
		return nil, err
	}
	d := distroOf(c.OS)
	unit, err := c.Templates.Render("zookeeper/zookeeper.service.tmpl", map[string]any{
		"Install": d.install, "Unit": Unit, "Java": d.java, "Heap": c.Inventory.ZooKeeper.Heap,
		"JVMFlags": d.jvmFlags, "ClassPath": d.classPath, "Config": ConfigFile,
	})
	if err != nil {
		return nil, err
	}
	return []role.File{
		{Path: ConfigFile, Content: cfg, Mode: 0o644, Owner: "root:root"},
		{Path: MyIDFile, Content: []byte(strconv.Itoa(id) + "\n"), Mode: 0o644, Owner: user + ":" + user},
		{Path: UnitFile, Content: unit, Mode: 0o644, Owner: "root:root", Unit: Unit},
	}, nil
}

func (z zk) Plan(c *role.Context) (role.Plan, error) {
	files, err := z.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	d := distroOf(c.OS)
	steps := []step.Step{step.Packages(map[facts.Family][]string{c.OS.Family: d.packages})}
	// What a change of makes the running server restart.
	var changes []step.ID
	if d.tarball {
		// Debian's package makes the user; the tarball does not.
		steps = append(steps, step.User(user, DataDir))
		t := tarball(c.Inventory)
		steps = append(steps, t.Steps()...)
		changes = append(changes, t.Changes()...)
	}
	steps = append(steps,
		step.Dir(ConfigDir, 0o755, "root:root"),
		step.Dir(DataDir, 0o750, user+":"+user))
	for _, f := range files {
		s := f.Step()
		steps = append(steps, s)
		changes = append(changes, s.ID)
	}
	ensemble := c.Inventory.HostsWith(inventory.RoleZooKeeper)
	var names []string
	for _, h := range ensemble {
		names = append(names, h.Name)
	}
	steps = append(steps,
		z.restartStep(c, changes...),
		step.Service(Unit, step.Running),
		step.Wait("zookeeper quorum", QuorumTimeout,
			fmt.Sprintf("a quorum needs a majority of %s serving (see `journalctl -u %s` on each)", strings.Join(names, ", "), Unit),
			func(ctx context.Context, h step.Host) (bool, string, error) {
				mode, err := Mode(ctx, h)
				if err != nil {
					return false, err.Error(), nil
				}
				return true, mode, nil
			}))
	return role.Plan{Files: files, Steps: steps}, nil
}

// restartStep restarts a running server when one of the steps after names
// changed something, one server of the ensemble at a time: the next only
// once this one serves again.
func (z zk) restartStep(c *role.Context, after ...step.ID) step.Step {
	return step.RestartRunning(Unit, after, func(ctx context.Context, t *step.Target, restart func(context.Context) error) error {
		z.turn.Lock()
		defer z.turn.Unlock()
		c.Notef("zookeeper: restarting server %d (one server at a time, so the ensemble keeps its quorum)", ID(c.Inventory, c.Host))
		start := time.Now()
		if err := restart(ctx); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, QuorumTimeout)
		defer cancel()
		for {
			mode, err := Mode(wctx, t.Host)
			if err == nil {
				c.Notef("zookeeper: server %d serves again as %s after %.1fs", ID(c.Inventory, c.Host), mode, time.Since(start).Seconds())
				return nil
			}
			select {
			case <-wctx.Done():
				return fmt.Errorf("after its restart the server does not serve within %v: %v (see journalctl -u %s)", QuorumTimeout, err, Unit)
			case <-time.After(500 * time.Millisecond):
			}
		}
	})
}

// Mode asks the server on h which part it plays (`srvr`): "leader",
// "follower" or "standalone". An error says why it does not serve: not
// running, or no quorum ("not currently serving requests").
func Mode(ctx context.Context, h step.Host) (string, error) {
	res, err := h.Run(ctx, step.TCPProbe(ClientPort, "srvr"), remote.WithTimeout(10*time.Second))
	if err != nil {
		if remoteExit(err) {
			return "", fmt.Errorf("not answering on port %d", ClientPort)
		}
		return "", err
	}
	return ParseSrvr(string(res.Stdout))
}

// Ensemble is what the modes of an ensemble's servers say together.
type Ensemble struct {
	Leader  int // index of the leader among the modes; -1 for none or several
	Leaders int // servers that lead (a standalone server leads itself)
	Serving int // servers that answered with a mode
	Quorum  bool
}

// ReadEnsemble reads the modes of an ensemble's servers ("" for one that
// does not serve; see Mode) out of total servers: it has a quorum with
// one leader and a majority serving.
func ReadEnsemble(modes []string, total int) Ensemble {
	e := Ensemble{Leader: -1}
	for i, m := range modes {
		switch m {
		case "":
			continue
		case "leader", "standalone":
			e.Leaders++
			e.Leader = i
		}
		e.Serving++
	}
	if e.Leaders != 1 {
		e.Leader = -1
	}
	e.Quorum = e.Leaders == 1 && e.Serving > total/2
	return e
}

// ParseSrvr reads the mode from the answer to `srvr`.
func ParseSrvr(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "Mode: "); ok {
			switch m {
			case "leader", "follower", "standalone", "observer":
				return m, nil
			}
			return "", fmt.Errorf("mode %q", m)
		}
	}
	if out = strings.TrimSpace(out); out == "" {
		return "", fmt.Errorf("no answer to srvr")
	}
	return "", fmt.Errorf("%q", out)
}

func (zk) Remove(c *role.Context) ([]step.Step, error) {
	steps := append(step.UnitAbsent(Unit),
		step.TreeAbsent(ConfigDir),
		step.TreeAbsent(DataDir),
	)
	if distroOf(c.OS).tarball {
		steps = append(steps, tarball(c.Inventory).Remove()...)
		steps = append(steps, step.UserAbsent(user))
	}
	return append(steps, step.EmptyDirAbsent("/etc/trafficlab"), step.EmptyDirAbsent("/var/lib/trafficlab")), nil
}

// Logs: the server logs to the journal.
func (zk) Logs(*role.Context) role.Logs { return role.Logs{Units: []string{Unit}} }

func (zk) Keeps(c *role.Context) []string {
	d := distroOf(c.OS)
	keeps := []string{"the packages installed (" + strings.Join(d.packages, ", ") + ")"}
	if !d.tarball {
		keeps = append(keeps, "the zookeeper user, which belongs to Debian's package")
	}
	return keeps
}

func remoteExit(err error) bool {
	var exit *remote.ExitError
	return errors.As(err, &exit)
}

//go:build lab && linux

// Package e2e is trafficlab's end-to-end test: one ordered run on one lab
// cycle, with the built binaries run as a user would run them. It needs root
// and builds real machines: run it with `make e2e`.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.yaml.in/yaml/v3"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/engine"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/filebeat"
	kafkarole "github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/lb"
	"github.com/trafficlab/trafficlab/provision/role/web"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
	"github.com/trafficlab/trafficlab/provision/step"
)

// summary is the part of `provision --json` output the test reads.
type summary struct {
	OK        bool           `json:"ok"`
	Error     string         `json:"error"`
	Seconds   float64        `json:"seconds"`
	RunDir    string         `json:"run_dir"`
	Resources map[string]int `json:"resources"`
	Steps     struct {
		Changed, Unchanged, Skipped, Failed int
		WouldChange                         int `json:"would_change"`
	} `json:"steps"`
	PackageSeconds float64 `json:"package_seconds"`
	Hosts          []struct {
		Host    string `json:"host"`
		Changed int    `json:"changed"`
		Failed  bool   `json:"has_failure"`
	} `json:"hosts"`
	Changes []struct {
		Resource string `json:"resource"`
		Op       string `json:"op"`
		Changes  []struct {
			Key, Detail string
		} `json:"changes"`
		Drift []struct {
			Step, Summary, Diff string
		} `json:"drift"`
	} `json:"changes"`
	Failures []struct {
		Host, Resource, Step string
		Error                string `json:"error"`
	} `json:"failures"`
	Kept map[string][]string `json:"kept"`
}

// env is the run's context: where the binaries, the inventory and the
// state are.
type env struct {
	t        *testing.T
	root     string // repository
	provBin  string
	labBin   string
	inv      string // inventory with a short connect timeout
	state    string
	machines []inventory.Host
	parsed   *inventory.Inventory
	// dashboardPassword is the dashboard's login (dashboardURL reads it).
	dashboardPassword string
	// secrets are the stack's, read once for a cluster with Kafka TLS.
	secrets *role.Secrets
}

// kafkaSecrets reads the stack's secrets as provision does (through the
// engine and the pulumi CLI), for the admin connections and logins of a
// cluster with Kafka TLS; a plaintext cluster needs none.
func (e *env) kafkaSecrets(ctx context.Context) role.Secrets {
	e.t.Helper()
	if !e.parsed.Kafka.TLS() {
		return role.Secrets{}
	}
	if e.secrets == nil {
		eng, err := engine.New(engine.Options{Inventory: e.parsed, StateDir: filepath.Join(e.state, "state")})
		if err != nil {
			e.t.Fatal(err)
		}
		s, err := eng.Secrets(ctx)
		if err != nil {
			e.t.Fatalf("the stack's secrets: %v", err)
		}
		e.secrets = &s
	}
	return *e.secrets
}

// kafkaAdmin is provision's admin client of the lab's brokers, through
// the SSH tunnels (the firewall lets only the cluster's hosts in), over
// the brokers' mutual-TLS listener when the cluster has TLS.
func (e *env) kafkaAdmin(ctx context.Context, kc *cluster.Cluster) *kafkaadmin.Admin {
	e.t.Helper()
	a, err := kafkarole.Admin(e.parsed, e.kafkaSecrets(ctx), kc.Dial)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// checkKafkaSecurity tries a sasl_ssl cluster as a stranger would from a
// web host, which the firewall lets reach the clients' listener (its
// filebeat ships there): a plaintext client, a TLS client without a login
// and a wrong password are all refused, filebeat's own login is taken; the
// brokers' own listener is closed to the web host by the firewall and
// wants a client certificate from a broker host.
func (e *env) checkKafkaSecurity(ctx context.Context, kc *cluster.Cluster) {
	e.t.Helper()
	if e.parsed.Kafka.Security != inventory.KafkaSASLSSL {
		return
	}
	brokers := e.parsed.HostsWith(inventory.RoleKafka)
	var from inventory.Host
	for _, h := range e.parsed.HostsWith(inventory.RoleFilebeat) {
		if !h.Has(inventory.RoleKafka) {
			from = h
		}
	}
	if from.Name == "" {
		from = brokers[len(brokers)-1] // a broker is a client host too
	}
	target := brokers[0]
	client := net.JoinHostPort(target.Name, strconv.Itoa(kafkarole.Port))
	via := func(host string) kafkaadmin.DialFunc {
		return func(ctx context.Context, _, addr string) (net.Conn, error) { return kc.DialOn(ctx, host, addr) }
	}
	sec := e.kafkaSecrets(ctx)
	caOnly, err := kafkatls.ClientConfig([]byte(sec.KafkaCA), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	withTLS := kafkaadmin.DialFunc(kafkatls.Dial(kafkatls.DialFunc(via(from.Name)), caOnly))
	produce := func(what, from string, dial kafkaadmin.DialFunc, addr string) {
		a := kafkaadmin.NewWithBrokers([]string{addr}, dial)
		defer a.Close()
		w := a.Writer(e.parsed.Kafka.Topic.Name)
		w.MaxAttempts = 2
		defer w.Close()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := w.WriteMessages(wctx, kafka.Message{Value: []byte("from a stranger")}); err == nil {
			e.t.Errorf("%s from %s: produced to %s, want refused", what, from, addr)
		} else {
			e.t.Logf("%s from %s to %s: refused (%v)", what, from, addr, err)
		}
	}
	produce("a plaintext client", from.Name, via(from.Name), client)
	produce("a TLS client without a login", from.Name, withTLS, client)
	if err := kafkaadmin.Login(ctx, withTLS, client, kafkarole.FilebeatUser, "not-the-password"); !errors.Is(err, kafkaadmin.ErrLoginRefused) {
		e.t.Errorf("login as %s with a wrong password from %s: %v, want refused", kafkarole.FilebeatUser, from.Name, err)
	}
	if err := kafkaadmin.Login(ctx, withTLS, client, kafkarole.FilebeatUser, sec.KafkaFilebeatPassword); err != nil {
		e.t.Errorf("filebeat's own login from %s: %v", from.Name, err)
	}
	// A load balancer is no client of Kafka: the firewall keeps it out.
	for _, lb := range e.parsed.HostsWith(inventory.RoleLB)[:1] {
		for _, port := range []int{kafkarole.Port, kafkarole.InternalPort, kafkarole.ControllerPort} {
			cmd := fmt.Sprintf("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d' 2>/dev/null", target.Address, port)
			if exec.CommandContext(ctx, e.labBin, "ssh", lb.Name, cmd).Run() == nil {
				e.t.Errorf("%s reaches %s:%d, which only the cluster's Kafka clients and brokers may", lb.Name, target.Name, port)
			}
		}
	}
	peer := brokers[1]
	noCert := kafkaadmin.DialFunc(kafkatls.Dial(kafkatls.DialFunc(via(peer.Name)), caOnly))
	produce("a TLS client without a certificate", peer.Name, noCert, net.JoinHostPort(target.Name, strconv.Itoa(kafkarole.InternalPort)))
}

// figure is one line of the closing table.
type figure struct {
	what  string
	value string
}

func TestEndToEnd(t *testing.T) {
	ctx, e := begin(t, "make e2e", 55*time.Minute)
	var figs []figure
	defer func() { printFigures(t, figs) }()

	figs = append(figs, e.labUp(ctx, "default")...)
	baseline := e.trafficlabFiles(ctx)
	nres := e.resourceCount(func(inventory.Host, string) bool { return true })

	// Cold up.
	cold := e.provisionOK(ctx, "up")
	figs = append(figs, figure{fmt.Sprintf("cold up (%d resources)", nres),
		fmt.Sprintf("%.1f s (package installation %.1f s of it)", cold.Seconds, cold.PackageSeconds)})
	if cold.Steps.Changed == 0 || cold.Resources["create"] != nres {
		t.Errorf("cold up: %d steps changed, resources %v; want changes and %d created", cold.Steps.Changed, cold.Resources, nres)
	}
	e.checkMachines(ctx)
	e.checkClosedPorts(ctx)
	e.checkZooKeeper(ctx)
	figs = append(figs, figure{"kafka metadata (3 brokers) answered after", secs(e.checkKafka(ctx))})
	figs = append(figs, e.labMemory(ctx))
	e.checkStatus(ctx)
	kc := cluster.Open(e.parsed, "")
	defer kc.Close()
	kadmin := e.kafkaAdmin(ctx, kc)
	defer kadmin.Close()
	probe, took := e.produceAndFind(ctx, kadmin)
	figs = append(figs, figure{"message produced (acks=all) and read back through the SSH tunnels", secs(took)})

	// The web tier, the data path and what reads it.
	e.checkWebTier(ctx, kadmin)
	figs = append(figs, e.checkVerify(ctx, "verify after the cold up")...)
	figs = append(figs, e.requestToKafka(ctx, kadmin, 100))
	traffic := e.startTraffic(ctx) // the alerts' baseline, until the web servers stop
	e.checkDashboard(ctx)

	// Warm up: nothing changes, quickly.
	var warm, force, preview []float64
	for range 3 {
		s, wall := e.timed(ctx, "up")
		warm = append(warm, wall)
		if s.Steps.Changed != 0 || s.Resources["same"] != nres {
			t.Errorf("second up: %d steps changed, resources %v; want 0 and all unchanged", s.Steps.Changed, s.Resources)
		}
	}
	figs = append(figs, figure{"second up, nothing changed (median of 3, wall)", secsF(median(warm))})
	checkTarget(t, "second up", median(warm), 5)

	// --force: every step runs, none changes anything.
	for range 3 {
		s, wall := e.timed(ctx, "up", "--force")
		force = append(force, wall)
		if s.Steps.Changed != 0 || s.Steps.Failed != 0 || s.Steps.Unchanged == 0 {
			t.Errorf("up --force: steps %+v; want all unchanged", s.Steps)
		}
		e.checkOnlyChecks(s.RunDir)
	}
	figs = append(figs, figure{"up --force (median of 3, wall)", secsF(median(force))})

	// preview --refresh changes nothing on the hosts.
	before := e.etcChecksums(ctx)
	for range 3 {
		s, wall := e.timed(ctx, "preview", "--refresh")
		preview = append(preview, wall)
		if len(s.Changes) != 0 {
			t.Errorf("preview --refresh on a converged lab shows changes: %+v", s.Changes)
		}
	}
	if after := e.etcChecksums(ctx); !maps2Equal(before, after) {
		t.Errorf("preview --refresh changed files on the hosts:\nbefore %v\nafter  %v", before, after)
	}
	figs = append(figs, figure{"preview --refresh (median of 3, wall)", secsF(median(preview))})
	checkTarget(t, "preview --refresh", median(preview), 10)

	// A broker property changed in the inventory restarts the brokers one
	// at a time; the topic and its messages survive.
	figs = append(figs, e.rollingRestart(ctx, kadmin, probe)...)
	if s := e.provisionOK(ctx, "up"); s.Steps.Changed != 0 {
		t.Errorf("up after the rolling restart changed %d steps", s.Steps.Changed)
	}

	// A hand edit of /etc/hosts shows in preview --refresh; up repairs it.
	edited := e.machines[1].Name
	e.sh(ctx, edited, `sed -i '/^# BEGIN trafficlab hosts/,/^# END trafficlab hosts/ s/\(kafka-1\)$/\1 hand-edit/' /etc/hosts && grep -q hand-edit /etc/hosts`)
	s := e.provisionOK(ctx, "preview", "--refresh")
	if len(s.Changes) != 1 || s.Changes[0].Resource != edited+"-base" || !strings.Contains(fmt.Sprint(s.Changes[0].Changes), "/etc/hosts") {
		t.Errorf("preview --refresh after a hand edit on %s: %+v; want %s-base's /etc/hosts", edited, s.Changes, edited)
	} else if d := fmt.Sprint(s.Changes[0].Drift); !strings.Contains(d, "hand-edit") {
		t.Errorf("preview --refresh does not show the edit's diff: %s", d)
	}
	s = e.provisionOK(ctx, "up")
	if s.Steps.Changed == 0 || s.Resources["update"] != 1 {
		t.Errorf("up after the hand edit: %d steps changed, resources %v; want the one resource repaired", s.Steps.Changed, s.Resources)
	}
	if out := e.sh(ctx, edited, "cat /etc/hosts"); strings.Contains(out, "hand-edit") {
		t.Errorf("up did not repair /etc/hosts on %s:\n%s", edited, out)
	}

	// A machine cut off during up: the others finish, the failure is
	// named, the exit status is not 0; after healing, up converges.
	cut := e.machines[2].Name
	s, err := e.cutDuringUp(ctx, cut)
	if err == nil {
		t.Errorf("up with %s cut off exited 0", cut)
	}
	if len(s.Failures) == 0 || s.Failures[0].Host != cut || !strings.Contains(s.Failures[0].Resource, cut) {
		t.Errorf("failures %+v; want %s named", s.Failures, cut)
	}
	for _, h := range s.Hosts {
		if h.Host != cut && h.Failed {
			t.Errorf("%s failed although only %s was cut off", h.Host, cut)
		}
	}
	// Every broker depends on the cut machine's ZooKeeper server (and
	// the topic on every broker), so Pulumi skips them all; the rest of
	// the other machines go ahead.
	blocked := e.blockedBy(e.machines[2])
	others := e.resourceCount(func(h inventory.Host, role string) bool {
		return h.Name != cut && !blocked[role]
	})
	if s.Resources["update"] != others {
		t.Errorf("with %s cut off: resources %v; want the %d others that do not depend on it updated", cut, s.Resources, others)
	}
	if out, err := e.lab(ctx, "heal", cut); err != nil {
		t.Fatalf("lab heal: %v\n%s", err, out)
	}
	e.provisionOK(ctx, "up")
	s = e.provisionOK(ctx, "up")
	if s.Steps.Changed != 0 {
		t.Errorf("up after healing did not converge: second run changed %d steps", s.Steps.Changed)
	}

	// Every drill passes and restores.
	figs = append(figs, e.checkDrills(ctx, "all")...)
	e.checkZooKeeper(ctx)
	if _, err := e.findKey(ctx, kadmin, probe); err != nil {
		t.Errorf("after the drills, the message produced before them: %v", err)
	}
	figs = append(figs, e.checkVerify(ctx, "verify after the drills")...)

	// Back up, lose the database, restore: exact again.
	figs = append(figs, e.checkBackupRestore(ctx)...)

	// An up limited to one host re-runs that host's resources only.
	figs = append(figs, e.checkLimitedUp(ctx, e.machines[1].Name))

	// A broker machine lost with its disk, recreated and rebuilt.
	figs = append(figs, e.checkReplace(ctx, e.machines[1].Name)...)

	// Every web server stopped: traffic_low or no_data fires.
	figs = append(figs, e.checkAlertFires(ctx, traffic))

	// Broken on purpose: verify names what is broken, up repairs it.
	e.breakAndRepair(ctx)

	// The whole upgrade path while traffic flows: ZooKeeper → migrating →
	// KRaft → ZooKeeper gone → Kafka 4; destroy then removes what the
	// upgraded cluster has.
	figs = append(figs, e.checkUpgrade(ctx, kadmin, probe)...)
	nres = e.resourceCount(func(inventory.Host, string) bool { return true })

	// destroy needs a confirmation, and removes what trafficlab added.
	if out, err := e.provision(ctx, "destroy"); err == nil {
		t.Errorf("destroy without --yes and without stdin went ahead:\n%s", out)
	}
	s = e.provisionOK(ctx, "destroy", "--yes")
	if s.Resources["delete"] != nres {
		t.Errorf("destroy: resources %v; want %d deleted", s.Resources, nres)
	}
	if len(s.Kept) != len(e.machines) {
		t.Errorf("destroy does not say what it left on every host: %v", s.Kept)
	}
	for _, m := range e.machines {
		if out := e.sh(ctx, m.Name, "cat /etc/hosts"); strings.Contains(out, "trafficlab") {
			t.Errorf("%s: /etc/hosts block left after destroy:\n%s", m.Name, out)
		}
		// The SSH port stays open, so that destroy never locks anyone out.
		ssh := strconv.Itoa(m.SSH.Port) + "/tcp"
		if out := e.sh(ctx, m.Name, "firewall-cmd --list-ports; firewall-cmd --list-rich-rules"); strings.TrimSpace(out) != ssh {
			t.Errorf("%s: firewall rules left after destroy: %q, want only %s", m.Name, out, ssh)
		}
	}
	if after := e.trafficlabFiles(ctx); !maps2Equal(baseline, after) {
		t.Errorf("trafficlab's files, directories, units or users left after destroy:\nbefore up: %v\nafter destroy: %v", baseline, after)
	}

	start := time.Now()
	if out, err := e.lab(ctx, "down"); err != nil {
		t.Errorf("lab down: %v\n%s", err, out)
	}
	figs = append(figs, figure{"lab down", secs(time.Since(start))})
	e.checkHostClean()
}

// begin is the beginning of an end-to-end run: root, the binaries built,
// no lab in use by someone else (never take one over), and `lab down`
// whatever becomes of the test.
func begin(t *testing.T, how string, timeout time.Duration) (context.Context, *env) {
	if os.Geteuid() != 0 {
		t.Skip("the end-to-end test builds lab machines: run it as root (" + how + ")")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	e := &env{t: t, root: repoRoot(t), state: t.TempDir()}
	e.build(ctx)
	if _, err := os.Stat("/var/lib/trafficlab/lab/state.json"); err == nil {
		t.Fatalf("a lab is already up (/var/lib/trafficlab/lab): run `lab down` first")
	}
	t.Cleanup(func() {
		if _, err := os.Stat("/var/lib/trafficlab/lab"); err == nil {
			if out, err := e.lab(context.Background(), "down"); err != nil {
				t.Errorf("cleanup: lab down: %v\n%s", err, out)
			}
		}
	})
	return ctx, e
}

// labUp brings the layout's machines up, reads the lab's inventory and
// checks the Kafka lab up assembled for it.
func (e *env) labUp(ctx context.Context, layout string) []figure {
	e.t.Helper()
	start := time.Now()
	out, err := e.lab(ctx, "up", "--layout", layout)
	if err != nil {
		e.t.Fatalf("lab up --layout %s: %v\n%s", layout, err, out)
	}
	figs := []figure{{"lab up --layout " + layout + " (6 machines)", secs(time.Since(start))}}
	e.prepareInventory()
	return append(figs, e.checkKafkaArtifact(out)...)
}

// rollingRestart changes a broker property in the inventory: up restarts
// the brokers one at a time, each waiting for the ISR, and the message
// produced before (key probe) survives.
func (e *env) rollingRestart(ctx context.Context, a *kafkaadmin.Admin, probe string) []figure {
	e.t.Helper()
	e.setKafkaProperty("log.cleaner.threads", "2")
	start := time.Now()
	_, progress, err := e.provisionOut(ctx, "up", "--json")
	if err != nil {
		e.t.Fatalf("up after a broker property change: %v\n%s", err, progress)
	}
	figs := []figure{{fmt.Sprintf("rolling restart of %d brokers, %s mode (whole up)", len(e.parsed.HostsWith(inventory.RoleKafka)), e.parsed.Kafka.Mode), secs(time.Since(start))}}
	figs = append(figs, e.checkRolling(progress))
	if _, err := e.findKey(ctx, a, probe); err != nil {
		e.t.Errorf("after the rolling restart, the message produced before it: %v", err)
	}
	return figs
}

// TestEndToEndKRaft is the same story on Kafka 4 in KRaft mode (the kraft
// layout: three combined broker + controller nodes, no ZooKeeper), shorter:
// the quorum, the brokers, the topic's replication, the data path through
// the VIP into MySQL, idempotence, a rolling restart and the Kafka drill.
// `make e2e-kraft` runs it, after `make e2e` in `make ci`.
func TestEndToEndKRaft(t *testing.T) {
	ctx, e := begin(t, "make e2e-kraft", 40*time.Minute)
	var figs []figure
	defer func() { printFigures(t, figs) }()

	figs = append(figs, e.labUp(ctx, "kraft")...)
	if e.parsed.Kafka.Mode != inventory.KafkaKRaft || len(e.parsed.HostsWith(inventory.RoleZooKeeper)) != 0 {
		t.Fatalf("the kraft layout's inventory: mode %s with %d ZooKeeper hosts", e.parsed.Kafka.Mode, len(e.parsed.HostsWith(inventory.RoleZooKeeper)))
	}
	nres := e.resourceCount(func(inventory.Host, string) bool { return true })
	cold := e.provisionOK(ctx, "up")
	figs = append(figs, figure{fmt.Sprintf("cold up (%d resources)", nres),
		fmt.Sprintf("%.1f s (package installation %.1f s of it)", cold.Seconds, cold.PackageSeconds)})
	if !e.parsed.Kafka.TLS() {
		t.Fatalf("the kraft layout's inventory: kafka.security %s, want sasl_ssl", e.parsed.Kafka.Security)
	}
	figs = append(figs, figure{"kafka metadata (3 brokers) answered after", secs(e.checkKafka(ctx))})
	figs = append(figs, e.labMemory(ctx))

	kc := cluster.Open(e.parsed, "")
	defer kc.Close()
	kadmin := e.kafkaAdmin(ctx, kc)
	defer kadmin.Close()
	e.checkKafkaSecurity(ctx, kc)
	e.checkSecurityChangeRefused(ctx)
	figs = append(figs, e.checkQuorum(ctx, kadmin))
	e.checkTopic(ctx, kadmin)
	e.checkStatus(ctx)
	probe, _ := e.produceAndFind(ctx, kadmin)
	figs = append(figs, e.checkVerify(ctx, "verify after the cold up")...)

	var warm []float64
	for range 3 {
		s, wall := e.timed(ctx, "up")
		warm = append(warm, wall)
		if s.Steps.Changed != 0 || s.Resources["same"] != nres {
			t.Errorf("second up: %d steps changed, resources %v; want 0 and all unchanged", s.Steps.Changed, s.Resources)
		}
	}
	figs = append(figs, figure{"second up, nothing changed (median of 3, wall)", secsF(median(warm))})

	figs = append(figs, e.rollingRestart(ctx, kadmin, probe)...)
	figs = append(figs, e.checkQuorum(ctx, kadmin))

	figs = append(figs, e.checkDrills(ctx, "kafka")...)
	// A combined broker + controller node loses its disk: up reformats
	// it under the cluster's id, it rejoins the quorum and re-replicates.
	figs = append(figs, e.checkDrills(ctx, "replace", e.machines[1].Name)...)
	figs = append(figs, e.checkQuorum(ctx, kadmin))
	figs = append(figs, e.checkVerify(ctx, "verify after the drills")...)

	s := e.provisionOK(ctx, "destroy", "--yes")
	if s.Resources["delete"] != nres {
		t.Errorf("destroy: resources %v; want %d deleted", s.Resources, nres)
	}
	start := time.Now()
	if out, err := e.lab(ctx, "down"); err != nil {
		t.Errorf("lab down: %v\n%s", err, out)
	}
	figs = append(figs, figure{"lab down", secs(time.Since(start))})
	e.checkHostClean()
}

// checkQuorum asks the KRaft quorum (DescribeQuorum, through the SSH
// tunnels): one active controller among the three voters, which are the
// three nodes of the inventory, none far behind.
func (e *env) checkQuorum(ctx context.Context, a *kafkaadmin.Admin) figure {
	e.t.Helper()
	var q *kafkaadmin.Quorum
	var err error
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		if q, err = a.Quorum(ctx); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		e.t.Errorf("KRaft quorum: %v", err)
		return figure{}
	}
	var voters, want []int
	leaderVotes := false
	for _, v := range q.Voters {
		voters = append(voters, v.ID)
		leaderVotes = leaderVotes || v.ID == q.Leader
	}
	for _, h := range e.parsed.HostsWith(inventory.RoleKafka) {
		want = append(want, kafkarole.ID(e.parsed, h))
	}
	if !slices.Equal(voters, want) || !leaderVotes {
		e.t.Errorf("KRaft quorum: leader %d, voters %v; want a leader among voters %v", q.Leader, voters, want)
	}
	return figure{"KRaft quorum (DescribeQuorum)", fmt.Sprintf("leader %d, epoch %d, voters %v, high watermark %d", q.Leader, q.Epoch, voters, q.HighWatermark)}
}

// checkTopic: the log topic has a partition per broker, replication 3 and
// min.insync.replicas 2, every replica in sync.
func (e *env) checkTopic(ctx context.Context, a *kafkaadmin.Admin) {
	e.t.Helper()
	md, err := a.Metadata(ctx, "nginxlog")
	if err != nil {
		e.t.Errorf("topic metadata: %v", err)
		return
	}
	topic := md.Topics["nginxlog"]
	if len(topic.Partitions) != 3 || topic.ReplicationFactor() != 3 || len(md.UnderReplicated()) != 0 {
		e.t.Errorf("topic nginxlog: %d partitions, replication %d, under-replicated %v; want 3, 3, none", len(topic.Partitions), topic.ReplicationFactor(), md.UnderReplicated())
	}
	cfg, err := a.TopicConfig(ctx, "nginxlog", "min.insync.replicas")
	if err != nil || cfg["min.insync.replicas"] != "2" {
		e.t.Errorf("topic nginxlog min.insync.replicas: %v %v; want 2", cfg, err)
	}
}

// checkTarget reports a time against its target. Targets are measured and
// printed, never asserted: the lab shares its host's few cores with
// whatever else runs there, and a timing that fails a test only on a busy
// machine would make the whole run flaky.
func checkTarget(t *testing.T, what string, got, target float64) {
	t.Helper()
	if got > target {
		t.Logf("TARGET MISSED: %s took %.1f s (median), target is at most %.0f s (load average: %s)", what, got, target, loadavg())
	}
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s", dir)
	}
	return dir
}

// build builds bin/provision and bin/lab once; the test runs them.
func (e *env) build(ctx context.Context) {
	e.t.Helper()
	e.provBin = filepath.Join(e.root, "bin", "provision")
	e.labBin = filepath.Join(e.root, "bin", "lab")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(e.root, "bin")+"/", "./provision", "./lab")
	cmd.Dir = e.root
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("go build: %v\n%s", err, out)
	}
}

func (e *env) lab(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, e.labBin, args...)
	out, err := cmd.CombinedOutput()
	e.t.Logf("lab %s (%v)", strings.Join(args, " "), err)
	return string(out), err
}

// sh runs a command on a machine through `lab ssh`.
func (e *env) sh(ctx context.Context, machine, script string) string {
	e.t.Helper()
	// The script's output alone: what a login prints besides (a banner,
	// pam_nologin's notice) goes to stderr, shown only when it fails.
	cmd := exec.CommandContext(ctx, e.labBin, "ssh", machine, script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		e.t.Errorf("%s: %s: %v\n%s%s", machine, script, err, out, stderr.String())
	}
	return string(out)
}

// prepareInventory copies the lab's inventory with a short connect
// timeout, so the machine cut off fails in seconds rather than minutes.
func (e *env) prepareInventory() {
	e.t.Helper()
	b, err := os.ReadFile(inventory.LabFile)
	if err != nil {
		e.t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		e.t.Fatal(err)
	}
	ssh, _ := doc["ssh"].(map[string]any)
	if ssh == nil {
		ssh = map[string]any{}
		doc["ssh"] = ssh
	}
	ssh["connect_timeout"] = "15s"
	out, err := yaml.Marshal(doc)
	if err != nil {
		e.t.Fatal(err)
	}
	e.inv = filepath.Join(e.state, "inventory.yaml")
	e.writeInventory(out)
}

// provision runs provision with the test's inventory and state.
func (e *env) provision(ctx context.Context, args ...string) (string, error) {
	stdout, _, err := e.provisionOut(ctx, args...)
	return stdout, err
}

// provisionOut runs provision and returns its stdout and stderr (where
// --json puts the progress lines).
func (e *env) provisionOut(ctx context.Context, args ...string) (string, string, error) {
	args = append(args, "-i", e.inv)
	cmd := exec.CommandContext(ctx, e.provBin, args...)
	cmd.Env = append(os.Environ(), "TRAFFICLAB_STATE="+filepath.Join(e.state, "state"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	e.t.Logf("provision %s (%v)\n%s", strings.Join(args, " "), err, tail(stderr.String(), 40))
	return stdout.String(), stderr.String(), err
}

// provisionJSON runs provision with --json and decodes the summary.
func (e *env) provisionJSON(ctx context.Context, args ...string) (summary, error) {
	out, err := e.provision(ctx, append(args, "--json")...)
	var s summary
	if jerr := json.Unmarshal([]byte(out), &s); jerr != nil {
		e.t.Fatalf("provision %s: no JSON summary (%v): %v\n%s", strings.Join(args, " "), err, jerr, out)
	}
	return s, err
}

func (e *env) provisionOK(ctx context.Context, args ...string) summary {
	e.t.Helper()
	s, err := e.provisionJSON(ctx, args...)
	if err != nil || !s.OK {
		e.t.Fatalf("provision %s: %v: %s %+v", strings.Join(args, " "), err, s.Error, s.Failures)
	}
	return s
}

// timed runs provision and returns its summary and wall time.
func (e *env) timed(ctx context.Context, args ...string) (summary, float64) {
	e.t.Helper()
	start := time.Now()
	s := e.provisionOK(ctx, args...)
	return s, time.Since(start).Seconds()
}

// cutDuringUp starts `up --force` (so every host has work) and cuts the
// machine off while it runs.
func (e *env) cutDuringUp(ctx context.Context, machine string) (summary, error) {
	e.t.Helper()
	type result struct {
		s   summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := e.provisionJSON(ctx, "up", "--force")
		done <- result{s, err}
	}()
	time.Sleep(500 * time.Millisecond)
	if out, err := e.lab(ctx, "cut", machine); err != nil {
		e.t.Fatalf("lab cut: %v\n%s", err, out)
	}
	r := <-done
	return r.s, r.err
}

// checkMachines checks what the base role must have done on every machine.
func (e *env) checkMachines(ctx context.Context) {
	e.t.Helper()
	ntp := e.parsed.Cluster.NTPServers[0]
	for _, m := range e.machines {
		if got := strings.TrimSpace(e.sh(ctx, m.Name, "hostname")); got != m.Name {
			e.t.Errorf("%s: hostname %q", m.Name, got)
		}
		hosts := e.sh(ctx, m.Name, "cat /etc/hosts")
		block := between(hosts, "# BEGIN trafficlab hosts", "# END trafficlab hosts")
		for _, other := range e.machines {
			if !strings.Contains(block, other.Address+"\t"+other.Name) && !strings.Contains(block, other.Address+" "+other.Name) {
				e.t.Errorf("%s: /etc/hosts block lacks %s %s:\n%s", m.Name, other.Address, other.Name, hosts)
			}
		}
		if tz := e.sh(ctx, m.Name, "readlink /etc/localtime"); !strings.HasSuffix(strings.TrimSpace(tz), "zoneinfo/"+e.parsed.Cluster.Timezone) {
			e.t.Errorf("%s: /etc/localtime -> %q, want %s", m.Name, tz, e.parsed.Cluster.Timezone)
		}
		// chrony may need a few polls after its restart.
		var sources string
		for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(3 * time.Second) {
			sources = e.sh(ctx, m.Name, "chronyc -n sources")
			if strings.Contains(sources, "^* "+ntp) {
				break
			}
		}
		if !strings.Contains(sources, "^* "+ntp) {
			e.t.Errorf("%s: chrony not synced to %s:\n%s", m.Name, ntp, sources)
		}
		if st := strings.TrimSpace(e.sh(ctx, m.Name, "firewall-cmd --state")); st != "running" {
			e.t.Errorf("%s: firewalld %q", m.Name, st)
		}
		// Open to all: SSH and the public listeners; MySQL, ZooKeeper and
		// Kafka only to the cluster hosts that use them (rich rules).
		var want []string
		internal := 0
		for _, l := range e.parsed.Listeners(m) {
			switch inventory.Role(l.Role) {
			case inventory.RoleMySQL, inventory.RoleZooKeeper, inventory.RoleKafka:
				internal++
			default:
				want = append(want, strconv.Itoa(l.Port)+"/tcp")
			}
		}
		want = uniqueSorted(want)
		got := uniqueSorted(strings.Fields(e.sh(ctx, m.Name, "firewall-cmd --list-ports")))
		if !slices.Equal(got, want) {
			e.t.Errorf("%s: open ports %v, want %v", m.Name, got, want)
		}
		if rich := e.sh(ctx, m.Name, "firewall-cmd --list-rich-rules"); internal > 0 && !strings.Contains(rich, "source address=") {
			e.t.Errorf("%s: no per-source rules for its %d internal ports:\n%s", m.Name, internal, rich)
		}
		rich := e.sh(ctx, m.Name, "firewall-cmd --list-rich-rules")
		if m.Has(inventory.RoleLB) && !strings.Contains(rich, `protocol value="vrrp"`) {
			e.t.Errorf("%s: no VRRP rule between the LB hosts: %q", m.Name, rich)
		}
		if m.Has(inventory.RoleMySQL) && !strings.Contains(rich, `port="3306"`) {
			e.t.Errorf("%s: no MySQL rule for the consumer hosts: %q", m.Name, rich)
		}
	}
}

// checkOnlyChecks reads the per-host command logs of a run and fails on
// anything that changes a host: with every step unchanged, only checks
// may have run.
func (e *env) checkOnlyChecks(runDir string) {
	e.t.Helper()
	mutating := []string{"upload ", "apt-get install", "systemctl restart", "systemctl try-restart", "systemctl enable", "systemctl start", "firewall-cmd --add", "firewall-cmd --permanent --add", "hostnamectl set", "timedatectl set", "--reload", "useradd", "kafka-storage.sh format", "tar -x"}
	for _, m := range e.machines {
		b, err := os.ReadFile(filepath.Join(runDir, m.Name+".log"))
		if err != nil {
			e.t.Errorf("%s: command log: %v", m.Name, err)
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "==== ") {
				continue
			}
			for _, w := range mutating {
				if strings.Contains(line, w) {
					e.t.Errorf("%s: up --force ran a changing command: %s", m.Name, line)
				}
			}
		}
	}
}

// etcChecksums fingerprints /etc on every machine.
func (e *env) etcChecksums(ctx context.Context) map[string]string {
	out := map[string]string{}
	for _, m := range e.machines {
		out[m.Name] = strings.TrimSpace(e.sh(ctx, m.Name, "find /etc -xdev -type f ! -name ld.so.cache -print0 | sort -z | xargs -0 sha256sum | sha256sum"))
	}
	return out
}

// trafficlabFiles lists, per machine, what trafficlab may add: the files
// under /etc that mention trafficlab, its directories (/etc/trafficlab,
// /var/lib/trafficlab, the Kafka distribution and logs), its systemd units
// (trafficlab-*.service, loaded or only on disk) and the kafka user.
func (e *env) trafficlabFiles(ctx context.Context) map[string]string {
	// /etc/passwd- and the like are the user tools' backups of the
	// previous version: userdel leaves the removed kafka user there.
	const script = `grep -rIl --exclude=passwd- --exclude=group- --exclude=shadow- --exclude=gshadow- trafficlab /etc 2>/dev/null | sort
ls -d /etc/trafficlab /var/lib/trafficlab /opt/kafka /opt/kafka_* /var/log/kafka /opt/filebeat* /var/www/trafficlab /usr/local/lib/trafficlab /var/log/nginx/trafficlab* 2>/dev/null
systemctl list-units --all --no-legend --plain 'trafficlab-*' 2>/dev/null
systemctl list-unit-files --no-legend 'trafficlab-*' 2>/dev/null
getent passwd kafka trafficlab-consumer trafficlab-dashboard
if command -v mysql >/dev/null; then mysql --no-defaults -u root -N -e "SHOW DATABASES LIKE 'traffic'; SELECT User FROM mysql.user WHERE User='consumer'" 2>&1; fi
true`
	out := map[string]string{}
	for _, m := range e.machines {
		o, _ := exec.CommandContext(ctx, e.labBin, "ssh", m.Name, script).CombinedOutput()
		out[m.Name] = strings.TrimSpace(string(o))
	}
	return out
}

// checkClosedPorts tries the cluster's internal ports from where they
// must be refused: from a load balancer (no member of the ensemble, no
// Kafka client) to ZooKeeper's 2181, 2888, 3888 and Kafka's 9092, and
// from this host (no cluster host at all) to 9092; and from a member to
// them, where they must answer.
func (e *env) checkClosedPorts(ctx context.Context) {
	e.t.Helper()
	brokers := e.parsed.HostsWith(inventory.RoleKafka)
	lbs := e.parsed.HostsWith(inventory.RoleLB)
	if len(brokers) < 2 || len(lbs) == 0 || len(e.parsed.HostsWith(inventory.RoleZooKeeper)) == 0 {
		return
	}
	target, member, stranger := brokers[0], brokers[1], lbs[0]
	try := func(from inventory.Host, port int) bool {
		cmd := fmt.Sprintf("timeout 5 bash -c 'exec 3<>/dev/tcp/%s/%d' 2>/dev/null", target.Address, port)
		return exec.CommandContext(ctx, e.labBin, "ssh", from.Name, cmd).Run() == nil
	}
	for _, port := range []int{2181, 2888, 3888, 9092} {
		if try(stranger, port) {
			e.t.Errorf("%s reaches %s:%d, which only the cluster's ZooKeeper and Kafka hosts may", stranger.Name, target.Name, port)
		}
	}
	for _, port := range []int{2181, 9092} {
		if !try(member, port) {
			e.t.Errorf("%s cannot reach %s:%d", member.Name, target.Name, port)
		}
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	if c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(target.Address, "9092")); err == nil {
		c.Close()
		e.t.Errorf("this host, no host of the cluster, reaches %s:9092", target.Name)
	}
	e.t.Logf("internal ports: refused from %s and from this host, open from %s", stranger.Name, member.Name)
}

// memoryLine is lab status's total.
var memoryLine = regexp.MustCompile(`memory of (\d+) machines: (\S+ \S+) PSS \((\S+ \S+) RSS\)`)

// labMemory reads lab status's memory of the machines (3 JVM brokers and,
// in ZooKeeper mode, 3 JVM ZooKeeper servers among them).
func (e *env) labMemory(ctx context.Context) figure {
	e.t.Helper()
	out, err := e.lab(ctx, "status")
	m := memoryLine.FindStringSubmatch(out)
	if err != nil || m == nil {
		e.t.Errorf("lab status: %v, no memory total:\n%s", err, out)
		return figure{}
	}
	return figure{"lab status: memory of the provisioned machines", m[2] + " PSS, " + m[3] + " RSS (target 4 GiB PSS)"}
}

// kafkaLine is lab up's line about the Apache Kafka it assembled.
var kafkaLine = regexp.MustCompile(`kafka (\S+) \(Apache, (\d+) jars from Maven Central\): (\S+) \(([0-9.]+)s\)`)

// checkKafkaArtifact: lab up assembled the layout's Kafka release and the
// inventory points the kafka role at it, with its checksum.
func (e *env) checkKafkaArtifact(labUp string) []figure {
	e.t.Helper()
	m := kafkaLine.FindStringSubmatch(labUp)
	if m == nil {
		e.t.Errorf("lab up does not say which Kafka it assembled:\n%s", labUp)
		return nil
	}
	if e.parsed.Kafka.Artifact != m[3] || e.parsed.Kafka.SHA512 == "" || e.parsed.Kafka.Version != m[1] {
		e.t.Errorf("the lab inventory does not point the kafka role at %s (Kafka %s): version %q artifact %q sha512 %q", m[3], m[1], e.parsed.Kafka.Version, e.parsed.Kafka.Artifact, e.parsed.Kafka.SHA512)
	}
	size := ""
	if fi, err := os.Stat(m[3]); err == nil {
		size = fmt.Sprintf(", %.1f MB tarball", float64(fi.Size())/1e6)
	}
	return []figure{
		{"kafka", fmt.Sprintf("Apache Kafka %s, %s mode, %s jars from Maven Central%s", m[1], e.parsed.Kafka.Mode, m[2], size)},
		{"  of lab up: Kafka assembled (or cache)", m[4] + " s"},
	}
}

// checkDrills runs drills: each passes and restores; their figures.
func (e *env) checkDrills(ctx context.Context, names ...string) []figure {
	e.t.Helper()
	var figs []figure
	for _, d := range e.drills(ctx, names...) {
		if d.Outcome != "passed" || !d.Restored {
			e.t.Errorf("drill %s: %s (restored %v): %s; want passed", d.Drill, d.Outcome, d.Restored, d.Reason)
		}
		figs = append(figs, d.figures()...)
		if d.Drill == "kafka" {
			for _, name := range []string{"lost", "two brokers down: writes acknowledged below min.insync"} {
				if v, ok := d.figure(name); !ok || v != 0 {
					e.t.Errorf("drill kafka: %s = %v (reported %v), want 0", name, v, ok)
				}
			}
			if v, ok := d.figure("time to a new leader of partition 0"); ok {
				checkTarget(e.t, "drill kafka: time to a new leader", v, 10)
			}
		}
		if d.Drill == "replace" {
			if v, ok := d.figure("lost"); !ok || v != 0 {
				e.t.Errorf("drill replace: lost = %v (reported %v), want 0", v, ok)
			}
		}
		if d.Drill == "consumer" {
			for _, name := range []string{"lines lost", "lines counted twice"} {
				if v, ok := d.figure(name); !ok || v != 0 {
					e.t.Errorf("drill consumer: %s = %v (reported %v), want 0", name, v, ok)
				}
			}
			if len(e.parsed.HostsWith(inventory.RoleConsumer)) > 1 {
				v, ok := d.figure("partitions of the killed consumer consumed again after")
				if !ok {
					e.t.Errorf("drill consumer with %d consumers: no rebalance figure", len(e.parsed.HostsWith(inventory.RoleConsumer)))
				}
				checkTarget(e.t, "drill consumer: the killed consumer's partitions consumed again", v, 15)
			}
		}
	}
	return figs
}

// resourceCount counts the resources provision registers (one per role
// per host where the role applies) that keep says to count.
func (e *env) resourceCount(keep func(h inventory.Host, role string) bool) int {
	n := 0
	for _, h := range e.machines {
		for _, ro := range engine.Roles() {
			if role.Applies(ro, e.parsed, h) && keep(h, ro.Name()) {
				n++
			}
		}
	}
	return n
}

// blockedBy returns the roles whose resources wait for a role that host
// cut carries (directly or through another role): with the host cut off,
// Pulumi skips them on every host.
func (e *env) blockedBy(cut inventory.Host) map[string]bool {
	has := map[string]bool{}
	for _, ro := range engine.Roles() {
		if role.Applies(ro, e.parsed, cut) {
			has[ro.Name()] = true
		}
	}
	blocked := map[string]bool{}
	needs := engine.Needs(e.parsed, engine.Roles())
	for changed := true; changed; {
		changed = false
		for r, needed := range needs {
			for _, n := range needed {
				if !blocked[r] && (has[n] || blocked[n]) {
					blocked[r], changed = true, true
				}
			}
		}
	}
	return blocked
}

// checkZooKeeper asks every ZooKeeper server its mode with `srvr` over
// bash's /dev/tcp (the image has no nc; the role's own probe and parser):
// one leader, the others followers.
func (e *env) checkZooKeeper(ctx context.Context) {
	e.t.Helper()
	modes := map[string]int{}
	var seen []string
	for _, m := range e.parsed.HostsWith(inventory.RoleZooKeeper) {
		var mode string
		var err error
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Second) {
			out, _ := exec.CommandContext(ctx, e.labBin, "ssh", m.Name, step.TCPProbe(zookeeper.ClientPort, "srvr")).CombinedOutput()
			if mode, err = zookeeper.ParseSrvr(string(out)); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			e.t.Errorf("%s: zookeeper does not serve: %v", m.Name, err)
			continue
		}
		modes[mode]++
		seen = append(seen, m.Name+" "+mode)
	}
	n := len(e.parsed.HostsWith(inventory.RoleZooKeeper))
	if modes["leader"] != 1 || modes["follower"] != n-1 {
		e.t.Errorf("zookeeper ensemble: %v; want one leader and %d followers", seen, n-1)
	} else {
		e.t.Logf("zookeeper ensemble: %s", strings.Join(seen, ", "))
	}
}

// checkKafka asks every broker for the cluster's metadata over the Kafka
// protocol, each through its own host's SSH connection (as provision does:
// the firewall lets only the cluster's hosts reach 9092, and this host is
// none of them): every broker must report all the brokers. It returns how
// long the brokers took to answer.
func (e *env) checkKafka(ctx context.Context) time.Duration {
	e.t.Helper()
	start := time.Now()
	kc := cluster.Open(e.parsed, "")
	defer kc.Close()
	brokers := e.parsed.HostsWith(inventory.RoleKafka)
	port := kafkarole.AdminPort(e.parsed)
	dial, err := kafkarole.AdminDial(e.parsed, e.kafkaSecrets(ctx), kc.Dial)
	if err != nil {
		e.t.Fatal(err)
	}
	var want []string
	for _, b := range brokers {
		want = append(want, fmt.Sprintf("%d=%s:%d", kafkarole.ID(e.parsed, b), b.Name, port))
	}
	sort.Strings(want)
	for _, m := range brokers {
		addr := net.JoinHostPort(m.Name, strconv.Itoa(port))
		a := kafkaadmin.NewWithBrokers([]string{addr}, dial)
		var md *kafkaadmin.Metadata
		var err error
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(2 * time.Second) {
			md, err = a.Metadata(ctx)
			if err == nil && len(md.Brokers) == len(brokers) || time.Now().After(deadline) {
				break
			}
		}
		a.Close()
		if err != nil {
			e.t.Errorf("%s: kafka metadata from %s: %v", m.Name, addr, err)
			continue
		}
		var names []string
		for _, b := range md.Brokers {
			names = append(names, fmt.Sprintf("%d=%s:%d", b.ID, b.Host, b.Port))
		}
		sort.Strings(names)
		if !slices.Equal(names, want) {
			e.t.Errorf("%s: the metadata lists brokers %v, want %v", m.Name, names, want)
		}
	}
	return time.Since(start)
}

func between(s, begin, end string) string {
	i := strings.Index(s, begin)
	j := strings.Index(s, end)
	if i < 0 || j < i {
		return ""
	}
	return s[i:j]
}

func uniqueSorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func secs(d time.Duration) string { return secsF(d.Seconds()) }
func secsF(f float64) string      { return fmt.Sprintf("%.1f s", f) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func printFigures(t *testing.T, figs []figure) {
	if len(figs) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nfigures (lab of 6 machines; load average now %s):\n", loadavg())
	for _, f := range figs {
		fmt.Fprintf(&b, "  %-48s %s\n", f.what, f.value)
	}
	t.Log(b.String())
}

// checkStatus reads `provision status --json`: every live row is OK,
// ZooKeeper has one leader, the topic has a partition per broker, each
// with a leader.
func (e *env) checkStatus(ctx context.Context) {
	e.t.Helper()
	out, err := e.provision(ctx, "status", "--json")
	if err != nil {
		e.t.Errorf("status: %v\n%s", err, out)
		return
	}
	var st struct {
		Cluster health.Rows `json:"cluster"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, out)
	}
	if f := st.Cluster.Failed(); len(f) > 0 {
		e.t.Errorf("status shows failures: %+v", f)
	}
	leaders, partitions := 0, 0
	for _, r := range st.Cluster {
		if r.Component == "zookeeper" && r.State == "leader" {
			leaders++
		}
		if strings.HasPrefix(r.Component, "topic nginxlog-") && strings.HasPrefix(r.State, "leader ") && r.State != "leader none" {
			partitions++
		}
	}
	zk := min(1, len(e.parsed.HostsWith(inventory.RoleZooKeeper)))
	if n := len(e.parsed.HostsWith(inventory.RoleKafka)); leaders != zk || partitions != n {
		e.t.Errorf("status: %d zookeeper leaders, %d partitions with a leader; want %d and %d:\n%+v", leaders, partitions, zk, n, st.Cluster)
	}
}

// produceAndFind produces one message with acks=all through provision's
// own tunnelled dialer (the hosts' SSH connections) and reads it back. It
// returns the message's key.
func (e *env) produceAndFind(ctx context.Context, a *kafkaadmin.Admin) (string, time.Duration) {
	e.t.Helper()
	start := time.Now()
	key := "e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	w := a.Writer("nginxlog")
	defer w.Close()
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := w.WriteMessages(wctx, kafka.Message{Key: []byte(key), Value: []byte("hello from the end-to-end test")}); err != nil {
		e.t.Fatalf("produce with acks=all: %v", err)
	}
	if _, err := e.findKey(ctx, a, key); err != nil {
		e.t.Fatalf("read back: %v", err)
	}
	return key, time.Since(start)
}

// findKey looks for a message with key in every partition of the topic.
//
// Right after brokers restarted, a read may fail (a leader moving, a stale
// connection): the topic is read again, for a minute, until every
// partition was read to its end; only then is the key not there.
func (e *env) findKey(ctx context.Context, a *kafkaadmin.Admin, key string) (int, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		md, err := a.Metadata(ctx, "nginxlog")
		var errs []error
		if err == nil {
			// Metadata right after a restart may leave out a partition or
			// show it without a leader: that is not "read to its end".
			parts := md.Topics["nginxlog"].Partitions
			if want := e.parsed.Kafka.Topic.Partitions; len(parts) < want {
				errs = append(errs, fmt.Errorf("metadata lists %d of the topic's %d partitions", len(parts), want))
			}
			for _, p := range parts {
				if p.Leader < 0 {
					errs = append(errs, fmt.Errorf("partition %d has no leader", p.ID))
					continue
				}
				fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				_, err := a.Find(fctx, "nginxlog", p.ID, 0, []byte(key))
				cancel()
				switch {
				case err == nil:
					return p.ID, nil
				case !errors.Is(err, kafkaadmin.ErrNotFound):
					errs = append(errs, fmt.Errorf("partition %d: %w", p.ID, err))
				}
			}
			if len(errs) == 0 {
				return 0, fmt.Errorf("no message with key %s in topic nginxlog", key)
			}
		} else {
			errs = append(errs, err)
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no message with key %s found in topic nginxlog: %w", key, errors.Join(errs...))
		}
		e.t.Logf("looking for key %s, trying again: %v", key, errors.Join(errs...))
		time.Sleep(2 * time.Second)
	}
}

// setKafkaProperty adds a broker property to the test's inventory.
func (e *env) setKafkaProperty(key, value string) {
	e.t.Helper()
	b, err := os.ReadFile(e.inv)
	if err != nil {
		e.t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		e.t.Fatal(err)
	}
	k, _ := doc["kafka"].(map[string]any)
	props, _ := k["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		k["properties"] = props
	}
	props[key] = value
	out, err := yaml.Marshal(doc)
	if err != nil {
		e.t.Fatal(err)
	}
	e.writeInventory(out)
}

// writeInventory makes b the test's inventory from here on.
func (e *env) writeInventory(b []byte) {
	e.t.Helper()
	if err := os.WriteFile(e.inv, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	var err error
	if e.parsed, err = inventory.Load(e.inv); err != nil {
		e.t.Fatal(err)
	}
	e.machines = e.parsed.Hosts
}

// rollingLine is a line of the rolling restart in up's progress.
var rollingLine = regexp.MustCompile(`kafka: (restarting broker (\d+)|broker (\d+) back in the cluster|no under-replicated partitions ([0-9.]+)s after)`)

// checkRolling reads up's progress: every broker restarted, and each was
// back and the cluster's replicas in sync (the real ISR) before the next
// one restarted. It returns the waits for the ISR.
func (e *env) checkRolling(progress string) figure {
	e.t.Helper()
	var events, waits []string
	for _, line := range strings.Split(progress, "\n") {
		m := rollingLine.FindStringSubmatch(line)
		switch {
		case m == nil:
		case m[2] != "":
			events = append(events, "restart "+m[2])
		case m[3] != "":
			events = append(events, "back "+m[3])
		default:
			events = append(events, "wait")
			waits = append(waits, m[4]+" s")
		}
		if m != nil {
			e.t.Logf("rolling: %s", strings.TrimSpace(line))
		}
	}
	n := len(e.parsed.HostsWith(inventory.RoleKafka))
	restarted := map[string]bool{}
	for i := 0; i < len(events); i++ {
		ev := events[i]
		id, ok := strings.CutPrefix(ev, "restart ")
		if !ok {
			continue
		}
		restarted[id] = true
		// The next events: its own "back", then its wait (or the skip),
		// before any other restart.
		if i+2 >= len(events) || events[i+1] != "back "+id || events[i+2] != "wait" {
			e.t.Errorf("broker %d restarted but the next events are %v, not its return and wait", atoi(id), events[i+1:])
		}
	}
	if len(restarted) != n {
		e.t.Errorf("restarted brokers %v, want all %d:\n%s", restarted, n, progress)
	}
	return figure{"rolling restart: waits for the ISR after each broker", strings.Join(waits, ", ")}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// drillResult is what `provision drill --json` prints per drill.
type drillResult struct {
	Drill    string `json:"drill"`
	Outcome  string `json:"outcome"`
	Reason   string `json:"reason"`
	Restored bool   `json:"restored"`
	Figures  []struct {
		Name  string  `json:"name"`
		Value float64 `json:"value"`
		Unit  string  `json:"unit"`
	} `json:"figures"`
}

// figures are the drill's measurements as the test's figures table has them.
func (d drillResult) figures() []figure {
	var figs []figure
	for _, f := range d.Figures {
		v := fmt.Sprintf("%g", f.Value) // counts
		if f.Unit == "s" {
			v = fmt.Sprintf("%.2f s", f.Value)
		}
		figs = append(figs, figure{"drill " + d.Drill + ": " + f.Name, v})
	}
	return figs
}

func (d drillResult) figure(name string) (float64, bool) {
	for _, f := range d.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

func (e *env) drills(ctx context.Context, names ...string) []drillResult {
	e.t.Helper()
	out, progress, err := e.provisionOut(ctx, append([]string{"drill", "--json"}, names...)...)
	var rs []drillResult
	if jerr := json.Unmarshal([]byte(out), &rs); jerr != nil {
		e.t.Fatalf("drill %v: %v (%v)\n%s\n%s", names, jerr, err, out, progress)
	}
	e.t.Logf("drill %v:\n%s", names, progress)
	return rs
}

// checkWebTier: through the VIP, every web server answers in turn (round
// robin); one request's access-log line carries the client's address and
// the load balancer's as the peer, and reaches Kafka; nginx, keepalived
// and filebeat accept their configuration; exactly one LB holds the VIP.
func (e *env) checkWebTier(ctx context.Context, a *kafkaadmin.Admin) {
	e.t.Helper()
	inv := e.parsed
	vip := inv.LB.VIPPrefix().Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+vip+path, nil)
		req.Host = inv.Cluster.Domain
		res, err := client.Do(req)
		if err != nil {
			e.t.Errorf("GET %s through the VIP: %v", path, err)
			return 0, ""
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get(web.ServedByHeader)
	}
	webs := inv.HostsWith(inventory.RoleWeb)
	var order []string
	for range 2 * len(webs) {
		code, by := get("/")
		if code != http.StatusOK {
			e.t.Errorf("GET / through the VIP: HTTP %d", code)
		}
		order = append(order, by)
	}
	for i, by := range order {
		if j := i - len(webs); j >= 0 && order[j] != by {
			e.t.Errorf("round robin: served by %v, not the same cycle twice", order)
			break
		}
	}
	if got := uniqueSorted(order); len(got) != len(webs) {
		e.t.Errorf("through the VIP the site was served by %v, want every web host", got)
	}
	e.t.Logf("round robin through the VIP: %v", order)

	holders := 0
	var holder inventory.Host
	for _, h := range inv.HostsWith(inventory.RoleLB) {
		if strings.Contains(e.sh(ctx, h.Name, "ip -o addr show"), " "+vip+"/") {
			holders++
			holder = h
		}
		e.sh(ctx, h.Name, "nginx -t 2>&1 && "+lb.KeepalivedTest)
	}
	if holders != 1 {
		e.t.Errorf("%d load balancers hold the VIP, want 1", holders)
	}

	// One request with a unique URI: its line on the web host and in Kafka.
	uri := "/e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, by := get(uri)
	line := strings.TrimSpace(e.sh(ctx, by, "grep -F "+uri+" /var/log/nginx/trafficlab-access.log | tail -1"))
	fields := strings.Fields(line)
	client0 := e.bridgeAddress()
	if len(fields) < 2 || fields[0] != client0 || fields[1] != holder.Address {
		e.t.Errorf("access log line on %s: %q; want the client %s first and the load balancer %s as the peer", by, line, client0, holder.Address)
	}
	for _, h := range inv.HostsWith(inventory.RoleWeb) {
		e.sh(ctx, h.Name, "nginx -t 2>&1")
	}
	for _, h := range inv.HostsWith(inventory.RoleFilebeat) {
		e.sh(ctx, h.Name, filebeat.TestCommand())
	}
	start := time.Now()
	if _, err := e.findValue(ctx, a, uri, 30*time.Second); err != nil {
		e.t.Errorf("the access-log line of %s in Kafka: %v", uri, err)
	} else {
		e.t.Logf("the line of %s was in Kafka %.1fs after the lookup began", uri, time.Since(start).Seconds())
	}
}

// bridgeAddress is this host's address on the lab bridge: the client
// address of requests the test sends to the VIP.
func (e *env) bridgeAddress() string {
	p := e.parsed.LB.VIPPrefix()
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && p.Contains(ip.Unmap()) {
					return ip.Unmap().String()
				}
			}
		}
	}
	return ""
}

// findValue looks for a message containing s in every partition.
func (e *env) findValue(ctx context.Context, a *kafkaadmin.Admin, s string, within time.Duration) (int, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		md, err := a.Metadata(ctx, "nginxlog")
		if err != nil {
			return 0, err
		}
		for _, p := range md.Topics["nginxlog"].Partitions {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: a.Brokers(), Topic: "nginxlog", Partition: p.ID, Dialer: a.Dialer(), MaxWait: 200 * time.Millisecond})
			r.SetOffset(kafka.FirstOffset)
			rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					break
				}
				if bytes.Contains(m.Value, []byte(s)) {
					cancel()
					r.Close()
					return p.ID, nil
				}
			}
			cancel()
			r.Close()
		}
	}
	return 0, fmt.Errorf("no message contains %q after %v", s, within)
}

// requestToKafka sends n requests through the VIP, 100 ms apart, and
// times each until its access-log line is a message in Kafka: the target
// is 5 s at the 95th percentile.
func (e *env) requestToKafka(ctx context.Context, a *kafkaadmin.Admin, n int) figure {
	e.t.Helper()
	md, err := a.Metadata(ctx, "nginxlog")
	if err != nil {
		e.t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	var wg sync.WaitGroup
	for _, p := range md.Topics["nginxlog"].Partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: a.Brokers(), Topic: "nginxlog", Partition: p.ID, Dialer: a.Dialer(), MaxWait: 100 * time.Millisecond})
		r.SetOffset(kafka.LastOffset)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					return
				}
				if i := bytes.Index(m.Value, []byte("/e2e-lat-")); i >= 0 {
					end := bytes.IndexAny(m.Value[i:], " ?\"\\")
					if end < 0 {
						continue
					}
					id := string(m.Value[i : i+end])
					mu.Lock()
					arrived[id] = time.Now()
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Second) // the readers are at the end
	vip := e.parsed.LB.VIPPrefix().Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	sent := map[string]time.Time{}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range n {
		id := fmt.Sprintf("/e2e-lat-%s-%d", run, i)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+vip+id, nil)
		req.Host = e.parsed.Cluster.Domain
		sent[id] = time.Now()
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		got := len(arrived)
		mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop()
	wg.Wait()
	var lat []float64
	for id, t0 := range sent {
		if t1, ok := arrived[id]; ok {
			lat = append(lat, t1.Sub(t0).Seconds())
		}
	}
	if len(lat) != n {
		e.t.Errorf("%d of %d requests through the VIP reached Kafka within 30 s", len(lat), n)
	}
	sort.Float64s(lat)
	p95 := 0.0
	if len(lat) > 0 {
		p95 = lat[min(len(lat)-1, int(float64(len(lat))*0.95))]
	}
	checkTarget(e.t, "request through the VIP to Kafka (p95)", p95, 5)
	return figure{fmt.Sprintf("request through the VIP to a Kafka message, p95 of %d", n), secsF(p95)}
}

// checkBackupRestore backs the database up between two sets of verify's
// probes, drops the database, restores the backup and checks every probe
// is counted exactly once: the first set from the backup, the second
// again from Kafka, from the backup's offsets.
func (e *env) checkBackupRestore(ctx context.Context) []figure {
	e.t.Helper()
	before := e.verifyIDs(ctx)
	file := filepath.Join(e.state, "traffic.sql.gz")
	out, _, err := e.provisionOut(ctx, "backup", file, "--json")
	var b struct {
		Bytes    int64   `json:"bytes"`
		SQLBytes int64   `json:"sql_bytes"`
		Elapsed  float64 `json:"elapsed_ns"`
	}
	if jerr := json.Unmarshal([]byte(out), &b); err != nil || jerr != nil {
		e.t.Fatalf("provision backup: %v (%v)\n%s", err, jerr, out)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		e.t.Errorf("backup file %s: %v, mode %v; want 0600", file, err, fi.Mode().Perm())
	}
	after := e.verifyIDs(ctx)

	db := e.parsed.HostsWith(inventory.RoleMySQL)[0].Name
	e.sh(ctx, db, "mysql --no-defaults -u root -e 'DROP DATABASE "+e.parsed.MySQL.Database+"'")
	start := time.Now()
	out, _, err = e.provisionOut(ctx, "restore", file, "--yes", "--json")
	if err != nil {
		e.t.Fatalf("provision restore: %v\n%s", err, out)
	}
	restored := time.Since(start).Seconds()
	ids := append(before, after...)
	var counts map[string]int
	deadline := time.Now().Add(3 * time.Minute)
	for {
		counts = e.probeCounts(ctx, db, ids)
		exact := true
		for _, id := range ids {
			if counts[id] > 1 {
				e.t.Fatalf("after the restore, probe %s is counted %d times", id, counts[id])
			}
			exact = exact && counts[id] == 1
		}
		if exact {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after the restore, the probes are not counted once each: %v", counts)
		}
		time.Sleep(time.Second)
	}
	caughtUp := time.Since(start).Seconds()
	figs := []figure{
		{"backup: database dumped", fmt.Sprintf("%.1f s, %d KiB of SQL, %d KiB compressed", b.Elapsed/1e9, b.SQLBytes>>10, b.Bytes>>10)},
		{"restore after the database was dropped", fmt.Sprintf("%.1f s; probes from before (%d) and after (%d) the backup counted once each after %.1f s", restored, len(before), len(after), caughtUp)},
	}
	return append(figs, e.checkVerify(ctx, "verify after the restore")...)
}

// checkReplace runs `drill replace HOST --recreate` with the lab's
// commands: the broker machine is lost with its disk (lab destroy-machine)
// and recreated (lab up: same name and address, new host keys) while the
// drill produces; up --limit rebuilds it, its broker rejoins under its old
// id with an empty disk and re-replicates until every partition's ISR is
// whole, nothing acknowledged is lost, and verify passes after.
func (e *env) checkReplace(ctx context.Context, host string) []figure {
	e.t.Helper()
	lab := remote.ShellQuote(e.labBin)
	figs := e.checkDrills(ctx, "replace", host, "--recreate", lab+` destroy-machine "$TRAFFICLAB_HOST" && `+lab+" up")
	return append(figs, e.checkVerify(ctx, "verify after "+host+" was replaced")...)
}

// checkLimitedUp runs `up --limit HOST --force --concurrency 2`: only
// host's resources are worked on (each re-runs its steps, changing none),
// every other resource stays as it is.
func (e *env) checkLimitedUp(ctx context.Context, host string) figure {
	e.t.Helper()
	s, wall := e.timed(ctx, "up", "--limit", host, "--force", "--concurrency", "2")
	mine := e.resourceCount(func(h inventory.Host, _ string) bool { return h.Name == host })
	others := e.resourceCount(func(h inventory.Host, _ string) bool { return h.Name != host })
	if s.Resources["update"] != mine || s.Steps.Changed != 0 {
		e.t.Errorf("up --limit %s --force: resources %v, %d steps changed; want the %d of %s re-run, none changed", host, s.Resources, s.Steps.Changed, mine, host)
	}
	for _, h := range s.Hosts {
		if h.Host != host && (h.Changed > 0 || h.Failed) {
			e.t.Errorf("up --limit %s worked on %s: %+v", host, h.Host, h)
		}
	}
	return figure{fmt.Sprintf("up --limit %s --force (%d of %d resources)", host, mine, mine+others), secsF(wall)}
}

// verifyIDs runs verify and returns the ids of the probes it sent (each
// one counted in MySQL by the time it returns).
func (e *env) verifyIDs(ctx context.Context) []string {
	e.t.Helper()
	out, progress, err := e.provisionOut(ctx, "verify", "--json")
	var rep struct {
		OK     bool `json:"ok"`
		Probes []struct {
			ID string `json:"id"`
		} `json:"probes"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || err != nil || !rep.OK || len(rep.Probes) == 0 {
		e.t.Fatalf("verify --json: %v (%v), ok %v\n%s\n%s", err, jerr, rep.OK, out, progress)
	}
	var ids []string
	for _, p := range rep.Probes {
		ids = append(ids, p.ID)
	}
	return ids
}

// probeCounts reads how often MySQL counted each probe, on the database
// host as its root.
func (e *env) probeCounts(ctx context.Context, db string, ids []string) map[string]int {
	e.t.Helper()
	q := "SELECT probe_id, request_count FROM " + e.parsed.MySQL.Database + ".probes WHERE probe_id IN ('" + strings.Join(ids, "','") + "')"
	cmd := exec.CommandContext(ctx, e.labBin, "ssh", db, "mysql --no-defaults -u root -N -e \""+q+"\"")
	out, _ := cmd.Output() // the database may be away for a moment
	counts := map[string]int{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			counts[f[0]], _ = strconv.Atoi(f[1])
		}
	}
	return counts
}

// checkVerify runs provision verify: every row OK, every probe in MySQL.
func (e *env) checkVerify(ctx context.Context, what string) []figure {
	e.t.Helper()
	out, progress, err := e.provisionOut(ctx, "verify", "--json")
	var rep struct {
		OK         bool        `json:"ok"`
		Components health.Rows `json:"components"`
		P50        float64     `json:"p50_ns"`
		P95        float64     `json:"p95_ns"`
		Probes     []struct{}  `json:"probes"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		e.t.Fatalf("verify --json: %v (%v)\n%s\n%s", jerr, err, out, progress)
	}
	if err != nil || !rep.OK {
		e.t.Errorf("%s: %v; failing: %+v", what, err, rep.Components.Failed())
	}
	if len(rep.Probes) == 0 {
		e.t.Errorf("%s sent no probes", what)
	}
	// A row per filebeat host, saying what Kafka acknowledged of it.
	shippers := 0
	for _, r := range rep.Components {
		if r.Component == "filebeat" && strings.Contains(r.Detail, "acknowledged by Kafka") {
			shippers++
		}
	}
	if want := len(e.parsed.HostsWith(inventory.RoleFilebeat)); shippers != want {
		e.t.Errorf("%s: %d filebeat rows with what Kafka acknowledged, want %d: %+v", what, shippers, want, rep.Components)
	}
	return []figure{{what + ": probe latency p50 / p95", fmt.Sprintf("%.2f s / %.2f s", rep.P50/1e9, rep.P95/1e9)}}
}

// traffic requests the site through the VIP twice a second until stopped.
type traffic struct {
	stop func()
	done chan struct{}
	ok   atomic.Int64
}

func (e *env) startTraffic(ctx context.Context) *traffic {
	ctx, cancel := context.WithCancel(ctx)
	tr := &traffic{stop: cancel, done: make(chan struct{})}
	vip := e.parsed.LB.VIPPrefix().Addr().String()
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(tr.done)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+vip+"/", nil)
			req.Host = e.parsed.Cluster.Domain
			if res, err := client.Do(req); err == nil {
				res.Body.Close()
				if res.StatusCode == http.StatusOK {
					tr.ok.Add(1)
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
	}()
	return tr
}

// dashboardURL is the stack output, as provision status prints it, and
// the dashboard's login password (a secret output status prints too).
func (e *env) dashboardURL(ctx context.Context) string {
	e.t.Helper()
	out, err := e.provision(ctx, "status", "--json", "--offline")
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	var st struct {
		Outputs map[string]any `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatal(err)
	}
	u, _ := st.Outputs["dashboard_url"].(string)
	if u == "" {
		e.t.Fatalf("no dashboard_url in the stack outputs: %v", st.Outputs)
	}
	e.dashboardPassword, _ = st.Outputs["dashboard_password"].(string)
	if e.dashboardPassword == "" {
		e.t.Errorf("status prints no dashboard_password")
	}
	return u
}

// getJSON asks the dashboard's API, logged in.
func (e *env) getJSON(ctx context.Context, url string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.SetBasicAuth("admin", e.dashboardPassword)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, res.StatusCode)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// checkDashboardLogin: without the password, or with a wrong one, the
// dashboard's API answers 401 and shows nothing.
func (e *env) checkDashboardLogin(ctx context.Context, base string) {
	e.t.Helper()
	for _, pass := range []string{"", "wrong"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/overview?range=1h", nil)
		if pass != "" {
			req.SetBasicAuth("admin", pass)
		}
		res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			e.t.Errorf("dashboard without login: %v", err)
			continue
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			e.t.Errorf("dashboard with password %q: HTTP %d, want 401", pass, res.StatusCode)
		}
	}
}

// checkDashboard: the dashboard at the stack's URL shows the traffic, per
// web host, with this host as a client.
func (e *env) checkDashboard(ctx context.Context) {
	e.t.Helper()
	base := strings.TrimSuffix(e.dashboardURL(ctx), "/")
	e.checkDashboardLogin(ctx, base)
	var ov struct {
		Totals struct {
			Requests uint64            `json:"requests"`
			Backends map[string]uint64 `json:"backends"`
			Status   map[string]uint64 `json:"status"`
		} `json:"totals"`
	}
	if err := e.getJSON(ctx, base+"/api/overview?range=1h", &ov); err != nil {
		e.t.Errorf("dashboard overview: %v", err)
		return
	}
	for _, h := range e.parsed.HostsWith(inventory.RoleWeb) {
		if ov.Totals.Backends[h.Name] == 0 {
			e.t.Errorf("the dashboard shows no requests for backend %s: %+v", h.Name, ov.Totals)
		}
	}
	if ov.Totals.Requests == 0 || len(ov.Totals.Status) == 0 {
		e.t.Errorf("the dashboard shows no traffic: %+v", ov.Totals)
	}
	var top struct {
		Clients []struct {
			Key string `json:"key"`
		} `json:"clients"`
	}
	if err := e.getJSON(ctx, base+"/api/top?range=1h", &top); err != nil {
		e.t.Errorf("dashboard top: %v", err)
	}
	me := e.bridgeAddress()
	found := false
	for _, c := range top.Clients {
		found = found || c.Key == me
	}
	if !found {
		e.t.Errorf("the top clients %v lack this host's %s (the client address through the LB)", top.Clients, me)
	}
	e.t.Logf("dashboard: %d requests in the last hour, by backend %v, status %v", ov.Totals.Requests, ov.Totals.Backends, ov.Totals.Status)
}

// checkAlertFires stops every web server while traffic flows: the
// consumer must raise traffic_low or no_data; then starts them again.
func (e *env) checkAlertFires(ctx context.Context, tr *traffic) figure {
	e.t.Helper()
	base := strings.TrimSuffix(e.dashboardURL(ctx), "/")
	webs := e.parsed.HostsWith(inventory.RoleWeb)
	for _, h := range webs {
		e.sh(ctx, h.Name, "systemctl stop nginx")
	}
	stopped := time.Now()
	defer func() {
		for _, h := range webs {
			e.sh(ctx, h.Name, "systemctl start nginx")
		}
		tr.stop()
		<-tr.done
	}()
	for time.Since(stopped) < 6*time.Minute {
		var al struct {
			Firing []struct {
				Rule  string `json:"rule"`
				Scope string `json:"scope"`
			} `json:"firing"`
		}
		if err := e.getJSON(ctx, base+"/api/alerts?range=1h", &al); err == nil {
			for _, a := range al.Firing {
				if a.Rule == "no_data" || a.Rule == "traffic_low" {
					e.t.Logf("alert %s (%s) fired %.0fs after the web servers stopped", a.Rule, a.Scope, time.Since(stopped).Seconds())
					return figure{"alert after every web server stopped (" + a.Rule + ")", secs(time.Since(stopped))}
				}
			}
		}
		time.Sleep(5 * time.Second)
	}
	e.t.Errorf("neither traffic_low nor no_data fired within 6 minutes of stopping every web server (%d requests answered before)", tr.ok.Load())
	return figure{"alert after every web server stopped", "none within 6 min"}
}

// verifyFailing runs verify and returns the failing rows as
// "component host" strings.
func (e *env) verifyFailing(ctx context.Context, args ...string) []string {
	e.t.Helper()
	out, _, err := e.provisionOut(ctx, append([]string{"verify", "--json"}, args...)...)
	var rep struct {
		OK         bool        `json:"ok"`
		Components health.Rows `json:"components"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		e.t.Fatalf("verify --json: %v (%v)\n%s", jerr, err, out)
	}
	if (err == nil) != rep.OK {
		e.t.Errorf("verify exited %v with ok=%v", err, rep.OK)
	}
	var failing []string
	for _, r := range rep.Components.Failed() {
		failing = append(failing, strings.TrimSpace(r.Component+" "+r.Host))
	}
	return failing
}

// breakAndRepair stops MySQL, closes a web server's port by hand and stops
// keepalived on both load balancers: verify must name each, and up must
// repair them. Then a wrong VIP in the inventory: verify names the VIP.
func (e *env) breakAndRepair(ctx context.Context) {
	e.t.Helper()
	inv := e.parsed
	db := inv.HostsWith(inventory.RoleMySQL)[0]
	webHost := inv.HostsWith(inventory.RoleWeb)[1]
	port := strconv.Itoa(inv.Web.Port) + "/tcp"
	e.sh(ctx, db.Name, "systemctl stop mariadb")
	e.sh(ctx, webHost.Name, "firewall-cmd -q --remove-port="+port+" && firewall-cmd -q --permanent --remove-port="+port)
	for _, h := range inv.HostsWith(inventory.RoleLB) {
		e.sh(ctx, h.Name, "systemctl stop keepalived")
	}
	failing := e.verifyFailing(ctx, "--probes", "0")
	e.t.Logf("verify with MySQL stopped, %s's port %s closed, keepalived stopped on both load balancers: failing %v", webHost.Name, port, failing)
	vip := "vip " + inv.LB.VIPPrefix().Addr().String()
	for _, want := range []string{"mysql " + db.Name, "web " + webHost.Name, vip} {
		if !slices.Contains(failing, want) {
			e.t.Errorf("verify does not name %q among the failures %v", want, failing)
		}
	}
	e.checkEvidence(db.Name, webHost.Name)
	s, err := e.provisionJSON(ctx, "up")
	if err != nil || !s.OK {
		// What keepalived said, before lab down takes the journal away.
		for _, h := range inv.HostsWith(inventory.RoleLB) {
			out, _ := exec.CommandContext(ctx, e.labBin, "ssh", h.Name, "journalctl -u keepalived --no-pager -n 40").CombinedOutput()
			e.t.Logf("%s: keepalived's journal:\n%s", h.Name, out)
		}
		e.t.Fatalf("up after breaking things: %v: %s %+v", err, s.Error, s.Failures)
	}
	if s.Steps.Changed == 0 {
		e.t.Errorf("up repaired nothing")
	}
	// keepalived needs a few advertisements to elect a holder again.
	var after []string
	for range 10 {
		if after = e.verifyFailing(ctx, "--probes", "5"); len(after) == 0 {
			break
		}
		time.Sleep(3 * time.Second)
	}
	if len(after) != 0 {
		e.t.Errorf("after up, verify still fails: %v", after)
	}

	// A VIP no load balancer holds, edited into the inventory: verify
	// names it (up would move the VIP there; the fix is the inventory).
	orig, err := os.ReadFile(e.inv)
	if err != nil {
		e.t.Fatal(err)
	}
	wrong := inv.LB.VIPPrefix().Addr().Prev()
	edited := strings.Replace(string(orig), inv.LB.VIP, netip.PrefixFrom(wrong, inv.LB.VIPPrefix().Bits()).String(), 1)
	if err := os.WriteFile(e.inv, []byte(edited), 0o600); err != nil {
		e.t.Fatal(err)
	}
	failing = e.verifyFailing(ctx, "--probes", "0")
	if err := os.WriteFile(e.inv, orig, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if !slices.Contains(failing, "vip "+wrong.String()) {
		e.t.Errorf("with the VIP %s in the inventory, verify fails on %v; want it to name the VIP", wrong, failing)
	}
}

// checkEvidence: the failed verify left its evidence, per failing host,
// in the state directory and a tarball readable by root only: the
// database host's status says MariaDB is stopped.
func (e *env) checkEvidence(db, web string) {
	e.t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(e.state, "state", "evidence", "verify-*"))
	var dir string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			dir = d // the newest: the names sort by time
		}
	}
	if dir == "" {
		e.t.Errorf("no evidence of the failed verify in %s", filepath.Join(e.state, "state", "evidence"))
		return
	}
	status, err := os.ReadFile(filepath.Join(dir, db, "status.txt"))
	if err != nil || !strings.Contains(string(status), "mariadb.service") || !strings.Contains(string(status), "inactive") {
		e.t.Errorf("evidence %s: %s's status.txt does not say MariaDB is stopped: %v\n%s", dir, db, err, status)
	}
	for _, f := range []string{filepath.Join(web, "journal.txt"), filepath.Join(web, "rendered", "etc", "hosts#hosts")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			e.t.Errorf("evidence %s lacks %s: %v", dir, f, err)
		}
	}
	if fi, err := os.Stat(dir + ".tar.gz"); err != nil || fi.Mode().Perm() != 0o600 {
		e.t.Errorf("evidence tarball %s.tar.gz: %v %v; want mode 0600", dir, fi, err)
	}
}

// checkSecurityChangeRefused: kafka.security edited on the running
// cluster is refused by preview and up, at its line, before anything is
// touched (it is no rolling change).
func (e *env) checkSecurityChangeRefused(ctx context.Context) {
	e.t.Helper()
	orig, err := os.ReadFile(e.inv)
	if err != nil {
		e.t.Fatal(err)
	}
	edited := strings.Replace(string(orig), "security: sasl_ssl", "security: plaintext", 1)
	if edited == string(orig) {
		e.t.Fatalf("no kafka.security: sasl_ssl in the inventory")
	}
	if err := os.WriteFile(e.inv, []byte(edited), 0o600); err != nil {
		e.t.Fatal(err)
	}
	defer os.WriteFile(e.inv, orig, 0o600)
	for _, cmd := range []string{"preview", "up"} {
		out, stderr, err := e.provisionOut(ctx, cmd)
		if err == nil || !strings.Contains(out+stderr, "kafka.security is plaintext, but the brokers run with sasl_ssl") {
			e.t.Errorf("provision %s with kafka.security changed on the running cluster: %v, want it refused\n%s%s", cmd, err, out, stderr)
		}
	}
}

// checkHostClean: after lab down nothing of the lab is left on this host:
// no state, no bridge, links or network namespaces, no machine processes.
func (e *env) checkHostClean() {
	e.t.Helper()
	if _, err := os.Stat("/var/lib/trafficlab/lab"); err == nil {
		e.t.Errorf("lab down left /var/lib/trafficlab/lab")
	}
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	netns, _ := exec.Command("ip", "netns", "list").Output()
	procs, _ := exec.Command("pgrep", "-af", "systemd-nspawn").Output()
	for what, out := range map[string][]byte{"links": links, "network namespaces": netns, "nspawn processes": procs} {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "tlab") {
				e.t.Errorf("lab down left %s: %s", what, line)
			}
		}
	}
}

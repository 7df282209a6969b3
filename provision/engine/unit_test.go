package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/step"
)

// memConfig is a configStore in memory that counts the values set. Like
// the pulumi CLI, it drops the one newline a value set through stdin ends
// in.
type memConfig struct {
	m    auto.ConfigMap
	sets int
}

func (c *memConfig) all(context.Context) (auto.ConfigMap, error) { return c.m, nil }
func (c *memConfig) setSecret(_ context.Context, key, value string) error {
	c.m[key] = auto.ConfigValue{Value: strings.TrimSuffix(value, "\n"), Secret: true}
	c.sets++
	return nil
}

func (c *memConfig) set(_ context.Context, key, value string) error {
	c.m[key] = auto.ConfigValue{Value: value}
	c.sets++
	return nil
}

// TestKafkaClusterIDKeptInTheStack: the kafka role's stack value is made
// once, kept in plain text, read back the same, refused when invalid, and
// not made without brokers.
func TestKafkaClusterIDKeptInTheStack(t *testing.T) {
	inv := &inventory.Inventory{Hosts: []inventory.Host{{Name: "k1", Roles: []inventory.Role{inventory.RoleKafka}}}}
	roles := Roles()
	resolve := func(inv *inventory.Inventory, store configStore) (string, []string, error) {
		v, made, err := resolveValues(context.Background(), inv, roles, store)
		return v[kafka.ClusterIDKey], made, err
	}
	store := &memConfig{m: auto.ConfigMap{}}
	id, made, err := resolve(inv, store)
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 1 || !kafka.ValidClusterID(id) || store.sets != 1 {
		t.Fatalf("first run: id %q made %v sets %d; want a valid id made and stored once", id, made, store.sets)
	}
	v := store.m["trafficlab:kafkaClusterId"]
	if v.Value != id || v.Secret {
		t.Errorf("stored %+v, want %q in plain text", v, id)
	}
	again, made, err := resolve(inv, store)
	if err != nil || len(made) != 0 || again != id || store.sets != 1 {
		t.Errorf("second run: %q made %v sets %d err %v; want the same id, nothing stored", again, made, store.sets, err)
	}
	store.m["trafficlab:kafkaClusterId"] = auto.ConfigValue{Value: "not-an-id"}
	if _, _, err := resolve(inv, store); err == nil || !strings.Contains(err.Error(), "trafficlab:kafkaClusterId") {
		t.Errorf("an invalid stored id: %v; want an error naming the key", err)
	}
	// No brokers: nothing made.
	empty := &memConfig{m: auto.ConfigMap{}}
	if id, made, err := resolve(&inventory.Inventory{}, empty); id != "" || len(made) != 0 || err != nil || empty.sets != 0 {
		t.Errorf("without brokers: %q %v %v (%d sets)", id, made, err, empty.sets)
	}
}

// TestKafkaDependsOnEveryZooKeeper registers three hosts concurrently, as
// the program does: each broker depends on all three ZooKeeper servers in
// ZooKeeper mode, on none in KRaft mode.
func TestKafkaDependsOnEveryZooKeeper(t *testing.T) {
	for _, mode := range []inventory.KafkaMode{inventory.KafkaZooKeeper, inventory.KafkaKRaft} {
		inv := &inventory.Inventory{}
		inv.Kafka.Mode = mode
		for _, n := range []string{"k1", "k2", "k3", "lb"} {
			inv.Hosts = append(inv.Hosts, inventory.Host{Name: n})
		}
		d := newClusterDeps(inv, Roles())
		zks := map[pulumi.Resource]bool{}
		got := make([][]pulumi.Resource, len(inv.Hosts))
		var wg sync.WaitGroup
		for i, h := range inv.Hosts {
			zk := &roleResource{}
			if h.Name != "lb" {
				zks[zk] = true
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				hd := d.host()
				defer hd.finishAll()
				if h.Name == "lb" {
					time.Sleep(20 * time.Millisecond) // a slow host without brokers
					return
				}
				hd.registered("base", &roleResource{})
				if deps := hd.dependencies("zookeeper"); len(deps) != 0 {
					t.Errorf("zookeeper depends on %d resources of other hosts", len(deps))
				}
				hd.registered("zookeeper", zk)
				got[i] = hd.dependencies("kafka")
			}()
		}
		wg.Wait()
		for i, deps := range got[:3] {
			want := 3
			if mode == inventory.KafkaKRaft {
				want = 0
			}
			if len(deps) != want {
				t.Errorf("%s: %s's broker depends on %d resources, want %d", mode, inv.Hosts[i].Name, len(deps), want)
			}
			for _, r := range deps {
				if !zks[r] {
					t.Errorf("%s: %s's broker depends on something other than a zookeeper resource", mode, inv.Hosts[i].Name)
				}
			}
		}
	}
}

// TestConsumerDependsOnDatabaseAndBrokers registers hosts concurrently in
// the program's order: the consumer depends on the database and every
// broker, the dashboard on the database only; hosts with roles late in the
// order and hosts with early ones never wait for each other.
func TestConsumerDependsOnDatabaseAndBrokers(t *testing.T) {
	inv := &inventory.Inventory{}
	inv.Kafka.Mode = inventory.KafkaZooKeeper
	roles := map[string][]string{
		"app": {"base", "consumer"}, // first, so it waits before the others register
		"k1":  {"base", "zookeeper", "kafka"}, "k2": {"base", "zookeeper", "kafka"}, "k3": {"base", "zookeeper", "kafka"},
		"db": {"base", "mysql", "dashboard"},
	}
	for _, n := range []string{"app", "k1", "k2", "k3", "db"} {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: n})
	}
	d := newClusterDeps(inv, Roles())
	kind := map[pulumi.Resource]string{}
	for _, h := range inv.Hosts {
		for _, r := range roles[h.Name] {
			kind[&roleResource{}] = h.Name + "/" + r
		}
	}
	byName := map[string]pulumi.Resource{}
	for res, name := range kind {
		byName[name] = res
	}
	var mu sync.Mutex
	got := map[string][]string{}
	var wg sync.WaitGroup
	for _, h := range inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hd := d.host()
			defer hd.finishAll()
			var rs []provider.Resource
			for _, r := range roles[h.Name] {
				rs = append(rs, provider.Resource{Host: h.Name, Role: r})
			}
			for i, r := range roles[h.Name] {
				hd.finishExcept(rs[i:]) // as register does
				var names []string
				for _, dep := range hd.dependencies(r) {
					names = append(names, kind[dep])
				}
				slices.Sort(names)
				mu.Lock()
				got[h.Name+"/"+r] = names
				mu.Unlock()
				hd.registered(r, byName[h.Name+"/"+r])
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("hosts wait for each other: deadlock")
	}
	for res, want := range map[string][]string{
		"app/consumer": {"db/mysql", "k1/kafka", "k2/kafka", "k3/kafka"},
		"db/dashboard": {"db/mysql"},
		"k2/kafka":     {"k1/zookeeper", "k2/zookeeper", "k3/zookeeper"},
		"db/mysql":     nil,
		"k1/zookeeper": nil,
	} {
		if !slices.Equal(got[res], want) {
			t.Errorf("%s depends on %q, want %q", res, got[res], want)
		}
	}
}

func TestSecretsGeneratedOnceAndStable(t *testing.T) {
	inv := &inventory.Inventory{}
	store := &memConfig{m: auto.ConfigMap{}}
	first, generated, err := resolveSecrets(context.Background(), inv, store)
	if err != nil {
		t.Fatal(err)
	}
	always := 0
	for _, sp := range secretSpecs {
		if sp.when == nil {
			always++
		}
	}
	if len(generated) != always || store.sets != always {
		t.Fatalf("generated %v with %d sets, want all %d a cluster without Kafka needs, once", generated, store.sets, always)
	}
	if len(first.VRRPAuth) != 8 || len(first.MySQLPassword) != 24 || len(first.MySQLRootPassword) != 24 ||
		len(first.MySQLDashboardPassword) != 24 || len(first.ProbeKey) != 32 || len(first.DashboardPassword) != 20 {
		t.Errorf("lengths: vrrp %d, mysql %d, root %d, dashboard mysql %d, probe key %d, dashboard login %d", len(first.VRRPAuth),
			len(first.MySQLPassword), len(first.MySQLRootPassword), len(first.MySQLDashboardPassword), len(first.ProbeKey), len(first.DashboardPassword))
	}
	seen := map[string]bool{}
	for _, v := range secretsToMap(first, "") {
		if seen[v] {
			t.Errorf("two secrets are the same")
		}
		seen[v] = true
	}
	for k, v := range store.m {
		if !v.Secret || !strings.HasPrefix(k, "trafficlab:") {
			t.Errorf("config %s is not a trafficlab secret: %+v", k, v.Secret)
		}
	}
	again, generated, err := resolveSecrets(context.Background(), inv, store)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, first) || len(generated) != 0 || store.sets != always {
		t.Errorf("second run generated %v (sets %d); secrets stable: %v", generated, store.sets, reflect.DeepEqual(again, first))
	}
}

// With kafka.security sasl_ssl the stack keeps a CA, provision's client
// certificate, one certificate per broker and the clients' SCRAM
// passwords; a second run makes none again, a changed broker address
// makes that broker's alone, and each host's resource inputs carry only
// its own broker key.
func TestKafkaTLSSecretsKeptAndRenewed(t *testing.T) {
	inv := &inventory.Inventory{Cluster: inventory.Cluster{Name: "lab"}, Kafka: inventory.Kafka{Security: inventory.KafkaSASLSSL}}
	for i, n := range []string{"k1", "k2", "k3"} {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: n, Address: fmt.Sprintf("10.0.0.%d", i+1), Roles: []inventory.Role{inventory.RoleKafka}})
	}
	store := &memConfig{m: auto.ConfigMap{}}
	first, generated, err := resolveSecrets(context.Background(), inv, store)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kafkaFilebeatPassword", "kafkaConsumerPassword", "kafkaCA", "kafkaAdmin", "kafkaCert.k1", "kafkaCert.k2", "kafkaCert.k3"} {
		if !slices.Contains(generated, want) {
			t.Errorf("generated %v, no %s", generated, want)
		}
	}
	ca, err := kafkatls.ParseCA([]byte(store.m["trafficlab:kafkaCA"].Value), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range inv.Hosts {
		dns, ips := kafka.CertNames(h)
		if err := ca.Check([]byte(first.KafkaCerts[h.Name]), h.Name, dns, ips); err != nil {
			t.Errorf("%s: %v", h.Name, err)
		}
	}
	if err := ca.Check([]byte(first.KafkaAdmin), kafkatls.AdminName, nil, nil); err != nil {
		t.Errorf("admin: %v", err)
	}

	again, generated, err := resolveSecrets(context.Background(), inv, store)
	if err != nil || len(generated) != 0 || !reflect.DeepEqual(again, first) {
		t.Fatalf("second run: generated %v, err %v, same %v", generated, err, reflect.DeepEqual(again, first))
	}
	inv.Hosts[1].Address = "10.0.0.22"
	moved, generated, err := resolveSecrets(context.Background(), inv, store)
	if err != nil || !slices.Equal(generated, []string{"kafkaCert.k2"}) {
		t.Fatalf("after k2 moved: generated %v, err %v; want kafkaCert.k2 alone", generated, err)
	}
	if moved.KafkaCerts["k2"] == first.KafkaCerts["k2"] || moved.KafkaCerts["k1"] != first.KafkaCerts["k1"] {
		t.Errorf("k2's certificate kept or k1's changed")
	}

	m := secretsToMap(moved, "k1")
	for k := range m {
		if strings.HasPrefix(k, kafkaCertKey) && k != kafkaCertKey+"k1" {
			t.Errorf("k1's inputs carry %s", k)
		}
		if k == kafkaCAKey {
			t.Errorf("resource inputs carry the CA's key")
		}
	}
	back := secretsFromMap(m)
	if back.KafkaCerts["k1"] != moved.KafkaCerts["k1"] || back.KafkaCA != moved.KafkaCA || back.KafkaConsumerPassword != moved.KafkaConsumerPassword {
		t.Errorf("the inputs do not give the secrets back")
	}
}

func TestSecretsFromInventoryWin(t *testing.T) {
	inv := &inventory.Inventory{}
	inv.MySQL.Password = inventory.NewSecret("from-the-inventory")
	inv.LB.AuthPass = inventory.NewSecret("vrrp1234")
	inv.MySQL.RootPassword = inventory.NewSecret("root-from-inventory")
	inv.Dashboard.Password = inventory.NewSecret("login-from-inventory")
	store := &memConfig{m: auto.ConfigMap{"trafficlab:mysqlPassword": {Value: "stored", Secret: true},
		"trafficlab:mysqlDashboardPassword": {Value: "stored-dash", Secret: true}, "trafficlab:probeKey": {Value: "stored-key", Secret: true}}}
	s, generated, err := resolveSecrets(context.Background(), inv, store)
	if err != nil {
		t.Fatal(err)
	}
	if s.MySQLPassword != "from-the-inventory" || s.VRRPAuth != "vrrp1234" || s.DashboardPassword != "login-from-inventory" ||
		s.ProbeKey != "stored-key" || len(generated) != 0 || store.sets != 0 {
		t.Errorf("secrets %v, generated %v, sets %d", s.MySQLPassword, generated, store.sets)
	}
}

func TestPassphraseFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "passphrase")
	if _, err := ensurePassphrase(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", st.Mode().Perm())
	}
	first, _ := os.ReadFile(path)
	if len(bytes.TrimSpace(first)) < 40 {
		t.Errorf("passphrase too short: %d characters", len(first))
	}
	if _, err := ensurePassphrase(path); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
		t.Errorf("the passphrase changed on the second run: every secret would be lost")
	}
	os.Chmod(path, 0o644)
	if _, err := ensurePassphrase(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable passphrase was accepted: %v", err)
	}
}

func TestPassphraseFromEnvironmentWins(t *testing.T) {
	t.Setenv("PULUMI_CONFIG_PASSPHRASE", "mine")
	d := dirs{root: t.TempDir()}
	env, err := d.passphraseEnv()
	if err != nil || len(env) != 0 {
		t.Errorf("env %v, err %v; want nothing added", env, err)
	}
	if _, err := os.Stat(d.passphrase()); err == nil {
		t.Errorf("a passphrase file was made although the user gave one")
	}
}

func TestStateDirAndBackend(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(StateEnv, dir)
	got, err := DefaultStateDir()
	if err != nil || got != dir {
		t.Errorf("DefaultStateDir = %q, %v; want %q", got, err, dir)
	}
	t.Setenv("PULUMI_BACKEND_URL", "")
	d := dirs{root: dir}
	if u := d.backendURL(); u != "file://"+dir+"/backend" {
		t.Errorf("backend %q", u)
	}
	t.Setenv("PULUMI_BACKEND_URL", "s3://bucket/x")
	if u := d.backendURL(); u != "s3://bucket/x" {
		t.Errorf("the user's PULUMI_BACKEND_URL lost: %q", u)
	}
	if got := describeBackend("https://user:pw@example.org/x"); strings.Contains(got, "pw") {
		t.Errorf("describeBackend shows credentials: %q", got)
	}
}

func TestRunDirsArePruned(t *testing.T) {
	d := dirs{root: t.TempDir()}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var last string
	for i := range keptRuns + 5 {
		var err error
		if last, err = d.newRunDir("lab", "up", now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(d.runs("lab"))
	if len(entries) != keptRuns {
		t.Errorf("%d run directories kept, want %d", len(entries), keptRuns)
	}
	if got := d.lastRunDir("lab"); got != last {
		t.Errorf("lastRunDir = %q, want %q", got, last)
	}
}

func TestGuardStopsOnlyNewSteps(t *testing.T) {
	stop := make(chan struct{})
	checks := 0
	s := step.Step{Name: "s", Check: func(context.Context, *step.Target) (*step.Change, error) {
		checks++
		return nil, nil
	}}
	g := guard([]step.Step{s, s}, stop)
	if _, err := g[0].Check(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	close(stop)
	// The step already started may check again (after its change)...
	if _, err := g[0].Check(context.Background(), nil); err != nil {
		t.Errorf("a started step's second check was stopped: %v", err)
	}
	// ...but no new step starts.
	if _, err := g[1].Check(context.Background(), nil); !errors.Is(err, ErrInterrupted) {
		t.Errorf("a new step started after the interrupt: %v", err)
	}
	if checks != 2 {
		t.Errorf("%d checks ran, want 2", checks)
	}
}

func TestFailureNamesHostResourceStep(t *testing.T) {
	err := &step.Error{Host: "kafka-2", Step: "packages chrony", Err: errors.New(`kafka-2: "apt-get install": exit status 100: E: Unable to locate package chrony`)}
	f := newFailure("kafka-2", "kafka-2-base", err)
	msg := f.Error()
	for _, want := range []string{"host kafka-2", "resource kafka-2-base", "step packages chrony", "Unable to locate package"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %q", msg, want)
		}
	}
}

// TestWebTierDependencies registers the seed's hosts concurrently in
// role order, as register does: every load balancer depends on every web
// server, every filebeat on every broker and web server, and no host
// waits forever on another that is itself waiting (an lb-only host
// waiting for the web servers while the brokers wait for ZooKeeper).
func TestWebTierDependencies(t *testing.T) {
	inv := &inventory.Inventory{}
	inv.Kafka.Mode = inventory.KafkaZooKeeper
	roles := map[string][]string{}
	for _, n := range []string{"kafka-1", "kafka-2", "kafka-3"} {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: n})
		roles[n] = []string{"base", "zookeeper", "kafka", "web", "filebeat"}
	}
	for _, n := range []string{"lb-1", "lb-2"} {
		inv.Hosts = append(inv.Hosts, inventory.Host{Name: n})
		roles[n] = []string{"base", "lb"}
	}
	inv.Hosts = append(inv.Hosts, inventory.Host{Name: "db-1"})
	roles["db-1"] = []string{"base"}

	d := newClusterDeps(inv, Roles())
	var mu sync.Mutex
	kind := map[pulumi.Resource]string{}
	deps := map[string][]pulumi.Resource{} // host/role → its dependencies
	var wg sync.WaitGroup
	for _, h := range inv.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hd := d.host()
			defer hd.finishAll()
			var rs []provider.Resource
			for _, r := range roles[h.Name] {
				rs = append(rs, provider.Resource{Host: h.Name, Role: r})
			}
			for i, r := range rs {
				hd.finishExcept(rs[i:])
				on := hd.dependencies(r.Role)
				res := &roleResource{}
				mu.Lock()
				kind[res] = r.Role
				deps[h.Name+"/"+r.Role] = on
				mu.Unlock()
				hd.registered(r.Role, res)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("registration deadlocked")
	}
	count := func(key string) map[string]int {
		n := map[string]int{}
		for _, r := range deps[key] {
			n[kind[r]]++
		}
		return n
	}
	for _, tt := range []struct {
		key  string
		want map[string]int
	}{
		{"lb-1/lb", map[string]int{"web": 3}},
		{"lb-2/lb", map[string]int{"web": 3}},
		{"kafka-2/filebeat", map[string]int{"kafka": 3, "web": 3}},
		{"kafka-1/kafka", map[string]int{"zookeeper": 3}},
		{"kafka-3/web", map[string]int{}},
	} {
		got := count(tt.key)
		if len(got) != len(tt.want) {
			t.Errorf("%s depends on %v, want %v", tt.key, got, tt.want)
			continue
		}
		for k, n := range tt.want {
			if got[k] != n {
				t.Errorf("%s depends on %v, want %v", tt.key, got, tt.want)
			}
		}
	}
}

// provision status prints the dashboard's password, the one secret people
// need to log in, with the other outputs; no other secret, and a run's
// summary none at all.
func TestStatusPrintsDashboardPassword(t *testing.T) {
	outs := auto.OutputMap{
		"dashboard_url":         {Value: "http://10.0.0.5:8080/"},
		DashboardPasswordOutput: {Value: "s3cret-login", Secret: true},
		"some_other_secret":     {Value: "never-shown", Secret: true},
		"hosts":                 {Value: map[string]any{"db-1": "10.0.0.5"}},
	}
	st := &Status{Stack: "dev"}
	st.Outputs, st.Hosts = statusOutputs(outs)
	var out bytes.Buffer
	st.Print(&out)
	if !strings.Contains(out.String(), "dashboard_password: s3cret-login\n") || !strings.Contains(out.String(), "dashboard_url: http://10.0.0.5:8080/\n") {
		t.Errorf("status lacks the dashboard's login:\n%s", out.String())
	}
	if strings.Contains(out.String(), "never-shown") {
		t.Errorf("status shows another secret:\n%s", out.String())
	}
}

// With the user's own CA (kafka.ca) the stack keeps no CA of its own, and
// the brokers' certificates are signed by the user's.
func TestKafkaTLSWithTheUsersCA(t *testing.T) {
	caPEM, err := kafkatls.NewCA("theirs")
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := kafkatls.ParseCA(caPEM, nil)
	inv := &inventory.Inventory{Kafka: inventory.Kafka{Security: inventory.KafkaTLS, CA: inventory.KafkaCA{PEM: inventory.NewSecret(string(caPEM))}},
		Hosts: []inventory.Host{{Name: "k1", Address: "10.0.0.1", Roles: []inventory.Role{inventory.RoleKafka}}}}
	store := &memConfig{m: auto.ConfigMap{}}
	s, generated, err := resolveSecrets(context.Background(), inv, store)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := store.m["trafficlab:"+kafkaCAKey]; ok || slices.Contains(generated, kafkaCAKey) {
		t.Errorf("a CA was made beside the user's: %v", generated)
	}
	dns, ips := kafka.CertNames(inv.Hosts[0])
	if err := ca.Check([]byte(s.KafkaCerts["k1"]), "k1", dns, ips); err != nil {
		t.Errorf("k1's certificate: %v", err)
	}
	if s.KafkaCA != string(ca.CertPEM) {
		t.Errorf("the CA certificate given to the hosts is not the user's")
	}
}

// kafka.security may change only while no broker runs: up and preview
// refuse it on a running cluster, at the inventory's line, and touch
// nothing; a stack from before the setting was kept counts as plaintext.
func TestKafkaSecurityChangeRefusedOnARunningCluster(t *testing.T) {
	b, err := os.ReadFile("../../inventory/examples/kraft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("inv.yaml", []byte(strings.Replace(string(b), "\nkafka:\n", "\nkafka:\n  security: sasl_ssl\n", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	where := inv.Where("kafka.security")
	if where == "inv.yaml:1" {
		t.Fatalf("kraft.yaml has no kafka section to add security to")
	}
	running := func(r bool) func(context.Context) (bool, error) {
		return func(context.Context) (bool, error) { return r, nil }
	}
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		kept    string // "" when the stack has none
		running bool
		refuse  bool
	}{
		{"first up", "", false, false},
		{"same", "sasl_ssl", true, false},
		{"changed while running", "plaintext", true, true},
		{"changed after destroy", "plaintext", false, false},
		{"running, kept by no earlier version", "", true, true},
	} {
		store := &memConfig{m: auto.ConfigMap{}}
		if c.kept != "" {
			store.m["trafficlab:kafkaSecurity"] = auto.ConfigValue{Value: c.kept}
		}
		err := checkKafkaSecurity(ctx, inv, store, running(c.running))
		switch {
		case c.refuse && (err == nil || !strings.Contains(err.Error(), where+": kafka.security is sasl_ssl, but the brokers run with plaintext")):
			t.Errorf("%s: %v, want refused at %s", c.name, err, where)
		case c.refuse && store.sets != 0:
			t.Errorf("%s: refused, but the stack was changed", c.name)
		case !c.refuse && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case !c.refuse && store.m["trafficlab:kafkaSecurity"].Value != "sasl_ssl":
			t.Errorf("%s: the stack keeps %q", c.name, store.m["trafficlab:kafkaSecurity"].Value)
		}
	}
}

// Every role comes after the roles it needs in the order the engine
// registers them (Ordered), in every Kafka mode: a host registers its
// roles in that order, and a host waiting for a role it has not registered
// yet would wait for itself. The up that finalises a migration (ZooKeeper
// still there) has the brokers first; a migrated cluster's controllers
// come first, as upgrades want.
func TestRolesComeAfterWhatTheyNeed(t *testing.T) {
	zk := []inventory.Host{{Name: "z", Roles: []inventory.Role{inventory.RoleZooKeeper}}}
	for _, c := range []struct {
		k                inventory.Kafka
		hosts            []inventory.Host
		controllersFirst bool
	}{
		{inventory.Kafka{Mode: inventory.KafkaZooKeeper}, zk, false},
		{inventory.Kafka{Mode: inventory.KafkaMigrating, Controllers: inventory.ControllersSeparate}, zk, true},
		{inventory.Kafka{Mode: inventory.KafkaKRaft, Controllers: inventory.ControllersCombined}, nil, false},
		{inventory.Kafka{Mode: inventory.KafkaKRaft, Controllers: inventory.ControllersSeparate}, zk, false},
		{inventory.Kafka{Mode: inventory.KafkaKRaft, Controllers: inventory.ControllersSeparate}, nil, true},
	} {
		k := c.k
		inv := &inventory.Inventory{Kafka: k, Hosts: c.hosts}
		roles, err := Ordered(inv, Roles())
		if err != nil {
			t.Fatalf("%s %s: %v", k.Mode, k.Controllers, err)
		}
		pos := map[string]int{}
		for i, ro := range roles {
			pos[ro.Name()] = i
		}
		for _, ro := range roles {
			for _, n := range ro.Needs(inv) {
				if p, ok := pos[n]; !ok || p >= pos[ro.Name()] {
					t.Errorf("%s %s: role %s needs %s, which is not before it", k.Mode, k.Controllers, ro.Name(), n)
				}
			}
		}
		if i, j := pos[kafka.ControllerName], pos[kafka.Name]; k.Mode != inventory.KafkaZooKeeper && (i < j) != c.controllersFirst {
			t.Errorf("%s %s, %d zookeeper hosts: controllers at %d, brokers at %d", k.Mode, k.Controllers, len(c.hosts), i, j)
		}
	}
}

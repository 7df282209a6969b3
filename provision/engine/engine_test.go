package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

// testRole is a role for engine tests: it keeps one file and one block of
// a "hosts" file in a directory of its own per host (the test's SSH
// servers run commands on this machine).
type testRole struct {
	name  string
	roots map[string]string // host → its directory
	on    func(inventory.Host) bool
}

func (r *testRole) Name() string                 { return r.name }
func (r *testRole) On(h inventory.Host) bool     { return r.on == nil || r.on(h) }
func (r *testRole) Keeps(*role.Context) []string { return []string{"the test directory"} }

func (r *testRole) conf(c *role.Context) role.File {
	return role.File{
		Path:    filepath.Join(r.roots[c.Host.Name], r.name+".conf"),
		Content: []byte(fmt.Sprintf("host %s role %s os %s\n", c.Host.Name, r.name, c.OS.ID)),
		Mode:    0o644,
	}
}

func (r *testRole) secretFile(c *role.Context) role.File {
	return role.File{
		Path:    filepath.Join(r.roots[c.Host.Name], r.name+".secret"),
		Content: []byte("password=" + c.Secrets.MySQLPassword + "\n"),
		Mode:    0o600,
		Secret:  true,
	}
}

func (r *testRole) hostsBlock(c *role.Context) string {
	var b strings.Builder
	for _, h := range c.Inventory.Hosts {
		fmt.Fprintf(&b, "%s %s\n", h.Address, h.Name)
	}
	return b.String()
}

func (r *testRole) hostsPath(c *role.Context) string {
	return filepath.Join(r.roots[c.Host.Name], "hosts")
}

func (r *testRole) Files(c *role.Context) ([]role.File, error) {
	return []role.File{r.conf(c), r.secretFile(c), {Path: r.hostsPath(c), Content: []byte(r.hostsBlock(c))}}, nil
}

func (r *testRole) Needs(*inventory.Inventory) []string { return nil }

func (r *testRole) Plan(c *role.Context) (role.Plan, error) {
	files, err := r.Files(c)
	return role.Plan{Files: files, Steps: []step.Step{
		step.File(r.conf(c).Spec()),
		step.File(r.secretFile(c).Spec()),
		step.Block(r.hostsPath(c), r.name, r.hostsBlock(c)),
	}}, err
}

func (r *testRole) Remove(c *role.Context) ([]step.Step, error) {
	var steps []step.Step
	for _, f := range []role.File{r.conf(c), r.secretFile(c)} {
		p := remote.ShellQuote(f.Path)
		steps = append(steps, step.Command("remove "+f.Path, "test ! -e "+p, "rm -f "+p))
	}
	return append(steps, step.BlockAbsent(r.hostsPath(c), r.name)), nil
}

// testCluster is an inventory whose hosts are in-process SSH servers.
type testCluster struct {
	inv     *inventory.Inventory
	roots   map[string]string
	configs map[string]remote.Config
	servers map[string]*sshtest.Server
	roles   []role.Role
	state   string
	env     map[string]string
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	cliPath, err := FindCLI()
	if err != nil {
		t.Skipf("needs the pulumi CLI: %v (run `make tools`)", err)
	}
	_ = cliPath
	// The user's own Pulumi settings must not leak into the test.
	for _, v := range []string{"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_BACKEND_URL", StateEnv} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	inv, err := inventory.Load("../../inventory/examples/all-in-one.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tc := &testCluster{inv: inv, roots: map[string]string{}, configs: map[string]remote.Config{}, servers: map[string]*sshtest.Server{},
		state: t.TempDir(), env: map[string]string{"PULUMI_HOME": t.TempDir()}}
	for _, h := range inv.Hosts {
		srv := sshtest.New(t)
		tc.servers[h.Name] = srv
		tc.configs[h.Name] = srv.Config(t)
		tc.roots[h.Name] = t.TempDir()
	}
	tc.roles = []role.Role{
		&testRole{name: "base", roots: tc.roots},
		&testRole{name: "extra", roots: tc.roots, on: func(h inventory.Host) bool { return h.Name == "node-1" }},
	}
	return tc
}

func (tc *testCluster) engine(t *testing.T, out *bytes.Buffer) *Engine {
	t.Helper()
	e, err := New(Options{
		Inventory: tc.inv,
		StateDir:  tc.state,
		Roles:     tc.roles,
		Out:       out,
		SSHConfig: func(_ *inventory.Inventory, h inventory.Host) remote.Config { return tc.configs[h.Name] },
		Env:       tc.env,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var serial sync.Mutex // the engine sets the process's default logger

func TestUpTwiceThenDestroy(t *testing.T) {
	serial.Lock()
	defer serial.Unlock()
	tc := newTestCluster(t)
	ctx := context.Background()
	var out bytes.Buffer

	// First up: everything is created.
	sum, err := tc.engine(t, &out).Up(ctx, UpOptions{})
	sum.Print(&out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("up: %v", err)
	}
	if got := sum.Resources["create"]; got != 4 {
		t.Errorf("first up created %d resources, want 4 (3 base + 1 extra): %v", got, sum.Resources)
	}
	if sum.Steps.Changed != 12 {
		t.Errorf("first up changed %d steps, want 12", sum.Steps.Changed)
	}
	hosts, err := os.ReadFile(filepath.Join(tc.roots["node-2"], "hosts"))
	if err != nil || !strings.Contains(string(hosts), "192.168.0.191 node-2") {
		t.Errorf("node-2's hosts block missing: %q, %v", hosts, err)
	}
	secret, err := os.ReadFile(filepath.Join(tc.roots["node-1"], "base.secret"))
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(strings.TrimPrefix(string(secret), "password="))
	if len(password) != 24 {
		t.Errorf("generated password %q is not 24 characters", password)
	}
	checkNoSecret(t, tc, password, out.String())
	for name, srv := range tc.servers {
		if n := srv.Logins(); n != 1 {
			t.Errorf("%s: %d SSH logins in one up, want 1 shared by every resource", name, n)
		}
	}

	// Second up: nothing to do, and the generated secret is the same.
	out.Reset()
	sum, err = tc.engine(t, &out).Up(ctx, UpOptions{})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("second up: %v", err)
	}
	if sum.Resources["same"] != 4 || sum.Steps.Changed != 0 {
		t.Errorf("second up: resources %v, %d steps changed; want 4 same, 0 changed", sum.Resources, sum.Steps.Changed)
	}
	again, _ := os.ReadFile(filepath.Join(tc.roots["node-1"], "base.secret"))
	if !bytes.Equal(again, secret) {
		t.Errorf("the generated secret changed between runs")
	}

	// --force runs every step; all unchanged.
	out.Reset()
	sum, err = tc.engine(t, &out).Up(ctx, UpOptions{Force: true})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("up --force: %v", err)
	}
	if sum.Steps.Changed != 0 || sum.Steps.Unchanged != 12 || sum.Resources["update"] != 4 {
		t.Errorf("up --force: %+v, resources %v; want 12 unchanged steps in 4 updated resources", sum.Steps, sum.Resources)
	}

	// A hand edit shows in preview --refresh and is repaired by up.
	hostsFile := filepath.Join(tc.roots["node-3"], "hosts")
	if err := os.WriteFile(hostsFile, []byte("# BEGIN trafficlab base\n1.2.3.4 intruder\n# END trafficlab base\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	sum, err = tc.engine(t, &out).Preview(ctx, PreviewOptions{})
	if err != nil {
		t.Fatalf("preview: %v", err)
	}
	if len(sum.Changes) != 0 {
		t.Errorf("preview without refresh saw changes: %+v", sum.Changes)
	}
	out.Reset()
	sum, err = tc.engine(t, &out).Preview(ctx, PreviewOptions{Refresh: true})
	sum.Print(&out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("preview --refresh: %v", err)
	}
	if len(sum.Changes) != 1 || sum.Changes[0].Resource != "node-3-base" || !strings.Contains(out.String(), `files["`+hostsFile+`"]`) {
		t.Errorf("preview --refresh: changes %+v; want node-3-base's hosts file", sum.Changes)
	}
	// refresh keeps what it found in the state: a plain preview shows it.
	out.Reset()
	if sum, err = tc.engine(t, &out).Refresh(ctx); err != nil || sum.Resources["update"] != 1 || sum.Resources["same"] != 3 {
		t.Fatalf("refresh: %v, resources %v", err, sum.Resources)
	}
	out.Reset()
	if sum, err = tc.engine(t, &out).Preview(ctx, PreviewOptions{}); err != nil || len(sum.Changes) != 1 {
		t.Errorf("preview after refresh: %v, changes %+v; want node-3-base", err, sum.Changes)
	}
	out.Reset()
	sum, err = tc.engine(t, &out).Up(ctx, UpOptions{})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("up after edit: %v", err)
	}
	if sum.Steps.Changed != 1 || sum.Resources["update"] != 1 {
		t.Errorf("up after edit: %+v %v; want 1 step changed in 1 updated resource", sum.Steps, sum.Resources)
	}
	if b, _ := os.ReadFile(hostsFile); strings.Contains(string(b), "intruder") {
		t.Errorf("hand edit not repaired: %s", b)
	}

	// A run killed hard leaves pending operations in the state; the next
	// one clears them and goes on. (stack import would drop them, so the
	// test writes them into the file backend itself.)
	injectPendingOperation(t, filepath.Join(tc.state, "backend", ".pulumi", "stacks", projectName, tc.inv.Cluster.Name+".json"))
	out.Reset()
	if _, err = tc.engine(t, &out).Up(ctx, UpOptions{}); err != nil || !strings.Contains(out.String(), "cleared 1 operation") {
		t.Errorf("up after a killed run: %v\n%s", err, out.String())
	}

	// A host dropped from the inventory has its roles removed, although
	// the engine knows it only from the state.
	all := tc.inv.Hosts
	tc.inv.Hosts = all[:2]
	out.Reset()
	sum, err = tc.engine(t, &out).Up(ctx, UpOptions{})
	sum.Print(&out)
	t.Log(out.String())
	tc.inv.Hosts = all
	if err != nil {
		t.Fatalf("up without node-3: %v", err)
	}
	if sum.Resources["delete"] != 1 {
		t.Errorf("up without node-3: resources %v; want 1 deleted", sum.Resources)
	}
	if _, err := os.Stat(filepath.Join(tc.roots["node-3"], "base.conf")); err == nil {
		t.Errorf("node-3's files are still there after it left the inventory")
	}
	tc.inv.Hosts = all[:2]
	defer func() { tc.inv.Hosts = all }()

	// Destroy removes everything the roles wrote and says what it kept.
	out.Reset()
	sum, err = tc.engine(t, &out).Destroy(ctx)
	sum.Print(&out)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if sum.Resources["delete"] != 3 {
		t.Errorf("destroy deleted %v, want 3", sum.Resources)
	}
	for h, root := range tc.roots {
		for _, f := range []string{"base.conf", "base.secret", "extra.conf"} {
			if _, err := os.Stat(filepath.Join(root, f)); err == nil {
				t.Errorf("%s: %s left after destroy", h, f)
			}
		}
		if b, _ := os.ReadFile(filepath.Join(root, "hosts")); strings.Contains(string(b), "trafficlab") {
			t.Errorf("%s: hosts block left after destroy: %s", h, b)
		}
	}
	if !strings.Contains(out.String(), "left in place on node-1, node-2: the test directory") {
		t.Errorf("destroy did not say what it kept:\n%s", out.String())
	}
}

// checkNoSecret fails if the secret shows in the output, the run logs or
// the state in clear text.
func checkNoSecret(t *testing.T, tc *testCluster, secret, output string) {
	t.Helper()
	if strings.Contains(output, secret) {
		t.Errorf("the secret appears in the output")
	}
	filepath.Walk(tc.state, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("the secret appears in clear text in %s", path)
		}
		return nil
	})
}

func injectPendingOperation(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	latest := d["checkpoint"].(map[string]any)["latest"].(map[string]any)
	res := latest["resources"].([]any)
	latest["pending_operations"] = []any{map[string]any{"resource": res[len(res)-1], "type": "updating"}}
	if b, err = json.Marshal(d); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A host gone for good is forgotten without a connection: its resources
// leave the state, and the next up without it in the inventory deletes
// nothing there and connects nowhere near it.
func TestForgetAHostThatIsGone(t *testing.T) {
	serial.Lock()
	defer serial.Unlock()
	tc := newTestCluster(t)
	ctx := context.Background()
	var out bytes.Buffer
	if _, err := tc.engine(t, &out).Up(ctx, UpOptions{}); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	tc.servers["node-3"].Stop() // gone with its disk
	logins := tc.servers["node-3"].Logins()

	dropped, err := tc.engine(t, &out).Forget(ctx, []string{"node-3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) != 1 || !strings.HasSuffix(dropped[0], "::trafficlab:index:Base::node-3-base") {
		t.Errorf("forget dropped %v, want node-3's base", dropped)
	}
	if again, err := tc.engine(t, &out).Forget(ctx, []string{"node-3"}); err != nil || len(again) != 0 {
		t.Errorf("forgetting it again: %v, %v; want nothing to do", again, err)
	}

	// The inventory without node-3: nothing to delete, nothing on node-3.
	without := *tc.inv
	without.Hosts = slices.DeleteFunc(slices.Clone(tc.inv.Hosts), func(h inventory.Host) bool { return h.Name == "node-3" })
	tc.inv = &without
	out.Reset()
	sum, err := tc.engine(t, &out).Up(ctx, UpOptions{})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("up after forgetting node-3: %v", err)
	}
	// The others' hosts blocks lose node-3's line.
	if sum.Resources["delete"] != 0 || sum.Resources["update"] != 3 {
		t.Errorf("up after forgetting node-3: resources %v; want the 3 others updated, none deleted", sum.Resources)
	}
	if n := tc.servers["node-3"].Logins(); n != logins {
		t.Errorf("node-3 got %d logins after it was forgotten", n-logins)
	}
}

// A host removed from the inventory that cannot be reached is gone for
// good: up drops its resources from the state, says so, and never tries to
// log in there to undo anything.
func TestUpForgetsARemovedHostThatIsGone(t *testing.T) {
	serial.Lock()
	defer serial.Unlock()
	tc := newTestCluster(t)
	ctx := context.Background()
	var out bytes.Buffer
	if _, err := tc.engine(t, &out).Up(ctx, UpOptions{}); err != nil {
		t.Fatalf("up: %v\n%s", err, out.String())
	}
	tc.servers["node-3"].Stop()
	logins := tc.servers["node-3"].Logins()
	without := *tc.inv
	without.Hosts = slices.DeleteFunc(slices.Clone(tc.inv.Hosts), func(h inventory.Host) bool { return h.Name == "node-3" })
	tc.inv = &without
	// preview says what up will do, and does not.
	out.Reset()
	if _, err := tc.engine(t, &out).Preview(ctx, PreviewOptions{}); err != nil {
		t.Fatalf("preview without node-3: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "node-3: removed from the inventory and not reachable") || !strings.Contains(out.String(), "up will take it as gone") {
		t.Errorf("preview does not say what up will do with node-3:\n%s", out.String())
	}
	out.Reset()
	sum, err := tc.engine(t, &out).Up(ctx, UpOptions{})
	t.Log(out.String())
	if err != nil {
		t.Fatalf("up without node-3, which is gone: %v", err)
	}
	if !strings.Contains(out.String(), "node-3: removed from the inventory and not reachable") || !strings.Contains(out.String(), "dropped 1 resources of node-3 from the state") {
		t.Errorf("up does not say it dropped node-3:\n%s", out.String())
	}
	if sum.Resources["delete"] != 0 || sum.Resources["update"] != 3 {
		t.Errorf("resources %v; want the 3 others updated, none deleted", sum.Resources)
	}
	if n := tc.servers["node-3"].Logins(); n != logins {
		t.Errorf("node-3 got %d logins after it was removed", n-logins)
	}
}

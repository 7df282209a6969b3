package roletest

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
	"github.com/trafficlab/trafficlab/templates"
)

// LoadInventory parses an inventory given as text, with no environment.
func LoadInventory(t testing.TB, text string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Parse("test.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// LoadExample loads one of the inventories under inventory/examples,
// relative to a package directory two levels below the repository root
// (provision/role/NAME).
func LoadExample(t testing.TB, name string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.LoadEnv(filepath.Join("..", "..", "..", "inventory", "examples", name), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// HostNamed returns the inventory's host called name.
func HostNamed(t testing.TB, inv *inventory.Inventory, name string) inventory.Host {
	t.Helper()
	for _, h := range inv.Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no host %s in the inventory", name)
	return inventory.Host{}
}

// Connect logs in to h as a non-root user with sudo, so that every read and
// write is a command the fake answers, and returns the role context (with
// the OS the transport detects) and the step target for the inventory's
// host called name. Commands sent while connecting are forgotten.
func Connect(t testing.TB, h *Host, inv *inventory.Inventory, name string) (*role.Context, *step.Target) {
	t.Helper()
	srv := sshtest.New(t, sshtest.WithUser("deploy"), sshtest.WithHandler(sshtest.Sudo("", h.ExecHandler)))
	cfg := srv.Config(t)
	cfg.Name = name
	c, err := remote.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	os, err := facts.Detect(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	h.TakeMutating()
	h.TakeAll()
	return &role.Context{Inventory: inv, Host: HostNamed(t, inv, name), OS: os, Templates: Templates(t)}, &step.Target{Host: c, OS: os}
}

// Templates loads the built-in templates.
func Templates(t testing.TB) *templates.Set {
	t.Helper()
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// Apply runs steps on tg, fails the test on an error, and returns the names
// of the steps that changed something.
func Apply(t testing.TB, tg *step.Target, steps []step.Step) (changed []string) {
	t.Helper()
	changed, err := TryApply(tg, steps)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

// TryApply is Apply returning the error, for failure paths.
//
// Each call is one run, as one `provision up` is: a Target remembers which
// steps changed in its run (for the restarts that follow them), so every
// call gets a fresh one on the same connection.
func TryApply(tg *step.Target, steps []step.Step) (changed []string, err error) {
	run := &step.Target{Host: tg.Host, OS: tg.OS, DryRun: tg.DryRun}
	res, err := run.Run(context.Background(), steps, nil)
	for _, r := range res {
		if r.Status == step.Changed {
			changed = append(changed, r.Step)
		}
	}
	return changed, err
}

// AssertSecondRunIdle runs steps again, as `up --force` does, and fails
// unless every step is unchanged and no command changed anything.
func AssertSecondRunIdle(t testing.TB, h *Host, tg *step.Target, steps []step.Step) {
	t.Helper()
	h.TakeMutating()
	h.TakeAll()
	if changed := Apply(t, tg, steps); len(changed) != 0 {
		t.Errorf("second run changed %q", changed)
	}
	if m := h.TakeMutating(); len(m) != 0 {
		t.Errorf("second run ran mutating commands:\n%s", strings.Join(m, "\n"))
	}
	if len(h.TakeAll()) == 0 {
		t.Error("second run checked nothing")
	}
}

// tmpName matches the random part of upload names: 16 hex digits, not
// the start of a name such as .trafficlab-dashboard.service.
var tmpName = regexp.MustCompile(`(/tmp/trafficlab-upload-|\.trafficlab-)[0-9a-f]{16}\b`)

// AssertSequence checks commands, in order, against patterns (regular
// expressions matched against the whole command). The random parts of
// upload file names read as X.
func AssertSequence(t testing.TB, got []string, want []string) {
	t.Helper()
	for i := range got {
		got[i] = tmpName.ReplaceAllString(got[i], "${1}X")
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = regexp.MustCompile("^" + want[i] + "$").MatchString(got[i])
	}
	if !ok {
		t.Fatalf("mutating commands:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// Upload is the pattern of the command that installs an uploaded file at
// path with mode (e.g. "0644") and owner ("user:group" or "").
func Upload(mode, owner, path string) string {
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil {
		panic(fmt.Sprintf("roletest.Upload: mode %q is not octal", mode))
	}
	cmd, err := remote.UploadCommand(path, fs.FileMode(m), owner)
	if err != nil {
		panic(fmt.Sprintf("roletest.Upload: %v", err))
	}
	return regexp.QuoteMeta(cmd)
}

// Quote is regexp.QuoteMeta, for sequences that mix literal commands with
// patterns.
func Quote(s string) string { return regexp.QuoteMeta(s) }

// Pattern is the pattern of a command made by production code with
// placeholder words for its variable parts: cmd quoted as Quote does, with
// each placeholder in holes matching anything (at least one character)
// and captured. Submatches come in the order the placeholders appear in
// cmd. A placeholder must be a word remote.ShellQuote leaves as it is
// ("CLUSTER-ID", "PATHS") and appear nowhere else in cmd.
//
//	h.Handle("^"+roletest.Pattern(kafka.FormatCommand(os, "ID", []string{"DIR"}), "ID", "DIR")+"$", ...)
func Pattern(cmd string, holes ...string) string {
	p := regexp.QuoteMeta(cmd)
	for _, hole := range holes {
		q := regexp.QuoteMeta(hole)
		if !strings.Contains(p, q) {
			panic(fmt.Sprintf("roletest.Pattern: no %q in %q", hole, cmd))
		}
		p = strings.ReplaceAll(p, q, `(.+?)`)
	}
	return p
}

// Steps plans ro on c and returns the plan's steps, for tests that run them.
func Steps(ro role.Role, c *role.Context) ([]step.Step, error) {
	p, err := ro.Plan(c)
	return p.Steps, err
}

package step

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
)

var debian = facts.OS{ID: "debian", VersionID: "12", Family: facts.Family("debian"), Major: 12, PackageManager: "apt", ServiceManager: "systemd"}
var rocky = facts.OS{ID: "rocky", VersionID: "9.4", Family: facts.Family("rhel"), Major: 9, PackageManager: "dnf", ServiceManager: "systemd"}

// connect starts an in-process SSH server with handler and returns a
// Target for it: every step test goes through the real transport.
func connect(t *testing.T, name string, os facts.OS, handler sshtest.ExecHandler) *Target {
	t.Helper()
	srv := sshtest.New(t, sshtest.WithHandler(handler))
	cfg := srv.Config(t)
	cfg.Name = name
	c, err := remote.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Target{Host: c, OS: os}
}

func shellTarget(t *testing.T) *Target {
	return connect(t, "web-1", debian, sshtest.ShellHandler())
}

func run(t *testing.T, tg *Target, steps ...Step) []Result {
	t.Helper()
	res, err := tg.Run(context.Background(), steps, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func statuses(res []Result) string {
	var s []string
	for _, r := range res {
		s = append(s, r.Status.String())
	}
	return strings.Join(s, ",")
}

func me(t *testing.T) string {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func TestFileCreateThenUnchanged(t *testing.T) {
	tg := shellTarget(t)
	path := filepath.Join(t.TempDir(), "chrony.conf")
	f := File(FileSpec{Path: path, Content: []byte("server 10.0.0.1 iburst\n"), Mode: 0o640, Owner: me(t)})

	if got := statuses(run(t, tg, f)); got != "changed" {
		t.Fatalf("first run: %s, want changed", got)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "server 10.0.0.1 iburst\n" {
		t.Fatalf("content %q, %v", b, err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	if got := statuses(run(t, tg, f)); got != "unchanged" {
		t.Fatalf("second run: %s, want unchanged", got)
	}
}

func TestFileModeDriftIsRepaired(t *testing.T) {
	tg := shellTarget(t)
	path := filepath.Join(t.TempDir(), "f")
	f := File(FileSpec{Path: path, Content: []byte("x\n"), Mode: 0o600})
	run(t, tg, f)
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	tg.DryRun = true
	res := run(t, tg, f)
	if res[0].Status != WouldChange || !strings.Contains(res[0].Change.Summary, "mode 0666 -> 0600") {
		t.Fatalf("dry run: %+v %+v", res[0], res[0].Change)
	}
	tg.DryRun = false
	run(t, tg, f)
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode not repaired: %v", st.Mode().Perm())
	}
}

func TestFileDryRunShowsDiffAndChangesNothing(t *testing.T) {
	tg := shellTarget(t)
	path := filepath.Join(t.TempDir(), "zoo.cfg")
	if err := os.WriteFile(path, []byte("tickTime=2000\ninitLimit=5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg.DryRun = true
	res := run(t, tg, File(FileSpec{Path: path, Content: []byte("tickTime=2000\ninitLimit=10\n"), Mode: 0o644}))
	if res[0].Status != WouldChange {
		t.Fatalf("status %s", res[0].Status)
	}
	for _, want := range []string{"-initLimit=5", "+initLimit=10", " tickTime=2000", "--- " + path} {
		if !strings.Contains(res[0].Change.Diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, res[0].Change.Diff)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != "tickTime=2000\ninitLimit=5\n" {
		t.Errorf("dry run changed the file: %q", b)
	}
}

func TestSecretFileDiffHidden(t *testing.T) {
	tg := shellTarget(t)
	path := filepath.Join(t.TempDir(), "consumer.yaml")
	os.WriteFile(path, []byte("password: old-secret\n"), 0o600)
	tg.DryRun = true
	res := run(t, tg, File(FileSpec{Path: path, Content: []byte("password: new-secret\n"), Mode: 0o600, Secret: true}))
	c := res[0].Change
	if c == nil || c.Summary != "update "+path+": content" {
		t.Fatalf("change = %+v", c)
	}
	if c.Diff != "" {
		t.Fatalf("diff of a secret file is shown: %q", c.Diff)
	}
}

func TestBlock(t *testing.T) {
	tg := shellTarget(t)
	path := filepath.Join(t.TempDir(), "hosts")
	orig := "127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
	os.WriteFile(path, []byte(orig), 0o644)

	hosts := Block(path, "hosts", "10.0.0.1 kafka-1\n10.0.0.2 kafka-2\n")
	if got := statuses(run(t, tg, hosts)); got != "changed" {
		t.Fatalf("first: %s", got)
	}
	want := orig + "# BEGIN trafficlab hosts\n10.0.0.1 kafka-1\n10.0.0.2 kafka-2\n# END trafficlab hosts\n"
	if b, _ := os.ReadFile(path); string(b) != want {
		t.Fatalf("file:\n%s\nwant:\n%s", b, want)
	}
	if got := statuses(run(t, tg, hosts)); got != "unchanged" {
		t.Fatalf("second: %s", got)
	}

	// A hand edit inside the block is reverted; one outside it is kept.
	edited := strings.Replace(want, "10.0.0.2 kafka-2", "10.9.9.9 kafka-2", 1) + "192.168.1.5 printer\n"
	os.WriteFile(path, []byte(edited), 0o644)
	run(t, tg, hosts)
	if b, _ := os.ReadFile(path); string(b) != want+"192.168.1.5 printer\n" {
		t.Fatalf("after repair:\n%s", b)
	}

	if got := statuses(run(t, tg, BlockAbsent(path, "hosts"))); got != "changed" {
		t.Fatalf("remove: %s", got)
	}
	if b, _ := os.ReadFile(path); string(b) != orig+"192.168.1.5 printer\n" {
		t.Fatalf("after remove:\n%s", b)
	}
	if got := statuses(run(t, tg, BlockAbsent(path, "hosts"))); got != "unchanged" {
		t.Fatalf("remove again: %s", got)
	}
}

func TestBlockCreatesMissingFileAndKeepsMode(t *testing.T) {
	tg := shellTarget(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "new")
	run(t, tg, Block(missing, "x", "a=1"))
	if b, _ := os.ReadFile(missing); string(b) != "# BEGIN trafficlab x\na=1\n# END trafficlab x\n" {
		t.Fatalf("created: %q", b)
	}
	private := filepath.Join(dir, "private")
	os.WriteFile(private, []byte("no newline at end"), 0o600)
	run(t, tg, Block(private, "x", "a=1\n"))
	b, _ := os.ReadFile(private)
	if string(b) != "no newline at end\n# BEGIN trafficlab x\na=1\n# END trafficlab x\n" {
		t.Fatalf("appended: %q", b)
	}
	if st, _ := os.Stat(private); st.Mode().Perm() != 0o600 {
		t.Errorf("mode changed to %v", st.Mode().Perm())
	}
}

func TestBlockUnterminatedIsAnError(t *testing.T) {
	tg := shellTarget(t)
	path := filepath.Join(t.TempDir(), "hosts")
	damaged := "# BEGIN trafficlab hosts\n10.0.0.1 kafka-1\n127.0.0.1 localhost\n"
	os.WriteFile(path, []byte(damaged), 0o644)
	_, err := tg.Run(context.Background(), []Step{Block(path, "hosts", "x")}, nil)
	if !errors.Is(err, errUnterminated) || !strings.Contains(err.Error(), "web-1: block hosts in "+path) {
		t.Fatalf("error = %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != damaged {
		t.Errorf("damaged file was rewritten: %q", b)
	}
}

func TestCommand(t *testing.T) {
	tg := shellTarget(t)
	marker := filepath.Join(t.TempDir(), "done")
	q := remote.ShellQuote(marker)
	ok := Command("touch marker", "test -e "+q, "touch "+q)
	if got := statuses(run(t, tg, ok, ok)); got != "changed,unchanged" {
		t.Fatalf("statuses %s", got)
	}

	// An apply that does not fix what check looks at must fail, or every
	// later run would report a change.
	broken := Command("never converges", "false", "true")
	_, err := tg.Run(context.Background(), []Step{broken}, nil)
	if err == nil || !strings.Contains(err.Error(), "web-1: never converges: still not as wanted after the change: true") {
		t.Fatalf("error = %v", err)
	}
}

func TestStopsAtFirstFailureAndNamesStep(t *testing.T) {
	tg := shellTarget(t)
	var seen []string
	res, err := tg.Run(context.Background(), []Step{
		Command("first", "true", "true"),
		Command("second", "false", "echo boom >&2; exit 3"),
		Command("third", "true", "true"),
	}, func(r Result) { seen = append(seen, r.Step) })
	if len(res) != 2 || strings.Join(seen, ",") != "first,second" {
		t.Fatalf("ran %v", seen)
	}
	var se *Error
	if !errors.As(err, &se) || se.Host != "web-1" || se.Step != "second" || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error = %v", err)
	}
}

func TestRetries(t *testing.T) {
	defer func(d time.Duration) { retryDelay = d }(retryDelay)
	retryDelay = time.Millisecond
	tg := shellTarget(t)
	dir := t.TempDir()
	n := filepath.Join(dir, "n")
	// Fails twice (a held lock, say), then succeeds.
	apply := fmt.Sprintf(`echo x >> %[1]s; test "$(wc -l < %[1]s)" -ge 3 && touch %[2]s`, n, filepath.Join(dir, "ok"))
	s := Command("flaky", "test -e "+filepath.Join(dir, "ok"), apply)
	s.Retries = 2
	if got := statuses(run(t, tg, s)); got != "changed" {
		t.Fatalf("status %s", got)
	}
	s.Retries = 0
	os.Remove(filepath.Join(dir, "ok"))
	os.Remove(n)
	if _, err := tg.Run(context.Background(), []Step{s}, nil); err == nil {
		t.Fatal("without retries the flaky step should fail")
	}
}

func TestOnChange(t *testing.T) {
	tg := shellTarget(t)
	dir := t.TempDir()
	conf := File(FileSpec{Path: filepath.Join(dir, "nginx.conf"), Content: []byte("events {}\n"), Mode: 0o644})
	count := filepath.Join(dir, "reloads")
	reload := OnChange("reload nginx", "echo x >> "+count, conf.ID)
	if got := statuses(run(t, tg, conf, reload)); got != "changed,changed" {
		t.Fatalf("first run: %s", got)
	}
	// A new run (a new Target) with nothing changed does not reload.
	again := &Target{Host: tg.Host, OS: tg.OS}
	if got := statuses(run(t, again, conf, reload)); got != "unchanged,skipped" {
		t.Fatalf("second run: %s", got)
	}
	if b, _ := os.ReadFile(count); string(b) != "x\n" {
		t.Errorf("reloaded %q times, want once", b)
	}
	dry := &Target{Host: tg.Host, OS: tg.OS, DryRun: true}
	os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("events { }\n"), 0o644)
	if got := statuses(run(t, dry, conf, reload)); got != "would change,would change" {
		t.Fatalf("dry run: %s", got)
	}
}

func TestAbsent(t *testing.T) {
	tg := shellTarget(t)
	path := filepath.Join(t.TempDir(), "90trafficlab-proxy")
	os.WriteFile(path, []byte("x"), 0o644)
	if got := statuses(run(t, tg, FileAbsent(path), FileAbsent(path))); got != "changed,unchanged" {
		t.Fatalf("statuses %s", got)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
}

// pkgHost is a package database behind the SSH server: it answers the
// query and install commands of apt or dnf the way the real tools do, so
// the Packages step's whole sequence is exercised.
type pkgHost struct {
	mu        sync.Mutex
	installed map[string]bool
	listsOK   bool // apt: package lists fetched
	cmds      []string
}

func (p *pkgHost) handler(ctx context.Context, s sshtest.Session) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmds = append(p.cmds, s.Command)
	args := strings.Fields(s.Command[strings.LastIndex(s.Command, "' sh")+4:])
	switch {
	case strings.Contains(s.Command, "dpkg-query") || strings.Contains(s.Command, "rpm -q"):
		for _, a := range args {
			if !p.installed[a] {
				fmt.Fprintln(s.Stdout, a)
			}
		}
	case strings.Contains(s.Command, "apt-get update"):
		p.listsOK = true
	case strings.Contains(s.Command, "apt-get install"):
		if !p.listsOK {
			fmt.Fprintf(s.Stderr, "E: Unable to locate package %s\n", args[0])
			return 100
		}
		fallthrough
	case strings.Contains(s.Command, "dnf install"):
		for _, a := range args {
			p.installed[a] = true
		}
	default:
		fmt.Fprintf(s.Stderr, "unexpected command %q\n", s.Command)
		return 127
	}
	return 0
}

func TestPackages(t *testing.T) {
	want := map[facts.Family][]string{
		"debian": {"chrony", "vim", "wget"},
		"rhel":   {"chrony", "vim-enhanced", "wget"},
	}
	tests := []struct {
		os    facts.OS
		cmds  []string // the sequence of the first run
		state map[string]bool
	}{
		{debian, []string{"dpkg-query", "dpkg-query", "apt-get install", "apt-get update", "apt-get install", "dpkg-query"}, map[string]bool{"wget": true}},
		{rocky, []string{"rpm -q", "rpm -q", "dnf install", "rpm -q"}, map[string]bool{"wget": true}},
	}
	for _, tt := range tests {
		t.Run(tt.os.ID, func(t *testing.T) {
			h := &pkgHost{installed: tt.state}
			tg := connect(t, "kafka-1", tt.os, h.handler)
			s := Packages(want)
			tg.DryRun = true
			res := run(t, tg, s)
			names := want[tt.os.Family]
			if res[0].Change.Summary != "install "+names[0]+" "+names[1] {
				t.Errorf("dry run summary %q", res[0].Change.Summary)
			}
			h.cmds = nil
			tg.DryRun = false
			if got := statuses(run(t, tg, s)); got != "changed" {
				t.Fatalf("status %s", got)
			}
			if len(h.cmds) != len(tt.cmds) {
				t.Fatalf("commands:\n%s", strings.Join(h.cmds, "\n"))
			}
			for i, c := range tt.cmds {
				if !strings.Contains(h.cmds[i], c) {
					t.Errorf("command %d = %q, want it to contain %q", i, h.cmds[i], c)
				}
			}
			if strings.Contains(h.cmds[len(h.cmds)-2], "wget") {
				t.Errorf("installed an already installed package: %q", h.cmds[len(h.cmds)-2])
			}
			h.cmds = nil
			if got := statuses(run(t, tg, s)); got != "unchanged" || len(h.cmds) != 1 {
				t.Fatalf("second run: %s after %q", got, h.cmds)
			}
		})
	}
}

func TestPackagesRefusesOddNames(t *testing.T) {
	h := &pkgHost{installed: map[string]bool{}}
	tg := connect(t, "kafka-1", debian, h.handler)
	_, err := tg.Run(context.Background(), []Step{Packages(map[facts.Family][]string{"debian": {"vim; rm -rf /"}})}, nil)
	if err == nil || !strings.Contains(err.Error(), `invalid package name "vim; rm -rf /"`) || len(h.cmds) != 0 {
		t.Fatalf("error %v after commands %q", err, h.cmds)
	}
}

// unitHost answers systemctl like systemd does for a set of units.
type unitHost struct {
	mu      sync.Mutex
	enabled map[string]string // unit -> is-enabled output ("" = no unit file)
	active  map[string]bool
	cmds    []string
}

func (u *unitHost) handler(ctx context.Context, s sshtest.Session) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.cmds = append(u.cmds, s.Command)
	f := strings.Fields(s.Command)
	unit := strings.Trim(f[2], "'")
	switch {
	case strings.HasPrefix(s.Command, "systemctl is-enabled"):
		if e := u.enabled[unit]; e != "" {
			fmt.Fprintln(s.Stdout, e)
		}
		if u.active[unit] {
			fmt.Fprintln(s.Stdout, "active")
		} else {
			fmt.Fprintln(s.Stdout, "inactive")
		}
	case strings.HasPrefix(s.Command, "systemctl enable --now"):
		u.enabled[strings.Trim(f[3], "'")], u.active[strings.Trim(f[3], "'")] = "enabled", true
	case strings.HasPrefix(s.Command, "systemctl disable --now"):
		u.enabled[strings.Trim(f[3], "'")], u.active[strings.Trim(f[3], "'")] = "disabled", false
	case strings.HasPrefix(s.Command, "systemctl start"):
		u.active[unit] = true
	case strings.HasPrefix(s.Command, "systemctl stop"):
		u.active[unit] = false
	default:
		return 1
	}
	return 0
}

func TestService(t *testing.T) {
	tests := []struct {
		name    string
		enabled string
		active  bool
		want    ServiceState
		action  string // "" = unchanged
	}{
		{"disabled and stopped, want running", "disabled", false, Running, "systemctl enable --now chronyd"},
		{"enabled but stopped", "enabled", false, Running, "systemctl start chronyd"},
		{"static unit stopped", "static", false, Running, "systemctl start chronyd"},
		{"running", "enabled", true, Running, ""},
		{"running, want stopped", "enabled", true, Stopped, "systemctl disable --now chronyd"},
		{"stopped", "disabled", false, Stopped, ""},
		{"no such unit, want stopped", "", false, Stopped, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &unitHost{enabled: map[string]string{"chronyd": tt.enabled}, active: map[string]bool{"chronyd": tt.active}}
			tg := connect(t, "db-1", rocky, u.handler)
			res := run(t, tg, Service("chronyd", tt.want))
			if tt.action == "" {
				if res[0].Status != Unchanged {
					t.Fatalf("status %s, commands %q", res[0].Status, u.cmds)
				}
				return
			}
			if res[0].Status != Changed || !containsCmd(u.cmds, tt.action) {
				t.Fatalf("status %s, commands %q, want %q", res[0].Status, u.cmds, tt.action)
			}
		})
	}
}

func TestServiceMaskedIsAnError(t *testing.T) {
	u := &unitHost{enabled: map[string]string{"firewalld": "masked"}, active: map[string]bool{}}
	tg := connect(t, "db-1", rocky, u.handler)
	_, err := tg.Run(context.Background(), []Step{Service("firewalld", Running)}, nil)
	if err == nil || !strings.Contains(err.Error(), "unit firewalld is masked") {
		t.Fatalf("error = %v", err)
	}
}

func containsCmd(cmds []string, want string) bool {
	for _, c := range cmds {
		if c == want {
			return true
		}
	}
	return false
}

func TestDropInReloadsSystemd(t *testing.T) {
	s := DropIn("chrony.service", "trafficlab", []byte("[Unit]\nConditionCapability=\n"))
	if s.Name != "file /etc/systemd/system/chrony.service.d/trafficlab.conf" {
		t.Fatalf("name %q", s.Name)
	}
	var script sshtest.Script
	script.OnPrefix("stat ", sshtest.Reply{Stdout: "missing\n"})
	tg := connect(t, "kafka-1", debian, script.Handler())
	tg.DryRun = true
	res := run(t, tg, s)
	if res[0].Status != WouldChange || !strings.Contains(res[0].Change.Diff, "+ConditionCapability=") {
		t.Fatalf("dry run: %+v", res[0])
	}
	if cmds := script.Commands(); len(cmds) != 1 {
		t.Fatalf("dry run ran more than the check: %q", cmds)
	}
}

func TestRunAllCollectsEveryHostsError(t *testing.T) {
	ok := shellTarget(t)
	bad1 := connect(t, "kafka-2", debian, func(ctx context.Context, s sshtest.Session) int {
		fmt.Fprintln(s.Stderr, "E: Could not get lock /var/lib/dpkg/lock-frontend")
		return 100
	})
	bad2 := connect(t, "kafka-3", debian, func(ctx context.Context, s sshtest.Session) int { return 1 })
	dir := t.TempDir()
	var mu sync.Mutex
	var out bytes.Buffer
	res, err := RunAll(context.Background(), []*Target{bad2, ok, bad1}, func(tg *Target) []Step {
		return []Step{Command("mark", "test -e "+filepath.Join(dir, tg.Host.Name()), "touch "+filepath.Join(dir, tg.Host.Name()))}
	}, func(r Result) { mu.Lock(); defer mu.Unlock(); Progress(&out, time.Now())(r) })
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "2 host(s) failed:\n  kafka-2: mark: ") || !strings.Contains(msg, "\n  kafka-3: mark: ") ||
		!strings.Contains(msg, "Could not get lock") {
		t.Fatalf("error message:\n%s", msg)
	}
	if _, e := os.Stat(filepath.Join(dir, "web-1")); e != nil || res["web-1"][0].Status != Changed {
		t.Errorf("the healthy host did not finish: %v %+v", e, res["web-1"])
	}
	if !strings.Contains(out.String(), "web-1      mark  changed") {
		t.Errorf("progress output:\n%s", out.String())
	}
}

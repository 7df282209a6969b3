package mysql

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
	"github.com/trafficlab/trafficlab/provision/step"
)

// The database on its own host; the consumer and the dashboard on two
// others; web hosts that must not get an account.
const testInventory = `
cluster: {name: sc, firewall: managed}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.5, roles: [mysql]}
  - {name: app-1, address: 10.0.0.6, roles: [consumer]}
  - {name: app-2, address: 10.0.0.7, roles: [dashboard]}

mysql: {database: traffic, user: consumer}
`

// Secrets with characters that need quoting everywhere they go.
var secrets = role.Secrets{MySQLPassword: `app'pw\"x%_1`, MySQLRootPassword: `root'pw\$2`, MySQLDashboardPassword: `dash'pw\3`}

// run applies steps in one run and fails the test if any command line or
// change summary carries a secret; it returns the steps that changed and
// every command line sent.
func run(t *testing.T, h *rt.Host, tg *step.Target, steps []step.Step) (changed, commands []string) {
	t.Helper()
	h.TakeAll()
	h.TakeMutating()
	target := &step.Target{Host: tg.Host, OS: tg.OS}
	res, err := target.Run(context.Background(), steps, nil)
	commands = h.TakeAll()
	for _, c := range commands {
		for _, pw := range []string{secrets.MySQLPassword, secrets.MySQLRootPassword, secrets.MySQLDashboardPassword, "app'pw", "root'pw", "dash'pw"} {
			if strings.Contains(c, pw) {
				t.Errorf("a password is on the command line %q", c)
			}
		}
	}
	for _, r := range res {
		if r.Change != nil && (strings.Contains(r.Change.Summary+r.Change.Diff, "pw")) {
			t.Errorf("step %s shows a password: %q", r.Step, r.Change.Summary+r.Change.Diff)
		}
		if r.Status == step.Changed {
			changed = append(changed, r.Step)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return changed, commands
}

func connect(t *testing.T, h *rt.Host) (*role.Context, *step.Target) {
	t.Helper()
	c, tg := rt.Connect(t, h, rt.LoadInventory(t, testInventory), "db-1")
	c.Secrets = secrets
	return c, tg
}

// RHEL-like: MySQL 8 from AppStream, our configuration, the server
// started, root's password set, the leftovers of an old-style install (an
// anonymous account, the test database) removed, the database and one
// account per client host; then nothing more.
func TestRHEL(t *testing.T) {
	h := rt.NewRHEL()
	srv := newFakeServer(h, false)
	srv.users[acct("", "localhost")] = fakeAccount{}
	srv.dbs["test"] = true
	c, tg := connect(t, h)
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	changed, _ := run(t, h, tg, steps)
	want := []string{
		"packages mysql-server", "directory " + ConfigDir, "file /etc/my.cnf.d/trafficlab.cnf", "file " + RootDefaults,
		// try-restart: a no-op while the server is not running yet.
		"restart mysqld.service", "service mysqld.service running", "root password of MySQL 8", "secure MySQL 8", "database traffic and account consumer",
		"read-only account consumer_dash",
	}
	if !slices.Equal(changed, want) {
		t.Errorf("changed %q\nwant %q", changed, want)
	}
	if f, _ := h.File(RootDefaults); f.Mode != "600" || f.Owner != "root:root" {
		t.Errorf("%s: mode %s owner %s", RootDefaults, f.Mode, f.Owner)
	}
	if f, _ := h.File("/etc/my.cnf.d/trafficlab.cnf"); !strings.Contains(f.Content, "bind-address = 10.0.0.5\n") {
		t.Errorf("server configuration:\n%s", f.Content)
	}
	assertChanges(t, srv.takeChanges(), []string{
		"ALTER USER '…'@'…' IDENTIFIED BY '…'",
		"DROP USER '…'@'…'",
		"DROP DATABASE IF EXISTS `test`",
		"CREATE DATABASE IF NOT EXISTS `traffic` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		"CREATE USER '…'@'…' IDENTIFIED BY '…'",
		"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '…'@'…'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `traffic`.* TO '…'@'…'",
		"CREATE USER '…'@'…' IDENTIFIED BY '…'",
		"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '…'@'…'",
		"GRANT SELECT ON `traffic`.* TO '…'@'…'",
	})
	assertAccounts(t, srv, "consumer", "10.0.0.6")
	assertDashboardAccount(t, srv, "10.0.0.7")
	if srv.rootPW != secrets.MySQLRootPassword {
		t.Errorf("root password %q", srv.rootPW)
	}
	assertIdle(t, h, srv, tg, steps)
}

// Debian: MariaDB, started by the package with its own configuration, so
// ours restarts it; root stays on unix_socket (no root password step).
func TestDebian(t *testing.T) {
	h := rt.NewDebian("none")
	srv := newFakeServer(h, true)
	c, tg := connect(t, h)
	steps, err := rt.Steps(New(), c)
	if err != nil {
		t.Fatal(err)
	}
	changed, _ := run(t, h, tg, steps)
	want := []string{
		"packages mariadb-server", "file /etc/mysql/mariadb.conf.d/60-trafficlab.cnf", "restart mariadb.service",
		"database traffic and account consumer", "read-only account consumer_dash",
	}
	if !slices.Equal(changed, want) {
		t.Errorf("changed %q\nwant %q", changed, want)
	}
	if _, ok := h.File(RootDefaults); ok {
		t.Errorf("%s written on Debian, where root uses the socket", RootDefaults)
	}
	if srv.users[acct("root", "localhost")].auth != "invalid" {
		t.Error("root@localhost changed")
	}
	assertAccounts(t, srv, "consumer", "10.0.0.6")
	assertDashboardAccount(t, srv, "10.0.0.7")
	srv.takeChanges()
	assertIdle(t, h, srv, tg, steps)

	// Drift: a password changed by hand, an extra privilege, an account
	// from a host that is no client. The next run puts all of it back.
	k := acct("consumer", "10.0.0.6")
	srv.users[k] = srv.hash("changed by hand")
	srv.grants[acct("consumer", "10.0.0.6")]["traffic"]["DROP"] = true
	srv.users[acct("consumer", "10.0.0.1")] = srv.hash(secrets.MySQLPassword)
	// The dashboard's account given a write privilege by hand.
	srv.grants[acct("consumer_dash", "10.0.0.7")]["traffic"]["INSERT"] = true
	changed, _ = run(t, h, tg, steps)
	if !slices.Equal(changed, []string{"database traffic and account consumer", "read-only account consumer_dash"}) {
		t.Errorf("changed %q", changed)
	}
	assertChanges(t, srv.takeChanges(), []string{
		"ALTER USER '…'@'…' IDENTIFIED BY '…'",
		"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '…'@'…'",
		"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER, INDEX ON `traffic`.* TO '…'@'…'",
		"DROP USER '…'@'…'",
		"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '…'@'…'",
		"GRANT SELECT ON `traffic`.* TO '…'@'…'",
	})
	assertAccounts(t, srv, "consumer", "10.0.0.6")
	assertDashboardAccount(t, srv, "10.0.0.7")

	// destroy: our database, account and configuration go, the package
	// stays; a second destroy does nothing.
	remove, err := New().Remove(c)
	if err != nil {
		t.Fatal(err)
	}
	run(t, h, tg, remove)
	if srv.dbs["traffic"] || len(accountsOf(srv, "consumer")) != 0 || len(accountsOf(srv, "consumer_dash")) != 0 {
		t.Errorf("destroy left %v %q %q", srv.dbs, accountsOf(srv, "consumer"), accountsOf(srv, "consumer_dash"))
	}
	if _, ok := h.File("/etc/mysql/mariadb.conf.d/60-trafficlab.cnf"); ok || !h.Packages["mariadb-server"] {
		t.Error("destroy left the configuration or removed the package")
	}
	if changed, _ := run(t, h, tg, remove); len(changed) != 0 {
		t.Errorf("second destroy changed %q", changed)
	}
}

// destroy on RHEL: the database, the account, our files; root keeps its
// password (Keeps says so).
func TestRHELRemove(t *testing.T) {
	h := rt.NewRHEL()
	srv := newFakeServer(h, false)
	c, tg := connect(t, h)
	steps, _ := rt.Steps(New(), c)
	run(t, h, tg, steps)
	remove, _ := New().Remove(c)
	run(t, h, tg, remove)
	if srv.dbs["traffic"] || len(accountsOf(srv, "consumer")) != 0 || len(h.Paths("/etc/trafficlab")) != 0 || len(h.Paths("/etc/my.cnf.d/trafficlab.cnf")) != 0 {
		t.Errorf("destroy left %v %q %q", srv.dbs, accountsOf(srv, "consumer"), h.Paths("/etc/"))
	}
	if changed, _ := run(t, h, tg, remove); len(changed) != 0 {
		t.Errorf("second destroy changed %q", changed)
	}
	if keeps := strings.Join(New().Keeps(c), "; "); !strings.Contains(keeps, "mysql-server") || !strings.Contains(keeps, "root password") {
		t.Errorf("Keeps: %s", keeps)
	}
}

// A root password changed by hand on RHEL: a clear error, nothing else.
func TestRHELRootPasswordUnknown(t *testing.T) {
	h := rt.NewRHEL()
	srv := newFakeServer(h, false)
	srv.rootPW = "someone else's"
	c, tg := connect(t, h)
	steps, _ := rt.Steps(New(), c)
	_, err := rt.TryApply(tg, steps)
	if err == nil || !strings.Contains(err.Error(), "accepts neither the stack's root password") || strings.Contains(err.Error(), "root'pw") {
		t.Fatalf("error %v", err)
	}
}

func assertIdle(t *testing.T, h *rt.Host, srv *fakeServer, tg *step.Target, steps []step.Step) {
	t.Helper()
	changed, commands := run(t, h, tg, steps)
	if len(changed) != 0 {
		t.Errorf("second run changed %q", changed)
	}
	if m := h.TakeMutating(); len(m) != 0 {
		t.Errorf("second run ran mutating commands %q", m)
	}
	if c := srv.takeChanges(); len(c) != 0 {
		t.Errorf("second run changed the server: %q", c)
	}
	if len(commands) == 0 {
		t.Error("second run checked nothing")
	}
}

func assertChanges(t *testing.T, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("statements:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func accountsOf(srv *fakeServer, user string) []string {
	var out []string
	for k := range srv.users {
		if u, h, _ := strings.Cut(k, "@"); u == user {
			out = append(out, h)
		}
	}
	slices.Sort(out)
	return out
}

// assertAccounts checks the user exists exactly at hosts, with the
// password and only Privileges on the database.
func assertAccounts(t *testing.T, srv *fakeServer, user string, hosts ...string) {
	t.Helper()
	assertAccountsWith(t, srv, user, secrets.MySQLPassword, Privileges, hosts...)
}

// assertDashboardAccount checks the dashboard's account reads only, with
// its own password, from the dashboard hosts only.
func assertDashboardAccount(t *testing.T, srv *fakeServer, hosts ...string) {
	t.Helper()
	assertAccountsWith(t, srv, "consumer_dash", secrets.MySQLDashboardPassword, []string{"SELECT"}, hosts...)
}

func assertAccountsWith(t *testing.T, srv *fakeServer, user, password string, privileges []string, hosts ...string) {
	t.Helper()
	if got := accountsOf(srv, user); !slices.Equal(got, hosts) {
		t.Errorf("accounts of %s at %q, want %q", user, got, hosts)
	}
	for _, h := range hosts {
		a := srv.users[acct(user, h)]
		if !PasswordMatches(a.plugin, a.auth, password) {
			t.Errorf("%s@%s has another password", user, h)
		}
		dbs := srv.grants[acct(user, h)]
		var privs []string
		for p := range dbs["traffic"] {
			privs = append(privs, p)
		}
		slices.Sort(privs)
		want := slices.Clone(privileges)
		slices.Sort(want)
		if len(dbs) != 1 || !slices.Equal(privs, want) {
			t.Errorf("%s@%s has %v", user, h, dbs)
		}
	}
}

// Every file the role writes, for both families, with secrets masked as
// render masks them.
func TestFilesGolden(t *testing.T) {
	set := rt.Templates(t)
	inv := rt.LoadInventory(t, testInventory)
	for _, tt := range []struct {
		name string
		os   facts.OS
	}{{"rocky9-db-1", rt.Rocky9()}, {"debian12-db-1", rt.Debian12()}} {
		t.Run(tt.name, func(t *testing.T) {
			c := rt.Offline(t, inv, "db-1", tt.os)
			c.Templates = set
			c.Secrets = role.Secrets{MySQLPassword: "********", MySQLRootPassword: "********"}
			rt.AssertFiles(t, New(), c, filepath.Join("testdata", tt.name+".golden"), rt.ShowSecret)
		})
	}
	if unused := set.Unused("mysql"); len(unused) > 0 {
		t.Errorf("templates no golden case renders: %q", unused)
	}
}

func TestRootPasswordRefusedInOptionFile(t *testing.T) {
	inv := rt.LoadInventory(t, testInventory)
	c := rt.Offline(t, inv, "db-1", rt.Rocky9())
	c.Secrets.MySQLRootPassword = "a\"b"
	_, err := New().Files(c)
	if err == nil || !strings.Contains(err.Error(), "double quote") {
		t.Fatalf("error %v", err)
	}
}

// The server's own accounts are never the consumer's: the role would drop
// them at every host but the clients.
func TestRefusesServerAccounts(t *testing.T) {
	for _, user := range []string{"root", "Root", "mysql", "mariadb"} {
		inv := rt.LoadInventory(t, strings.Replace(testInventory, "user: consumer", "user: "+user, 1))
		_, err := New().Files(rt.Offline(t, inv, "db-1", rt.Debian12()))
		if refused := err != nil && strings.Contains(err.Error(), "account of the server itself"); refused != (user != "mariadb") {
			t.Errorf("user %s: error %v", user, err)
		}
	}
}

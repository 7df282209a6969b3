// Package mysql is the role of the database host: MariaDB from Debian's and
// Ubuntu's packages, MySQL 8 from AppStream on RHEL-like hosts, listening on
// the host's own address, secured (no anonymous accounts, no remote root,
// no test database), with the consumer's database and an account that may
// connect only from the consumer and dashboard hosts and may do only what
// the consumer does (Privileges).
//
// Every statement goes to the mysql client on stdin: passwords never appear
// on a command line. Root logs in differently per family:
//
//   - Debian/Ubuntu (MariaDB): root@localhost keeps the unix_socket
//     authentication Debian sets up, so only the host's root user is the
//     database's root, and there is no root password to leak or to keep in
//     sync with Debian's maintenance scripts (which log in as root through
//     the socket). The stack's root password is not used there.
//   - RHEL-like (MySQL 8): the server starts with a root@localhost without
//     password; the role sets the stack's root password and logs in with a
//     0600 root-only option file (RootDefaults), as `mysql
//     --defaults-extra-file` reads it.
package mysql

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Where the role keeps things.
const (
	Port = 3306
	// ConfigDir holds RootDefaults (RHEL-like hosts only).
	ConfigDir    = "/etc/trafficlab/mysql"
	RootDefaults = ConfigDir + "/root.cnf"
)

// The commands that run the SQL on their stdin as the server's root,
// printing rows tab-separated without headers (Server.Admin).
const (
	// PasswordAdmin logs in with the stack's root password, from
	// RootDefaults (--defaults-extra-file must come first): MySQL 8's.
	PasswordAdmin = "mysql --defaults-extra-file=" + RootDefaults + " --batch --skip-column-names"
	// SocketAdmin logs in as the OS's root through the unix socket, with
	// no option file: MariaDB's, and a fresh MySQL 8's whose root has no
	// password yet.
	SocketAdmin = "mysql --no-defaults -u root --batch --skip-column-names"
)

// Server describes the database server of one family.
type Server struct {
	Name     string   // "MariaDB" or "MySQL 8", for messages
	Packages []string // what to install
	Unit     string   // its systemd unit
	// Config is our server configuration file, read after the package's.
	Config string
	// Admin is the command that runs the SQL on its stdin as the server's
	// root, printing rows tab-separated without headers. It holds no
	// secret; drills and checks may use it.
	Admin string
	// RootPassword says whether root logs in with the stack's root
	// password (through RootDefaults) rather than the unix socket.
	RootPassword bool
}

// ServerOf returns the database server of a host's family.
func ServerOf(os facts.OS) Server {
	if os.Family == facts.RHEL {
		return Server{
			Name: "MySQL 8", Packages: []string{"mysql-server"}, Unit: "mysqld.service",
			// /etc/my.cnf includes every .cnf of this directory.
			Config:       "/etc/my.cnf.d/trafficlab.cnf",
			Admin:        PasswordAdmin,
			RootPassword: true,
		}
	}
	return Server{
		Name: "MariaDB", Packages: []string{"mariadb-server"}, Unit: "mariadb.service",
		// Read after Debian's 50-server.cnf, whose bind-address it overrides.
		Config: "/etc/mysql/mariadb.conf.d/60-trafficlab.cnf",
		Admin:  SocketAdmin,
	}
}

// DumpCommand prints the database's tables and rows as SQL, one
// consistent snapshot (--single-transaction: every table is InnoDB),
// without locking out the consumers.
func (s Server) DumpCommand(database string) string {
	base := "mariadb-dump --no-defaults -u root"
	if s.RootPassword {
		base = "mysqldump --defaults-extra-file=" + RootDefaults + " --no-tablespaces --set-gtid-purged=OFF"
	}
	return base + " --single-transaction --quick --routines " + remote.ShellQuote(database)
}

// LoadCommand runs the SQL on its stdin as the server's root, stopping at
// the first error.
func (s Server) LoadCommand() string {
	if s.RootPassword {
		return "mysql --defaults-extra-file=" + RootDefaults
	}
	return "mysql --no-defaults -u root"
}

// reservedUsers are the servers' own accounts.
var reservedUsers = []string{"root", "mysql", "mariadb.sys", "debian-sys-maint"}

// New returns the mysql role.
func New() role.Role { return db{} }

type db struct{}

// Name is the role's name.
const Name = "mysql"

func (db) Name() string                        { return Name }
func (db) On(h inventory.Host) bool            { return h.Has(inventory.RoleMySQL) }
func (db) Needs(*inventory.Inventory) []string { return nil }

// ClientAddresses are the addresses the consumer's account may connect
// from: the consumer hosts, in inventory order.
func ClientAddresses(inv *inventory.Inventory) []string {
	return addressesOf(inv, inventory.RoleConsumer)
}

// DashboardAddresses are the addresses the dashboard's read-only account
// may connect from: the dashboard hosts, in inventory order.
func DashboardAddresses(inv *inventory.Inventory) []string {
	return addressesOf(inv, inventory.RoleDashboard)
}

// ReadOnlyPrivileges are the dashboard account's on the database: it only
// reads, so a flaw in the page's code cannot change or drop data.
var ReadOnlyPrivileges = []string{"SELECT"}

// DashboardUser is the dashboard's read-only account: mysql.user with a
// suffix, within MySQL 8's 32 characters.
func DashboardUser(inv *inventory.Inventory) string {
	u := inv.MySQL.User
	return u[:min(len(u), 32-len("_dash"))] + "_dash"
}

func addressesOf(inv *inventory.Inventory, r inventory.Role) []string {
	var out []string
	for _, h := range inv.Hosts {
		if h.Has(r) && !slices.Contains(out, h.Address) {
			out = append(out, h.Address)
		}
	}
	return out
}

func (db) Files(c *role.Context) ([]role.File, error) {
	if !c.Host.Has(inventory.RoleMySQL) {
		return nil, fmt.Errorf("%s does not have the mysql role", c.Host.Name)
	}
	// The role drops the account at every host that is not a client: an
	// account the server itself needs would be lost.
	if u := strings.ToLower(c.Inventory.MySQL.User); slices.Contains(reservedUsers, u) || strings.HasPrefix(u, "mysql.") {
		return nil, fmt.Errorf("mysql.user %q is an account of the server itself; choose another name", c.Inventory.MySQL.User)
	}
	srv := ServerOf(c.OS)
	conf, err := c.Templates.Render("mysql/server.cnf.tmpl", map[string]any{"Server": srv.Name, "Address": c.Host.Address})
	if err != nil {
		return nil, err
	}
	files := []role.File{{Path: srv.Config, Content: conf, Mode: 0o644, Owner: "root:root"}}
	if srv.RootPassword {
		pw, err := optionValue(c.Secrets.MySQLRootPassword)
		if err != nil {
			return nil, fmt.Errorf("mysql.root_password: %w", err)
		}
		root, err := c.Templates.Render("mysql/root.cnf.tmpl", map[string]any{"Password": pw})
		if err != nil {
			return nil, err
		}
		files = append(files, role.File{Path: RootDefaults, Content: root, Mode: 0o600, Owner: "root:root", Secret: true})
	}
	return files, nil
}

// optionValue writes a password as a double-quoted value of a MySQL option
// file, which knows backslash escapes but no way to write a double quote
// or a line break inside one.
func optionValue(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty")
	}
	if strings.ContainsAny(pw, "\"\n\r\x00") {
		return "", errors.New("holds a double quote or a line break, which a MySQL option file cannot hold; choose another")
	}
	return `"` + strings.ReplaceAll(pw, `\`, `\\`) + `"`, nil
}

// restartStep is the name of the step that restarts a running server
// whose configuration changed.
func restartStep(srv Server) string { return "restart " + srv.Unit }

func (d db) Plan(c *role.Context) (role.Plan, error) {
	files, err := d.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	if c.Secrets.MySQLPassword == "" {
		return role.Plan{}, errors.New("no password for the consumer's MySQL account (mysql.password, or the one kept in the stack)")
	}
	srv := ServerOf(c.OS)
	adm := func(*step.Target) admin { return admin(srv.Admin) }
	steps := []step.Step{step.Packages(map[facts.Family][]string{c.OS.Family: srv.Packages})}
	if srv.RootPassword {
		steps = append(steps, step.Dir(ConfigDir, 0o700, "root:root"))
	}
	var changes []step.ID
	for _, f := range files {
		s := step.File(f.Spec())
		steps = append(steps, s)
		if f.Path == srv.Config {
			changes = append(changes, s.ID)
		}
	}
	// Debian's package starts the server with its own configuration: ours
	// (the address to listen on) needs a restart. try-restart leaves a
	// server that is not running yet to the next step.
	steps = append(steps,
		step.OnChange(restartStep(srv), "systemctl try-restart "+srv.Unit, changes...),
		step.Service(srv.Unit, step.Running))
	if srv.RootPassword {
		steps = append(steps, rootPasswordStep(srv, c.Secrets.MySQLRootPassword))
	}
	app := appAccount{
		database: c.Inventory.MySQL.Database, user: c.Inventory.MySQL.User, password: c.Secrets.MySQLPassword,
		hosts: ClientAddresses(c.Inventory), privileges: Privileges, createDB: true,
	}
	dash := appAccount{
		database: c.Inventory.MySQL.Database, user: DashboardUser(c.Inventory), password: c.Secrets.MySQLDashboardPassword,
		hosts: DashboardAddresses(c.Inventory), privileges: ReadOnlyPrivileges,
	}
	if dash.user == app.user {
		return role.Plan{}, fmt.Errorf("mysql.user %q clashes with the dashboard's account %q; choose a shorter name", app.user, dash.user)
	}
	if len(dash.hosts) > 0 && dash.password == "" {
		return role.Plan{}, errors.New("no password for the dashboard's MySQL account (the one kept in the stack)")
	}
	steps = append(steps,
		sqlStep("secure "+srv.Name, adm, func(ctx context.Context, t *step.Target, a admin) (*fix, error) {
			return secureFix(ctx, t.Host, a)
		}),
		sqlStep("database "+app.database+" and account "+app.user, adm, func(ctx context.Context, t *step.Target, a admin) (*fix, error) {
			return appFix(ctx, t.Host, a, app)
		}),
		// Its own step even with no dashboard host: it drops the
		// account from hosts that no longer have the role.
		sqlStep("read-only account "+dash.user, adm, func(ctx context.Context, t *step.Target, a admin) (*fix, error) {
			return appFix(ctx, t.Host, a, dash)
		}))
	return role.Plan{Files: files, Steps: steps}, nil
}

// rootPasswordStep gives root@localhost the stack's root password, once:
// a fresh MySQL 8 server of RHEL's packages has root without a password.
// The check logs in through RootDefaults, which holds the wanted password.
func rootPasswordStep(srv Server, password string) step.Step {
	return step.Step{
		ID:   step.ID{Kind: KindSQL, Object: "root password"},
		Name: "root password of " + srv.Name,
		Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
			_, err := t.Host.Run(ctx, srv.Admin, remote.WithStdin(strings.NewReader("SELECT 1;\n")))
			switch {
			case err == nil:
				return nil, nil
			case remote.IsExit(err):
				return &step.Change{Summary: "set the password of 'root'@'localhost'"}, nil
			}
			return nil, err
		},
		Apply: func(ctx context.Context, t *step.Target) error {
			sql := "ALTER USER 'root'@'localhost' IDENTIFIED BY " + str(password) + ";\n"
			_, err := t.Host.Run(ctx, SocketAdmin, remote.WithStdin(strings.NewReader(sql)))
			if remote.IsExit(err) {
				return fmt.Errorf("root@localhost accepts neither the stack's root password (%s) nor none at all; if it was changed by hand, give it as mysql.root_password in the inventory: %w", RootDefaults, err)
			}
			return err
		},
	}
}

func (d db) Remove(c *role.Context) ([]step.Step, error) {
	srv := ServerOf(c.OS)
	database, user := c.Inventory.MySQL.Database, c.Inventory.MySQL.User
	// Without a client there is no server of ours to clean, and without
	// RootDefaults (a second destroy) no way to log in that is ours.
	present := PresentCheck(srv)
	steps := []step.Step{
		sqlStep("drop database "+database+" and account "+user, func(*step.Target) admin { return admin(srv.Admin) },
			func(ctx context.Context, t *step.Target, a admin) (*fix, error) {
				if _, err := t.Host.Run(ctx, present); remote.IsExit(err) {
					return nil, nil
				} else if err != nil {
					return nil, err
				}
				return dropFix(ctx, t.Host, a, database, user, DashboardUser(c.Inventory))
			}),
		step.FileAbsent(srv.Config),
		step.OnChange(restartStep(srv), "systemctl try-restart "+srv.Unit, step.FileID(srv.Config).Removal()),
	}
	if srv.RootPassword {
		steps = append(steps, step.FileAbsent(RootDefaults))
	}
	return append(steps, step.EmptyDirAbsent(ConfigDir), step.EmptyDirAbsent("/etc/trafficlab")), nil
}

// PresentCheck succeeds when srv has a server of trafficlab's to clean up
// on destroy: a mysql client, and with a root password, RootDefaults to
// log in with (gone after a first destroy).
func PresentCheck(srv Server) string {
	present := "command -v mysql >/dev/null 2>&1"
	if srv.RootPassword {
		present += " && test -e " + RootDefaults
	}
	return present
}

// Logs: the server's unit; MySQL 8 on RHEL-like hosts also writes its
// error log to a file (MariaDB on Debian logs to the journal).
func (db) Logs(c *role.Context) role.Logs {
	srv := ServerOf(c.OS)
	l := role.Logs{Units: []string{srv.Unit}}
	if srv.RootPassword {
		l.Files = []string{"/var/log/mysql/mysqld.log"}
	}
	return l
}

func (db) Keeps(c *role.Context) []string {
	srv := ServerOf(c.OS)
	keeps := []string{"the packages installed (" + strings.Join(srv.Packages, ", ") + ") and the server's other databases"}
	if srv.RootPassword {
		keeps = append(keeps, "the root password of "+srv.Name+" (kept in the stack's secrets)")
	}
	return keeps
}

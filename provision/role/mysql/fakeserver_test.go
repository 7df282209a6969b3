package mysql

import (
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	rt "github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

// fakeServer is a MySQL 8 or MariaDB server in memory, answering exactly
// the statements the role sends on the mysql client's stdin, with the
// authentication each family's root uses.
type fakeServer struct {
	mariadb bool
	rootPW  string // MySQL 8's root@localhost password; "" when none
	users   map[string]fakeAccount
	dbs     map[string]bool
	grants  map[string]map[string]map[string]bool // account → Db as mysql.db keeps it → privilege
	// changes lists the statements that changed something, in order.
	changes []string
}

type fakeAccount struct{ plugin, auth string }

// sha2Salt is the salt of every caching_sha2_password hash the fake makes.
const sha2Salt = "0123456789abcdefghij"

func acct(user, host string) string { return user + "@" + host }

// newFakeServer installs a server on h that the package install starts,
// as Debian's does, or not, as RHEL's does.
func newFakeServer(h *rt.Host, mariadb bool) *fakeServer {
	f := &fakeServer{mariadb: mariadb, users: map[string]fakeAccount{}, dbs: map[string]bool{}, grants: map[string]map[string]map[string]bool{}}
	if mariadb {
		f.users[acct("root", "localhost")] = fakeAccount{"mysql_native_password", "invalid"}
		f.users[acct("mariadb.sys", "localhost")] = fakeAccount{"mysql_native_password", ""}
		h.Installed["mariadb-server"] = func(h *rt.Host) {
			h.Files["/etc/mysql/mariadb.conf.d"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
			h.Enabled["mariadb.service"] = "enabled"
			h.Active["mariadb.service"] = true
		}
	} else {
		f.users[acct("root", "localhost")] = fakeAccount{"caching_sha2_password", ""}
		h.Installed["mysql-server"] = func(h *rt.Host) {
			h.Files["/etc/my.cnf.d"] = rt.File{Dir: true, Mode: "755", Owner: "root:root"}
		}
	}
	h.Handle("^("+rt.Quote(PasswordAdmin)+"|"+rt.Quote(SocketAdmin)+")$", false, func(m []string, s sshtest.Session) int {
		in, _ := io.ReadAll(s.Stdin)
		unit := "mysqld.service"
		if mariadb {
			unit = "mariadb.service"
		}
		if !h.Active[unit] {
			fmt.Fprintln(s.Stderr, "ERROR 2002 (HY000): Can't connect to local server through socket")
			return 1
		}
		if !f.login(h, m[1]) {
			fmt.Fprintln(s.Stderr, "ERROR 1045 (28000): Access denied for user 'root'@'localhost'")
			return 1
		}
		return f.run(string(in), s)
	})
	// MySQL 8's asks for RootDefaults too.
	withDefaults := PresentCheck(ServerOf(rt.Rocky9()))
	h.Handle("^(?:"+rt.Quote(PresentCheck(ServerOf(rt.Debian12())))+"|"+rt.Quote(withDefaults)+")$", false, func(m []string, s sshtest.Session) int {
		_, ok := h.Files[RootDefaults]
		return rt.Exit(h.Packages["mariadb-server"] || h.Packages["mysql-server"] && (s.Command != withDefaults || ok))
	})
	return f
}

// login says whether the admin command cmd logs in as root.
func (f *fakeServer) login(h *rt.Host, cmd string) bool {
	if f.mariadb {
		return cmd == SocketAdmin // unix_socket: the OS root
	}
	if cmd == SocketAdmin {
		return f.rootPW == ""
	}
	file, ok := h.Files[RootDefaults]
	if !ok {
		return false
	}
	m := regexp.MustCompile(`(?m)^password = "((?:[^"\\]|\\.)*)"$`).FindStringSubmatch(file.Content)
	return m != nil && strings.ReplaceAll(m[1], `\\`, `\`) == f.rootPW
}

var (
	literal = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'`)
	quoted  = regexp.MustCompile("`([^`]*)`")
)

func unescape(s string) string {
	return strings.NewReplacer(`\\`, `\`, `\'`, `'`, `\0`, "\x00", `\n`, "\n", `\r`, "\r", `\Z`, "\x1a").Replace(s)
}

func (f *fakeServer) hash(password string) fakeAccount {
	if f.mariadb {
		return fakeAccount{nativePlugin, nativeHash(password)}
	}
	return fakeAccount{sha2Plugin, "$A$005$" + sha2Salt + sha256Crypt(password, sha2Salt, 5000)}
}

// run executes statements, one per ";\n", and prints their rows.
func (f *fakeServer) run(sql string, s sshtest.Session) int {
	for _, st := range strings.Split(sql, ";\n") {
		st = strings.TrimSpace(st)
		if st == "" {
			continue
		}
		lits := literal.FindAllStringSubmatch(st, -1)
		lit := func(i int) string { return unescape(lits[i][1]) }
		id := ""
		if m := quoted.FindStringSubmatch(st); m != nil {
			id = m[1]
		}
		rows := func(tag string, match func(user, host string) bool, cols func(a fakeAccount, host string) string) {
			var out []string
			for k, a := range f.users {
				user, host, _ := strings.Cut(k, "@")
				if match(user, host) {
					out = append(out, tag+"\t"+cols(a, host))
				}
			}
			sort.Strings(out)
			for _, l := range out {
				fmt.Fprintln(s.Stdout, l)
			}
		}
		change := func() { f.changes = append(f.changes, literal.ReplaceAllString(st, "'…'")) }
		switch {
		case st == "SELECT 1":
			fmt.Fprintln(s.Stdout, "1")
		case strings.HasPrefix(st, "SELECT 'anon'"):
			rows("anon", func(u, _ string) bool { return u == "" }, func(_ fakeAccount, h string) string { return h })
		case strings.HasPrefix(st, "SELECT 'root'"):
			rows("root", func(u, h string) bool { return u == "root" && h != "localhost" && h != "127.0.0.1" && h != "::1" },
				func(_ fakeAccount, h string) string { return h })
		case strings.HasPrefix(st, "SELECT 'testdb'"):
			if f.dbs["test"] {
				fmt.Fprintln(s.Stdout, "testdb\ttest")
			}
		case strings.HasPrefix(st, "SELECT 'testgrant'"):
			n := 0
			for _, dbs := range f.grants {
				for db := range dbs {
					if db == "test" || strings.HasPrefix(db, `test\_`) {
						n++
					}
				}
			}
			fmt.Fprintf(s.Stdout, "testgrant\t%d\n", n)
		case strings.HasPrefix(st, "SELECT 'db', COUNT(*)"):
			fmt.Fprintf(s.Stdout, "db\t%d\n", map[bool]int{true: 1}[f.dbs[lit(1)]])
		case strings.HasPrefix(st, "SELECT 'db', SCHEMA_NAME"):
			if f.dbs[lit(1)] {
				fmt.Fprintf(s.Stdout, "db\t%s\n", lit(1))
			}
		case strings.HasPrefix(st, "SELECT 'user', Host, plugin"):
			rows("user", func(u, _ string) bool { return u == lit(1) }, func(a fakeAccount, h string) string {
				return fmt.Sprintf("%s\t%s\t%X", h, a.plugin, a.auth)
			})
		case strings.HasPrefix(st, "SELECT 'user', User, Host FROM"):
			rows("user", func(u, _ string) bool { return u == lit(1) }, func(_ fakeAccount, h string) string { return lit(1) + "\t" + h })
		case strings.HasPrefix(st, "SELECT 'user', Host FROM"):
			rows("user", func(u, _ string) bool { return u == lit(1) }, func(_ fakeAccount, h string) string { return h })
		case strings.HasPrefix(st, "SELECT 'grant'"):
			var out []string
			for k, dbs := range f.grants {
				user, host, _ := strings.Cut(k, "@")
				if user != lit(1) {
					continue
				}
				for db, privs := range dbs {
					line := "grant\t" + host + "\t" + db
					for _, c := range dbPrivColumns {
						line += "\t" + map[bool]string{true: "Y", false: "N"}[privs[c.privilege]]
					}
					out = append(out, line)
				}
			}
			sort.Strings(out)
			for _, l := range out {
				fmt.Fprintln(s.Stdout, l)
			}
		case strings.HasPrefix(st, "SELECT 'global'"):
			// The fake grants nothing global.
		case strings.HasPrefix(st, "CREATE DATABASE IF NOT EXISTS "):
			if !f.dbs[id] {
				f.dbs[id] = true
				change()
			}
		case strings.HasPrefix(st, "CREATE USER "):
			k := acct(lit(0), lit(1))
			if _, ok := f.users[k]; ok {
				fmt.Fprintf(s.Stderr, "ERROR 1396 (HY000): Operation CREATE USER failed for %s\n", k)
				return 1
			}
			f.users[k] = f.hash(lit(2))
			change()
		case strings.HasPrefix(st, "ALTER USER 'root'@'localhost'") && !f.mariadb:
			f.rootPW = lit(2)
			change()
		case strings.HasPrefix(st, "ALTER USER "):
			f.users[acct(lit(0), lit(1))] = f.hash(lit(2))
			change()
		case strings.HasPrefix(st, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM "):
			delete(f.grants, acct(lit(0), lit(1)))
			change()
		case strings.HasPrefix(st, "GRANT "):
			k := acct(lit(0), lit(1))
			privs := map[string]bool{}
			for _, p := range strings.Split(strings.TrimPrefix(st[:strings.Index(st, " ON ")], "GRANT "), ", ") {
				privs[p] = true
			}
			if f.grants[k] == nil {
				f.grants[k] = map[string]map[string]bool{}
			}
			f.grants[k][id] = privs
			change()
		case strings.HasPrefix(st, "DROP USER "):
			k := acct(lit(0), lit(1))
			delete(f.users, k)
			delete(f.grants, k)
			change()
		case strings.HasPrefix(st, "DROP DATABASE IF EXISTS "):
			delete(f.dbs, id)
			change()
		case strings.HasPrefix(st, "DELETE FROM mysql.db WHERE Db = 'test'"):
			for _, dbs := range f.grants {
				for db := range dbs {
					if db == "test" || strings.HasPrefix(db, `test\_`) {
						delete(dbs, db)
					}
				}
			}
			change()
		case st == "FLUSH PRIVILEGES":
		default:
			fmt.Fprintf(s.Stderr, "ERROR 1064 (42000): the fake does not know %q\n", st)
			return 1
		}
	}
	return 0
}

func (f *fakeServer) takeChanges() []string {
	c := f.changes
	f.changes = nil
	return c
}

package mysql

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Privileges are what the consumer's account gets on its database, and no
// more: the DML of its commits and queries, and the DDL of its embedded
// schema migrations (consumer/store: CREATE TABLE today; ALTER and INDEX
// for the migrations to come, which change tables rather than add them).
// No DROP, no GRANT OPTION, nothing global.
var Privileges = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "INDEX"}

// dbPrivColumns are mysql.db's privilege columns, in the order the
// inspection selects them; both MySQL 8 and MariaDB 10.11 have them all.
var dbPrivColumns = []struct{ column, privilege string }{
	{"Select_priv", "SELECT"}, {"Insert_priv", "INSERT"}, {"Update_priv", "UPDATE"}, {"Delete_priv", "DELETE"},
	{"Create_priv", "CREATE"}, {"Drop_priv", "DROP"}, {"Grant_priv", "GRANT OPTION"}, {"References_priv", "REFERENCES"},
	{"Index_priv", "INDEX"}, {"Alter_priv", "ALTER"}, {"Create_tmp_table_priv", "CREATE TEMPORARY TABLES"},
	{"Lock_tables_priv", "LOCK TABLES"}, {"Create_view_priv", "CREATE VIEW"}, {"Show_view_priv", "SHOW VIEW"},
	{"Create_routine_priv", "CREATE ROUTINE"}, {"Alter_routine_priv", "ALTER ROUTINE"}, {"Execute_priv", "EXECUTE"},
	{"Event_priv", "EVENT"}, {"Trigger_priv", "TRIGGER"},
}

// globalPrivColumns are mysql.user's columns of the global privileges an
// application account must not have.
var globalPrivColumns = []string{"Select_priv", "Insert_priv", "Update_priv", "Delete_priv", "Create_priv", "Drop_priv",
	"Reload_priv", "Shutdown_priv", "Process_priv", "File_priv", "Grant_priv", "Super_priv", "Alter_priv", "Index_priv"}

// str quotes s as an SQL string literal (backslash escapes are on in both
// servers' default SQL mode).
func str(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\x00", `\0`, "\n", `\n`, "\r", `\r`, "\x1a", `\Z`)
	return "'" + r.Replace(s) + "'"
}

// ident quotes s as an identifier.
func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// account is 'user'@'host'.
func account(user, host string) string { return str(user) + "@" + str(host) }

// grantDB is the database name as GRANT takes it and mysql.db keeps it: "_"
// and "%" are wildcards there, so they are escaped to grant on this one
// database only.
func grantDB(db string) string {
	return strings.NewReplacer(`_`, `\_`, `%`, `\%`).Replace(db)
}

// admin is how the role talks to the server as its administrator: a
// mysql client command that reads SQL on stdin. Nothing secret is in it.
type admin string

// query runs sql and returns the rows of its output, tab-separated fields.
// Output may hold password hashes: it is kept out of the command log.
func (a admin) query(ctx context.Context, h step.Host, sql string) ([][]string, error) {
	res, err := h.Run(ctx, string(a), remote.WithStdin(strings.NewReader(sql)), remote.WithSecretStdout())
	if err != nil {
		return nil, err
	}
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(string(res.Stdout), "\n"), "\n") {
		if line != "" {
			rows = append(rows, strings.Split(line, "\t"))
		}
	}
	return rows, nil
}

// exec runs sql, which may hold passwords: it goes on stdin only.
func (a admin) exec(ctx context.Context, h step.Host, sql string) error {
	_, err := h.Run(ctx, string(a), remote.WithStdin(strings.NewReader(sql)), remote.WithSecretStdout())
	return err
}

// fix is what a SQL step found to do: a summary per change, for the
// report (never a secret), and the statements that make it.
type fix struct {
	summary []string
	sql     strings.Builder
}

func (f *fix) add(summary, sql string) {
	f.summary = append(f.summary, summary)
	f.sql.WriteString(sql + ";\n")
}

// KindSQL is the kind of the steps that keep the database's schema,
// accounts and grants (Object: what the step keeps).
const KindSQL step.Kind = "sql"

// sqlStep inspects the server with plan, which says what to change, and
// applies that by feeding the statements to the admin client on stdin.
// Apply plans again rather than reuse what Check saw: a Step value may serve
// several hosts at once, so it holds no state.
func sqlStep(name string, a func(t *step.Target) admin, plan func(ctx context.Context, t *step.Target, a admin) (*fix, error)) step.Step {
	return step.Step{
		ID:   step.ID{Kind: KindSQL, Object: name},
		Name: name,
		Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
			f, err := plan(ctx, t, a(t))
			if err != nil || f == nil || len(f.summary) == 0 {
				return nil, err
			}
			return &step.Change{Summary: strings.Join(f.summary, "; ")}, nil
		},
		Apply: func(ctx context.Context, t *step.Target) error {
			f, err := plan(ctx, t, a(t))
			if err != nil || f == nil || len(f.summary) == 0 {
				return err
			}
			return a(t).exec(ctx, t.Host, f.sql.String())
		},
	}
}

// secureFix removes what a fresh server may come with that nobody should
// have: anonymous accounts, root accounts reachable from other hosts, and
// the test database open to everyone.
func secureFix(ctx context.Context, h step.Host, a admin) (*fix, error) {
	rows, err := a.query(ctx, h, `SELECT 'anon', Host FROM mysql.user WHERE User = '';
SELECT 'root', Host FROM mysql.user WHERE User = 'root' AND Host NOT IN ('localhost', '127.0.0.1', '::1');
SELECT 'testdb', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'test';
SELECT 'testgrant', COUNT(*) FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\_%';
`)
	if err != nil {
		return nil, fmt.Errorf("inspecting accounts: %w", err)
	}
	f := &fix{}
	for _, r := range rows {
		switch {
		case len(r) == 2 && r[0] == "anon":
			f.add("drop anonymous account ''@'"+r[1]+"'", "DROP USER "+account("", r[1]))
		case len(r) == 2 && r[0] == "root":
			f.add("drop remote root account 'root'@'"+r[1]+"'", "DROP USER "+account("root", r[1]))
		case len(r) == 2 && r[0] == "testdb":
			f.add("drop the test database", "DROP DATABASE IF EXISTS `test`")
		case len(r) == 2 && r[0] == "testgrant" && r[1] != "0":
			f.add("remove everyone's grants on test databases", `DELETE FROM mysql.db WHERE Db = 'test' OR Db LIKE 'test\\_%';
FLUSH PRIVILEGES`)
		case len(r) == 2 && r[0] == "testgrant":
		default:
			return nil, fmt.Errorf("unexpected row %q inspecting accounts", r)
		}
	}
	return f, nil
}

// appAccount is an account on the consumer's database as wanted: the
// consumer's (Privileges) or the dashboard's (ReadOnlyPrivileges).
type appAccount struct {
	database, user, password string
	hosts                    []string // where it may connect from: addresses
	privileges               []string
	createDB                 bool // create the database when missing
}

// appFix creates the database (createDB) and the account at every wanted
// host with the wanted password and exactly its privileges on the
// database, and drops the account at hosts no longer wanted.
func appFix(ctx context.Context, h step.Host, a admin, w appAccount) (*fix, error) {
	var cols []string
	for _, c := range dbPrivColumns {
		cols = append(cols, c.column)
	}
	rows, err := a.query(ctx, h, fmt.Sprintf(`SELECT 'db', COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s;
SELECT 'user', Host, plugin, HEX(authentication_string) FROM mysql.user WHERE User = %s;
SELECT 'grant', Host, Db, %s FROM mysql.db WHERE User = %s;
SELECT 'global', Host FROM mysql.user WHERE User = %s AND 'Y' IN (%s);
`, str(w.database), str(w.user), strings.Join(cols, ", "), str(w.user), str(w.user), strings.Join(globalPrivColumns, ", ")))
	if err != nil {
		return nil, fmt.Errorf("inspecting database %s and account %s: %w", w.database, w.user, err)
	}
	type have struct {
		passwordOK bool
		grantsOK   bool
		wrong      bool // privileges elsewhere: on other databases or global
	}
	dbExists := false
	accounts := map[string]*have{}
	var order []string
	get := func(host string) *have {
		if accounts[host] == nil {
			accounts[host] = &have{}
			order = append(order, host)
		}
		return accounts[host]
	}
	wantPriv := map[string]bool{}
	for _, p := range w.privileges {
		wantPriv[p] = true
	}
	for _, r := range rows {
		switch {
		case len(r) == 2 && r[0] == "db":
			dbExists = r[1] != "0"
		case len(r) == 4 && r[0] == "user":
			stored, err := decodeHex(r[3])
			if err != nil {
				return nil, fmt.Errorf("reading the password hash of %s@%s: %w", w.user, r[1], err)
			}
			get(r[1]).passwordOK = PasswordMatches(r[2], stored, w.password)
		case len(r) == 3+len(dbPrivColumns) && r[0] == "grant":
			acc := get(r[1])
			if r[2] != grantDB(w.database) {
				acc.wrong = true
				continue
			}
			ok := true
			for i, c := range dbPrivColumns {
				ok = ok && (r[3+i] == "Y") == wantPriv[c.privilege]
			}
			acc.grantsOK = ok
		case len(r) == 2 && r[0] == "global":
			get(r[1]).wrong = true
		default:
			return nil, fmt.Errorf("unexpected row %q inspecting account %s", r, w.user)
		}
	}
	f := &fix{}
	if !dbExists && w.createDB {
		f.add("create database "+w.database, "CREATE DATABASE IF NOT EXISTS "+ident(w.database)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
	}
	grant := "GRANT " + strings.Join(w.privileges, ", ") + " ON " + ident(grantDB(w.database)) + ".* TO "
	for _, host := range w.hosts {
		acc, exists := accounts[host]
		name := fmt.Sprintf("'%s'@'%s'", w.user, host)
		switch {
		case !exists:
			f.add("create account "+name, "CREATE USER "+account(w.user, host)+" IDENTIFIED BY "+str(w.password))
			acc = &have{}
		case !acc.passwordOK:
			f.add("set the password of "+name, "ALTER USER "+account(w.user, host)+" IDENTIFIED BY "+str(w.password))
		}
		if !acc.grantsOK || acc.wrong {
			f.add("grant "+name+" "+strings.Join(w.privileges, ", ")+" on "+w.database+" only",
				"REVOKE ALL PRIVILEGES, GRANT OPTION FROM "+account(w.user, host)+";\n"+grant+account(w.user, host))
		}
	}
	for _, host := range order {
		if !slices.Contains(w.hosts, host) {
			f.add(fmt.Sprintf("drop account '%s'@'%s' (not a host of its role)", w.user, host), "DROP USER "+account(w.user, host))
		}
	}
	return f, nil
}

// dropFix drops the database and every account of the users, for destroy.
func dropFix(ctx context.Context, h step.Host, a admin, database string, users ...string) (*fix, error) {
	q := fmt.Sprintf("SELECT 'db', SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s;\n", str(database))
	for _, u := range users {
		q += fmt.Sprintf("SELECT 'user', User, Host FROM mysql.user WHERE User = %s;\n", str(u))
	}
	rows, err := a.query(ctx, h, q)
	if err != nil {
		return nil, fmt.Errorf("inspecting database %s and accounts %s: %w", database, strings.Join(users, ", "), err)
	}
	f := &fix{}
	for _, r := range rows {
		switch {
		case len(r) == 2 && r[0] == "db":
			f.add("drop database "+database, "DROP DATABASE IF EXISTS "+ident(database))
		case len(r) == 3 && r[0] == "user":
			f.add(fmt.Sprintf("drop account '%s'@'%s'", r[1], r[2]), "DROP USER "+account(r[1], r[2]))
		default:
			return nil, fmt.Errorf("unexpected row %q inspecting accounts %s", r, strings.Join(users, ", "))
		}
	}
	return f, nil
}

func decodeHex(s string) (string, error) {
	if s == "NULL" {
		return "", nil
	}
	b, err := hex.DecodeString(s)
	return string(b), err
}

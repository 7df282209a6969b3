package store

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// dialectOnly is SQL that only one of MariaDB 10.11 and MySQL 8 accepts (or
// that one of them deprecates), with the reason. The store must keep to the
// subset both run.
var dialectOnly = []struct {
	re, why string
}{
	{`\bRETURNING\b`, "INSERT/DELETE ... RETURNING is MariaDB-only"},
	{`\)\s+AS\s+\w+\s+ON\s+DUPLICATE\b`, "INSERT ... AS alias ON DUPLICATE KEY UPDATE is MySQL-only"},
	{`\bON\s+DUPLICATE\s+KEY\s+UPDATE\b[\s\S]*\bVALUES\s*\(`, "VALUES() in ON DUPLICATE KEY UPDATE is deprecated in MySQL 8"},
	{`\bON\s+CONFLICT\b`, "ON CONFLICT is PostgreSQL/SQLite"},
	{`\bJSON_TABLE\b`, "JSON_TABLE differs between the two"},
	{`\b(CREATE|DROP|ALTER)\s+SEQUENCE\b|\bNEXTVAL\s*\(|\bNEXT\s+VALUE\s+FOR\b`, "sequences are MariaDB-only"},
	{`\bCREATE\s+OR\s+REPLACE\s+(TABLE|INDEX)\b`, "CREATE OR REPLACE TABLE is MariaDB-only"},
	{`\b(ADD|DROP|MODIFY|CHANGE)\s+(COLUMN\s+)?IF\s+(NOT\s+)?EXISTS\b`, "ALTER ... IF [NOT] EXISTS is MariaDB-only"},
	{`\bCREATE\s+(UNIQUE\s+)?INDEX\s+IF\s+NOT\s+EXISTS\b`, "CREATE INDEX IF NOT EXISTS is MariaDB-only"},
	{`\bPERSISTENT\b`, "PERSISTENT generated columns are MariaDB-only"},
	{`\b(INET6|INET4|UUID)\b\s*(,|\)|NOT|NULL)`, "INET6/INET4/UUID column types are MariaDB-only"},
	{`_0900_`, "utf8mb4_0900_* collations are MySQL-only"},
	{`\butf8mb4_uca1400`, "uca1400 collations are MariaDB 10.10+-only"},
	{`\bJSON\s+(NOT\s+)?NULL\b|\bJSON\s*,`, "the JSON type is LONGTEXT in MariaDB and binary in MySQL"},
	{`\bWITH\s+SYSTEM\s+VERSIONING\b`, "system-versioned tables are MariaDB-only"},
	{`\bINTERSECT\s+ALL\b|\bEXCEPT\s+ALL\b`, "INTERSECT/EXCEPT ALL need MySQL 8.0.31 and MariaDB 10.5"},
	{`\bLIMIT\s+ROWS\s+EXAMINED\b`, "LIMIT ROWS EXAMINED is MariaDB-only"},
	{`\bSTRAIGHT_JOIN\b|\bSQL_CALC_FOUND_ROWS\b`, "deprecated or dialect-specific hints"},
	{`\bDELETE\b[^;]*\bFROM\b[^;]*\bIN\s*\(\s*SELECT\b[^;]*\bLIMIT\b`, "LIMIT in an IN subquery is MariaDB-only"},
	{`\bDEFAULT\s+CHARSET\s*=\s*utf8\b`, "utf8 is utf8mb3 and deprecated in MySQL 8"},
	{`"[^"\n]*"\s*(,|\))`, "double-quoted literals break under ANSI_QUOTES; use single quotes"},
}

// TestSQLDialect scans the migrations and every SQL string of the package
// for syntax that MariaDB 10.11 or MySQL 8 alone accepts.
func TestSQLDialect(t *testing.T) {
	texts := map[string]string{}
	migs, err := Migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(migs) == 0 {
		t.Fatal("no migrations embedded")
	}
	for _, m := range migs {
		for i, s := range m.Statements {
			texts["migration "+strconv.Itoa(m.Version)+" statement "+strconv.Itoa(i+1)] = s
		}
	}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		af, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(node ast.Node) bool {
			lit, ok := node.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if regexp.MustCompile(`(?i)^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP)\b`).MatchString(s) {
				texts[fset.Position(lit.Pos()).String()] = s
				n++
			}
			return true
		})
	}
	if n < 20 {
		t.Fatalf("found only %d SQL strings in the package: is the scan broken?", n)
	}
	for _, d := range dialectOnly {
		re := regexp.MustCompile(`(?i)` + d.re)
		for where, s := range texts {
			if loc := re.FindStringIndex(s); loc != nil {
				t.Errorf("%s: %q: %s", where, s[loc[0]:loc[1]], d.why)
			}
		}
	}
}

// TestDialectPatterns makes sure the scan catches what it is meant to.
func TestDialectPatterns(t *testing.T) {
	for _, bad := range []string{
		"DELETE FROM t WHERE a = 1 RETURNING id",
		"INSERT INTO t (a) VALUES (1) AS new ON DUPLICATE KEY UPDATE a = new.a",
		"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(a)",
		"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO NOTHING",
		"SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a INT PATH '$')) j",
		"CREATE SEQUENCE s",
		"SELECT NEXTVAL(s)",
		"CREATE OR REPLACE TABLE t (a INT)",
		"ALTER TABLE t ADD COLUMN IF NOT EXISTS b INT",
		"CREATE INDEX IF NOT EXISTS i ON t (a)",
		"CREATE TABLE t (a INT, b INT AS (a+1) PERSISTENT)",
		"CREATE TABLE t (a INET6 NOT NULL)",
		"CREATE TABLE t (a TEXT) COLLATE=utf8mb4_0900_ai_ci",
		"CREATE TABLE t (a JSON NOT NULL)",
		`SELECT a FROM t WHERE b = "x")`,
	} {
		hit := false
		for _, d := range dialectOnly {
			if regexp.MustCompile(`(?i)` + d.re).MatchString(bad) {
				hit = true
			}
		}
		if !hit {
			t.Errorf("not caught: %s", bad)
		}
	}
}

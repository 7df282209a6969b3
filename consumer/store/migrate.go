package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one embedded schema change.
type Migration struct {
	Version    int
	Name       string
	Statements []string
}

// Migrations returns the embedded migrations in version order. Files are
// named NNNN_name.sql; statements end with ";" at the end of a line and
// "--" lines are comments.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name it NNNN_name.sql", name)
		}
		data, err := migrationFiles.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		out = append(out, Migration{Version: v, Name: rest, Statements: splitStatements(string(data))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("two migrations have version %d", out[i].Version)
		}
	}
	return out, nil
}

func splitStatements(sqlText string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(sqlText, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

const (
	qCreateMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INT          NOT NULL,
    name        VARCHAR(255) NOT NULL,
    applied_at  DATETIME     NOT NULL,
    PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`
	qAppliedVersions = `SELECT version FROM schema_migrations`
	qRecordMigration = `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`
	// GET_LOCK serializes migrators (two consumers starting together);
	// MySQL releases it when the session ends, even if the process dies.
	qMigrateLock   = `SELECT GET_LOCK('trafficlab.schema_migrations', 60)`
	qMigrateUnlock = `SELECT RELEASE_LOCK('trafficlab.schema_migrations')`
)

// isDuplicateKeyName reports ER_DUP_KEYNAME: a CREATE INDEX of a
// migration that was cut short after it ran (the two servers share no
// CREATE INDEX IF NOT EXISTS).
func isDuplicateKeyName(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1061
}

// Migrate applies the embedded migrations the database lacks and returns
// the versions it applied. DDL commits implicitly in MySQL, so a migration
// is not atomic: its statements are idempotent (IF NOT EXISTS) and the
// version is recorded after the last one, so a migration cut short is run
// again in full.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	migs, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, qMigrateLock).Scan(&got); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	if got.Int64 != 1 {
		return nil, fmt.Errorf("migrate: another process holds the migration lock")
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), qMigrateUnlock) //nolint:errcheck // the session's end releases it too

	if _, err := conn.ExecContext(ctx, qCreateMigrations); err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	applied := map[int]bool{}
	rows, err := conn.QueryContext(ctx, qAppliedVersions)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
		applied[v] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	var done []int
	for _, m := range migs {
		if applied[m.Version] {
			continue
		}
		for i, st := range m.Statements {
			if _, err := conn.ExecContext(ctx, st); err != nil && !isDuplicateKeyName(err) {
				return done, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if _, err := conn.ExecContext(ctx, qRecordMigration, m.Version, m.Name, time.Now().UTC()); err != nil {
			return done, fmt.Errorf("migration %04d_%s: record: %w", m.Version, m.Name, err)
		}
		done = append(done, m.Version)
	}
	return done, nil
}

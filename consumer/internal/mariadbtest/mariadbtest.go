// Package mariadbtest runs a throwaway MariaDB server for integration tests
// and benchmarks: mariadb-install-db into a temporary directory, then
// mariadbd as the current user (root or not) on a unix socket only, so
// parallel test runs and other engineers' servers never collide on a port.
//
// When MariaDB is not installed, Require skips the test with a pointer to
// scripts/test-deps.sh, unless TRAFFICLAB_REQUIRE_MARIADB=1 (set by CI), in
// which case it fails: CI must not pass by skipping.
package mariadbtest

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/trafficlab/trafficlab/consumer/config"
)

// RequireEnv is the variable that turns a missing MariaDB into a failure.
const RequireEnv = "TRAFFICLAB_REQUIRE_MARIADB"

// binaries are looked up in PATH and in the sbin directories a non-root
// PATH often lacks.
func find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/local/mysql/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// Available reports whether the server binaries are installed.
func Available() error {
	for _, b := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := find(b); err != nil {
			return err
		}
	}
	return nil
}

// Require skips or fails t when MariaDB is not installed.
func Require(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("MariaDB is required (%s=1) but %v: run scripts/test-deps.sh", RequireEnv, err)
		}
		t.Skipf("MariaDB is not installed (%v): run scripts/test-deps.sh to install it", err)
	}
}

// Server is a running (or stopped) throwaway server.
type Server struct {
	Dir    string // data directory and socket live here
	Socket string
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    string
}

// Start installs a fresh data directory under a new temporary directory
// and starts the server. Stop it with Close, which removes the directory.
func Start() (*Server, error) {
	// A short path: a unix socket path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "mariadbtest")
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: %w", err)
	}
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "mysqld.sock"), log: filepath.Join(dir, "error.log")}
	if err := s.install(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := s.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func userArgs() []string {
	// mariadbd refuses to run as root unless told to; as anyone else it runs
	// as that user and --user is ignored.
	if os.Geteuid() == 0 {
		return []string{"--user=root"}
	}
	return nil
}

func (s *Server) install() error {
	bin, err := find("mariadb-install-db")
	if err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	args := append([]string{
		"--no-defaults",
		"--datadir=" + filepath.Join(s.Dir, "data"),
		// root@localhost with an empty password, reachable from the test's
		// client whatever the OS user (unix_socket auth would tie it to it).
		"--auth-root-authentication-method=normal",
		"--skip-test-db",
		// The bootstrap server's temporary tables go in the test's own
		// directory like the running server's: in the shared /tmp a
		// concurrent test run lost one ("Could not remove temporary
		// table", then "Unknown table 'mysql.tmp_proxies_priv'").
		"--tmpdir=" + s.Dir,
	}, userArgs()...)
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mariadbtest: mariadb-install-db: %w\n%s", err, out.String())
	}
	return nil
}

// Start starts the server on its existing data directory (again, after
// Stop) and waits until it accepts connections.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("mariadbtest: already running")
	}
	bin, err := find("mariadbd")
	if err != nil {
		return fmt.Errorf("mariadbtest: %w", err)
	}
	args := append([]string{
		"--no-defaults",
		"--datadir=" + filepath.Join(s.Dir, "data"),
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(s.Dir, "mysqld.pid"),
		"--log-error=" + s.log,
		"--tmpdir=" + s.Dir,
		"--skip-networking",
		"--skip-log-bin",
		// Small: the tests' data is tiny and the machine is shared.
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=48M",
		"--max-connections=50",
		"--performance-schema=OFF",
	}, userArgs()...)
	cmd := exec.Command(bin, args...)
	// Its own process group: a ^C to the test run does not reach it first,
	// Stop does, and it shuts down cleanly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mariadbtest: start mariadbd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, err := s.open("")
		if err == nil {
			err = db.Ping()
			db.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("mariadbtest: mariadbd exited at start: %s", s.tail())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbtest: mariadbd not ready after 60s: %v\n%s", err, s.tail())
		}
	}
}

func (s *Server) tail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Stop shuts the server down cleanly (SIGTERM) and waits for it.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// Close stops the server and removes its directory.
func (s *Server) Close() error {
	err := s.Stop()
	if rerr := os.RemoveAll(s.Dir); err == nil {
		err = rerr
	}
	return err
}

func (s *Server) open(database string) (*sql.DB, error) {
	mc := mysql.NewConfig()
	mc.User, mc.Net, mc.Addr, mc.DBName = "root", "unix", s.Socket, database
	mc.Timeout = 2 * time.Second
	c, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// NewDatabase creates a database and a user with a password that may use
// only it, the way the MySQL role sets up the consumer's account, and
// returns the consumer's settings for it.
func (s *Server) NewDatabase(ctx context.Context, name string) (config.MySQL, error) {
	db, err := s.open("")
	if err != nil {
		return config.MySQL{}, fmt.Errorf("mariadbtest: %w", err)
	}
	defer db.Close()
	user, pass := "u_"+name, "pw'"+name+`"\x`
	if len(user) > 80 {
		return config.MySQL{}, fmt.Errorf("mariadbtest: database name %q is too long", name)
	}
	for _, q := range []string{
		"CREATE DATABASE `" + name + "`",
		"CREATE USER '" + user + "'@'localhost' IDENTIFIED BY '" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(pass) + "'",
		"GRANT ALL ON `" + name + "`.* TO '" + user + "'@'localhost'",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return config.MySQL{}, fmt.Errorf("mariadbtest: %s: %w", q, err)
		}
	}
	return config.MySQL{Socket: s.Socket, Port: 3306, User: user, Password: pass, Database: name}, nil
}

// Root returns a root connection to a database, for checks.
func (s *Server) Root(database string) (*sql.DB, error) {
	db, err := s.open(database)
	if err != nil {
		return nil, fmt.Errorf("mariadbtest: %w", err)
	}
	return db, nil
}

// Shared returns a server shared by the tests of a package, started on
// first use. Call StopShared from TestMain after m.Run.
func Shared(t testing.TB) *Server {
	t.Helper()
	Require(t)
	shared.once.Do(func() { shared.srv, shared.err = Start() })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// StopShared stops and removes the shared server, if one was started.
func StopShared() {
	if shared.srv != nil {
		_ = shared.srv.Close()
	}
}

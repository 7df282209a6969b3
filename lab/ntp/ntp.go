//go:build linux

// Package ntp runs the lab's NTP server: a chronyd instance of its own
// (configuration, pid file and drift file under the lab state directory)
// bound to the bridge address, serving the lab subnet from the host clock
// (local stratum 8) without ever adjusting that clock (-x) and without a
// command port, so it cannot disturb anything else on the host.
package ntp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/trafficlab/trafficlab/lab/daemon"
)

// ChronydPath is the chronyd binary.
const ChronydPath = "/usr/sbin/chronyd"

// chronyUser is the user Debian's chronyd drops to.
const chronyUser = "_chrony"

// Server is the lab's chronyd.
type Server struct {
	Dir    string       // config, pid, drift file
	Listen netip.Addr   // bridge address
	Subnet netip.Prefix // clients allowed
}

// ConfigFile is the instance's chrony.conf.
func (s *Server) ConfigFile() string { return filepath.Join(s.Dir, "chrony.conf") }

// Config renders the instance's chrony.conf.
func (s *Server) Config() string {
	return strings.Join([]string{
		"# trafficlab lab NTP server — written by `lab up`; do not edit.",
		"bindaddress " + s.Listen.String(),
		"allow " + s.Subnet.String(),
		// No upstream source: serve the host clock, which the host keeps.
		"local stratum 8",
		"cmdport 0",
		"pidfile " + filepath.Join(s.Dir, "chronyd.pid"),
		"driftfile " + filepath.Join(s.Dir, "drift"),
		"",
	}, "\n")
}

func (s *Server) spec() daemon.Spec {
	return daemon.Spec{
		Name: "chronyd",
		Path: ChronydPath,
		// -d: stay in the foreground, logging to stderr (the lab tracks
		// the pid and keeps the log); -x: never touch the host clock;
		// -f: only this configuration.
		Args:        []string{"-d", "-x", "-f", s.ConfigFile()},
		PidFile:     filepath.Join(s.Dir, "chronyd.pid"),
		SelfPidFile: true,
		LogFile:     filepath.Join(s.Dir, "chronyd.log"),
		Match:       func(argv []string) bool { return Is(argv, s.Dir) },
	}
}

// Is reports whether argv is the chronyd of the lab whose NTP dir is dir.
func Is(argv []string, dir string) bool {
	if len(argv) == 0 || filepath.Base(argv[0]) != "chronyd" {
		return false
	}
	for i, a := range argv {
		if a == "-f" && i+1 < len(argv) && argv[i+1] == filepath.Join(dir, "chrony.conf") {
			return true
		}
	}
	return false
}

// Running returns the pid of the instance if it runs.
func (s *Server) Running() (int, bool) { return daemon.Running(s.spec()) }

// Ensure writes the configuration and starts chronyd (restarting it if the
// configuration changed). It reports whether it changed anything.
func (s *Server) Ensure(ctx context.Context) (bool, error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return false, fmt.Errorf("ntp: %w", err)
	}
	// chronyd writes its drift file after dropping to its own user.
	if u, err := user.Lookup(chronyUser); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.Dir, uid, gid); err != nil {
			return false, fmt.Errorf("ntp: %w", err)
		}
	}
	changed := false
	conf := s.Config()
	if old, _ := os.ReadFile(s.ConfigFile()); string(old) != conf {
		if err := os.WriteFile(s.ConfigFile(), []byte(conf), 0o644); err != nil {
			return false, fmt.Errorf("ntp: %w", err)
		}
		changed = true
	}
	pid, running := s.Running()
	if running && !changed {
		return false, nil
	}
	if running {
		if _, err := daemon.Stop(pid, syscall.SIGTERM, 5*time.Second); err != nil {
			return true, fmt.Errorf("ntp: restart: %w", err)
		}
	}
	// chronyd refuses to start while its pid file names a live chronyd;
	// a stale one (not ours, or dead) is removed first.
	os.Remove(filepath.Join(s.Dir, "chronyd.pid"))
	pid, err := daemon.Start(s.spec())
	if err != nil {
		return true, fmt.Errorf("ntp: %w", err)
	}
	// chronyd fails fast on a bad configuration or a busy port.
	time.Sleep(300 * time.Millisecond)
	if !daemon.Alive(pid) {
		b, _ := os.ReadFile(s.spec().LogFile)
		return true, fmt.Errorf("ntp: chronyd exited at start: %s", lastLines(string(b), 5))
	}
	return true, nil
}

// Stop stops every chronyd of this lab instance.
func (s *Server) Stop() (int, error) {
	pids := daemon.Find(func(argv []string) bool { return Is(argv, s.Dir) })
	for _, pid := range pids {
		if _, err := daemon.Stop(pid, syscall.SIGTERM, 5*time.Second); err != nil {
			return 0, fmt.Errorf("ntp: stop: %w", err)
		}
	}
	return len(pids), nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

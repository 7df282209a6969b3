//go:build linux

// Package proxy runs the lab's caching package proxy: a squid instance with
// its own configuration, cache directory, logs and pid file, listening only
// on the bridge address, answering only the lab subnet, and reaching only
// the host's Debian mirrors. Debian packages are cached for a long time so a
// rebuilt machine (or a second machine) never downloads the same .deb twice.
package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"

	"github.com/trafficlab/trafficlab/lab/daemon"
	"github.com/trafficlab/trafficlab/lab/run"
)

// Port is the proxy's TCP port.
const Port = 3128

// SquidPath is the squid binary.
const SquidPath = "/usr/sbin/squid"

// squidUser is the unprivileged user Debian's squid switches to.
const squidUser = "proxy"

// Squid is the lab's proxy instance.
type Squid struct {
	Dir      string       // config, logs, pid file (lab state)
	CacheDir string       // the package cache (kept by `lab down`)
	Listen   netip.Addr   // bridge address
	Subnet   netip.Prefix // who may use it
	Mirrors  []string     // host names the machines may fetch from
}

// URL is what apt in the machines uses.
func (s *Squid) URL() string {
	return fmt.Sprintf("http://%s", net.JoinHostPort(s.Listen.String(), strconv.Itoa(Port)))
}

// ConfigFile is the instance's squid.conf.
func (s *Squid) ConfigFile() string { return filepath.Join(s.Dir, "squid.conf") }

// AccessLog is where hits (TCP_HIT, TCP_MEM_HIT) and misses are logged.
func (s *Squid) AccessLog() string { return filepath.Join(s.Dir, "access.log") }

var confTmpl = template.Must(template.New("squid.conf").Option("missingkey=error").Parse(`# trafficlab lab package proxy — written by ` + "`lab up`" + `; do not edit.
http_port {{.Listen}}:{{.Port}}
visible_hostname tlab-proxy
pid_filename {{.Dir}}/squid.pid  # also the pid file the lab tracks
cache_log {{.Dir}}/cache.log
access_log stdio:{{.Dir}}/access.log squid
cache_store_log none
logfile_rotate 0
coredump_dir {{.CacheDir}}
pinger_enable off
netdb_filename none
shutdown_lifetime 1 seconds

acl lab src {{.Subnet}}
acl mirrors dstdomain{{range .Mirrors}} {{.}}{{end}}
acl web_ports port 80 443
acl CONNECT method CONNECT
acl ssl_ports port 443
http_access deny !web_ports
http_access deny CONNECT !ssl_ports
http_access allow lab mirrors
http_access deny all

# A rebuild must not download a package twice: a large disk cache, objects
# of any package's size, and .debs (immutable once published) fresh forever.
cache_mem 32 MB
maximum_object_size_in_memory 4 MB
maximum_object_size 1024 MB
cache_dir ufs {{.CacheDir}} 20000 16 256
cache_replacement_policy heap LFUDA
refresh_pattern -i \.(u?deb|ddeb)$ 525600 100% 525600 override-expire ignore-reload
refresh_pattern -i (/by-hash/|\.dsc$|\.tar\.(gz|xz|bz2)$) 525600 100% 525600 override-expire
refresh_pattern -i (Release|Release\.gpg|InRelease|Packages(\.gz|\.xz|\.bz2)?|Sources(\.gz|\.xz)?)$ 0 20% 60
refresh_pattern . 0 20% 4320
`))

// Config renders the instance's squid.conf.
func (s *Squid) Config() (string, error) {
	if len(s.Mirrors) == 0 {
		return "", fmt.Errorf("proxy: no mirror to allow")
	}
	var b bytes.Buffer
	err := confTmpl.Execute(&b, map[string]any{
		"Listen": s.Listen, "Port": Port, "Dir": s.Dir, "CacheDir": s.CacheDir,
		"Subnet": s.Subnet, "Mirrors": s.Mirrors,
	})
	return b.String(), err
}

func (s *Squid) spec() daemon.Spec {
	return daemon.Spec{
		Name: "squid",
		Path: SquidPath,
		// -N: one process in the foreground, so the pid we track is the
		// squid that serves (no master/kid pair to chase).
		Args:        []string{"-N", "-f", s.ConfigFile()},
		PidFile:     filepath.Join(s.Dir, "squid.pid"),
		SelfPidFile: true,
		LogFile:     filepath.Join(s.Dir, "squid.out"),
		Match:       func(argv []string) bool { return Is(argv, s.Dir) },
	}
}

// Is reports whether argv is a squid of the lab whose proxy dir is dir.
func Is(argv []string, dir string) bool {
	return len(argv) > 0 && strings.HasPrefix(filepath.Base(argv[0]), "squid") &&
		argAfter(argv, "-f") == filepath.Join(dir, "squid.conf")
}

func argAfter(argv []string, flag string) string {
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

// Running returns the pid of the instance if it runs.
func (s *Squid) Running() (int, bool) { return daemon.Running(s.spec()) }

// Ensure writes the configuration, prepares the cache and starts squid (or
// restarts it when its configuration changed). It reports whether it
// changed anything.
func (s *Squid) Ensure(ctx context.Context) (bool, error) {
	conf, err := s.Config()
	if err != nil {
		return false, err
	}
	u, err := user.Lookup(squidUser)
	if err != nil {
		return false, fmt.Errorf("proxy: squid's user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []string{s.Dir, s.CacheDir} {
		// Parents must be traversable by squid's user.
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return false, fmt.Errorf("proxy: %w", err)
		}
		if err := os.MkdirAll(d, 0o750); err != nil {
			return false, fmt.Errorf("proxy: %w", err)
		}
		// squid drops to its user before writing logs and cache.
		if err := os.Chown(d, uid, gid); err != nil {
			return false, fmt.Errorf("proxy: %w", err)
		}
	}
	changed := false
	old, _ := os.ReadFile(s.ConfigFile())
	if string(old) != conf {
		if err := os.WriteFile(s.ConfigFile(), []byte(conf), 0o644); err != nil {
			return false, fmt.Errorf("proxy: %w", err)
		}
		changed = true
	}
	pid, running := s.Running()
	if running && !changed {
		return false, nil
	}
	if running {
		if _, err := daemon.Stop(pid, syscall.SIGTERM, 10*time.Second); err != nil {
			return true, fmt.Errorf("proxy: restart: %w", err)
		}
	}
	// A cache directory is initialised once (swap directories); squid -z
	// is a no-op on an initialised one but costs a second, so skip it.
	if _, err := os.Stat(filepath.Join(s.CacheDir, "00")); err != nil {
		if _, err := run.Output(ctx, SquidPath, "-N", "-z", "-f", s.ConfigFile()); err != nil {
			return true, fmt.Errorf("proxy: initialise cache %s: %w", s.CacheDir, err)
		}
	}
	// squid refuses to start while its pid file names a live process; ours
	// is not running, so the file is stale (a crash, a reboot).
	os.Remove(s.spec().PidFile)
	pid, err = daemon.Start(s.spec())
	if err != nil {
		return true, fmt.Errorf("proxy: %w", err)
	}
	if err := waitListening(ctx, pid, net.JoinHostPort(s.Listen.String(), strconv.Itoa(Port)), 20*time.Second); err != nil {
		return true, fmt.Errorf("proxy: squid not listening (see %s and %s): %w", s.spec().LogFile, filepath.Join(s.Dir, "cache.log"), err)
	}
	return true, nil
}

// Stop stops every squid of this lab instance.
func (s *Squid) Stop() (int, error) {
	pids := daemon.Find(func(argv []string) bool { return Is(argv, s.Dir) })
	for _, pid := range pids {
		if _, err := daemon.Stop(pid, syscall.SIGTERM, 10*time.Second); err != nil {
			return 0, fmt.Errorf("proxy: stop: %w", err)
		}
	}
	return len(pids), nil
}

func waitListening(ctx context.Context, pid int, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if !daemon.Alive(pid) {
			return fmt.Errorf("squid exited")
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

//go:build linux

// Package machine runs one lab machine: a copy of the base image booted by
// systemd-nspawn in the background inside the machine's own network
// namespace, tracked by a pid file and recognised by its command line.
package machine

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/trafficlab/trafficlab/lab/daemon"
	"github.com/trafficlab/trafficlab/lab/network"
	"github.com/trafficlab/trafficlab/lab/run"
	"github.com/trafficlab/trafficlab/lab/sshaccess"
	"github.com/trafficlab/trafficlab/lab/tree"
)

// NspawnPath is the systemd-nspawn binary.
const NspawnPath = "/usr/bin/systemd-nspawn"

// Machine is one lab machine.
type Machine struct {
	Name    string       // inventory name and hostname, e.g. kafka-1
	Addr    netip.Prefix // address of its eth0
	RootDir string       // its root file system, a directory
	PidFile string       // pid of its systemd-nspawn
	LogFile string       // nspawn's and the boot's console output
}

// Unit is the nspawn machine name: the lab prefix keeps it recognisable in
// process lists next to anything else running on the host.
func (m *Machine) Unit() string { return network.Prefix + "-" + m.Name }

// Identity is what makes a copy of the image this lab's machine.
type Identity struct {
	AuthorizedKeys string // the lab's public key line
	AptProxy       string // e.g. http://10.231.0.1:3128
}

// Exists reports whether the machine's root file system is complete.
func (m *Machine) Exists() bool {
	_, err := os.Stat(filepath.Join(m.RootDir, "etc", "os-release"))
	return err == nil
}

// Create copies the image and gives the copy its identity: hostname,
// machine-id and an ed25519 host key of its own. The copy is made under a
// temporary name and renamed when complete.
func (m *Machine) Create(ctx context.Context, image string, id Identity) error {
	tmp := m.RootDir + ".tmp"
	if err := tree.Remove(tmp); err != nil {
		return fmt.Errorf("create %s: %w", m.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(m.RootDir), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", m.Name, err)
	}
	if err := run.Quiet(ctx, "cp", "-a", "--reflink=auto", image, tmp); err != nil {
		tree.Remove(tmp)
		return fmt.Errorf("create %s: copy image: %w", m.Name, err)
	}
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("create %s: %w", m.Name, err)
	}
	defer root.Close()
	machineID := make([]byte, 16)
	if _, err := rand.Read(machineID); err != nil {
		return fmt.Errorf("create %s: %w", m.Name, err)
	}
	hostKey, hostPub, err := sshaccess.NewKey("root@" + m.Name)
	if err != nil {
		return fmt.Errorf("create %s: host key: %w", m.Name, err)
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{"etc/hostname", m.Name + "\n", 0o644},
		{"etc/hosts", fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", m.Name), 0o644},
		{"etc/machine-id", hex.EncodeToString(machineID) + "\n", 0o444},
		{"etc/ssh/ssh_host_ed25519_key", string(hostKey), 0o600},
		{"etc/ssh/ssh_host_ed25519_key.pub", hostPub, 0o644},
	}
	for _, f := range files {
		if err := writeIn(root, f.path, []byte(f.content), f.mode); err != nil {
			return fmt.Errorf("create %s: %w", m.Name, err)
		}
	}
	if _, err := personalize(root, id); err != nil {
		return fmt.Errorf("create %s: %w", m.Name, err)
	}
	if err := os.Rename(tmp, m.RootDir); err != nil {
		return fmt.Errorf("create %s: %w", m.Name, err)
	}
	return nil
}

// Personalize makes sure the lab's key and package proxy are configured in
// an existing machine; it reports whether it changed anything. It may run
// while the machine is up: both are plain files read on use.
func (m *Machine) Personalize(id Identity) (bool, error) {
	root, err := os.OpenRoot(m.RootDir)
	if err != nil {
		return false, fmt.Errorf("configure %s: %w", m.Name, err)
	}
	defer root.Close()
	changed, err := personalize(root, id)
	if err != nil {
		return changed, fmt.Errorf("configure %s: %w", m.Name, err)
	}
	return changed, nil
}

func personalize(root *os.Root, id Identity) (bool, error) {
	changed := false
	if err := root.MkdirAll("root/.ssh", 0o700); err != nil {
		return false, err
	}
	if err := root.Chmod("root/.ssh", 0o700); err != nil {
		return false, err
	}
	files := []struct {
		path, content string
		mode          os.FileMode
	}{
		{"root/.ssh/authorized_keys", id.AuthorizedKeys, 0o600},
		// The provisioner manages its own proxy setting from the inventory;
		// this one lets a fresh machine install packages before that.
		{"etc/apt/apt.conf.d/90trafficlab-lab-proxy", fmt.Sprintf("// trafficlab lab: packages come through the lab's caching proxy\nAcquire::http::Proxy %q;\n", id.AptProxy), 0o644},
	}
	for _, f := range files {
		old, err := root.ReadFile(f.path)
		if err == nil && bytes.Equal(old, []byte(f.content)) {
			continue
		}
		if err := writeIn(root, f.path, []byte(f.content), f.mode); err != nil {
			return changed, err
		}
		changed = true
	}
	return changed, nil
}

// writeIn writes a file inside the machine's root without following any
// link out of it (os.Root refuses escapes).
func writeIn(root *os.Root, path string, content []byte, mode os.FileMode) error {
	if err := root.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tlab-tmp"
	if err := root.WriteFile(tmp, content, mode); err != nil {
		return err
	}
	if err := root.Chmod(tmp, mode); err != nil {
		return err
	}
	return root.Rename(tmp, path)
}

// HostKey returns the machine's public host key line.
func (m *Machine) HostKey() (string, error) {
	root, err := os.OpenRoot(m.RootDir)
	if err != nil {
		return "", fmt.Errorf("host key of %s: %w", m.Name, err)
	}
	defer root.Close()
	b, err := root.ReadFile("etc/ssh/ssh_host_ed25519_key.pub")
	if err != nil {
		return "", fmt.Errorf("host key of %s: %w", m.Name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (m *Machine) spec() daemon.Spec {
	return daemon.Spec{
		Name: m.Name,
		Path: NspawnPath,
		Args: []string{
			"-D", m.RootDir,
			"-M", m.Unit(),
			"--boot",
			// No systemd on the host: nothing to register with, and no
			// scope unit to create.
			"--register=no", "--keep-unit",
			"--network-namespace-path=" + network.NetnsPath(m.Name),
			// keepalived adds the VIP and sends VRRP.
			"--capability=CAP_NET_ADMIN,CAP_NET_RAW",
			// The provisioner sets the timezone; nspawn must not undo it.
			"--timezone=off",
			"--resolv-conf=off",
			"--link-journal=no",
			"--console=read-only",
		},
		// No colour codes in the boot log.
		Env:     []string{"TERM=dumb", "SYSTEMD_COLORS=0"},
		PidFile: m.PidFile,
		LogFile: m.LogFile,
		Match:   func(argv []string) bool { return IsNspawn(argv) && argAfter(argv, "-D") == m.RootDir },
	}
}

// IsNspawn reports whether argv is a systemd-nspawn command line.
func IsNspawn(argv []string) bool {
	return len(argv) > 0 && filepath.Base(argv[0]) == "systemd-nspawn"
}

// LabNspawn reports whether argv is a lab machine's nspawn: machine name
// with the lab prefix, or its root under machinesDir.
func LabNspawn(argv []string, machinesDir string) bool {
	if !IsNspawn(argv) {
		return false
	}
	return strings.HasPrefix(argAfter(argv, "-M"), network.Prefix+"-") ||
		strings.HasPrefix(argAfter(argv, "-D"), machinesDir+string(filepath.Separator))
}

func argAfter(argv []string, flag string) string {
	for i, a := range argv {
		if a == flag && i+1 < len(argv) {
			return argv[i+1]
		}
	}
	return ""
}

// Running returns the pid of the machine's nspawn if it runs.
func (m *Machine) Running() (int, bool) { return daemon.Running(m.spec()) }

// Boot starts the machine in the background.
func (m *Machine) Boot() (int, error) {
	if _, err := os.Stat(network.NetnsPath(m.Name)); err != nil {
		return 0, fmt.Errorf("boot %s: network namespace: %w", m.Name, err)
	}
	return daemon.Start(m.spec())
}

// Stop shuts the machine down cleanly — SIGTERM makes nspawn ask the
// container's systemd to halt (its --kill-signal, SIGRTMIN+3 with --boot) —
// and kills it after grace. Processes of the machine that outlived their
// nspawn (found by their root directory) are stopped too. It reports
// whether the shutdown was clean.
func (m *Machine) Stop(grace time.Duration) (bool, error) {
	clean := true
	for _, pid := range daemon.Find(func(argv []string) bool { return m.spec().Match(argv) }) {
		ok, err := daemon.Stop(pid, syscall.SIGTERM, grace)
		if err != nil {
			return false, fmt.Errorf("stop %s: %w", m.Name, err)
		}
		clean = clean && ok
	}
	_, ok, err := KillOrphans(m.RootDir, grace)
	if err != nil {
		return false, fmt.Errorf("stop %s: %w", m.Name, err)
	}
	os.Remove(m.PidFile)
	return clean && ok, nil
}

// KillOrphans stops processes whose root is rootDir but whose nspawn is gone
// (e.g. it was killed): SIGRTMIN+4 (poweroff) to the container's init, then
// SIGKILL to every one of them after grace.
func KillOrphans(rootDir string, grace time.Duration) (found int, clean bool, err error) {
	pids := Processes(rootDir)
	if len(pids) == 0 {
		return 0, true, nil
	}
	clean = true
	for _, pid := range pids {
		if nsInit(pid) {
			ok, err := daemon.Stop(pid, syscall.Signal(sigRTMIN()+4), grace)
			if err != nil {
				return len(pids), false, err
			}
			clean = clean && ok
		}
	}
	for _, pid := range Processes(rootDir) {
		syscall.Kill(pid, syscall.SIGKILL)
		daemon.WaitGone(pid, 5*time.Second)
		clean = false
	}
	return len(pids), clean, nil
}

// sigRTMIN is glibc's SIGRTMIN as seen by systemd (the kernel's 32 plus the
// two signals glibc reserves).
func sigRTMIN() int { return 34 }

// nsInit reports whether pid is PID 1 of its own PID namespace.
func nsInit(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f, ok := strings.CutPrefix(line, "NSpid:"); ok {
			fs := strings.Fields(f)
			return len(fs) > 1 && fs[len(fs)-1] == "1"
		}
	}
	return false
}

// Processes returns the host pids of every process running inside the
// machine whose root file system is rootDir.
func Processes(rootDir string) []int { return daemon.InRoot(rootDir) }

// Memory sums the proportional (PSS) and resident (RSS) memory, in bytes, of
// every process in the machine. PSS splits pages shared between processes
// (and between machines: they are copies of one image, but copies do not
// share page cache) so the sum over machines is not inflated.
func (m *Machine) Memory() (pss, rss uint64, procs int) {
	for _, pid := range Processes(m.RootDir) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
		if err != nil {
			continue
		}
		procs++
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			var kb uint64
			fmt.Sscanf(f[1], "%d", &kb)
			switch f[0] {
			case "Pss:":
				pss += kb * 1024
			case "Rss:":
				rss += kb * 1024
			}
		}
	}
	return pss, rss, procs
}

//go:build linux

package labctl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/trafficlab/trafficlab/lab/daemon"
	"github.com/trafficlab/trafficlab/lab/machine"
	"github.com/trafficlab/trafficlab/lab/network"
	"github.com/trafficlab/trafficlab/lab/ntp"
	"github.com/trafficlab/trafficlab/lab/proxy"
	"github.com/trafficlab/trafficlab/lab/tree"
)

// StopGrace is how long a machine gets to shut down cleanly.
const StopGrace = 30 * time.Second

// Down removes everything the lab created except the caches (everything,
// with purge). It does not rely on the state file: it finds machines by
// their nspawn command lines and root directories, services by their
// configuration paths under the state directory, and network objects by the
// lab prefix, so it also cleans up after a half-failed `lab up`.
func (l *Lab) Down(ctx context.Context, purge bool) error {
	if err := CheckHost(); err != nil {
		return err
	}
	unlock, err := l.lock()
	if err != nil {
		return err
	}
	p := l.Out
	var errs []error

	// Machines: every root directory under machines/, plus any lab nspawn
	// whose directory is gone.
	roots := map[string]bool{}
	if des, err := os.ReadDir(l.MachinesDir()); err == nil {
		for _, de := range des {
			if de.IsDir() && !strings.HasSuffix(de.Name(), ".tmp") {
				roots[filepath.Join(l.MachinesDir(), de.Name())] = true
			}
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for root := range roots {
		m := l.machine(filepath.Base(root), netip.Prefix{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			running := len(machine.Processes(root)) > 0
			clean, err := m.Stop(StopGrace)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case running && clean:
				p.Printf("%s: shut down", m.Name)
			case running:
				p.Printf("%s: killed after %s", m.Name, StopGrace)
			}
		}()
	}
	wg.Wait()
	for _, pid := range daemon.Find(func(argv []string) bool { return machine.LabNspawn(argv, l.MachinesDir()) }) {
		argv, _ := daemon.Argv(pid)
		if _, err := daemon.Stop(pid, syscall.SIGTERM, StopGrace); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Printf("stopped stray %s", strings.Join(argv, " "))
	}

	// Services: any squid or chronyd run with a configuration in our state.
	sq := &proxy.Squid{Dir: filepath.Join(l.StateDir, "proxy")}
	if n, err := sq.Stop(); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		p.Printf("proxy: squid stopped")
	}
	ts := &ntp.Server{Dir: filepath.Join(l.StateDir, "ntp")}
	if n, err := ts.Stop(); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		p.Printf("ntp: chronyd stopped")
	}

	// Helpers of an interrupted `lab up` (a cp still copying the image into
	// a machine directory, a debootstrap building an image) would refill
	// what is about to be removed.
	for _, pid := range daemon.Find(func(argv []string) bool { return l.labHelper(argv) }) {
		argv, ok := daemon.Argv(pid)
		if !ok {
			continue // gone with its parent
		}
		if _, err := daemon.Stop(pid, syscall.SIGTERM, 5*time.Second); err != nil {
			errs = append(errs, err)
			continue
		}
		p.Printf("stopped leftover %s", strings.Join(argv, " "))
	}

	removed, err := network.RemoveAll(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	if len(removed) > 0 {
		p.Printf("network: removed %s", strings.Join(removed, ", "))
	}
	// An image build that never finished is not a cache.
	partial, _ := filepath.Glob(filepath.Join(l.ImagesDir(), "*.tmp"))
	for _, d := range partial {
		daemon.KillAll(daemon.InRoot(d)) // dpkg chrooted by a killed debootstrap
		if err := tree.Remove(d); err != nil {
			errs = append(errs, err)
		} else {
			p.Printf("cache: removed unfinished image %s", d)
		}
	}
	// nspawn's per-machine runtime directories carry the machine name.
	leftovers, _ := filepath.Glob("/run/systemd/nspawn/*/" + network.Prefix + "-*")
	for _, f := range leftovers {
		tree.Remove(f)
	}

	if len(errs) > 0 {
		// Keep the state (logs, pid files) for a second attempt.
		unlock()
		return fmt.Errorf("lab down: %w", errors.Join(errs...))
	}
	if _, err := os.Stat(l.StateDir); err == nil {
		// Machine trees are most of the files: remove them in parallel.
		trees, _ := filepath.Glob(filepath.Join(l.MachinesDir(), "*"))
		for _, t := range trees {
			wg.Add(1)
			go func() { defer wg.Done(); tree.Remove(t) }()
		}
		wg.Wait()
		if err := tree.Remove(l.StateDir); err != nil {
			unlock()
			return fmt.Errorf("lab down: remove %s: %w", l.StateDir, err)
		}
		p.Printf("state: removed %s (machines, keys, inventory, logs)", l.StateDir)
	}
	if purge {
		for _, d := range []string{l.ImagesDir(), l.PackagesDir(), l.ArtifactsDir()} {
			if _, err := os.Stat(d); err == nil {
				if err := tree.Remove(d); err != nil {
					unlock()
					return fmt.Errorf("lab down: remove %s: %w", d, err)
				}
				p.Printf("cache: removed %s", d)
			}
		}
		os.Remove(l.CacheDir) // only if empty
	} else {
		p.Printf("cache: kept %s, %s and %s (lab down --purge removes them)", l.ImagesDir(), l.PackagesDir(), l.ArtifactsDir())
	}
	unlock()
	os.Remove(l.lockFile())
	os.Remove(filepath.Dir(l.StateDir)) // only if empty
	p.Printf("lab down: done")
	return nil
}

// labHelper recognises the commands the lab runs on its state directory.
// Only these are stopped: a user's editor or shell in that directory is not
// the lab's to kill.
func (l *Lab) labHelper(argv []string) bool {
	dir := l.StateDir
	switch daemon.Command(argv) {
	case "cp", "systemd-nspawn", "squid", "chronyd":
	case "debootstrap":
		dir = l.ImagesDir()
	default:
		return false
	}
	for _, a := range argv[1:] {
		if strings.HasPrefix(a, dir+string(filepath.Separator)) || strings.Contains(a, "="+dir+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

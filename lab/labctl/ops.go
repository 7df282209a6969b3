//go:build linux

package labctl

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/lab/machine"
	"github.com/trafficlab/trafficlab/lab/network"
	"github.com/trafficlab/trafficlab/lab/sshaccess"
	"github.com/trafficlab/trafficlab/lab/tree"
)

// MachineStatus is one row of `lab status`.
type MachineStatus struct {
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Roles   []string `json:"roles"`
	Running bool     `json:"running"`
	Pid     int      `json:"pid,omitempty"`
	Link    string   `json:"link"` // up, cut (host side down), missing
	SSH     bool     `json:"ssh"`  // sshd accepted the lab key
	SSHErr  string   `json:"ssh_error,omitempty"`
	Procs   int      `json:"processes"`
	PSS     uint64   `json:"pss_bytes"`
	RSS     uint64   `json:"rss_bytes"`
}

// Status is the lab's state as observed now.
type Status struct {
	Layout    string          `json:"layout"`
	Subnet    string          `json:"subnet"`
	Inventory string          `json:"inventory"`
	Machines  []MachineStatus `json:"machines"`
	Proxy     string          `json:"package_proxy"` // URL, or "" when not running
	NTP       string          `json:"ntp_server"`    // address, or "" when not running
	PSS       uint64          `json:"pss_bytes"`     // sums over machines
	RSS       uint64          `json:"rss_bytes"`
}

// Status observes every machine (process, link, sshd, memory) and the
// services. It changes nothing.
func (l *Lab) Status(ctx context.Context) (*Status, error) {
	if err := CheckHost(); err != nil {
		return nil, err
	}
	c, err := l.current()
	if err != nil {
		return nil, err
	}
	st := &Status{Layout: c.state.Layout, Subnet: c.state.Subnet, Inventory: l.InventoryFile()}
	signer, _ := sshaccess.Signer(l.KeyFile())
	st.Machines = make([]MachineStatus, len(c.machines))
	var wg sync.WaitGroup
	for i, m := range c.machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ms := MachineStatus{Name: m.Name, Address: m.Addr.Addr().String(), Roles: c.layout.Machines[i].Roles, Link: "missing"}
			ms.Pid, ms.Running = m.Running()
			if link, ok, err := network.HostLink(ctx, m.Name); err == nil && ok {
				ms.Link = "up"
				if !link.Up() {
					ms.Link = "cut"
				}
			}
			if ms.Running && signer != nil {
				err := sshaccess.Probe(ctx, ms.Address, signer, l.KnownHosts(), 2*time.Second, false)
				ms.SSH = err == nil
				if err != nil {
					ms.SSHErr = err.Error()
				}
			}
			ms.PSS, ms.RSS, ms.Procs = m.Memory()
			st.Machines[i] = ms
		}()
	}
	wg.Wait()
	for _, ms := range st.Machines {
		st.PSS += ms.PSS
		st.RSS += ms.RSS
	}
	if _, ok := l.squid(c.plan, nil).Running(); ok {
		st.Proxy = l.squid(c.plan, nil).URL()
	}
	if _, ok := l.ntp(c.plan).Running(); ok {
		st.NTP = c.plan.BridgeAddr().String()
	}
	return st, nil
}

// StopMachine shuts one machine down cleanly (its network stays).
func (l *Lab) StopMachine(ctx context.Context, name string) error {
	m, unlock, err := l.lockedMachine(name)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.Running(); !ok && len(machine.Processes(m.RootDir)) == 0 {
		l.Out.Printf("%s: already stopped", name)
		return nil
	}
	clean, err := m.Stop(StopGrace)
	if err != nil {
		return err
	}
	if clean {
		l.Out.Printf("%s: shut down", name)
	} else {
		l.Out.Printf("%s: killed after %s", name, StopGrace)
	}
	return nil
}

// StartMachine boots one stopped machine and waits for its sshd.
func (l *Lab) StartMachine(ctx context.Context, name string) error {
	m, unlock, err := l.lockedMachine(name)
	if err != nil {
		return err
	}
	defer unlock()
	if _, ok := m.Running(); ok {
		l.Out.Printf("%s: already running", name)
		return nil
	}
	if !m.Exists() {
		return fmt.Errorf("%s: no root file system at %s: run `lab up`", name, m.RootDir)
	}
	if _, err := network.EnsureMachine(ctx, m.Name, m.Addr); err != nil {
		return err
	}
	if _, _, err := machine.KillOrphans(m.RootDir, 5*time.Second); err != nil {
		return err
	}
	pid, err := m.Boot()
	if err != nil {
		return err
	}
	l.Out.Printf("%s: booting (nspawn pid %d)", name, pid)
	return l.waitReachable(ctx, []*machine.Machine{m}, 60*time.Second)
}

// DestroyMachine stops a machine at once (as a host that dies would) and
// deletes its root file system, as a host lost with its disk: `lab up`
// then creates it anew, with new host keys, at the same name and address.
func (l *Lab) DestroyMachine(ctx context.Context, name string) error {
	m, unlock, err := l.lockedMachine(name)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := m.Stop(0); err != nil {
		return err
	}
	if err := tree.Remove(m.RootDir); err != nil {
		return fmt.Errorf("%s: remove %s: %w", name, m.RootDir, err)
	}
	leftovers, _ := filepath.Glob("/run/systemd/nspawn/*/" + m.Unit())
	for _, f := range leftovers {
		tree.Remove(f)
	}
	l.Out.Printf("%s: destroyed, its disk (%s) removed; `lab up` creates it again", name, m.RootDir)
	return nil
}

// Cut takes the machine's host-side veth down: the machine keeps running but
// nobody reaches it (a failure drill). Heal brings it back.
func (l *Lab) Cut(ctx context.Context, name string) error { return l.setLink(ctx, name, false) }

// Heal undoes Cut.
func (l *Lab) Heal(ctx context.Context, name string) error { return l.setLink(ctx, name, true) }

func (l *Lab) setLink(ctx context.Context, name string, up bool) error {
	_, unlock, err := l.lockedMachine(name)
	if err != nil {
		return err
	}
	defer unlock()
	host, _ := network.Links(name)
	if err := network.SetLink(ctx, name, up); err != nil {
		return err
	}
	if up {
		l.Out.Printf("%s: healed (%s up)", name, host)
	} else {
		l.Out.Printf("%s: cut (%s down)", name, host)
	}
	return nil
}

func (l *Lab) lockedMachine(name string) (*machine.Machine, func(), error) {
	if err := CheckHost(); err != nil {
		return nil, nil, err
	}
	c, err := l.current()
	if err != nil {
		return nil, nil, err
	}
	m, err := c.find(name)
	if err != nil {
		return nil, nil, err
	}
	unlock, err := l.lock()
	if err != nil {
		return nil, nil, err
	}
	return m, unlock, nil
}

// SSHCommand returns the ssh command line that opens a root shell (or runs
// args) on the machine with the lab key and strict host key checking.
func (l *Lab) SSHCommand(name string, args ...string) ([]string, error) {
	c, err := l.current()
	if err != nil {
		return nil, err
	}
	m, err := c.find(name)
	if err != nil {
		return nil, err
	}
	argv := []string{"ssh",
		"-i", l.KeyFile(),
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + l.KnownHosts(),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "ConnectTimeout=5",
		"-l", "root",
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		argv = append(argv, "-t")
	}
	// Like ssh itself, the remote command is the arguments joined by
	// spaces and run by root's shell on the machine.
	argv = append(argv, m.Addr.Addr().String())
	return append(argv, args...), nil
}

// AccessLog is the package proxy's access log (hits and misses).
func (l *Lab) AccessLog() string { return filepath.Join(l.StateDir, "proxy", "access.log") }

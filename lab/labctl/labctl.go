//go:build linux

// Package labctl is the lab's control logic behind `lab up|down|status|…`:
// it composes the host packages, the base image, the network, the package
// proxy, the NTP server and the machines into one idempotent operation, and
// tears all of it down again, finding what to remove by the lab prefix and
// the state directory rather than trusting a state file alone.
package labctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/trafficlab/trafficlab/lab/aptsrc"
	"github.com/trafficlab/trafficlab/lab/layout"
	"github.com/trafficlab/trafficlab/lab/machine"
	"github.com/trafficlab/trafficlab/lab/network"
	"github.com/trafficlab/trafficlab/lab/ntp"
	"github.com/trafficlab/trafficlab/lab/progress"
	"github.com/trafficlab/trafficlab/lab/proxy"
)

// Default locations: state (machines, keys, inventory, service configs) is
// removed by `lab down`; the cache (base images, packages) survives it.
const (
	DefaultStateDir = "/var/lib/trafficlab/lab"
	DefaultCacheDir = "/var/cache/trafficlab"
)

// Lab is one lab instance on this host.
type Lab struct {
	StateDir string
	CacheDir string
	Apt      aptsrc.Paths
	Out      *progress.Printer
}

// New returns the lab with the default directories, printing to out.
func New(out *progress.Printer) *Lab {
	return &Lab{StateDir: DefaultStateDir, CacheDir: DefaultCacheDir, Apt: aptsrc.Default, Out: out}
}

// Paths of the lab's files.
func (l *Lab) MachinesDir() string   { return filepath.Join(l.StateDir, "machines") }
func (l *Lab) KeyFile() string       { return filepath.Join(l.StateDir, "id_ed25519") }
func (l *Lab) KnownHosts() string    { return filepath.Join(l.StateDir, "known_hosts") }
func (l *Lab) InventoryFile() string { return filepath.Join(l.StateDir, "inventory.yaml") }
func (l *Lab) ImagesDir() string     { return filepath.Join(l.CacheDir, "images") }
func (l *Lab) PackagesDir() string   { return filepath.Join(l.CacheDir, "packages") }
func (l *Lab) ArtifactsDir() string  { return filepath.Join(l.CacheDir, "artifacts") }
func (l *Lab) stateFile() string     { return filepath.Join(l.StateDir, "state.json") }
func (l *Lab) lockFile() string      { return l.StateDir + ".lock" }

// State is what `lab up` chose, so later commands (and a second up without
// flags) use the same layout and subnet.
type State struct {
	Layout string `json:"layout"`
	Subnet string `json:"subnet"`
}

func (l *Lab) loadState() (*State, error) {
	b, err := os.ReadFile(l.stateFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lab state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("lab state %s: %w", l.stateFile(), err)
	}
	return &s, nil
}

// current is the lab as recorded by the last `lab up`.
type current struct {
	state    *State
	layout   layout.Layout
	plan     network.Plan
	machines []*machine.Machine
}

func (l *Lab) current() (*current, error) {
	s, err := l.loadState()
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, fmt.Errorf("no lab here (%s is missing): run `lab up` first", l.stateFile())
	}
	return l.resolve(s)
}

func (l *Lab) resolve(s *State) (*current, error) {
	lay, err := layout.Get(s.Layout)
	if err != nil {
		return nil, err
	}
	plan, err := network.ParsePlan(s.Subnet, len(lay.Machines))
	if err != nil {
		return nil, err
	}
	c := &current{state: s, layout: lay, plan: plan}
	for i, m := range lay.Machines {
		c.machines = append(c.machines, l.machine(m.Name, netip.PrefixFrom(plan.Machine(i), plan.Subnet.Bits())))
	}
	return c, nil
}

func (l *Lab) machine(name string, addr netip.Prefix) *machine.Machine {
	return &machine.Machine{
		Name:    name,
		Addr:    addr,
		RootDir: filepath.Join(l.MachinesDir(), name),
		PidFile: filepath.Join(l.StateDir, "run", name+".pid"),
		LogFile: filepath.Join(l.StateDir, "logs", name+".log"),
	}
}

func (c *current) find(name string) (*machine.Machine, error) {
	for _, m := range c.machines {
		if m.Name == name {
			return m, nil
		}
	}
	var names []string
	for _, m := range c.machines {
		names = append(names, m.Name)
	}
	return nil, fmt.Errorf("no machine %q in the lab (have %v)", name, names)
}

func (l *Lab) squid(plan network.Plan, mirrors []string) *proxy.Squid {
	return &proxy.Squid{
		Dir: filepath.Join(l.StateDir, "proxy"), CacheDir: l.PackagesDir(),
		Listen: plan.BridgeAddr(), Subnet: plan.Subnet, Mirrors: mirrors,
	}
}

func (l *Lab) ntp(plan network.Plan) *ntp.Server {
	return &ntp.Server{Dir: filepath.Join(l.StateDir, "ntp"), Listen: plan.BridgeAddr(), Subnet: plan.Subnet}
}

// lock serialises lab commands on this host.
func (l *Lab) lock() (func(), error) {
	if err := os.MkdirAll(filepath.Dir(l.lockFile()), 0o755); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	f, err := os.OpenFile(l.lockFile(), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another lab command is running (lock %s held)", l.lockFile())
	}
	return func() { f.Close() }, nil
}

// CheckHost refuses, changing nothing, when the lab cannot run here.
func CheckHost() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the lab needs Linux (this is %s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("the lab needs root (it creates network namespaces, a bridge and containers): run it with sudo")
	}
	return nil
}

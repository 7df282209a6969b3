//go:build linux

package labctl

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/lab/aptsrc"
	"github.com/trafficlab/trafficlab/lab/filebeatdist"
	"github.com/trafficlab/trafficlab/lab/hostpkg"
	"github.com/trafficlab/trafficlab/lab/image"
	"github.com/trafficlab/trafficlab/lab/kafkadist"
	"github.com/trafficlab/trafficlab/lab/layout"
	"github.com/trafficlab/trafficlab/lab/machine"
	"github.com/trafficlab/trafficlab/lab/network"
	"github.com/trafficlab/trafficlab/lab/run"
	"github.com/trafficlab/trafficlab/lab/sshaccess"
)

// UpOptions select the layout and subnet. Empty fields mean: what the lab
// already runs, else the defaults.
type UpOptions struct {
	Layout string
	Subnet string
	// ReachTimeout bounds the wait for every sshd (default 120 s: a cold
	// first boot also builds the image before this clock starts).
	ReachTimeout time.Duration
}

// UpResult reports what `lab up` did.
type UpResult struct {
	Inventory string
	Changed   int           // number of changes made
	Reachable time.Duration // from the start of up until every sshd answered
	Machines  []string
}

// preflight checks everything that can be checked without changing the host.
func (l *Lab) preflight(ctx context.Context, opts UpOptions) (*current, *image.Spec, error) {
	if err := CheckHost(); err != nil {
		return nil, nil, err
	}
	prev, err := l.loadState()
	if err != nil {
		return nil, nil, err
	}
	want := State{Layout: "default", Subnet: network.DefaultSubnet}
	if prev != nil {
		want = *prev
	}
	if opts.Layout != "" {
		want.Layout = opts.Layout
	}
	if opts.Subnet != "" {
		want.Subnet = opts.Subnet
	}
	if prev != nil && (*prev != want) {
		return nil, nil, fmt.Errorf("the lab is up with layout %s on %s; run `lab down` before switching to layout %s on %s",
			prev.Layout, prev.Subnet, want.Layout, want.Subnet)
	}
	c, err := l.resolve(&want)
	if err != nil {
		return nil, nil, err
	}
	routes, err := network.Routes(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := network.CheckOverlap(c.plan.Subnet, routes); err != nil {
		return nil, nil, err
	}
	if err := checkNamespaces(ctx); err != nil {
		return nil, nil, err
	}
	spec, err := image.NewSpec(l.ImagesDir(), l.Apt)
	if err != nil {
		return nil, nil, fmt.Errorf("base image: %w", err)
	}
	return c, spec, nil
}

// checkNamespaces proves the kernel lets root create the namespaces nspawn
// needs, before anything is installed or created.
func checkNamespaces(ctx context.Context) error {
	if _, err := os.Stat("/sys/fs/cgroup"); err != nil {
		return fmt.Errorf("systemd-nspawn is unusable here: no cgroup file system at /sys/fs/cgroup")
	}
	if err := run.Quiet(ctx, "unshare", "--mount", "--net", "--pid", "--uts", "--ipc", "--fork", "true"); err != nil {
		return fmt.Errorf("systemd-nspawn is unusable here: cannot create namespaces: %w", err)
	}
	return nil
}

// Up creates (or repairs) the lab. It is idempotent: on a lab that is up it
// changes nothing and says so.
func (l *Lab) Up(ctx context.Context, opts UpOptions) (*UpResult, error) {
	p := l.Out
	c, spec, err := l.preflight(ctx, opts)
	if err != nil {
		return nil, err
	}
	unlock, err := l.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	res := &UpResult{Inventory: l.InventoryFile()}
	changed := func(did bool, format string, args ...any) {
		if did {
			res.Changed++
			p.Printf(format, args...)
		}
	}
	p.Printf("lab up: layout %s, subnet %s, %d machines", c.state.Layout, c.state.Subnet, len(c.machines))

	if err := hostpkg.Ensure(ctx, p); err != nil {
		return nil, err
	}
	// Apache Kafka is assembled from Maven Central (or found in the
	// cache) while the machines come up; the inventory points the kafka
	// role at it. filebeat too, from its Go module (minutes when not
	// cached): one after the other, the host has few cores.
	var kb kafkaResult
	built := make(chan struct{})
	var fb filebeatResult
	go func() {
		defer close(built)
		kb = l.buildKafka(ctx, c.layout.KafkaVersion)
		if kb.err == nil {
			fb = l.buildFilebeat(ctx)
		}
	}()
	// On an early error return, let the build finish rather than leave
	// the go tool running behind us.
	defer func() { <-built }()

	if _, err := run.Output(ctx, machine.NspawnPath, "--version"); err != nil {
		return nil, fmt.Errorf("systemd-nspawn is unusable: %w", err)
	}
	for _, d := range []string{l.StateDir, l.MachinesDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
	}
	stateJSON, _ := json.MarshalIndent(c.state, "", "  ")
	did, err := sshaccess.WriteIfChanged(l.stateFile(), append(stateJSON, '\n'), 0o644)
	if err != nil {
		return nil, fmt.Errorf("lab state: %w", err)
	}
	changed(did, "state: %s", l.stateFile())

	pub, did, err := sshaccess.EnsureKeyPair(l.KeyFile(), "trafficlab-lab")
	if err != nil {
		return nil, err
	}
	changed(did, "ssh: lab key %s created", l.KeyFile())

	imgDir, err := spec.Ensure(ctx, p)
	if err != nil {
		return nil, err
	}

	did, err = network.EnsureBridge(ctx, c.plan)
	if err != nil {
		return nil, err
	}
	changed(did, "network: bridge %s %s/%d up", network.Bridge, c.plan.BridgeAddr(), c.plan.Subnet.Bits())

	sq := l.squid(c.plan, aptsrc.Hosts(spec.Sources))
	did, err = sq.Ensure(ctx)
	if err != nil {
		return nil, err
	}
	changed(did, "proxy: squid on %s (cache %s)", sq.URL(), sq.CacheDir)
	ts := l.ntp(c.plan)
	did, err = ts.Ensure(ctx)
	if err != nil {
		return nil, err
	}
	changed(did, "ntp: chronyd serving %s on %s", c.plan.Subnet, c.plan.BridgeAddr())

	id := machine.Identity{AuthorizedKeys: pub, AptProxy: sq.URL()}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []string
	)
	for _, m := range c.machines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := l.upMachine(ctx, m, imgDir, id)
			mu.Lock()
			defer mu.Unlock()
			res.Changed += n
			if err != nil {
				errs = append(errs, err.Error())
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, fmt.Errorf("lab up: %s", strings.Join(errs, "; "))
	}

	// known_hosts from the keys generated into each machine before its
	// first boot: the client never has to trust on first use.
	var hosts []sshaccess.Host
	for _, m := range c.machines {
		k, err := m.HostKey()
		if err != nil {
			return nil, err
		}
		hosts = append(hosts, sshaccess.Host{Names: []string{m.Addr.Addr().String(), m.Name}, PubKey: k})
	}
	kh, err := sshaccess.KnownHosts(hosts)
	if err != nil {
		return nil, err
	}
	did, err = sshaccess.WriteIfChanged(l.KnownHosts(), kh, 0o644)
	if err != nil {
		return nil, fmt.Errorf("known_hosts: %w", err)
	}
	changed(did, "ssh: host keys recorded in %s", l.KnownHosts())

	<-built
	if kb.err != nil {
		return nil, kb.err
	}
	p.Printf("kafka %s (Apache, %d jars from Maven Central): %s (%.1fs)", c.layout.KafkaVersion, kb.artifact.Jars, kb.artifact.Path, kb.took.Seconds())
	if fb.err != nil {
		return nil, fb.err
	}
	p.Printf("filebeat %s: %s (%.1fs)", filebeatdist.Version, fb.artifact.Path, fb.took.Seconds())
	params := l.inventoryParams(c, sq.URL())
	params.KafkaArtifact, params.KafkaSHA512 = kb.artifact.Path, kb.artifact.SHA512
	params.FilebeatArtifact, params.FilebeatSHA512 = fb.artifact.Path, fb.artifact.SHA512
	inv, err := c.layout.Inventory(params)
	if err != nil {
		return nil, err
	}
	did, err = sshaccess.WriteIfChanged(l.InventoryFile(), inv, 0o644)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	changed(did, "inventory: %s written", l.InventoryFile())

	timeout := opts.ReachTimeout
	if timeout == 0 {
		timeout = 120 * time.Second
	}
	if err := l.waitReachable(ctx, c.machines, timeout); err != nil {
		return nil, err
	}
	res.Reachable = p.Elapsed()
	for _, m := range c.machines {
		res.Machines = append(res.Machines, m.Name)
	}
	if res.Changed == 0 {
		p.Printf("lab up: nothing to change; every sshd reachable")
	} else {
		p.Printf("lab up: %d machines, every sshd reachable %.1fs after start (%d changes)", len(c.machines), res.Reachable.Seconds(), res.Changed)
	}
	return res, nil
}

type kafkaResult struct {
	artifact kafkadist.Artifact
	took     time.Duration
	err      error
}

// buildKafka assembles the Apache Kafka release the layout runs from
// Maven Central's jars (lab/kafkadist), or finds it in the cache:
// Apache's tarball cannot be downloaded here. Maven (and the JDK it runs
// on) is installed with the host packages when missing.
func (l *Lab) buildKafka(ctx context.Context, version string) kafkaResult {
	start := time.Now()
	a, err := kafkadist.Build(ctx, version, l.ArtifactsDir(), l.Out.Printf)
	if err != nil {
		return kafkaResult{err: fmt.Errorf("kafka: %w", err)}
	}
	return kafkaResult{artifact: a, took: time.Since(start)}
}

type filebeatResult struct {
	artifact filebeatdist.Artifact
	took     time.Duration
	err      error
}

// buildFilebeat builds real filebeat from its Go module, packaged like
// Elastic's tarball (lab/filebeatdist), or finds it in the cache:
// Elastic's downloads cannot be reached from here.
func (l *Lab) buildFilebeat(ctx context.Context) filebeatResult {
	start := time.Now()
	a, err := filebeatdist.Build(ctx, l.ArtifactsDir(), l.Out.Printf)
	if err != nil {
		return filebeatResult{err: fmt.Errorf("filebeat: %w", err)}
	}
	return filebeatResult{artifact: a, took: time.Since(start)}
}

func (l *Lab) inventoryParams(c *current, proxyURL string) layout.Params {
	p := layout.Params{
		Prefix:       c.plan.Subnet.Bits(),
		VIP:          c.plan.VIP(),
		NTPServer:    c.plan.BridgeAddr(),
		PackageProxy: proxyURL,
		KeyFile:      l.KeyFile(),
		KnownHosts:   l.KnownHosts(),
	}
	for _, m := range c.machines {
		p.Addresses = append(p.Addresses, m.Addr.Addr())
	}
	return p
}

// upMachine brings one machine to "booted": network, root file system,
// identity, nspawn. It returns the number of changes.
func (l *Lab) upMachine(ctx context.Context, m *machine.Machine, imgDir string, id machine.Identity) (int, error) {
	p := l.Out
	n := 0
	did, err := network.EnsureMachine(ctx, m.Name, m.Addr)
	if err != nil {
		return n, err
	}
	if did {
		n++
		p.Printf("%s: network %s (netns %s)", m.Name, m.Addr, network.Netns(m.Name))
	}
	if !m.Exists() {
		if err := m.Create(ctx, imgDir, id); err != nil {
			return n, err
		}
		n++
		p.Printf("%s: created from the image", m.Name)
	} else {
		did, err := m.Personalize(id)
		if err != nil {
			return n, err
		}
		if did {
			n++
			p.Printf("%s: lab key and package proxy updated", m.Name)
		}
	}
	if _, ok := m.Running(); !ok {
		// Leftovers of a machine whose nspawn died would hold its root.
		found, _, err := machine.KillOrphans(m.RootDir, 5*time.Second)
		if err != nil {
			return n, err
		}
		if found > 0 {
			n++
			p.Printf("%s: stopped %d processes left over from a dead nspawn", m.Name, found)
		}
		pid, err := m.Boot()
		if err != nil {
			return n, err
		}
		n++
		p.Printf("%s: booting (nspawn pid %d, log %s)", m.Name, pid, m.LogFile)
	}
	return n, nil
}

// waitReachable waits until every machine's sshd accepts the lab key and
// its boot is over (sshaccess.Probe), or a machine's nspawn exits, or
// timeout passes; the error of a machine still booting names the jobs
// systemd is waiting for.
func (l *Lab) waitReachable(ctx context.Context, ms []*machine.Machine, timeout time.Duration) error {
	signer, err := sshaccess.Signer(l.KeyFile())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errc := make(chan error, len(ms))
	for _, m := range ms {
		go func() {
			var last error
			for {
				if _, ok := m.Running(); !ok {
					errc <- fmt.Errorf("%s: systemd-nspawn exited; last lines of %s: %s", m.Name, m.LogFile, tailFile(m.LogFile, 5))
					return
				}
				last = sshaccess.Probe(ctx, m.Addr.Addr().String(), signer, l.KnownHosts(), 5*time.Second, true)
				if last == nil {
					l.Out.Printf("%s: sshd reachable at %s, boot finished", m.Name, m.Addr.Addr())
					errc <- nil
					return
				}
				select {
				case <-ctx.Done():
					errc <- fmt.Errorf("%s: not ready after %s: %v", m.Name, timeout, last)
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
	}
	var errs []string
	for range ms {
		if err := <-errc; err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab up: %s", strings.Join(errs, "; "))
	}
	return nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

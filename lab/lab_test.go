//go:build lab && linux

// The lab test needs root on a Linux host and builds real machines: run it
// with `make lab-test` (go test -tags lab ./lab/...).
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/lab/daemon"
	"github.com/trafficlab/trafficlab/lab/labctl"
	"github.com/trafficlab/trafficlab/lab/machine"
	"github.com/trafficlab/trafficlab/lab/network"
	"github.com/trafficlab/trafficlab/lab/ntp"
	"github.com/trafficlab/trafficlab/lab/progress"
	"github.com/trafficlab/trafficlab/lab/proxy"
	"github.com/trafficlab/trafficlab/provision/remote"
)

// logWriter sends the lab's progress lines to the test log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// lab runs one CLI command in-process, exactly as `go run ./lab ARGS` would.
func lab(ctx context.Context, t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRoot(&teeWriter{&out, logWriter{t}})
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

type teeWriter struct {
	a *bytes.Buffer
	b logWriter
}

func (w *teeWriter) Write(p []byte) (int, error) { w.a.Write(p); return w.b.Write(p) }

func TestLab(t *testing.T) {
	if err := labctl.CheckHost(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	l := labctl.New(progress.New(logWriter{t}))

	// Never take over a lab someone is using.
	if _, err := os.Stat(filepath.Join(l.StateDir, "state.json")); err == nil {
		t.Fatalf("a lab is already up (%s): run `lab down` first", l.StateDir)
	}
	if links, _ := network.LabLinks(ctx); len(links) > 0 {
		t.Fatalf("tlab links exist on this host (%v): run `lab down` first", links)
	}

	t.Cleanup(func() {
		if _, err := os.Stat(l.StateDir); err == nil {
			if _, err := lab(context.Background(), t, "down"); err != nil {
				t.Errorf("cleanup: lab down: %v", err)
			}
		}
	})

	start := time.Now()
	out, err := lab(ctx, t, "up", "--layout", "minimal")
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Logf("FIGURE lab up (minimal): %.1fs", time.Since(start).Seconds())
	if !strings.Contains(out, "inventory: "+l.InventoryFile()) {
		t.Errorf("lab up did not print the inventory path:\n%s", out)
	}

	// A second up changes nothing.
	res, err := l.Up(ctx, labctl.UpOptions{})
	if err != nil {
		t.Fatalf("second lab up: %v", err)
	}
	if res.Changed != 0 {
		t.Errorf("second lab up made %d changes, want none", res.Changed)
	}

	inv, err := inventory.Load(l.InventoryFile())
	if err != nil {
		t.Fatalf("the lab's inventory does not load: %v", err)
	}
	if len(inv.Hosts) != 3 {
		t.Fatalf("inventory has %d hosts, want 3", len(inv.Hosts))
	}
	// The kafka role is pointed at the Apache Kafka lab up assembled.
	if b, err := os.ReadFile(inv.Kafka.Artifact); err != nil {
		t.Errorf("the inventory's kafka artifact: %v", err)
	} else if sum := sha512.Sum512(b); hex.EncodeToString(sum[:]) != inv.Kafka.SHA512 {
		t.Errorf("the inventory's kafka sha512 does not match %s", inv.Kafka.Artifact)
	}
	bridge := inv.Cluster.NTPServers[0]

	connect := func(h inventory.Host, timeout, retry time.Duration) (*remote.Client, error) {
		cctx, cancel := context.WithTimeout(ctx, timeout+retry+5*time.Second)
		defer cancel()
		return remote.Connect(cctx, remote.Config{
			Name: h.Name, Address: h.Address, Port: inv.SSH.Port, User: inv.SSH.User,
			KeyFiles: []string{inv.SSH.Key}, KnownHosts: inv.SSH.KnownHosts,
			HostKeyPolicy: remote.Strict, ConnectTimeout: timeout, RetryFor: retry,
			CommandTimeout: 5 * time.Minute,
		})
	}
	clients := map[string]*remote.Client{}
	for _, h := range inv.Hosts {
		c, err := connect(h, 5*time.Second, 30*time.Second)
		if err != nil {
			t.Fatalf("connect %s with strict host keys from %s: %v", h.Name, inv.SSH.KnownHosts, err)
		}
		defer c.Close()
		clients[h.Name] = c
		r, err := c.Run(ctx, "hostnamectl --static && hostnamectl | grep -q 'Virtualization: systemd-nspawn'")
		if err != nil {
			t.Fatalf("%s: hostnamectl: %v", h.Name, err)
		}
		if got := strings.TrimSpace(string(r.Stdout)); got != h.Name {
			t.Errorf("%s: hostnamectl --static = %q", h.Name, got)
		}
	}

	// Packages come through the proxy; the second machine's download of
	// the same package is served from squid's cache.
	install := func(name, pkg string) {
		t.Helper()
		start := time.Now()
		if _, err := clients[name].Run(ctx, "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "+pkg); err != nil {
			t.Fatalf("%s: install %s through the proxy: %v", name, pkg, err)
		}
		t.Logf("FIGURE %s: apt-get update + install %s: %.1fs", name, pkg, time.Since(start).Seconds())
	}
	install("node-1", "tree")
	before := fileSize(t, l.AccessLog())
	install("node-2", "tree")
	hit := ""
	for _, line := range logLines(t, l.AccessLog(), before) {
		if strings.Contains(line, "/tree_") && strings.Contains(line, ".deb") {
			hit = line
		}
	}
	if !strings.Contains(hit, "TCP_HIT/") && !strings.Contains(hit, "TCP_MEM_HIT/") {
		t.Errorf("node-2's tree package was not a cache hit; access.log line: %q", hit)
	} else {
		t.Logf("FIGURE proxy hit: %s", hit)
	}

	// NTP: node-3 asks the lab's server on the bridge (chronyd -Q measures
	// the offset and exits without touching the clock).
	install("node-3", "chrony")
	r, err := clients["node-3"].Run(ctx, fmt.Sprintf("chronyd -Q -t 20 'server %s iburst maxsamples 1' 2>&1", bridge))
	if err != nil || !strings.Contains(string(r.Stdout), "System clock wrong by") {
		t.Errorf("node-3: NTP query of %s failed: %v\n%s", bridge, err, r.Stdout)
	} else {
		t.Logf("node-3: %s", lastLineContaining(string(r.Stdout), "wrong by"))
	}

	// Status: every machine runs and answers; memory is reported.
	st, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Machines {
		if !m.Running || !m.SSH || m.Link != "up" {
			t.Errorf("status of %s: %+v", m.Name, m)
		}
	}
	t.Logf("FIGURE memory of %d machines after installs: %d MiB PSS, %d MiB RSS", len(st.Machines), st.PSS>>20, st.RSS>>20)

	// Cut: the machine is unreachable (a connect fails fast); heal: back.
	var node2 inventory.Host
	for _, h := range inv.Hosts {
		if h.Name == "node-2" {
			node2 = h
		}
	}
	if _, err := lab(ctx, t, "cut", "node-2"); err != nil {
		t.Fatalf("lab cut: %v", err)
	}
	t0 := time.Now()
	if c, err := connect(node2, 3*time.Second, 0); err == nil {
		c.Close()
		t.Errorf("node-2 reachable while cut")
	} else {
		t.Logf("node-2 cut: connect failed after %.1fs: %v", time.Since(t0).Seconds(), err)
		if time.Since(t0) > 10*time.Second {
			t.Errorf("connect to a cut machine took %s", time.Since(t0))
		}
	}
	if _, err := lab(ctx, t, "heal", "node-2"); err != nil {
		t.Fatalf("lab heal: %v", err)
	}
	c, err := connect(node2, 3*time.Second, 15*time.Second)
	if err != nil {
		t.Errorf("node-2 not reachable after heal: %v", err)
	} else {
		c.Close()
	}

	// Down leaves nothing behind but the caches.
	for _, c := range clients {
		c.Close()
	}
	t0 = time.Now()
	if _, err := lab(ctx, t, "down"); err != nil {
		t.Fatalf("lab down: %v", err)
	}
	t.Logf("FIGURE lab down: %.1fs", time.Since(t0).Seconds())
	assertNothingLeft(t, l)
}

func assertNothingLeft(t *testing.T, l *labctl.Lab) {
	t.Helper()
	ctx := context.Background()
	if nss, _ := network.LabNetns(); len(nss) > 0 {
		t.Errorf("netns left: %v", nss)
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), network.Prefix) {
		t.Errorf("ip netns list still shows lab namespaces:\n%s", out)
	}
	// The kernel removes a namespace's veth asynchronously; give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for {
		links, err := network.LabLinks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(links) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("links left: %v", links)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	machines := filepath.Join(l.StateDir, "machines")
	if pids := daemon.Find(func(argv []string) bool { return machine.LabNspawn(argv, machines) }); len(pids) > 0 {
		t.Errorf("nspawn processes left: %v", pids)
	}
	if pids := daemon.Find(func(argv []string) bool { return proxy.Is(argv, filepath.Join(l.StateDir, "proxy")) }); len(pids) > 0 {
		t.Errorf("squid processes left: %v", pids)
	}
	if pids := daemon.Find(func(argv []string) bool { return ntp.Is(argv, filepath.Join(l.StateDir, "ntp")) }); len(pids) > 0 {
		t.Errorf("chronyd processes left: %v", pids)
	}
	// Anything at all still running from the lab's directories.
	if pids := daemon.Find(func(argv []string) bool { return strings.Contains(strings.Join(argv, " "), l.StateDir) }); len(pids) > 0 {
		t.Errorf("processes mentioning %s left: %v", l.StateDir, pids)
	}
	if _, err := os.Stat(l.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state dir %s still exists (%v)", l.StateDir, err)
	}
	if _, err := os.Stat(l.ImagesDir()); err != nil {
		t.Errorf("image cache %s was removed by a plain down: %v", l.ImagesDir(), err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func logLines(t *testing.T, path string, from int64) []string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(from, 0); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func lastLineContaining(s, sub string) string {
	out := ""
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = l
		}
	}
	return out
}

//go:build lab && linux

package kafkadist_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/lab/kafkadist"
	"github.com/trafficlab/trafficlab/lab/layout"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
)

// TestBrokerStartsWithRenderedConfig: the distribution of each lab layout
// (3.9 in ZooKeeper mode, 4.x in KRaft mode with sasl_ssl), and 3.9 with
// sasl_ssl too, built from Maven Central, starts a broker with the
// server.properties provision renders for the lab, and the configuration
// the broker logs at start (KafkaConfig values) has every key trafficlab
// sets with trafficlab's value. It must then get as far as listening (a
// ZooKeeper-mode broker: started, its controller connected to it over the
// mutual-TLS listener; a KRaft node alone, without its quorum: its
// listeners bound, which loads the PEM keystore). The broker runs in a
// network namespace of its own with only loopback: nothing it does reaches
// another address.
func TestBrokerStartsWithRenderedConfig(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (a network namespace for the broker) and Maven: run make lab-test")
	}
	if _, err := exec.LookPath("java"); err != nil {
		t.Skip("no java on PATH")
	}
	for _, tc := range []struct{ name, layout, security string }{
		{"default", "default", ""}, {"default-sasl_ssl", "default", "sasl_ssl"}, {"kraft", "kraft", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := layout.Get(tc.layout)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			a, err := kafkadist.Build(ctx, l.KafkaVersion, kafkadist.DefaultCacheDir, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			r, _ := kafkadist.Lookup(l.KafkaVersion)
			t.Logf("kafka %s: %d jars, %.1f MB, %s", l.KafkaVersion, a.Jars, float64(a.Bytes)/1e6, a.Path)
			if a.Jars != len(r.Lock) {
				t.Errorf("%d jars in libs/, the lock has %d", a.Jars, len(r.Lock))
			}
			dir := t.TempDir()
			if out, err := exec.Command("tar", "-xzf", a.Path, "-C", dir).CombinedOutput(); err != nil {
				t.Fatalf("unpack: %v\n%s", err, out)
			}
			home := filepath.Join(dir, r.TopDir())
			inv := labInventory(t, l, a)
			data := filepath.Join(dir, "data")
			inv.Kafka.Properties["log.dirs"] = data
			if tc.security != "" {
				inv.Kafka.Security = inventory.KafkaSecurity(tc.security)
			}
			h := inv.HostsWith(inventory.RoleKafka)[0]
			if inv.Kafka.TLS() {
				// The files the kafka role writes, made as provision makes
				// them, where this test can put them.
				caPEM, err := kafkatls.NewCA("lab-test")
				if err != nil {
					t.Fatal(err)
				}
				ca, err := kafkatls.ParseCA(caPEM, nil)
				if err != nil {
					t.Fatal(err)
				}
				dns, ips := kafka.CertNames(h)
				b, err := ca.Issue(h.Name, dns, ips)
				if err != nil {
					t.Fatal(err)
				}
				ks, ts := filepath.Join(dir, "broker.pem"), filepath.Join(dir, "ca.pem")
				if err := os.WriteFile(ks, b, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(ts, ca.CertPEM, 0o644); err != nil {
					t.Fatal(err)
				}
				inv.Kafka.Properties["ssl.keystore.location"] = ks
				inv.Kafka.Properties["ssl.truststore.location"] = ts
			}
			groups, err := kafka.Properties(inv, h)
			if err != nil {
				t.Fatal(err)
			}
			var conf strings.Builder
			want := map[string]string{}
			for _, g := range groups {
				for _, p := range g.Properties {
					conf.WriteString(p.Key + "=" + p.Value + "\n")
					want[p.Key] = p.Value
				}
			}
			config := filepath.Join(dir, "server.properties")
			if err := os.WriteFile(config, []byte(conf.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(os.Environ(), "LOG_DIR="+filepath.Join(dir, "logs"), "KAFKA_HEAP_OPTS=-Xmx256m -Xms256m")
			if inv.Kafka.Mode == inventory.KafkaKRaft {
				id, _ := kafka.NewClusterID()
				cmd := exec.CommandContext(ctx, filepath.Join(home, "bin", "kafka-storage.sh"), "format", "--cluster-id", id, "--config", config)
				cmd.Env = env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("kafka-storage.sh format: %v\n%s", err, out)
				}
				if _, err := os.Stat(filepath.Join(data, "meta.properties")); err != nil {
					t.Fatalf("format wrote no meta.properties: %v", err)
				}
			}
			// The broker names its peers by host name: in the broker's own
			// mount namespace they all are this machine.
			hosts := filepath.Join(dir, "hosts")
			var hl strings.Builder
			hl.WriteString("127.0.0.1 localhost")
			for _, m := range l.Machines {
				hl.WriteString(" " + m.Name)
			}
			if err := os.WriteFile(hosts, []byte(hl.String()+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			env = append(env, "TL_HOSTS="+hosts, "TL_HOME="+home)
			// ZooKeeper mode logs its configuration once connected to
			// ZooKeeper: a standalone server from the distribution's own
			// zookeeper jar serves it, in the same namespace.
			if inv.Kafka.Mode == inventory.KafkaZooKeeper {
				zk := filepath.Join(dir, "zoo.cfg")
				if err := os.WriteFile(zk, []byte("dataDir="+filepath.Join(dir, "zk")+"\nclientPort=2181\nadmin.enableServer=false\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				env = append(env, "TL_ZK="+zk)
			}
			ready := regexp.MustCompile(`started \(kafka\.server\.KafkaServer\)`)
			if inv.Kafka.Mode == inventory.KafkaKRaft {
				ready = regexp.MustCompile(`Awaiting socket connections on \S*:` + strconv.Itoa(kafka.ControllerPort) + `\b`)
			}
			logged := startAndReadConfig(ctx, t, env, home, config, ready)
			perListener := 0
			for k, v := range want {
				if strings.HasPrefix(k, "listener.name.") {
					// Per-listener settings are not among the values
					// logged; the listener's start shows they took.
					perListener++
					continue
				}
				got, ok := logged[k]
				if !ok {
					t.Errorf("%s: not in the broker's KafkaConfig values", k)
					continue
				}
				if normalize(got) != normalize(v) {
					t.Errorf("%s: the broker runs with %q, trafficlab set %q", k, got, v)
				}
			}
			t.Logf("%d keys set by trafficlab, all in the broker's effective configuration (%d per-listener ones not logged); then %s", len(want)-perListener, perListener, ready)
		})
	}
}

// labInventory is the inventory lab up writes for layout l with artifact a.
func labInventory(t *testing.T, l layout.Layout, a kafkadist.Artifact) *inventory.Inventory {
	p := layout.Params{
		Prefix: 24, VIP: netip.MustParseAddr("10.231.0.254"), NTPServer: netip.MustParseAddr("10.231.0.1"),
		KeyFile: "/nonexistent/id_ed25519", KnownHosts: "/nonexistent/known_hosts",
		KafkaArtifact: a.Path, KafkaSHA512: a.SHA512,
	}
	for i := range l.Machines {
		p.Addresses = append(p.Addresses, netip.AddrFrom4([4]byte{10, 231, 0, byte(10 + i)}))
	}
	b, err := l.Inventory(p)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.Parse("lab.yaml", b, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// startAndReadConfig starts the broker in a network namespace of its own,
// reads the first KafkaConfig values block it logs, waits for a line with
// ready, and stops it.
func startAndReadConfig(ctx context.Context, t *testing.T, env []string, home, config string, ready *regexp.Regexp) map[string]string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	script := `set -e
mount --bind "$TL_HOSTS" /etc/hosts
ip link set lo up
if [ -n "${TL_ZK:-}" ]; then
  KAFKA_LOG4J_OPTS="-Dlog4j.configuration=file:$TL_HOME/config/tools-log4j.properties" \
    "$TL_HOME/bin/kafka-run-class.sh" org.apache.zookeeper.server.ZooKeeperServerMain "$TL_ZK" &
fi
exec "$TL_HOME/bin/kafka-server-start.sh" "$0"`
	cmd := exec.CommandContext(ctx, "unshare", "--net", "--mount", "--", "sh", "-c", script, config)
	cmd.Env = env
	// The broker and ZooKeeper make one process group, stopped together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, pr); cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}()
	values := map[string]string{}
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	// The first KafkaConfig values block, and ready, which may come
	// before it (a KRaft controller binds its listener first).
	in, done, isReady := false, false, false
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		isReady = isReady || ready.MatchString(line)
		switch {
		case strings.Contains(line, "Fatal error") || strings.Contains(line, "Exiting Kafka"):
			t.Fatalf("the broker stopped:\n%s", tailLines(out.String(), 60))
		case !done && strings.Contains(line, "KafkaConfig values:"):
			in = true
		case in && !strings.HasPrefix(line, "\t"):
			in, done = false, true // the block ends with the first line that is not a value
		case in:
			k, v, ok := strings.Cut(strings.TrimSpace(line), " = ")
			if ok {
				values[k] = v
			} else if k, ok := strings.CutSuffix(strings.TrimSpace(line), " ="); ok {
				values[k] = ""
			}
		}
		if done && isReady {
			return values
		}
	}
	if len(values) == 0 {
		t.Fatalf("the broker logged no KafkaConfig values:\n%s", tailLines(out.String(), 60))
	}
	t.Fatalf("the broker never logged %s:\n%s", ready, tailLines(out.String(), 60))
	return values
}

func tailLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// normalize makes a value comparable whether the broker prints it as a
// list ([a, b]) or as the comma-separated string it was given.
func normalize(v string) string {
	v = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), "["), "]")
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return strings.Join(parts, ",")
}

//go:build lab

package filebeatdist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/filebeat"
	"github.com/trafficlab/trafficlab/provision/role/web"
	"github.com/trafficlab/trafficlab/templates"
)

// TestBuiltFilebeatShipsToKafka builds filebeat (or takes it from the
// cache `lab up` uses), checks the tarball has Elastic's layout, and runs
// it with the filebeat role's own filebeat.yml against an in-process Kafka
// on the loopback: every access-log line arrives once, with required_acks
// -1, and a restart ships nothing twice.
func TestBuiltFilebeatShipsToKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cache := os.Getenv("TRAFFICLAB_ARTIFACTS")
	if cache == "" {
		cache = DefaultCacheDir
	}
	a, err := Build(ctx, cache, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(a.Path, "/filebeat-"+Version+"-linux-x86_64.tar.gz") && !strings.HasSuffix(a.Path, ".tar.gz") {
		t.Errorf("artifact %s is not named like Elastic's", a.Path)
	}
	again, err := Build(ctx, cache, nil)
	if err != nil || again != a {
		t.Errorf("second build: %+v, %v; want the cached %+v", again, err, a)
	}
	home := unpack(t, a.Path)

	// Kafka on the loopback, with the log topic.
	const topic = "nginxlog"
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	broker := kc.ListenAddrs()[0]

	// The role's configuration, pointed at this Kafka and a log of ours.
	dir := t.TempDir()
	conf, data, logs, access := filepath.Join(dir, "conf"), filepath.Join(dir, "data"), filepath.Join(dir, "logs"), filepath.Join(dir, "access.log")
	for _, d := range []string{conf, data, logs} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	yml := roleConfig(t)
	yml = regexp.MustCompile(`(?m)^    - "kafka-\d:9092"\n`).ReplaceAllString(yml, "")
	yml = strings.Replace(yml, "  hosts:\n", "  hosts:\n    - \""+broker+"\"\n", 1)
	yml = strings.Replace(yml, web.AccessLog, access, 1)
	if err := os.WriteFile(filepath.Join(conf, "filebeat.yml"), []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", filepath.Join(conf, "filebeat.yml"), "--path.home", home, "--path.config", conf, "--path.data", data, "--path.logs", logs}

	out, err := exec.CommandContext(ctx, filepath.Join(home, "filebeat"), append([]string{"test", "config"}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Config OK") {
		t.Fatalf("filebeat test config: %v\n%s\n%s", err, out, yml)
	}

	lines := []string{
		`203.0.113.7 10.231.0.13 [25/Nov/2026:03:40:00 +0000] "GET / HTTP/1.1" 200 180 420 78 0.001 "-" "curl/7.88.1" "www.sc.com"`,
		`203.0.113.8 10.231.0.14 [25/Nov/2026:03:40:01 +0000] "GET /__trafficlab/probe/abc HTTP/1.1" 200 22 250 90 0.000 "-" "trafficlab" "www.sc.com"`,
	}
	appendLines(t, access, lines...)
	stop := start(t, ctx, home, args)

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := consume(t, ctx, cl, 2, 60*time.Second)
	settled(t, 2)
	stop()

	// Restarted after one more line: only that line is shipped.
	more := `198.51.100.1 10.231.0.13 [25/Nov/2026:03:41:00 +0000] "GET /x HTTP/1.1" 404 0 150 80 0.000 "-" "-" "www.sc.com"`
	appendLines(t, access, more)
	stop = start(t, ctx, home, args)
	got = append(got, consume(t, ctx, cl, 1, 60*time.Second)...)
	// Anything shipped twice would arrive now.
	extra := consume(t, ctx, cl, 0, 5*time.Second)
	settled(t, 1)
	stop()
	if len(extra) != 0 {
		t.Errorf("shipped again after the restart: %q", extra)
	}
	// Partitions are read in any order: compare the lines as a set.
	want := map[string]int{}
	for _, l := range append(lines, more) {
		want[l]++
	}
	var ev nginxlog.Event
	for i, v := range got {
		if err := ev.Decode(v); err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, v)
		}
		if want[string(ev.Message)]--; want[string(ev.Message)] < 0 || string(ev.Host) != "kafka-1" {
			t.Errorf("event %d: message %q host %q, unexpected or twice", i, ev.Message, ev.Host)
		}
	}
}

// roleConfig is the filebeat role's filebeat.yml for the seed's kafka-1.
func roleConfig(t *testing.T) string {
	inv, err := inventory.LoadEnv(filepath.Join("..", "..", "inventory", "examples", "seed-centos.yaml"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	var host inventory.Host
	for _, h := range inv.Hosts {
		if h.Name == "kafka-1" {
			host = h
		}
	}
	files, err := filebeat.New().Files(&role.Context{Inventory: inv, Host: host, OS: facts.OS{Family: facts.Debian}, Templates: set})
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Path != filebeat.ConfigFile {
		t.Fatalf("first file %s", files[0].Path)
	}
	return string(files[0].Content)
}

// unpack extracts the tarball as the role does (--strip-components=1)
// and checks Elastic's layout.
func unpack(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	dir := t.TempDir()
	top := TopDir(Version, "amd64")
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rest, ok := strings.CutPrefix(h.Name, top+"/")
		if !ok {
			t.Fatalf("%s is outside %s/", h.Name, top)
		}
		if rest == "" || h.Typeflag == tar.TypeDir {
			continue
		}
		seen[rest] = true
		f, err := os.OpenFile(filepath.Join(dir, rest), os.O_CREATE|os.O_WRONLY, os.FileMode(h.Mode))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for _, want := range []string{"filebeat", "filebeat.yml", "LICENSE.txt", "NOTICE.txt", "README.md"} {
		if !seen[want] {
			t.Errorf("the tarball lacks %s/%s", top, want)
		}
	}
	return dir
}

func appendLines(t *testing.T, path string, lines ...string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// start runs filebeat as the unit does, until the returned stop.
func start(t *testing.T, ctx context.Context, home string, args []string) (stop func()) {
	cmd := exec.CommandContext(ctx, filepath.Join(home, "filebeat"), append([]string{"--environment", "systemd"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		// filebeat stops within a second of SIGTERM; one that does not
		// is asked for its goroutines (SIGQUIT: Go's runtime prints them
		// and exits), so the failure says where it hung.
		waited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(waited) }()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-waited:
		case <-time.After(30 * time.Second):
			t.Errorf("filebeat did not stop within 30s of SIGTERM")
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-waited
			}
		}
		if t.Failed() {
			t.Logf("filebeat's output:\n%s", out.String())
		}
	}
	t.Cleanup(stop)
	return stop
}

// settled waits until filebeat has finished n events (/stats: Kafka's
// acknowledgement processed, the registry updated). Stopped earlier, a
// filebeat 7.17 that has just published can hang in its shutdown and,
// killed, ships the lines again on its next start: at least once.
func settled(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		res, err := http.Get("http://" + filebeat.StatsAddr + "/stats")
		if err == nil {
			var s struct {
				Filebeat struct {
					Events struct{ Active, Done int } `json:"events"`
				} `json:"filebeat"`
			}
			err = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&s)
			res.Body.Close()
			if err == nil && s.Filebeat.Events.Active == 0 && s.Filebeat.Events.Done >= n {
				return
			}
			last = fmt.Sprintf("%+v %v", s.Filebeat.Events, err)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("filebeat did not finish %d events within 30s: %s", n, last)
}

// consume reads until n records arrived (or, for n = 0, until wait ends).
func consume(t *testing.T, ctx context.Context, cl *kgo.Client, n int, wait time.Duration) [][]byte {
	var got [][]byte
	deadline := time.Now().Add(wait)
	for (n == 0 || len(got) < n) && time.Now().Before(deadline) {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Value) })
	}
	if n > 0 && len(got) < n {
		t.Fatalf("%d of %d lines arrived in Kafka within %s", len(got), n, wait)
	}
	return got
}

package evidence

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/role"
)

func TestCollect(t *testing.T) {
	script := new(sshtest.Script).
		OnPrefix("systemctl status", sshtest.Reply{Stdout: "× trafficlab-kafka.service - Apache Kafka\n     Active: failed (Result: exit-code)\n"}).
		OnPrefix("journalctl", sshtest.Reply{Stdout: "2026-12-04T10:00:00+0800 kafka-2 kafka[812]: ERROR Exiting Kafka due to fatal exception\n"}).
		OnPrefix("for f in", sshtest.Reply{Stdout: "==> /var/log/kafka/server.log <==\njava.lang.OutOfMemoryError: Java heap space\n"})
	srv := sshtest.New(t, sshtest.WithHandler(script.Handler()))
	cfg := srv.Config(t)
	cfg.Name = "kafka-2"
	cl, err := remote.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	runDir := t.TempDir()
	os.WriteFile(filepath.Join(runDir, "kafka-2.log"), []byte("$ systemctl restart trafficlab-kafka.service\n---- exit 1\n"), 0o600)
	dir := filepath.Join(t.TempDir(), "evidence", "up-20261204-100000")
	hosts := []Host{
		{Name: "kafka-2", Roles: []string{"kafka"},
			Logs:  role.Logs{Units: []string{"trafficlab-kafka.service"}, Files: []string{"/var/log/kafka/*.log"}},
			Files: []role.File{{Path: "/etc/kafka/server.properties", Content: []byte("sasl.password=********\n")}}},
		{Name: "kafka-3", Roles: []string{"kafka"}, Logs: role.Logs{Units: []string{"trafficlab-kafka.service"}}},
	}
	tarball, err := Collect(context.Background(), sshtest.Clients{"kafka-2": cl}, dir, runDir, "provision up failed", hosts)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"README.txt":                                   "provision up failed",
		"kafka-2/status.txt":                           "Active: failed",
		"kafka-2/journal.txt":                          "Exiting Kafka due to fatal exception",
		"kafka-2/logfiles.txt":                         "OutOfMemoryError",
		"kafka-2/commands.log":                         "systemctl restart trafficlab-kafka.service",
		"kafka-2/rendered/etc/kafka/server.properties": "sasl.password=********",
		"kafka-3/ERROR.txt":                            "connection refused",
	}
	for name, text := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.Contains(string(b), text) {
			t.Errorf("%s: %q (%v), want it to say %q", name, b, err, text)
		}
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
	cmds := script.Commands()
	if !slices.Contains(cmds, "journalctl --no-pager -o short-iso -n 200 -u trafficlab-kafka.service") {
		t.Errorf("commands run: %q", cmds)
	}

	if tarball != dir+".tar.gz" {
		t.Errorf("tarball %s", tarball)
	}
	if fi, err := os.Stat(tarball); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tarball: %v %v", fi, err)
	}
	f, _ := os.Open(tarball)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	for name := range want {
		if !slices.Contains(names, "up-20261204-100000/"+name) {
			t.Errorf("tarball lacks %s: %v", name, names)
		}
	}
}

func TestCommands(t *testing.T) {
	if got := Status([]string{"nginx.service", "keepalived.service"}); got != "systemctl status --no-pager --full --lines=0 nginx.service keepalived.service; true" {
		t.Errorf("Status: %s", got)
	}
	if got := Journal([]string{"a.service"}, 50); got != "journalctl --no-pager -o short-iso -n 50 -u a.service" {
		t.Errorf("Journal: %s", got)
	}
	// Run for real: a pattern with and without matches.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "server.log"), []byte("1\n2\n3\n"), 0o600)
	b, err := exec.Command("sh", "-c", Tails([]string{dir + "/*.log", dir + "/missing.log"}, 2)).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "==> " + dir + "/server.log <==\n2\n3\n==> " + dir + "/missing.log: no such file <==\n"
	if out := string(b); out != want {
		t.Errorf("Tails printed %q, want %q", b, want)
	}
}

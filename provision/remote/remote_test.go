package remote_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
)

func connect(t *testing.T, cfg remote.Config) *remote.Client {
	t.Helper()
	c, err := remote.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRunReportsExitCodeAndStderr(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.Name = "kafka-1"
	c := connect(t, cfg)

	res, err := c.Run(context.Background(), "echo out; echo err1 >&2; echo err2 >&2; exit 3")
	var exit *remote.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("want *ExitError, got %v", err)
	}
	want := `kafka-1: "echo out; echo err1 >&2; echo err2 >&2; exit 3": exit status 3: err1` + "\nerr2"
	if err.Error() != want {
		t.Errorf("error:\n got %s\nwant %s", err, want)
	}
	if exit.Code != 3 || res.ExitCode != 3 || string(res.Stdout) != "out\n" || string(res.Stderr) != "err1\nerr2\n" {
		t.Errorf("got code %d/%d stdout %q stderr %q", exit.Code, res.ExitCode, res.Stdout, res.Stderr)
	}

	res, err = c.Run(context.Background(), "printf ok")
	if err != nil || string(res.Stdout) != "ok" || res.ExitCode != 0 || res.Duration <= 0 {
		t.Errorf("got %+v, %v", res, err)
	}
}

func TestExitErrorQuotesOnlyTheStderrTail(t *testing.T) {
	c := connect(t, sshtest.New(t).Config(t))
	_, err := c.Run(context.Background(), "seq 1 100 >&2; exit 1")
	msg := err.Error()
	if !strings.Contains(msg, ": exit status 1: 81\n82\n") {
		t.Errorf("error should start the tail at line 81: %s", msg)
	}
	if strings.Contains(msg, "\n80\n") || !strings.HasSuffix(msg, "\n100") {
		t.Errorf("error should hold the last 20 lines only: %s", msg)
	}
}

func TestRunPipesStdin(t *testing.T) {
	c := connect(t, sshtest.New(t).Config(t))
	res, err := c.Run(context.Background(), "tr a-z A-Z", remote.WithStdin(strings.NewReader("secret data\n")))
	if err != nil || string(res.Stdout) != "SECRET DATA\n" {
		t.Fatalf("got %q, %v", res.Stdout, err)
	}
}

// killTest runs a command that would create a file after a second, stops
// it early with stop, and proves the remote process is gone and the file
// never appears.
func killTest(t *testing.T, run func(c *remote.Client, cmd string) error, wantErr error) {
	t.Parallel()
	c := connect(t, sshtest.New(t).Config(t))
	dir := t.TempDir()
	pidFile, marker := filepath.Join(dir, "pid"), filepath.Join(dir, "finished")
	cmd := fmt.Sprintf("echo $$ > %s; sleep 1; touch %s", pidFile, marker)

	start := time.Now()
	err := run(c, cmd)
	if !errors.Is(err, wantErr) {
		t.Fatalf("want %v, got %v", wantErr, err)
	}
	if !strings.Contains(err.Error(), c.Name()) || !strings.Contains(err.Error(), "sleep 1") {
		t.Errorf("error should name host and command: %v", err)
	}
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("Run returned after %s, want soon after the cancel", d)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	for syscall.Kill(pid, 0) == nil {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("remote process %d still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(start.Add(1500 * time.Millisecond)))
	if _, err := os.Stat(marker); err == nil {
		t.Error("the killed command still finished")
	}
	// The connection is still usable.
	if _, err := c.Run(context.Background(), "true"); err != nil {
		t.Error(err)
	}
}

func TestRunTimeoutKillsRemoteProcess(t *testing.T) {
	killTest(t, func(c *remote.Client, cmd string) error {
		_, err := c.Run(context.Background(), cmd, remote.WithTimeout(300*time.Millisecond))
		if err != nil && !strings.Contains(err.Error(), "timed out after 300ms") {
			t.Errorf("error should say it timed out: %v", err)
		}
		return err
	}, context.DeadlineExceeded)
}

func TestRunCancelKillsRemoteProcess(t *testing.T) {
	killTest(t, func(c *remote.Client, cmd string) error {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		_, err := c.Run(ctx, cmd)
		return err
	}, context.Canceled)
}

func TestCommandTimeoutFromConfig(t *testing.T) {
	cfg := sshtest.New(t).Config(t)
	cfg.CommandTimeout = 200 * time.Millisecond
	c := connect(t, cfg)
	if _, err := c.Run(context.Background(), "sleep 5"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want deadline exceeded, got %v", err)
	}
	if _, err := c.Run(context.Background(), "sleep 0.4", remote.WithTimeout(0)); err != nil {
		t.Fatalf("WithTimeout(0) should lift the default: %v", err)
	}
}

func TestConcurrentRunsShareOneConnection(t *testing.T) {
	srv := sshtest.New(t)
	c := connect(t, srv.Config(t))
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		wg.Go(func() {
			res, err := c.Run(context.Background(), fmt.Sprintf("sleep 0.1; echo %d", i))
			if err == nil && string(res.Stdout) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("command %d printed %q", i, res.Stdout)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.Logins(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestUploadIsAtomicAndReadFileReadsIt(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	c := connect(t, cfg)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	big := make([]byte, 3<<20)
	rand.Read(big)
	for _, content := range [][]byte{[]byte("broker.id=1\n"), big} {
		if err := c.Upload(ctx, path, content, 0o640, ""); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("uploaded %d bytes, file has %d (%v)", len(content), len(got), err)
		}
		read, err := c.ReadFile(ctx, path)
		if err != nil || !bytes.Equal(read, content) {
			t.Fatalf("ReadFile returned %d bytes, want %d (%v)", len(read), len(content), err)
		}
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temp files left behind: %v", entries)
	}

	_, err := c.ReadFile(ctx, filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), cfg.Name) {
		t.Errorf("missing file: want a host-naming fs.ErrNotExist error, got %v", err)
	}
	err = c.Upload(ctx, filepath.Join(dir, "no-such-dir", "f"), []byte("x"), 0o644, "")
	if err == nil || !strings.Contains(err.Error(), cfg.Name) || !strings.Contains(err.Error(), "no-such-dir/f") {
		t.Errorf("upload into a missing directory: %v", err)
	}
}

func TestUploadSetsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	srv := sshtest.New(t)
	c := connect(t, srv.Config(t))
	dir := t.TempDir()
	// More uploads at once than the client opens sessions: each needs its
	// SFTP session and a command, which must not starve each other.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			path := filepath.Join(dir, fmt.Sprintf("zoo-%d.cfg", i))
			if err := c.Upload(ctx, path, []byte("tickTime=2000\n"), 0o600, "nobody:nogroup"); err != nil {
				t.Error(err)
				return
			}
			fi, _ := os.Stat(path)
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != 65534 || fi.Mode().Perm() != 0o600 {
				t.Errorf("owner uid %d mode %v, want nobody and 0600", st.Uid, fi.Mode().Perm())
			}
		})
	}
	wg.Wait()
	if entries, _ := os.ReadDir(dir); len(entries) != 12 {
		t.Errorf("%d files in the directory, want 12", len(entries))
	}
}

// sudoServer is a host whose login user deploy needs sudo with a password.
func sudoServer(t *testing.T, password string) (*sshtest.Server, remote.Config) {
	srv := sshtest.New(t, sshtest.WithUser("deploy"), sshtest.WithHandler(sshtest.Sudo(password, sshtest.ShellHandler())))
	cfg := srv.Config(t)
	cfg.Name = "web-1"
	cfg.SudoPassword = password
	cfg.LogDir = filepath.Join(t.TempDir(), "logs")
	return srv, cfg
}

func TestSudoPasswordNeverLeaks(t *testing.T) {
	const password = "pa55-w0rd-xyz"
	srv, cfg := sudoServer(t, password)
	c := connect(t, cfg)
	ctx := context.Background()

	// wc counts 8 bytes only if neither the password nor a marker reached
	// the command's stdin.
	res, err := c.Run(ctx, "wc -c; echo done >&2", remote.WithStdin(strings.NewReader("payload\n")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(res.Stdout)) != "8" || string(res.Stderr) != "done\n" {
		t.Errorf("the command should see only the caller's stdin and no sudo prompt: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	if _, err := c.Run(ctx, "exit 7"); err == nil || strings.Contains(err.Error(), password) {
		t.Errorf("want exit error without the password, got %v", err)
	}

	// Upload and ReadFile go through sudo too.
	dir := t.TempDir()
	path := filepath.Join(dir, "nginx.conf")
	if err := c.Upload(ctx, path, []byte("events {}\n"), 0o644, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := c.ReadFile(ctx, path); err != nil || string(got) != "events {}\n" {
		t.Errorf("ReadFile = %q, %v", got, err)
	}
	if _, err := c.ReadFile(ctx, filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file through sudo: %v", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("uploaded file: %v %v", fi, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temp files left in the target directory: %v", entries)
	}

	for _, cmd := range srv.Commands() {
		if strings.Contains(cmd, password) {
			t.Errorf("password on a command line: %s", cmd)
		}
		if !strings.HasPrefix(cmd, "sudo -S ") && !strings.HasPrefix(cmd, "sudo -n ") {
			t.Errorf("command not run through sudo: %s", cmd)
		}
		// Uploads stage beside their target, never in shared /tmp.
		if strings.Contains(cmd, "/tmp/trafficlab") {
			t.Errorf("an upload staged in /tmp: %s", cmd)
		}
	}
	log, err := os.ReadFile(filepath.Join(cfg.LogDir, "web-1.log"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(log, []byte(password)) {
		t.Error("password in the log file")
	}
	if bytes.Contains(log, []byte("payload")) {
		t.Error("stdin in the log file")
	}
	if bytes.Contains(log, []byte("events {}")) {
		t.Error("file content read by ReadFile in the log file")
	}
}

func TestSudoWrongPasswordIsReportedAndStdinIsNotTried(t *testing.T) {
	srv, cfg := sudoServer(t, "right")
	cfg.SudoPassword = "wrong"
	c := connect(t, cfg)
	// If the caller's stdin ever reached sudo, its first line would be
	// taken as the next password attempt and succeed.
	_, err := c.Run(context.Background(), "touch /nonexistent/should-not-run", remote.WithStdin(strings.NewReader("right\n")))
	var exit *remote.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "sudo rejected the password of user deploy") {
		t.Fatalf("want a sudo password error, got %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("error shows the password: %v", err)
	}
	if n := len(srv.Commands()); n != 1 {
		t.Errorf("%d commands, want 1", n)
	}
}

func TestPasswordlessSudoAndWithoutSudo(t *testing.T) {
	srv := sshtest.New(t, sshtest.WithUser("deploy"), sshtest.WithHandler(sshtest.Sudo("", sshtest.ShellHandler())))
	c := connect(t, srv.Config(t))
	ctx := context.Background()
	res, err := c.Run(ctx, "echo 'it''s'")
	if err != nil || string(res.Stdout) != "its\n" {
		t.Fatalf("got %q, %v", res.Stdout, err)
	}
	if _, err := c.Run(ctx, "echo plain", remote.WithoutSudo()); err != nil {
		t.Fatal(err)
	}
	want := []string{`sudo -n -- sh -c 'echo '\''it'\'''\''s'\'''`, "echo plain"}
	if got := srv.Commands(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("commands:\n got %q\nwant %q", got, want)
	}
}

func TestCommandLog(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.Name = "kafka-2"
	cfg.LogDir = filepath.Join(t.TempDir(), "logs")
	c := connect(t, cfg)
	c.Run(context.Background(), "echo hello-out; echo hello-err >&2; exit 4")
	c.Run(context.Background(), "printf second")

	path := filepath.Join(cfg.LogDir, "kafka-2.log")
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"$ echo hello-out; echo hello-err >&2; exit 4\n", "---- stdout\nhello-out\n", "---- stderr\nhello-err\n", "---- exit 4 after ", "$ printf second\n", "second\n---- exit 0 after "} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	fi, _ := os.Stat(path)
	di, _ := os.Stat(cfg.LogDir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Errorf("log mode %v, dir mode %v; want 0600 and 0700", fi.Mode().Perm(), di.Mode().Perm())
	}
}

func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(conn, conn)
				conn.Close()
			}()
		}
	}()
	return ln.Addr().String()
}

func TestDialThroughTheConnection(t *testing.T) {
	srv := sshtest.New(t, sshtest.WithForwarding(true))
	c := connect(t, srv.Config(t))
	addr := echoServer(t)

	conn, err := c.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintln(conn, "ping")
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Fatalf("echo returned %q, %v", line, err)
	}
	if got := srv.Forwards(); len(got) != 1 || got[0] != addr {
		t.Errorf("forwards %v, want [%s]", got, addr)
	}
	if _, err := c.Dial("tcp", "192.0.2.1:9092"); err == nil || !strings.Contains(err.Error(), c.Name()) {
		t.Errorf("a refused forward should fail naming the host: %v", err)
	}
}

// A forwarded connection honours deadlines (database drivers set them on
// every query): a read past its deadline fails instead of hanging.
func TestDialedConnectionDeadline(t *testing.T) {
	srv := sshtest.New(t, sshtest.WithForwarding(true))
	c := connect(t, srv.Config(t))
	conn, err := c.Dial("tcp", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatalf("SetDeadline: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := conn.Read(make([]byte, 1)) // the echo server says nothing unasked
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the read past the deadline returned data")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the read past the deadline still hangs")
	}
}

func TestBastionChain(t *testing.T) {
	bastion1 := sshtest.New(t, sshtest.WithForwarding(true))
	bastion2 := sshtest.New(t, sshtest.WithForwarding(true))
	target := sshtest.New(t)
	b1, b2, cfg := bastion1.Config(t), bastion2.Config(t), target.Config(t)
	b2.Bastion = &b1
	cfg.Bastion = &b2

	c := connect(t, cfg)
	res, err := c.Run(context.Background(), "echo behind two bastions")
	if err != nil || string(res.Stdout) != "behind two bastions\n" {
		t.Fatalf("got %q, %v", res.Stdout, err)
	}
	if got := bastion1.Forwards(); len(got) != 1 || got[0] != bastion2.Addr() {
		t.Errorf("bastion1 forwarded to %v, want [%s]", got, bastion2.Addr())
	}
	if got := bastion2.Forwards(); len(got) != 1 || got[0] != target.Addr() {
		t.Errorf("bastion2 forwarded to %v, want [%s]", got, target.Addr())
	}
	if len(bastion1.Commands())+len(bastion2.Commands()) != 0 {
		t.Error("commands ran on a bastion")
	}
}

func TestChangedHostKeyIsRefusedWithFileAndLine(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.Name = "lb-1"
	cfg.RetryFor = 10 * time.Second
	old := sshtest.NewSigner(t)
	known := "# managed by hand\n" + knownhosts.Line([]string{"10.0.0.9:22"}, old.PublicKey()) + "\n" +
		knownhosts.Line([]string{srv.Addr()}, old.PublicKey()) + "\n"
	if err := os.WriteFile(cfg.KnownHosts, []byte(known), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, policy := range []remote.HostKeyPolicy{remote.AcceptNew, remote.Strict} {
		cfg.HostKeyPolicy = policy
		start := time.Now()
		_, err := remote.Connect(context.Background(), cfg)
		want := fmt.Sprintf("lb-1: host key for %s changed: it does not match %s:3 (possible man-in-the-middle; remove that line if the host was rebuilt)", srv.Addr(), cfg.KnownHosts)
		if err == nil || err.Error() != want {
			t.Errorf("%v:\n got %v\nwant %s", policy, err, want)
		}
		var hk *remote.HostKeyError
		if !errors.As(err, &hk) {
			t.Errorf("want *HostKeyError, got %T", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("a host key mismatch was retried for %s", d)
		}
	}
	if data, _ := os.ReadFile(cfg.KnownHosts); string(data) != known {
		t.Errorf("known_hosts changed:\n%s", data)
	}
}

func TestStrictRefusesUnknownHost(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.Name = "db-1"
	cfg.HostKeyPolicy = remote.Strict
	for _, content := range []string{"", "other.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBy9vdnK5G9YJ8Ox4zZ8TJfBnBnQAWCgqYk6rNYNwjXm\n"} {
		cfg.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		if content != "" {
			os.WriteFile(cfg.KnownHosts, []byte(content), 0o600)
		}
		_, err := remote.Connect(context.Background(), cfg)
		if err == nil || !strings.HasPrefix(err.Error(), "db-1: host key for "+srv.Addr()+" is unknown") || !strings.Contains(err.Error(), cfg.KnownHosts) {
			t.Errorf("want an unknown-host error naming host and file, got %v", err)
		}
	}
}

func TestAcceptNewRecordsTheKey(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.KnownHosts = filepath.Join(t.TempDir(), "ssh", "known_hosts")
	cfg.HostKeyPolicy = remote.AcceptNew
	connect(t, cfg).Close()

	data, err := os.ReadFile(cfg.KnownHosts)
	want := knownhosts.Line([]string{srv.Addr()}, srv.HostKey()) + "\n"
	if err != nil || string(data) != want {
		t.Fatalf("known_hosts = %q (%v), want %q", data, err, want)
	}
	if !strings.HasPrefix(want, "[127.0.0.1]:"+strconv.Itoa(srv.Port())+" ") {
		t.Errorf("non-22 port should be recorded as [host]:port: %s", want)
	}
	cfg.HostKeyPolicy = remote.Strict
	connect(t, cfg).Close()
	if data2, _ := os.ReadFile(cfg.KnownHosts); !bytes.Equal(data, data2) {
		t.Error("a known key was recorded again")
	}
}

// A host with several key types (every OpenSSH server) must be checked
// against the type known_hosts has, not reported as changed.
func TestKnownKeyTypeIsPreferred(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSigner, err := ssh.NewSignerFromKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ed := sshtest.NewSigner(t)
	srv := sshtest.New(t, sshtest.WithHostKey(ed), sshtest.WithHostKey(ecSigner))
	connect(t, srv.Config(t)) // known_hosts holds only the ed25519 key
}

func TestConnectRetriesUntilTheHostListens(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.RetryFor = 10 * time.Second
	srv.Stop()
	time.AfterFunc(time.Second, srv.Start)

	start := time.Now()
	c := connect(t, cfg)
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("connected after %s, before the server listened", d)
	}
	if _, err := c.Run(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}
}

func TestConnectGivesUpAfterRetryFor(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.Name = "zk-3"
	cfg.RetryFor = time.Second
	srv.Stop()

	start := time.Now()
	_, err := remote.Connect(context.Background(), cfg)
	d := time.Since(start)
	if err == nil || !strings.HasPrefix(err.Error(), "zk-3: gave up connecting to "+srv.Addr()+" after 1") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("want a give-up error naming host, address and cause, got %v", err)
	}
	if d < time.Second || d > 3*time.Second {
		t.Errorf("gave up after %s, want about 1s", d)
	}
}

func TestRefusedLoginIsNotRetried(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.KeyFiles = sshtest.New(t).Config(t).KeyFiles // another server's key
	cfg.RetryFor = 10 * time.Second
	start := time.Now()
	_, err := remote.Connect(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "login as root@"+srv.Addr()+" refused") {
		t.Errorf("want a refused-login error, got %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a refused login was retried for %s", d)
	}
}

func TestRunReconnectsAfterServerRestart(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	cfg.RetryFor = 5 * time.Second
	c := connect(t, cfg)
	if _, err := c.Run(context.Background(), "echo before"); err != nil {
		t.Fatal(err)
	}
	srv.Restart()
	res, err := c.Run(context.Background(), "echo after")
	if err != nil || string(res.Stdout) != "after\n" {
		t.Fatalf("after restart: %q, %v", res.Stdout, err)
	}
	if n := srv.Logins(); n != 2 {
		t.Errorf("%d logins, want 2", n)
	}
}

func TestPoolSharesClients(t *testing.T) {
	bastion := sshtest.New(t, sshtest.WithForwarding(true))
	web1, web2 := sshtest.New(t), sshtest.New(t)
	bcfg := bastion.Config(t)
	bcfg.Name = "jump"
	c1, c2 := web1.Config(t), web2.Config(t)
	c1.Bastion, c2.Bastion = &bcfg, &bcfg
	pool := remote.NewPool(map[string]remote.Config{"web-1": c1, "web-2": c2})
	defer pool.Close()

	var wg sync.WaitGroup
	clients := make([]*remote.Client, 20)
	for i := range clients {
		wg.Go(func() {
			name := []string{"web-1", "web-2"}[i%2]
			c, err := pool.Get(context.Background(), name)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := c.Run(context.Background(), "true"); err != nil {
				t.Error(err)
			}
			clients[i] = c
		})
	}
	wg.Wait()
	for i, c := range clients {
		if c != clients[i%2] {
			t.Fatalf("Get %d returned another client for %s", i, c.Name())
		}
	}
	if clients[0].Name() == clients[1].Name() {
		t.Error("two hosts share a client")
	}
	if web1.Logins() != 1 || web2.Logins() != 1 || bastion.Logins() != 1 {
		t.Errorf("logins web-1 %d web-2 %d bastion %d, want one each", web1.Logins(), web2.Logins(), bastion.Logins())
	}
	if _, err := pool.Get(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown host: %v", err)
	}
	if err := pool.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := clients[0].Run(context.Background(), "true"); !errors.Is(err, remote.ErrClosed) {
		t.Errorf("Run after Pool.Close: %v", err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "''",
		"plain/path-1.2_x": "plain/path-1.2_x",
		"kafka:kafka":      "kafka:kafka",
		"two words":        "'two words'",
		"it's":             `'it'\''s'`,
		"$HOME;rm -rf /":   `'$HOME;rm -rf /'`,
		"a\nb":             "'a\nb'",
	} {
		if got := remote.ShellQuote(in); got != want {
			t.Errorf("ShellQuote(%q) = %s, want %s", in, got, want)
		}
	}
	// The shell gives back exactly what was quoted.
	c := connect(t, sshtest.New(t).Config(t))
	odd := "it's \"$HOME\" `x` \\ \n* ;|&"
	res, err := c.Run(context.Background(), "printf %s "+remote.ShellQuote(odd))
	if err != nil || string(res.Stdout) != odd {
		t.Errorf("round trip: %q, %v", res.Stdout, err)
	}
}

// The agent's keys are offered together with the key files: here the key
// file is not authorised and only the agent's key is.
func TestAgentKeysAreOfferedWithKeyFiles(t *testing.T) {
	srv := sshtest.New(t)
	cfg := srv.Config(t)
	pem, err := os.ReadFile(cfg.KeyFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				agent.ServeAgent(keyring, conn)
				conn.Close()
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)

	cfg.KeyFiles = sshtest.New(t).Config(t).KeyFiles // not authorised here
	if _, err := remote.Connect(context.Background(), cfg); err == nil {
		t.Fatal("connected without the agent")
	}
	cfg.UseAgent = true
	c := connect(t, cfg)
	if _, err := c.Run(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}
}

// A dump-sized output streams to the caller's writer, byte for byte, with
// no sudo marker in it, and stays out of the command log.
func TestRunStreamsStdout(t *testing.T) {
	for _, password := range []string{"", "pa55-w0rd-xyz"} {
		_, cfg := sudoServer(t, password)
		c := connect(t, cfg)
		var out bytes.Buffer
		// 3 MB of numbered lines, then a secret-looking tail.
		res, err := c.Run(context.Background(), "seq 1 400000; echo tail-of-dump", remote.WithStdout(&out))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := exec.Command("sh", "-c", "seq 1 400000; echo tail-of-dump").Output()
		if !bytes.Equal(out.Bytes(), want) {
			t.Errorf("sudo password %q: streamed %d bytes (first %q), want %d", password, out.Len(), firstBytes(out.Bytes()), len(want))
		}
		if len(res.Stdout) != 0 {
			t.Errorf("Result.Stdout holds %d bytes; the stream should have them", len(res.Stdout))
		}
		log, _ := os.ReadFile(filepath.Join(cfg.LogDir, cfg.Name+".log"))
		if bytes.Contains(log, []byte("399999")) {
			t.Error("the streamed output is in the command log")
		}
		// A writer that fails makes the run fail.
		if _, err := c.Run(context.Background(), "seq 1 1000", remote.WithStdout(failingWriter{})); err == nil || !strings.Contains(err.Error(), "writing its output") {
			t.Errorf("a failing writer: %v", err)
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func firstBytes(b []byte) []byte { return b[:min(len(b), 40)] }

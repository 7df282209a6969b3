// Package sshtest is an in-process SSH server for tests: exec requests go
// to a Go handler (a real shell, a script of canned replies, or your own),
// SFTP is served on the real filesystem, and direct-tcpip forwarding to
// loopback addresses can be enabled so servers can act as bastions.
//
//	srv := sshtest.New(t)
//	c, err := remote.Connect(ctx, srv.Config(t))
package sshtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/trafficlab/trafficlab/provision/remote"
)

// Session is one exec request as a handler sees it.
type Session struct {
	Command string // the command line the client asked to run
	User    string // the login user
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// ExecHandler runs one exec request and returns its exit status. ctx is
// cancelled when the client sends a signal or closes the channel.
type ExecHandler func(ctx context.Context, s Session) int

// Option configures a Server.
type Option func(*Server)

// WithHandler sets the exec handler; the default is ShellHandler.
func WithHandler(h ExecHandler) Option { return func(s *Server) { s.handler = h } }

// WithUser sets the only user that may log in; the default is "root".
func WithUser(name string) Option { return func(s *Server) { s.user = name } }

// WithHostKey adds a host key; the first is what HostKey and Config use.
// The default is one new ed25519 key.
func WithHostKey(k ssh.Signer) Option { return func(s *Server) { s.hostKeys = append(s.hostKeys, k) } }

// WithAuthorizedKey accepts k in addition to the key Config writes.
func WithAuthorizedKey(k ssh.PublicKey) Option {
	return func(s *Server) { s.authorized = append(s.authorized, string(k.Marshal())) }
}

// WithForwarding allows direct-tcpip channels to loopback addresses, which
// makes the server usable as a bastion or for Client.Dial.
func WithForwarding(on bool) Option { return func(s *Server) { s.forwarding = on } }

// WithSFTPServer serves the "sftp" subsystem with a real SFTP server
// binary, such as OpenSSH's /usr/lib/openssh/sftp-server, run as this
// process's user with args, instead of the in-process one: tests of what a
// real server does with modes and umasks.
func WithSFTPServer(binary string, args ...string) Option {
	return func(s *Server) { s.sftpServer = append([]string{binary}, args...) }
}

// Server is an SSH server listening on 127.0.0.1.
type Server struct {
	t          testing.TB
	user       string
	handler    ExecHandler
	forwarding bool
	sftpServer []string // binary and arguments; nil = in-process
	hostKeys   []ssh.Signer
	clientKey  ed25519.PrivateKey
	authorized []string // marshalled public keys
	config     *ssh.ServerConfig
	port       int

	mu       sync.Mutex
	ln       net.Listener
	conns    map[io.Closer]struct{} // open connections, closed by Stop
	commands []string
	forwards []string
	logins   int
	wg       sync.WaitGroup
}

// New starts a server on 127.0.0.1 on a free port; it is shut down when the
// test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	_, clientKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, user: "root", handler: ShellHandler(), clientKey: clientKey, conns: map[io.Closer]struct{}{}}
	for _, o := range opts {
		o(s)
	}
	if len(s.hostKeys) == 0 {
		s.hostKeys = []ssh.Signer{NewSigner(t)}
	}
	clientPub, err := ssh.NewSignerFromKey(clientKey)
	if err != nil {
		t.Fatal(err)
	}
	s.authorized = append(s.authorized, string(clientPub.PublicKey().Marshal()))
	s.config = &ssh.ServerConfig{PublicKeyCallback: s.checkKey}
	for _, k := range s.hostKeys {
		s.config.AddHostKey(k)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = ln.Addr().(*net.TCPAddr).Port
	s.serve(ln)
	t.Cleanup(func() {
		s.Stop()
		s.wg.Wait()
	})
	return s
}

// NewSigner returns a new ed25519 key, e.g. for WithHostKey.
func NewSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.port)) }

// Host is the address the server listens on, 127.0.0.1.
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the port the server listens on; it stays the same across Restart.
func (s *Server) Port() int { return s.port }

// HostKey is the server's public host key.
func (s *Server) HostKey() ssh.PublicKey { return s.hostKeys[0].PublicKey() }

// Commands returns every exec request received, in order.
func (s *Server) Commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.commands...)
}

// Logins returns how many SSH connections logged in so far.
func (s *Server) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Forwards returns the destinations of every direct-tcpip channel opened.
func (s *Server) Forwards() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forwards...)
}

// Config returns a client Config for this server: its key file and a
// known_hosts file holding the server's key are written to t.TempDir(), and
// host keys are checked strictly.
func (s *Server) Config(t testing.TB) remote.Config {
	t.Helper()
	dir := t.TempDir()
	block, err := ssh.MarshalPrivateKey(s.clientKey, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "id_ed25519")
	knownHosts := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	line := knownhosts.Line([]string{s.Addr()}, s.HostKey()) + "\n"
	if err := os.WriteFile(knownHosts, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return remote.Config{
		Name:           "sshtest-" + strconv.Itoa(s.port),
		Address:        s.Host(),
		Port:           s.port,
		User:           s.user,
		KeyFiles:       []string{keyFile},
		KnownHosts:     knownHosts,
		HostKeyPolicy:  remote.Strict,
		ConnectTimeout: 5 * time.Second,
	}
}

// Stop closes the listener and every connection, like a host going down.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
	for c := range s.conns {
		c.Close()
	}
	clear(s.conns)
}

// Start listens again on the same port after Stop. It may be called from
// any goroutine; a failure fails the test.
func (s *Server) Start() {
	ln, err := net.Listen("tcp", s.Addr())
	if err != nil {
		s.t.Errorf("sshtest: listen again on %s: %v", s.Addr(), err)
		return
	}
	s.serve(ln)
}

// Restart drops every connection and listens again on the same port, like
// a rebooted host.
func (s *Server) Restart() {
	s.Stop()
	s.Start()
}

func (s *Server) serve(ln net.Listener) {
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.goTrack(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if !s.track(conn) {
				return
			}
			s.goTrack(func() { s.serveConn(conn) })
		}
	})
}

func (s *Server) goTrack(f func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// track registers c to be closed by Stop; it closes c at once and reports
// false if the server is stopped.
func (s *Server) track(c io.Closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c io.Closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) checkKey(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if meta.User() != s.user {
		return nil, fmt.Errorf("sshtest: unknown user %q", meta.User())
	}
	for _, k := range s.authorized {
		if k == string(key.Marshal()) {
			return nil, nil
		}
	}
	return nil, fmt.Errorf("sshtest: key not authorized for %q", meta.User())
}

func (s *Server) serveConn(conn net.Conn) {
	defer s.untrack(conn)
	sconn, chans, reqs, err := ssh.NewServerConn(conn, s.config)
	if err != nil {
		return
	}
	defer sconn.Close()
	s.mu.Lock()
	s.logins++
	s.mu.Unlock()
	s.goTrack(func() { ssh.DiscardRequests(reqs) })
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			s.goTrack(func() { s.session(sconn.User(), nc) })
		case "direct-tcpip":
			s.goTrack(func() { s.forward(nc) })
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
}

func (s *Server) session(user string, nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // the channel closed: whatever runs must stop
	started := false
	for req := range reqs {
		switch {
		case req.Type == "exec" && !started:
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			s.mu.Lock()
			s.commands = append(s.commands, p.Command)
			s.mu.Unlock()
			req.Reply(true, nil)
			sess := Session{Command: p.Command, User: user, Stdin: ch, Stdout: ch, Stderr: ch.Stderr()}
			s.goTrack(func() {
				code := s.handler(ctx, sess)
				status := struct{ Status uint32 }{uint32(code)}
				ch.SendRequest("exit-status", false, ssh.Marshal(&status))
				ch.Close()
			})
		case req.Type == "subsystem" && !started:
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			if s.sftpServer != nil {
				started = true
				req.Reply(true, nil)
				s.goTrack(func() { s.execSFTP(ctx, ch) })
				continue
			}
			srv, err := sftp.NewServer(ch)
			if err != nil {
				req.Reply(false, nil)
				continue
			}
			started = true
			req.Reply(true, nil)
			s.goTrack(func() {
				srv.Serve()
				srv.Close()
			})
		case req.Type == "signal":
			cancel()
			req.Reply(true, nil)
		case req.Type == "env":
			req.Reply(true, nil)
		default:
			req.Reply(false, nil)
		}
	}
}

// execSFTP runs the real SFTP server on ch until the client closes it.
func (s *Server) execSFTP(ctx context.Context, ch ssh.Channel) {
	defer ch.Close()
	cmd := exec.CommandContext(ctx, s.sftpServer[0], s.sftpServer[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
	cmd.WaitDelay = time.Second
	code := 0
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(ch.Stderr(), "sshtest: %s: %v\n", s.sftpServer[0], err)
		code = 1
	}
	status := struct{ Status uint32 }{uint32(code)}
	ch.SendRequest("exit-status", false, ssh.Marshal(&status))
}

func (s *Server) forward(nc ssh.NewChannel) {
	var p struct {
		Host       string
		Port       uint32
		OriginHost string
		OriginPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad direct-tcpip request")
		return
	}
	dest := net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port)))
	if !s.forwarding {
		nc.Reject(ssh.Prohibited, "forwarding is disabled")
		return
	}
	if ip := net.ParseIP(p.Host); p.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		nc.Reject(ssh.Prohibited, "sshtest forwards to loopback addresses only")
		return
	}
	conn, err := net.DialTimeout("tcp", dest, 5*time.Second)
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		conn.Close()
		return
	}
	s.mu.Lock()
	s.forwards = append(s.forwards, dest)
	s.mu.Unlock()
	if !s.track(conn) {
		ch.Close()
		return
	}
	defer s.untrack(conn)
	defer ch.Close()
	s.goTrack(func() { ssh.DiscardRequests(reqs) })
	done := make(chan struct{})
	s.goTrack(func() {
		io.Copy(conn, ch)
		conn.(*net.TCPConn).CloseWrite()
		close(done)
	})
	io.Copy(ch, conn)
	ch.CloseWrite()
	<-done
}

// OpenSSHSFTPServer is where Debian's openssh-sftp-server package puts
// OpenSSH's SFTP server.
const OpenSSHSFTPServer = "/usr/lib/openssh/sftp-server"

// RequireEnv is the variable CI sets (as for the MariaDB tests) so that a
// missing test dependency fails the test instead of skipping it.
const RequireEnv = "TRAFFICLAB_REQUIRE_MARIADB"

// RequireSFTPServer returns the path of OpenSSH's sftp-server; when it is
// not installed it skips t, or fails it when RequireEnv is 1 (CI must not
// pass by skipping).
func RequireSFTPServer(t testing.TB) string {
	t.Helper()
	fi, err := os.Stat(OpenSSHSFTPServer)
	if err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return OpenSSHSFTPServer
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("OpenSSH's sftp-server is required (%s=1) but %s is missing: run scripts/test-deps.sh", RequireEnv, OpenSSHSFTPServer)
	}
	t.Skipf("OpenSSH's sftp-server (%s) is not installed: run scripts/test-deps.sh to install it", OpenSSHSFTPServer)
	return ""
}

// Clients hands out connected clients by host name, as a cluster's
// connector does; a host it lacks cannot be reached.
type Clients map[string]*remote.Client

// Client returns host's client.
func (c Clients) Client(_ context.Context, host string) (*remote.Client, error) {
	if cl, ok := c[host]; ok {
		return cl, nil
	}
	return nil, fmt.Errorf("%s: dial tcp: connection refused", host)
}

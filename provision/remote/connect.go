package remote

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

const (
	backoffMin = 200 * time.Millisecond
	backoffMax = 5 * time.Second
)

// dialer opens a TCP connection to addr; either directly or through a bastion.
type dialer func(ctx context.Context, addr string) (net.Conn, error)

func directDialer(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", addr)
}

// permanentError marks connect failures that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// dialRetry connects to cfg, retrying failures other than refused
// authentication or host keys with exponential backoff until cfg.RetryFor
// has passed.
func dialRetry(ctx context.Context, cfg Config, dial dialer) (*ssh.Client, error) {
	start := time.Now()
	delay := backoffMin
	for attempt := 1; ; attempt++ {
		client, err := dialOnce(ctx, cfg, dial)
		if err == nil {
			return client, nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return nil, perm.err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: connect to %s: %w", cfg.Name, cfg.addr(), ctx.Err())
		}
		elapsed := time.Since(start)
		if elapsed >= cfg.RetryFor {
			if attempt == 1 {
				return nil, fmt.Errorf("%s: connect to %s: %w", cfg.Name, cfg.addr(), err)
			}
			return nil, fmt.Errorf("%s: gave up connecting to %s after %s and %d attempts: %w",
				cfg.Name, cfg.addr(), elapsed.Round(time.Millisecond), attempt, err)
		}
		// Full jitter keeps many hosts from retrying in lockstep.
		wait := delay/2 + rand.N(delay/2+1)
		wait = min(wait, cfg.RetryFor-elapsed)
		slog.Info("ssh: host not reachable yet, retrying", "host", cfg.Name, "addr", cfg.addr(), "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: connect to %s: %w (last error: %v)", cfg.Name, cfg.addr(), ctx.Err(), err)
		case <-time.After(wait):
		}
		delay = min(delay*2, backoffMax)
	}
}

// dialOnce makes one dial and handshake attempt bounded by
// cfg.ConnectTimeout. Permanent errors name the host; the others are
// wrapped by dialRetry.
func dialOnce(ctx context.Context, cfg Config, dial dialer) (*ssh.Client, error) {
	auth, closeAgent, err := authMethods(cfg)
	if err != nil {
		return nil, &permanentError{err}
	}
	defer closeAgent()

	var hostKeyErr error
	check := hostKeyCallback(cfg)
	sshCfg := &ssh.ClientConfig{
		User: cfg.User,
		Auth: auth,
		HostKeyCallback: func(h string, a net.Addr, k ssh.PublicKey) error {
			hostKeyErr = check(h, a, k)
			return hostKeyErr
		},
		HostKeyAlgorithms: knownHostKeyAlgorithms(cfg.KnownHosts, cfg.addr()),
	}

	actx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	conn, err := dial(actx, cfg.addr())
	if err != nil {
		return nil, err
	}
	// The handshake has no context of its own: closing the connection is
	// what interrupts it.
	stop := context.AfterFunc(actx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, cfg.addr(), sshCfg)
	if !stop() {
		if err == nil {
			sc.Close()
		}
		return nil, fmt.Errorf("ssh handshake: %w", actx.Err())
	}
	switch {
	case hostKeyErr != nil:
		return nil, &permanentError{hostKeyErr}
	case err != nil && strings.Contains(err.Error(), "unable to authenticate"):
		return nil, &permanentError{fmt.Errorf("%s: ssh login as %s@%s refused (check the user and the keys): %w", cfg.Name, cfg.User, cfg.addr(), err)}
	case err != nil:
		return nil, err
	}
	return ssh.NewClient(sc, chans, reqs), nil
}

// authMethods offers the key files and, if asked, the agent's keys as one
// publickey method: x/crypto tries each method name only once, so two
// publickey methods would never both be used.
func authMethods(cfg Config) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	for _, file := range cfg.KeyFiles {
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: read ssh key: %w", cfg.Name, err)
		}
		s, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, nil, fmt.Errorf("%s: ssh key %s is passphrase-protected: load it into ssh-agent and enable the agent instead", cfg.Name, file)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: parse ssh key %s: %w", cfg.Name, file, err)
		}
		signers = append(signers, s)
	}
	closeAgent := func() {}
	var agentClient agent.ExtendedAgent
	if sock := os.Getenv("SSH_AUTH_SOCK"); cfg.UseAgent && sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: ssh-agent at %s: %w", cfg.Name, sock, err)
		}
		closeAgent = func() { conn.Close() }
		agentClient = agent.NewClient(conn)
	}
	if len(signers) == 0 && agentClient == nil {
		closeAgent()
		return nil, nil, fmt.Errorf("%s: no ssh key: set key files or use ssh-agent (SSH_AUTH_SOCK)", cfg.Name)
	}
	keys := ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
		if agentClient == nil {
			return signers, nil
		}
		fromAgent, err := agentClient.Signers()
		if err != nil {
			return nil, fmt.Errorf("ssh-agent: %w", err)
		}
		return append(signers[:len(signers):len(signers)], fromAgent...), nil
	})
	return []ssh.AuthMethod{keys}, closeAgent, nil
}

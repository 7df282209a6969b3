package remote

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsMu serialises reads and appends of known_hosts files, because
// many hosts connect at once and may share one file.
var knownHostsMu sync.Mutex

// HostKeyError reports a host key that was refused. It is never retried.
type HostKeyError struct {
	Host string // inventory name
	Addr string // host:port as checked
	msg  string
}

func (e *HostKeyError) Error() string { return e.Host + ": " + e.msg }

// hostKeyCallback checks the server's key against cfg.KnownHosts under
// cfg.HostKeyPolicy.
func hostKeyCallback(cfg Config) ssh.HostKeyCallback {
	return func(_ string, _ net.Addr, key ssh.PublicKey) error {
		return checkHostKey(cfg, key)
	}
}

func checkHostKey(cfg Config, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()

	file, addr := cfg.KnownHosts, cfg.addr()
	refuse := func(format string, args ...any) error {
		return &HostKeyError{Host: cfg.Name, Addr: addr, msg: fmt.Sprintf(format, args...)}
	}
	err := lookupHostKey(file, addr, key)
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &revoked):
		return refuse("host key for %s is revoked in %s:%d", addr, revoked.Revoked.Filename, revoked.Revoked.Line)
	case errors.As(err, &keyErr) && len(keyErr.Want) > 0:
		want := keyErr.Want[0]
		return refuse("host key for %s changed: it does not match %s:%d (possible man-in-the-middle; remove that line if the host was rebuilt)",
			addr, want.Filename, want.Line)
	case errors.As(err, &keyErr) || errors.Is(err, os.ErrNotExist):
		if cfg.HostKeyPolicy == Strict {
			return refuse("host key for %s is unknown: not in %s (strict host key checking; add it, e.g. with ssh-keyscan)", addr, file)
		}
		if err := appendKnownHost(file, addr, key); err != nil {
			return refuse("record host key for %s: %v", addr, err)
		}
		return nil
	default:
		return refuse("check host key for %s: %v", addr, err)
	}
}

// lookupHostKey re-reads the file on every check so keys appended by other
// connections are seen.
func lookupHostKey(file, addr string, key ssh.PublicKey) error {
	check, err := knownhosts.New(file)
	if err != nil {
		return err
	}
	return check(addr, hostAddr(addr), key)
}

func appendKnownHost(file, addr string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, knownhosts.Line([]string{addr}, key))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// knownHostKeyAlgorithms lists the host key algorithms of the keys already
// recorded for addr. Offering only those makes the server present the key we
// know; otherwise a host with several key types (every OpenSSH server) could
// present another one and look like a changed key.
func knownHostKeyAlgorithms(file, addr string) []string {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	// A key that matches nothing makes knownhosts report every key it has
	// for the address.
	var keyErr *knownhosts.KeyError
	if !errors.As(lookupHostKey(file, addr, probeKey{}), &keyErr) {
		return nil
	}
	var algos []string
	for _, k := range keyErr.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algos = append(algos, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			algos = append(algos, t)
		}
	}
	return algos
}

// probeKey is a public key no known_hosts line can match.
type probeKey struct{}

func (probeKey) Type() string { return "trafficlab-probe" }
func (probeKey) Marshal() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }

// hostAddr is the net.Addr handed to knownhosts; its String must parse as
// host:port even when the connection is a channel through a bastion.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}

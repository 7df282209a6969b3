// Package sshaccess holds the lab's SSH material: the lab's own key pair
// (root on every machine), each machine's host key (generated before its
// first boot, so known_hosts is written without trusting on first use), the
// known_hosts file, and a probe that proves a machine's sshd accepts the key.
package sshaccess

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// NewKey returns a new ed25519 key as an OpenSSH private key file and the
// matching authorized_keys line.
func NewKey(comment string) (private []byte, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, "", err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	if comment != "" {
		line += " " + comment
	}
	return pem.EncodeToMemory(block), line + "\n", nil
}

// EnsureKeyPair creates path (0600) and path.pub when path does not exist,
// and returns the public key line.
func EnsureKeyPair(path, comment string) (pub string, created bool, err error) {
	if b, err := os.ReadFile(path + ".pub"); err == nil {
		if _, err := os.Stat(path); err == nil {
			return string(b), false, nil
		}
	}
	priv, pub, err := NewKey(comment)
	if err != nil {
		return "", false, fmt.Errorf("lab key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("lab key: %w", err)
	}
	if err := writeAtomic(path, priv, 0o600); err != nil {
		return "", false, fmt.Errorf("lab key: %w", err)
	}
	if err := writeAtomic(path+".pub", []byte(pub), 0o644); err != nil {
		return "", false, fmt.Errorf("lab key: %w", err)
	}
	return pub, true, nil
}

// Signer loads the private key at path.
func Signer(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("lab key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("lab key %s: %w", path, err)
	}
	return s, nil
}

// Host is one known_hosts entry: names (machine name, address) and the
// host's public key line ("ssh-ed25519 AAAA… comment").
type Host struct {
	Names  []string
	PubKey string
}

// KnownHosts renders entries sorted by first name, so the file only changes
// when a key or address changes.
func KnownHosts(hosts []Host) ([]byte, error) {
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].Names[0] < hosts[j].Names[0] })
	var b bytes.Buffer
	for _, h := range hosts {
		pk, _, _, _, err := ssh.ParseAuthorizedKey([]byte(h.PubKey))
		if err != nil {
			return nil, fmt.Errorf("host key of %s: %w", h.Names[0], err)
		}
		b.WriteString(knownhosts.Line(h.Names, pk) + "\n")
	}
	return b.Bytes(), nil
}

// WriteIfChanged writes content to path atomically unless it already holds
// exactly that; it reports whether it wrote.
func WriteIfChanged(path string, content []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == mode {
			return false, nil
		}
	}
	return true, writeAtomic(path, content, mode)
}

func writeAtomic(path string, content []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Probe opens an SSH connection to addr:22 as root with signer, checking
// the host key strictly against knownHostsFile. It is what "sshd
// reachable" means in the lab: the daemon answered, proved its identity and
// accepted the lab key. With booted it also asks systemd whether the boot
// is over, and returns ErrBooting (with systemd's state and its jobs) when
// it is not.
func Probe(ctx context.Context, addr string, signer ssh.Signer, knownHostsFile string, timeout time.Duration, booted bool) error {
	cb, err := knownhosts.New(knownHostsFile)
	if err != nil {
		return fmt.Errorf("known_hosts: %w", err)
	}
	cfg := &ssh.ClientConfig{
		User:              "root",
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
		Timeout:           timeout,
	}
	d := net.Dialer{Timeout: timeout}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, net.JoinHostPort(addr, "22"), cfg)
	if err != nil {
		var ke *knownhosts.KeyError
		if errors.As(err, &ke) {
			return fmt.Errorf("host key of %s does not match %s: %w", addr, knownHostsFile, err)
		}
		return err
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	if !booted {
		return nil
	}
	// Logins during boot carry pam_nologin's "System is booting up" and
	// wait for units still starting: the machine is ready when systemd
	// says its boot is over (running, or degraded with a failed unit).
	s, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open a session: %w", err)
	}
	defer s.Close()
	out, _ := s.Output("systemctl is-system-running; systemctl list-jobs --no-legend --no-pager 2>/dev/null | head -5")
	lines := strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)
	switch state := strings.TrimSpace(lines[0]); state {
	case "initializing", "starting", "":
		jobs := ""
		if len(lines) > 1 {
			jobs = "; jobs: " + strings.Join(strings.Fields(lines[1]), " ")
		}
		return fmt.Errorf("%w: systemd is %q%s", ErrBooting, state, jobs)
	}
	return nil
}

// ErrBooting says a machine answers SSH but has not finished booting.
var ErrBooting = errors.New("still booting")

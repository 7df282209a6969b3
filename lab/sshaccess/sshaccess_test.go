package sshaccess

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func TestEnsureKeyPair(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lab", "id_ed25519")
	pub, created, err := EnsureKeyPair(path, "trafficlab-lab")
	if err != nil || !created {
		t.Fatalf("EnsureKeyPair = %v, %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}
	if !strings.HasPrefix(pub, "ssh-ed25519 ") || !strings.HasSuffix(pub, " trafficlab-lab\n") {
		t.Errorf("public key line %q", pub)
	}
	again, created, err := EnsureKeyPair(path, "trafficlab-lab")
	if err != nil || created || again != pub {
		t.Errorf("second EnsureKeyPair created a new key (%v, %v)", created, err)
	}
	s, err := Signer(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))); !strings.HasPrefix(pub, got) {
		t.Errorf("signer's key %q does not match %q", got, pub)
	}
}

func TestKnownHosts(t *testing.T) {
	_, pubA, _ := NewKey("root@a")
	_, pubB, _ := NewKey("root@b")
	b, err := KnownHosts([]Host{
		{Names: []string{"10.231.0.11", "node-2"}, PubKey: pubB},
		{Names: []string{"10.231.0.10", "node-1"}, PubKey: pubA},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "10.231.0.10,node-1 ssh-ed25519 ") {
		t.Fatalf("known_hosts:\n%s", b)
	}
	path := filepath.Join(t.TempDir(), "known_hosts")
	if changed, err := WriteIfChanged(path, b, 0o644); err != nil || !changed {
		t.Fatalf("WriteIfChanged = %v, %v", changed, err)
	}
	if changed, _ := WriteIfChanged(path, b, 0o644); changed {
		t.Error("WriteIfChanged rewrote an identical file")
	}
	cb, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, _ := ssh.ParseAuthorizedKey([]byte(pubA))
	if err := cb("10.231.0.10:22", fakeAddr("10.231.0.10:22"), pk); err != nil {
		t.Errorf("node-1's key not accepted for its address: %v", err)
	}
	if err := cb("10.231.0.11:22", fakeAddr("10.231.0.11:22"), pk); err == nil {
		t.Error("node-1's key accepted for node-2's address")
	}
	if _, err := KnownHosts([]Host{{Names: []string{"x"}, PubKey: "garbage"}}); err == nil {
		t.Error("garbage host key accepted")
	}
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

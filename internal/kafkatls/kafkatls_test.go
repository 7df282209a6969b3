package kafkatls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func newCA(t *testing.T) *CA {
	t.Helper()
	b, err := NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := ParseCA(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// A broker's bundle stays while it fits and is refused, with the reason,
// once its CA, names or address differ.
func TestIssueAndCheck(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	ips := []net.IP{net.ParseIP("10.0.0.1")}
	b, err := ca.Issue("kafka-1", []string{"kafka-1"}, ips)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Check(b, "kafka-1", []string{"kafka-1"}, ips); err != nil {
		t.Fatalf("a fresh bundle: %v", err)
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"other CA", other.Check(b, "kafka-1", []string{"kafka-1"}, ips), "not signed by the cluster's CA"},
		{"other name", ca.Check(b, "kafka-2", []string{"kafka-2"}, ips), `issued to "kafka-1"`},
		{"moved", ca.Check(b, "kafka-1", []string{"kafka-1"}, []net.IP{net.ParseIP("10.0.0.9")}), "names"},
		{"garbage", ca.Check([]byte("nothing"), "kafka-1", nil, nil), "not a key and certificate bundle"},
	} {
		if c.err == nil || !strings.Contains(c.err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, c.err, c.want)
		}
	}
	key, certs := Split(b)
	if !strings.Contains(string(key), "BEGIN PRIVATE KEY") || strings.Count(string(certs), "BEGIN CERTIFICATE") != 2 {
		t.Errorf("the bundle is not key, certificate and CA:\n%s", b)
	}
}

// ParseCA refuses what cannot sign: a leaf, a key of another certificate,
// an encrypted key.
func TestParseCARefuses(t *testing.T) {
	ca, other := newCA(t), newCA(t)
	leaf, _ := ca.Issue("kafka-1", []string{"kafka-1"}, nil)
	_, otherKey := splitBundle(t, other)
	for _, c := range []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{"a leaf", leaf, nil, "is not a CA"},
		{"another key", ca.CertPEM, otherKey, "not the key of certificate"},
		{"no key", ca.CertPEM, nil, "no PRIVATE KEY"},
		{"encrypted", ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"nothing", nil, nil, "no CERTIFICATE"},
	} {
		if _, err := ParseCA(c.cert, c.key); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func splitBundle(t *testing.T, ca *CA) (cert, key []byte) {
	t.Helper()
	k, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
}

// Dial speaks TLS to a server on loopback that wants a client certificate:
// the admin bundle gets in, a client without one and a server with a
// certificate for another name are refused.
func TestDialMutualTLS(t *testing.T) {
	ca := newCA(t)
	serverBundle, _ := ca.Issue("kafka-1", []string{"kafka-1"}, nil)
	key, certs := Split(serverBundle)
	cert, err := tls.X509KeyPair(certs, key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if err := c.(*tls.Conn).Handshake(); err == nil {
					c.Write([]byte("ok"))
				}
			}()
		}
	}()
	// The address dialled names the broker; the connection goes to loopback.
	loop := func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, ln.Addr().String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	read := func(cfg *tls.Config, addr string) error {
		c, err := Dial(loop, cfg)(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		b, err := io.ReadAll(c)
		if err == nil && string(b) != "ok" {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	admin, _ := ca.Issue(AdminName, nil, nil)
	withCert, err := ClientConfig(ca.CertPEM, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := read(withCert, "kafka-1:9094"); err != nil {
		t.Errorf("the admin certificate: %v", err)
	}
	caOnly, _ := ClientConfig(ca.CertPEM, nil)
	if err := read(caOnly, "kafka-1:9094"); err == nil {
		t.Errorf("a client without a certificate got in")
	}
	if err := read(withCert, "kafka-2:9094"); err == nil || !strings.Contains(err.Error(), "kafka-2") {
		t.Errorf("a server certificate for kafka-1 passed as kafka-2: %v", err)
	}
}

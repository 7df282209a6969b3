// Package kafkatls is the Kafka cluster's small PKI, for kafka.security tls
// and sasl_ssl: a certificate authority made once (or the user's own), a
// certificate per broker, one for provision's own admin connections, and
// the TLS configuration clients connect with.
//
// Keys are ECDSA P-256 in unencrypted PKCS #8 and certificates PEM, the
// form Kafka reads directly (ssl.keystore.type=PEM), so no keytool, Java
// keystore or keystore password is needed: the key file's mode (0600, the
// broker's user) is what protects it, as with every other secret file.
package kafkatls

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"
)

// Validity of what Issue makes; a certificate with less than RenewBefore
// left is made again by the next `provision up`.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 2 * 365 * 24 * time.Hour
	RenewBefore  = 30 * 24 * time.Hour
)

// AdminName is the common name of provision's own client certificate.
const AdminName = "trafficlab-provision"

// CA signs the cluster's certificates.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     crypto.Signer
}

// NewCA makes a CA for the named cluster and returns it as one PEM bundle
// (key, then certificate), the form ParseBundle and the stack keep.
func NewCA(cluster string) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make the CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "trafficlab Kafka CA (" + cluster + ")"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make the CA certificate: %w", err)
	}
	return bundle(key, der)
}

// ParseCA reads a CA from PEM: its certificate, and its private key (in
// the same bundle or in keyPEM). It must be a CA that may sign
// certificates, and the key must be the certificate's.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	certs, key, err := parse(append(append([]byte{}, certPEM...), keyPEM...))
	if err != nil {
		return nil, err
	}
	if len(certs) == 0 {
		return nil, errors.New("no CERTIFICATE block")
	}
	if key == nil {
		return nil, errors.New("no PRIVATE KEY block (PKCS #8, PKCS #1 or EC, unencrypted)")
	}
	c := certs[0]
	if !c.IsCA || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("certificate %q is not a CA that may sign certificates (basic constraints CA and key usage certSign)", c.Subject.CommonName)
	}
	if !publicEqual(c.PublicKey, key.Public()) {
		return nil, fmt.Errorf("the private key is not the key of certificate %q", c.Subject.CommonName)
	}
	if time.Now().After(c.NotAfter) {
		return nil, fmt.Errorf("CA certificate %q expired on %s", c.Subject.CommonName, c.NotAfter.Format(time.DateOnly))
	}
	return &CA{Cert: c, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), key: key}, nil
}

// Issue makes a key and a certificate for name, valid for the DNS names
// and addresses given, for both ends of TLS (a broker is a server to its
// clients and a client of the other brokers), and returns them as one PEM
// bundle: key, certificate, then the CA's certificate.
func (ca *CA) Issue(name string, dns []string, ips []net.IP) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("make the key of %s: %w", name, err)
	}
	now := time.Now()
	notAfter := now.Add(LeafValidity)
	if ca.Cert.NotAfter.Before(notAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("sign the certificate of %s: %w", name, err)
	}
	b, err := bundle(key, der)
	if err != nil {
		return nil, err
	}
	return append(b, ca.CertPEM...), nil
}

// Check says why a bundle made by Issue no longer fits: not signed by this
// CA, other names or addresses than wanted, or close to expiry. nil means
// it can stay.
func (ca *CA) Check(b []byte, name string, dns []string, ips []net.IP) error {
	certs, key, err := parse(b)
	if err != nil {
		return err
	}
	if len(certs) == 0 || key == nil {
		return errors.New("not a key and certificate bundle")
	}
	c := certs[0]
	if !publicEqual(c.PublicKey, key.Public()) {
		return errors.New("the key is not the certificate's")
	}
	if err := c.CheckSignatureFrom(ca.Cert); err != nil {
		return fmt.Errorf("not signed by the cluster's CA: %w", err)
	}
	if c.Subject.CommonName != name {
		return fmt.Errorf("issued to %q, not %q", c.Subject.CommonName, name)
	}
	if !slices.Equal(c.DNSNames, dns) || !slices.EqualFunc(c.IPAddresses, ips, net.IP.Equal) {
		return fmt.Errorf("names %v %v, want %v %v", c.DNSNames, c.IPAddresses, dns, ips)
	}
	if time.Until(c.NotAfter) < RenewBefore {
		return fmt.Errorf("expires on %s", c.NotAfter.Format(time.DateOnly))
	}
	return nil
}

// Split returns a bundle's private key PEM and its certificates' PEM.
func Split(b []byte) (keyPEM, certsPEM []byte) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return keyPEM, certsPEM
		}
		if blk.Type == "CERTIFICATE" {
			certsPEM = append(certsPEM, pem.EncodeToMemory(blk)...)
		} else {
			keyPEM = append(keyPEM, pem.EncodeToMemory(blk)...)
		}
	}
}

// ClientConfig is the TLS configuration of a client that trusts caPEM and,
// when bundle is not empty, presents its certificate (the admin listener
// asks for one).
func ClientConfig(caPEM, bundle []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("the Kafka CA certificate is not PEM")
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if len(bundle) > 0 {
		keyPEM, certPEM := Split(bundle)
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// DialFunc opens a connection to host:port.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Dial wraps dial in TLS with cfg, checking the server's certificate
// against the host part of the address dialled (the broker's advertised
// name). Both Kafka clients used here get plain connections from it, so
// TLS is done one way for both.
func Dial(dial DialFunc, cfg *tls.Config) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			conn.Close()
			return nil, err
		}
		c := cfg.Clone()
		c.ServerName = host
		tc := tls.Client(conn, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS with %s: %w", addr, err)
		}
		return tc, nil
	}
}

func bundle(key *ecdsa.PrivateKey, certDER []byte) ([]byte, error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode the key: %w", err)
	}
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: k})
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: certDER})
	return b.Bytes(), nil
}

// parse reads every certificate and the first private key of a PEM text.
func parse(b []byte) ([]*x509.Certificate, crypto.Signer, error) {
	var certs []*x509.Certificate
	var key crypto.Signer
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		switch blk.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, nil, fmt.Errorf("certificate: %w", err)
			}
			certs = append(certs, c)
		case "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if key != nil {
				continue
			}
			k, err := parseKey(blk)
			if err != nil {
				return nil, nil, err
			}
			key = k
		case "ENCRYPTED PRIVATE KEY":
			return nil, nil, errors.New("the private key is encrypted: give it unencrypted, in a file only you can read")
		}
	}
	return certs, key, nil
}

func parseKey(blk *pem.Block) (crypto.Signer, error) {
	var k any
	var err error
	switch blk.Type {
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("private key of type %T cannot sign", k)
	}
	return s, nil
}

func publicEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

package service_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/trafficlab/trafficlab/consumer/internal/loadgen"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/internal/kafkatls"
)

// A broker that wants TLS and a SCRAM-SHA-512 login (kafka.security
// sasl_ssl): the consumer configured with the cluster CA and its account
// reads every line, exactly once, as it does in clear.
func TestTLSAndSCRAM(t *testing.T) {
	srv := mariadbtest.Shared(t)
	caPEM, err := kafkatls.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := kafkatls.ParseCA(caPEM, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ca.Issue("localhost", []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	key, certs := kafkatls.Split(b)
	cert, err := tls.X509KeyPair(certs, key)
	if err != nil {
		t.Fatal(err)
	}
	const user, password = "trafficlab-consumer", "a-generated-password"
	const parts, n = 3, 2000
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond), kfake.SeedTopics(parts, topic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}}),
		kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", user, password))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	addr := c.ListenAddrs()[0]

	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.DialTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}),
		kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)

	cfg, st := newConfig(t, srv, addr)
	caFile := filepath.Join(t.TempDir(), "kafka-ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.TLS.CAFile = caFile
	cfg.Kafka.SASL.Mechanism, cfg.Kafka.SASL.Username, cfg.Kafka.SASL.Password = "SCRAM-SHA-512", user, password
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exp := loadgen.NewExpect()
	produce(t, cl, gen(), 0, n, parts, exp)
	startService(t, cfg)
	waitCommitted(t, st, n, 60*time.Second)
	rows, err := st.Minutes(context.Background(), time.Unix(0, 0), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got uint64
	for _, r := range rows {
		got += r.Requests
	}
	if got != exp.Good {
		t.Errorf("stored %d requests over TLS and SCRAM, want %d", got, exp.Good)
	}
}

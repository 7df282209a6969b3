package kafka

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role"
)

// kafka.security tls and sasl_ssl: where the broker keeps its TLS files,
// the brokers' own listener, and the clients' SCRAM accounts.
const (
	TLSDir = ConfigDir + "/tls"
	// CAFile is the cluster CA's certificate, the truststore of brokers.
	CAFile = TLSDir + "/ca.pem"
	// KeystoreFile is the broker's key and certificate chain (PEM keystore).
	KeystoreFile = TLSDir + "/broker.pem"

	// InternalPort is the brokers' own listener, mutual TLS: replication,
	// the controller's requests, and provision's admin connections.
	InternalPort = inventory.KafkaInternalPort
	internal     = "INTERNAL"

	// SCRAM is the SASL mechanism of sasl_ssl, and FilebeatUser and
	// ConsumerUser the accounts of the clients that use it.
	SCRAM        = "SCRAM-SHA-512"
	FilebeatUser = "trafficlab-filebeat"
	ConsumerUser = "trafficlab-consumer"
)

// clientListener is the name of the clients' listener on Port, which is
// also its security protocol.
func clientListener(k inventory.Kafka) string {
	switch k.Security {
	case inventory.KafkaTLS:
		return "SSL"
	case inventory.KafkaSASLSSL:
		return "SASL_SSL"
	}
	return "PLAINTEXT"
}

// securityGroup is the TLS and SASL properties; nil for plaintext.
func securityGroup(k inventory.Kafka) *Group {
	if !k.TLS() {
		return nil
	}
	g := &Group{"TLS: the cluster CA's certificates, PEM; brokers and provision authenticate each other on " + internal, []Property{
		{"ssl.keystore.type", "PEM"},
		{"ssl.keystore.location", KeystoreFile},
		{"ssl.truststore.type", "PEM"},
		{"ssl.truststore.location", CAFile},
		{"ssl.endpoint.identification.algorithm", "https"},
		{"listener.name.internal.ssl.client.auth", "required"},
	}}
	if k.Mode == inventory.KafkaKRaft {
		g.Properties = append(g.Properties, Property{"listener.name.controller.ssl.client.auth", "required"})
	}
	if k.Security == inventory.KafkaSASLSSL {
		g.Title += "; clients log in with " + SCRAM
		g.Properties = append(g.Properties,
			Property{"sasl.enabled.mechanisms", SCRAM},
			Property{"listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required;"})
	}
	return g
}

// CertNames are the names a broker's certificate is valid for: the host
// name it advertises, and its address.
func CertNames(h inventory.Host) (dns []string, ips []net.IP) {
	dns = []string{h.Name}
	if a, err := netip.ParseAddr(h.Address); err == nil {
		ips = []net.IP{net.IP(a.AsSlice())}
	}
	return dns, ips
}

// tlsFiles are the broker's CA and keystore files, with TLS.
func tlsFiles(c *role.Context) ([]role.File, error) {
	if !c.Inventory.Kafka.TLS() {
		return nil, nil
	}
	cert := c.Secrets.KafkaCerts[c.Host.Name]
	if c.Secrets.KafkaCA == "" || cert == "" {
		return nil, fmt.Errorf("kafka.security %s: no TLS certificate for %s in the stack (provision up makes them)", c.Inventory.Kafka.Security, c.Host.Name)
	}
	return []role.File{
		{Path: CAFile, Content: []byte(c.Secrets.KafkaCA), Mode: 0o644, Owner: "root:root"},
		{Path: KeystoreFile, Content: []byte(cert), Mode: 0o600, Owner: user + ":" + user, Secret: true},
	}, nil
}

// AdminPort is the port provision's admin connections use: the clients'
// listener in plaintext, else the brokers' own mutual-TLS listener.
func AdminPort(inv *inventory.Inventory) int {
	if inv.Kafka.TLS() {
		return InternalPort
	}
	return Port
}

// AdminDial is dial with provision's TLS client certificate when the
// cluster has TLS: what every admin connection of provision goes through.
func AdminDial(inv *inventory.Inventory, s role.Secrets, dial kafkaadmin.DialFunc) (kafkaadmin.DialFunc, error) {
	if !inv.Kafka.TLS() || dial == nil {
		return dial, nil
	}
	if s.KafkaCA == "" || s.KafkaAdmin == "" {
		return nil, errors.New("no Kafka client certificate in the stack: run provision up first")
	}
	cfg, err := kafkatls.ClientConfig([]byte(s.KafkaCA), []byte(s.KafkaAdmin))
	if err != nil {
		return nil, fmt.Errorf("provision's Kafka client certificate: %w", err)
	}
	return kafkaadmin.DialFunc(kafkatls.Dial(kafkatls.DialFunc(dial), cfg)), nil
}

// Admin is provision's admin client of the cluster (kafkaadmin), over TLS
// when the cluster has it.
func Admin(inv *inventory.Inventory, s role.Secrets, dial kafkaadmin.DialFunc) (*kafkaadmin.Admin, error) {
	d, err := AdminDial(inv, s, dial)
	if err != nil {
		return nil, err
	}
	return kafkaadmin.NewWithBrokers(AdminBrokers(inv), d), nil
}

// AdminBrokers are the bootstrap addresses of admin connections.
func AdminBrokers(inv *inventory.Inventory) []string {
	var out []string
	for _, h := range inv.HostsWith(inventory.RoleKafka) {
		out = append(out, net.JoinHostPort(h.Name, strconv.Itoa(AdminPort(inv))))
	}
	return out
}

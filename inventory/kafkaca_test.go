package inventory

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
)

// writeCA writes a new CA's certificate (0644) and key (0600) and returns
// their paths.
func writeCA(t *testing.T) (cert, key string) {
	t.Helper()
	b, err := kafkatls.NewCA("test")
	if err != nil {
		t.Fatal(err)
	}
	k, c := kafkatls.Split(b)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := os.WriteFile(cert, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, k, 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// The user's own Kafka CA: read once, checked to be a CA with its key, in
// files only the user can read; and kafka.security takes three values.
// Each mistake is reported at its line (base is 26 lines; these start at
// line 33 inside the kafka section).
func TestKafkaSecurity(t *testing.T) {
	cert, key := writeCA(t)
	_, otherKey := writeCA(t)
	loose := filepath.Join(t.TempDir(), "loose-key.pem")
	b, _ := os.ReadFile(key)
	if err := os.WriteFile(loose, b, 0o644); err != nil {
		t.Fatal(err)
	}
	kafka := func(lines string) string {
		return strings.Replace(base, "kafka:\n  version: 3.9.1\n", "kafka:\n  version: 3.9.1\n"+lines, 1)
	}
	good, err := Parse("test.yaml", []byte(kafka("  security: sasl_ssl\n  ca: {cert: "+cert+", key: "+key+"}\n")), nil)
	if err != nil {
		t.Fatalf("a good CA: %v", err)
	}
	if !good.Kafka.TLS() || !good.Kafka.CA.PEM.IsSet() {
		t.Errorf("security %s, CA read %v", good.Kafka.Security, good.Kafka.CA.PEM.IsSet())
	}
	if s := fmt.Sprintf("%+v", good.Kafka); strings.Contains(s, "PRIVATE KEY") {
		t.Errorf("the inventory prints the CA's key: %s", s)
	}
	for _, c := range []struct{ name, lines, want string }{
		{"unknown security", "  security: ssl\n", `test.yaml:24: kafka.security: "ssl" is not one of plaintext, tls, sasl_ssl`},
		{"key of another CA", "  security: tls\n  ca: {cert: " + cert + ", key: " + otherKey + "}\n", "test.yaml:25: kafka.ca.key: not a usable CA: the private key is not the key of certificate"},
		{"key others can read", "  security: tls\n  ca: {cert: " + cert + ", key: " + loose + "}\n", "test.yaml:25: kafka.ca.key: the CA's private key can be read by other users (mode 0644)"},
		{"no key", "  security: tls\n  ca: {cert: " + cert + "}\n", "test.yaml:25: kafka.ca.cert: not a usable CA: no PRIVATE KEY block"},
		{"missing file", "  security: tls\n  ca: {cert: /nonexistent/ca.pem, key: " + key + "}\n", `test.yaml:25: kafka.ca.cert: cannot read "/nonexistent/ca.pem"`},
		{"CA without TLS", "  ca: {cert: " + cert + ", key: " + key + "}\n", "test.yaml:24: kafka.ca.cert: a CA is used only with kafka.security tls or sasl_ssl, not plaintext"},
	} {
		_, err := Parse("test.yaml", []byte(kafka(c.lines)), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\nwant %s", c.name, err, c.want)
		}
	}
}

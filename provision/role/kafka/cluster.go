package kafka

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/trafficlab/trafficlab/provision/step"
)

// NewClusterID makes a KRaft cluster id as `kafka-storage.sh random-uuid`
// does: 16 random bytes in URL-safe base64 without padding, never starting
// with "-" (the tools would read it as an option). The engine makes one per
// stack and keeps it (role.Context.KafkaClusterID).
func NewClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("make a Kafka cluster id: %w", err)
		}
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if ValidClusterID(id) {
			return id, nil
		}
	}
}

// ValidClusterID reports whether id is a cluster id Kafka accepts.
func ValidClusterID(id string) bool {
	b, err := base64.RawURLEncoding.Strict().DecodeString(id)
	if err != nil || len(b) != 16 || strings.HasPrefix(id, "-") {
		return false
	}
	// Kafka reserves the all-zero id and the metadata topic's (1).
	var zero, one [16]byte
	one[15] = 1
	return string(b) != string(zero[:]) && string(b) != string(one[:])
}

// CapabilitiesFile is the file at a distribution's root that says what it
// cannot do. Apache's tarballs have none: they can do everything.
const CapabilitiesFile = "trafficlab-artifact.yaml"

// Capabilities are what a Kafka distribution can do, so that drills and
// checks that need something it lacks skip themselves and say why instead
// of failing or pretending. Read them from the distribution the hosts run
// (ReadCapabilities), never by guessing the environment.
type Capabilities struct {
	// Name says what the distribution is, for messages.
	Name string `yaml:"name"`
	// Replication is "none" when each partition has a single copy, so
	// that a broker down loses its partitions' availability and there is
	// no such thing as an under-replicated partition. Empty means full.
	Replication string `yaml:"replication"`
	// Notes are shown with a skip, to explain the limit.
	Notes string `yaml:"notes"`
}

// Full is a distribution without a capabilities file: Apache Kafka.
var Full = Capabilities{Name: "Apache Kafka"}

// Replicates reports whether partitions have replicas on other brokers.
func (c Capabilities) Replicates() bool { return c.Replication == "" || c.Replication == "full" }

// SkipReason says why something that needs replication (what: "the kafka
// drill", "the under-replicated partitions wait") is skipped, or "" when it
// can run.
func (c Capabilities) SkipReason(what string) string {
	if c.Replicates() {
		return ""
	}
	r := fmt.Sprintf("%s is skipped: %s keeps a single copy of each partition (replication: %s in %s/%s)", what, c.Name, c.Replication, Home, CapabilitiesFile)
	if c.Notes != "" {
		r += "; " + strings.TrimSpace(c.Notes)
	}
	return r
}

// ParseCapabilities reads a capabilities file.
func ParseCapabilities(b []byte) (Capabilities, error) {
	var c Capabilities
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %w", CapabilitiesFile, err)
	}
	switch c.Replication {
	case "", "full", "none":
	default:
		return c, fmt.Errorf("%s: replication %q: want full or none", CapabilitiesFile, c.Replication)
	}
	if c.Name == "" {
		c.Name = "this Kafka distribution"
	}
	return c, nil
}

// ReadCapabilities reads the capabilities of the distribution installed on
// h (after the role's steps ran there).
func ReadCapabilities(ctx context.Context, h step.Host) (Capabilities, error) {
	b, err := h.ReadFile(ctx, Home+"/"+CapabilitiesFile)
	if errors.Is(err, fs.ErrNotExist) {
		return Full, nil
	}
	if err != nil {
		return Capabilities{}, err
	}
	return ParseCapabilities(b)
}

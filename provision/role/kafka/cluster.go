package kafka

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// NewClusterID makes a KRaft cluster id as `kafka-storage.sh random-uuid`
// does: 16 random bytes in URL-safe base64 without padding, never starting
// with "-" (the tools would read it as an option). The engine makes one per
// stack and keeps it (ClusterIDKey, a role.Value).
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

package kafkastandin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/role/kafka"
)

func untar(t *testing.T, tgz []byte) map[string]*tar.Header {
	t.Helper()
	gz, err := gzip.NewReader(bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	out := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name == "kafka_2.13-3.9.1/trafficlab-artifact.yaml" {
			b, _ := io.ReadAll(tr)
			caps, err := kafka.ParseCapabilities(b)
			if err != nil || caps.Replicates() || !strings.Contains(caps.SkipReason("x"), "trafficlab Kafka stand-in keeps a single copy") {
				t.Errorf("capabilities %+v, %v", caps, err)
			}
		}
		out[h.Name] = h
	}
}

// The tarball has Apache's shape (the top directory the kafka role names
// the install after, the scripts it runs), says what it is, declares that
// it does not replicate, and is the same for the same program.
func TestPackage(t *testing.T) {
	tgz, err := Package([]byte("program"))
	if err != nil {
		t.Fatal(err)
	}
	entries := untar(t, tgz)
	for name, mode := range map[string]int64{
		"kafka_2.13-3.9.1/bin/kafka-server-start.sh": 0o755,
		"kafka_2.13-3.9.1/bin/kafka-server-stop.sh":  0o755,
		"kafka_2.13-3.9.1/bin/kafka-storage.sh":      0o755,
		"kafka_2.13-3.9.1/libs/kafka-standin":        0o755,
		"kafka_2.13-3.9.1/config/server.properties":  0o644,
		"kafka_2.13-3.9.1/README.md":                 0o644,
		"kafka_2.13-3.9.1/trafficlab-artifact.yaml":  0o644,
		"kafka_2.13-3.9.1/":                          0o755,
	} {
		h, ok := entries[name]
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		if h.Mode != mode || h.Uid != 0 {
			t.Errorf("%s: mode %o uid %d", name, h.Mode, h.Uid)
		}
	}
	for name := range entries {
		if !strings.HasPrefix(name, TopDir()+"/") {
			t.Errorf("%s is outside the top directory", name)
		}
	}
	again, _ := Package([]byte("program"))
	if !bytes.Equal(tgz, again) {
		t.Error("the same program made another tarball")
	}
	if !strings.Contains(readme, "test double, not Apache Kafka") {
		t.Error("the README does not say it is a stand-in")
	}
}

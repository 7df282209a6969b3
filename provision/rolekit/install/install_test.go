package install

import (
	"strings"
	"testing"
)

func TestParseChecksum(t *testing.T) {
	sum := strings.Repeat("0123456789abcdef", 8)
	// gpg --print-md, as Apache's Kafka releases publish it.
	var gpg strings.Builder
	gpg.WriteString("kafka_2.13-3.9.1.tgz: ")
	up := strings.ToUpper(sum)
	for i := 0; i < 128; i += 8 {
		gpg.WriteString(up[i : i+8])
		if i == 56 {
			gpg.WriteString("\n                      ")
		} else {
			gpg.WriteString(" ")
		}
	}
	for _, text := range []string{
		gpg.String() + "\n",
		sum + "  kafka_2.13-3.9.1.tgz\n",
		sum + " *kafka_2.13-3.9.1.tgz\n",
		sum + "\n",
	} {
		if got, err := ParseChecksum(text, "kafka_2.13-3.9.1.tgz"); err != nil || got != sum {
			t.Errorf("ParseChecksum(%q) = %q, %v", text, got, err)
		}
	}
	for _, bad := range []string{"", "<html>Not Found</html>", sum[:100] + "  kafka_2.13-3.9.1.tgz"} {
		if _, err := ParseChecksum(bad, "kafka_2.13-3.9.1.tgz"); err == nil {
			t.Errorf("ParseChecksum(%q) accepted", bad)
		}
	}
}

func TestNewTarball(t *testing.T) {
	for _, tt := range []struct{ source, link, dir string }{
		{"https://archive.apache.org/dist/kafka/3.9.1/kafka_2.13-3.9.1.tgz", "/opt/kafka", "/opt/kafka_2.13-3.9.1"},
		{"/srv/apache-zookeeper-3.8.4-bin.tar.gz", "/opt/zookeeper", "/opt/apache-zookeeper-3.8.4-bin"},
		{"/srv/kafka.tgz", "/opt/kafka", "/opt/kafka-dist"},
	} {
		if got := NewTarball(tt.source, "", tt.link).Dir; got != tt.dir {
			t.Errorf("NewTarball(%s).Dir = %s, want %s", tt.source, got, tt.dir)
		}
	}
}

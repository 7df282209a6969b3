package inventory

import "testing"

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"kafka", "kafka", 0},
		{"kakfa", "kafka", 1}, // swap
		{"adress", "address", 1},
		{"replicaton", "replication", 1},
		{"zookeper", "zookeeper", 1},
		{"lb", "web", 2},
		{"héllo", "hello", 1},
	} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	hostKeys := []string{"name", "address", "roles", "ssh", "lb", "web"}
	topicKeys := []string{"name", "partitions", "replication", "min_insync"}
	top := []string{"cluster", "ssh", "hosts", "zookeeper", "kafka", "web", "lb", "filebeat", "mysql", "dashboard"}
	for _, c := range []struct {
		word  string
		cands []string
		want  string
	}{
		{"adress", hostKeys, "address"},
		{"Address", hostKeys, "address"},
		{"ip", hostKeys, "address"},
		{"hostname", hostKeys, "name"},
		{"role", hostKeys, "roles"},
		{"replicaton", topicKeys, "replication"},
		{"min_isr", topicKeys, ""},
		{"partition", topicKeys, "partitions"},
		{"kakfa", top, "kafka"},
		{"zookeper", top, "zookeeper"},
		{"mysq", top, "mysql"},
		{"db", top, ""}, // short words get one edit: "lb" and "web" are not meant
		{"fielbeat", top, "filebeat"},
		{"grafana", top, ""},
	} {
		if got := suggest(c.word, c.cands); got != c.want {
			t.Errorf("suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

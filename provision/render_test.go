package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runRender(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRenderCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String() + errOut.String(), err
}

func TestRender(t *testing.T) {
	const seed = "../inventory/examples/seed-centos.yaml"
	tests := []struct {
		name string
		args []string
		want string // the whole output
		err  string // part of the error
	}{
		{name: "list", args: []string{"-i", seed, "--os", "rocky:9", "lb-1"}, want: "/etc/hosts  (block hosts)\n" +
			"/etc/nginx/conf.d/trafficlab-lb.conf\n/usr/libexec/keepalived/trafficlab-check-nginx.sh\n/etc/keepalived/keepalived.conf\n"},
		{name: "web tier on a broker", args: []string{"-i", seed, "--os", "rocky:9", "kafka-1"}, want: "/etc/hosts  (block hosts)\n" +
			"/etc/trafficlab/zookeeper/zoo.cfg\n/var/lib/trafficlab/zookeeper/myid\n/etc/systemd/system/trafficlab-zookeeper.service\n" +
			"/etc/trafficlab/kafka/server.properties\n/etc/systemd/system/trafficlab-kafka.service\n" +
			"/etc/nginx/conf.d/trafficlab-web.conf\n/var/www/trafficlab/index.html\n" +
			"/etc/trafficlab/filebeat/filebeat.yml\n/etc/systemd/system/trafficlab-filebeat.service\n"},
		{name: "one block", args: []string{"-i", seed, "--os", "rocky:9", "kafka-2", "/etc/hosts"},
			want: "# BEGIN trafficlab hosts\n192.168.0.190\tkafka-1\n192.168.0.191\tkafka-2\n192.168.0.192\tkafka-3\n" +
				"192.168.0.193\tlb-1\n192.168.0.194\tlb-2\n192.168.0.195\tdb-1\n192.168.0.200\twww.sc.com\n# END trafficlab hosts\n"},
		{name: "a container lists chrony's drop-in", args: []string{"-i", seed, "--container", "db-1"},
			want: "/etc/hosts  (block hosts)\n/etc/systemd/system/chrony.service.d/trafficlab.conf\n" + dbFiles("/etc/mysql/mariadb.conf.d/60-trafficlab.cnf")},
		{name: "the database, consumer and dashboard on RHEL-like", args: []string{"-i", seed, "--os", "rocky:9", "db-1"},
			want: "/etc/hosts  (block hosts)\n" + dbFiles("/etc/my.cnf.d/trafficlab.cnf", "/etc/trafficlab/mysql/root.cnf")},
		{name: "root's option file, masked", args: []string{"-i", seed, "--os", "rocky:9", "db-1", "/etc/trafficlab/mysql/root.cnf"},
			want: "# Written by trafficlab: MySQL's root login for trafficlab's administration\n# of this server (`mysql --defaults-extra-file=THIS`). It holds the root\n" +
				"# password: mode 0600, root only. Removed by `provision destroy`.\n[client]\nuser = root\npassword = \"********\"\n"},
		{name: "unknown host", args: []string{"-i", seed, "lb-3"}, err: `has no host "lb-3" (hosts: kafka-1, kafka-2, kafka-3, lb-1, lb-2, db-1)`},
		{name: "file not written", args: []string{"-i", seed, "lb-1", "/etc/motd"}, err: "trafficlab writes no /etc/motd on lb-1"},
		{name: "CentOS 7", args: []string{"-i", seed, "--os", "centos:7", "lb-1"}, err: "end of life"},
		{name: "bad --os", args: []string{"-i", seed, "--os", "rocky", "lb-1"}, err: "want ID:VERSION"},
	}
	// The VRRP password is masked; the interface, which only the host
	// knows, says so.
	out, err := runRender(t, "-i", seed, "--os", "rocky:9", "lb-2", "/etc/keepalived/keepalived.conf")
	if err != nil || !strings.Contains(out, "auth_pass ********\n") || !strings.Contains(out, "interface INTERFACE-CARRYING-HOST-ADDRESS\n") {
		t.Errorf("keepalived.conf (%v):\n%s", err, out)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runRender(t, tt.args...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil || out != tt.want {
				t.Fatalf("output:\n%s\nerror: %v\nwant:\n%s", out, err, tt.want)
			}
		})
	}
}

// dbFiles are the files of db-1 (mysql, consumer, dashboard) after the
// database server's own.
func dbFiles(mysql ...string) string {
	return strings.Join(mysql, "\n") + "\n" +
		"/etc/trafficlab/consumer/consumer.yaml\n/etc/systemd/system/trafficlab-consumer.service\n" +
		"/etc/trafficlab/dashboard/dashboard.yaml\n/etc/systemd/system/trafficlab-dashboard.service\n"
}

// The consumer's configuration as render prints it: the password masked,
// everything else from the inventory.
func TestRenderConsumerConfig(t *testing.T) {
	out, err := runRender(t, "-i", "../inventory/examples/seed-centos.yaml", "db-1", "/etc/trafficlab/consumer/consumer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`password: "********"`, `brokers: ["kafka-1:9092", "kafka-2:9092", "kafka-3:9092"]`, `host: "192.168.0.195"`} {
		if !strings.Contains(out, want) {
			t.Errorf("render output lacks %q:\n%s", want, out)
		}
	}
}

// The webhook URL carries a token: render shows where it goes, never what
// it is.
func TestRenderMasksTheWebhook(t *testing.T) {
	const token = "T0KEN-xoxb-123456"
	seed, err := os.ReadFile("../inventory/examples/seed-centos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(t.TempDir(), "inventory.yaml")
	data := string(seed) + "\nalerts:\n  webhook: https://hooks.example.org/services/" + token + "\n"
	if err := os.WriteFile(inv, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runRender(t, "-i", inv, "db-1", "/etc/trafficlab/consumer/consumer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, token) || !strings.Contains(out, `url: "********"`) {
		t.Errorf("render shows the webhook:\n%s", out)
	}
}

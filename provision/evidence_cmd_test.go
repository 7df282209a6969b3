package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

// The evidence of a host holds its rendered files with every secret of
// the inventory masked, and reads the logs of the host's distribution.
func TestEvidenceHostMasksSecrets(t *testing.T) {
	const (
		mysqlPassword = "db-pass-5f1e2a"
		webhookToken  = "hook-token-77c1"
	)
	src := `
cluster: {name: lab}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat, consumer]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.9, roles: [mysql, dashboard]}
mysql: {password: "${MYSQL_PW}"}
alerts: {webhook: "https://hooks.example.com/${TOKEN}"}
`
	env := map[string]string{"MYSQL_PW": mysqlPassword, "TOKEN": webhookToken}
	inv, err := inventory.Parse("t.yaml", []byte(src), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		release, host string
		roles, units  []string
	}{
		{roletest.RockyRelease, "db-1", []string{"base", "mysql", "dashboard"}, []string{"chronyd.service", "mysqld.service", "trafficlab-dashboard.service"}},
		{roletest.DebianRelease, "kafka-1", []string{"base", "web", "zookeeper", "kafka", "topic", "filebeat", "consumer"},
			[]string{"chrony.service", "nginx.service", "trafficlab-zookeeper.service", "trafficlab-kafka.service", "trafficlab-filebeat.service", "trafficlab-consumer.service"}},
	} {
		script := new(sshtest.Script).
			On("cat /etc/os-release", sshtest.Reply{Stdout: tc.release}).
			On("systemd-detect-virt --container", sshtest.Reply{Stdout: "none\n", Exit: 1}).
			On("uname -m", sshtest.Reply{Stdout: "x86_64\n"})
		srv := sshtest.New(t, sshtest.WithHandler(script.Handler()))
		cfg := srv.Config(t)
		cfg.Name = tc.host
		cl, err := remote.Connect(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		h, err := evidenceHost(context.Background(), inv, sshtest.Clients{tc.host: cl}, tc.host)
		if err != nil {
			t.Fatal(err)
		}
		if !sameSet(h.Roles, tc.roles) || !sameSet(h.Logs.Units, tc.units) {
			t.Errorf("%s: roles %v units %v; want %v and %v", tc.host, h.Roles, h.Logs.Units, tc.roles, tc.units)
		}
		if len(h.Files) == 0 {
			t.Fatalf("%s: no rendered files", tc.host)
		}
		for _, f := range h.Files {
			if strings.Contains(string(f.Content), mysqlPassword) || strings.Contains(string(f.Content), webhookToken) {
				t.Errorf("%s: %s holds a secret of the inventory", tc.host, f.Path)
			}
		}
		// One role only; an unknown one is refused with what the host has.
		if h, err := evidenceHost(context.Background(), inv, sshtest.Clients{tc.host: cl}, tc.host, "base"); err != nil || len(h.Roles) != 1 {
			t.Errorf("%s base: %v %v", tc.host, h.Roles, err)
		}
		if _, err := evidenceHost(context.Background(), inv, sshtest.Clients{tc.host: cl}, tc.host, "lb"); err == nil || !strings.Contains(err.Error(), "carries no role lb (it has: base") {
			t.Errorf("%s lb: %v", tc.host, err)
		}
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

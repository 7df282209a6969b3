package engine

import (
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
)

func TestSSHConfig(t *testing.T) {
	const base = `
cluster: {name: sc}
ssh: {user: deploy, key: /keys/id, known_hosts: /keys/known, host_key_check: strict, sudo_password: "${SUDO}", bastion: BASTION}
hosts:
  - {name: a, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat, mysql, consumer], ssh: {port: 2200}}
  - {name: b, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat]}
  - {name: c, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
`
	env := func(k string) (string, bool) { return map[string]string{"SUDO": "s3cret"}[k], k == "SUDO" }
	for _, tt := range []struct {
		bastion            string
		wantUser, wantAddr string
		wantPort           int
		wantBastion        bool
	}{
		{bastion: `""`},
		{bastion: "jump@192.0.2.9:2222", wantBastion: true, wantUser: "jump", wantAddr: "192.0.2.9", wantPort: 2222},
		{bastion: "192.0.2.9", wantBastion: true, wantUser: "deploy", wantAddr: "192.0.2.9", wantPort: 22},
	} {
		inv, err := inventory.Parse("t.yaml", []byte(strings.Replace(base, "BASTION", tt.bastion, 1)), env)
		if err != nil {
			t.Fatalf("%s: %v", tt.bastion, err)
		}
		cfg := SSHConfig(inv, inv.Hosts[0])
		if cfg.Name != "a" || cfg.Address != "10.0.0.1" || cfg.Port != 2200 || cfg.User != "deploy" ||
			cfg.HostKeyPolicy != remote.Strict || cfg.KnownHosts != "/keys/known" || cfg.SudoPassword != "s3cret" ||
			len(cfg.KeyFiles) != 1 || cfg.KeyFiles[0] != "/keys/id" || cfg.UseAgent {
			t.Errorf("bastion %s: config %+v", tt.bastion, cfg)
		}
		switch b := cfg.Bastion; {
		case !tt.wantBastion && b != nil:
			t.Errorf("no bastion given, got %+v", b)
		case tt.wantBastion && (b == nil || b.User != tt.wantUser || b.Address != tt.wantAddr || b.Port != tt.wantPort):
			t.Errorf("bastion %s: got %+v", tt.bastion, b)
		}
	}
}

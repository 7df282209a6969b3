package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
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

// poolConnector hands out clients of a remote.Pool, as the engine does.
type poolConnector struct{ p *remote.Pool }

func (c poolConnector) Client(ctx context.Context, host string) (*remote.Client, error) {
	return c.p.Get(ctx, host)
}

// TestDialerTunnels: a broker advertised as kafka-2:PORT (a name the
// control machine cannot resolve) is reached through kafka-2's own SSH
// connection, at kafka-2's inventory address; an address of no host (the
// VIP) through the first host's.
func TestDialerTunnels(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	_, port, _ := net.SplitHostPort(echo.Addr().String())

	s1 := sshtest.New(t, sshtest.WithForwarding(true))
	s2 := sshtest.New(t, sshtest.WithForwarding(true))
	inv := &inventory.Inventory{Hosts: []inventory.Host{
		{Name: "kafka-1", Address: "127.0.0.1"},
		{Name: "kafka-2", Address: "127.0.0.1"},
	}}
	pool := remote.NewPool(map[string]remote.Config{"kafka-1": s1.Config(t), "kafka-2": s2.Config(t)})
	defer pool.Close()
	dial := Dialer(inv, poolConnector{pool})

	for _, tc := range []struct {
		addr    string
		through *sshtest.Server
	}{
		{"kafka-2:" + port, s2},
		{"KAFKA-2.sc.internal:" + port, s2}, // a domain suffix and other case
		{"kafka-1:" + port, s1},
	} {
		before := len(tc.through.Forwards())
		conn, err := dial(context.Background(), "tcp", tc.addr)
		if err != nil {
			t.Fatalf("dial %s: %v", tc.addr, err)
		}
		fmt.Fprint(conn, "ping")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
			t.Errorf("dial %s: echo %q %v", tc.addr, buf, err)
		}
		conn.Close()
		fw := tc.through.Forwards()
		if len(fw) != before+1 {
			t.Errorf("dial %s: forwards through the expected host: %v", tc.addr, fw)
			continue
		}
		if want := "127.0.0.1:" + port; fw[len(fw)-1] != want {
			t.Errorf("dial %s: forwarded to %s, want %s", tc.addr, fw[len(fw)-1], want)
		}
	}
	// An address of no host (the VIP) goes through the first host.
	if _, err := dial(context.Background(), "tcp", "192.0.2.1:"+port); err == nil || !strings.HasPrefix(err.Error(), s1.Config(t).Name+": dial 192.0.2.1:") {
		t.Errorf("dial of a non-host address: %v", err)
	}
	if _, err := dial(context.Background(), "tcp", "no-port"); err == nil {
		t.Error("an address without a port was dialled")
	}
}

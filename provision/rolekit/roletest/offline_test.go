package roletest

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

// oneHost is a cluster of one host with every role.
const oneHost = "cluster: {name: toy}\nhosts:\n  - {name: one, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat, lb, mysql, consumer, dashboard]}\n" +
	"web: {port: 8081}\nlb: {vip: 10.0.0.100/24}\nzookeeper: {toy: true}\n"

// The fixtures are what facts.Detect finds on the fake hosts, so that an
// offline context and a connected one plan alike.
func TestFixturesAreWhatDetectFinds(t *testing.T) {
	for _, tt := range []struct {
		name string
		host *Host
		want facts.OS
	}{
		{"rocky9", NewRHEL(), Rocky9()},
		{"debian12", NewDebian("none"), Debian12()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := Connect(t, tt.host, LoadInventory(t, oneHost), "one")
			if c.OS != tt.want {
				t.Errorf("detected %+v\nfixture  %+v", c.OS, tt.want)
			}
		})
	}
	inv := LoadInventory(t, oneHost)
	c := Offline(t, inv, "one", Debian12())
	if c.Host.Name != "one" || c.Inventory != inv || c.OS != Debian12() || c.Templates == nil || c.Dial != nil || c.Interface != "" {
		t.Errorf("offline context %+v", c)
	}
}

func TestPattern(t *testing.T) {
	p := Pattern(`mv -f X.part X && echo 'a.b' > DIR/sum`, "X", "DIR")
	m := regexp.MustCompile("^" + p + "$").FindStringSubmatch(`mv -f /opt/k.part /opt/k && echo 'a.b' > /opt/d/sum`)
	if len(m) != 4 || m[1] != "/opt/k" || m[2] != "/opt/k" || m[3] != "/opt/d" {
		t.Errorf("%s: submatches %q", p, m)
	}
	if regexp.MustCompile("^" + p + "$").MatchString(`mv -f /opt/k.part /opt/k && echo 'aXb' > /opt/d/sum`) {
		t.Errorf("%s matches a changed fixed part", p)
	}
}

// files is a role with fixed files.
type files []role.File

func (files) Name() string                               { return "files" }
func (files) On(inventory.Host) bool                     { return true }
func (files) Needs(*inventory.Inventory) []string        { return nil }
func (f files) Files(*role.Context) ([]role.File, error) { return f, nil }
func (f files) Plan(*role.Context) (role.Plan, error)    { return role.Plan{Files: f}, nil }
func (files) Remove(*role.Context) ([]step.Step, error)  { return nil, nil }
func (files) Keeps(*role.Context) []string               { return nil }

func TestAssertFiles(t *testing.T) {
	ro := files{
		{Path: "/etc/hosts", Block: "hosts", Content: []byte("10.0.0.1 one\n"), Mode: 0o644},
		{Path: "/etc/a.conf", Content: []byte("pw=x\n"), Mode: 0o600, Owner: "root:root", Secret: true},
	}
	c := Offline(t, LoadInventory(t, oneHost), "one", Rocky9())
	for _, tt := range []struct {
		opts []FilesOption
		want string
	}{
		{nil, "==> /etc/hosts (block hosts) 0644 \n10.0.0.1 one\n\n==> /etc/a.conf 0600 root:root\npw=x\n\n"},
		{[]FilesOption{ShowSecret}, "==> /etc/hosts (block hosts) 0644  secret=false\n10.0.0.1 one\n\n==> /etc/a.conf 0600 root:root secret=true\npw=x\n\n"},
	} {
		path := filepath.Join(t.TempDir(), "files.golden")
		if err := os.WriteFile(path, []byte(tt.want), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := AssertFiles(t, ro, c, path, tt.opts...); len(got) != 2 {
			t.Errorf("returned %d files", len(got))
		}
	}
}

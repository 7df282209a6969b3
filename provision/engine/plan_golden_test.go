package engine

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/internal/golden"
	"github.com/trafficlab/trafficlab/internal/kafkatls"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/templates"
)

// TestPlanGolden keeps what the planner makes of the example inventories,
// for a Debian and a RHEL-like host: each resource with its files (by
// hash), its steps and the steps destroy runs, by the names people read;
// and beside it the inputs Pulumi diffs (steps by identity, settings,
// needed roles, values). A change to the engine or the roles that alters
// what preview and up would show for them alters these files, and is
// reviewed as such.
func TestPlanGolden(t *testing.T) {
	set, err := templates.Load("")
	if err != nil {
		t.Fatal(err)
	}
	// The seed's cluster through its migration to KRaft as well: the
	// controllers before the brokers while migrating, after them once
	// kraft.
	cases := []struct{ example, os, security, mode string }{
		{"seed-centos.yaml", "rocky:9", "", ""},
		{"seed-centos.yaml", "rocky:9", "", "migrating"},
		{"seed-centos.yaml", "debian:12", "", "kraft"},
		{"all-in-one.yaml", "debian:12", "", ""},
		{"kraft.yaml", "debian:12", "", ""},
		{"kraft.yaml", "rocky:9", "sasl_ssl", ""},
	}
	for _, tc := range cases {
		name := strings.TrimSuffix(tc.example, ".yaml") + "-" + strings.ReplaceAll(tc.os, ":", "")
		if tc.security != "" {
			name += "-" + tc.security
		}
		if tc.mode != "" {
			name += "-" + tc.mode
		}
		t.Run(name, func(t *testing.T) {
			inv, err := inventory.LoadEnv(filepath.Join("..", "..", "inventory", "examples", tc.example), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			if tc.security != "" {
				inv.Kafka.Security = inventory.KafkaSecurity(tc.security)
			}
			if tc.mode != "" {
				inv.Kafka.Mode, inv.Kafka.Controllers = inventory.KafkaMode(tc.mode), inventory.ControllersSeparate
			}
			roles, err := Ordered(inv, Roles())
			if err != nil {
				t.Fatal(err)
			}
			os, err := renderOS(tc.os)
			if err != nil {
				t.Fatal(err)
			}
			secrets := goldenSecrets(t, inv)
			var out, inputs bytes.Buffer
			for _, h := range inv.Hosts {
				for _, ro := range roles {
					if !role.Applies(ro, inv, h) {
						continue
					}
					c := &role.Context{Inventory: inv, Host: h, OS: os, Templates: set, Secrets: secrets,
						Values: map[string]string{kafka.ClusterIDKey: "MkU3OEVBNTcwNTJENDM2Qg"}, Interface: "eth0"}
					r := provider.Resource{Values: valuesOf(ro, inv, c.Values)}
					if err := planRole(c, ro, &r); err != nil {
						t.Fatalf("%s %s: %v", h.Name, ro.Name(), err)
					}
					// PEM material is made anew each run: its hash says nothing.
					fresh := map[string]bool{}
					files, _ := ro.Files(c)
					for _, f := range files {
						fresh[f.Path] = bytes.Contains(f.Content, []byte("-----BEGIN"))
					}
					fmt.Fprintf(&out, "%s\n", provider.Name(h.Name, ro.Name()))
					for _, p := range sortedFiles(r.Files) {
						f := r.Files[p]
						hash := f.Hash[:19]
						if fresh[p] {
							hash = "(PEM)"
						}
						secret := ""
						if f.Secret {
							secret = " (secret)"
						}
						fmt.Fprintf(&out, "  file %s %s%s\n", p, hash, secret)
					}
					plan, _ := ro.Plan(c)
					for _, s := range plan.Steps {
						fmt.Fprintf(&out, "  step %s\n", builtSum.ReplaceAllString(s.Name, "sha256 (of the build)"))
					}
					// What Pulumi diffs beyond the files: the steps by
					// identity, the settings, the roles needed.
					fmt.Fprintf(&inputs, "%s\n", provider.Name(h.Name, ro.Name()))
					if n := ro.Needs(inv); len(n) > 0 {
						fmt.Fprintf(&inputs, "  needs %s\n", strings.Join(n, " "))
					}
					for _, id := range r.Steps {
						fmt.Fprintf(&inputs, "  step %s\n", id)
					}
					for _, k := range slices.Sorted(maps.Keys(r.Settings)) {
						fmt.Fprintf(&inputs, "  setting %s=%s\n", k, builtSum.ReplaceAllString(r.Settings[k], "sha256 (of the build)"))
					}
					for _, k := range slices.Sorted(maps.Keys(r.Values)) {
						fmt.Fprintf(&inputs, "  value %s\n", k)
					}
					undo, err := ro.Remove(c)
					if err != nil {
						t.Fatalf("%s %s: remove: %v", h.Name, ro.Name(), err)
					}
					for _, s := range undo {
						fmt.Fprintf(&out, "  undo %s\n", s.Name)
					}
				}
			}
			golden.Assert(t, filepath.Join("testdata", "plan", name+".txt"), out.Bytes())
			golden.Assert(t, filepath.Join("testdata", "plan", name+".inputs.txt"), inputs.Bytes())
		})
	}
}

// builtSum is the checksum of a Go service's binary, built from this
// tree by this toolchain: not the plan's to keep.
var builtSum = regexp.MustCompile(`sha256[ :][0-9a-f]{12,64}`)

// renderOS is a host's system from "ID:VERSION_ID", as facts reads it.
func renderOS(name string) (facts.OS, error) {
	id, version, _ := strings.Cut(name, ":")
	os, err := facts.ParseOSRelease([]byte(fmt.Sprintf("ID=%q\nVERSION_ID=%q\n", id, version)))
	os.Machine, os.Arch = "x86_64", "amd64"
	return os, err
}

// goldenSecrets are fixed stand-ins, so that the hashes of files holding
// secrets stay the same from run to run.
func goldenSecrets(t *testing.T, inv *inventory.Inventory) role.Secrets {
	s := role.Secrets{VRRPAuth: "vrrp", MySQLPassword: "mysql", MySQLRootPassword: "root", MySQLDashboardPassword: "dash",
		DashboardPassword: "dashboard", ProbeKey: "probe"}
	if inv.Kafka.Security != inventory.KafkaPlaintext && inv.Kafka.Security != "" {
		caPEM, err := kafkatls.NewCA(inv.Cluster.Name)
		if err != nil {
			t.Fatal(err)
		}
		ca, err := kafkatls.ParseCA(caPEM, caPEM)
		if err != nil {
			t.Fatal(err)
		}
		issue := func(name string) string {
			b, err := ca.Issue(name, []string{name}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		_, cert := kafkatls.Split(caPEM)
		s.KafkaCA, s.KafkaAdmin = string(cert), issue("trafficlab-provision")
		s.KafkaFilebeatPassword, s.KafkaConsumerPassword = "filebeat", "consumer"
		s.KafkaCerts = map[string]string{}
		for _, h := range inv.HostsWith(inventory.RoleKafka) {
			s.KafkaCerts[h.Name] = issue(h.Name)
		}
	}
	return s
}

func sortedFiles(m map[string]provider.FileHash) []string {
	return slices.Sorted(maps.Keys(m))
}

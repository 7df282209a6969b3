package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
)

func validateNoEnv(string) (string, bool) { return "", false }

func TestValidateExamples(t *testing.T) {
	files, err := filepath.Glob("../inventory/examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if err := runValidate(&out, &errOut, f, validateNoEnv); err != nil {
				t.Fatalf("exit: %v\nstderr:\n%s", err, errOut.String())
			}
			if errOut.Len() > 0 {
				t.Errorf("stderr: %s", errOut.String())
			}
			inv, err := inventory.LoadEnv(f, validateNoEnv)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != len(inv.Hosts)+2 {
				t.Fatalf("want a header, %d host rows and a summary:\n%s", len(inv.Hosts), out.String())
			}
			for i, h := range inv.Hosts {
				row := strings.Fields(lines[i+1])
				if row[0] != h.Name || row[1] != h.Address {
					t.Errorf("row %d: %q, want %s %s", i, lines[i+1], h.Name, h.Address)
				}
				if got, want := strings.Count(lines[i+1], "✓"), len(h.Roles); got != want {
					t.Errorf("%s: %d ticks for %d roles: %q", h.Name, got, want, lines[i+1])
				}
			}
			if !strings.HasPrefix(lines[len(lines)-1], f+": ") {
				t.Errorf("summary: %q", lines[len(lines)-1])
			}
		})
	}
}

func TestValidateSeedOutput(t *testing.T) {
	var out, errOut bytes.Buffer
	f := "../inventory/examples/seed-centos.yaml"
	if err := runValidate(&out, &errOut, f, validateNoEnv); err != nil {
		t.Fatal(err, errOut.String())
	}
	want := `HOST     ADDRESS        ZOOKEEPER  KAFKA  WEB  LB  FILEBEAT  MYSQL  CONSUMER  DASHBOARD
kafka-1  192.168.0.190  ✓          ✓      ✓    ·   ✓         ·      ·         ·
kafka-2  192.168.0.191  ✓          ✓      ✓    ·   ✓         ·      ·         ·
kafka-3  192.168.0.192  ✓          ✓      ✓    ·   ✓         ·      ·         ·
lb-1     192.168.0.193  ·          ·      ·    ✓   ·         ·      ·         ·
lb-2     192.168.0.194  ·          ·      ·    ✓   ·         ·      ·         ·
db-1     192.168.0.195  ·          ·      ·    ·   ·         ✓      ✓         ✓
../inventory/examples/seed-centos.yaml: 6 hosts, kafka 3.9.1 (zookeeper mode), VIP 192.168.0.200
`
	if out.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestValidateBadFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "bad.yaml")
	data := `cluster:
  name: sc
hosts:
  - name: kafka-1
    adress: 192.168.0.190
    roles: [zookeeper, kafka, web, filebeat, mysql, consumer]
kafka:
  topic: {replication: 3}
`
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := runValidate(&out, &errOut, f, validateNoEnv)
	var code exitCode
	if !errors.As(err, &code) || code != 2 {
		t.Fatalf("exit: %v", err)
	}
	if out.Len() > 0 {
		t.Errorf("stdout: %s", out.String())
	}
	want := f + `:3: 1 host has the zookeeper role; an ensemble needs an odd number of at least 3 so a majority survives a failure (set zookeeper.toy: true to run a single node anyway)
` + f + `:5: hosts[0].adress: unknown key (did you mean "address"?)
` + f + `:8: kafka.topic.replication: 3 replicas need 3 brokers, but only 1 host has the kafka role
`
	if errOut.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", errOut.String(), want)
	}
	line := regexp.MustCompile(`^` + regexp.QuoteMeta(f) + `:\d+: \S`)
	for _, l := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		if !line.MatchString(l) {
			t.Errorf("not FILE:LINE: message: %q", l)
		}
	}
}

func TestValidateMissingFile(t *testing.T) {
	var out, errOut bytes.Buffer
	f := filepath.Join(t.TempDir(), "inventory.yaml")
	err := runValidate(&out, &errOut, f, validateNoEnv)
	if code, ok := err.(exitCode); !ok || code != 2 {
		t.Fatalf("exit: %v", err)
	}
	if got := errOut.String(); !strings.Contains(got, f+": no such file") || !strings.Contains(got, "-i FILE") {
		t.Errorf("stderr: %q", got)
	}
}

// The cobra wiring: -i picks the file, without it inventory.yaml in the
// current directory is used, and problems come back as exit status 2.
func TestValidateCommand(t *testing.T) {
	cmd := newValidateCmd()
	if def := cmd.Flags().Lookup("inventory"); def == nil || def.DefValue != "" || def.Shorthand != "i" {
		t.Fatalf("inventory flag: %+v", def)
	}
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"-i", "../inventory/examples/kraft.yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("valid file: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "kafka 4.1.0 (kraft mode), VIP 192.168.0.200") {
		t.Errorf("stdout: %s", out.String())
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "inventory.yaml"), []byte("cluster: {name: sc}\nhosts: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	cmd = newValidateCmd()
	errOut.Reset()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(nil)
	if err := cmd.Execute(); err != exitCode(2) {
		t.Fatalf("default file with problems: %v", err)
	}
	if got := errOut.String(); got != "inventory.yaml:2: hosts: required: list at least one host\n" {
		t.Errorf("stderr: %q", got)
	}
}

func TestValidateJSON(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := runValidateJSON(&out, &errOut, "../inventory/examples/seed-centos.yaml", validateNoEnv); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var v validation
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if !v.OK || len(v.Hosts) != 6 || v.Hosts[0].Name != "kafka-1" || v.Kafka == nil || v.Kafka.Mode != "zookeeper" || v.VIP != "192.168.0.200" {
		t.Errorf("validate --json: %s", out.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("cluster: {name: x}\nhosts:\n  - {name: a, address: not-an-ip, roles: [kafka]}\n"), 0o600)
	out.Reset()
	err := runValidateJSON(&out, &errOut, bad, validateNoEnv)
	if code, ok := err.(exitCode); !ok || code != 2 {
		t.Errorf("exit %v, want 2", err)
	}
	var w validation
	uerr := json.Unmarshal(out.Bytes(), &w)
	found := false
	for _, p := range w.Problems {
		found = found || p.Line == 3 && strings.Contains(p.Message, `"not-an-ip" is not an IP address`)
	}
	if uerr != nil || w.OK || !found {
		t.Errorf("validate --json of a bad inventory: %s (%v)", out.String(), uerr)
	}
}

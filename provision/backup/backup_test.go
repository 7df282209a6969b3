package backup

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
	"github.com/trafficlab/trafficlab/provision/rolekit/roletest"
)

const inv = `
cluster: {name: lab}
hosts:
  - {name: kafka-1, address: 10.0.0.1, roles: [zookeeper, kafka, web, filebeat, consumer]}
  - {name: kafka-2, address: 10.0.0.2, roles: [zookeeper, kafka, web, filebeat, consumer]}
  - {name: kafka-3, address: 10.0.0.3, roles: [zookeeper, kafka, web, filebeat]}
  - {name: db-1, address: 10.0.0.9, roles: [mysql, dashboard]}
`

// hosts are scripted SSH servers by inventory name.
type hosts map[string]*sshtest.Script

func (h hosts) connector(t *testing.T) sshtest.Clients {
	c := sshtest.Clients{}
	for name, s := range h {
		srv := sshtest.New(t, sshtest.WithHandler(s.Handler()))
		cfg := srv.Config(t)
		cfg.Name = name
		cl, err := remote.Connect(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		c[name] = cl
	}
	return c
}

func setup(t *testing.T, release string) (*inventory.Inventory, hosts) {
	t.Helper()
	i, err := inventory.Parse("t.yaml", []byte(inv), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	db := new(sshtest.Script).
		On("cat /etc/os-release", sshtest.Reply{Stdout: release}).
		On("systemd-detect-virt --container", sshtest.Reply{Stdout: "none\n", Exit: 1}).
		On("uname -m", sshtest.Reply{Stdout: "x86_64\n"})
	return i, hosts{"db-1": db, "kafka-1": new(sshtest.Script), "kafka-2": new(sshtest.Script)}
}

const dumpSQL = "-- MariaDB dump 10.19\nCREATE TABLE `kafka_offsets` (...);\nINSERT INTO `kafka_offsets` VALUES ('trafficlab-consumer','nginxlog',0,1200);\n"

func TestDumpAndLoad(t *testing.T) {
	for _, tc := range []struct {
		name, release, dump, load string
	}{
		{"debian", roletest.DebianRelease,
			"mariadb-dump --no-defaults -u root --single-transaction --quick --routines traffic",
			"mysql --no-defaults -u root"},
		{"rocky", roletest.RockyRelease,
			"mysqldump --defaults-extra-file=/etc/trafficlab/mysql/root.cnf --no-tablespaces --set-gtid-purged=OFF --single-transaction --quick --routines traffic",
			"mysql --defaults-extra-file=/etc/trafficlab/mysql/root.cnf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, h := setup(t, tc.release)
			h["db-1"].On(tc.dump, sshtest.Reply{Stdout: dumpSQL})
			conn := h.connector(t)
			var file bytes.Buffer
			info, err := Dump(context.Background(), i, conn, &file)
			if err != nil {
				t.Fatal(err)
			}
			if info.Host != "db-1" || info.Database != "traffic" || info.SQLBytes != int64(len(dumpSQL)) {
				t.Errorf("info %+v", info)
			}
			zr, err := gzip.NewReader(bytes.NewReader(file.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			plain, _ := io.ReadAll(zr)
			head, rest, _ := strings.Cut(string(plain), "\n")
			if !strings.HasPrefix(head, "-- trafficlab backup of database traffic, cluster lab, host db-1") || rest != dumpSQL {
				t.Errorf("backup file:\n%s", plain)
			}

			var lines []string
			res, err := Load(context.Background(), i, conn, bytes.NewReader(file.Bytes()), func(l string) { lines = append(lines, l) })
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(res.Consumers, ",") != "kafka-1,kafka-2" {
				t.Errorf("consumers stopped and started: %v", res.Consumers)
			}
			// The consumers stop before the load and start after it.
			for _, c := range []string{"kafka-1", "kafka-2"} {
				if got := strings.Join(h[c].Commands(), "; "); got != "systemctl stop trafficlab-consumer.service; systemctl start trafficlab-consumer.service" {
					t.Errorf("%s ran %q", c, got)
				}
			}
			calls := h["db-1"].Calls()
			last := calls[len(calls)-1]
			if last.Command != tc.load || last.Stdin != "CREATE DATABASE IF NOT EXISTS `traffic`;\nUSE `traffic`;\n"+dumpSQL {
				t.Errorf("load ran %q with stdin %q", last.Command, last.Stdin)
			}
			if strings.Join(lines, "\n") != "kafka-1: stop trafficlab-consumer.service\nkafka-2: stop trafficlab-consumer.service\ndb-1: load the backup into database traffic ("+info.Server+")\nkafka-1: start trafficlab-consumer.service\nkafka-2: start trafficlab-consumer.service" {
				t.Errorf("progress:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}

// A failed load still starts the consumers again, and says what failed.
func TestLoadFailureRestartsConsumers(t *testing.T) {
	i, h := setup(t, roletest.DebianRelease)
	h["db-1"].On("mysql --no-defaults -u root", sshtest.Reply{Stderr: "ERROR 1064 (42000) at line 3: syntax error\n", Exit: 1})
	conn := h.connector(t)
	_, err := Load(context.Background(), i, conn, backupOf("-- trafficlab backup of database traffic\nBROKEN;\n"), func(string) {})
	if err == nil || !strings.Contains(err.Error(), "load the backup into database traffic on db-1") || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("err %v", err)
	}
	for _, c := range []string{"kafka-1", "kafka-2"} {
		if cmds := h[c].Commands(); len(cmds) != 2 || cmds[1] != "systemctl start trafficlab-consumer.service" {
			t.Errorf("%s ran %q; want the consumer started again", c, cmds)
		}
	}
}

// Anything but a backup is refused before any host is touched.
func TestLoadRefusesOtherFiles(t *testing.T) {
	i, h := setup(t, roletest.DebianRelease)
	conn := h.connector(t)
	for name, r := range map[string]io.Reader{
		"plain SQL":        strings.NewReader("DROP DATABASE traffic;\n"),
		"another gzip":     backupOf("-- MariaDB dump 10.19\n"),
		"an empty gzip":    backupOf(""),
		"a truncated file": bytes.NewReader(gzipped("-- trafficlab backup x\n")[:12]),
	} {
		if _, err := Load(context.Background(), i, conn, r, func(string) {}); err == nil || !strings.Contains(err.Error(), "not a trafficlab backup") {
			t.Errorf("%s: err %v", name, err)
		}
	}
	for name, s := range h {
		if name != "db-1" && len(s.Commands()) > 0 {
			t.Errorf("%s ran %v for a file that is no backup", name, s.Commands())
		}
	}
}

func backupOf(plain string) io.Reader { return bytes.NewReader(gzipped(plain)) }

func gzipped(plain string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	io.WriteString(zw, plain)
	zw.Close()
	return b.Bytes()
}

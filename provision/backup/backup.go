// Package backup writes the cluster's MySQL database — the aggregates, the
// Kafka offsets and the alerts — to a local file, and loads such a file
// back into the database host.
//
// A backup is gzip-compressed SQL from the server's own dump tool, one
// consistent snapshot taken without stopping the consumers, after a
// header line that names what it holds. Offsets and aggregates come from
// the same snapshot, so after a restore the consumers re-read from Kafka
// exactly what the snapshot had not yet counted (as long as Kafka still
// retains it): nothing lost, nothing counted twice.
package backup

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	mysqlrole "github.com/trafficlab/trafficlab/provision/role/mysql"
)

// header starts every backup; Load refuses a file without it.
const header = "-- trafficlab backup"

// Info says what a backup holds.
type Info struct {
	Cluster  string    `json:"cluster"`
	Database string    `json:"database"`
	Host     string    `json:"host"`
	Server   string    `json:"server"`
	Taken    time.Time `json:"taken"`
	// SQLBytes is the dump's size before compression.
	SQLBytes int64         `json:"sql_bytes"`
	Elapsed  time.Duration `json:"elapsed_ns"`
}

func (i Info) headerLine() string {
	return fmt.Sprintf("%s of database %s, cluster %s, host %s (%s), taken %s\n",
		header, i.Database, i.Cluster, i.Host, i.Server, i.Taken.UTC().Format(time.RFC3339))
}

// Timeout bounds a dump or a load.
var Timeout = time.Hour

// dbHost returns the database host and its server.
func dbHost(ctx context.Context, inv *inventory.Inventory, conn cluster.Connector) (*remote.Client, mysqlrole.Server, error) {
	dbs := inv.HostsWith(inventory.RoleMySQL)
	if len(dbs) == 0 {
		return nil, mysqlrole.Server{}, errors.New("no host has the mysql role: there is no database to back up or restore")
	}
	c, err := conn.Client(ctx, dbs[0].Name)
	if err != nil {
		return nil, mysqlrole.Server{}, err
	}
	os, err := facts.Detect(ctx, c)
	if err != nil {
		return nil, mysqlrole.Server{}, fmt.Errorf("%s: %w", dbs[0].Name, err)
	}
	return c, mysqlrole.ServerOf(os), nil
}

// Dump writes a backup of the cluster's database to w.
func Dump(ctx context.Context, inv *inventory.Inventory, conn cluster.Connector, w io.Writer) (Info, error) {
	start := time.Now()
	c, srv, err := dbHost(ctx, inv, conn)
	if err != nil {
		return Info{}, err
	}
	info := Info{Cluster: inv.Cluster.Name, Database: inv.MySQL.Database, Host: c.Name(), Server: srv.Name, Taken: start}
	gz := gzip.NewWriter(w)
	if _, err := io.WriteString(gz, info.headerLine()); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	n := &counter{w: gz}
	if _, err := c.Run(ctx, srv.DumpCommand(info.Database), remote.WithStdout(n), remote.WithTimeout(Timeout)); err != nil {
		return info, fmt.Errorf("backup of database %s on %s: %w", info.Database, info.Host, err)
	}
	if err := gz.Close(); err != nil {
		return info, fmt.Errorf("backup: %w", err)
	}
	if n.n == 0 {
		return info, fmt.Errorf("backup of database %s on %s: the dump printed nothing", info.Database, info.Host)
	}
	info.SQLBytes, info.Elapsed = n.n, time.Since(start)
	return info, nil
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Restored says what Load did.
type Restored struct {
	Header string `json:"header"` // the backup's header line
	// Consumers are the hosts whose consumer was stopped for the load
	// and started again.
	Consumers []string      `json:"consumers"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// Load replaces the cluster's database with the backup r holds. The
// consumers are stopped first — one committing into a half-loaded
// database could count lines twice — and started again afterwards,
// whatever happened; they go on from the restored offsets. progress gets
// a line per step.
func Load(ctx context.Context, inv *inventory.Inventory, conn cluster.Connector, r io.Reader, progress func(string)) (res Restored, err error) {
	start := time.Now()
	zr, err := gzip.NewReader(r)
	if err != nil {
		return res, fmt.Errorf("not a trafficlab backup (not gzip-compressed): %w", err)
	}
	br := bufio.NewReader(zr)
	line, rerr := br.ReadString('\n')
	if rerr != nil || !strings.HasPrefix(line, header+" ") {
		return res, fmt.Errorf("not a trafficlab backup: it starts %q, want %q", firstWords(line), header+" ...")
	}
	res.Header = strings.TrimSpace(line)
	c, srv, err := dbHost(ctx, inv, conn)
	if err != nil {
		return res, err
	}

	unit := consumer.Service.Unit()
	var stopped []*remote.Client
	// Started again even when the load fails: the database is then what it
	// was, or the partial restore the error describes, and the consumers
	// resume from whatever offsets it holds.
	defer func() {
		for _, hc := range stopped {
			progress(fmt.Sprintf("%s: start %s", hc.Name(), unit))
			if _, serr := hc.Run(context.WithoutCancel(ctx), "systemctl start "+unit, remote.WithTimeout(2*time.Minute)); serr != nil {
				err = errors.Join(err, fmt.Errorf("the consumer did not start again on %s: %w", hc.Name(), serr))
			}
		}
	}()
	for _, h := range inv.HostsWith(inventory.RoleConsumer) {
		hc, err := conn.Client(ctx, h.Name)
		if err != nil {
			return res, err
		}
		progress(fmt.Sprintf("%s: stop %s", h.Name, unit))
		if _, err := hc.Run(ctx, "systemctl stop "+unit, remote.WithTimeout(2*time.Minute)); err != nil {
			return res, fmt.Errorf("stop the consumer on %s before the restore: %w", h.Name, err)
		}
		stopped = append(stopped, hc)
		res.Consumers = append(res.Consumers, h.Name)
	}

	db := inv.MySQL.Database
	progress(fmt.Sprintf("%s: load the backup into database %s (%s)", c.Name(), db, srv.Name))
	// The database may be gone with the host's disk; the account's grants
	// outlive it, so recreating it is all the consumer needs.
	prelude := fmt.Sprintf("CREATE DATABASE IF NOT EXISTS `%s`;\nUSE `%s`;\n", db, db)
	if _, err := c.Run(ctx, srv.LoadCommand(), remote.WithStdin(io.MultiReader(strings.NewReader(prelude), br)), remote.WithTimeout(Timeout)); err != nil {
		return res, fmt.Errorf("load the backup into database %s on %s: %w", db, c.Name(), err)
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func firstWords(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/provision/backup"
	"github.com/trafficlab/trafficlab/provision/cluster"
)

func newBackupCmd() *cobra.Command {
	var f engineFlags
	cmd := &cobra.Command{
		Use:   "backup [FILE]",
		Short: "Write the cluster's MySQL database (aggregates, offsets, alerts) to a local file",
		Long: `Backup dumps the database on the mysql host with the server's own tool
(mariadb-dump or mysqldump, --single-transaction: one consistent snapshot,
the consumers keep running) into FILE, gzip-compressed, readable by you
only. FILE defaults to CLUSTER-DATABASE-YYYYMMDD-HHMMSS.sql.gz in the
current directory; an existing file is never overwritten.
provision restore FILE loads it back.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			inv := s.eng.Inventory()
			path := fmt.Sprintf("%s-%s-%s.sql.gz", inv.Cluster.Name, inv.MySQL.Database, time.Now().Format("20060102-150405"))
			if len(args) == 1 {
				path = args[0]
			}
			c := cluster.Open(inv, "")
			defer c.Close()
			// Written under a temporary name, created 0600 (never readable
			// by others, not even while it is written), renamed when whole.
			tmp := path + ".partial"
			out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return fmt.Errorf("backup: %w", err)
			}
			info, err := backup.Dump(s.ctx, inv, c, out)
			if err == nil {
				err = out.Sync()
			}
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				if _, serr := os.Stat(path); serr == nil {
					err = fmt.Errorf("backup: %s exists; not overwritten (the backup is in %s)", path, tmp)
				} else {
					err = os.Rename(tmp, path)
				}
			}
			if err != nil {
				if _, serr := os.Stat(path); serr != nil {
					os.Remove(tmp)
				}
				return err
			}
			abs, _ := filepath.Abs(path)
			st, _ := os.Stat(path)
			if f.json {
				return writeJSON(s.stdout, struct {
					File  string `json:"file"`
					Bytes int64  `json:"bytes"`
					backup.Info
				}{abs, st.Size(), info})
			}
			fmt.Fprintf(s.stdout, "backup: database %s from %s (%s) in %s: %d KiB of SQL, %d KiB compressed, %.1fs\n",
				info.Database, info.Host, info.Server, abs, info.SQLBytes>>10, st.Size()>>10, info.Elapsed.Seconds())
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

func newRestoreCmd() *cobra.Command {
	var f engineFlags
	var yes bool
	cmd := &cobra.Command{
		Use:   "restore FILE",
		Short: "Replace the cluster's MySQL database with a backup",
		Long: `Restore loads a file written by provision backup into the database on the
mysql host (creating the database if the host was rebuilt without it).
The consumers are stopped for the load and started again afterwards;
they go on from the offsets of the backup, so what Kafka still retains
of the time since is counted again, once. It asks you to type the cluster
name unless --yes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := os.Open(args[0])
			if err != nil {
				return fmt.Errorf("restore: %w", err)
			}
			defer in.Close()
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			inv := s.eng.Inventory()
			if !yes {
				what := fmt.Sprintf("restore replaces database %s of cluster %s with %s; the consumers stop meanwhile.", inv.MySQL.Database, inv.Cluster.Name, args[0])
				if err := confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), inv, "restore", what); err != nil {
					return err
				}
			}
			c := cluster.Open(inv, "")
			defer c.Close()
			progress := func(line string) { fmt.Fprintln(cmd.ErrOrStderr(), "restore:", line) }
			res, err := backup.Load(s.ctx, inv, c, in, progress)
			if err != nil {
				return err
			}
			if f.json {
				return writeJSON(s.stdout, res)
			}
			fmt.Fprintf(s.stdout, "restore: %s loaded in %.1fs; consumers started again on %v\n", res.Header, res.Elapsed.Seconds(), res.Consumers)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/evidence"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
)

// evidenceHost describes what to read on host: the roles named (all that
// apply there when none is), their log sources and rendered files.
func evidenceHost(ctx context.Context, inv *inventory.Inventory, conn cluster.Connector, name string, only ...string) (evidence.Host, error) {
	h := evidence.Host{Name: name}
	host, ok := inv.Host(name)
	if !ok {
		return h, fmt.Errorf("%s has no host %q", inv.File, name)
	}
	c, err := conn.Client(ctx, name)
	if err != nil {
		return h, err
	}
	os, err := facts.Detect(ctx, c)
	if err != nil {
		return h, fmt.Errorf("%s: %w", name, err)
	}
	rc, err := maskedContext(inv, os, host)
	if err != nil {
		return h, err
	}
	files, roles, err := roleFiles(rc)
	if err != nil {
		return h, err
	}
	for _, r := range roles {
		if len(only) > 0 && !slices.Contains(only, r.Name()) {
			continue
		}
		h.Roles = append(h.Roles, r.Name())
		if lr, ok := r.(role.LogRole); ok {
			l := lr.Logs(rc)
			h.Logs.Units = append(h.Logs.Units, l.Units...)
			h.Logs.Files = append(h.Logs.Files, l.Files...)
		}
	}
	if len(only) > 0 && len(h.Roles) == 0 {
		var names []string
		for _, r := range roles {
			names = append(names, r.Name())
		}
		return h, fmt.Errorf("%s carries no role %s (it has: %s)", name, strings.Join(only, ", "), strings.Join(names, ", "))
	}
	h.Logs.Units = uniq(h.Logs.Units)
	h.Logs.Files = uniq(h.Logs.Files)
	h.Files = files
	return h, nil
}

func uniq(s []string) []string {
	var out []string
	for _, v := range s {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// collectEvidence gathers what the hosts named say, after a failed
// command, and prints where it is. Its own failure is only reported: the
// command's failure is what matters.
func collectEvidence(ctx context.Context, w io.Writer, stateDir, command, runDir, why string, inv *inventory.Inventory, hosts []string) {
	// Rows of no single host (the site, the VIP) name no inventory host.
	hosts = slices.DeleteFunc(uniq(hosts), func(name string) bool {
		return !slices.ContainsFunc(inv.Hosts, func(h inventory.Host) bool { return h.Name == name })
	})
	if len(hosts) == 0 {
		return
	}
	// The command may have failed by being cancelled; the evidence is
	// still worth a bounded moment.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	c := cluster.Open(inv, "")
	defer c.Close()
	var hs []evidence.Host
	for _, name := range hosts {
		h, err := evidenceHost(ctx, inv, c, name)
		if err != nil {
			h = evidence.Host{Name: name}
			why += fmt.Sprintf("\n%s: %v", name, err)
		}
		hs = append(hs, h)
	}
	dir := filepath.Join(stateDir, "evidence", command+"-"+time.Now().Format("20060102-150405"))
	summary := fmt.Sprintf("provision %s failed at %s\n\n%s", command, time.Now().Format(time.RFC3339), why)
	tarball, err := evidence.Collect(ctx, c, dir, runDir, summary, hs)
	if err != nil {
		fmt.Fprintf(w, "evidence: could not collect it: %v\n", err)
		return
	}
	fmt.Fprintf(w, "evidence of the failure from %s: %s (and %s)\n", strings.Join(hosts, ", "), dir, tarball)
}

func newLogsCmd() *cobra.Command {
	var f engineFlags
	lines := 100
	cmd := &cobra.Command{
		Use:   "logs HOST [ROLE...]",
		Short: "Print the end of a host's role logs: unit status, journal, log files",
		Long: `Logs reads, over SSH, what the services of HOST's roles (or only the ROLEs
named) say: each unit's status, the last lines of their journal, and the
last lines of the roles' own log files (Kafka's server.log, nginx's error
and access logs, ...).`,
		Example: "  provision logs kafka-2 kafka\n  provision logs db-1 -n 500",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			inv := s.eng.Inventory()
			c := cluster.Open(inv, "")
			defer c.Close()
			h, err := evidenceHost(s.ctx, inv, c, args[0], args[1:]...)
			if err != nil {
				return err
			}
			out := s.stdout
			fmt.Fprintf(out, "==== %s: roles %s\n", h.Name, strings.Join(h.Roles, ", "))
			var cmds [][2]string
			if len(h.Logs.Units) > 0 {
				cmds = append(cmds, [2]string{"status of " + strings.Join(h.Logs.Units, ", "), evidence.Status(h.Logs.Units)},
					[2]string{"journal", evidence.Journal(h.Logs.Units, lines)})
			}
			if len(h.Logs.Files) > 0 {
				cmds = append(cmds, [2]string{"log files", evidence.Tails(h.Logs.Files, lines)})
			}
			for _, x := range cmds {
				text, err := c.Run(s.ctx, h.Name, x[1])
				fmt.Fprintf(out, "\n==== %s\n%s", x[0], text)
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().IntVarP(&lines, "lines", "n", lines, "lines of each journal and log file")
	return cmd
}

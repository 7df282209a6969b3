package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/provision/verify"
)

func newVerifyCmd() *cobra.Command {
	var f engineFlags
	var limit string
	o := verify.Defaults
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove the running cluster works: every component, then the data path end to end",
		Long: `Verify checks every component — chrony synced, ZooKeeper's quorum and roles,
brokers and controller, the topic's partitions with leader and ISR, each web
server, each load balancer and exactly one VIP holder, filebeat (running, and
what Kafka acknowledged of it), MySQL, the
consumer's lag, the dashboard — then sends probe requests with unique ids
through the VIP; each must reach MySQL's probe table within --within. It
prints a table (or --json) and the probes' latency p50/p95, and exits 1
with the failing rows when anything fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openLiveSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.close()
			hosts, err := s.limit(limit)
			if err != nil {
				return err
			}
			start := time.Now()
			rep := verify.Run(s.ctx, &verify.Env{Inventory: s.eng.Inventory(), Cluster: s.cluster, Secrets: s.secrets, Components: components}, o)
			if hosts != nil {
				// Every check runs (a quorum is the ensemble's); the
				// limited hosts' rows and the cluster's are shown.
				rep.Rows = rep.Rows.On(hostNames(hosts))
				rep.OK = len(rep.Failed()) == 0
			}
			if f.json {
				if err := writeJSON(s.stdout, rep); err != nil {
					return err
				}
			} else {
				rep.Rows.Print(s.stdout)
				if len(rep.Probes) > 0 {
					fmt.Fprintf(s.stdout, "\nprobes: %d through the VIP, latency to MySQL p50 %.2fs p95 %.2fs\n", len(rep.Probes), rep.P50.Seconds(), rep.P95.Seconds())
				}
				fmt.Fprintf(s.stdout, "verify: %s in %.1fs\n", map[bool]string{true: "ok", false: "FAILED"}[rep.OK], time.Since(start).Seconds())
			}
			if !rep.OK {
				var hosts []string
				var why strings.Builder
				for _, r := range rep.Failed() {
					if r.Host != "" {
						hosts = append(hosts, r.Host)
					}
					fmt.Fprintf(&why, "%s %s: %s %s\n", r.Component, r.Host, r.State, r.Detail)
				}
				defer collectEvidence(s.ctx, s.progress(), s.eng.StateDir(), "verify", "", why.String(), s.eng.Inventory(), hosts)
				if !f.json {
					fmt.Fprintln(cmd.ErrOrStderr(), "\nfailing:")
					rep.Failed().Print(cmd.ErrOrStderr())
				}
				return exitCode(1)
			}
			return nil
		},
	}
	f.add(cmd)
	addLimit(cmd, &limit)
	cmd.Flags().IntVar(&o.Probes, "probes", o.Probes, "probe requests to send through the VIP (0: none)")
	cmd.Flags().DurationVar(&o.Within, "within", o.Within, "how long each probe may take to reach MySQL")
	return cmd
}

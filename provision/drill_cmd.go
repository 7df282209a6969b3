package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/provision/drill"
)

func newDrillCmd() *cobra.Command {
	var f engineFlags
	var names []string
	for _, d := range drill.All() {
		names = append(names, d.Name)
	}
	cmd := &cobra.Command{
		Use:   "drill NAME...|all",
		Short: "Break part of the running cluster on purpose, measure, and restore it",
		Long: `Drill breaks one part of the running cluster on purpose, measures how the
rest copes, and puts it back as it found it, even when interrupted.
Drills: ` + strings.Join(names, ", ") + `; "all" runs every one in a safe order.
A drill that cannot mean anything for what is installed says so and why.
Exit status 1 when a drill failed.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			drills, err := drill.Select(drill.All(), args)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "provision drill:", err)
				return exitCode(2)
			}
			s, err := openLiveSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.close()
			progress := cmd.OutOrStdout()
			if f.json {
				progress = cmd.ErrOrStderr()
			}
			env := drill.NewEnv(s.eng.Inventory(), s.cluster, progress)
			env.Secrets = s.secrets // drills that read MySQL log in as the consumer
			ctx := s.ctx
			results := drill.RunAll(ctx, env, drills)
			if f.json {
				if err := writeJSON(cmd.OutOrStdout(), results); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(cmd.OutOrStdout())
				drill.Table(cmd.OutOrStdout(), results)
			}
			if drill.AnyFailed(results) {
				var hosts []string
				var why strings.Builder
				for _, r := range results {
					if r.Outcome != drill.Failed {
						continue
					}
					fmt.Fprintf(&why, "drill %s: %s\n", r.Drill, r.Reason)
					for _, d := range drills {
						if d.Name == r.Drill {
							for _, h := range s.eng.Inventory().HostsWith(d.Needs) {
								hosts = append(hosts, h.Name)
							}
						}
					}
				}
				collectEvidence(ctx, s.progress(), s.eng.StateDir(), "drill", "", why.String(), s.eng.Inventory(), hosts)
				return exitCode(1)
			}
			return ctx.Err()
		},
	}
	f.add(cmd)
	return cmd
}

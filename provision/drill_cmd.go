package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/provision/drill"
	"github.com/trafficlab/trafficlab/provision/engine"
)

func newDrillCmd() *cobra.Command {
	var f engineFlags
	var names []string
	for _, d := range drill.All() {
		if d.TakesHost {
			names = append(names, d.Name+" HOST")
		} else {
			names = append(names, d.Name)
		}
	}
	var recreate string
	cmd := &cobra.Command{
		Use:   "drill NAME...|all|replace HOST",
		Short: "Break part of the running cluster on purpose, measure, and restore it",
		Long: `Drill breaks one part of the running cluster on purpose, measures how the
rest copes, and puts it back as it found it, even when interrupted.
Drills: ` + strings.Join(names, ", ") + `; "all" runs every one in a safe order,
except replace, which is named with its host.

replace HOST loses a broker host with its data while producing, rebuilds it
with up --limit HOST and measures the time until every partition's ISR is
whole again; nothing acknowledged may be lost. By default the loss is the
broker's disk (Kafka stopped, its log directories emptied); --recreate CMD
runs CMD instead (TRAFFICLAB_HOST holds the host's name) to replace the
whole machine with a new one of the same name and address.

A drill that cannot mean anything for what is installed says so and why.
Exit status 1 when a drill failed.`,
		Example: "  provision drill all\n  provision drill kafka web\n  provision drill replace kafka-2\n  provision drill replace kafka-2 --recreate 'lab destroy-machine $TRAFFICLAB_HOST && lab up'",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			drills, err := drill.Select(drill.All(), args)
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "provision drill:", err)
				return exitCode(2)
			}
			if recreate != "" && !slices.ContainsFunc(drills, func(d drill.Drill) bool { return d.TakesHost }) {
				fmt.Fprintln(cmd.ErrOrStderr(), "provision drill: --recreate is for a drill that replaces a host (replace HOST)")
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
			env.Recreate = recreate
			env.Up = func(ctx context.Context, names []string) error {
				hosts, err := s.eng.Inventory().Select(strings.Join(names, ","))
				if err != nil {
					return err
				}
				sum, err := s.eng.Up(ctx, engine.UpOptions{Limit: hosts})
				if err != nil && sum != nil && sum.Error != "" {
					return fmt.Errorf("%w: %s", err, sum.Error)
				}
				return err
			}
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
	cmd.Flags().StringVar(&recreate, "recreate", "", "for replace: a shell command that replaces the host's machine (TRAFFICLAB_HOST is its name)")
	f.add(cmd)
	return cmd
}

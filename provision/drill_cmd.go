package main

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/inventory"
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
	var via []string
	cmd := &cobra.Command{
		Use:   "drill NAME...|all|replace HOST|upgrade --via FILE...",
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

upgrade --via FILE [--via FILE...] runs provision up with each inventory in
turn (the same state: the cluster's next phases, e.g. kafka.mode migrating,
then kraft, then the zookeeper roles off, then a new kafka.version) while
producing with acks=all and sending signed probes through the VIP; every
acknowledged message must be read back and every probe the site answered
must be in MySQL exactly once. It prints each phase's time and the longest
produce stall. Nothing is undone: "all" leaves it out.

A drill that cannot mean anything for what is installed says so and why.
Exit status 1 when a drill failed.`,
		Example: "  provision drill upgrade --via migrating.yaml --via kraft.yaml --via no-zookeeper.yaml --via kafka-4.yaml\n  provision drill all\n  provision drill kafka web\n  provision drill replace kafka-2\n  provision drill replace kafka-2 --recreate 'lab destroy-machine $TRAFFICLAB_HOST && lab up'",
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
			upgrading := slices.ContainsFunc(drills, func(d drill.Drill) bool { return d.Name == drill.Upgrade.Name })
			if len(via) > 0 != upgrading {
				fmt.Fprintln(cmd.ErrOrStderr(), "provision drill: upgrade goes with --via FILE (the inventories to apply in turn), and --via with upgrade")
				return exitCode(2)
			}
			var next []*inventory.Inventory
			for _, file := range via {
				inv, err := loadInventory(cmd.ErrOrStderr(), file)
				if err != nil {
					return err
				}
				next = append(next, inv)
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
			env.Via = via
			env.UpWith = func(ctx context.Context, file string) (*inventory.Inventory, error) {
				inv := next[slices.Index(via, file)]
				eng, err := engine.New(engine.Options{Inventory: inv, StateDir: f.state, Out: progress, Verbose: f.verbose})
				if err != nil {
					return nil, err
				}
				sum, err := eng.Up(ctx, engine.UpOptions{})
				if err != nil && sum != nil && sum.Error != "" && !strings.Contains(err.Error(), sum.Error) {
					return nil, fmt.Errorf("%w: %s", err, sum.Error)
				}
				return inv, err
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
	cmd.Flags().StringArrayVar(&via, "via", nil, "for upgrade: an inventory file to apply with up, in turn (repeat, in order)")
	cmd.Flags().StringVar(&recreate, "recreate", "", "for replace: a shell command that replaces the host's machine (TRAFFICLAB_HOST is its name)")
	f.add(cmd)
	return cmd
}

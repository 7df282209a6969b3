package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/drill"
)

func newDrillCmd() *cobra.Command {
	var file string
	var asJSON bool
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
			if file == "" {
				if file, err = inventory.Find(); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "provision:", err)
					return exitCode(2)
				}
			}
			inv, err := loadInventory(cmd.ErrOrStderr(), file)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			c := cluster.Open(inv, "")
			defer c.Close()
			progress := cmd.OutOrStdout()
			if asJSON {
				progress = cmd.ErrOrStderr()
			}
			env := drill.NewEnv(inv, c, progress)
			results := drill.RunAll(ctx, env, drills)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(results); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(cmd.OutOrStdout())
				drill.Table(cmd.OutOrStdout(), results)
			}
			if drill.AnyFailed(results) {
				return exitCode(1)
			}
			return context.Cause(ctx)
		},
	}
	cmd.Flags().StringVarP(&file, "inventory", "i", "", "inventory file (default: ./"+inventory.DefaultFile+", else the local lab's "+inventory.LabFile+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the results as JSON (progress goes to stderr)")
	return cmd
}

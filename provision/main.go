// Command provision configures the hosts of a trafficlab inventory over SSH.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/consumer/store"
)

// exitCode lets a subcommand choose the process exit status (2 for bad
// input, 1 for a failure) while cobra keeps printing usage errors itself.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	root := &cobra.Command{
		Use:           "provision",
		Short:         "Stand up and check a trafficlab cluster from one inventory file",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newValidateCmd(), newRenderCmd(), newUpCmd(), newPreviewCmd(), newRefreshCmd(), newDestroyCmd(), newStatusCmd(), newDrillCmd(), newVerifyCmd(), newBackupCmd(), newRestoreCmd(), newLogsCmd())
	// verify and the drills log into MySQL: its driver's messages stay
	// out of the progress lines.
	store.LogDriverTo(slog.Default())
	if err := root.Execute(); err != nil {
		if code, ok := err.(exitCode); ok {
			os.Exit(int(code))
		}
		fmt.Fprintln(os.Stderr, "provision:", err)
		os.Exit(1)
	}
}

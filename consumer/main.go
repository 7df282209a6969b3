// Command consumer is trafficlab's log consumer: it reads the nginx access
// logs that filebeat ships through Kafka. The run command is the service
// (aggregates and offsets into MySQL, exactly once, and the alert
// evaluator); dashboard serves the web page and its JSON API from MySQL;
// parse runs the consumer's parser over lines on stdin.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "consumer:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "consumer",
		Short: "Consume trafficlab's nginx access logs",
		// Usage is for mistakes in the command line, not for a failing run.
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newParseCmd(), newRunCmd(), newDashboardCmd())
	return root
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/service"
	"github.com/trafficlab/trafficlab/consumer/store"
)

func newRunCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Consume the access-log topic into MySQL until SIGTERM",
		Long: `Run reads nginx access logs from Kafka (filebeat JSON events or raw lines),
aggregates them per minute and backend, and commits the aggregates together
with the Kafka offsets to MySQL in one transaction, so that a crash at any
moment neither loses nor double-counts a line. Offsets live in MySQL only.

The configuration file holds the MySQL password and must be mode 0600.
SIGTERM or SIGINT flushes and commits, then exits. MySQL or Kafka outages
are retried with backoff. /metrics (Prometheus) and /healthz are served on
the configured listen address.`,
		Example: `  consumer run --config /etc/trafficlab/consumer.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			level, _ := cfg.SlogLevel() // validated by Load
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			// The MySQL driver's own messages (a dropped idle connection)
			// go to the same log, at debug level: the service reports
			// what matters itself.
			store.LogDriverTo(log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return runService(ctx, cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "/etc/trafficlab/consumer.yaml", "configuration file (YAML, mode 0600)")
	return cmd
}

func runService(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	svc, err := service.New(cfg, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	if err := svc.Run(ctx); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

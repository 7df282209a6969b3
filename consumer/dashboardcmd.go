package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/dashboard"
	"github.com/trafficlab/trafficlab/consumer/store"
)

func newDashboardCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the traffic dashboard and its JSON API from MySQL",
		Long: `Dashboard serves the web page (charts of requests, bandwidth with the month's
95th percentile, status classes and backends; top URIs and clients; alerts),
its JSON API under /api/ and /healthz on dashboard.listen, behind HTTP basic
auth (dashboard.user, dashboard.password; /healthz is open and says only
ok or unavailable). Every asset is in the binary. It reads the same
configuration format as run (mode 0600) and only reads MySQL, with an
account that may only SELECT: run applies the schema migrations, and the
API answers 503 until it has.`,
		Example: `  consumer dashboard --config /etc/trafficlab/consumer.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path)
			if err != nil {
				return err
			}
			level, _ := cfg.SlogLevel()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			store.LogDriverTo(log)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return serveDashboard(ctx, cfg, log)
		},
	}
	cmd.Flags().StringVar(&path, "config", "/etc/trafficlab/consumer.yaml", "configuration file (YAML, mode 0600)")
	return cmd
}

func serveDashboard(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	st, err := store.Open(cfg.MySQL)
	if err != nil {
		return err
	}
	defer st.Close()
	// The dashboard's account reads only: `consumer run` migrates the
	// schema. Until it has, the API answers 503 and the log says why.
	d, err := dashboard.New(st, log, dashboard.Options{User: cfg.Dashboard.User, Password: cfg.Dashboard.Password})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Dashboard.Listen)
	if err != nil {
		return fmt.Errorf("dashboard: listen %s: %w", cfg.Dashboard.Listen, err)
	}
	srv := dashboard.NewHTTPServer(d.Handler(), dashboard.DefaultTimeouts, log)
	log.Info("dashboard serving", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard: shutdown: %w", err)
	}
	return nil
}

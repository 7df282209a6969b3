//go:build linux

// Command lab creates trafficlab's practice machines on one Linux host:
// systemd-nspawn machines on a private bridge, with a caching package proxy
// and an NTP server, and writes the inventory that points the provisioner at
// them. Run it as root: `go run ./lab up`.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/lab/labctl"
	"github.com/trafficlab/trafficlab/lab/layout"
	"github.com/trafficlab/trafficlab/lab/network"
	"github.com/trafficlab/trafficlab/lab/progress"
)

func main() {
	// `lab up | head` must not kill the lab halfway through a change.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

func newRoot(out io.Writer) *cobra.Command {
	var (
		debug    bool
		cacheDir string
	)
	lab := func() *labctl.Lab {
		l := labctl.New(progress.New(out))
		l.CacheDir = cacheDir
		return l
	}
	root := &cobra.Command{
		Use:           "lab",
		Short:         "Create trafficlab's practice machines (systemd-nspawn) on this host",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			level := slog.LevelWarn
			if debug {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.PersistentFlags().BoolVar(&debug, "debug", false, "log every command the lab runs")
	root.PersistentFlags().StringVar(&cacheDir, "cache-dir", labctl.DefaultCacheDir, "base images and package cache, kept by down (state: "+labctl.DefaultStateDir+", removed by down)")

	var upOpts labctl.UpOptions
	up := &cobra.Command{
		Use:   "up",
		Short: "Create or repair the lab's machines, proxy and NTP server; print the inventory path",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l := lab()
			res, err := l.Up(cmd.Context(), upOpts)
			if err != nil {
				return err
			}
			if st, err := l.Status(cmd.Context()); err == nil {
				fmt.Fprintf(out, "figures: %d machines reachable %.1fs after start; memory %s PSS (%s RSS)\n",
					len(st.Machines), res.Reachable.Seconds(), mib(st.PSS), mib(st.RSS))
			}
			fmt.Fprintf(out, "inventory: %s\n", res.Inventory)
			return nil
		},
	}
	up.Flags().StringVar(&upOpts.Layout, "layout", "", "machine layout: "+strings.Join(layout.Names(), "|")+" (default: the running lab's, else default)")
	up.Flags().StringVar(&upOpts.Subnet, "subnet", "", "private IPv4 subnet for the bridge (default: the running lab's, else "+network.DefaultSubnet+")")

	var purge bool
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop and remove every machine, the network, proxy and NTP server (caches are kept)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return lab().Down(cmd.Context(), purge)
		},
	}
	down.Flags().BoolVar(&purge, "purge", false, "also remove the base image and package caches")

	var statusJSON bool
	status := &cobra.Command{
		Use:   "status",
		Short: "Show machines, addresses, whether each runs and answers SSH, and memory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := lab().Status(cmd.Context())
			if err != nil {
				return err
			}
			if statusJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(out, st)
			return nil
		},
	}
	status.Flags().BoolVar(&statusJSON, "json", false, "print the status as JSON")

	ssh := &cobra.Command{
		Use:   "ssh NAME [COMMAND...]",
		Short: "Open a root shell on a machine (or run COMMAND) with the lab key",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			argv, err := lab().SSHCommand(args[0], args[1:]...)
			if err != nil {
				return err
			}
			path, err := exec.LookPath(argv[0])
			if err != nil {
				return err
			}
			return syscall.Exec(path, argv, os.Environ())
		},
	}
	ssh.Flags().SetInterspersed(false)

	machineCmd := func(use, short string, f func(*labctl.Lab, context.Context, string) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " NAME", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return f(lab(), cmd.Context(), args[0]) },
		}
	}
	root.AddCommand(up, down, status, ssh,
		machineCmd("stop", "Shut a machine down cleanly", (*labctl.Lab).StopMachine),
		machineCmd("start", "Boot a stopped machine", (*labctl.Lab).StartMachine),
		machineCmd("cut", "Take a machine's link down (failure drill)", (*labctl.Lab).Cut),
		machineCmd("heal", "Bring a cut machine's link back", (*labctl.Lab).Heal),
		machineCmd("destroy-machine", "Kill a machine and delete its disk (a host lost for good); lab up creates it again", (*labctl.Lab).DestroyMachine),
	)
	return root
}

func printStatus(out io.Writer, st *labctl.Status) {
	fmt.Fprintf(out, "layout %s, subnet %s, inventory %s\n", st.Layout, st.Subnet, st.Inventory)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tRUNNING\tLINK\tSSH\tMEMORY (PSS)\tROLES")
	for _, m := range st.Machines {
		ssh := "no"
		if m.SSH {
			ssh = "yes"
		}
		run := "no"
		if m.Running {
			run = fmt.Sprintf("yes (pid %d)", m.Pid)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", m.Name, m.Address, run, m.Link, ssh, mib(m.PSS), strings.Join(m.Roles, ","))
	}
	tw.Flush()
	svc := func(s string) string {
		if s == "" {
			return "not running"
		}
		return s
	}
	fmt.Fprintf(out, "package proxy: %s; NTP server: %s\n", svc(st.Proxy), svc(st.NTP))
	fmt.Fprintf(out, "memory of %d machines: %s PSS (%s RSS)\n", len(st.Machines), mib(st.PSS), mib(st.RSS))
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/engine"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/role"
)

// engineFlags are the flags every Pulumi-driven command shares.
type engineFlags struct {
	inventory string
	state     string
	json      bool
	verbose   bool
}

func (f *engineFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.inventory, "inventory", "i", "", "inventory file (default: ./"+inventory.DefaultFile+", else the local lab's "+inventory.LabFile+")")
	cmd.Flags().StringVar(&f.state, "state", "", "state directory (default: $"+engine.StateEnv+", else /var/lib/trafficlab/state as root, ~/.local/state/trafficlab otherwise)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print the summary as JSON on stdout (progress goes to stderr)")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "print every step and Pulumi's own output")
}

// exit codes beyond 0, 1 and 2 (bad input).
const exitCancelled = 130

// session is one command's engine with its interrupt handling: the first
// Ctrl-C lets running steps finish and starts no new ones, the second stops
// the running commands too.
type session struct {
	eng    *engine.Engine
	ctx    context.Context
	stop   func()
	stdout io.Writer // the report
	flags  *engineFlags
}

// writeJSON prints v as indented JSON: what --json prints.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// addLimit adds --limit to a command.
func addLimit(cmd *cobra.Command, limit *string) {
	cmd.Flags().StringVar(limit, "limit", "", "only these hosts: HOST[,HOST...], a role name standing for its hosts (kafka, lb, ...)")
}

// limit resolves --limit against the inventory; nil means every host.
func (s *session) limit(spec string) ([]inventory.Host, error) {
	if spec == "" {
		return nil, nil
	}
	hosts, err := s.eng.Inventory().Select(spec)
	if err != nil {
		return nil, usageError(err)
	}
	return hosts, nil
}

// usageError prints a bad flag's message and exits 2, as a bad inventory
// does.
func usageError(err error) error {
	fmt.Fprintln(os.Stderr, "provision:", err)
	return exitCode(2)
}

// hostNames lists the names of hosts.
func hostNames(hosts []inventory.Host) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, h.Name)
	}
	return out
}

// progress is where progress lines go: stdout, or stderr with --json.
func (s *session) progress() io.Writer {
	if s.flags.json {
		return os.Stderr
	}
	return s.stdout
}

func openSession(cmd *cobra.Command, f *engineFlags) (*session, error) {
	file := f.inventory
	if file == "" {
		var err error
		if file, err = inventory.Find(); err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "provision:", err)
			return nil, exitCode(2)
		}
	}
	inv, err := loadInventory(cmd.ErrOrStderr(), file)
	if err != nil {
		return nil, err
	}
	progress := cmd.OutOrStdout()
	if f.json {
		progress = cmd.ErrOrStderr()
	}
	ctx, cancel := context.WithCancel(cmd.Context())
	abort := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case <-sigs:
			case <-done:
				return
			}
			n++
			switch n {
			case 1:
				fmt.Fprintln(cmd.ErrOrStderr(), "\ninterrupted: letting running steps finish, starting no new ones (Ctrl-C again to stop them now)")
				cancel()
			case 2:
				fmt.Fprintln(cmd.ErrOrStderr(), "\ninterrupted again: stopping the running commands")
				close(abort)
			}
		}
	}()
	eng, err := engine.New(engine.Options{
		Inventory: inv,
		StateDir:  f.state,
		Out:       progress,
		Verbose:   f.verbose,
		Abort:     abort,
	})
	stop := func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
	if err != nil {
		stop()
		return nil, err
	}
	return &session{eng: eng, ctx: ctx, stop: stop, stdout: cmd.OutOrStdout(), flags: f}, nil
}

// liveSession is a session for commands that work on the running cluster
// (verify, drill): connections to its hosts, and its secrets, to log in
// where the roles set passwords (MySQL, as the consumer).
type liveSession struct {
	*session
	cluster *cluster.Cluster
	secrets role.Secrets
}

func openLiveSession(cmd *cobra.Command, f *engineFlags) (*liveSession, error) {
	s, err := openSession(cmd, f)
	if err != nil {
		return nil, err
	}
	secrets, err := s.eng.Secrets(s.ctx)
	if err != nil {
		s.stop()
		return nil, err
	}
	return &liveSession{session: s, cluster: cluster.Open(s.eng.Inventory(), ""), secrets: secrets}, nil
}

func (l *liveSession) close() {
	l.cluster.Close()
	l.stop()
}

// loadInventory loads and validates the inventory, printing every problem
// like `provision validate` does.
func loadInventory(stderr io.Writer, file string) (*inventory.Inventory, error) {
	inv, err := inventory.Load(file)
	var problems inventory.Problems
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			fmt.Fprintln(stderr, p.Error())
		}
		return nil, exitCode(2)
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stderr, "provision: %s: no such file (choose the inventory with -i FILE)\n", file)
		return nil, exitCode(2)
	case err != nil:
		fmt.Fprintf(stderr, "provision: %v\n", err)
		return nil, exitCode(2)
	}
	return inv, nil
}

// report prints the summary (as JSON with --json) and turns the outcome
// into the exit status.
func (s *session) report(sum *engine.Summary, err error) error {
	if sum != nil {
		if s.flags.json {
			if jerr := writeJSON(s.stdout, sum); jerr != nil {
				return jerr
			}
		} else {
			sum.Print(s.stdout)
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrCancelled) || sum != nil && sum.Cancelled:
		return exitCode(exitCancelled)
	case sum != nil:
		// The summary already names every failure.
		return exitCode(1)
	}
	return err
}

func newUpCmd() *cobra.Command {
	var f engineFlags
	var o engine.UpOptions
	var limit string
	refresh := true
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Configure every host as the inventory says",
		Long: `Up configures every host of the inventory: one Pulumi resource per role per
host, each running the role's idempotent steps over SSH. It first checks the
hosts (a refresh), so hand edits are found and repaired; --refresh=false skips
that. A second up with nothing changed changes nothing.

Progress lines show each change with its elapsed time; at the end a table
shows per host how many steps changed, were unchanged or failed. A failure
names host, resource and step with the end of the command's stderr; the other
hosts still finish, and the exit status is 1. Ctrl-C lets running steps finish
and stops; run up again to continue.`,
		Example: "  provision up\n  provision up -i inventory/examples/seed-centos.yaml --json\n  provision up --force   # re-run every step; on a converged cluster all report unchanged",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.NoRefresh = !refresh
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			if o.Limit, err = s.limit(limit); err != nil {
				return err
			}
			if err := engine.CheckConcurrency(s.eng.Inventory(), o.Concurrency); err != nil {
				return usageError(err)
			}
			sum, err := s.eng.Up(s.ctx, o)
			rerr := s.report(sum, err)
			if sum != nil && !sum.OK && !sum.Cancelled {
				var hosts []string
				var why strings.Builder
				for _, f := range sum.Failures {
					hosts = append(hosts, f.Host)
					fmt.Fprintln(&why, f.Error())
				}
				collectEvidence(s.ctx, s.progress(), s.eng.StateDir(), "up", sum.RunDir, why.String(), s.eng.Inventory(), hosts)
			}
			return rerr
		},
	}
	f.add(cmd)
	addLimit(cmd, &limit)
	cmd.Flags().IntVar(&o.Concurrency, "concurrency", 0, "work on at most N hosts at once (0: all; at least a quorum of ZooKeeper or KRaft controllers)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "re-run every resource's steps whatever the state says (they change only what differs)")
	cmd.Flags().BoolVar(&refresh, "refresh", true, "check the hosts first, so that hand edits are repaired")
	return cmd
}

func newPreviewCmd() *cobra.Command {
	var f engineFlags
	var o engine.PreviewOptions
	var limit string
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Show what up would change, changing nothing",
		Long: `Preview shows, per resource (a role on a host), which rendered files and steps
differ from what the last up applied. With --refresh it first checks every
host, so hand edits show up too, with a diff of each file that differs.
Nothing on any host changes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			if o.Limit, err = s.limit(limit); err != nil {
				return err
			}
			return s.report(s.eng.Preview(s.ctx, o))
		},
	}
	f.add(cmd)
	addLimit(cmd, &limit)
	cmd.Flags().BoolVar(&o.Refresh, "refresh", false, "check the hosts first, so that hand edits show up")
	return cmd
}

func newRefreshCmd() *cobra.Command {
	var f engineFlags
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Check every host and record what differs in the state",
		Long: `Refresh checks every host (changing nothing there) and records in the state
what differs from what the last up applied, so preview shows it and up
repairs it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			return s.report(s.eng.Refresh(s.ctx))
		},
	}
	f.add(cmd)
	return cmd
}

func newDestroyCmd() *cobra.Command {
	var f engineFlags
	var yes bool
	var forget string
	cmd := &cobra.Command{
		Use:   "destroy",
		Short: "Remove what trafficlab added on every host",
		Long: `Destroy removes what trafficlab added on every host: its units,
configuration, data directories (Kafka's and MySQL's data too), system users,
the /etc/hosts block, the firewall rules it opened and the package proxy
setting. It leaves OS packages, hostnames, timezones and SELinux modes as they
are, and says so. It asks you to type the cluster name unless --yes.

With --forget HOST[,HOST...] it touches no host: it drops those hosts'
resources from the state, for hosts gone for good (a dead machine, its
disk lost), so that later runs do not try to undo anything there. A host
that still answers over SSH is refused: it is not gone.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			if forget != "" {
				return s.forget(cmd, strings.Split(forget, ","), yes)
			}
			if !yes {
				what := fmt.Sprintf("destroy removes everything trafficlab added on %s, including Kafka and MySQL data.", strings.Join(hostNames(s.eng.Inventory().Hosts), ", "))
				if err := confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), s.eng.Inventory(), "destroy", what); err != nil {
					return err
				}
			}
			return s.report(s.eng.Destroy(s.ctx))
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().StringVar(&forget, "forget", "", "drop these hosts' resources from the state without connecting (hosts gone for good)")
	return cmd
}

// forget drops gone hosts from the state, refusing any that still answers.
func (s *session) forget(cmd *cobra.Command, hosts []string, yes bool) error {
	inv := s.eng.Inventory()
	for _, name := range hosts {
		h, ok := inv.Host(name)
		if !ok {
			continue // removed from the inventory: nothing to reach it by
		}
		c, err := s.eng.Reach(s.ctx, h)
		if err != nil {
			fmt.Fprintf(s.progress(), "%s: not reachable (%v): taken as gone\n", name, err)
			continue
		}
		c.Close()
		why := "it is not gone: run provision destroy to undo what trafficlab did there, or take it off the network first"
		if h.Has(inventory.RoleKafka) {
			why = engine.BrokerStillRuns
		}
		fmt.Fprintf(os.Stderr, "provision destroy --forget: %s answers over SSH at %s: %s\n", name, h.Address, why)
		return exitCode(1)
	}
	if !yes {
		what := fmt.Sprintf("destroy --forget drops every resource of %s from the state of cluster %s; nothing on any host changes.", strings.Join(hosts, ", "), inv.Cluster.Name)
		if err := confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), inv, "destroy --forget", what); err != nil {
			return err
		}
	}
	dropped, err := s.eng.Forget(s.ctx, hosts)
	if err != nil {
		return err
	}
	if s.flags.json {
		return writeJSON(s.stdout, struct {
			Hosts   []string `json:"hosts"`
			Dropped []string `json:"dropped"`
		}{hosts, dropped})
	}
	if len(dropped) == 0 {
		fmt.Fprintf(s.stdout, "destroy --forget: the state holds no resource of %s\n", strings.Join(hosts, ", "))
		return nil
	}
	fmt.Fprintf(s.stdout, "destroy --forget: dropped %d resources of %s from the state, without connecting; nothing on the host was touched:\n", len(dropped), strings.Join(hosts, ", "))
	for _, u := range dropped {
		fmt.Fprintln(s.stdout, "  "+u)
	}
	fmt.Fprintln(s.stdout, "Remove the host from the inventory too, or recreate it and run provision up to rebuild it.")
	return nil
}

// confirm asks for the cluster name, after saying what the command is
// about to do. Without an answer (no terminal, empty stdin) it refuses:
// the commands that ask delete data.
func confirm(stdin io.Reader, w io.Writer, inv *inventory.Inventory, command, what string) error {
	fmt.Fprintln(w, what)
	fmt.Fprintf(w, "Type the cluster name (%s) to confirm: ", inv.Cluster.Name)
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if strings.TrimSpace(line) == inv.Cluster.Name {
		return nil
	}
	fmt.Fprintln(w)
	if err != nil && strings.TrimSpace(line) == "" {
		fmt.Fprintf(w, "provision %s: no confirmation on stdin; nothing done (use --yes to skip the question)\n", command)
	} else {
		fmt.Fprintf(w, "provision %s: the name does not match; nothing done\n", command)
	}
	return exitCode(1)
}

func newStatusCmd() *cobra.Command {
	var f engineFlags
	var offline bool
	var limit string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the stack, and what the cluster's services say now",
		Long: `Status shows what the state says: the hosts and the roles deployed on them,
the stack outputs (VIP, site and dashboard URLs once those roles exist),
Pulumi's record of the last update and the summary of the last provision
run. Then it asks the running cluster (through each host's SSH connection):
each ZooKeeper server's mode (leader or follower), the brokers the cluster
reports, its controller, and the log topic's partitions with their leader
and in-sync replicas. --offline skips that part and connects nowhere.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, &f)
			if err != nil {
				return err
			}
			defer s.stop()
			hosts, err := s.limit(limit)
			if err != nil {
				return err
			}
			st, err := s.eng.Status(s.ctx)
			var rows health.Rows
			if !offline {
				rows = liveStatus(s.ctx, s.eng)
				if hosts != nil {
					rows = rows.On(hostNames(hosts))
				}
			}
			if st != nil {
				if f.json {
					out := struct {
						*engine.Status
						Cluster health.Rows `json:"cluster,omitempty"`
					}{st, rows}
					if jerr := writeJSON(s.stdout, out); jerr != nil {
						return jerr
					}
				} else {
					st.Print(s.stdout)
					if rows != nil {
						fmt.Fprintln(s.stdout)
						rows.Print(s.stdout)
						if len(s.eng.Inventory().HostsWith(inventory.RoleKafka)) > 0 {
							fmt.Fprintln(s.stdout)
							health.ExplainKafka(s.stdout, s.eng.Inventory())
						}
					}
				}
			}
			return err
		},
	}
	f.add(cmd)
	addLimit(cmd, &limit)
	cmd.Flags().BoolVar(&offline, "offline", false, "show only what the state says; connect to no host")
	return cmd
}

// statusTimeout bounds the live part of status: a host that does not
// answer is shown as such, not waited for.
const statusTimeout = 30 * time.Second

// liveStatus asks the cluster's services how they are.
// With Kafka over TLS it reads provision's client certificate from the
// stack first (a plaintext cluster needs no secret, and status stays as
// quick as it was).
func liveStatus(ctx context.Context, eng *engine.Engine) health.Rows {
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	inv := eng.Inventory()
	var secrets role.Secrets
	if inv.Kafka.TLS() {
		var err error
		if secrets, err = eng.Secrets(ctx); err != nil {
			return health.Rows{{Component: "kafka", State: "unknown", Detail: err.Error()}}
		}
	}
	c := cluster.Open(inv, "")
	defer c.Close()
	rows := health.ZooKeeper(ctx, inv, c)
	return append(rows, health.Kafka(ctx, inv, secrets, c.Dial)...)
}

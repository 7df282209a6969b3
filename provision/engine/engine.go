// Package engine drives Pulumi for provision: it plans every host (one SSH
// connection each, facts detected once, files rendered), runs the Pulumi
// CLI through the Automation API with an inline program that registers one
// resource per role per host, serves trafficlab's resource provider in this
// same process (the CLI attaches to it through PULUMI_DEBUG_PROVIDERS), and
// reports per host what changed.
//
// State lives in a local file backend in a state directory outside the
// work tree unless PULUMI_BACKEND_URL says otherwise; there is one stack per
// inventory cluster name. Generated secrets are Pulumi secret configuration
// of that stack, encrypted with a passphrase from PULUMI_CONFIG_PASSPHRASE
// or generated once and kept 0600 beside the state.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optpreview"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/zkmeta"
	"github.com/trafficlab/trafficlab/templates"
)

// projectName is the Pulumi project of every trafficlab stack; it matches
// Pulumi.yaml at the repository root.
const projectName = "trafficlab"

// Options configure an Engine.
type Options struct {
	Inventory *inventory.Inventory
	// StateDir holds the state; "" means DefaultStateDir().
	StateDir string
	// Roles are the roles to configure, base first; nil means Roles().
	Roles []role.Role
	// Out gets the progress lines and the report.
	Out io.Writer
	// Verbose prints every step and Pulumi's own output.
	Verbose bool
	// Abort, when closed, stops running commands at once (a second
	// Ctrl-C); cancelling the operation's context only stops new steps.
	Abort <-chan struct{}
	// SSHConfig says how to reach a host; nil means cluster.SSHConfig.
	SSHConfig func(*inventory.Inventory, inventory.Host) remote.Config
	// Env is added to the pulumi CLI's environment (tests point
	// PULUMI_HOME somewhere of their own).
	Env map[string]string
	// CLI is the pulumi CLI; "" means FindCLI().
	CLI string
}

// Engine runs provision's Pulumi operations on one inventory's stack.
type Engine struct {
	opts  Options
	dirs  dirs
	cli   string
	stack string
}

// New checks that the pulumi CLI is there and prepares the state directory.
func New(opts Options) (*Engine, error) {
	if opts.Inventory == nil {
		return nil, errors.New("engine: no inventory")
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	if opts.Roles == nil {
		opts.Roles = Roles()
	}
	roles, err := Ordered(opts.Inventory, opts.Roles)
	if err != nil {
		return nil, err
	}
	opts.Roles = roles
	if opts.SSHConfig == nil {
		opts.SSHConfig = cluster.SSHConfig
	}
	if opts.StateDir == "" {
		d, err := DefaultStateDir()
		if err != nil {
			return nil, err
		}
		opts.StateDir = d
	}
	if opts.CLI == "" {
		p, err := FindCLI()
		if err != nil {
			return nil, err
		}
		opts.CLI = p
	}
	e := &Engine{opts: opts, dirs: dirs{root: opts.StateDir}, cli: opts.CLI, stack: opts.Inventory.Cluster.Name}
	if err := e.dirs.ensure(); err != nil {
		return nil, err
	}
	return e, nil
}

// Inventory is the inventory the engine works on.
func (e *Engine) Inventory() *inventory.Inventory { return e.opts.Inventory }

// StateDir is the state directory in use.
func (e *Engine) StateDir() string { return e.dirs.root }

// UpOptions change what up does.
type UpOptions struct {
	// Force re-runs every resource's steps whatever Pulumi's diff says.
	Force bool
	// NoRefresh skips probing the hosts first, so hand edits are not
	// noticed and repaired; a little faster.
	NoRefresh bool
	// Limit restricts the run to these hosts' resources (inventory.Select);
	// empty means every host. The others are left as the state has them.
	Limit []inventory.Host
	// Concurrency bounds how many hosts are worked on at once; 0 means
	// no bound.
	Concurrency int
}

// targets are the URNs of the resources of hosts, for Pulumi's --target;
// nil (every resource) when hosts is empty.
func (e *Engine) targets(hosts []inventory.Host) []string {
	return targets(e.stack, e.opts.Inventory, e.opts.Roles, hosts)
}

func targets(stack string, inv *inventory.Inventory, roles []role.Role, hosts []inventory.Host) []string {
	var urns []string
	for _, h := range hosts {
		for _, ro := range roles {
			if role.Applies(ro, inv, h) {
				urns = append(urns, fmt.Sprintf("urn:pulumi:%s::%s::%s::%s", stack, projectName, provider.TypeOf(ro.Name()), provider.Name(h.Name, ro.Name())))
			}
		}
	}
	return urns
}

// CheckConcurrency refuses a bound on hosts worked on at once that would
// leave a quorum unable to form: the first servers of a ZooKeeper
// ensemble (or of KRaft controllers) wait for a majority of them.
func CheckConcurrency(inv *inventory.Inventory, n int) error {
	if n < 0 {
		return fmt.Errorf("--concurrency %d: want 1 or more (0: no bound)", n)
	}
	if n == 0 {
		return nil
	}
	quorum := func(role inventory.Role) int { return len(inv.HostsWith(role))/2 + 1 }
	need, what := 0, ""
	if inv.Kafka.Mode == inventory.KafkaKRaft {
		need, what = quorum(inventory.RoleKafka), "KRaft controllers"
	} else if zk := len(inv.HostsWith(inventory.RoleZooKeeper)); zk > 0 {
		need, what = quorum(inventory.RoleZooKeeper), "ZooKeeper servers"
	}
	if n < need {
		return fmt.Errorf("--concurrency %d: a quorum of the %s needs %d hosts worked on at once (each waits for a majority of them)", n, what, need)
	}
	return nil
}

// run is one operation in progress.
type run struct {
	e       *Engine
	command Command
	start   time.Time
	dir     string
	rec     *recorder
	hosts   *hosts
	exec    *executor
	prov    *provider.Provider
	server  *provider.Server
	cli     *cli
	env     map[string]string
	logFile *os.File
	prevLog *slog.Logger
	events  *eventLog
	stop    context.CancelFunc
	ctx     context.Context
	closed  chan struct{}
}

// stopped reports whether the user interrupted the run.
func (r *run) stopped() bool { return r.ctx != nil && r.ctx.Err() != nil }

// begin sets up what every operation needs: the run directory and its
// logs, the SSH connections (made on demand), the provider and its server.
func (e *Engine) begin(ctx context.Context, command Command) (*run, error) {
	r := &run{e: e, command: command, start: time.Now()}
	var err error
	if r.dir, err = e.dirs.newRunDir(e.stack, string(command), r.start); err != nil {
		return nil, err
	}
	if r.logFile, err = os.OpenFile(filepath.Join(r.dir, "provision.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("run log: %w", err)
	}
	// Everything is logged in the run directory; warnings also reach
	// stderr, where a user sees, say, a host reconnecting.
	r.prevLog = slog.Default()
	slog.SetDefault(slog.New(teeHandler{
		slog.NewTextHandler(r.logFile, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}),
	}))
	slog.Info("provision run", "command", string(command), "stack", e.stack, "inventory", e.opts.Inventory.File, "state", e.dirs.root)

	tmpl, err := templates.Load(e.opts.Inventory.Cluster.Templates)
	if err != nil {
		r.close()
		return nil, err
	}
	r.rec = newRecorder(e.opts.Out, r.start, e.opts.Verbose)
	r.hosts = newHosts(e.opts.Inventory, func(h inventory.Host) remote.Config { return e.opts.SSHConfig(e.opts.Inventory, h) }, r.dir)
	// The first Ctrl-C (ctx) stops new steps; the second (Abort) stops the
	// running commands too.
	stopCtx, stop := context.WithCancel(ctx)
	r.stop, r.ctx = stop, ctx
	abort, cancelAbort := context.WithCancel(context.Background())
	r.closed = make(chan struct{})
	go func() {
		defer cancelAbort()
		select {
		case <-e.opts.Abort: // a nil channel never fires
		case <-r.closed:
		}
	}()
	r.exec = &executor{hosts: r.hosts, roles: map[string]role.Role{}, templates: tmpl, rec: r.rec, stop: stopCtx.Done(), abort: abort}
	for _, ro := range e.opts.Roles {
		r.exec.roles[ro.Name()] = ro
	}
	r.prov = provider.New(r.exec, r.rec.diffed)
	if r.server, err = provider.Serve(r.prov); err != nil {
		r.close()
		return nil, err
	}
	if r.cli, err = newCLI(e.cli, e.opts.Abort); err != nil {
		r.close()
		return nil, err
	}
	r.env = map[string]string{
		"PULUMI_BACKEND_URL":       e.dirs.backendURL(),
		"PULUMI_SKIP_UPDATE_CHECK": "true",
		"PULUMI_DEBUG_PROVIDERS":   r.server.DebugProviders(),
		// Everything the engine needs is here; never try a download.
		"PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
	}
	pass, err := e.dirs.passphraseEnv()
	if err != nil {
		r.close()
		return nil, err
	}
	for k, v := range pass {
		r.env[k] = v
	}
	for k, v := range e.opts.Env {
		r.env[k] = v
	}
	return r, nil
}

func (r *run) close() {
	if r.server != nil {
		if err := r.server.Stop(); err != nil {
			slog.Debug("provider server stopped", "err", err)
		}
	}
	if r.hosts != nil {
		r.hosts.Close()
	}
	if r.stop != nil {
		r.stop()
	}
	if r.closed != nil {
		close(r.closed)
	}
	if r.prevLog != nil {
		slog.SetDefault(r.prevLog)
	}
	if r.logFile != nil {
		r.logFile.Close()
	}
}

func (r *run) workspaceOptions() []auto.LocalWorkspaceOption {
	return []auto.LocalWorkspaceOption{
		auto.WorkDir(r.e.dirs.workspace()),
		auto.EnvVars(r.env),
		auto.Pulumi(r.cli),
		auto.Project(workspace.Project{
			Name:    tokens.PackageName(projectName),
			Runtime: workspace.NewProjectRuntimeInfo("go", nil),
		}),
	}
}

// errNoStack says nothing was deployed for the inventory's cluster yet.
var errNoStack = errors.New("nothing deployed")

func (r *run) selectStack(ctx context.Context) (auto.Stack, error) {
	// refresh, destroy and status run no program.
	noProgram := func(*pulumi.Context) error { return errors.New("no program for this operation") }
	s, err := auto.SelectStackInlineSource(ctx, r.e.stack, projectName, noProgram, r.workspaceOptions()...)
	if err != nil {
		if auto.IsSelectStack404Error(err) {
			return s, fmt.Errorf("%w for cluster %q in %s: run `provision up` first", errNoStack, r.e.stack, describeBackend(r.e.dirs.backendURL()))
		}
		return s, fmt.Errorf("open stack %s: %w", r.e.stack, err)
	}
	if r.command != CommandStatus {
		if err := r.clearPendingOperations(ctx, s); err != nil {
			return s, err
		}
	}
	return s, nil
}

// pulumiLog is where Pulumi's own output goes: the run directory, and the
// terminal too with --verbose.
func (r *run) pulumiLog() ([]io.Writer, func(), error) {
	f, err := os.OpenFile(filepath.Join(r.dir, "pulumi.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("pulumi log: %w", err)
	}
	w := []io.Writer{f}
	if r.e.opts.Verbose {
		w = append(w, r.e.opts.Out)
	}
	return w, func() { f.Close() }, nil
}

// prepare opens (or creates) the stack and resolves the secrets; the
// program then plans and registers every host. Connections are started
// meanwhile, so the hosts are ready when the program needs them.
func (r *run) prepare(ctx context.Context) (auto.Stack, error) {
	inv := r.e.opts.Inventory
	for _, h := range inv.Hosts {
		go func() {
			cctx, cancel := r.exec.connectContext(ctx)
			defer cancel()
			_, _ = r.hosts.get(cctx, h.Name, h.Address) // errors are the program's to report
		}()
	}
	var p *planner
	prog := func(pctx *pulumi.Context) error {
		return program(ctx, inv, p, stackOutputs(inv, r.e.opts.Roles))(pctx)
	}
	s, err := auto.UpsertStackInlineSource(ctx, r.e.stack, projectName, prog, r.workspaceOptions()...)
	if err != nil {
		return s, fmt.Errorf("open stack %s: %w", r.e.stack, err)
	}
	if err := r.clearPendingOperations(ctx, s); err != nil {
		return s, err
	}
	brokersRunning := func(ctx context.Context) (bool, error) {
		res, err := stackResources(ctx, s)
		for _, roles := range res {
			if slices.Contains(roles, kafka.Name) {
				return true, nil
			}
		}
		return false, err
	}
	if err := checkKafkaSecurity(ctx, inv, stackConfig{stack: &s, cli: r.cli, env: r.env}, brokersRunning); err != nil {
		return s, err
	}
	secrets, generated, err := resolveSecrets(ctx, inv, stackConfig{stack: &s, cli: r.cli, env: r.env})
	if err != nil {
		return s, err
	}
	if len(generated) > 0 {
		fmt.Fprintf(r.e.opts.Out, "generated %s (kept as secrets in stack %s)\n", strings.Join(generated, ", "), r.e.stack)
	}
	values, made, err := resolveValues(ctx, inv, r.e.opts.Roles, stackConfig{stack: &s, cli: r.cli, env: r.env})
	if err != nil {
		return s, err
	}
	if len(made) > 0 {
		fmt.Fprintf(r.e.opts.Out, "generated %s (kept in stack %s)\n", strings.Join(made, ", "), r.e.stack)
	}
	dep, err := s.Export(ctx)
	if err != nil {
		return s, fmt.Errorf("export stack %s: %w", r.e.stack, err)
	}
	kc, err := checkKafkaMode(ctx, inv, dep.Deployment, values[kafka.ClusterIDKey], zkmeta.DialFunc(cluster.Dialer(inv, r.hosts)))
	if err != nil {
		return s, err
	}
	if kc.note != "" {
		fmt.Fprintln(r.e.opts.Out, kc.note)
	}
	inv.Kafka.RunningProtocol = kc.protocol
	if len(kc.rollback) > 0 && r.command == CommandUp {
		run := func(ctx context.Context, host, cmd string) error {
			c, err := r.hosts.Client(ctx, host)
			if err != nil {
				return err
			}
			_, err = c.Run(ctx, cmd)
			return err
		}
		if err := rollBack(ctx, inv, kc.rollback, run, zkmeta.DialFunc(cluster.Dialer(inv, r.hosts)), r.e.opts.Out); err != nil {
			return s, err
		}
	}
	if adopt := kc.adopt; adopt != "" {
		// The brokers' id, from ZooKeeper, is the cluster's: the stack's
		// was never written anywhere in ZooKeeper mode.
		values[kafka.ClusterIDKey] = adopt
		what := "up keeps it"
		if r.command == CommandUp {
			what = "kept"
			if err := (stackConfig{stack: &s, cli: r.cli, env: r.env}).set(ctx, configNamespace+kafka.ClusterIDKey, adopt); err != nil {
				return s, fmt.Errorf("keep the cluster id in the stack: %w", err)
			}
		}
		fmt.Fprintf(r.e.opts.Out, "kafka: the migration formats the KRaft controllers with the cluster id the brokers have in ZooKeeper, %s (%s in stack %s)\n", adopt, what, r.e.stack)
	}
	r.exec.values = values
	p = newPlanner(inv, r.e.opts.Roles, r.exec, secrets, values)
	return s, nil
}

// operate runs one Pulumi operation: the run's bookkeeping, the stack
// (prepared from the inventory, or as last applied), the Pulumi log and
// the event watch around call, then the summary.
func (e *Engine) operate(ctx context.Context, command Command, prepare bool,
	call func(r *run, s auto.Stack, logs []io.Writer, ch chan events.EngineEvent) (auto.OutputMap, error)) (*Summary, error) {
	r, err := e.begin(ctx, command)
	if err != nil {
		return nil, err
	}
	defer r.close()
	stack := r.selectStack
	if prepare {
		stack = r.prepare
	}
	s, err := stack(ctx)
	if err != nil {
		return r.finish(nil, err), err
	}
	logs, closeLog, err := r.pulumiLog()
	if err != nil {
		return nil, err
	}
	defer closeLog()
	outputs, err := call(r, s, logs, r.watchEvents())
	sum := r.finish(outputs, r.pulumiError(err))
	return sum, sum.err()
}

// Up makes every host as the inventory says.
func (e *Engine) Up(ctx context.Context, o UpOptions) (*Summary, error) {
	return e.operate(ctx, CommandUp, true, func(r *run, s auto.Stack, logs []io.Writer, ch chan events.EngineEvent) (auto.OutputMap, error) {
		if len(o.Limit) == 0 {
			// A limited up deletes nothing, so it need not know.
			if err := r.settleDeparted(ctx, s, false); err != nil {
				return nil, err
			}
		}
		r.prov.SetForce(o.Force)
		r.exec.gate = newHostGate(o.Concurrency)
		opts := []optup.Option{optup.ProgressStreams(logs...), optup.ErrorProgressStreams(logs...), optup.EventStreams(ch), optup.ContinueOnError()}
		if !o.Force && !o.NoRefresh {
			opts = append(opts, optup.Refresh())
		}
		if urns := e.targets(o.Limit); len(urns) > 0 {
			// The refresh is limited to the targets as well.
			opts = append(opts, optup.Target(urns))
		}
		res, err := s.Up(ctx, opts...)
		return res.Outputs, err
	})
}

// PreviewOptions change what preview does.
type PreviewOptions struct {
	// Refresh probes the hosts first, so hand edits show up.
	Refresh bool
	// Limit restricts the preview to these hosts, as UpOptions.Limit.
	Limit []inventory.Host
}

// Preview shows what up would change, without changing anything.
func (e *Engine) Preview(ctx context.Context, o PreviewOptions) (*Summary, error) {
	return e.operate(ctx, CommandPreview, true, func(r *run, s auto.Stack, logs []io.Writer, ch chan events.EngineEvent) (auto.OutputMap, error) {
		if len(o.Limit) == 0 {
			if err := r.settleDeparted(ctx, s, true); err != nil {
				return nil, err
			}
		}
		opts := []optpreview.Option{optpreview.ProgressStreams(logs...), optpreview.ErrorProgressStreams(logs...), optpreview.EventStreams(ch)}
		if o.Refresh {
			opts = append(opts, optpreview.Refresh())
		}
		if urns := e.targets(o.Limit); len(urns) > 0 {
			opts = append(opts, optpreview.Target(urns))
		}
		_, err := s.Preview(ctx, opts...)
		return nil, err
	})
}

// Refresh probes every host and records in the state what differs, so the
// next preview shows it and the next up repairs it.
func (e *Engine) Refresh(ctx context.Context) (*Summary, error) {
	return e.operate(ctx, CommandRefresh, false, func(_ *run, s auto.Stack, logs []io.Writer, ch chan events.EngineEvent) (auto.OutputMap, error) {
		_, err := s.Refresh(ctx, optrefresh.ProgressStreams(logs...), optrefresh.ErrorProgressStreams(logs...), optrefresh.EventStreams(ch))
		return nil, err
	})
}

// Destroy removes what trafficlab added on every host and empties the
// stack. Confirmation is the caller's business.
func (e *Engine) Destroy(ctx context.Context) (*Summary, error) {
	return e.operate(ctx, CommandDestroy, false, func(_ *run, s auto.Stack, logs []io.Writer, ch chan events.EngineEvent) (auto.OutputMap, error) {
		_, err := s.Destroy(ctx, optdestroy.ProgressStreams(logs...), optdestroy.ErrorProgressStreams(logs...), optdestroy.EventStreams(ch), optdestroy.ContinueOnError())
		return nil, err
	})
}

// pulumiError turns the Automation API's error (which carries the CLI's
// whole output) into a short one; the whole output is in pulumi.log.
func (r *run) pulumiError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || r.stopped() {
		return fmt.Errorf("%w: see %s", ErrCancelled, filepath.Join(r.dir, "pulumi.log"))
	}
	msg := err.Error()
	// The CLI's diagnostics are the useful part: keep the error lines.
	var lines []string
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "error:") && !strings.Contains(l, "update failed") && !strings.Contains(l, "destroy failed") {
			lines = append(lines, l)
		}
	}
	if len(lines) > 5 {
		lines = append(lines[:5], "…")
	}
	short := "pulumi failed"
	if len(lines) > 0 {
		short += ": " + strings.Join(lines, "; ")
	}
	return fmt.Errorf("%s (full output: %s)", short, filepath.Join(r.dir, "pulumi.log"))
}

// ErrCancelled is returned when the user interrupted the operation.
var ErrCancelled = errors.New("cancelled")

// eventLog collects Pulumi's engine events: which operation each resource
// got, for the summary.
type eventLog struct {
	mu   sync.Mutex
	ops  map[string]string // resource name → op ("same", "update", ...)
	done chan struct{}
}

func (r *run) watchEvents() chan events.EngineEvent {
	ch := make(chan events.EngineEvent, 64)
	r.events = &eventLog{ops: map[string]string{}, done: make(chan struct{})}
	go func() {
		defer close(r.events.done)
		for ev := range ch {
			r.events.add(ev)
		}
	}()
	return ch
}

func (l *eventLog) add(ev events.EngineEvent) {
	var meta *stepMeta
	switch {
	case ev.ResourcePreEvent != nil:
		meta = &stepMeta{ev.ResourcePreEvent.Metadata.Op, ev.ResourcePreEvent.Metadata.Type, ev.ResourcePreEvent.Metadata.URN}
	case ev.ResOutputsEvent != nil:
		meta = &stepMeta{ev.ResOutputsEvent.Metadata.Op, ev.ResOutputsEvent.Metadata.Type, ev.ResOutputsEvent.Metadata.URN}
	case ev.ResOpFailedEvent != nil:
		meta = &stepMeta{"failed", ev.ResOpFailedEvent.Metadata.Type, ev.ResOpFailedEvent.Metadata.URN}
	default:
		return
	}
	if !strings.HasPrefix(meta.typ, provider.Package+":index:") {
		return
	}
	name := urnName(meta.urn)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ops[name] == "failed" {
		return
	}
	// A refresh reports "refresh" before the update's own op; keep the
	// update's.
	if meta.op == "refresh" && l.ops[name] != "" {
		return
	}
	l.ops[name] = string(meta.op)
}

type stepMeta struct {
	op  opType
	typ string
	urn string
}

// snapshot returns the ops seen, waiting a moment for the stream to end.
func (l *eventLog) snapshot() map[string]string {
	if l == nil {
		return nil
	}
	select {
	case <-l.done:
	case <-time.After(2 * time.Second):
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]string, len(l.ops))
	for k, v := range l.ops {
		out[k] = v
	}
	return out
}

// writeJSON writes v to path, for the run directory.
func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// clearPendingOperations drops the operations a killed Pulumi left marked
// as pending in the state (a second Ctrl-C, a crash), after which Pulumi
// refuses or warns. Dropping them is safe because every step is
// idempotent: a resource whose create was pending is created again, one
// whose update was pending is updated again.
func (r *run) clearPendingOperations(ctx context.Context, s auto.Stack) error {
	dep, err := s.Export(ctx)
	if err != nil {
		return fmt.Errorf("read the state: %w", err)
	}
	var d map[string]json.RawMessage
	if err := json.Unmarshal(dep.Deployment, &d); err != nil {
		return fmt.Errorf("read the state: %w", err)
	}
	var pending []json.RawMessage
	if raw, ok := d["pending_operations"]; ok {
		if err := json.Unmarshal(raw, &pending); err != nil {
			return fmt.Errorf("read the state's pending operations: %w", err)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	delete(d, "pending_operations")
	if dep.Deployment, err = json.Marshal(d); err != nil {
		return err
	}
	if err := s.Import(ctx, dep); err != nil {
		return fmt.Errorf("clear the state's pending operations: %w", err)
	}
	fmt.Fprintf(r.e.opts.Out, "cleared %d operation(s) an interrupted run left pending; their steps run again\n", len(pending))
	return nil
}

// Command is what a run does; it names the run's directory and summary.
type Command string

// The commands of the engine.
const (
	CommandUp      Command = "up"
	CommandPreview Command = "preview"
	CommandRefresh Command = "refresh"
	CommandDestroy Command = "destroy"
	CommandStatus  Command = "status"
)

// LooksOnly reports whether the command changes nothing on the hosts: its
// summary is what it found, not what it did.
func (c Command) LooksOnly() bool { return c == CommandPreview || c == CommandRefresh }

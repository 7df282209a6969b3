package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"time"

	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
	"github.com/trafficlab/trafficlab/templates"
)

// ErrInterrupted is the error of steps not started because the user
// interrupted the run.
var ErrInterrupted = errors.New("interrupted before this step (Ctrl-C); run the command again to continue")

// Failure is one failed resource: which host, which resource, which step,
// and why (for a command, the tail of its stderr).
type Failure struct {
	Host     string `json:"host"`
	Resource string `json:"resource"`
	Step     string `json:"step,omitempty"`
	Err      error  `json:"-"`
	Message  string `json:"error"`
}

func (f *Failure) Error() string {
	s := "host " + f.Host + ", resource " + f.Resource
	if f.Step != "" {
		s += ", step " + f.Step
	}
	return s + ": " + f.Message
}

func (f *Failure) Unwrap() error { return f.Err }

func newFailure(host, resource string, err error) *Failure {
	f := &Failure{Host: host, Resource: resource, Err: err, Message: err.Error()}
	var se *step.Error
	if errors.As(err, &se) {
		f.Step, f.Message = se.Step, se.Err.Error()
	}
	return f
}

// executor does the provider's work on hosts: it is the engine's side of
// provider.Executor.
type executor struct {
	hosts     *hosts
	roles     map[string]role.Role
	templates *templates.Set
	rec       *recorder
	// values are the roles' stack values, when the operation read them
	// (up, preview); a resource carries its role's own.
	values map[string]string
	// stop, when closed, keeps steps from starting (first Ctrl-C); steps
	// already running finish, so no host is left halfway through one.
	stop <-chan struct{}
	// abort is the context of the commands themselves (second Ctrl-C).
	abort context.Context
	// gate bounds the hosts worked on at once (up --concurrency).
	gate *hostGate
}

// roleContext builds what a role plans with for the host a resource is on.
func (x *executor) roleContext(r provider.Resource, e *hostEntry) *role.Context {
	host, _ := x.hosts.inventoryHost(r.Host, r.Address)
	values := maps.Clone(x.values)
	if values == nil {
		values = map[string]string{}
	}
	maps.Copy(values, r.Values)
	return &role.Context{
		Inventory: x.hosts.inv,
		Host:      host,
		OS:        e.os,
		Templates: x.templates,
		Secrets:   secretsFromMap(r.Secrets),
		Values:    values,
		Dial:      cluster.Dialer(x.hosts.inv, x.hosts),
		Note:      func(format string, args ...any) { x.rec.note(r.Host, format, args...) },
		Interface: e.iface,
	}
}

// commandContext is cancelled by a second Ctrl-C or when Pulumi gives up on
// the operation (its process died), not by the first Ctrl-C.
func (x *executor) commandContext(req context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(req)
	stop := context.AfterFunc(x.abort, cancel)
	return ctx, func() { stop(); cancel() }
}

// connectContext is cancelled by the first Ctrl-C too: waiting for a host
// to answer is not work that must finish.
func (x *executor) connectContext(req context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := x.commandContext(req)
	go func() {
		select {
		case <-x.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (x *executor) host(req context.Context, r provider.Resource) (*hostEntry, error) {
	ctx, cancel := x.connectContext(req)
	defer cancel()
	return x.hosts.get(ctx, r.Host, r.Address)
}

func (x *executor) role(name string, r provider.Resource) (role.Role, error) {
	ro, ok := x.roles[r.Role]
	if !ok {
		return nil, newFailure(r.Host, name, fmt.Errorf("unknown role %q (this provision does not have it)", r.Role))
	}
	return ro, nil
}

// Apply runs the role's steps on the host.
func (x *executor) Apply(req context.Context, name string, r provider.Resource) (bool, error) {
	start := time.Now()
	if r.Problem != "" {
		err := newFailure(r.Host, name, errors.New(r.Problem))
		x.rec.failed(name, r, opApply, err, start)
		return false, err
	}
	ro, err := x.role(name, r)
	if err != nil {
		x.rec.failed(name, r, opApply, err, start)
		return false, err
	}
	e, err := x.host(req, r)
	if err != nil {
		err = newFailure(r.Host, name, err)
		x.rec.failed(name, r, opApply, err, start)
		return false, err
	}
	leave, err := x.gate.enter(req, r.Host)
	if err != nil {
		err = newFailure(r.Host, name, fmt.Errorf("waiting for its turn (--concurrency): %w", err))
		x.rec.failed(name, r, opApply, err, start)
		return false, err
	}
	defer leave()
	unlock := x.hosts.lock(r.Host)
	defer unlock()
	p, err := ro.Plan(x.roleContext(r, e))
	if err != nil {
		err = newFailure(r.Host, name, fmt.Errorf("plan the steps: %w", err))
		x.rec.failed(name, r, opApply, err, start)
		return false, err
	}
	return x.run(req, name, r, e, opApply, p.Steps, start)
}

// Remove runs the role's Remove steps and records what it keeps.
func (x *executor) Remove(req context.Context, name string, r provider.Resource) error {
	start := time.Now()
	ro, err := x.role(name, r)
	if err != nil {
		x.rec.failed(name, r, opRemove, err, start)
		return err
	}
	e, err := x.host(req, r)
	if err != nil {
		err = newFailure(r.Host, name, err)
		x.rec.failed(name, r, opRemove, err, start)
		return err
	}
	leave, err := x.gate.enter(req, r.Host)
	if err != nil {
		err = newFailure(r.Host, name, fmt.Errorf("waiting for its turn (--concurrency): %w", err))
		x.rec.failed(name, r, opRemove, err, start)
		return err
	}
	defer leave()
	unlock := x.hosts.lock(r.Host)
	defer unlock()
	c := x.roleContext(r, e)
	steps, err := ro.Remove(c)
	if err != nil {
		err = newFailure(r.Host, name, fmt.Errorf("plan the removal: %w", err))
		x.rec.failed(name, r, opRemove, err, start)
		return err
	}
	x.rec.kept(r.Host, ro.Keeps(c))
	_, err = x.run(req, name, r, e, opRemove, steps, start)
	return err
}

func (x *executor) run(req context.Context, name string, r provider.Resource, e *hostEntry, op opKind, steps []step.Step, start time.Time) (bool, error) {
	ctx, cancel := x.commandContext(req)
	defer cancel()
	t := &step.Target{Host: e.client, OS: e.os}
	x.rec.started(name, r, op)
	results, err := t.Run(ctx, guard(steps, x.stop), x.rec.observer(name, r.Role, op))
	if err != nil {
		err = newFailure(r.Host, name, err)
	}
	x.rec.finished(name, r, op, results, err, start)
	return len(results) > 0, err
}

// probeConnectWait bounds how long a probe waits for a host to answer: a
// host down is drift to report, and the whole refresh waits for its
// slowest probe. (Plans and changes wait the inventory's connect_timeout.)
const probeConnectWait = 15 * time.Second

// Probe runs the role's steps in dry-run and reports what would change.
func (x *executor) Probe(req context.Context, name string, r provider.Resource) (provider.Probed, error) {
	start := time.Now()
	var found provider.Probed
	host, known := x.hosts.inventoryHost(r.Host, r.Address)
	ro, ok := x.roles[r.Role]
	if !known || !ok || !role.Applies(ro, x.hosts.inv, host) {
		// The resource is on its way out: the update deletes it.
		return found, nil
	}
	pctx, cancelWait := context.WithTimeout(req, probeConnectWait)
	e, err := x.host(pctx, r)
	cancelWait()
	if err != nil {
		found.Drift = map[string]string{provider.DriftUnreachable: err.Error()}
		x.rec.failed(name, r, opProbe, newFailure(r.Host, name, err), start)
		return found, nil
	}
	p, err := ro.Plan(x.roleContext(r, e))
	if err != nil {
		return found, newFailure(r.Host, name, fmt.Errorf("plan the steps: %w", err))
	}
	ctx, cancel := x.commandContext(req)
	defer cancel()
	t := &step.Target{Host: e.client, OS: e.os, DryRun: true}
	x.rec.started(name, r, opProbe)
	results, err := t.Run(ctx, guard(p.Steps, x.stop), x.rec.observer(name, r.Role, opProbe))
	x.rec.finished(name, r, opProbe, results, nil, start)
	for _, res := range results {
		if res.Status != step.WouldChange && res.Status != step.Failed {
			continue
		}
		summary := "check failed"
		if res.Change != nil {
			summary = res.Change.Summary
		} else if res.Err != nil {
			summary = "check failed: " + res.Err.Error()
		}
		// A file the resource keeps that differs on the host is drift of
		// that file: the next update writes it again.
		if _, kept := r.Files[res.ID.Path()]; kept && !res.ID.Absent && res.Status == step.WouldChange {
			if found.Files == nil {
				found.Files = map[string]string{}
			}
			found.Files[res.ID.Path()] = provider.DriftedFileHash(summary)
			continue
		}
		if found.Drift == nil {
			found.Drift = map[string]string{}
		}
		found.Drift[res.Step] = summary
	}
	if err != nil && errors.Is(err, ErrInterrupted) {
		return found, err
	}
	return found, nil
}

// guard makes each step refuse to start once stop is closed. Only a
// step's first check is guarded: the check after its change must run so
// the step reports truthfully.
func guard(steps []step.Step, stop <-chan struct{}) []step.Step {
	out := make([]step.Step, len(steps))
	for i, s := range steps {
		check := s.Check
		var started atomic.Bool
		s.Check = func(ctx context.Context, t *step.Target) (*step.Change, error) {
			if !started.Swap(true) {
				select {
				case <-stop:
					return nil, ErrInterrupted
				default:
				}
			}
			return check(ctx, t)
		}
		out[i] = s
	}
	return out
}

type opKind int

const (
	opApply opKind = iota
	opRemove
	opProbe
)

func (o opKind) String() string { return [...]string{"apply", "remove", "probe"}[o] }

// ensure executor satisfies the provider's interface.
var _ provider.Executor = (*executor)(nil)

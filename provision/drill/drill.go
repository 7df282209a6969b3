// Package drill breaks a running cluster on purpose, measures how it
// copes, and puts it back as it found it.
//
// A drill is a named function over an Env: it checks that the cluster is
// healthy first (a drill on a broken cluster proves nothing), registers
// how to undo each thing before doing it (Env.Restore), breaks one thing,
// measures (Result.Figure), and says whether the cluster met its target.
// The undo steps run after the drill whatever happened to it, even after
// Ctrl-C. A drill that cannot mean anything for the installed artifacts
// (Kafka's drill against a distribution that does not replicate) returns
// Skip with the reason. Each role that can be drilled has its drill here;
// All lists them in the order `drill all` runs them.
package drill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
)

// Drill is one drill.
type Drill struct {
	Name    string
	Summary string
	// Needs is the role the drill breaks: a cluster without it has
	// nothing to drill.
	Needs inventory.Role
	// TakesHost drills act on the host named after them on the command
	// line (`drill replace kafka-2`), which Select puts in Target; "all"
	// leaves them out.
	TakesHost bool
	Target    string
	// Explicit drills run only when named: "all" leaves them out (they
	// change the cluster for good, as upgrade does).
	Explicit bool
	Run      func(ctx context.Context, env *Env, res *Result) error
}

// Outcome is how a drill ended.
type Outcome string

// Outcomes.
const (
	Passed  Outcome = "passed"
	Failed  Outcome = "failed"
	Skipped Outcome = "skipped"
)

// Figure is one measurement.
type Figure struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Target string  `json:"target,omitempty"` // "≤ 3 s", for the reader
}

func (f Figure) String() string {
	v := fmt.Sprintf("%.2f", f.Value)
	if f.Unit != "s" && f.Value == float64(int64(f.Value)) {
		v = fmt.Sprintf("%d", int64(f.Value)) // counts
	}
	s := f.Name + " " + v
	if f.Unit != "" {
		s += " " + f.Unit
	}
	if f.Target != "" {
		s += " (target " + f.Target + ")"
	}
	return s
}

// Result is what a drill found.
type Result struct {
	Drill   string        `json:"drill"`
	Outcome Outcome       `json:"outcome"`
	Reason  string        `json:"reason,omitempty"`
	Figures []Figure      `json:"figures,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Restored is false when an undo step failed: the cluster is not as
	// the drill found it, and Reason says what is left.
	Restored bool `json:"restored"`
}

// Figure records a measurement.
func (r *Result) Figure(name string, value float64, unit, target string) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: value, Unit: unit, Target: target})
}

// Value returns the named figure's value.
func (r *Result) Value(name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// SkipError says why a drill does not apply.
type SkipError struct{ Reason string }

func (e *SkipError) Error() string { return "skipped: " + e.Reason }

// Skip returns the error a drill returns when it cannot mean anything here.
func Skip(format string, args ...any) error {
	return &SkipError{Reason: fmt.Sprintf(format, args...)}
}

// Env is the cluster as drills see it.
type Env struct {
	Inventory *inventory.Inventory
	Cluster   *cluster.Cluster
	Out       io.Writer
	// Secrets log drills in where the roles set passwords (MySQL).
	Secrets role.Secrets
	// Target is the host the running drill was given (Drill.Target).
	Target string
	// Recreate is a shell command, run on the control machine with the
	// host's name in TRAFFICLAB_HOST, that replaces a machine with a new
	// one of the same name and address; empty: drills lose a disk instead.
	Recreate string
	// Up runs provision up limited to hosts.
	Up func(ctx context.Context, hosts []string) error
	// Via are the inventory files the upgrade drill applies in turn, and
	// UpWith runs provision up with one of them (the same state).
	Via    []string
	UpWith func(ctx context.Context, file string) (*inventory.Inventory, error)

	start    time.Time
	name     string
	mu       sync.Mutex
	restores []restore
}

type restore struct {
	what string
	do   func(context.Context) error
}

// NewEnv returns an Env printing progress on out.
func NewEnv(inv *inventory.Inventory, c *cluster.Cluster, out io.Writer) *Env {
	return &Env{Inventory: inv, Cluster: c, Out: out, start: time.Now()}
}

// Logf prints a progress line of the running drill.
func (e *Env) Logf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.Out, "[%6.1fs] drill %-10s %s\n", time.Since(e.start).Seconds(), e.name, fmt.Sprintf(format, args...))
}

// Restore registers how to undo what the drill is about to do; undo steps
// run last first, after the drill, whatever became of it.
func (e *Env) Restore(what string, do func(context.Context) error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.restores = append(e.restores, restore{what, do})
}

// Systemctl runs `systemctl VERB UNIT` on host.
func (e *Env) Systemctl(ctx context.Context, host, verb, unit string) error {
	_, err := e.Cluster.Run(ctx, host, "systemctl "+verb+" "+remote.ShellQuote(unit), remote.WithTimeout(2*time.Minute))
	if err != nil {
		return fmt.Errorf("%s: systemctl %s %s: %w", host, verb, unit, err)
	}
	return nil
}

// RestoreTimeout bounds the undo steps of one drill.
var RestoreTimeout = 5 * time.Minute

// Run runs one drill, then its undo steps.
func Run(ctx context.Context, env *Env, d Drill) *Result {
	env.mu.Lock()
	env.name, env.restores, env.Target = d.Name, nil, d.Target
	env.mu.Unlock()
	res := &Result{Drill: d.Name, Restored: true}
	start := time.Now()
	env.Logf("%s", d.Summary)
	err := d.Run(ctx, env, res)
	var skip *SkipError
	switch {
	case errors.As(err, &skip):
		res.Outcome, res.Reason = Skipped, skip.Reason
		env.Logf("skipped: %s", skip.Reason)
	case err != nil:
		res.Outcome, res.Reason = Failed, err.Error()
		env.Logf("FAILED: %v", err)
	default:
		res.Outcome = Passed
	}
	// Undo even after Ctrl-C: a context of its own, not ctx.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), RestoreTimeout)
	defer cancel()
	env.mu.Lock()
	restores := env.restores
	env.restores = nil
	env.mu.Unlock()
	for i := len(restores) - 1; i >= 0; i-- {
		r := restores[i]
		env.Logf("restore: %s", r.what)
		if rerr := r.do(rctx); rerr != nil {
			res.Restored = false
			msg := fmt.Sprintf("could not %s: %v", r.what, rerr)
			env.Logf("RESTORE FAILED: %s", msg)
			if res.Reason != "" {
				res.Reason += "; "
			}
			res.Reason += msg
			if res.Outcome == Passed {
				res.Outcome = Failed
			}
		}
	}
	res.Elapsed = time.Since(start)
	for _, f := range res.Figures {
		env.Logf("%s", f)
	}
	env.Logf("%s in %.1fs", res.Outcome, res.Elapsed.Seconds())
	return res
}

// Select returns the drills named, in the order all has them, a drill
// that takes a host with the host named after it ("replace kafka-2"),
// those last in the order given. "all" stands for every drill that takes
// no host and is not Explicit. An unknown drill, or one without its host, is an error.
func Select(all []Drill, names []string) ([]Drill, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("name a drill (%s) or all", strings.Join(drillNames(all), ", "))
	}
	find := func(n string) (Drill, bool) {
		i := slices.IndexFunc(all, func(d Drill) bool { return d.Name == n })
		if i < 0 {
			return Drill{}, false
		}
		return all[i], true
	}
	want := map[string]bool{}
	var withHost []Drill
	for i := 0; i < len(names); i++ {
		n := names[i]
		if n == "all" {
			for _, d := range all {
				want[d.Name] = !d.TakesHost && !d.Explicit
			}
			continue
		}
		d, ok := find(n)
		if !ok {
			return nil, fmt.Errorf("no drill %q (have: %s, all)", n, strings.Join(drillNames(all), ", "))
		}
		if !d.TakesHost {
			want[n] = true
			continue
		}
		if i+1 == len(names) {
			return nil, fmt.Errorf("drill %s needs a host: drill %s HOST", n, n)
		}
		if _, isDrill := find(names[i+1]); isDrill || names[i+1] == "all" {
			return nil, fmt.Errorf("drill %s needs a host before %q: drill %s HOST", n, names[i+1], n)
		}
		i++
		d.Target = names[i]
		withHost = append(withHost, d)
	}
	var out []Drill
	for _, d := range all {
		if want[d.Name] {
			out = append(out, d)
		}
	}
	return append(out, withHost...), nil
}

func drillNames(ds []Drill) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Name)
	}
	return out
}

// RunAll runs drills one after the other. A drill whose role no host
// carries is skipped with that reason.
func RunAll(ctx context.Context, env *Env, drills []Drill) []*Result {
	var out []*Result
	for _, d := range drills {
		if ctx.Err() != nil {
			break
		}
		if d.Needs != "" && len(env.Inventory.HostsWith(d.Needs)) == 0 {
			out = append(out, &Result{Drill: d.Name, Outcome: Skipped, Restored: true, Reason: "no host has the " + string(d.Needs) + " role"})
			continue
		}
		out = append(out, Run(ctx, env, d))
	}
	return out
}

// Table prints results, one line per drill with its figures.
func Table(w io.Writer, results []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DRILL\tOUTCOME\tTIME\tFIGURES\tNOTE")
	for _, r := range results {
		var figs []string
		for _, f := range r.Figures {
			figs = append(figs, f.String())
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\t%s\n", r.Drill, r.Outcome, r.Elapsed.Seconds(), strings.Join(figs, "; "), r.Reason)
	}
	tw.Flush()
}

// AnyFailed reports whether any drill failed (a skip is no failure).
func AnyFailed(results []*Result) bool {
	return slices.ContainsFunc(results, func(r *Result) bool { return r.Outcome == Failed })
}

// Poll calls check every interval until it returns true, ctx ends or
// timeout passes; the error then says what check last reported.
func Poll(ctx context.Context, interval, timeout time.Duration, check func(ctx context.Context) (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		ok, why := check(ctx)
		if ok {
			return nil
		}
		last = why
		select {
		case <-ctx.Done():
			return fmt.Errorf("not after %v: %s", timeout, last)
		case <-time.After(interval):
		}
	}
}

// All lists every drill in the order `drill all` runs them: the data
// path's back end first, so that a later drill's traffic finds the
// brokers whole again. Replace, which takes a host, comes last and is not
// part of "all".
func All() []Drill { return []Drill{ZooKeeper, Kafka, Web, LB, Consumer, Replace, Upgrade} }

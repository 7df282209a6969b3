// Package step is the unit of work on a host: look at the current state,
// change it only when it differs from what is wanted, and say which of the
// two happened. In dry-run mode a step only says what it would change: a
// unified diff for files, the command for everything else.
package step

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
)

// Host is the connection steps act on; *remote.Client implements it.
type Host interface {
	Name() string
	Run(ctx context.Context, cmd string, opts ...remote.RunOption) (remote.Result, error)
	ReadFile(ctx context.Context, path string) ([]byte, error)
	Upload(ctx context.Context, path string, content []byte, mode fs.FileMode, owner string) error
}

// Target is one host as the steps see it.
type Target struct {
	Host   Host
	OS     facts.OS
	DryRun bool

	mu      sync.Mutex
	changed map[ID]bool // steps that changed (or would) in this run
}

// Changed reports whether any of the steps ids name changed something
// earlier in the current run (in dry-run: would have), so that a later
// step such as a reload can depend on it.
func (t *Target) Changed(ids ...ID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if t.changed[id] {
			return true
		}
	}
	return false
}

func (t *Target) markChanged(id ID) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.changed == nil {
		t.changed = map[ID]bool{}
	}
	t.changed[id] = true
}

// Change is what a step would do to bring the host to the wanted state.
type Change struct {
	Summary string // one line: "create /etc/hosts", "systemctl enable --now chrony"
	Diff    string // unified diff for file content, when there is one to show
}

// Step is one idempotent piece of work.
type Step struct {
	// ID is what the step keeps: the engine's key for it.
	ID ID
	// Name says what the step does, for people: progress lines, reports.
	Name string
	// When, if set, decides whether the step applies at all on this run
	// (a reload only after its configuration changed, say).
	When func(t *Target) bool
	// Check looks at the host and returns nil when it is already as wanted.
	// It must not change anything.
	Check func(ctx context.Context, t *Target) (*Change, error)
	// Apply makes the change. It runs only after Check asked for it, and
	// Check runs again afterwards to prove the change took.
	Apply func(ctx context.Context, t *Target) error
	// Retries is how many more times a failed Apply is tried, for changes
	// that can fail transiently (a package manager's lock held by a timer).
	Retries int
}

// Status is the outcome of one step.
type Status int

const (
	Unchanged Status = iota
	Changed
	WouldChange // dry-run: Check found a difference and nothing was done
	Skipped     // When returned false
	Failed
)

func (s Status) String() string {
	return [...]string{"unchanged", "changed", "would change", "skipped", "failed"}[s]
}

// Result is what happened to one step on one host.
type Result struct {
	Host    string
	ID      ID
	Step    string // the step's Name
	Status  Status
	Change  *Change
	Elapsed time.Duration
	Err     error
}

// Error names the host and step that failed.
type Error struct {
	Host, Step string
	Err        error
}

func (e *Error) Error() string {
	// The transport's errors already start with the host's name.
	return fmt.Sprintf("%s: %s: %s", e.Host, e.Step, strings.TrimPrefix(e.Err.Error(), e.Host+": "))
}
func (e *Error) Unwrap() error { return e.Err }

// retryDelay is the pause between attempts of a failed Apply.
var retryDelay = 2 * time.Second

// Run runs steps in order on t and stops at the first failure, since later
// steps build on earlier ones. observe, if not nil, sees every result as it
// happens.
func (t *Target) Run(ctx context.Context, steps []Step, observe func(Result)) ([]Result, error) {
	results := make([]Result, 0, len(steps))
	for _, s := range steps {
		r := t.runOne(ctx, s)
		results = append(results, r)
		if observe != nil {
			observe(r)
		}
		if r.Err != nil {
			return results, &Error{Host: t.Host.Name(), Step: s.Name, Err: r.Err}
		}
	}
	return results, nil
}

func (t *Target) runOne(ctx context.Context, s Step) Result {
	start := time.Now()
	r := Result{Host: t.Host.Name(), ID: s.ID, Step: s.Name}
	done := func(st Status, err error) Result {
		r.Status, r.Err, r.Elapsed = st, err, time.Since(start)
		return r
	}
	if s.When != nil && !s.When(t) {
		return done(Skipped, nil)
	}
	change, err := s.Check(ctx, t)
	if err != nil {
		return done(Failed, fmt.Errorf("checking: %w", err))
	}
	if change == nil {
		return done(Unchanged, nil)
	}
	r.Change = change
	t.markChanged(s.ID)
	if t.DryRun {
		return done(WouldChange, nil)
	}
	for attempt := 0; ; attempt++ {
		err = s.Apply(ctx, t)
		if err == nil || attempt >= s.Retries || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(retryDelay):
		}
	}
	if err != nil {
		return done(Failed, err)
	}
	// A step whose check still finds a difference after applying would
	// report "changed" on every run; catch that here rather than in a
	// user's second `up`.
	again, err := s.Check(ctx, t)
	if err != nil {
		return done(Failed, fmt.Errorf("checking after change: %w", err))
	}
	if again != nil {
		return done(Failed, fmt.Errorf("still not as wanted after the change: %s", again.Summary))
	}
	return done(Changed, nil)
}

// RunAll runs each target's steps concurrently, one goroutine per host, and
// lets every host finish even when others fail. The error, if any, is a
// *multierror.Error holding one *Error per failed host.
func RunAll(ctx context.Context, targets []*Target, plan func(*Target) []Step, observe func(Result)) (map[string][]Result, error) {
	var (
		mu      sync.Mutex
		results = make(map[string][]Result, len(targets))
		errs    *multierror.Error
		wg      sync.WaitGroup
	)
	if observe != nil {
		inner := observe
		observe = func(r Result) { // observers need not be safe for concurrent use
			mu.Lock()
			defer mu.Unlock()
			inner(r)
		}
	}
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := t.Run(ctx, plan(t), observe)
			mu.Lock()
			defer mu.Unlock()
			results[t.Host.Name()] = res
			if err != nil {
				errs = multierror.Append(errs, err)
			}
		}()
	}
	wg.Wait()
	if errs == nil {
		return results, nil
	}
	// Goroutines finish in any order; sort so the report reads the same
	// every time.
	sort.Slice(errs.Errors, func(i, j int) bool { return errs.Errors[i].Error() < errs.Errors[j].Error() })
	errs.ErrorFormat = formatErrors
	return results, errs
}

func formatErrors(errs []error) string {
	s := fmt.Sprintf("%d host(s) failed:", len(errs))
	for _, e := range errs {
		s += "\n  " + e.Error()
	}
	return s
}

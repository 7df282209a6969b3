package engine

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/step"
)

// resourceRun is what happened to one resource in this run.
type resourceRun struct {
	Name, Host, Role string
	Probe, Apply     []step.Result // dry-run results; results of apply or remove
	Removed          bool
	Err              *Failure
	Elapsed          time.Duration
	PackageTime      time.Duration
}

// recorder collects what the provider did, prints progress lines as it
// happens, and makes the summary at the end.
type recorder struct {
	start   time.Time
	out     io.Writer
	verbose bool

	mu        sync.Mutex
	resources map[string]*resourceRun
	diffs     map[string][]provider.Change
	keeps     map[string][]string // host → what destroy left in place
}

func newRecorder(out io.Writer, start time.Time, verbose bool) *recorder {
	return &recorder{start: start, out: out, verbose: verbose,
		resources: map[string]*resourceRun{}, diffs: map[string][]provider.Change{}, keeps: map[string][]string{}}
}

func (rc *recorder) get(name string, r provider.Resource) *resourceRun {
	rr, ok := rc.resources[name]
	if !ok {
		rr = &resourceRun{Name: name, Host: r.Host, Role: r.Role}
		rc.resources[name] = rr
	}
	return rr
}

func (rc *recorder) line(host, format string, args ...any) {
	fmt.Fprintf(rc.out, "[%6.1fs] %-10s %s\n", time.Since(rc.start).Seconds(), host, fmt.Sprintf(format, args...))
}

// note prints a line under host, between the steps' own lines.
func (rc *recorder) note(host, format string, args ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.line(host, format, args...)
}

func (rc *recorder) started(name string, r provider.Resource, op opKind) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.get(name, r)
	// Probes are quiet: preview and refresh show what they found in the
	// summary, and up shows what it changed.
	if rc.verbose || op != opProbe {
		verb := map[opKind]string{opApply: "applying", opRemove: "removing", opProbe: "checking"}[op]
		rc.line(r.Host, "%s: %s", r.Role, verb)
	}
}

// observer prints the results of one resource's steps: every change and
// failure, and with --verbose every step (and the probes' results).
func (rc *recorder) observer(name, roleName string, op opKind) func(step.Result) {
	progress := step.Progress(rc.out, rc.start)
	return func(res step.Result) {
		show := rc.verbose || op != opProbe && (res.Status == step.Changed || res.Status == step.Failed)
		if !show {
			return
		}
		res.Step = roleName + ": " + res.Step
		rc.mu.Lock()
		defer rc.mu.Unlock()
		progress(res)
	}
}

func (rc *recorder) finished(name string, r provider.Resource, op opKind, results []step.Result, err error, start time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rr := rc.get(name, r)
	if op == opProbe {
		rr.Probe = results
	} else {
		rr.Apply = results
		rr.Removed = op == opRemove
		rr.Elapsed = time.Since(start)
		for _, res := range results {
			if res.ID.Kind == step.KindPackages {
				rr.PackageTime += res.Elapsed
			}
		}
	}
	if err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			f = newFailure(r.Host, name, err)
		}
		rr.Err = f
	} else if op != opProbe {
		rr.Err = nil // an earlier probe's failure is over
	}
	if op == opProbe {
		return
	}
	c := countSteps(results)
	verb := map[opKind]string{opApply: "applied", opRemove: "removed"}[op]
	if err != nil {
		verb = "FAILED"
	}
	rc.line(r.Host, "%s: %s, %d changed, %d unchanged (%.1fs)", r.Role, verb, c.Changed, c.Unchanged, time.Since(start).Seconds())
}

func (rc *recorder) failed(name string, r provider.Resource, op opKind, err error, start time.Time) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rr := rc.get(name, r)
	f, ok := err.(*Failure)
	if !ok {
		f = newFailure(r.Host, name, err)
	}
	rr.Err = f
	if op == opProbe {
		if rc.verbose {
			rc.line(r.Host, "%s: cannot check: %s", r.Role, f.Message)
		}
		return
	}
	rr.Elapsed = time.Since(start)
	rc.line(r.Host, "%s: FAILED: %s", r.Role, f.Message)
}

func (rc *recorder) kept(host string, what []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, w := range what {
		if !slices.Contains(rc.keeps[host], w) {
			rc.keeps[host] = append(rc.keeps[host], w)
		}
	}
}

func (rc *recorder) diffed(name string, _ provider.Resource, changes []provider.Change) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.diffs[name] = changes
}

// stepCounts counts step results by status.
type stepCounts struct {
	Changed     int `json:"changed"`
	Unchanged   int `json:"unchanged"`
	Skipped     int `json:"skipped"`
	Failed      int `json:"failed"`
	WouldChange int `json:"would_change,omitempty"`
}

func (c *stepCounts) add(o stepCounts) {
	c.Changed += o.Changed
	c.Unchanged += o.Unchanged
	c.Skipped += o.Skipped
	c.Failed += o.Failed
	c.WouldChange += o.WouldChange
}

func countSteps(results []step.Result) stepCounts {
	var c stepCounts
	for _, r := range results {
		switch r.Status {
		case step.Changed:
			c.Changed++
		case step.Unchanged:
			c.Unchanged++
		case step.Skipped:
			c.Skipped++
		case step.Failed:
			c.Failed++
		case step.WouldChange:
			c.WouldChange++
		}
	}
	return c
}

// summarize fills in what the recorder saw: the hosts' step counts and
// times (in inventory order, then hosts only the state still knows), the
// failures, what preview and refresh found (by ops, Pulumi's op of each
// resource), and what destroy kept.
func (rc *recorder) summarize(s *Summary, inv *inventory.Inventory, ops map[string]string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	byHost := map[string]*HostSummary{}
	host := func(name string) *HostSummary {
		h, ok := byHost[name]
		if !ok {
			h = &HostSummary{Host: name}
			byHost[name] = h
		}
		return h
	}
	for _, h := range inv.Hosts {
		host(h.Name)
	}
	hostPackages := map[string]time.Duration{}
	names := slices.Sorted(maps.Keys(rc.resources))
	for _, name := range names {
		rr := rc.resources[name]
		h := host(rr.Host)
		results := rr.Apply
		if results == nil && !rr.Removed {
			results = rr.Probe
		}
		h.stepCounts.add(countSteps(results))
		h.Seconds += rr.Elapsed.Seconds()
		hostPackages[rr.Host] += rr.PackageTime
		if rr.Err != nil {
			h.HasFailure = true
			s.Failures = append(s.Failures, rr.Err)
		}
	}
	if s.Command.LooksOnly() {
		s.Changes = rc.changes(ops)
	}
	if len(rc.keeps) > 0 {
		s.Kept = map[string][]string{}
		for h, k := range rc.keeps {
			s.Kept[h] = slices.Clone(k)
		}
	}
	for _, h := range inv.Hosts {
		hs := byHost[h.Name]
		hs.PackageSeconds = hostPackages[h.Name].Seconds()
		s.PackageSeconds = max(s.PackageSeconds, hs.PackageSeconds)
		s.Steps.add(hs.stepCounts)
		s.Hosts = append(s.Hosts, *hs)
		delete(byHost, h.Name)
	}
	// Hosts only the state still knows (being removed) come last.
	for _, name := range slices.Sorted(maps.Keys(byHost)) {
		hs := byHost[name]
		s.Steps.add(hs.stepCounts)
		s.Hosts = append(s.Hosts, *hs)
	}
	sort.SliceStable(s.Failures, func(i, j int) bool { return s.Failures[i].Resource < s.Failures[j].Resource })
}

// changes are what preview and refresh found: an entry for every resource
// a diff or a probe touched (by ops, Pulumi's op of each), with its
// differing inputs and its steps that would change. Call with rc.mu held.
func (rc *recorder) changes(ops map[string]string) []ResourceChange {
	var out []ResourceChange
	seen := map[string]bool{}
	for name := range ops {
		seen[name] = true
	}
	for name, rr := range rc.resources {
		if len(rr.Probe) > 0 {
			seen[name] = true
		}
	}
	for _, name := range slices.Sorted(maps.Keys(seen)) {
		ch := ResourceChange{Resource: name, Op: ops[name], Changes: rc.diffs[name]}
		if rr, ok := rc.resources[name]; ok {
			ch.Host, ch.Role = rr.Host, rr.Role
			for _, res := range rr.Probe {
				if res.Status == step.WouldChange && res.Change != nil {
					ch.Drift = append(ch.Drift, StepChange{Step: res.Step, Summary: res.Change.Summary, Diff: res.Change.Diff})
				}
			}
		}
		if ch.Host == "" {
			ch.Host, ch.Role = splitName(name)
		}
		if ch.Op == "same" && len(ch.Changes) == 0 && len(ch.Drift) == 0 {
			continue
		}
		out = append(out, ch)
	}
	return out
}

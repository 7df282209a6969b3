package engine

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/trafficlab/trafficlab/provision/provider"
)

type opType = apitype.OpType

func urnName(u string) string { return resource.URN(u).Name() }

// Summary is what one operation did, per host and in total. `--json`
// prints it; the run directory keeps it as summary.json.
type Summary struct {
	Command   Command `json:"command"`
	Stack     string  `json:"stack"`
	OK        bool    `json:"ok"`
	Cancelled bool    `json:"cancelled,omitempty"`
	Error     string  `json:"error,omitempty"`
	Seconds   float64 `json:"seconds"`
	RunDir    string  `json:"run_dir"`
	// Resources counts Pulumi's operations: same, update, create, delete,
	// refresh, failed.
	Resources map[string]int `json:"resources"`
	// Steps counts step results over every host.
	Steps stepCounts `json:"steps"`
	// PackageSeconds is the longest time any host spent installing
	// packages (hosts work in parallel).
	PackageSeconds float64          `json:"package_seconds"`
	Hosts          []HostSummary    `json:"hosts"`
	Changes        []ResourceChange `json:"changes,omitempty"`
	Failures       []*Failure       `json:"failures,omitempty"`
	// Kept is what destroy left in place, per host.
	Kept    map[string][]string `json:"kept,omitempty"`
	Outputs map[string]any      `json:"outputs,omitempty"`

	cause error
}

// err is the operation's error for the caller, nil when it succeeded.
func (s *Summary) err() error {
	if s.OK {
		return nil
	}
	return s.cause
}

// HostSummary is one host's part.
type HostSummary struct {
	Host string `json:"host"`
	stepCounts
	Seconds        float64 `json:"seconds"`
	PackageSeconds float64 `json:"package_seconds"`
	// HasFailure says a resource of the host failed (a host that cannot
	// be reached has no failed step).
	HasFailure bool `json:"has_failure"`
}

// ResourceChange is what happens to one resource: Pulumi's op, the inputs
// that differ, and, after a probe, what each step would change.
type ResourceChange struct {
	Resource string            `json:"resource"`
	Host     string            `json:"host"`
	Role     string            `json:"role"`
	Op       string            `json:"op"`
	Changes  []provider.Change `json:"changes,omitempty"`
	Drift    []StepChange      `json:"drift,omitempty"`
}

// StepChange is a step a probe found would change.
type StepChange struct {
	Step    string `json:"step"`
	Summary string `json:"summary"`
	Diff    string `json:"diff,omitempty"`
}

// finish builds the summary, prints it and keeps it in the run directory.
func (r *run) finish(outputs auto.OutputMap, cause error) *Summary {
	ops := r.events.snapshot()
	s := &Summary{
		Command: r.command, Stack: r.e.stack, RunDir: r.dir,
		Seconds:   time.Since(r.start).Seconds(),
		Resources: map[string]int{},
		cause:     cause,
	}
	for _, op := range ops {
		s.Resources[op]++
	}
	if len(outputs) > 0 {
		s.Outputs = map[string]any{}
		for k, v := range outputs {
			if !v.Secret {
				s.Outputs[k] = v.Value
			}
		}
	}

	r.rec.summarize(s, r.e.opts.Inventory, ops)

	switch {
	case errors.Is(cause, ErrCancelled):
		s.Cancelled = true
	case cause == nil && len(s.Failures) > 0 && !r.command.LooksOnly():
		// Pulumi succeeded but a resource failed: cannot happen with
		// Pulumi reporting failures itself, but never report success then.
		s.cause = fmt.Errorf("%d resource(s) failed", len(s.Failures))
	}
	if s.cause != nil {
		s.Error = s.cause.Error()
	}
	if len(s.Failures) > 0 && s.cause != nil && !s.Cancelled {
		s.cause = fmt.Errorf("%d resource(s) failed: %w", len(s.Failures), failuresError(s.Failures))
		s.Error = s.cause.Error()
	}
	s.OK = s.cause == nil
	if err := writeJSON(filepath.Join(r.dir, "summary.json"), s); err != nil {
		fmt.Fprintf(r.e.opts.Out, "warning: cannot keep the summary: %v\n", err)
	}
	return s
}

func failuresError(fs []*Failure) error {
	errs := make([]error, len(fs))
	for i, f := range fs {
		errs[i] = f
	}
	return errors.Join(errs...)
}

// splitName splits "<host>-<role>" at its last dash (role names have
// none; host names may).
func splitName(name string) (host, role string) {
	i := strings.LastIndex(name, "-")
	if i < 0 {
		return name, ""
	}
	return name[:i], name[i+1:]
}

// Print writes the summary for people: the changes (preview, refresh), a
// table per host, failures with their host, resource and step, what
// destroy kept, and where the logs are.
func (s *Summary) Print(w io.Writer) {
	if s.Command.LooksOnly() {
		printChanges(w, s)
	}
	if len(s.Hosts) > 0 && s.Command != CommandPreview {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tCHANGED\tUNCHANGED\tSKIPPED\tFAILED\tTIME\tPACKAGES")
		for _, h := range s.Hosts {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1fs\t%.1fs\n", h.Host, h.Changed, h.Unchanged, h.Skipped, h.stepCounts.Failed+boolInt(h.HasFailure && h.stepCounts.Failed == 0), h.Seconds, h.PackageSeconds)
		}
		tw.Flush()
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "FAILED %s\n", indentLines(f.Error(), "       "))
	}
	if len(s.Failures) == 0 && s.Error != "" {
		fmt.Fprintf(w, "error: %s\n", s.Error)
	}
	if len(s.Kept) > 0 {
		printKept(w, s.Kept)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Outputs)) {
		if k == "hosts" {
			continue
		}
		fmt.Fprintf(w, "%s: %v\n", k, s.Outputs[k])
	}
	fmt.Fprintln(w, s.Line())
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Line is the one-line result.
func (s *Summary) Line() string {
	var ops []string
	for _, op := range []string{"create", "update", "delete", "same", "refresh", "failed"} {
		if n := s.Resources[op]; n > 0 {
			ops = append(ops, fmt.Sprintf("%d %s", n, opWord(s.Command, op)))
		}
	}
	res := "no resources"
	if len(ops) > 0 {
		res = strings.Join(ops, ", ")
	}
	state := "done"
	switch {
	case s.Cancelled:
		state = "CANCELLED (run it again to continue)"
	case !s.OK:
		state = "FAILED"
	}
	steps := fmt.Sprintf("%d steps changed", s.Steps.Changed)
	if s.Command.LooksOnly() {
		steps = fmt.Sprintf("%d would change", s.Steps.WouldChange)
	}
	return fmt.Sprintf("%s %s: %s; %s, %d resources failed; %.1fs; logs in %s", s.Command, state, res, steps, len(s.Failures), s.Seconds, s.RunDir)
}

func opWord(command Command, op string) string {
	switch {
	case op == "same":
		return "unchanged"
	case op == "refresh":
		return "checked"
	case op == "failed":
		return "failed"
	case command == CommandRefresh && op == "update":
		return "drifted (recorded; up repairs them)"
	case command == CommandPreview:
		return "to " + op
	}
	return strings.TrimSuffix(op, "e") + "ed" // created, updated, deleted
}

func printChanges(w io.Writer, s *Summary) {
	if len(s.Changes) == 0 {
		fmt.Fprintln(w, "no changes")
		return
	}
	sign := map[string]string{"create": "+", "update": "~", "delete": "-", "refresh": "~", "same": "=", "failed": "!"}
	for _, c := range s.Changes {
		fmt.Fprintf(w, "%s %s (%s)\n", signOf(sign, c.Op), c.Resource, c.Op)
		problem := false
		for _, ch := range c.Changes {
			if ch.Key == "problem" {
				problem = true
				fmt.Fprintf(w, "    cannot be planned: %s\n", ch.Detail)
			}
		}
		if problem {
			continue
		}
		for _, ch := range c.Changes {
			if c.Op == "create" && strings.HasPrefix(ch.Key, "files[") {
				continue
			}
			fmt.Fprintf(w, "    %s: %s\n", ch.Key, ch.Detail)
		}
		for _, d := range c.Drift {
			fmt.Fprintf(w, "    step %q would %s\n", d.Step, d.Summary)
			if d.Diff != "" {
				fmt.Fprintf(w, "      %s\n", indentLines(strings.TrimRight(d.Diff, "\n"), "      "))
			}
		}
	}
}

func signOf(m map[string]string, op string) string {
	if s, ok := m[op]; ok {
		return s
	}
	return "?"
}

func printKept(w io.Writer, kept map[string][]string) {
	// Most hosts keep the same things: say it once for them.
	// An item naming its own host ("the hostname kafka-1") reads the
	// same for every host once the name is taken out.
	groups := map[string][]string{}
	for h, k := range kept {
		items := make([]string, len(k))
		for i, item := range k {
			items[i] = strings.ReplaceAll(item, " "+h, " (its own)")
		}
		key := strings.Join(items, "; ")
		groups[key] = append(groups[key], h)
	}
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		hosts := groups[key]
		slices.Sort(hosts)
		fmt.Fprintf(w, "left in place on %s: %s\n", strings.Join(hosts, ", "), key)
	}
}

func indentLines(s, prefix string) string { return strings.ReplaceAll(s, "\n", "\n"+prefix) }

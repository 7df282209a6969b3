package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// Status is what `provision status` shows: the stack's outputs, its last
// update as Pulumi recorded it, and the summary of the last run.
type Status struct {
	Stack      string              `json:"stack"`
	Backend    string              `json:"backend"`
	StateDir   string              `json:"state_dir"`
	Hosts      map[string]string   `json:"hosts,omitempty"`
	Outputs    map[string]any      `json:"outputs,omitempty"`
	LastUpdate *UpdateInfo         `json:"last_update,omitempty"`
	LastRun    *Summary            `json:"last_run,omitempty"`
	Resources  map[string][]string `json:"resources,omitempty"` // host → roles deployed
}

// UpdateInfo is Pulumi's record of the last operation on the stack.
type UpdateInfo struct {
	Kind      string         `json:"kind"`
	Result    string         `json:"result"`
	StartTime string         `json:"start_time"`
	EndTime   string         `json:"end_time,omitempty"`
	Changes   map[string]int `json:"changes,omitempty"`
}

// Status reads the stack without touching any host.
func (e *Engine) Status(ctx context.Context) (*Status, error) {
	last := e.dirs.lastRunDir(e.stack) // before begin makes this run's
	r, err := e.begin(ctx, CommandStatus)
	if err != nil {
		return nil, err
	}
	// A status is no run worth keeping next to the real ones.
	defer os.RemoveAll(r.dir)
	defer r.close()
	st := &Status{Stack: e.stack, Backend: describeBackend(e.dirs.backendURL()), StateDir: e.dirs.root}
	if last != "" {
		if b, err := os.ReadFile(filepath.Join(last, "summary.json")); err == nil {
			var s Summary
			if json.Unmarshal(b, &s) == nil {
				st.LastRun = &s
			}
		}
	}
	s, err := r.selectStack(ctx)
	if err != nil {
		return st, err
	}
	outs, err := s.Outputs(ctx)
	if err != nil {
		return st, fmt.Errorf("stack outputs: %w", err)
	}
	st.Outputs, st.Hosts = statusOutputs(outs)
	hist, err := s.History(ctx, 1, 1)
	if err != nil {
		return st, fmt.Errorf("stack history: %w", err)
	}
	if len(hist) > 0 {
		h := hist[0]
		st.LastUpdate = &UpdateInfo{Kind: h.Kind, Result: h.Result, StartTime: h.StartTime}
		if h.EndTime != nil {
			st.LastUpdate.EndTime = *h.EndTime
		}
		if h.ResourceChanges != nil {
			st.LastUpdate.Changes = *h.ResourceChanges
		}
	}
	if res, err := stackResources(ctx, s); err == nil {
		st.Resources = res
	}
	return st, nil
}

// stackResources lists the roles the stack's state holds a resource of,
// by host.
func stackResources(ctx context.Context, s auto.Stack) (map[string][]string, error) {
	dep, err := s.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("export the stack's state: %w", err)
	}
	var d struct {
		Resources []struct {
			Inputs map[string]any `json:"inputs"`
		} `json:"resources"`
	}
	if err := json.Unmarshal(dep.Deployment, &d); err != nil {
		return nil, fmt.Errorf("read the stack's state: %w", err)
	}
	out := map[string][]string{}
	for _, res := range d.Resources {
		host, _ := res.Inputs["host"].(string)
		role, _ := res.Inputs["role"].(string)
		if host != "" && role != "" {
			out[host] = append(out[host], role)
		}
	}
	return out, nil
}

// statusOutputs sorts the stack's outputs into the hosts and the rest:
// plain outputs, and of the secret ones only PrintedSecrets (the login
// people need), whose values the Automation API decrypts.
func statusOutputs(outs auto.OutputMap) (outputs map[string]any, hosts map[string]string) {
	outputs = map[string]any{}
	for k, v := range outs {
		if v.Secret && !slices.Contains(PrintedSecrets, k) {
			continue
		}
		if k == "hosts" {
			if m, ok := v.Value.(map[string]any); ok {
				hosts = map[string]string{}
				for h, a := range m {
					hosts[h] = fmt.Sprint(a)
				}
				continue
			}
		}
		outputs[k] = v.Value
	}
	return outputs, hosts
}

// Print writes the status for people.
func (st *Status) Print(w io.Writer) {
	fmt.Fprintf(w, "stack %s (state: %s)\n", st.Stack, st.Backend)
	if len(st.Hosts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tADDRESS\tROLES")
		for _, h := range slices.Sorted(maps.Keys(st.Hosts)) {
			fmt.Fprintf(tw, "%s\t%s\t%v\n", h, st.Hosts[h], st.Resources[h])
		}
		tw.Flush()
	}
	for _, k := range slices.Sorted(maps.Keys(st.Outputs)) {
		fmt.Fprintf(w, "%s: %v\n", k, st.Outputs[k])
	}
	if u := st.LastUpdate; u != nil {
		fmt.Fprintf(w, "last update: %s %s, %s – %s, %v\n", u.Kind, u.Result, u.StartTime, u.EndTime, u.Changes)
	}
	if s := st.LastRun; s != nil {
		fmt.Fprintf(w, "last run: %s\n", s.Line())
		for _, f := range s.Failures {
			fmt.Fprintf(w, "  FAILED %s\n", f.Error())
		}
	}
}

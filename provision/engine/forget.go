package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/trafficlab/trafficlab/provision/provider"
)

// CommandForget drops hosts' resources from the state.
const CommandForget Command = "forget"

// Forget drops every resource of the hosts named from the stack's state
// without connecting to them, for hosts gone for good: a later destroy or
// up no longer tries to undo anything on them. It changes nothing on any
// host and returns the resources it dropped. Deciding whether a host may
// be forgotten (a broker still running) is the caller's business.
func (e *Engine) Forget(ctx context.Context, hosts []string) ([]string, error) {
	r, err := e.begin(ctx, CommandForget)
	if err != nil {
		return nil, err
	}
	defer r.close()
	s, err := r.selectStack(ctx)
	if err != nil {
		return nil, err
	}
	return e.forget(ctx, s, hosts)
}

// forget drops the hosts' resources from stack s.
func (e *Engine) forget(ctx context.Context, s auto.Stack, hosts []string) ([]string, error) {
	dep, err := s.Export(ctx)
	if err != nil {
		return nil, fmt.Errorf("export stack %s: %w", e.stack, err)
	}
	var names []string
	for _, h := range hosts {
		for _, ro := range e.opts.Roles {
			names = append(names, provider.Name(h, ro.Name()))
		}
	}
	out, dropped, err := dropResources(dep.Deployment, func(urn string) bool {
		return slices.Contains(names, urn[strings.LastIndex(urn, "::")+2:])
	})
	if err != nil {
		return nil, fmt.Errorf("stack %s: %w", e.stack, err)
	}
	if len(dropped) == 0 {
		return nil, nil
	}
	dep.Deployment = out
	if err := s.Import(ctx, dep); err != nil {
		return nil, fmt.Errorf("import stack %s without %s: %w", e.stack, strings.Join(hosts, ", "), err)
	}
	return dropped, nil
}

// dropResources removes the resources whose URN drop accepts from a
// deployment (Pulumi's state, version 3), and every reference to them
// from the others; it returns the URNs removed. The rest of the document
// is kept as it is.
func dropResources(deployment json.RawMessage, drop func(urn string) bool) (json.RawMessage, []string, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(deployment, &doc); err != nil {
		return nil, nil, fmt.Errorf("read the state: %w", err)
	}
	var resources []map[string]any
	if raw, ok := doc["resources"]; ok {
		// Numbers stay as written (json.Number), not float64.
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&resources); err != nil {
			return nil, nil, fmt.Errorf("read the state's resources: %w", err)
		}
	}
	var kept []map[string]any
	var dropped []string
	for _, res := range resources {
		urn, _ := res["urn"].(string)
		if drop(urn) {
			dropped = append(dropped, urn)
			continue
		}
		kept = append(kept, res)
	}
	gone := func(v any) bool { s, _ := v.(string); return slices.Contains(dropped, s) }
	for _, res := range kept {
		if deps, ok := res["dependencies"].([]any); ok {
			res["dependencies"] = slices.DeleteFunc(deps, gone)
		}
		if pd, ok := res["propertyDependencies"].(map[string]any); ok {
			for k, v := range pd {
				if deps, ok := v.([]any); ok {
					pd[k] = slices.DeleteFunc(deps, gone)
				}
			}
		}
	}
	if kept == nil {
		kept = []map[string]any{}
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return nil, nil, err
	}
	doc["resources"] = raw
	out, err := json.Marshal(doc)
	return out, dropped, err
}

package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
)

// ReachTimeout is how long a host is tried before it is taken as gone
// (forget, and up for a host removed from the inventory).
var ReachTimeout = 10 * time.Second

// BrokerStillRuns is why a host that still runs a broker is not dropped.
const BrokerStillRuns = "it still runs a broker whose replicas the cluster counts on; provision does not reassign them: stop it (or move its partitions with kafka-reassign-partitions.sh) first"

// Reach connects to h once, trying for ReachTimeout only: a host that does
// not answer in that time is taken as gone.
func (e *Engine) Reach(ctx context.Context, h inventory.Host) (*remote.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, ReachTimeout)
	defer cancel()
	cfg := e.opts.SSHConfig(e.opts.Inventory, h)
	cfg.ConnectTimeout, cfg.RetryFor = ReachTimeout, 0
	return remote.Connect(ctx, cfg)
}

// departedHost is a host the state has resources on that the inventory no
// longer names.
type departedHost struct {
	name, address string
	broker        bool
}

// stateResource is one resource of a deployment (Pulumi's state, version
// 3): its type token and the inputs it was last applied with.
type stateResource struct {
	Type   string         `json:"type"`
	Inputs map[string]any `json:"inputs"`
}

// stateResources reads the resources of a deployment.
func stateResources(deployment json.RawMessage) ([]stateResource, error) {
	var doc struct {
		Resources []stateResource `json:"resources"`
	}
	if err := json.Unmarshal(deployment, &doc); err != nil {
		return nil, fmt.Errorf("read the state: %w", err)
	}
	return doc.Resources, nil
}

// departed lists, from a deployment (Pulumi's state, version 3), the hosts
// with resources there that inv does not name, in the state's order.
func departed(deployment json.RawMessage, inv *inventory.Inventory) ([]departedHost, error) {
	resources, err := stateResources(deployment)
	if err != nil {
		return nil, err
	}
	var out []departedHost
	for _, res := range resources {
		if !strings.HasPrefix(res.Type, provider.Package+":") {
			continue
		}
		name, _ := res.Inputs["host"].(string)
		if name == "" {
			continue // the cluster's own resources (the topic)
		}
		if _, ok := inv.Host(name); ok {
			continue
		}
		i := slices.IndexFunc(out, func(d departedHost) bool { return d.name == name })
		if i < 0 {
			address, _ := res.Inputs["address"].(string)
			out = append(out, departedHost{name: name, address: address})
			i = len(out) - 1
		}
		out[i].broker = out[i].broker || res.Type == provider.TypeOf(string(inventory.RoleKafka))
	}
	return out, nil
}

// settleDeparted deals, before an up of every host, with the hosts removed
// from the inventory. One that cannot be reached is gone for good: its
// resources are dropped from the state, since nothing there can be undone,
// and up says so. One that answers is left to Pulumi, which deletes its
// resources by undoing their steps there, unless it still runs a broker:
// the cluster would lose its replicas, and up refuses before changing
// anything. A preview (dryRun) says which of these up would do.
func (r *run) settleDeparted(ctx context.Context, s auto.Stack, dryRun bool) error {
	dep, err := s.Export(ctx)
	if err != nil {
		return fmt.Errorf("export stack %s: %w", r.e.stack, err)
	}
	hosts, err := departed(dep.Deployment, r.e.opts.Inventory)
	if err != nil || len(hosts) == 0 {
		return err
	}
	var gone []string
	for _, d := range hosts {
		h, _ := r.hosts.inventoryHost(d.name, d.address)
		c, err := r.e.Reach(ctx, h)
		if err != nil {
			what := "taken as gone, its resources are dropped from the state without undoing anything there"
			if dryRun {
				what = "up will take it as gone and drop its resources from the state instead of deleting them"
			}
			fmt.Fprintf(r.e.opts.Out, "%s: removed from the inventory and not reachable (%v): %s\n", d.name, err, what)
			gone = append(gone, d.name)
			continue
		}
		running := false
		if d.broker {
			_, err := c.Run(ctx, "systemctl is-active --quiet "+kafka.Unit)
			running = err == nil
		}
		c.Close()
		if running && dryRun {
			fmt.Fprintf(r.e.opts.Out, "%s: removed from the inventory, but up will refuse: %s\n", d.name, BrokerStillRuns)
			continue
		}
		if running {
			return fmt.Errorf("%s is removed from the inventory but answers at %s and %s; or put it back in the inventory", d.name, d.address, BrokerStillRuns)
		}
		fmt.Fprintf(r.e.opts.Out, "%s: removed from the inventory and reachable: up undoes what trafficlab did there\n", d.name)
	}
	if len(gone) == 0 || dryRun {
		return nil
	}
	dropped, err := r.e.forget(ctx, s, gone)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.e.opts.Out, "dropped %d resources of %s from the state\n", len(dropped), strings.Join(gone, ", "))
	return nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/provider"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/base"
	"github.com/trafficlab/trafficlab/provision/step"
)

// planner plans the resources of one host: it connects (one connection
// per host, shared with the provider later), detects the host's facts and
// renders every role's files and steps. A host that cannot be reached, or
// whose files fail to render, gets resources carrying the problem, so its
// update fails with it while the other hosts go ahead.
type planner struct {
	inv     *inventory.Inventory
	roles   []role.Role
	x       *executor
	secrets role.Secrets
	values  map[string]string // the roles' values kept in the stack
}

func newPlanner(inv *inventory.Inventory, roles []role.Role, x *executor, secrets role.Secrets, values map[string]string) *planner {
	return &planner{inv: inv, roles: roles, x: x, secrets: secrets, values: values}
}

func (p *planner) host(ctx context.Context, h inventory.Host) []provider.Resource {
	cctx, cancel := p.x.connectContext(ctx)
	defer cancel()
	e, connErr := p.x.hosts.get(cctx, h.Name, h.Address)
	var out []provider.Resource
	for _, ro := range p.roles {
		if !role.Applies(ro, p.inv, h) {
			continue
		}
		r := provider.Resource{Host: h.Name, Address: h.Address, Role: ro.Name(), Secrets: secretsToMap(p.secrets, h.Name),
			Values: valuesOf(ro, p.inv, p.values)}
		if connErr != nil {
			r.Problem = "unreachable: " + connErr.Error()
			out = append(out, r)
			continue
		}
		r.OS = e.os.ID + " " + e.os.VersionID
		c := &role.Context{Inventory: p.inv, Host: h, OS: e.os, Templates: p.x.templates, Secrets: p.secrets, Values: r.Values, Interface: e.iface}
		if _, needs := ro.(role.InterfaceRole); needs && e.iface == "" {
			r.Problem = fmt.Sprintf("role %s: %v", ro.Name(), e.ifaceErr)
			out = append(out, r)
			continue
		}
		if err := planRole(c, ro, &r); err != nil {
			r.Problem = err.Error()
		}
		out = append(out, r)
	}
	return out
}

// valuesOf picks the stack values ro asks for out of all of them.
func valuesOf(ro role.Role, inv *inventory.Inventory, all map[string]string) map[string]string {
	vr, ok := ro.(role.ValueRole)
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, v := range vr.Values(inv) {
		if x, ok := all[v.Key]; ok {
			out[v.Key] = x
		}
	}
	return out
}

// planRole fills in a resource's files, steps and settings from the
// role's plan.
func planRole(c *role.Context, ro role.Role, r *provider.Resource) error {
	p, err := ro.Plan(c)
	if err != nil {
		return fmt.Errorf("plan role %s: %w", ro.Name(), err)
	}
	r.Files = map[string]provider.FileHash{}
	for _, f := range p.Files {
		r.Files[f.Path] = provider.FileHash{Hash: provider.HashContent(f.Content), Secret: f.Secret}
	}
	r.Steps = []string{}
	seen := map[step.ID]bool{}
	for _, s := range p.Steps {
		// Identities key the diff and the steps' dependencies: a step
		// without one, or two alike, is the role's bug.
		if s.ID.IsZero() || seen[s.ID] {
			return fmt.Errorf("plan role %s: step %q has no identity of its own (%s)", ro.Name(), s.Name, s.ID)
		}
		seen[s.ID] = true
		r.Steps = append(r.Steps, s.ID.String())
	}
	r.Settings = p.Settings
	return nil
}

// roleResource is the program's handle on one registered resource; its
// outputs are not read back.
type roleResource struct {
	pulumi.CustomResourceState
}

// program is the inline Pulumi program. It plans each host in a goroutine
// of its own and registers the host's resources as soon as they are
// planned, so Pulumi starts on the hosts that answer while a slow or
// unreachable one is still being waited for.
func program(ctx context.Context, inv *inventory.Inventory, p *planner, outputs map[string]string) pulumi.RunFunc {
	return func(pctx *pulumi.Context) error {
		hosts := pulumi.StringMap{}
		errs := make([]error, len(inv.Hosts))
		deps := newClusterDeps(inv, p.roles)
		var wg sync.WaitGroup
		for i, h := range inv.Hosts {
			hosts[h.Name] = pulumi.String(h.Address)
			wg.Add(1)
			go func() {
				defer wg.Done()
				hd := deps.host()
				defer hd.finishAll()
				errs[i] = register(pctx, p.host(ctx, h), hd)
			}()
		}
		wg.Wait()
		pctx.Export("hosts", hosts)
		for k, v := range outputs {
			pctx.Export(k, pulumi.String(v))
		}
		// A secret output: encrypted in the state, shown by status only
		// (PrintedSecrets), never in a run's summary.
		if len(inv.HostsWith(inventory.RoleDashboard)) > 0 && p.secrets.DashboardPassword != "" {
			pctx.Export(DashboardPasswordOutput, pulumi.ToSecret(pulumi.String(p.secrets.DashboardPassword)))
		}
		return errors.Join(errs...)
	}
}

// register registers one host's resources, the others depending on base
// and on what deps says they need on other hosts.
func register(pctx *pulumi.Context, resources []provider.Resource, deps *hostDeps) error {
	var baseRes pulumi.Resource
	for i, r := range resources {
		// Roles this host has no resource of from here on are done: a
		// host waiting for another must not keep that one waiting.
		deps.finishExcept(resources[i:])
		var on []pulumi.Resource
		if r.Role != base.Name && baseRes != nil {
			on = append(on, baseRes)
		}
		on = append(on, deps.dependencies(r.Role)...)
		var opts []pulumi.ResourceOption
		if len(on) > 0 {
			opts = append(opts, pulumi.DependsOn(on))
		}
		res := &roleResource{}
		if err := pctx.RegisterResource(provider.TypeOf(r.Role), provider.Name(r.Host, r.Role), inputs(r), res, opts...); err != nil {
			return fmt.Errorf("register %s: %w", provider.Name(r.Host, r.Role), err)
		}
		deps.registered(r.Role, res)
		if r.Role == base.Name {
			baseRes = res
		}
	}
	return nil
}

// clusterDeps are the dependencies between roles across hosts, as the
// roles name them (role.Role.Needs): every resource of a role depends on
// every resource of each role it needs, on all hosts, so those are
// configured first and, since Pulumi deletes in reverse dependency order,
// removed last (the ZooKeeper ensemble before and after every broker, the
// web servers before and after the load balancers that balance over them).
// Hosts register concurrently: a resource that needs a role waits until
// every host has registered its resources of that role (or has none). A
// host registers its roles in order (Roles), and needed roles come before
// the roles needing them; so a host about to wait says it is done with
// every role before the one it registers, and no two hosts wait for each
// other.
type clusterDeps struct {
	needs   map[string][]string        // role → the roles it needs on every host
	pending map[string]*sync.WaitGroup // needed role → hosts not done with it
	mu      sync.Mutex
	res     map[string][]pulumi.Resource // needed role → registered resources
}

func newClusterDeps(inv *inventory.Inventory, roles []role.Role) *clusterDeps {
	d := &clusterDeps{needs: Needs(inv, roles), pending: map[string]*sync.WaitGroup{}, res: map[string][]pulumi.Resource{}}
	for _, roles := range d.needs {
		for _, needed := range roles {
			if d.pending[needed] == nil {
				wg := &sync.WaitGroup{}
				wg.Add(len(inv.Hosts))
				d.pending[needed] = wg
			}
		}
	}
	return d
}

// Needs says which roles' resources on every host a role's resources
// depend on, as the roles say (role.Role.Needs): role → the roles it
// needs.
func Needs(inv *inventory.Inventory, roles []role.Role) map[string][]string {
	needs := map[string][]string{}
	for _, ro := range roles {
		if n := ro.Needs(inv); len(n) > 0 {
			needs[ro.Name()] = n
		}
	}
	return needs
}

// host returns the tracker of one host; every host of the inventory must
// get one and call finishAll when it is done registering.
func (d *clusterDeps) host() *hostDeps { return &hostDeps{d: d, done: map[string]bool{}} }

// hostDeps is one host's side of clusterDeps.
type hostDeps struct {
	d    *clusterDeps
	done map[string]bool
}

// finish says the host has registered all its resources of role.
func (h *hostDeps) finish(role string) {
	if wg, ok := h.d.pending[role]; ok && !h.done[role] {
		h.done[role] = true
		wg.Done()
	}
}

func (h *hostDeps) finishAll() {
	for role := range h.d.pending {
		h.finish(role)
	}
}

// finishExcept finishes every role the host has no resource of among
// rest, the resources it has yet to register.
func (h *hostDeps) finishExcept(rest []provider.Resource) {
	for role := range h.d.pending {
		if !slices.ContainsFunc(rest, func(r provider.Resource) bool { return r.Role == role }) {
			h.finish(role)
		}
	}
}

// dependencies returns the resources on every host that a resource of
// role depends on, waiting for every host to have registered them. Roles
// come in order (Roles), so this host's own are registered already.
func (h *hostDeps) dependencies(role string) []pulumi.Resource {
	var out []pulumi.Resource
	for _, needed := range h.d.needs[role] {
		h.finish(needed)
		h.d.pending[needed].Wait()
		h.d.mu.Lock()
		out = append(out, h.d.res[needed]...)
		h.d.mu.Unlock()
	}
	return out
}

func (h *hostDeps) registered(role string, r pulumi.Resource) {
	if _, ok := h.d.pending[role]; !ok {
		return
	}
	h.d.mu.Lock()
	defer h.d.mu.Unlock()
	h.d.res[role] = append(h.d.res[role], r)
}

// inputs turns a planned resource into the program's inputs, marking the
// secrets and the hashes of secret files as Pulumi secrets.
func inputs(r provider.Resource) pulumi.Map {
	m := pulumi.Map{
		"host":    pulumi.String(r.Host),
		"address": pulumi.String(r.Address),
		"role":    pulumi.String(r.Role),
		"os":      pulumi.String(r.OS),
		"stepIds": pulumi.ToStringArray(r.Steps),
		"secrets": pulumi.ToSecret(pulumi.ToStringMap(r.Secrets)),
	}
	files := pulumi.Map{}
	for p, f := range r.Files {
		if f.Secret {
			files[p] = pulumi.ToSecret(pulumi.String(f.Hash))
		} else {
			files[p] = pulumi.String(f.Hash)
		}
	}
	m["files"] = files
	if r.Problem != "" {
		m["problem"] = pulumi.String(r.Problem)
	}
	if len(r.Settings) > 0 {
		m["settings"] = pulumi.ToStringMap(r.Settings)
	}
	if len(r.Values) > 0 {
		m["values"] = pulumi.ToStringMap(r.Values)
	}
	return m
}

// DashboardPasswordOutput is the stack output holding the dashboard's
// login password (user DashboardUser).
const DashboardPasswordOutput = "dashboard_password"

// PrintedSecrets are the secret outputs `provision status` prints: what
// people need to log in, nothing a machine uses.
var PrintedSecrets = []string{DashboardPasswordOutput}

// stackOutputs are the outputs beyond the hosts: whatever the roles that
// are on some host add.
func stackOutputs(inv *inventory.Inventory, roles []role.Role) map[string]string {
	out := map[string]string{}
	for _, ro := range roles {
		o, ok := ro.(role.OutputRole)
		if !ok {
			continue
		}
		on := false
		for _, h := range inv.Hosts {
			on = on || role.Applies(ro, inv, h)
		}
		if !on {
			continue
		}
		for k, v := range o.Outputs(inv) {
			out[k] = v
		}
	}
	return out
}

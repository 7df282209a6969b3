package provider

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// Executor does the work on hosts for the provider. Its methods get the
// resource name ("<host>-<role>") and the resource as Pulumi holds it.
type Executor interface {
	// Apply runs the role's steps on the host (create and update). started
	// reports whether anything ran on the host, so a failed create is still
	// recorded and a later destroy undoes what it did.
	Apply(ctx context.Context, name string, r Resource) (started bool, err error)
	// Remove undoes the role on the host (delete).
	Remove(ctx context.Context, name string, r Resource) error
	// Probe checks the host without changing it and returns what differs:
	// Drift maps step names to their change, Files maps paths of rendered
	// files to DriftedFileHash values. An unreachable host is drift
	// (DriftUnreachable), not an error, so one host down does not stop the
	// probe of the others.
	Probe(ctx context.Context, name string, r Resource) (Probed, error)
}

// Probed is what a probe found.
type Probed struct {
	Files map[string]string
	Drift map[string]string
}

// DiffObserver sees every diff the provider computes, for the engine to
// show them (Pulumi's own display does not know our keys' meaning).
type DiffObserver func(name string, r Resource, changes []Change)

// Provider serves Pulumi's resource provider protocol for trafficlab's
// resource types.
type Provider struct {
	pulumirpc.UnimplementedResourceProviderServer

	exec   Executor
	onDiff DiffObserver
	force  atomic.Bool
}

// New returns a provider doing its work through exec; onDiff may be nil.
func New(exec Executor, onDiff DiffObserver) *Provider {
	return &Provider{exec: exec, onDiff: onDiff}
}

// SetForce makes every existing resource count as changed, so that an
// update re-runs the steps of all of them (`up --force`).
func (p *Provider) SetForce(on bool) { p.force.Store(on) }

// Server is a running provider; Port is what PULUMI_DEBUG_PROVIDERS needs.
type Server struct {
	Port   int
	cancel chan bool
	done   <-chan error
}

// Serve starts serving p on a free loopback port.
func Serve(p *Provider) (*Server, error) {
	cancel := make(chan bool)
	h, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(s *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(s, p)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		return nil, fmt.Errorf("serve the trafficlab resource provider: %w", err)
	}
	return &Server{Port: h.Port, cancel: cancel, done: h.Done}, nil
}

// DebugProviders is the PULUMI_DEBUG_PROVIDERS value that points the
// engine at this server instead of a plugin binary.
func (s *Server) DebugProviders() string { return fmt.Sprintf("%s:%d", Package, s.Port) }

// Stop stops the server and waits for it.
func (s *Server) Stop() error {
	close(s.cancel)
	return <-s.done
}

var marshal = plugin.MarshalOptions{KeepSecrets: true, KeepUnknowns: true, SkipNulls: true}

func unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	if s == nil {
		return resource.PropertyMap{}, nil
	}
	return plugin.UnmarshalProperties(s, marshal)
}

func toStruct(r Resource) (*structpb.Struct, error) {
	return plugin.MarshalProperties(r.Properties(), marshal)
}

func decode(s *structpb.Struct) (Resource, error) {
	pm, err := unmarshal(s)
	if err != nil {
		return Resource{}, err
	}
	return FromProperties(pm)
}

// Attach is how the engine connects to a provider it did not start
// (PULUMI_DEBUG_PROVIDERS); there is nothing to set up.
func (p *Provider) Attach(context.Context, *pulumirpc.PluginAttach) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

func (p *Provider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: Version}, nil
}

// Configure accepts secrets so that the secrets input reaches us marked
// as such and our state keeps it secret.
func (p *Provider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true}, nil
}

func (p *Provider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *Provider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

// Cancel is sent by the engine when the user interrupts; the engine's own
// interrupt handling stops our operations, so nothing is left to do.
func (p *Provider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Check validates a resource's inputs.
func (p *Provider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	pm, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if _, err := FromProperties(pm); err != nil {
		return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: []*pulumirpc.CheckFailure{{Reason: err.Error()}}}, nil
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// Diff compares the state with the new inputs. Nothing is ever replaced:
// a role on a host is changed in place by running its steps.
func (p *Provider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	old, err := decode(req.GetOlds())
	if err != nil {
		return nil, fmt.Errorf("%s: state: %w", urnName(req.GetUrn()), err)
	}
	news, err := decode(req.GetNews())
	if err != nil {
		return nil, fmt.Errorf("%s: inputs: %w", urnName(req.GetUrn()), err)
	}
	changes := Diff(old, news)
	name := urnName(req.GetUrn())
	if p.onDiff != nil {
		p.onDiff(name, news, changes)
	}
	resp := &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true, DetailedDiff: map[string]*pulumirpc.PropertyDiff{}}
	for _, c := range changes {
		resp.Diffs = append(resp.Diffs, c.Key)
		resp.DetailedDiff[c.Key] = &pulumirpc.PropertyDiff{Kind: propertyDiffKind(c.Kind)}
	}
	if len(changes) > 0 || p.force.Load() {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	return resp, nil
}

func propertyDiffKind(k ChangeKind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case Added:
		return pulumirpc.PropertyDiff_ADD
	case Deleted:
		return pulumirpc.PropertyDiff_DELETE
	}
	return pulumirpc.PropertyDiff_UPDATE
}

// Create runs the role's steps on a host for the first time.
func (p *Provider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	name := urnName(req.GetUrn())
	r, err := decode(req.GetProperties())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out, err := toStruct(r)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		return &pulumirpc.CreateResponse{Id: name, Properties: out}, nil
	}
	started, err := p.exec.Apply(ctx, name, r)
	if err != nil {
		if !started {
			return nil, err
		}
		// Record the resource anyway: the host is partly configured, and
		// the next up must update it (Pulumi retries resources with init
		// errors) and a destroy must undo it.
		return nil, initFailed(name, out, err)
	}
	return &pulumirpc.CreateResponse{Id: name, Properties: out}, nil
}

// Update runs the role's steps again; they change only what differs.
func (p *Provider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	name := urnName(req.GetUrn())
	r, err := decode(req.GetNews())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	out, err := toStruct(r)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		return &pulumirpc.UpdateResponse{Properties: out}, nil
	}
	if _, err := p.exec.Apply(ctx, name, r); err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: out}, nil
}

// Delete undoes the role on its host.
func (p *Provider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	name := urnName(req.GetUrn())
	r, err := decode(req.GetProperties())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := p.exec.Remove(ctx, name, r); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Read probes the host (refresh): the state it returns carries what
// differs on the host, so the next diff shows it and the next update
// repairs it. The inputs stay as they were.
func (p *Provider) Read(ctx context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	name := urnName(req.GetUrn())
	r, err := decode(req.GetProperties())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	// A probe replaces what the previous one found: start again from the
	// file hashes last applied (the inputs), not from an earlier probe's.
	r.Drift = nil
	if in, err := decode(req.GetInputs()); err == nil && req.GetInputs() != nil {
		r.Files = in.Files
	}
	found, err := p.exec.Probe(ctx, name, r)
	if err != nil {
		return nil, err
	}
	for path, h := range found.Files {
		if f, ok := r.Files[path]; ok {
			r.Files[path] = FileHash{Hash: h, Secret: f.Secret}
		}
	}
	if len(found.Drift) > 0 {
		r.Drift = found.Drift
	}
	out, err := toStruct(r)
	if err != nil {
		return nil, err
	}
	inputs := req.GetInputs()
	if inputs == nil {
		inputs = req.GetProperties()
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: out, Inputs: inputs}, nil
}

// initFailed is the gRPC error that makes Pulumi keep a resource whose
// create failed halfway.
func initFailed(name string, props *structpb.Struct, cause error) error {
	st, err := status.New(codes.Unknown, cause.Error()).WithDetails(&pulumirpc.ErrorResourceInitFailed{
		Id:         name,
		Properties: props,
		Inputs:     props,
		Reasons:    []string{cause.Error()},
	})
	if err != nil {
		return errors.Join(cause, err)
	}
	return st.Err()
}

// urnName is the resource name inside a URN ("<host>-<role>").
func urnName(u string) string {
	if u == "" {
		return "(unnamed)"
	}
	return resource.URN(u).Name()
}

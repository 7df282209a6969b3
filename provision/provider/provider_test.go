package provider

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

const urn = "urn:pulumi:lab::trafficlab::trafficlab:index:Base::kafka-1-base"

func sample() Resource {
	return Resource{
		Host: "kafka-1", Address: "10.0.0.10", Role: "base", OS: "debian 12",
		Files: map[string]FileHash{
			"/etc/hosts":           {Hash: HashContent([]byte("a"))},
			"/etc/chrony/key.conf": {Hash: HashContent([]byte("s3cret")), Secret: true},
		},
		Steps:    []string{"command:hostname kafka-1", "block:/etc/hosts#hosts"},
		Settings: map[string]string{"partitions": "3"},
		Secrets:  map[string]string{"mysqlPassword": "hunter2hunter2"},
		Values:   map[string]string{"kafkaClusterId": "MkU3OEVBNTcwNTJENDM2Qg"},
	}
}

func TestTypeOf(t *testing.T) {
	for role, want := range map[string]string{
		"base":      "trafficlab:index:Base",
		"zookeeper": "trafficlab:index:Zookeeper",
		"log-ship":  "trafficlab:index:LogShip",
	} {
		if got := TypeOf(role); got != want {
			t.Errorf("TypeOf(%q) = %q, want %q", role, got, want)
		}
	}
}

func TestPropertiesRoundTripKeepsSecrets(t *testing.T) {
	r := sample()
	r.Drift = map[string]string{"service chrony running": "systemctl start chrony"}
	pm := r.Properties()
	if !pm["secrets"].IsSecret() {
		t.Errorf("secrets input is not a Pulumi secret")
	}
	files := pm["files"].ObjectValue()
	if !files["/etc/chrony/key.conf"].IsSecret() || files["/etc/hosts"].IsSecret() {
		t.Errorf("only the secret file's hash should be secret: %v", files)
	}
	back, err := FromProperties(pm)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(r, back); len(d) != 1 || !strings.HasPrefix(d[0].Key, "drift[") {
		// Diff reports the old state's drift; everything else must match.
		t.Errorf("round trip changed the resource: %+v", d)
	}
	if !back.Files["/etc/chrony/key.conf"].Secret {
		t.Errorf("secret flag of a file lost in the round trip")
	}
}

// A resource an older provision kept: its cluster id was a property of
// its own, its steps were names. Read now, it differs in nothing.
func TestFromPropertiesReadsAnOlderState(t *testing.T) {
	r := sample()
	pm := r.Properties()
	delete(pm, "values")
	delete(pm, "stepIds")
	pm["kafkaClusterId"] = resource.NewProperty(r.Values["kafkaClusterId"])
	pm["steps"] = resource.NewProperty([]resource.PropertyValue{resource.NewProperty("hostname kafka-1")})
	old, err := FromProperties(pm)
	if err != nil {
		t.Fatal(err)
	}
	if d := Diff(old, r); len(d) != 0 {
		t.Errorf("an older state differs from the same resource now: %+v", d)
	}
}

func TestFromPropertiesNamesMissingKeys(t *testing.T) {
	_, err := FromProperties(resource.PropertyMap{"host": resource.NewProperty("h")})
	if err == nil || !strings.Contains(err.Error(), "address is missing") || !strings.Contains(err.Error(), "role is missing") {
		t.Errorf("err = %v, want both missing keys named", err)
	}
}

func TestDiff(t *testing.T) {
	old := sample()
	tests := []struct {
		name   string
		change func(old, new *Resource)
		want   []string // keys
		detail string   // in some change's detail
	}{
		{"nothing", func(_, _ *Resource) {}, nil, ""},
		{"file content", func(_, n *Resource) {
			n.Files = cloneFiles(n.Files)
			n.Files["/etc/hosts"] = FileHash{Hash: HashContent([]byte("b"))}
		}, []string{`files["/etc/hosts"]`}, "content of /etc/hosts changed"},
		{"file added and removed", func(_, n *Resource) {
			n.Files = cloneFiles(n.Files)
			delete(n.Files, "/etc/hosts")
			n.Files["/etc/new"] = FileHash{Hash: "x"}
		}, []string{`files["/etc/hosts"]`, `files["/etc/new"]`}, "new file /etc/new"},
		{"secret file shows no hash", func(_, n *Resource) {
			n.Files = cloneFiles(n.Files)
			n.Files["/etc/chrony/key.conf"] = FileHash{Hash: HashContent([]byte("other")), Secret: true}
		}, []string{`files["/etc/chrony/key.conf"]`}, "content of /etc/chrony/key.conf changed"},
		{"drift on the host", func(o, _ *Resource) {
			o.Files = cloneFiles(o.Files)
			o.Files["/etc/hosts"] = FileHash{Hash: DriftedFileHash("update block hosts")}
			o.Drift = map[string]string{"service chrony running": "systemctl start chrony"}
		}, []string{`drift["service chrony running"]`, `files["/etc/hosts"]`}, "differs on the host (update block hosts)"},
		{"steps", func(_, n *Resource) {
			n.Steps = []string{"command:hostname kafka-1", "command:timezone UTC"}
		}, []string{"stepIds"}, "new: command:timezone UTC; dropped: block:/etc/hosts#hosts"},
		{"a state from before step identities", func(o, n *Resource) {
			o.Steps = nil
			n.Steps = []string{"command:hostname kafka-1", "command:timezone UTC"}
		}, nil, ""},
		{"setting", func(_, n *Resource) {
			n.Settings = map[string]string{"partitions": "6", "replication": "3"}
		}, []string{`settings["partitions"]`, `settings["replication"]`}, `partitions "3" -> "6"`},
		{"value", func(_, n *Resource) { n.Values = nil }, []string{`values["kafkaClusterId"]`}, "kafkaClusterId no longer set"},
		{"secret value", func(_, n *Resource) {
			n.Secrets = map[string]string{"mysqlPassword": "changed-value"}
		}, []string{"secrets"}, "changed: mysqlPassword"},
		{"address", func(_, n *Resource) { n.Address = "10.0.0.99" }, []string{"address"}, `"10.0.0.10" -> "10.0.0.99"`},
		{"problem", func(_, n *Resource) { n.Problem = "unreachable: no route to host" }, []string{"problem"}, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, n := old, sample()
			tt.change(&o, &n)
			changes := Diff(o, n)
			var keys []string
			found := tt.detail == ""
			for _, c := range changes {
				keys = append(keys, c.Key)
				found = found || strings.Contains(c.Detail, tt.detail)
				if strings.Contains(c.Detail, "hunter2") || strings.Contains(c.Detail, "changed-value") || strings.Contains(c.Detail, "sha256:") {
					t.Errorf("a change shows a secret or a hash: %q", c.Detail)
				}
			}
			if strings.Join(keys, " ") != strings.Join(tt.want, " ") {
				t.Errorf("keys = %v, want %v", keys, tt.want)
			}
			if !found {
				t.Errorf("no change says %q: %+v", tt.detail, changes)
			}
		})
	}
}

func cloneFiles(m map[string]FileHash) map[string]FileHash {
	out := map[string]FileHash{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// fakeExec records calls and answers as told.
type fakeExec struct {
	applied []string
	started bool
	err     error
	probed  Probed
}

func (f *fakeExec) Apply(_ context.Context, name string, _ Resource) (bool, error) {
	f.applied = append(f.applied, name)
	return f.started, f.err
}
func (f *fakeExec) Remove(context.Context, string, Resource) error { return f.err }
func (f *fakeExec) Probe(context.Context, string, Resource) (Probed, error) {
	return f.probed, nil
}

func mustStruct(t *testing.T, r Resource) *structpb.Struct {
	t.Helper()
	s, err := toStruct(r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDiffRPCForceAndNoChange(t *testing.T) {
	p := New(&fakeExec{}, nil)
	ctx := context.Background()
	req := &pulumirpc.DiffRequest{Urn: urn, Olds: mustStruct(t, sample()), News: mustStruct(t, sample())}
	resp, err := p.Diff(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Errorf("identical resource: changes = %v, want none", resp.Changes)
	}
	p.SetForce(true)
	if resp, _ = p.Diff(ctx, req); resp.Changes != pulumirpc.DiffResponse_DIFF_SOME {
		t.Errorf("--force: changes = %v, want some", resp.Changes)
	}
	if len(resp.Replaces) != 0 {
		t.Errorf("a role is never replaced: %v", resp.Replaces)
	}
}

func TestCheckRejectsIncompleteInputs(t *testing.T) {
	p := New(&fakeExec{}, nil)
	news, _ := structpb.NewStruct(map[string]any{"host": "h"})
	resp, err := p.Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: news})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Failures) != 1 || !strings.Contains(resp.Failures[0].Reason, "address is missing") {
		t.Errorf("failures = %v", resp.Failures)
	}
}

func TestReadReportsDriftAndStartsFromInputs(t *testing.T) {
	f := &fakeExec{probed: Probed{
		Files: map[string]string{"/etc/hosts": DriftedFileHash("update block hosts in /etc/hosts")},
		Drift: map[string]string{"service chrony running": "systemctl start chrony"},
	}}
	p := New(f, nil)
	state := sample()
	// An earlier probe left its marks; the new one must start afresh.
	state.Files = cloneFiles(state.Files)
	state.Files["/etc/chrony/key.conf"] = FileHash{Hash: DriftedFileHash("old"), Secret: true}
	state.Drift = map[string]string{"old step": "old change"}
	resp, err := p.Read(context.Background(), &pulumirpc.ReadRequest{Id: "kafka-1-base", Urn: urn,
		Properties: mustStruct(t, state), Inputs: mustStruct(t, sample())})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decode(resp.Properties)
	if err != nil {
		t.Fatal(err)
	}
	if got.Files["/etc/chrony/key.conf"] != sample().Files["/etc/chrony/key.conf"] {
		t.Errorf("a file the probe found fine keeps an old drift mark: %v", got.Files["/etc/chrony/key.conf"])
	}
	if h := got.Files["/etc/hosts"].Hash; !strings.HasPrefix(h, "drift: ") {
		t.Errorf("/etc/hosts = %q, want a drift mark", h)
	}
	if len(got.Drift) != 1 || got.Drift["service chrony running"] == "" {
		t.Errorf("drift = %v", got.Drift)
	}
	changes := Diff(got, sample())
	if len(changes) != 2 {
		t.Errorf("diff after the probe = %+v, want the file and the service", changes)
	}
}

func TestCreateKeepsAHalfConfiguredHost(t *testing.T) {
	f := &fakeExec{started: true, err: errors.New("host kafka-1, resource kafka-1-base, step packages: exit status 100")}
	p := New(f, nil)
	_, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustStruct(t, sample())})
	st, ok := status.FromError(err)
	if !ok || len(st.Details()) != 1 {
		t.Fatalf("err = %v, want a status with ErrorResourceInitFailed", err)
	}
	if d, ok := st.Details()[0].(*pulumirpc.ErrorResourceInitFailed); !ok || d.Id != "kafka-1-base" || !strings.Contains(d.Reasons[0], "step packages") {
		t.Errorf("details = %+v", st.Details()[0])
	}
	// Nothing ran: a plain error, nothing recorded.
	f.started = false
	_, err = p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustStruct(t, sample())})
	if st, _ := status.FromError(err); len(st.Details()) != 0 {
		t.Errorf("a create that did not start recorded the resource: %v", err)
	}
	// A preview create does not run anything.
	f.applied = nil
	if _, err := p.Create(context.Background(), &pulumirpc.CreateRequest{Urn: urn, Properties: mustStruct(t, sample()), Preview: true}); err != nil || len(f.applied) != 0 {
		t.Errorf("preview create: err %v, applied %v", err, f.applied)
	}
}

// Package role defines what trafficlab configures on a host, one role at a
// time (base, zookeeper, kafka, web, lb, ...). A role knows the files it
// writes, the idempotent steps that make a host as wanted, and the steps
// that undo them; the engine decides when to run which.
package role

import (
	"context"
	"io/fs"
	"net"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/step"
	"github.com/trafficlab/trafficlab/templates"
)

// Secrets are the cluster's secrets in clear text: from the inventory, or
// generated once by the engine and kept as Pulumi secrets.
type Secrets struct {
	VRRPAuth          string
	MySQLPassword     string
	MySQLRootPassword string
	// MySQLDashboardPassword is the dashboard's read-only MySQL account's.
	MySQLDashboardPassword string
	// DashboardPassword is the dashboard's HTTP basic auth password.
	DashboardPassword string
	// ProbeKey signs verify's probe URIs; the consumer records only those.
	ProbeKey string

	// Kafka's TLS material, with kafka.security tls or sasl_ssl (package
	// kafkatls): the CA's certificate, each broker's key and certificate
	// by host name, and provision's own client key and certificate for
	// the brokers' mutual-TLS listener.
	KafkaCA    string
	KafkaCerts map[string]string
	KafkaAdmin string
	// The SCRAM passwords of the Kafka clients, with sasl_ssl.
	KafkaFilebeatPassword string
	KafkaConsumerPassword string
}

// Context is everything a role needs to plan one host.
type Context struct {
	Inventory *inventory.Inventory
	Host      inventory.Host
	OS        facts.OS // detected over SSH before planning
	Templates *templates.Set
	Secrets   Secrets
	// Interface is the network interface carrying Host.Address, detected
	// on the host before planning (keepalived brings the VIP up there);
	// empty when nothing asked the host, as in `provision render`.
	Interface string
	// Values are the cluster's kept values by key, the ones the role asks
	// for (ValueRole): made once by the engine and kept in the stack.
	Values map[string]string
	// Dial reaches a service of the cluster by the host name or address
	// the cluster uses ("kafka-2:9092"), through the SSH connection of
	// that host (package cluster). Nil when planning offline (render);
	// only steps that speak a service's own protocol need it.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Note prints a progress line under the host, for long waits that
	// are no step of their own (a rolling restart's turn). Nil is quiet.
	Note func(format string, args ...any)
}

// Notef prints a progress line through c.Note, if there is one.
func (c *Context) Notef(format string, args ...any) {
	if c.Note != nil {
		c.Note(format, args...)
	}
}

// File is one file a role keeps on a host, or one managed block in a file
// that is not trafficlab's alone (Block names it; Content is the block).
type File struct {
	Path    string
	Block   string
	Content []byte
	Mode    fs.FileMode
	Owner   string // "user" or "user:group"; empty leaves it as it is
	Secret  bool   // content holds a secret: never shown in diffs or render output
	// Unit names the systemd unit whose unit file this is (Path is then
	// /etc/systemd/system/Unit): systemd re-reads it after a change.
	Unit string
}

// Spec turns f into the step helper's file description.
func (f File) Spec() step.FileSpec {
	return step.FileSpec{Path: f.Path, Content: f.Content, Mode: f.Mode, Owner: f.Owner, Secret: f.Secret}
}

// Step is the step that keeps f: the block, the unit file or the file.
func (f File) Step() step.Step {
	switch {
	case f.Block != "":
		return step.Block(f.Path, f.Block, string(f.Content))
	case f.Unit != "":
		return step.UnitFile(f.Unit, f.Content)
	}
	return step.File(f.Spec())
}

// Plan is what a role wants on one host, for the engine to diff and run.
type Plan struct {
	// Files are every file the role keeps (Role.Files).
	Files []File
	// Steps make the host as wanted, in order; each has an ID of its own.
	Steps []step.Step
	// Settings are the values beyond files that decide what the steps do
	// (a topic's partitions, a binary's checksum): Pulumi diffs them, so
	// preview shows a changed one by its name.
	Settings map[string]string
}

// Role is one part of the cluster on one host.
type Role interface {
	// Name is the role's resource name: "base", "zookeeper", ...
	Name() string
	// On reports whether the role belongs on the host.
	On(h inventory.Host) bool
	// Needs names the roles whose resources, on every host, this role's
	// resources depend on: they are configured before it and removed
	// after it. A role comes after the roles it needs in the engine's
	// list.
	Needs(inv *inventory.Inventory) []string
	// Files renders every file the role writes on the host, offline: the
	// engine keys its resource inputs on their content, and `render`
	// prints them.
	Files(c *Context) ([]File, error)
	// Plan is everything the role wants on the host: its files, the
	// steps that make the host so, the settings they depend on.
	Plan(c *Context) (Plan, error)
	// Remove undoes the plan's steps, for destroy: units, files, data
	// directories, users and firewall rules trafficlab added.
	Remove(c *Context) ([]step.Step, error)
	// Keeps says what Remove leaves in place on purpose (OS packages,
	// hostname, timezone, ...), so destroy can tell the user.
	Keeps(c *Context) []string
}

// Value is one value of the whole cluster that a role needs on every run
// and that must never change once made (the Kafka cluster's id): the
// engine makes it with New the first time and keeps it in the stack, not
// as a secret.
type Value struct {
	Key string
	New func() (string, error)
	// Valid checks a value read back from the stack.
	Valid func(string) error
}

// ValueRole is a role with values kept in the stack. Its resources carry
// them, so that steps run without planning (a probe, destroy) have them.
type ValueRole interface {
	Values(inv *inventory.Inventory) []Value
}

// OutputRole is a role that adds stack outputs, such as the VIP and the
// site URL for the load balancers or the dashboard URL.
type OutputRole interface {
	Outputs(inv *inventory.Inventory) map[string]string
}

// InterfaceRole is a role that needs the network interface carrying the
// host's address (Context.Interface): the load balancer, whose keepalived
// brings the VIP up on it. Planning it fails when it could not be found.
type InterfaceRole interface {
	NeedsInterface()
}

// Logs are where a role's services say what they do: their systemd units
// (status and journal) and their own log files.
type Logs struct {
	Units []string
	Files []string
}

// LogRole is a role whose services have logs worth reading when it fails:
// `provision logs` and the evidence of a failed run read them.
type LogRole interface {
	Logs(c *Context) Logs
}

// ClusterRole is a role with one resource for the whole cluster (the log
// topic), carried by the host Owner names among those On accepts.
type ClusterRole interface {
	Role
	Owner(inv *inventory.Inventory) (inventory.Host, bool)
}

// OptionalRole is a role that only some clusters have, whatever their
// hosts' roles: the KRaft controllers of their own.
type OptionalRole interface {
	Enabled(inv *inventory.Inventory) bool
}

// Applies reports whether ro has a resource on host h of inv.
func Applies(ro Role, inv *inventory.Inventory, h inventory.Host) bool {
	if !ro.On(h) {
		return false
	}
	if o, ok := ro.(OptionalRole); ok && !o.Enabled(inv) {
		return false
	}
	if cr, ok := ro.(ClusterRole); ok {
		o, ok := cr.Owner(inv)
		return ok && o.Name == h.Name
	}
	return true
}

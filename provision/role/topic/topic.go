// Package topic is the role that keeps the log topic as the inventory
// asks (name, partitions, replication factor, min.insync.replicas), and
// with kafka.security sasl_ssl the SCRAM accounts of the clients that
// write and read it, through the Kafka protocol from the control machine.
//
// The same resource raises the cluster's metadata.version after an upgrade
// (kafka.MetadataVersionStep): it is the one resource that comes after
// every broker.
//
// The topic is one resource for the whole cluster. It is attached to the
// first kafka host of the inventory, whose resource runs it; its steps
// talk to every broker through the cluster's tunnelled dialer
// (role.Context.Dial), not through that host's shell.
package topic

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Name is the role's name.
const Name = "topic"

// BrokersTimeout bounds the wait for enough brokers to register before the
// topic can be created with its replication factor.
var BrokersTimeout = 2 * time.Minute

type topicRole struct{}

// New returns the topic role.
func New() role.Role { return topicRole{} }

func (topicRole) Name() string { return Name }

// On: a kafka host; of those, Owner carries the one resource.
func (topicRole) On(h inventory.Host) bool { return h.Has(inventory.RoleKafka) }

// Owner is the host that carries the topic resource: the first kafka host.
func (topicRole) Owner(inv *inventory.Inventory) (inventory.Host, bool) { return Owner(inv) }

// Owner is the host that carries the topic resource: the first kafka host.
func Owner(inv *inventory.Inventory) (inventory.Host, bool) {
	hs := inv.HostsWith(inventory.RoleKafka)
	if len(hs) == 0 {
		return inventory.Host{}, false
	}
	return hs[0], true
}

func owns(c *role.Context) bool {
	o, ok := Owner(c.Inventory)
	return ok && o.Name == c.Host.Name
}

// Files: the topic lives in Kafka, not in a file.
func (topicRole) Files(*role.Context) ([]role.File, error) { return nil, nil }

// Kinds of the role's steps.
const (
	KindTopic   step.Kind = "topic"         // Object: the topic's name
	KindAccount step.Kind = "kafka-account" // Object: the user's name
)

// Needs: the topic is made on the running brokers.
func (topicRole) Needs(*inventory.Inventory) []string { return []string{kafka.Name} }

// Plan keeps the topic, and its settings as the resource's: a changed
// partition count shows in preview as settings["partitions"].
func (topicRole) Plan(c *role.Context) (role.Plan, error) {
	if !owns(c) {
		return role.Plan{}, nil
	}
	spec := kafkaadmin.SpecFrom(c.Inventory)
	users, err := userSteps(c)
	if err != nil {
		return role.Plan{}, err
	}
	return role.Plan{
		Steps: append([]step.Step{kafka.MetadataVersionStep(c), topicStep(c, spec)}, users...),
		Settings: map[string]string{
			// A new release may bring a metadata.version to raise.
			"kafka.version":       c.Inventory.Kafka.Version,
			"partitions":          strconv.Itoa(spec.Partitions),
			"replication":         strconv.Itoa(spec.Replication),
			"min.insync.replicas": strconv.Itoa(spec.MinInsync),
		},
	}, nil
}

// topicStep keeps the topic as spec says, through the brokers' protocol:
// up waits for enough brokers to hold its replicas, a probe looks once.
func topicStep(c *role.Context, spec kafkaadmin.TopicSpec) step.Step {
	name := fmt.Sprintf("topic %s (%d partitions, replication %d, min.insync.replicas %d)", spec.Name, spec.Partitions, spec.Replication, spec.MinInsync)
	plan := func(ctx context.Context, wait time.Duration) (*kafkaadmin.Admin, *kafkaadmin.TopicPlan, error) {
		if c.Dial == nil {
			return nil, nil, errors.New("no connection to the brokers (offline)")
		}
		a, err := kafka.Admin(c.Inventory, c.Secrets, c.Dial)
		if err != nil {
			return nil, nil, err
		}
		if err := waitBrokers(ctx, a, spec.Replication, wait); err != nil {
			a.Close()
			return nil, nil, err
		}
		p, err := a.PlanTopic(ctx, spec)
		if err != nil {
			a.Close()
			return nil, nil, err
		}
		return a, p, nil
	}
	return step.Step{
		ID:   step.ID{Kind: KindTopic, Object: spec.Name},
		Name: name,
		Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
			if t.DryRun {
				// A probe looks once: brokers that do not answer are
				// drift to report (up starts them first), not a wait.
				a, p, err := plan(ctx, 0)
				if err != nil {
					return &step.Change{Summary: "check topic " + spec.Name + ": " + err.Error()}, nil
				}
				defer a.Close()
				if p.Empty() {
					return nil, nil
				}
				return &step.Change{Summary: p.String()}, nil
			}
			a, p, err := plan(ctx, BrokersTimeout)
			if err != nil {
				return nil, err
			}
			defer a.Close()
			if p.Empty() {
				return nil, nil
			}
			return &step.Change{Summary: p.String()}, nil
		},
		Apply: func(ctx context.Context, t *step.Target) error {
			a, p, err := plan(ctx, BrokersTimeout)
			if err != nil {
				return err
			}
			defer a.Close()
			return a.ApplyTopic(ctx, p)
		},
	}
}

// waitBrokers waits up to timeout (0: one look) until the cluster has
// registered enough brokers to hold the topic's replicas: right after the
// brokers start, fewer are in the metadata than will be.
func waitBrokers(ctx context.Context, a *kafkaadmin.Admin, need int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 10*time.Second))
	defer cancel()
	var last string
	for {
		md, err := a.Metadata(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case len(md.Brokers) >= need:
			return nil
		default:
			last = fmt.Sprintf("%d brokers registered, the replication factor needs %d", len(md.Brokers), need)
		}
		if timeout == 0 {
			return errors.New(last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("brokers not ready after %v: %s", timeout, last)
		case <-time.After(time.Second):
		}
	}
}

// Remove leaves the topic: its data goes with the brokers' data
// directories, which the kafka role removes, and a resource that only
// moved to another host must not delete it.
func (topicRole) Remove(*role.Context) ([]step.Step, error) { return nil, nil }

func (topicRole) Keeps(c *role.Context) []string {
	if !owns(c) {
		return nil
	}
	return []string{"the topic " + c.Inventory.Kafka.Topic.Name + " (its data goes with the brokers' data directories)"}
}

package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
)

// KindFeature is the kind of the step that finalises a KRaft feature.
const KindFeature step.Kind = "kafka-feature"

// featureWait bounds the wait for a finalised level to reach every node.
var featureWait = 30 * time.Second

// MetadataVersionStep raises the cluster's metadata.version to the highest
// level every broker and controller supports: after an upgrade, once the
// last node runs the new release (until then the old nodes' highest level
// is the cluster's, and nothing changes), as Kafka's upgrade notes ask.
// The level is never lowered. In ZooKeeper mode and while migrating there
// is nothing to do: the brokers' protocol is inter.broker.protocol.version.
func MetadataVersionStep(c *role.Context) step.Step {
	look := func(ctx context.Context) (kafkaadmin.Feature, *kafkaadmin.Admin, error) {
		if c.Dial == nil {
			return kafkaadmin.Feature{}, nil, errors.New("no connection to the brokers (offline)")
		}
		dial, err := AdminDial(c.Inventory, c.Secrets, c.Dial)
		if err != nil {
			return kafkaadmin.Feature{}, nil, err
		}
		// Every node is asked what it supports, brokers and controllers
		// alike.
		addrs := AdminBrokers(c.Inventory)
		if c.Inventory.Kafka.SeparateControllers() {
			addrs = append(addrs, ControllerAddrs(c.Inventory)...)
		}
		a := kafkaadmin.NewWithControllers(addrs, dial)
		f, err := a.Feature(ctx, kafkaadmin.MetadataVersion)
		if err != nil {
			a.Close()
			return f, nil, err
		}
		return f, a, nil
	}
	summary := func(f kafkaadmin.Feature) string {
		return fmt.Sprintf("raise %s from level %d to %d, the highest all %d nodes support (Kafka %s everywhere)", f.Name, f.Finalized, f.Supported, f.Nodes, c.Inventory.Kafka.Version)
	}
	return step.Step{
		ID:   step.ID{Kind: KindFeature, Object: kafkaadmin.MetadataVersion},
		Name: kafkaadmin.MetadataVersion + " at the level of the release every node runs",
		Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
			if c.Inventory.Kafka.Mode != inventory.KafkaKRaft {
				return nil, nil
			}
			f, a, err := look(ctx)
			if err != nil {
				if t.DryRun {
					return &step.Change{Summary: "check " + kafkaadmin.MetadataVersion + ": " + err.Error()}, nil
				}
				return nil, err
			}
			defer a.Close()
			if f.Finalized == 0 || f.Finalized >= f.Supported {
				return nil, nil
			}
			return &step.Change{Summary: summary(f)}, nil
		},
		Apply: func(ctx context.Context, t *step.Target) error {
			f, a, err := look(ctx)
			if err != nil {
				return err
			}
			defer a.Close()
			// The change goes to a broker, which forwards it to the
			// active controller: a controller's listener does not take
			// it from this client.
			dial, err := AdminDial(c.Inventory, c.Secrets, c.Dial)
			if err != nil {
				return err
			}
			b := kafkaadmin.NewWithBrokers(AdminBrokers(c.Inventory), dial)
			defer b.Close()
			if err := b.UpgradeFeature(ctx, f.Name, f.Supported); err != nil {
				return err
			}
			c.Notef("kafka: %s", summary(f))
			// Every node learns the level from the metadata log; the
			// next step must not see the old one.
			return waitFor(ctx, featureWait, func(ctx context.Context) (bool, string, error) {
				now, err := a.Feature(ctx, f.Name)
				if err != nil {
					return false, err.Error(), nil
				}
				return now.Finalized >= f.Supported, fmt.Sprintf("%s finalised at level %d on some node, want %d", f.Name, now.Finalized, f.Supported), nil
			})
		},
	}
}

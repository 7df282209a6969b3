package topic

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/step"
)

// LoginTimeout bounds the wait for a new SCRAM credential to reach the
// broker that is asked: credentials spread through the cluster's metadata.
var LoginTimeout = 30 * time.Second

// userSteps keep the SCRAM-SHA-512 accounts of filebeat and the consumer
// with kafka.security sasl_ssl. A step checks by logging in on the
// clients' listener, as the client will: a credential that lets the
// password in is left alone; after any failed login it is set again (the
// cluster keeps only salted hashes, so there is nothing else to compare,
// and a broker may answer a refused login by closing the connection, so
// a refusal cannot always be told from a broker that is down: setting
// the credential says which).
func userSteps(c *role.Context) ([]step.Step, error) {
	inv := c.Inventory
	if inv.Kafka.Security != inventory.KafkaSASLSSL {
		return nil, nil
	}
	accounts := []struct{ user, password string }{
		{kafka.FilebeatUser, c.Secrets.KafkaFilebeatPassword},
		{kafka.ConsumerUser, c.Secrets.KafkaConsumerPassword},
	}
	addr := net.JoinHostPort(c.Host.Name, strconv.Itoa(kafka.Port))
	// Clients check the brokers' certificates only: the same for every login.
	caOnly, err := kafkatls.ClientConfig([]byte(c.Secrets.KafkaCA), nil)
	if err != nil {
		return nil, fmt.Errorf("kafka.security sasl_ssl: %w (provision up keeps the CA in the stack)", err)
	}
	var steps []step.Step
	for _, a := range accounts {
		if a.password == "" {
			return nil, fmt.Errorf("no SCRAM password for %s in the stack (provision up makes it)", a.user)
		}
		login := func(ctx context.Context) error {
			if c.Dial == nil {
				return errors.New("no connection to the brokers (offline)")
			}
			return kafkaadmin.Login(ctx, kafkaadmin.DialFunc(kafkatls.Dial(kafkatls.DialFunc(c.Dial), caOnly)), addr, a.user, a.password)
		}
		steps = append(steps, step.Step{
			ID:   step.ID{Kind: KindAccount, Object: a.user},
			Name: fmt.Sprintf("kafka account %s (%s)", a.user, kafka.SCRAM),
			Check: func(ctx context.Context, t *step.Target) (*step.Change, error) {
				err := login(ctx)
				switch {
				case err == nil:
					return nil, nil
				case errors.Is(err, kafkaadmin.ErrLoginRefused):
					return &step.Change{Summary: "set the " + kafka.SCRAM + " credential of " + a.user}, nil
				}
				return &step.Change{Summary: "set the " + kafka.SCRAM + " credential of " + a.user + " (login: " + err.Error() + ")"}, nil
			},
			Apply: func(ctx context.Context, t *step.Target) error {
				adm, err := kafka.Admin(inv, c.Secrets, c.Dial)
				if err != nil {
					return err
				}
				defer adm.Close()
				if err := adm.SetSCRAM(ctx, a.user, a.password); err != nil {
					return err
				}
				// The check after Apply logs in once; wait here until the
				// credential has reached the broker it asks.
				ctx, cancel := context.WithTimeout(ctx, LoginTimeout)
				defer cancel()
				for {
					err := login(ctx)
					if err == nil {
						return nil
					}
					select {
					case <-ctx.Done():
						return fmt.Errorf("%s still refused %s %v after the credential was set: %w", addr, a.user, LoginTimeout, err)
					case <-time.After(500 * time.Millisecond):
					}
				}
			},
		})
	}
	return steps, nil
}

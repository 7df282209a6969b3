package kafkaadmin

import (
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha512"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// scramIterations is the PBKDF2 work of the stored SCRAM-SHA-512
// credentials: Kafka's minimum is 4096.
const scramIterations = 8192

// SetSCRAM creates or replaces user's SCRAM-SHA-512 credential. The
// password never leaves this process: only a salt and the salted password
// go to the cluster, which keeps them in its metadata.
func (a *Admin) SetSCRAM(ctx context.Context, user, password string) error {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return fmt.Errorf("salt for %s: %w", user, err)
	}
	salted, err := pbkdf2.Key(sha512.New, password, salt, scramIterations, sha512.Size)
	if err != nil {
		return fmt.Errorf("salt the password of %s: %w", user, err)
	}
	var errs []error
	for _, addr := range a.bootstrap {
		res, err := a.client.AlterUserScramCredentials(ctx, &kafka.AlterUserScramCredentialsRequest{
			Addr: kafka.TCP(addr),
			Upsertions: []kafka.UserScramCredentialsUpsertion{{
				Name: user, Mechanism: kafka.ScramMechanismSha512, Iterations: scramIterations, Salt: salt, SaltedPassword: salted,
			}},
		})
		if err == nil && len(res.Results) > 0 {
			err = res.Results[0].Error
		}
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return fmt.Errorf("set the SCRAM credential of %s: %w", user, errors.Join(errs...))
}

// ErrLoginRefused says a broker refused a SASL login.
var ErrLoginRefused = errors.New("login refused")

// Login logs in to the broker at addr as user with SCRAM-SHA-512, through
// dial (which does the TLS), and says whether the broker took it:
// ErrLoginRefused when it did not, another error when it could not be
// asked.
func Login(ctx context.Context, dial DialFunc, addr, user, password string) error {
	mech, err := scram.Mechanism(scram.SHA512, user, password)
	if err != nil {
		return err
	}
	d := &kafka.Dialer{DialFunc: dial, Timeout: 10 * time.Second, ClientID: "trafficlab-provision", SASLMechanism: mech}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, kafka.SASLAuthenticationFailed) {
			return fmt.Errorf("%s as %s: %w", addr, user, ErrLoginRefused)
		}
		return fmt.Errorf("log in to %s as %s: %w", addr, user, err)
	}
	// The login is done; closing a TLS connection through a tunnel can
	// report the far end's close (EOF), which says nothing about it.
	conn.Close()
	return nil
}

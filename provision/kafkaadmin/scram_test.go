package kafkaadmin

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Login tells a refused password from a broker that cannot be asked: the
// topic role sets a credential again only in the first case.
func TestLogin(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "trafficlab-filebeat", "right"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := Login(ctx, d.DialContext, addr, "trafficlab-filebeat", "right"); err != nil {
		t.Errorf("the right password: %v", err)
	}
	if err := Login(ctx, d.DialContext, addr, "trafficlab-filebeat", "wrong"); !errors.Is(err, ErrLoginRefused) {
		t.Errorf("a wrong password: %v, want ErrLoginRefused", err)
	}
	if err := Login(ctx, d.DialContext, addr, "nobody", "x"); !errors.Is(err, ErrLoginRefused) {
		t.Errorf("an unknown user: %v, want ErrLoginRefused", err)
	}
	down := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no route") }
	if err := Login(ctx, down, addr, "trafficlab-filebeat", "right"); err == nil || errors.Is(err, ErrLoginRefused) {
		t.Errorf("an unreachable broker: %v, want an error that is no refusal", err)
	}
}

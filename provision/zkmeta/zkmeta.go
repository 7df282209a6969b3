// Package zkmeta reads what Kafka keeps in ZooKeeper that the migration to
// KRaft needs from the control machine (github.com/go-zookeeper/zk): the
// cluster's id, which the KRaft controllers are formatted with, and the
// migration's own record; and, to roll a migration back, deletes the KRaft
// controller's claim on /controller and that record. Connections go through the dialer it is given,
// in provision an SSH tunnel from a ZooKeeper host, so the servers' names
// never need to resolve here.
package zkmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"time"

	"github.com/go-zookeeper/zk"
)

// DialFunc opens a connection to host:port.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Client is one ZooKeeper session.
type Client struct{ conn *zk.Conn }

// sessionTimeout is the session asked for; the client only reads.
const sessionTimeout = 10 * time.Second

// Open starts a session with one of servers (host:port) and waits for it
// until ctx ends.
func Open(ctx context.Context, servers []string, dial DialFunc) (*Client, error) {
	if len(servers) == 0 {
		return nil, errors.New("no ZooKeeper servers to ask")
	}
	dialer := func(network, addr string, timeout time.Duration) (net.Conn, error) {
		dctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return dial(dctx, network, addr)
	}
	conn, events, err := zk.Connect(servers, sessionTimeout, zk.WithDialer(dialer),
		zk.WithHostProvider(&static{}), zk.WithLogger(log.New(io.Discard, "", 0)))
	if err != nil {
		return nil, fmt.Errorf("connect to ZooKeeper %v: %w", servers, err)
	}
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				// The channel must keep being read, or the client blocks.
				go func() {
					for range events {
					}
				}()
				return &Client{conn: conn}, nil
			}
		case <-ctx.Done():
			conn.Close()
			return nil, fmt.Errorf("no ZooKeeper session with any of %v: %w", servers, ctx.Err())
		}
	}
}

// Close ends the session.
func (c *Client) Close() { c.conn.Close() }

// ClusterID is the id the first broker wrote to /cluster/id; "" when no
// broker has started yet.
func (c *Client) ClusterID() (string, error) {
	b, _, err := c.conn.Get("/cluster/id")
	if errors.Is(err, zk.ErrNoNode) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read /cluster/id: %w", err)
	}
	var v struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("read /cluster/id %q: %w", b, err)
	}
	return v.ID, nil
}

// Migration is the KRaft controllers' record of the migration in
// /migration: where in the KRaft metadata log ZooKeeper was last brought
// up to date, by which controller.
type Migration struct {
	MetadataOffset  int64 `json:"kraft_metadata_offset"`
	MetadataEpoch   int   `json:"kraft_metadata_epoch"`
	ControllerID    int   `json:"kraft_controller_id"`
	ControllerEpoch int   `json:"kraft_controller_epoch"`
}

// Copied reports whether the controllers have copied the metadata out of
// ZooKeeper: until then the record's offset is -1.
func (m Migration) Copied() bool { return m.MetadataOffset >= 0 }

// Migration reads /migration; ok is false when there is none (no KRaft
// controller has taken the cluster over).
func (c *Client) Migration() (m Migration, ok bool, err error) {
	b, _, err := c.conn.Get("/migration")
	if errors.Is(err, zk.ErrNoNode) {
		return Migration{}, false, nil
	}
	if err != nil {
		return Migration{}, false, fmt.Errorf("read /migration: %w", err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Migration{}, false, fmt.Errorf("read /migration %q: %w", b, err)
	}
	return m, true, nil
}

// holder reads the node id out of /controller's data.
func holder(b []byte) (int, error) {
	var v struct {
		BrokerID *int `json:"brokerid"`
	}
	if err := json.Unmarshal(b, &v); err != nil || v.BrokerID == nil {
		return 0, fmt.Errorf("read /controller %q: no brokerid in it", b)
	}
	return *v.BrokerID, nil
}

// DeleteControllerOf deletes /controller when node id holds it, so that a
// broker takes the controller role again; it reports whether it did. It
// never deletes another holder's claim: a rollback run again after a
// broker took over leaves it be.
func (c *Client) DeleteControllerOf(isKRaft func(id int) bool) (deleted bool, id int, err error) {
	b, st, err := c.conn.Get("/controller")
	if errors.Is(err, zk.ErrNoNode) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("read /controller: %w", err)
	}
	if id, err = holder(b); err != nil || !isKRaft(id) {
		return false, id, err
	}
	// At the version read: if the holder changed meanwhile, it is not ours.
	switch err := c.conn.Delete("/controller", st.Version); {
	case errors.Is(err, zk.ErrNoNode), errors.Is(err, zk.ErrBadVersion):
		return false, id, nil
	case err != nil:
		return false, id, fmt.Errorf("delete /controller: %w", err)
	}
	return true, id, nil
}

// DeleteMigration deletes /migration, the record of a migration rolled
// back, so that a later migration starts afresh (as Kafka's guide says);
// it reports whether there was one.
func (c *Client) DeleteMigration() (bool, error) {
	switch err := c.conn.Delete("/migration", -1); {
	case errors.Is(err, zk.ErrNoNode):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("delete /migration: %w", err)
	}
	return true, nil
}

// static hands the servers out in turn as given: the dialer, not DNS,
// knows them.
type static struct {
	servers []string
	next    int
	tried   int
}

func (s *static) Init(servers []string) error {
	s.servers = servers
	return nil
}

func (s *static) Len() int { return len(s.servers) }

func (s *static) Next() (string, bool) {
	srv := s.servers[s.next]
	s.next = (s.next + 1) % len(s.servers)
	s.tried++
	retry := s.tried > len(s.servers)
	if retry {
		s.tried = 1
	}
	return srv, retry
}

func (s *static) Connected() { s.tried = 0 }

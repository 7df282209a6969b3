package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

const (
	// maxSessions stays under OpenSSH's default MaxSessions (10) so
	// concurrent callers queue here instead of being refused by sshd.
	maxSessions       = 8
	keepaliveInterval = 15 * time.Second
	keepaliveTimeout  = 15 * time.Second
)

// ErrClosed is returned by operations on a closed Client.
var ErrClosed = errors.New("ssh client closed")

// Client is one SSH connection to a host, shared by every caller. It is
// safe for concurrent use; a lost connection is re-established once by the
// next operation.
type Client struct {
	cfg        Config
	bastion    *Client
	ownBastion bool
	sessions   chan struct{} // semaphore of open sessions
	lock       chan struct{} // guards conn and closed; a channel so waiting honours ctx
	conn       *ssh.Client
	closed     bool
	life       context.Context // cancelled by Close, aborts reconnects
	end        context.CancelFunc
	closeOnce  sync.Once
	closeErr   error
	log        *commandLog
	sudoMarker string
}

// Connect opens the connection to cfg's host, through its bastions if any,
// retrying as cfg.RetryFor allows.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	return connect(ctx, cfg, nil)
}

// connect uses bastion, when not nil, instead of connecting cfg.Bastion, so
// a Pool can share one bastion connection among many hosts.
func connect(ctx context.Context, cfg Config, bastion *Client) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:        cfg,
		bastion:    bastion,
		sessions:   make(chan struct{}, maxSessions),
		lock:       make(chan struct{}, 1),
		log:        newCommandLog(cfg.LogDir, cfg.Name),
		sudoMarker: newMarker(),
	}
	if cfg.Bastion != nil && bastion == nil {
		if c.bastion, err = Connect(ctx, *cfg.Bastion); err != nil {
			return nil, fmt.Errorf("%s: through bastion: %w", cfg.Name, err)
		}
		c.ownBastion = true
	}
	conn, err := dialRetry(ctx, cfg, c.dialer())
	if err != nil {
		if c.ownBastion {
			c.bastion.Close()
		}
		return nil, err
	}
	c.life, c.end = context.WithCancel(context.Background())
	c.setConn(conn)
	return c, nil
}

// Name is the inventory name of the host.
func (c *Client) Name() string { return c.cfg.Name }

func (c *Client) dialer() dialer {
	if c.bastion == nil {
		return directDialer
	}
	return func(ctx context.Context, addr string) (net.Conn, error) {
		return c.bastion.DialContext(ctx, "tcp", addr)
	}
}

func (c *Client) acquire(ctx context.Context) error {
	select {
	case c.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) release() { <-c.lock }

func (c *Client) setConn(conn *ssh.Client) {
	c.conn = conn
	go keepalive(c.cfg.Name, conn)
}

func (c *Client) current(ctx context.Context) (*ssh.Client, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	if c.closed {
		return nil, ErrClosed
	}
	return c.conn, nil
}

// reconnect replaces old unless another caller already did.
func (c *Client) reconnect(ctx context.Context, old *ssh.Client) (*ssh.Client, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.life, cancel)
	defer stop()
	if err := c.acquire(ctx); err != nil {
		return nil, err
	}
	defer c.release()
	if c.closed {
		return nil, ErrClosed
	}
	if c.conn != old {
		return c.conn, nil
	}
	old.Close()
	slog.Warn("ssh: connection lost, reconnecting", "host", c.cfg.Name, "addr", c.cfg.addr())
	conn, err := dialRetry(ctx, c.cfg, c.dialer())
	if err != nil {
		return nil, err
	}
	c.setConn(conn)
	return conn, nil
}

// withConn runs open, which opens a channel, on the current connection and,
// if the connection turns out to be gone (host rebooted, sshd restarted),
// once more on a new one. A refused channel or a cancelled ctx is not a lost
// connection.
func (c *Client) withConn(ctx context.Context, open func(*ssh.Client) error) error {
	conn, err := c.current(ctx)
	if err != nil {
		return err
	}
	err = open(conn)
	var rejected *ssh.OpenChannelError
	if err == nil || errors.As(err, &rejected) || ctx.Err() != nil {
		return err
	}
	if conn, err = c.reconnect(ctx, conn); err != nil {
		return err
	}
	return open(conn)
}

// openSession opens a session channel, waiting for a free slot first; the
// returned func closes it and frees the slot.
func (c *Client) openSession(ctx context.Context) (*ssh.Session, func(), error) {
	select {
	case c.sessions <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	var s *ssh.Session
	err := c.withConn(ctx, func(conn *ssh.Client) (err error) {
		s, err = conn.NewSession()
		return err
	})
	if err != nil {
		<-c.sessions
		return nil, nil, err
	}
	return s, func() { s.Close(); <-c.sessions }, nil
}

// DialContext opens a TCP connection from this host to addr through the
// SSH connection (direct-tcpip), e.g. to reach Kafka or MySQL from the
// control machine.
func (c *Client) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var nc net.Conn
	err := c.withConn(ctx, func(conn *ssh.Client) (err error) {
		nc, err = conn.DialContext(ctx, network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s through ssh: %w", c.cfg.Name, addr, err)
	}
	return &deadlineConn{Conn: nc}, nil
}

// Dial is DialContext without a context.
func (c *Client) Dial(network, addr string) (net.Conn, error) {
	return c.DialContext(context.Background(), network, addr)
}

// Close closes the connection and, unless shared through a Pool, the
// bastion connections it went through.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.end()
		c.lock <- struct{}{}
		c.closed = true
		err := c.conn.Close()
		c.release()
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
			c.closeErr = fmt.Errorf("%s: close: %w", c.cfg.Name, err)
		}
		if c.ownBastion {
			c.closeErr = errors.Join(c.closeErr, c.bastion.Close())
		}
	})
	return c.closeErr
}

// keepalive closes conn when the host stops answering, so the next command
// reconnects instead of hanging on a dead TCP connection.
func keepalive(host string, conn *ssh.Client) {
	gone := make(chan struct{})
	go func() { conn.Wait(); close(gone) }()
	tick := time.NewTicker(keepaliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-gone:
			return
		case <-tick.C:
		}
		reply := make(chan error, 1)
		go func() {
			_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err == nil {
				continue
			}
		case <-time.After(keepaliveTimeout):
			slog.Warn("ssh: host stopped answering keepalives, closing the connection", "host", host)
		case <-gone:
			return
		}
		conn.Close()
		return
	}
}

// deadlineConn gives a forwarded SSH channel the deadlines net.Conn
// promises and x/crypto/ssh's channels lack ("deadline not supported"):
// the MySQL driver and kafka-go set them on every request. A deadline that
// passes closes the connection, which both clients do after a timeout
// anyway; a timed-out channel cannot be resumed.
type deadlineConn struct {
	net.Conn
	mu            sync.Mutex
	read, written *time.Timer
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = c.arm(c.read, t)
	return nil
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = c.arm(c.written, t)
	return nil
}

func (c *deadlineConn) arm(old *time.Timer, t time.Time) *time.Timer {
	if old != nil {
		old.Stop()
	}
	if t.IsZero() {
		return nil
	}
	return time.AfterFunc(time.Until(t), func() { c.Conn.Close() })
}

func (c *deadlineConn) Close() error {
	c.mu.Lock()
	for _, t := range []*time.Timer{c.read, c.written} {
		if t != nil {
			t.Stop()
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Connections between stand-ins start with a tag no Kafka request can
// start with (as a request size it would be over 1 GB): "TLSF" forwards
// one client connection to the broker whose id follows; "TLSC" is a
// broker's control connection, open as long as that broker is up, followed
// by its id and its advertised address.
var (
	tagForward = [4]byte{'T', 'L', 'S', 'F'}
	tagControl = [4]byte{'T', 'L', 'S', 'C'}
)

// Logf logs one line.
type Logf func(format string, args ...any)

// LogOutput takes kfake's own log lines (warnings and errors).
var LogOutput io.Writer = os.Stderr

// Run serves the broker of c until ctx ends: as the primary, hosting the
// cluster, or forwarding to it.
func Run(ctx context.Context, c Config, logf Logf) error {
	self, primaryAddr, err := findPrimary(ctx, c, logf)
	if err != nil {
		return err
	}
	if self {
		return runPrimary(ctx, c, logf)
	}
	return runFollower(ctx, c, primaryAddr, logf)
}

// findPrimary says which broker hosts the cluster. KRaft: the voter with
// the lowest id, reached at its controller address. ZooKeeper mode: the
// first broker that ever started, recorded in ZooKeeper, reached at its
// advertised address; it stays the primary, since the data is in its
// log.dirs.
func findPrimary(ctx context.Context, c Config, logf Logf) (self bool, addr string, err error) {
	if c.KRaft {
		v := c.Voters[0]
		logf("KRaft mode: the primary is node %d (the lowest voter id) at %s", v.ID, v.Addr)
		return v.ID == c.ID, v.Addr, nil
	}
	for {
		id, addr, err := zkPrimary(ctx, c)
		if err == nil {
			logf("ZooKeeper mode: the primary is broker %d at %s", id, addr)
			return id == c.ID, addr, nil
		}
		logf("asking ZooKeeper (%s) for the primary: %v; retrying", c.ZooKeeper, err)
		select {
		case <-ctx.Done():
			return false, "", ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

type quiet struct{}

func (quiet) Printf(string, ...any) {}

// zkPrimary records this broker as the primary unless another is.
func zkPrimary(ctx context.Context, c Config) (int32, string, error) {
	connect, chroot, _ := strings.Cut(c.ZooKeeper, "/")
	conn, _, err := zk.Connect(strings.Split(connect, ","), 10*time.Second, zk.WithLogger(quiet{}))
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	type answer struct {
		id   int32
		addr string
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		base := "/" + strings.Trim(chroot, "/")
		p := ""
		for _, part := range strings.Split(strings.Trim(base+"/trafficlab-standin", "/"), "/") {
			p += "/" + part
			if _, err := conn.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				done <- answer{err: fmt.Errorf("create %s: %w", p, err)}
				return
			}
		}
		p += "/primary"
		record := fmt.Sprintf("%d %s", c.ID, c.Advertised)
		_, err := conn.Create(p, []byte(record), 0, zk.WorldACL(zk.PermAll))
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			done <- answer{err: fmt.Errorf("create %s: %w", p, err)}
			return
		}
		data, _, err := conn.Get(p)
		if err != nil {
			done <- answer{err: fmt.Errorf("read %s: %w", p, err)}
			return
		}
		idText, addr, _ := strings.Cut(string(data), " ")
		id, err := strconv.ParseInt(idText, 10, 32)
		if err != nil {
			done <- answer{err: fmt.Errorf("%s holds %q", p, data)}
			return
		}
		done <- answer{int32(id), addr, nil}
	}()
	select {
	case a := <-done:
		return a.id, a.addr, a.err
	case <-ctx.Done():
		return 0, "", ctx.Err()
	case <-time.After(30 * time.Second):
		return 0, "", errors.New("no answer within 30s")
	}
}

// primary hosts the kfake cluster: one node per broker that is up.
type primary struct {
	ctx     context.Context
	c       Config
	logf    Logf
	cluster *kfake.Cluster
	// controls are the control connections being served; they end before
	// the cluster is closed (kfake's Close must not race a RemoveNode).
	controls sync.WaitGroup

	mu    sync.Mutex
	nodes map[int32]*vlistener // the node listeners kfake accepts from
	addrs map[int32]string     // advertised addresses of the brokers
	gen   map[int32]int        // control connection generation per broker
}

func runPrimary(ctx context.Context, c Config, logf Logf) error {
	p := &primary{ctx: ctx, c: c, logf: logf, nodes: map[int32]*vlistener{}, addrs: map[int32]string{c.ID: c.Advertised}, gen: map[int32]int{}}

	var clusterID string
	var err error
	if c.KRaft {
		meta, err := ReadMeta(c.DataDir)
		if err != nil {
			return err
		}
		if meta == nil || meta["cluster.id"] == "" {
			return fmt.Errorf("no %s in %s: format it first (kafka-storage.sh format), as Kafka would ask", MetaFile, c.DataDir)
		}
		clusterID = meta["cluster.id"]
	} else if clusterID, err = ensureZooKeeperMeta(c.DataDir, c.ID); err != nil {
		return err
	}

	// kfake numbers the nodes it starts with 0..n-1 and makes the last
	// one the controller for good (topics are created there): so it
	// starts with nodes up to this broker's id, and the others are
	// removed right after. Brokers join as their control connections
	// come in. Partitions loaded from disk get leaders among the nodes
	// up (ShufflePartitionLeaders).
	ports := make([]int, c.ID+1)
	for i := range ports {
		ports[i] = i + 1 // the port tells listen which node it is for
	}
	opts := []kfake.Opt{
		kfake.Ports(ports...),
		kfake.ListenFn(p.listen),
		kfake.DataDir(filepath.Join(c.DataDir, "kfake")),
		kfake.ClusterID(clusterID),
		kfake.DefaultNumPartitions(c.NumPartitions),
		kfake.BrokerConfigs(c.BrokerConfigs),
		kfake.WithLogger(kfake.BasicLogger(LogOutput, kfake.LogLevelWarn)),
	}
	if c.AutoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	p.cluster, err = kfake.NewCluster(opts...)
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	defer func() {
		p.controls.Wait()
		p.cluster.Close() // persists the cluster's state
	}()
	for id := int32(0); id < c.ID; id++ {
		if err := p.cluster.RemoveNode(id); err != nil {
			return fmt.Errorf("removing placeholder node %d: %w", id, err)
		}
		p.mu.Lock()
		delete(p.nodes, id)
		p.mu.Unlock()
	}
	p.cluster.ShufflePartitionLeaders()

	addrs := []string{c.Listen}
	if c.ControllerListen != "" {
		addrs = append(addrs, c.ControllerListen)
	}
	return serve(ctx, addrs, logf, p.handle, func() {
		logf("primary broker %d serving the cluster %s as %s", c.ID, clusterID, c.Advertised)
	})
}

// listen is kfake's ListenFn: node listeners are in memory, fed by the
// front door (handle).
func (p *primary) listen(_, address string) (net.Listener, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("node listener for %q", address)
	}
	id := int32(n - 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	addr := p.addrs[id]
	if addr == "" {
		addr = "placeholder:1"
	}
	l := newVListener(addr)
	p.nodes[id] = l
	return l, nil
}

// handle takes one connection to the primary's listeners.
func (p *primary) handle(conn net.Conn) {
	var tag [4]byte
	conn.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(conn, tag[:]); err != nil {
		conn.Close()
		return
	}
	switch tag {
	case tagForward:
		id, err := readID(conn)
		conn.SetReadDeadline(time.Time{})
		p.mu.Lock()
		l := p.nodes[id]
		p.mu.Unlock()
		if err != nil || l == nil {
			conn.Close()
			return
		}
		l.deliver(conn)
	case tagControl:
		p.controls.Add(1)
		defer p.controls.Done()
		p.control(conn)
	default:
		conn.SetReadDeadline(time.Time{})
		p.mu.Lock()
		l := p.nodes[p.c.ID]
		p.mu.Unlock()
		l.deliver(&prefixConn{Conn: conn, prefix: tag[:]})
	}
}

// control keeps broker id's node in the cluster while its control
// connection is open.
func (p *primary) control(conn net.Conn) {
	defer conn.Close()
	id, err := readID(conn)
	var n uint16
	if err == nil {
		err = binary.Read(conn, binary.BigEndian, &n)
	}
	addr := make([]byte, n)
	if err == nil {
		_, err = io.ReadFull(conn, addr)
	}
	if err != nil || id == p.c.ID {
		return
	}
	conn.SetReadDeadline(time.Time{})
	p.mu.Lock()
	p.addrs[id] = string(addr)
	p.gen[id]++
	gen := p.gen[id]
	l, present := p.nodes[id]
	if present {
		l.setAddr(string(addr))
	}
	p.mu.Unlock()
	if !present {
		// kfake calls listen while adding, which takes p.mu.
		if _, _, err := p.cluster.AddNode(id, int(id)+1); err != nil {
			p.logf("adding broker %d: %v", id, err)
			return
		}
	}
	p.logf("broker %d joined at %s", id, addr)
	conn.Write([]byte{1})     // the node is there: the broker may take clients
	io.Copy(io.Discard, conn) // until the broker goes away
	if p.ctx.Err() != nil {
		return // the primary is stopping, not the broker
	}
	p.mu.Lock()
	last := p.gen[id] == gen
	if last {
		delete(p.nodes, id)
	}
	p.mu.Unlock()
	if last {
		if err := p.cluster.RemoveNode(id); err != nil {
			p.logf("removing broker %d: %v", id, err)
		}
		p.logf("broker %d left; its partitions moved to the brokers still up", id)
	}
}

func readID(r io.Reader) (int32, error) {
	var id int32
	err := binary.Read(r, binary.BigEndian, &id)
	return id, err
}

// runFollower forwards its listener to the primary and keeps a control
// connection to it, which is what makes this broker's node exist.
//
// It listens only once it has joined, so that a client (or the kafka
// role's readiness wait) that reaches it finds a cluster behind it.
func runFollower(ctx context.Context, c Config, primaryAddr string, logf Logf) error {
	joined := make(chan struct{})
	var once sync.Once
	go func() {
		for ctx.Err() == nil {
			if err := followPrimary(ctx, c, primaryAddr, logf, func() { once.Do(func() { close(joined) }) }); err != nil {
				logf("control connection to the primary %s: %v", primaryAddr, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	forward := func(conn net.Conn) {
		defer conn.Close()
		up, err := net.DialTimeout("tcp", primaryAddr, 5*time.Second)
		if err != nil {
			logf("forwarding a client: the primary %s: %v", primaryAddr, err)
			return
		}
		defer up.Close()
		hdr := append(tagForward[:], 0, 0, 0, 0)
		binary.BigEndian.PutUint32(hdr[4:], uint32(c.ID))
		if _, err := up.Write(hdr); err != nil {
			return
		}
		splice(conn, up)
	}
	select {
	case <-joined:
	case <-ctx.Done():
		return nil
	}
	return serve(ctx, []string{c.Listen}, logf, forward, func() {
		logf("broker %d at %s forwarding to the primary %s", c.ID, c.Advertised, primaryAddr)
	})
}

func followPrimary(ctx context.Context, c Config, primaryAddr string, logf Logf, joined func()) error {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	conn, err := d.DialContext(dctx, "tcp", primaryAddr)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	msg := append(tagControl[:], 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(msg[4:], uint32(c.ID))
	binary.BigEndian.PutUint16(msg[8:], uint16(len(c.Advertised)))
	if _, err := conn.Write(append(msg, c.Advertised...)); err != nil {
		return err
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil {
		return fmt.Errorf("joining: %w", err)
	}
	logf("joined the primary %s", primaryAddr)
	joined()
	_, err = io.Copy(io.Discard, conn)
	if err == nil {
		err = errors.New("closed by the primary")
	}
	return err
}

// serve accepts on every address until ctx ends and hands each connection
// to handle, in a goroutine of its own. When it returns, every connection
// it accepted is closed too, as when a process exits: the other brokers and
// the clients notice at once.
func serve(ctx context.Context, addrs []string, logf Logf, handle func(net.Conn), ready func()) error {
	var (
		lns   []net.Listener
		mu    sync.Mutex
		conns = map[net.Conn]bool{}
	)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			c.Close()
		}
		conns = nil
	}()
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			return err
		}
		lns = append(lns, ln)
	}
	ready()
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				if conns == nil {
					mu.Unlock()
					conn.Close()
					return
				}
				conns[conn] = true
				mu.Unlock()
				go func() {
					handle(conn)
					mu.Lock()
					delete(conns, conn)
					mu.Unlock()
				}()
			}
		}()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(a, b)
	go cp(b, a)
	<-done
	<-done
}

// vlistener is a node's listener in memory: Accept returns what the front
// door delivers, and Addr is the broker's advertised address, which kfake
// puts in metadata.
type vlistener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	addr  string
}

func newVListener(addr string) *vlistener {
	return &vlistener{conns: make(chan net.Conn), done: make(chan struct{}), addr: addr}
}

func (l *vlistener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *vlistener) deliver(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *vlistener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *vlistener) setAddr(a string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addr = a
}

func (l *vlistener) Addr() net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return advertised(l.addr)
}

type advertised string

func (advertised) Network() string  { return "tcp" }
func (a advertised) String() string { return string(a) }

// prefixConn gives back the bytes read to tell a client from a forward.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

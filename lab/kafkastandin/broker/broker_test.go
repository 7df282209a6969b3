package broker

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// node is one stand-in broker of a test cluster.
type node struct {
	id     int
	config string
	port   int
	cancel context.CancelFunc
	done   chan error
}

// kraftCluster writes the server.properties of n KRaft brokers on the
// loopback address and formats their storage, as the kafka role would.
func kraftCluster(t *testing.T, n int) []*node {
	t.Helper()
	dir := t.TempDir()
	var nodes []*node
	var voters []string
	ctrl := make([]int, n)
	for i := range n {
		ctrl[i] = freePort(t)
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, ctrl[i]))
	}
	for i := range n {
		nd := &node{id: i + 1, port: freePort(t), config: filepath.Join(dir, fmt.Sprintf("server-%d.properties", i+1))}
		props := fmt.Sprintf(`# as rendered by the kafka role, on loopback ports
process.roles=broker,controller
node.id=%d
controller.quorum.voters=%s
listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d
advertised.listeners=PLAINTEXT://127.0.0.1:%d
controller.listener.names=CONTROLLER
log.dirs=%s
num.partitions=3
auto.create.topics.enable=false
min.insync.replicas=2
`, nd.id, strings.Join(voters, ","), nd.port, ctrl[i], nd.port, filepath.Join(dir, fmt.Sprintf("data-%d", nd.id)))
		if err := os.WriteFile(nd.config, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := ReadProperties(nd.config)
		if err != nil {
			t.Fatal(err)
		}
		if err := Format(p, "MkU3OEVBNTcwNTJENDM2Qg", false, ioDiscard{}); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, nd)
	}
	return nodes
}

type ioDiscard struct{}

func (ioDiscard) Write(b []byte) (int, error) { return len(b), nil }

func (nd *node) start(t *testing.T) {
	t.Helper()
	props, err := ReadProperties(nd.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(props)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd.cancel, nd.done = cancel, make(chan error, 1)
	go func() {
		nd.done <- Run(ctx, cfg, func(f string, a ...any) { t.Logf("broker %d: "+f, append([]any{nd.id}, a...)...) })
	}()
	t.Cleanup(nd.stop)
}

func (nd *node) stop() {
	if nd.cancel == nil {
		return
	}
	nd.cancel()
	<-nd.done
	nd.cancel = nil
}

// metadata asks seed for the brokers and the topic's partition leaders.
func metadata(t *testing.T, cl *kgo.Client, topic string) (brokers []int32, leaders []int32) {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, nil
	}
	for _, b := range resp.Brokers {
		brokers = append(brokers, b.NodeID)
	}
	slices.Sort(brokers)
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode == 0 {
				leaders = append(leaders, p.Leader)
			}
		}
	}
	return brokers, leaders
}

func waitBrokers(t *testing.T, cl *kgo.Client, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := metadata(t, cl, "nginxlog")
		if fmt.Sprint(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("brokers %v, want %s", b, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Three stand-in brokers make one cluster: clients that know only a
// follower see the three brokers, create a topic with a leader per
// partition, and read back what they wrote with acks=all; the primary's
// restart keeps topic and records; a broker that stops leaves the
// metadata.
func TestThreeBrokersOneCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three brokers")
	}
	nodes := kraftCluster(t, 3)
	for _, nd := range nodes {
		nd.start(t)
	}
	seed := fmt.Sprintf("127.0.0.1:%d", nodes[1].port) // a follower
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitBrokers(t, cl, "[1 2 3]")

	create := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "nginxlog", 3, 3
	create.Topics = append(create.Topics, ct)
	create.TimeoutMillis = 5000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := create.RequestWith(ctx, cl)
	if err != nil || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic: %v %+v", err, resp)
	}
	if _, leaders := metadata(t, cl, "nginxlog"); len(leaders) != 3 {
		t.Fatalf("partition leaders %v", leaders)
	}
	for i := range 30 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "nginxlog", Value: fmt.Appendf(nil, "line %d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if n := consumeAll(t, seed); n != 30 {
		t.Fatalf("consumed %d of 30", n)
	}

	// The primary restarts: nothing lost, and the brokers come back.
	nodes[0].stop()
	nodes[0].start(t)
	waitBrokers(t, cl, "[1 2 3]")
	if n := consumeAll(t, seed); n != 30 {
		t.Fatalf("after the primary's restart consumed %d of 30", n)
	}

	// A follower stops: it leaves the metadata, its partitions move.
	nodes[2].stop()
	waitBrokers(t, cl, "[1 2]")
	if _, leaders := metadata(t, cl, "nginxlog"); len(leaders) != 3 || slices.Contains(leaders, 3) {
		t.Errorf("leaders after broker 3 left: %v", leaders)
	}
}

func consumeAll(t *testing.T, seed string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumeTopics("nginxlog"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	deadline := time.Now().Add(15 * time.Second)
	for n < 30 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(*kgo.Record) { n++ })
	}
	return n
}

func TestParseConfigZooKeeperMode(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "server.properties")
	os.WriteFile(p, []byte("broker.id=2\nlisteners=PLAINTEXT://0.0.0.0:9092\nadvertised.listeners=PLAINTEXT://kafka-2:9092\n"+
		"log.dirs = /var/lib/trafficlab/kafka\nzookeeper.connect=kafka-1:2181,kafka-2:2181\nmin.insync.replicas=2\nx.path=C:\\\\tmp\\\n  \\\\more\n"), 0o644)
	props, err := ReadProperties(p, "num.partitions=6")
	if err != nil {
		t.Fatal(err)
	}
	if props["x.path"] != `C:\tmp\more` {
		t.Errorf("x.path %q", props["x.path"])
	}
	c, err := ParseConfig(props)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID != 2 || c.Listen != "0.0.0.0:9092" || c.Advertised != "kafka-2:9092" || c.DataDir != "/var/lib/trafficlab/kafka" ||
		c.KRaft || c.ZooKeeper != "kafka-1:2181,kafka-2:2181" || c.NumPartitions != 6 || c.AutoCreate != true || c.BrokerConfigs["min.insync.replicas"] != "2" {
		t.Errorf("%+v", c)
	}
	if _, err := ParseConfig(map[string]string{"broker.id": "1", "log.dirs": "/x"}); err == nil {
		t.Error("accepted a configuration with neither KRaft nor ZooKeeper")
	}
}

// Format behaves as Kafka's: once per directory, --ignore-formatted to
// skip, KRaft only.
func TestFormat(t *testing.T) {
	dir := t.TempDir()
	props := map[string]string{"process.roles": "broker,controller", "node.id": "1", "controller.quorum.voters": "1@h:9093", "log.dirs": dir + "/a," + dir + "/b"}
	if err := Format(props, "MkU3OEVBNTcwNTJENDM2Qg", false, ioDiscard{}); err != nil {
		t.Fatal(err)
	}
	meta, _ := ReadMeta(dir + "/b")
	if meta["cluster.id"] != "MkU3OEVBNTcwNTJENDM2Qg" || meta["node.id"] != "1" {
		t.Errorf("meta %v", meta)
	}
	if err := Format(props, "MkU3OEVBNTcwNTJENDM2Qg", false, ioDiscard{}); err == nil || !strings.Contains(err.Error(), "already formatted") {
		t.Errorf("second format: %v", err)
	}
	if err := Format(props, "MkU3OEVBNTcwNTJENDM2Qg", true, ioDiscard{}); err != nil {
		t.Errorf("--ignore-formatted: %v", err)
	}
	if err := Format(map[string]string{"broker.id": "1", "log.dirs": dir}, "MkU3OEVBNTcwNTJENDM2Qg", false, ioDiscard{}); err == nil {
		t.Error("formatted a ZooKeeper-mode broker")
	}
	if err := Format(props, "not-an-id", true, ioDiscard{}); err == nil {
		t.Error("accepted a bad cluster id")
	}
}

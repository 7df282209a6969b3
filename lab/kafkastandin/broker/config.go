// Package broker is the lab's Kafka stand-in: a program that reads a Kafka
// broker's server.properties and serves the Kafka protocol with
// github.com/twmb/franz-go/pkg/kfake, so that provisioning, topics,
// producers and consumers run against it unchanged where Apache Kafka
// cannot be downloaded. It is for tests only; see the README it ships with.
//
// kfake is one process: it cannot spread a cluster over hosts. So one
// broker of the cluster, the primary, runs kfake with a node for every
// broker that is up; every other broker forwards the connections made to
// its own listener to the primary, tagged with its id, and the primary hands
// them to that broker's node. Clients see the configured brokers, ids and
// advertised names, and partitions led by each of them; but every record
// lives once, in the primary's log.dirs. Limits that follow: no
// replication (a broker down makes its partitions unavailable until it is
// back, a primary down stops the cluster), partition leaders move whenever
// a broker joins or leaves.
package broker

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
)

// ReadProperties reads a java.util.Properties file (the subset Kafka's
// configuration files use: key=value or key:value lines, # and !
// comments, backslash escapes and continuations) and applies overrides
// ("key=value", as kafka-server-start.sh's --override takes them).
func ReadProperties(path string, overrides ...string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props := map[string]string{}
	sc := bufio.NewScanner(f)
	var pending string
	for sc.Scan() {
		line := pending + strings.TrimLeft(sc.Text(), " \t\f")
		pending = ""
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if n := len(line) - len(strings.TrimRight(line, `\`)); n%2 == 1 {
			pending = line[:len(line)-1]
			continue
		}
		key, value := splitProperty(line)
		props[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, o := range overrides {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, fmt.Errorf("override %q: want key=value", o)
		}
		props[k] = v
	}
	return props, nil
}

func splitProperty(line string) (key, value string) {
	i := 0
	for i < len(line) {
		switch line[i] {
		case '\\':
			i += 2
			continue
		case '=', ':', ' ', '\t':
			key = unescape(line[:i])
			rest := strings.TrimLeft(line[i:], " \t")
			if rest != "" && (rest[0] == '=' || rest[0] == ':') {
				rest = strings.TrimLeft(rest[1:], " \t")
			}
			return key, unescape(rest)
		}
		i++
	}
	return unescape(line), ""
}

func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// Voter is one KRaft controller of controller.quorum.voters.
type Voter struct {
	ID   int32
	Addr string // host:port
}

// Config is what the stand-in takes from server.properties.
type Config struct {
	ID int32 // node.id or broker.id
	// Listen is the address of the first listener that is not a
	// controller's; ControllerListen the controller listener's (KRaft).
	Listen, ControllerListen string
	// Advertised is what clients are told to connect to, host:port.
	Advertised string
	// DataDir is the first of log.dirs: kfake's data directory.
	DataDir string
	// KRaft: process.roles is set; Voters are the controllers.
	KRaft  bool
	Voters []Voter
	// ZooKeeper is zookeeper.connect (ZooKeeper mode).
	ZooKeeper string

	NumPartitions int
	AutoCreate    bool
	// BrokerConfigs are the properties kfake understands, passed on.
	BrokerConfigs map[string]string
}

// kfakeConfigs are the broker properties kfake knows what to do with.
var kfakeConfigs = []string{"compression.type", "default.replication.factor", "min.insync.replicas", "log.retention.bytes", "log.retention.ms", "message.max.bytes"}

// ParseConfig reads the stand-in's configuration from a broker's properties.
func ParseConfig(props map[string]string) (Config, error) {
	var c Config
	idKey := "broker.id"
	if props["process.roles"] != "" {
		c.KRaft, idKey = true, "node.id"
	}
	id, err := strconv.ParseInt(props[idKey], 10, 32)
	if err != nil || id < 0 || id > 100000 {
		return c, fmt.Errorf("%s %q: want a number from 0 to 100000", idKey, props[idKey])
	}
	c.ID = int32(id)

	controllers := map[string]bool{}
	for _, n := range strings.Split(props["controller.listener.names"], ",") {
		controllers[strings.TrimSpace(n)] = true
	}
	for _, l := range splitList(props["listeners"]) {
		name, addr, err := parseListener(l)
		if err != nil {
			return c, fmt.Errorf("listeners: %w", err)
		}
		switch {
		case controllers[name] && c.ControllerListen == "":
			c.ControllerListen = addr
		case !controllers[name] && c.Listen == "":
			c.Listen = addr
		}
	}
	if c.Listen == "" {
		c.Listen = ":9092"
	}
	for _, l := range splitList(props["advertised.listeners"]) {
		name, addr, err := parseListener(l)
		if err != nil {
			return c, fmt.Errorf("advertised.listeners: %w", err)
		}
		if !controllers[name] {
			c.Advertised = addr
			break
		}
	}
	if c.Advertised == "" {
		host, port, _ := net.SplitHostPort(c.Listen)
		if host == "" || host == "0.0.0.0" || host == "::" {
			if host, err = os.Hostname(); err != nil {
				return c, err
			}
		}
		c.Advertised = net.JoinHostPort(host, port)
	}

	dirs := splitList(props["log.dirs"])
	if len(dirs) == 0 {
		dirs = splitList(props["log.dir"])
	}
	if len(dirs) == 0 {
		return c, fmt.Errorf("log.dirs is not set")
	}
	c.DataDir = dirs[0]

	if c.KRaft {
		for _, v := range splitList(props["controller.quorum.voters"]) {
			idText, addr, ok := strings.Cut(v, "@")
			vid, err := strconv.ParseInt(idText, 10, 32)
			if !ok || err != nil {
				return c, fmt.Errorf("controller.quorum.voters: %q is not id@host:port", v)
			}
			c.Voters = append(c.Voters, Voter{int32(vid), addr})
		}
		if len(c.Voters) == 0 {
			return c, fmt.Errorf("KRaft mode needs controller.quorum.voters (the stand-in takes its primary from it)")
		}
		sort.Slice(c.Voters, func(i, j int) bool { return c.Voters[i].ID < c.Voters[j].ID })
	} else if c.ZooKeeper = props["zookeeper.connect"]; c.ZooKeeper == "" {
		return c, fmt.Errorf("neither process.roles (KRaft) nor zookeeper.connect is set")
	}

	c.NumPartitions = 1
	if n, err := strconv.Atoi(props["num.partitions"]); err == nil && n > 0 {
		c.NumPartitions = n
	}
	c.AutoCreate = props["auto.create.topics.enable"] != "false"
	c.BrokerConfigs = map[string]string{}
	for _, k := range kfakeConfigs {
		if v, ok := props[k]; ok {
			c.BrokerConfigs[k] = v
		}
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseListener splits NAME://host:port.
func parseListener(l string) (name, addr string, err error) {
	name, addr, ok := strings.Cut(l, "://")
	if !ok {
		return "", "", fmt.Errorf("%q is not NAME://host:port", l)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return "", "", fmt.Errorf("%q: %w", l, err)
	}
	return name, addr, nil
}

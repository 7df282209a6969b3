// Package health looks at a running cluster and says, component by
// component, whether it works: ZooKeeper's modes, the brokers the cluster
// reports and its controller, the log topic's partitions with their
// leader and in-sync replicas. `provision status` shows these rows; each
// role's checks are read-only.
package health

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// Row is one component's state.
type Row struct {
	Component string `json:"component"`
	Host      string `json:"host,omitempty"`
	State     string `json:"state"`
	OK        bool   `json:"ok"`
	Detail    string `json:"detail,omitempty"`
}

// Rows are a report.
type Rows []Row

// On keeps the rows of the hosts named and those of no single host (the
// VIP, the data path): what --limit shows.
func (rs Rows) On(hosts []string) Rows {
	var out Rows
	for _, r := range rs {
		if r.Host == "" || slices.Contains(hosts, r.Host) {
			out = append(out, r)
		}
	}
	return out
}

// Failed returns the rows that are not OK.
func (rs Rows) Failed() Rows {
	var out Rows
	for _, r := range rs {
		if !r.OK {
			out = append(out, r)
		}
	}
	return out
}

// Print writes rows as a table.
func (rs Rows) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tHOST\tSTATE\tOK\tDETAIL")
	for _, r := range rs {
		ok := "ok"
		if !r.OK {
			ok = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Component, r.Host, r.State, ok, r.Detail)
	}
	tw.Flush()
}

// JSON writes rows as JSON.
func (rs Rows) JSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

// ZooKeeper asks every server of the ensemble its mode (`srvr`, on the
// host itself): a working ensemble has one leader and the rest followers.
func ZooKeeper(ctx context.Context, inv *inventory.Inventory, c cluster.Connector) Rows {
	hosts := inv.HostsWith(inventory.RoleZooKeeper)
	rows := make(Rows, len(hosts))
	modes := make([]string, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[i] = Row{Component: "zookeeper", Host: h.Name}
			cl, err := c.Client(ctx, h.Name)
			if err != nil {
				rows[i].State, rows[i].Detail = "unreachable", err.Error()
				return
			}
			mode, err := zookeeper.Mode(ctx, cl)
			if err != nil {
				rows[i].State, rows[i].Detail = "not serving", err.Error()
				return
			}
			rows[i].State, rows[i].OK = mode, true
			modes[i] = mode
		}()
	}
	wg.Wait()
	if len(hosts) > 0 {
		e := zookeeper.ReadEnsemble(modes, len(hosts))
		q := Row{Component: "zookeeper quorum", State: fmt.Sprintf("%d leader, %d serving of %d", e.Leaders, e.Serving, len(hosts))}
		q.OK = e.Quorum
		if !q.OK {
			q.Detail = "a quorum needs one leader and a majority serving"
		}
		rows = append(rows, q)
	}
	return rows
}

// Kafka reads the cluster's metadata over the Kafka protocol: a row per
// broker of the inventory (registered or not), the controller, and a row
// per partition of the log topic with its leader and in-sync replicas.
// secrets give provision's TLS client certificate when the cluster has TLS.
func Kafka(ctx context.Context, inv *inventory.Inventory, secrets role.Secrets, dial cluster.DialFunc) Rows {
	hosts := inv.HostsWith(inventory.RoleKafka)
	if len(hosts) == 0 {
		return nil
	}
	a, err := kafka.Admin(inv, secrets, kafkaadmin.DialFunc(dial))
	if err != nil {
		return Rows{{Component: "kafka", State: "unknown", Detail: err.Error()}}
	}
	defer a.Close()
	md, err := a.Metadata(ctx)
	if err != nil {
		return Rows{{Component: "kafka", State: "unreachable", Detail: err.Error()}}
	}
	var rows Rows
	for _, h := range hosts {
		id := kafka.ID(inv, h)
		r := Row{Component: "kafka broker " + strconv.Itoa(id), Host: h.Name}
		if b, ok := md.Broker(id); ok {
			r.State, r.OK, r.Detail = "registered", true, b.String()
		} else {
			r.State, r.Detail = "missing", "not in the cluster's metadata"
		}
		rows = append(rows, r)
	}
	rows = append(rows, controllerRows(ctx, inv, a)...)

	spec := kafkaadmin.SpecFrom(inv)
	t, ok := md.Topics[spec.Name]
	if !ok {
		return append(rows, Row{Component: "topic " + spec.Name, State: "missing", Detail: "run provision up to create it"})
	}
	tr := Row{Component: "topic " + spec.Name, State: fmt.Sprintf("%d partitions, replication %d", len(t.Partitions), t.ReplicationFactor()), OK: true}
	if len(t.Partitions) < spec.Partitions {
		tr.OK, tr.Detail = false, fmt.Sprintf("the inventory asks for %d partitions", spec.Partitions)
	}
	rows = append(rows, tr)
	for _, p := range t.Partitions {
		rows = append(rows, partitionRow(spec, p))
	}
	return rows
}

// partitionRow is fine when the partition has a leader and every replica
// in sync.
func partitionRow(spec kafkaadmin.TopicSpec, p kafkaadmin.Partition) Row {
	r := Row{Component: fmt.Sprintf("topic %s-%d", spec.Name, p.ID), OK: p.Leader >= 0 && !p.UnderReplicated(),
		State:  fmt.Sprintf("leader %s", leaderName(p.Leader)),
		Detail: "replicas " + ints(p.Replicas) + " isr " + ints(p.ISR)}
	switch {
	case p.Leader < 0:
		r.Detail += "; no leader: the partition is offline"
	case p.UnderReplicated():
		r.Detail += fmt.Sprintf("; under-replicated: %s not in sync", ints(outOfSync(p)))
		if len(p.ISR) < spec.MinInsync {
			r.Detail += fmt.Sprintf(", fewer than min.insync.replicas=%d: acks=all writes are refused", spec.MinInsync)
		}
	}
	return r
}

// controllerRows say who runs the cluster's metadata: ZooKeeper mode, the
// controller every broker names (exactly one, registered); KRaft, the
// quorum's active controller and how far each voter is behind it.
func controllerRows(ctx context.Context, inv *inventory.Inventory, a *kafkaadmin.Admin) Rows {
	if inv.Kafka.SeparateControllers() {
		// Asked directly: brokers in migration mode do not forward.
		return quorumRows(ctx, inv, a.At(kafka.ControllerAddrs(inv)))
	}
	if inv.Kafka.Mode == inventory.KafkaKRaft {
		return quorumRows(ctx, inv, a)
	}
	return Rows{controllerRow(inv, a.ControllerViews(ctx))}
}

// controllerRow judges what each broker (bootstrap address) says the
// controller is.
func controllerRow(inv *inventory.Inventory, views map[string]int) Row {
	row := Row{Component: "kafka controller", State: "unknown"}
	ids := map[int][]string{}
	for addr, id := range views {
		ids[id] = append(ids[id], hostOf(inv, addrHost(addr)))
	}
	switch {
	case len(views) == 0:
		row.Detail = "no broker answered"
	case len(ids) > 1:
		row.State = fmt.Sprintf("%d different controllers", len(ids))
		var parts []string
		for _, id := range slices.Sorted(maps.Keys(ids)) {
			slices.Sort(ids[id])
			parts = append(parts, fmt.Sprintf("%s say %s", strings.Join(ids[id], ","), leaderName(id)))
		}
		row.Detail = "the brokers disagree: " + strings.Join(parts, "; ")
	default:
		for id := range ids {
			if id < 0 {
				row.State, row.Detail = "none", "no broker knows a controller"
				break
			}
			row.State, row.OK = "broker "+strconv.Itoa(id), true
			row.Host = hostByID(inv, id)
			row.Detail = fmt.Sprintf("named by all %d brokers that answered", len(views))
		}
	}
	return row
}

// quorumRows: the KRaft quorum must have one active controller among the
// voters the inventory configures.
func quorumRows(ctx context.Context, inv *inventory.Inventory, a *kafkaadmin.Admin) Rows {
	q, err := a.Quorum(ctx)
	if err != nil {
		return Rows{{Component: "kafka controller quorum", State: "unknown", Detail: err.Error()}}
	}
	return Rows{quorumRow(inv, q)}
}

// quorumRow judges the quorum the active controller describes.
func quorumRow(inv *inventory.Inventory, q *kafkaadmin.Quorum) Row {
	row := Row{Component: "kafka controller quorum", State: "unknown"}
	want := len(inv.HostsWith(inventory.RoleKafka))
	var lags []string
	leaderVotes := false
	for _, v := range q.Voters {
		lags = append(lags, fmt.Sprintf("%d:%d", v.ID, q.Lag(v)))
		leaderVotes = leaderVotes || v.ID == q.Leader
	}
	row.State = fmt.Sprintf("leader %s, epoch %d, %d voters", leaderName(q.Leader), q.Epoch, len(q.Voters))
	row.Detail = "lag per voter " + strings.Join(lags, " ")
	switch {
	case q.Leader < 0 || !leaderVotes:
		row.Detail = "no active controller; " + row.Detail
	case len(q.Voters) != want:
		row.Detail = fmt.Sprintf("the inventory has %d controllers; ", want) + row.Detail
	default:
		row.OK = true
		h, _ := kafka.ControllerHostOf(inv, q.Leader)
		row.Host = h.Name
	}
	return row
}

// outOfSync are the replicas missing from the ISR.
func outOfSync(p kafkaadmin.Partition) []int {
	var out []int
	for _, r := range p.Replicas {
		if !slices.Contains(p.ISR, r) {
			out = append(out, r)
		}
	}
	return out
}

// hostByID names the inventory host of a broker (node) id, "" for none.
func hostByID(inv *inventory.Inventory, id int) string {
	h, _ := kafka.HostOf(inv, id)
	return h.Name
}

func addrHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// ExplainKafka prints, for readers new to Kafka, what the partition rows
// say, in English and Chinese (the seed's language).
func ExplainKafka(w io.Writer, inv *inventory.Inventory) {
	spec := kafkaadmin.SpecFrom(inv)
	fmt.Fprintf(w, `How to read the topic rows (如何阅读分区行):
  leader 领导者   the broker that takes the partition's writes and serves its reads
  replicas 副本   the brokers that keep a copy of the partition (replication %[1]d)
  isr 同步副本    the replicas caught up with the leader; a broker that stops leaves it, and is back in it once it has caught up
  acks=all writes wait for every replica in the ISR; with min.insync.replicas=%[2]d they are refused while fewer than %[2]d are in it.
  acks=all 的写入要等 ISR 中所有副本确认;同步副本少于 %[2]d 个时写入被拒绝。`+"\n", spec.Replication, spec.MinInsync)
	if inv.Kafka.Mode == inventory.KafkaKRaft {
		fmt.Fprintln(w, "  controller quorum 控制器仲裁: the KRaft controllers elect one active controller, which keeps the cluster's metadata (who leads, who is in sync).")
	} else {
		fmt.Fprintln(w, "  controller 控制器: one broker, elected through ZooKeeper, decides who leads each partition and who is in sync.")
	}
}

func leaderName(id int) string {
	if id < 0 {
		return "none"
	}
	return strconv.Itoa(id)
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// hostOf names the inventory host an advertised host name belongs to.
func hostOf(inv *inventory.Inventory, advertised string) string {
	if via, _, ok := cluster.Resolve(inv, advertised); ok {
		return via
	}
	return advertised
}

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
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/kafkaadmin"
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
func Kafka(ctx context.Context, inv *inventory.Inventory, dial cluster.DialFunc) Rows {
	hosts := inv.HostsWith(inventory.RoleKafka)
	if len(hosts) == 0 {
		return nil
	}
	a := kafkaadmin.New(inv, kafkaadmin.DialFunc(dial))
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
	ctrl := Row{Component: "kafka controller", State: "unknown"}
	if b, ok := md.Broker(md.Controller); ok {
		ctrl.State, ctrl.OK, ctrl.Host = "broker "+strconv.Itoa(b.ID), true, hostOf(inv, b.Host)
	}
	rows = append(rows, ctrl)

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
		r := Row{Component: fmt.Sprintf("topic %s-%d", spec.Name, p.ID), OK: p.Leader >= 0,
			State:  fmt.Sprintf("leader %s", leaderName(p.Leader)),
			Detail: "replicas " + ints(p.Replicas) + " isr " + ints(p.ISR)}
		if p.Leader < 0 {
			r.Detail += "; no leader: the partition is offline"
		}
		rows = append(rows, r)
	}
	return rows
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

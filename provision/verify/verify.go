// Package verify proves a running cluster works end to end: every
// component's health (package health), then the data path itself. K probe
// requests with unique ids go through the VIP, and each must appear in
// MySQL's probe table — so it went through the load balancer, a web
// server, its access log, filebeat, Kafka and the consumer — within T.
package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/store"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/role"
	mysqlrole "github.com/trafficlab/trafficlab/provision/role/mysql"
)

// Options say how hard verify looks.
type Options struct {
	Probes int           // probe requests through the VIP
	Within time.Duration // how long each may take to reach MySQL
}

// Defaults are verify's default options.
var Defaults = Options{Probes: 20, Within: 30 * time.Second}

// Probe is one probe request's journey.
type Probe struct {
	ID      string        `json:"id"`
	Status  int           `json:"status"`
	Backend string        `json:"backend,omitempty"`
	Latency time.Duration `json:"latency_ns,omitempty"` // sent → committed in MySQL
	Err     string        `json:"error,omitempty"`
}

// Report is what verify found.
type Report struct {
	Rows   health.Rows   `json:"components"`
	Probes []Probe       `json:"probes,omitempty"`
	P50    time.Duration `json:"p50_ns,omitempty"`
	P95    time.Duration `json:"p95_ns,omitempty"`
	OK     bool          `json:"ok"`
}

// Failed returns the failing rows, the data path's included.
func (r *Report) Failed() health.Rows { return r.Rows.Failed() }

// Env is the cluster verify looks at.
type Env struct {
	Inventory *inventory.Inventory
	Cluster   *cluster.Cluster
	Secrets   role.Secrets
	// Components are the role checks beyond the built-in ones, from the
	// roles that have them (filebeat, consumer, dashboard units).
	Components []func(ctx context.Context, env *Env) health.Rows
}

// Run checks every component, then sends the probes.
func Run(ctx context.Context, env *Env, o Options) *Report {
	inv, c := env.Inventory, env.Cluster
	rep := &Report{}
	rep.Rows = append(rep.Rows, health.Chrony(ctx, inv, c)...)
	rep.Rows = append(rep.Rows, health.ZooKeeper(ctx, inv, c)...)
	rep.Rows = append(rep.Rows, health.Kafka(ctx, inv, env.Secrets, c.Dial)...)
	rep.Rows = append(rep.Rows, health.Web(ctx, inv, c, c.Dial)...)
	rep.Rows = append(rep.Rows, health.LB(ctx, inv, c, c.Dial)...)
	for _, check := range env.Components {
		rep.Rows = append(rep.Rows, check(ctx, env)...)
	}
	st, row := OpenStore(ctx, env)
	rep.Rows = append(rep.Rows, row)
	if st != nil {
		defer st.Close()
		if o.Probes > 0 && len(inv.HostsWith(inventory.RoleLB)) > 0 {
			rep.Probes = sendProbes(ctx, env, st, o)
			rep.Rows = append(rep.Rows, rep.summarize(o))
		}
	}
	rep.OK = len(rep.Rows.Failed()) == 0
	return rep
}

// OpenStore logs into MySQL as the consumer does (see DialStore), as a
// row of the report.
func OpenStore(ctx context.Context, env *Env) (*store.Store, health.Row) {
	inv := env.Inventory
	row := health.Row{Component: "mysql"}
	if dbs := inv.HostsWith(inventory.RoleMySQL); len(dbs) > 0 {
		row.Host = dbs[0].Name
	}
	st, from, err := DialStore(ctx, inv, env.Cluster, env.Secrets)
	if err != nil {
		row.State, row.Detail = "not answering", err.Error()
		return nil, row
	}
	row.State, row.OK, row.Detail = "reachable", true, fmt.Sprintf("database %s as %s from %s", inv.MySQL.Database, inv.MySQL.User, from)
	return st, row
}

// DialStore logs into the cluster's MySQL as the consumer does, from a
// consumer host — the user is allowed only from those — through that
// host's SSH connection; without a consumer host, as the dashboard does
// (read-only) from a dashboard host. It returns the host it went through.
func DialStore(ctx context.Context, inv *inventory.Inventory, conn cluster.Connector, secrets role.Secrets) (*store.Store, string, error) {
	dbs := inv.HostsWith(inventory.RoleMySQL)
	if len(dbs) == 0 {
		return nil, "", fmt.Errorf("no host has the mysql role")
	}
	db := dbs[0]
	from := db.Name
	user, password := inv.MySQL.User, secrets.MySQLPassword
	if cs := inv.HostsWith(inventory.RoleConsumer); len(cs) > 0 {
		from = cs[0].Name
	} else if ds := inv.HostsWith(inventory.RoleDashboard); len(ds) > 0 {
		from, user, password = ds[0].Name, mysqlrole.DashboardUser(inv), secrets.MySQLDashboardPassword
	}
	dial := func(ctx context.Context, _, addr string) (net.Conn, error) {
		return cluster.DialOn(ctx, conn, from, addr)
	}
	st, err := store.OpenDial(config.MySQL{
		Host: db.Address, Port: 3306, User: user, Password: password, Database: inv.MySQL.Database,
	}, dial)
	if err != nil {
		return nil, from, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		st.Close()
		return nil, from, fmt.Errorf("as %s from %s: %w", user, from, err)
	}
	return st, from, nil
}

// sendProbes sends o.Probes requests through the VIP, 100 ms apart, and
// waits for each to be committed in MySQL.
func sendProbes(ctx context.Context, env *Env, st *store.Store, o Options) []Probe {
	inv := env.Inventory
	client := health.HTTPClient(env.Cluster.Dial, 10*time.Second)
	run := newID()
	probes := make([]Probe, o.Probes)
	var wg sync.WaitGroup
	for i := range probes {
		p := &probes[i]
		p.ID = fmt.Sprintf("v%s-%d", run, i)
		sent := time.Now()
		// Signed: the consumer records only probes made with the
		// cluster's key, so visitors cannot create rows.
		code, _, err := health.Get(ctx, client, inv.LB.VIPURL(agg.ProbePrefix+agg.SignProbe([]byte(env.Secrets.ProbeKey), p.ID)), inv.Cluster.Domain)
		p.Status = code
		if err != nil || code != http.StatusOK {
			p.Err = fmt.Sprintf("GET through the VIP: HTTP %d %v", code, err)
		} else {
			wg.Add(1)
			go func() {
				defer wg.Done()
				waitProbe(ctx, st, p, sent, o.Within)
			}()
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()
	return probes
}

func waitProbe(ctx context.Context, st *store.Store, p *Probe, sent time.Time, within time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		row, ok, err := st.Probe(ctx, p.ID)
		if err == nil && ok {
			p.Latency, p.Backend = time.Since(sent), row.Backend
			return
		}
		select {
		case <-ctx.Done():
			p.Err = fmt.Sprintf("not in the probe table after %v", within)
			if err != nil {
				p.Err += fmt.Sprintf(" (%v)", err)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// summarize adds the data path's row: every probe arrived, and how fast.
func (r *Report) summarize(o Options) health.Row {
	row := health.Row{Component: "data path", State: ""}
	var lat []time.Duration
	var failed []string
	backends := map[string]int{}
	for _, p := range r.Probes {
		if p.Err != "" {
			failed = append(failed, p.ID+": "+p.Err)
			continue
		}
		lat = append(lat, p.Latency)
		backends[p.Backend]++
	}
	row.State = fmt.Sprintf("%d/%d probes in MySQL", len(lat), len(r.Probes))
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P95 = quantile(lat, 0.5), quantile(lat, 0.95)
		row.Detail = fmt.Sprintf("latency p50 %.2fs p95 %.2fs; backends %v", r.P50.Seconds(), r.P95.Seconds(), backends)
	}
	row.OK = len(failed) == 0 && len(lat) == o.Probes
	if len(failed) > 0 {
		row.Detail += "; first failure: " + failed[0]
	}
	return row
}

// quantile of sorted xs, nearest rank.
func quantile(xs []time.Duration, q float64) time.Duration {
	i := int(float64(len(xs))*q+0.999999) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

func newID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

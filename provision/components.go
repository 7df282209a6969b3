package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/dashboard"
	"github.com/trafficlab/trafficlab/provision/role/filebeat"
	"github.com/trafficlab/trafficlab/provision/verify"
)

// components are verify's checks of the roles beyond the built-in ones.
var components = []func(ctx context.Context, env *verify.Env) health.Rows{
	filebeatHealth,
	consumerHealth,
	dashboardHealth,
}

// filebeatHealth: the unit runs, and its own counters (/stats on the
// host's loopback) show what it shipped: events Kafka acknowledged, and
// those that failed or wait. A filebeat that runs but cannot ship shows
// here before the probes time out.
func filebeatHealth(ctx context.Context, env *verify.Env) health.Rows {
	rows := health.Unit(ctx, env.Inventory, env.Cluster, inventory.RoleFilebeat, "filebeat", filebeat.Unit)
	for i, r := range rows {
		if !r.OK {
			continue
		}
		s, err := filebeatStats(ctx, env.Cluster, r.Host)
		if err != nil {
			rows[i].OK, rows[i].Detail = false, "stats: "+err.Error()
			continue
		}
		o := s.Libbeat.Output.Events
		rows[i].Detail = fmt.Sprintf("%d events acknowledged by Kafka, %d failed, %d in flight", o.Acked, o.Failed, o.Active)
	}
	return rows
}

// filebeatStats reads filebeat's /stats on host, bounded.
func filebeatStats(ctx context.Context, c *cluster.Cluster, host string) (*beatStats, error) {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.DialOn(ctx, host, filebeat.StatsAddr)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+filebeat.StatsAddr+"/stats", nil)
	if err != nil {
		return nil, err
	}
	res, err := health.HTTPClient(dial, 10*time.Second).Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /stats: HTTP %d", res.StatusCode)
	}
	var s beatStats
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&s); err != nil {
		return nil, fmt.Errorf("GET /stats: %w", err)
	}
	return &s, nil
}

// beatStats is the part of filebeat's /stats verify shows.
type beatStats struct {
	Libbeat struct {
		Output struct {
			Events struct {
				Acked  int64 `json:"acked"`
				Failed int64 `json:"failed"`
				Active int64 `json:"active"`
			} `json:"events"`
		} `json:"output"`
	} `json:"libbeat"`
}

// lagLimit is the consumer lag verify accepts: a few seconds of traffic.
const lagLimit = 10000

// consumerHealth: the unit runs, and its metrics show the lag.
func consumerHealth(ctx context.Context, env *verify.Env) health.Rows {
	rows := health.Unit(ctx, env.Inventory, env.Cluster, inventory.RoleConsumer, "consumer", consumer.Service.Unit())
	for i, r := range rows {
		if !r.OK {
			continue
		}
		m, err := health.Metrics(ctx, env.Cluster, r.Host, consumer.MetricsListen, consumer.MetricLag,
			consumer.MetricAssigned, consumer.MetricGeneration)
		switch {
		case err != nil:
			rows[i].OK, rows[i].Detail = false, "metrics: "+err.Error()
		default:
			lag, _ := m.Sum(consumer.MetricLag)
			// The group shares the partitions among the consumers.
			rows[i].Detail = consumerDetail(m)
			if lag > lagLimit {
				rows[i].OK = false
				rows[i].Detail += fmt.Sprintf(" (more than %d: is MySQL slow, or the consumer stuck?)", lagLimit)
			}
		}
	}
	return rows
}

// consumerDetail says which partitions of the group's current generation
// the consumer holds, and its lag.
func consumerDetail(m health.Samples) string {
	gen, _ := m.Sum(consumer.MetricGeneration)
	n, _ := m.Sum(consumer.MetricAssigned)
	lag, _ := m.Sum(consumer.MetricLag)
	parts := byNumber(m.Labels(consumer.MetricLag, "partition"))
	held := "no partitions"
	switch {
	case len(parts) > 0 && len(parts) == int(n):
		held = "partitions " + strings.Join(parts, ",")
	case n > 0:
		// Assigned, but not every partition's worker has fetched yet.
		held = fmt.Sprintf("%.0f partitions", n)
	}
	return fmt.Sprintf("%s (group generation %.0f), lag %.0f messages", held, gen, lag)
}

// byNumber sorts partition numbers as numbers.
func byNumber(parts []string) []string {
	slices.SortFunc(parts, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	return parts
}

// dashboardHealth: every dashboard host answers /healthz on its port.
func dashboardHealth(ctx context.Context, env *verify.Env) health.Rows {
	inv := env.Inventory
	client := health.HTTPClient(env.Cluster.Dial, 10*time.Second)
	var rows health.Rows
	for _, h := range inv.HostsWith(inventory.RoleDashboard) {
		r := health.Row{Component: "dashboard", Host: h.Name}
		url := "http://" + net.JoinHostPort(h.Address, strconv.Itoa(inv.Dashboard.Port)) + "/healthz"
		code, _, err := health.Get(ctx, client, url, "")
		switch {
		case err != nil:
			r.State, r.Detail = "not answering", err.Error()
		case code != http.StatusOK:
			r.State, r.Detail = "HTTP "+strconv.Itoa(code), url
		default:
			r.State, r.OK, r.Detail = "HTTP 200", true, dashboard.URL(inv)
		}
		rows = append(rows, r)
	}
	return rows
}

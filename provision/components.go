package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/dashboard"
	"github.com/trafficlab/trafficlab/provision/verify"
)

// components are verify's checks of the roles beyond the built-in ones.
var components = []func(ctx context.Context, env *verify.Env) health.Rows{
	consumerHealth,
	dashboardHealth,
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
		m, err := health.Metrics(ctx, env.Cluster, r.Host, consumer.MetricsListen, "trafficlab_consumer_lag_messages")
		switch {
		case err != nil:
			rows[i].OK, rows[i].Detail = false, "metrics: "+err.Error()
		default:
			lag := m["trafficlab_consumer_lag_messages"]
			rows[i].Detail = fmt.Sprintf("lag %.0f messages", lag)
			if lag > lagLimit {
				rows[i].OK = false
				rows[i].Detail += fmt.Sprintf(" (more than %d: is MySQL slow, or the consumer stuck?)", lagLimit)
			}
		}
	}
	return rows
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

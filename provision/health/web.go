package health

import (
	"context"
	"fmt"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/remote"
)

// HTTPClient returns an HTTP client whose connections go through dial (the
// cluster's SSH tunnels), so checks reach hosts the control machine cannot
// route to.
func HTTPClient(dial cluster.DialFunc, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true},
		// A redirect would be a misconfiguration to report, not follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Get fetches url with the Host header set to host; it returns the status
// and up to 64 KiB of the body.
func Get(ctx context.Context, client *http.Client, url, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	res, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, string(b), err
}

// Web fetches the site from every web server directly: each must answer
// 200 with a page that names it. It asks from the first load balancer,
// the web servers' real client, so that a firewall closed to it shows;
// without load balancers, through dial.
func Web(ctx context.Context, inv *inventory.Inventory, conn cluster.Connector, dial cluster.DialFunc) Rows {
	if lbs := inv.HostsWith(inventory.RoleLB); len(lbs) > 0 && conn != nil {
		from := lbs[0].Name
		dial = func(ctx context.Context, _, addr string) (net.Conn, error) {
			return cluster.DialOn(ctx, conn, from, addr)
		}
	}
	client := HTTPClient(dial, 10*time.Second)
	return each(inv.HostsWith(inventory.RoleWeb), func(h inventory.Host) Row {
		r := Row{Component: "web", Host: h.Name}
		url := "http://" + net.JoinHostPort(h.Address, strconv.Itoa(inv.Web.Port)) + "/"
		code, body, err := Get(ctx, client, url, inv.Cluster.Domain)
		switch {
		case err != nil:
			r.State, r.Detail = "not answering", err.Error()
		case code != http.StatusOK:
			r.State, r.Detail = "HTTP "+strconv.Itoa(code), url
		case !strings.Contains(body, h.Name):
			r.State, r.Detail = "wrong page", "the page does not name "+h.Name
		default:
			r.State, r.OK, r.Detail = "HTTP 200", true, url
		}
		return r
	})
}

// LB fetches the site from every load balancer, and finds which one holds
// the VIP: exactly one must.
func LB(ctx context.Context, inv *inventory.Inventory, c cluster.Connector, dial cluster.DialFunc) Rows {
	lbs := inv.HostsWith(inventory.RoleLB)
	if len(lbs) == 0 {
		return nil
	}
	client := HTTPClient(dial, 10*time.Second)
	vip := inv.LB.VIPPrefix().Addr()
	var mu sync.Mutex
	var holders []string
	rows := each(lbs, func(h inventory.Host) Row {
		r := Row{Component: "lb", Host: h.Name}
		url := inv.LB.SiteURL(h.Address, "/")
		code, _, err := Get(ctx, client, url, inv.Cluster.Domain)
		switch {
		case err != nil:
			r.State, r.Detail = "not answering", err.Error()
		case code != http.StatusOK:
			r.State, r.Detail = "HTTP "+strconv.Itoa(code), url
		default:
			r.State, r.OK, r.Detail = "HTTP 200", true, url
		}
		holds, err := HoldsAddr(ctx, c, h.Name, vip)
		if err != nil {
			r.OK, r.Detail = false, r.Detail+"; "+err.Error()
		} else if holds {
			mu.Lock()
			holders = append(holders, h.Name)
			mu.Unlock()
			r.State += ", holds the VIP"
		}
		return r
	})
	v := Row{Component: "vip " + vip.String(), State: fmt.Sprintf("held by %d", len(holders)), Detail: strings.Join(holders, ", ")}
	v.OK = len(holders) == 1
	if len(holders) == 0 {
		v.Detail = "no load balancer holds it: is keepalived running on any (and nginx, which it tracks)?"
	} else if len(holders) > 1 {
		v.Detail = "split brain: " + v.Detail + " (VRRP between them blocked?)"
	}
	rows = append(rows, v)
	// Through the VIP: what clients use.
	site := Row{Component: "site", Host: inv.Cluster.Domain}
	url := inv.LB.VIPURL("/")
	code, _, err := Get(ctx, client, url, inv.Cluster.Domain)
	switch {
	case err != nil:
		site.State, site.Detail = "not answering", err.Error()
	case code != http.StatusOK:
		site.State, site.Detail = "HTTP "+strconv.Itoa(code), url
	default:
		site.State, site.OK, site.Detail = "HTTP 200", true, url
	}
	return append(rows, site)
}

// HoldsAddr reports whether host has addr on one of its interfaces.
func HoldsAddr(ctx context.Context, c cluster.Connector, host string, addr netip.Addr) (bool, error) {
	cl, err := c.Client(ctx, host)
	if err != nil {
		return false, err
	}
	res, err := cl.Run(ctx, "ip -o addr show", remote.WithTimeout(10*time.Second))
	if err != nil {
		return false, err
	}
	return HasAddr(string(res.Stdout), addr), nil
}

// HasAddr reads `ip -o addr show`.
func HasAddr(ipOut string, addr netip.Addr) bool {
	for _, line := range strings.Split(ipOut, "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" || f[i] == "inet6" {
				if p, err := netip.ParsePrefix(f[i+1]); err == nil && p.Addr() == addr {
					return true
				}
			}
		}
	}
	return false
}

// Unit reports whether a systemd unit is active on every host with role.
func Unit(ctx context.Context, inv *inventory.Inventory, c cluster.Connector, ro inventory.Role, component, unit string) Rows {
	return each(inv.HostsWith(ro), func(h inventory.Host) Row {
		r := Row{Component: component, Host: h.Name}
		cl, err := c.Client(ctx, h.Name)
		if err != nil {
			r.State, r.Detail = "unreachable", err.Error()
			return r
		}
		res, err := cl.Run(ctx, "systemctl is-active "+remote.ShellQuote(unit), remote.WithTimeout(10*time.Second))
		state := strings.TrimSpace(string(res.Stdout))
		if err != nil {
			if state == "" {
				state = "unknown"
			}
			r.State, r.Detail = state, unit+" is not running (journalctl -u "+unit+")"
			return r
		}
		r.State, r.OK = state, true
		return r
	})
}

// Metrics reads a Prometheus text endpoint on host's loopback (through its
// SSH connection): the samples of the metrics named.
func Metrics(ctx context.Context, c cluster.Connector, host, addr string, names ...string) (Samples, error) {
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return cluster.DialOn(ctx, c, host, addr) }
	client := HTTPClient(dial, 10*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", res.StatusCode)
	}
	return ParseMetrics(io.LimitReader(res.Body, metricsLimit), names...)
}

// metricsLimit bounds what Metrics reads: a consumer's page is ~10 KB.
const metricsLimit = 4 << 20

// Sample is one sample of a metric: its labels and value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Samples are the samples of metrics by name.
type Samples map[string][]Sample

// Sum adds the samples of the named metric; ok is false when it has none.
func (s Samples) Sum(name string) (v float64, ok bool) {
	for _, x := range s[name] {
		v += x.Value
	}
	return v, len(s[name]) > 0
}

// Labels lists the values the named metric's samples have for label, in
// the order of the page.
func (s Samples) Labels(name, label string) []string {
	var out []string
	for _, x := range s[name] {
		if v, ok := x.Labels[label]; ok {
			out = append(out, v)
		}
	}
	return out
}

// ParseMetrics reads the gauges, counters and untyped samples of the named
// metrics from Prometheus' text format; a metric with no sample is absent.
func ParseMetrics(r io.Reader, names ...string) (Samples, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := Samples{}
	for _, n := range names {
		f, ok := fams[n]
		if !ok {
			continue
		}
		for _, m := range f.GetMetric() {
			var v float64
			switch {
			case m.Gauge != nil:
				v = m.GetGauge().GetValue()
			case m.Counter != nil:
				v = m.GetCounter().GetValue()
			case m.Untyped != nil:
				v = m.GetUntyped().GetValue()
			default:
				return nil, fmt.Errorf("metric %s: not a gauge or counter", n)
			}
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			out[n] = append(out[n], Sample{Labels: labels, Value: v})
		}
	}
	return out, nil
}

// each runs check on every host concurrently, rows in host order.
func each(hosts []inventory.Host, check func(inventory.Host) Row) Rows {
	rows := make(Rows, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rows[i] = check(h)
		}()
	}
	wg.Wait()
	return rows
}

package health

import (
	"context"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/cluster"
	"github.com/trafficlab/trafficlab/provision/remote"
)

// Chrony asks every host's chronyd whether its clock is synchronised
// (`chronyc tracking`), and if not, why: Kafka and ZooKeeper compare
// timestamps across hosts, and the traffic's minutes come from the web
// hosts' clocks.
func Chrony(ctx context.Context, inv *inventory.Inventory, c cluster.Connector) Rows {
	return each(inv.Hosts, func(h inventory.Host) Row { return chronyRow(ctx, c, h) })
}

func chronyRow(ctx context.Context, c cluster.Connector, h inventory.Host) Row {
	r := Row{Component: "chrony", Host: h.Name}
	cl, err := c.Client(ctx, h.Name)
	if err != nil {
		r.State, r.Detail = "unreachable", err.Error()
		return r
	}
	res, err := cl.Run(ctx, "chronyc -n tracking", remote.WithTimeout(15*time.Second))
	if err != nil {
		r.State, r.Detail = "not running", "chronyc tracking: "+firstLine(err.Error())
		return r
	}
	r.State, r.OK, r.Detail = ParseTracking(string(res.Stdout))
	return r
}

// ParseTracking reads `chronyc -n tracking`: synchronised when the leap
// status is Normal and there is a reference; the detail names the source
// and the offset, or says why the clock is not synchronised.
func ParseTracking(out string) (state string, ok bool, detail string) {
	f := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, found := strings.Cut(line, ":")
		if found {
			f[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	ref := f["Reference ID"]
	leap := f["Leap status"]
	switch {
	case leap == "Normal" && ref != "" && !strings.HasPrefix(ref, "00000000"):
		return "synced", true, "source " + refAddr(ref) + ", stratum " + f["Stratum"] + ", " + f["System time"]
	case leap == "":
		return "unknown", false, "no tracking report from chronyd"
	default:
		return "not synced", false, "leap status " + leap + ", reference " + ref + ": no source reachable (check ntp_servers and UDP 123)"
	}
}

// refAddr takes "0A E7 00 01 (10.231.0.1)" apart.
func refAddr(ref string) string {
	if i := strings.Index(ref, "("); i >= 0 {
		return strings.TrimSuffix(ref[i+1:], ")")
	}
	return ref
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

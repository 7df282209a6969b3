package drill

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/health"
	"github.com/trafficlab/trafficlab/provision/role/lb"
	"github.com/trafficlab/trafficlab/provision/role/web"
)

// LB stops nginx on the load balancer holding the VIP, then keepalived,
// while a client requests the site through the VIP every 100 ms; it
// reports the failed requests and the gap until the backup answers.
var LB = Drill{
	Name:    "lb",
	Summary: "stop nginx, then keepalived, on the VIP holder while requesting the site every 100 ms; measure the gap",
	Needs:   inventory.RoleLB,
	Run:     runLB,
}

// Web stops nginx on one web server while a client requests the site
// through the VIP; the load balancer must route around it.
var Web = Drill{
	Name:    "web",
	Summary: "stop one web server while requesting the site every 100 ms; the load balancer must route around it",
	Needs:   inventory.RoleWeb,
	Run:     runWeb,
}

// Drill targets and timings of the web tier.
var (
	LBGapTarget   = 3 * time.Second
	requestEvery  = 100 * time.Millisecond
	requestWait   = time.Second // a request slower than this counts as failed
	webOutage     = 10 * time.Second
	failoverLimit = time.Minute
)

// sample is one request of a load.
type sample struct {
	at       time.Time
	ok       bool
	servedBy string
}

// load requests the site through the VIP every requestEvery until stopped.
type load struct {
	mu      sync.Mutex
	samples []sample
	stop    func()
	done    chan struct{}
}

func startLoad(ctx context.Context, env *Env) *load {
	inv := env.Inventory
	client := health.HTTPClient(env.Cluster.Dial, requestWait)
	url := inv.LB.VIPURL("/")
	ctx, cancel := context.WithCancel(ctx)
	l := &load{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		tick := time.NewTicker(requestEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			go func() {
				s := sample{at: time.Now()}
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				if err == nil {
					req.Host = inv.Cluster.Domain
					var res *http.Response
					if res, err = client.Do(req); err == nil {
						res.Body.Close()
						s.ok = res.StatusCode == http.StatusOK
						s.servedBy = res.Header.Get(web.ServedByHeader)
					}
				}
				if ctx.Err() != nil {
					return // stopped, not failed
				}
				l.mu.Lock()
				l.samples = append(l.samples, s)
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

// since returns the samples sent at or after t, in order.
func (l *load) since(t time.Time) []sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []sample
	for _, s := range l.samples {
		if !s.at.Before(t) {
			out = append(out, s)
		}
	}
	sortSamples(out)
	return out
}

func sortSamples(s []sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].at.Before(s[j-1].at); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (l *load) end() {
	l.stop()
	<-l.done
	time.Sleep(requestWait) // let the last requests land
}

// gap measures, from t on, the time from the first failed request to the
// first success after the last failure: how long clients saw errors.
func gap(samples []sample) (failed int, g time.Duration) {
	var first, last time.Time
	for _, s := range samples {
		if !s.ok {
			failed++
			if first.IsZero() {
				first = s.at
			}
			last = s.at
		}
	}
	if failed == 0 {
		return 0, 0
	}
	for _, s := range samples {
		if s.ok && s.at.After(last) {
			return failed, s.at.Sub(first)
		}
	}
	return failed, time.Since(first)
}

// vipHolder finds the one load balancer holding the VIP.
func vipHolder(ctx context.Context, env *Env) (inventory.Host, error) {
	vip := env.Inventory.LB.VIPPrefix().Addr()
	var holders []inventory.Host
	for _, h := range env.Inventory.HostsWith(inventory.RoleLB) {
		ok, err := health.HoldsAddr(ctx, env.Cluster, h.Name, vip)
		if err != nil {
			return inventory.Host{}, err
		}
		if ok {
			holders = append(holders, h)
		}
	}
	if len(holders) != 1 {
		return inventory.Host{}, fmt.Errorf("%d load balancers hold the VIP %s, want exactly one", len(holders), vip)
	}
	return holders[0], nil
}

// waitOtherHolder waits until a load balancer other than old holds the VIP.
func waitOtherHolder(ctx context.Context, env *Env, old string) (string, error) {
	var holder string
	err := Poll(ctx, 200*time.Millisecond, failoverLimit, func(ctx context.Context) (bool, string) {
		h, err := vipHolder(ctx, env)
		if err != nil {
			return false, err.Error()
		}
		holder = h.Name
		return h.Name != old, "still on " + h.Name
	})
	return holder, err
}

// siteAnswers waits until requests through the VIP succeed again.
func siteAnswers(ctx context.Context, env *Env) error {
	inv := env.Inventory
	client := health.HTTPClient(env.Cluster.Dial, requestWait)
	url := inv.LB.VIPURL("/")
	return Poll(ctx, 200*time.Millisecond, failoverLimit, func(ctx context.Context) (bool, string) {
		code, _, err := health.Get(ctx, client, url, inv.Cluster.Domain)
		return err == nil && code == http.StatusOK, fmt.Sprintf("HTTP %d %v", code, err)
	})
}

func runLB(ctx context.Context, env *Env, res *Result) error {
	lbs := env.Inventory.HostsWith(inventory.RoleLB)
	if len(lbs) < 2 {
		return Skip("one load balancer has no backup to take the VIP over")
	}
	holder, err := vipHolder(ctx, env)
	if err != nil {
		return fmt.Errorf("before the drill: %w", err)
	}
	if err := siteAnswers(ctx, env); err != nil {
		return fmt.Errorf("the site does not answer through the VIP before the drill: %w", err)
	}
	env.Restore("start nginx and keepalived on "+holder.Name+" and wait for one VIP holder and the site", func(ctx context.Context) error {
		for _, u := range []string{lb.Unit, lb.KeepalivedUnit} {
			if err := env.Systemctl(ctx, holder.Name, "start", u); err != nil {
				return err
			}
		}
		if err := Poll(ctx, 500*time.Millisecond, failoverLimit, func(ctx context.Context) (bool, string) {
			_, err := vipHolder(ctx, env)
			return err == nil, fmt.Sprint(err)
		}); err != nil {
			return err
		}
		return siteAnswers(ctx, env)
	})

	var worst time.Duration
	totalFailed := 0
	for _, phase := range []struct{ what, unit string }{{"nginx", lb.Unit}, {"keepalived", lb.KeepalivedUnit}} {
		l := startLoad(ctx, env)
		time.Sleep(time.Second)
		env.Logf("stopping %s on %s, the VIP holder", phase.unit, holder.Name)
		stopped := time.Now()
		if err := env.Systemctl(ctx, holder.Name, "stop", phase.unit); err != nil {
			l.end()
			return err
		}
		to, err := waitOtherHolder(ctx, env, holder.Name)
		moved := time.Since(stopped)
		if err != nil {
			l.end()
			return fmt.Errorf("after stopping %s on %s the VIP did not move: %w", phase.what, holder.Name, err)
		}
		time.Sleep(2 * time.Second)
		l.end()
		failed, g := gap(l.since(stopped))
		env.Logf("VIP on %s %.2fs after %s stopped; %d requests failed, gap %.2fs", to, moved.Seconds(), phase.what, failed, g.Seconds())
		res.Figure(phase.what+" stopped: gap", round2(g.Seconds()), "s", fmt.Sprintf("≤ %v", LBGapTarget))
		res.Figure(phase.what+" stopped: failed requests", float64(failed), "", "")
		totalFailed += failed
		worst = max(worst, g)
		// Back as it was before the next phase: the holder takes the VIP
		// back (priority), which clients must not notice either.
		env.Logf("starting %s on %s again", phase.unit, holder.Name)
		if err := env.Systemctl(ctx, holder.Name, "start", phase.unit); err != nil {
			return err
		}
		if err := Poll(ctx, 500*time.Millisecond, failoverLimit, func(ctx context.Context) (bool, string) {
			h, err := vipHolder(ctx, env)
			if err != nil {
				return false, err.Error()
			}
			// With nopreempt the VIP stays where it went; either is fine
			// as long as exactly one holds it.
			return h.Name == holder.Name || env.Inventory.LB.NoPreempt, "on " + h.Name
		}); err != nil {
			return fmt.Errorf("the VIP did not settle after %s came back: %w", phase.what, err)
		}
		if err := siteAnswers(ctx, env); err != nil {
			return err
		}
	}
	if worst > LBGapTarget {
		return fmt.Errorf("clients saw errors for %.2fs, more than %v", worst.Seconds(), LBGapTarget)
	}
	return nil
}

func runWeb(ctx context.Context, env *Env, res *Result) error {
	inv := env.Inventory
	if len(inv.HostsWith(inventory.RoleLB)) == 0 {
		return Skip("no load balancer to route around a web server")
	}
	var victim inventory.Host
	webs := inv.HostsWith(inventory.RoleWeb)
	for _, h := range webs {
		if !h.Has(inventory.RoleLB) {
			victim = h
		}
	}
	if victim.Name == "" {
		return Skip("every web server shares nginx with a load balancer: stopping it is the lb drill")
	}
	if len(webs) < 2 {
		return Skip("one web server has nothing to fail over to")
	}
	if err := siteAnswers(ctx, env); err != nil {
		return fmt.Errorf("the site does not answer through the VIP before the drill: %w", err)
	}
	env.Restore("start nginx on "+victim.Name+" and wait until it serves through the VIP", func(ctx context.Context) error {
		if err := env.Systemctl(ctx, victim.Name, "start", web.Unit); err != nil {
			return err
		}
		return waitServedBy(ctx, env, victim.Name)
	})
	l := startLoad(ctx, env)
	time.Sleep(time.Second)
	env.Logf("stopping %s on %s for %v", web.Unit, victim.Name, webOutage)
	stopped := time.Now()
	if err := env.Systemctl(ctx, victim.Name, "stop", web.Unit); err != nil {
		l.end()
		return err
	}
	// Requests sent while nginx was still stopping may be its last
	// answers; from here on it has none to give.
	down := time.Now()
	time.Sleep(webOutage)
	restarted := time.Now()
	if err := env.Systemctl(ctx, victim.Name, "start", web.Unit); err != nil {
		l.end()
		return err
	}
	l.end()
	during := 0
	var outage []sample
	for _, s := range l.since(stopped) {
		if s.at.Before(restarted) {
			outage = append(outage, s)
			if s.servedBy == victim.Name && !s.at.Before(down) {
				during++
			}
		}
	}
	failed, _ := gap(outage)
	others := map[string]int{}
	for _, s := range outage {
		if s.ok {
			others[s.servedBy]++
		}
	}
	env.Logf("%d requests while %s was down: %d failed, served by %v", len(outage), victim.Name, failed, others)
	res.Figure("requests", float64(len(outage)), "", "")
	res.Figure("failed requests", float64(failed), "", "0")
	if during > 0 {
		return fmt.Errorf("%d requests were answered by %s while its nginx was stopped", during, victim.Name)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d requests failed while %s was down: the load balancer did not route around it", failed, len(outage), victim.Name)
	}
	if err := waitServedBy(ctx, env, victim.Name); err != nil {
		return err
	}
	return nil
}

// waitServedBy waits until a request through the VIP is served by host.
func waitServedBy(ctx context.Context, env *Env, host string) error {
	inv := env.Inventory
	client := health.HTTPClient(env.Cluster.Dial, requestWait)
	url := inv.LB.VIPURL("/")
	return Poll(ctx, 100*time.Millisecond, failoverLimit, func(ctx context.Context) (bool, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = inv.Cluster.Domain
		r, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		r.Body.Close()
		return r.Header.Get(web.ServedByHeader) == host, "served by " + r.Header.Get(web.ServedByHeader)
	})
}

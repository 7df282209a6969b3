package alert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/notify"
	"github.com/trafficlab/trafficlab/consumer/store"
)

// LeaseName names the evaluator's lease in MySQL.
const LeaseName = "alerts"

// resolvedNoticeWindow is how long after resolving an alert its resolved
// notice is still attempted (a notifier down for longer drops it).
const resolvedNoticeWindow = 24 * time.Hour

// Evaluator runs the rules every minute and delivers the notices.
type Evaluator struct {
	cfg       config.Alerts
	rules     *Rules
	store     *store.Store
	notifiers []notify.Notifier
	log       *slog.Logger
	holder    string
	// Now is the clock (tests move it).
	Now func() time.Time
}

// NewEvaluator returns an evaluator for the configured rules and channels.
// holder names this process in the lease (host and pid).
func NewEvaluator(cfg config.Alerts, st *store.Store, log *slog.Logger, holder string) (*Evaluator, error) {
	ns, err := Notifiers(cfg)
	if err != nil {
		return nil, err
	}
	return &Evaluator{cfg: cfg, rules: NewRules(cfg), store: st, notifiers: ns, log: log, holder: holder, Now: time.Now}, nil
}

// SetNotifiers replaces the configured channels.
func (e *Evaluator) SetNotifiers(ns ...notify.Notifier) { e.notifiers = ns }

// Notifiers builds the configured channels.
func Notifiers(cfg config.Alerts) ([]notify.Notifier, error) {
	var out []notify.Notifier
	if w := cfg.Webhook; w.URL != "" {
		out = append(out, &notify.Webhook{URL: w.URL, Retries: w.Retries, Backoff: 2 * time.Second,
			Client: &http.Client{Timeout: w.Timeout}})
	}
	if m := cfg.Email; m.Host != "" {
		tc := &tls.Config{ServerName: m.Host}
		if m.CAFile != "" {
			pem, err := os.ReadFile(m.CAFile)
			if err != nil {
				return nil, fmt.Errorf("alerts.email.ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("alerts.email.ca_file %s: no PEM certificate in it", m.CAFile)
			}
		}
		out = append(out, &notify.Email{Addr: m.SMTPAddr(), Username: m.Username, Password: m.Password,
			From: m.From, To: m.To, Mode: m.TLS, TLS: tc, Timeout: m.Timeout})
	}
	return out, nil
}

// Run evaluates at once, then at the start of every minute (plus the
// settle time) until ctx ends. Failures are logged and retried the next
// minute.
func (e *Evaluator) Run(ctx context.Context) {
	defer func() {
		_ = e.store.ReleaseLease(context.WithoutCancel(ctx), LeaseName, e.holder)
	}()
	if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
		e.log.Warn("alert evaluation failed; trying again next minute", "err", err)
	}
	for {
		now := e.Now()
		next := now.Truncate(time.Minute).Add(time.Minute).Add(e.cfg.Settle % time.Minute)
		if !next.After(now) {
			next = next.Add(time.Minute)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next.Sub(now)):
		}
		if _, err := e.Tick(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("alert evaluation failed; trying again next minute", "err", err)
		}
	}
}

// Tick takes (or renews) the lease and, holding it, evaluates the newest
// settled minute, stores the transitions and sends the notices due. It
// reports whether this process held the lease.
func (e *Evaluator) Tick(ctx context.Context) (bool, error) {
	// The lease outlives two missed minutes, so one slow tick does not
	// hand evaluation over.
	ok, err := e.store.TakeLease(ctx, LeaseName, e.holder, 3*time.Minute)
	if err != nil || !ok {
		return false, err
	}
	now := e.Now().UTC()
	last := now.Add(-e.cfg.Settle).Truncate(time.Minute).Add(-time.Minute)
	errEval := e.evaluate(ctx, last)
	errNotify := e.deliver(ctx, now)
	return true, errors.Join(errEval, errNotify)
}

func (e *Evaluator) evaluate(ctx context.Context, last time.Time) error {
	recent, week := e.rules.Windows(last)
	d := &Data{Backends: map[string]map[time.Time]Point{}}
	for _, w := range [][2]time.Time{week, recent} {
		pts, err := e.store.MinutePoints(ctx, w[0], w[1])
		if err != nil {
			return err
		}
		for _, p := range pts {
			m := d.Backends[p.Backend]
			if m == nil {
				m = map[time.Time]Point{}
				d.Backends[p.Backend] = m
			}
			m[p.Minute.UTC()] = Point{Requests: float64(p.Requests), Errors: float64(p.Errors)}
		}
	}
	first, err := e.store.FirstSeen(ctx)
	if err != nil {
		return err
	}
	d.FirstSeen = first
	// Backends seen only a week ago are no part of this week's picture
	// (except through an open alert, which keys() adds back).
	for b, pts := range d.Backends {
		seen := false
		for m := range pts {
			if !m.Before(recent[0]) {
				seen = true
				break
			}
		}
		if !seen {
			delete(d.Backends, b)
		}
	}
	rows, err := e.store.FiringAlerts(ctx)
	if err != nil {
		return err
	}
	open := map[Key]Firing{}
	for _, a := range rows {
		k := Key{Rule(a.Rule), a.Scope}
		open[k] = Firing{Key: k, Start: a.Start, Baseline: a.Baseline}
	}
	var errs []error
	for _, tr := range e.rules.Evaluate(d, last, open) {
		scope := scopeName(tr.Scope)
		if tr.Fire {
			fired, err := e.store.FireAlert(ctx, string(tr.Rule), tr.Scope, tr.Start, tr.Value, tr.Baseline)
			if err != nil {
				errs = append(errs, err)
			} else if fired {
				e.log.Warn("alert firing", "rule", tr.Rule, "scope", scope, "since", tr.Start, "value", tr.Value, "baseline", tr.Baseline)
			}
			continue
		}
		if err := e.store.ResolveAlert(ctx, string(tr.Rule), tr.Scope, tr.End, tr.Value); err != nil {
			errs = append(errs, err)
			continue
		}
		e.log.Info("alert resolved", "rule", tr.Rule, "scope", scope, "at", tr.End, "value", tr.Value)
	}
	return errors.Join(errs...)
}

func scopeName(s string) string {
	if s == Total {
		return "total"
	}
	return s
}

// deliver sends what is due: a firing notice per channel once, then again
// every repeat interval while it fires; a resolved notice once. A notice is
// recorded only after the channel accepted it, so a failed one is tried
// again at the next tick.
func (e *Evaluator) deliver(ctx context.Context, now time.Time) error {
	if len(e.notifiers) == 0 {
		return nil
	}
	alerts, sent, err := e.store.AlertsForNotice(ctx, now.Add(-resolvedNoticeWindow))
	if err != nil {
		return err
	}
	var errs []error
	for _, a := range alerts {
		for _, ch := range e.notifiers {
			var fired, resolved *store.Notice
			for i, n := range sent[a.ID] {
				if n.Channel != ch.Channel() {
					continue
				}
				switch n.Kind {
				case store.AlertFiring:
					fired = &sent[a.ID][i]
				case store.AlertResolved:
					resolved = &sent[a.ID][i]
				}
			}
			n := notify.Notice{Version: notify.PayloadVersion, Status: a.State, AlertID: a.ID, Rule: a.Rule,
				Scope: scopeName(a.Scope), StartedAt: a.Start, Value: a.Value, Baseline: a.Baseline, DashboardURL: e.cfg.DashboardURL}
			switch {
			case a.State == store.AlertFiring && fired == nil:
			case a.State == store.AlertFiring && !now.Before(fired.SentAt.Add(e.cfg.RepeatInterval)):
				n.Repeat = fired.Count
			case a.State == store.AlertResolved && resolved == nil:
				end := a.End
				n.EndedAt, n.Value = &end, a.LastValue
			default:
				continue
			}
			n.Summary = notify.Summary(n.Status, n.Rule, n.Scope, n.Value, n.Baseline)
			if err := ch.Send(ctx, n); err != nil {
				errs = append(errs, fmt.Errorf("notice of alert %d (%s/%s): %w", a.ID, a.Rule, n.Scope, err))
				continue
			}
			if err := e.store.RecordNotice(ctx, a.ID, ch.Channel(), a.State, now); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Package dashboard serves the traffic dashboard of `consumer dashboard`:
// a page (HTML, CSS and JavaScript embedded in the binary, no CDN), its
// JSON API under /api/, charts drawn as SVG on the server, and /healthz.
// It only reads MySQL.
package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/store"
	"github.com/trafficlab/trafficlab/consumer/svgchart"
)

//go:embed assets
var assets embed.FS

// Server answers the dashboard's requests.
type Server struct {
	store *store.Store
	log   *slog.Logger
	page  *template.Template
	opts  Options
	// Now is the clock.
	Now func() time.Time

	// busy holds a token per request reading MySQL (MaxConcurrent).
	busy chan struct{}

	mu    sync.Mutex
	cache map[Range]*cached
}

// Options are the dashboard's login and limits.
type Options struct {
	// User and Password are the HTTP basic auth login of every path but
	// /healthz. New refuses an empty password.
	User, Password string
	// MaxConcurrent bounds the requests reading MySQL at once (0: 4, the
	// store's connections); more wait up to QueueWait, then get 503.
	MaxConcurrent int
	QueueWait     time.Duration
	// RequestTimeout bounds the MySQL work of one request (0: 20s).
	RequestTimeout time.Duration
	// CacheEntries bounds the overviews kept (0: 32): every custom range
	// is an entry, and anyone logged in can ask for many.
	CacheEntries int
}

func (o *Options) defaults() {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 4
	}
	if o.QueueWait <= 0 {
		o.QueueWait = 2 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 20 * time.Second
	}
	if o.CacheEntries <= 0 {
		o.CacheEntries = 32
	}
}

// cached is an overview computed for a range, shared by the charts and the
// overview requests of one page load (they come together). Its computation
// runs as long as someone waits for it: when the last waiter leaves (the
// clients went away), it is cancelled.
type cached struct {
	done    chan struct{}
	at      time.Time
	o       *Overview
	err     error
	waiters int
	cancel  context.CancelFunc
}

const cacheTTL = 5 * time.Second

// New returns a dashboard over st.
func New(st *store.Store, log *slog.Logger, opts Options) (*Server, error) {
	if opts.Password == "" {
		return nil, errors.New("dashboard: no password (dashboard.password): the dashboard does not serve without a login")
	}
	if opts.User == "" {
		opts.User = "admin"
	}
	opts.defaults()
	page, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard page: %w", err)
	}
	return &Server{store: st, log: log, page: page, opts: opts, Now: time.Now, cache: map[Range]*cached{},
		busy: make(chan struct{}, opts.MaxConcurrent)}, nil
}

// ContentSecurityPolicy allows the page its own scripts, styles, images
// and API only: no inline code, no other origin, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler routes the dashboard's paths: /healthz open, the rest behind the
// login; every answer with the security headers.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.index)
	mux.Handle("GET /api/overview", s.limited(s.apiOverview))
	mux.Handle("GET /api/top", s.limited(s.apiTop))
	mux.Handle("GET /api/alerts", s.limited(s.apiAlerts))
	mux.Handle("GET /api/chart/{name}", s.limited(s.apiChart))
	authed := s.authenticated(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		if r.URL.Path == "/healthz" && r.Method == http.MethodGet {
			s.healthz(w, r)
			return
		}
		authed.ServeHTTP(w, r)
	})
}

// authenticated asks for the login (HTTP basic auth). Both parts are
// compared in constant time on their hashes, so neither a wrong length
// nor a shared prefix shows in the answer's timing.
func (s *Server) authenticated(next http.Handler) http.Handler {
	wantUser, wantPass := sha256.Sum256([]byte(s.opts.User)), sha256.Sum256([]byte(s.opts.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
		match := subtle.ConstantTimeCompare(u[:], wantUser[:]) & subtle.ConstantTimeCompare(p[:], wantPass[:])
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="trafficlab dashboard", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, errors.New("log in to see the dashboard"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limited runs a handler that reads MySQL within the concurrency cap and
// the request timeout.
func (s *Server) limited(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := time.NewTimer(s.opts.QueueWait)
		defer wait.Stop()
		select {
		case s.busy <- struct{}{}:
		case <-wait.C:
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, errors.New("the dashboard is busy: try again shortly"))
			return
		case <-r.Context().Done():
			return
		}
		defer func() { <-s.busy }()
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		h(w, r.WithContext(ctx))
	})
}

// healthz says whether MySQL answers, and nothing else: it is open to
// anyone who reaches the port.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("dashboard: /healthz: mysql does not answer", "err", err)
		http.Error(w, "mysql unavailable", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// Lang picks "zh" or "en": the lang parameter, else the first of
// Accept-Language that is one of them, else English.
func Lang(r *http.Request) string {
	switch l := r.URL.Query().Get("lang"); {
	case strings.HasPrefix(l, "zh"):
		return "zh"
	case strings.HasPrefix(l, "en"):
		return "en"
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.ToLower(tag)
		switch {
		case strings.HasPrefix(tag, "zh"):
			return "zh"
		case strings.HasPrefix(tag, "en"):
			return "en"
		}
	}
	return "en"
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Vary", "Accept-Language")
	if err := s.page.Execute(w, map[string]string{"Lang": Lang(r)}); err != nil {
		s.log.Warn("dashboard page", "err", err)
	}
}

// overview returns the range's overview, computed once for concurrent and
// quickly repeated requests. At most CacheEntries ranges are kept: the
// oldest finished one makes room, and when every entry is still being
// computed the request computes without caching.
func (s *Server) overview(ctx context.Context, r Range) (*Overview, error) {
	s.mu.Lock()
	now := s.Now()
	var oldest Range
	var oldestAt time.Time
	finished := 0
	for k, c := range s.cache {
		select {
		case <-c.done:
			if now.Sub(c.at) > cacheTTL {
				delete(s.cache, k)
				continue
			}
			if finished++; oldestAt.IsZero() || c.at.Before(oldestAt) {
				oldest, oldestAt = k, c.at
			}
		default:
		}
	}
	c, ok := s.cache[r]
	if !ok {
		if len(s.cache) >= s.opts.CacheEntries {
			if finished == 0 {
				s.mu.Unlock()
				return overview(ctx, s.store, r)
			}
			delete(s.cache, oldest)
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.RequestTimeout)
		c = &cached{done: make(chan struct{}), at: now, cancel: cancel}
		s.cache[r] = c
		go func() {
			defer cancel()
			o, err := overview(cctx, s.store, r)
			s.mu.Lock()
			c.o, c.err = o, err
			if err != nil && s.cache[r] == c {
				delete(s.cache, r)
			}
			s.mu.Unlock()
			close(c.done)
		}()
	}
	c.waiters++
	s.mu.Unlock()
	select {
	case <-c.done:
		s.mu.Lock()
		c.waiters--
		s.mu.Unlock()
		return c.o, c.err
	case <-ctx.Done():
		s.mu.Lock()
		// The last one waiting gave up: nobody wants the answer.
		if c.waiters--; c.waiters == 0 {
			c.cancel()
			if s.cache[r] == c {
				delete(s.cache, r)
			}
		}
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// cached returns the number of overviews kept, for tests.
func (s *Server) cachedEntries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cache)
}

// maxQuery bounds a request's query string: the page's are under 200
// bytes; unknown parameters are ignored (a cache buster does no harm).
const maxQuery = 2048

func (s *Server) rangeOf(w http.ResponseWriter, r *http.Request) (Range, bool) {
	if len(r.URL.RawQuery) > maxQuery {
		writeError(w, http.StatusBadRequest, fmt.Errorf("query of %d bytes: at most %d", len(r.URL.RawQuery), maxQuery))
		return Range{}, false
	}
	rg, err := ParseRange(r.URL.Query(), s.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return rg, false
	}
	return rg, true
}

func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.rangeOf(w, r)
	if !ok {
		return
	}
	o, err := s.overview(r.Context(), rg)
	if err != nil {
		s.fail(w, "overview", err)
		return
	}
	writeJSON(w, o)
}

// TopEntry is one line of a top list.
type TopEntry struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

func (s *Server) apiTop(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.rangeOf(w, r)
	if !ok {
		return
	}
	n, err := ParseTopN(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	uris, clients, err := s.store.TopLists(r.Context(), rg.From, rg.To, n)
	if err != nil {
		s.fail(w, "top lists", err)
		return
	}
	conv := func(in []agg.TopEntry) []TopEntry {
		out := make([]TopEntry, 0, len(in))
		for _, e := range in {
			out = append(out, TopEntry{Key: e.Key, Count: e.Count})
		}
		return out
	}
	writeJSON(w, map[string]any{"from": rg.From, "to": rg.To, "uris": conv(uris), "clients": conv(clients)})
}

// Alert is an alert in the API.
type Alert struct {
	ID        int64      `json:"id"`
	Rule      string     `json:"rule"`
	Scope     string     `json:"scope"` // a backend or "total"
	State     string     `json:"state"` // firing or resolved
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at"`
	Value     float64    `json:"value"`
	Baseline  float64    `json:"baseline"`
	LastValue float64    `json:"last_value"`
}

func apiAlert(a store.AlertRow) Alert {
	out := Alert{ID: a.ID, Rule: a.Rule, Scope: a.Scope, State: a.State, StartedAt: a.Start,
		Value: a.Value, Baseline: a.Baseline, LastValue: a.LastValue}
	if out.Scope == "" {
		out.Scope = "total"
	}
	if !a.End.IsZero() {
		end := a.End
		out.EndedAt = &end
	}
	return out
}

func (s *Server) apiAlerts(w http.ResponseWriter, r *http.Request) {
	rg, ok := s.rangeOf(w, r)
	if !ok {
		return
	}
	firing, err := s.store.FiringAlerts(r.Context())
	if err != nil {
		s.fail(w, "alerts", err)
		return
	}
	hist, err := s.store.AlertHistory(r.Context(), rg.From, rg.To, 200)
	if err != nil {
		s.fail(w, "alerts", err)
		return
	}
	out := struct {
		From    time.Time `json:"from"`
		To      time.Time `json:"to"`
		Firing  []Alert   `json:"firing"`
		History []Alert   `json:"history"`
	}{From: rg.From, To: rg.To, Firing: []Alert{}, History: []Alert{}}
	for _, a := range firing {
		out.Firing = append(out.Firing, apiAlert(a))
	}
	for _, a := range hist {
		out.History = append(out.History, apiAlert(a))
	}
	writeJSON(w, out)
}

// Charts are the names /api/chart/{name}.svg draws.
var Charts = []string{"requests", "bandwidth", "status", "backends"}

func (s *Server) apiChart(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".svg")
	if !ok {
		http.NotFound(w, r)
		return
	}
	if !slices.Contains(Charts, name) {
		if len(name) > maxParam {
			name = name[:maxParam] + "…"
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("no chart %q: want one of %s", name, strings.Join(Charts, ", ")))
		return
	}
	rg, ok := s.rangeOf(w, r)
	if !ok {
		return
	}
	tz := time.UTC
	if v := r.URL.Query().Get("tz"); v != "" {
		// Minutes east of UTC, as the page computes from the browser.
		m, err := strconv.Atoi(v)
		if err != nil || m < -14*60 || m > 14*60 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("tz %q: want minutes east of UTC", v))
			return
		}
		tz = time.FixedZone("", m*60)
	}
	o, err := s.overview(r.Context(), rg)
	if err != nil {
		s.fail(w, "chart", err)
		return
	}
	c, ok := chart(name, o, Lang(r), tz)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no chart %q: want one of %s", name, strings.Join(Charts, ", ")))
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(c.SVG())
}

func chart(name string, o *Overview, lang string, tz *time.Location) (svgchart.Chart, bool) {
	tr := func(key string) string { return chartText[lang][key] }
	c := svgchart.Chart{Times: o.Times, NoData: tr("nodata"), Loc: tz, Label: tr(name)}
	switch name {
	case "requests":
		c.Series = []svgchart.Series{{Name: tr("total"), Values: o.Requests.Total}}
	case "backends":
		for _, b := range o.Backends {
			c.Series = append(c.Series, svgchart.Series{Name: b, Values: o.Requests.Backends[b]})
		}
	case "status":
		colors := map[string]string{"1xx": "#7f7f7f", "2xx": "#2ca02c", "3xx": "#1f77b4", "4xx": "#ff7f0e", "5xx": "#d62728", "other": "#9467bd"}
		for _, st := range StatusNames {
			if o.Totals.Status[st] == 0 && st != "2xx" && st != "5xx" {
				continue // keep the legend to the classes seen
			}
			c.Series = append(c.Series, svgchart.Series{Name: st, Values: o.Status[st], Color: colors[st]})
		}
	case "bandwidth":
		c.Times = o.Bandwidth.Times
		c.YFormat = svgchart.Bits
		c.Series = []svgchart.Series{{Name: tr("out"), Values: o.Bandwidth.OutBPS.Total}}
		c.HLines = []svgchart.HLine{{Name: tr("p95") + " " + o.Bandwidth.P95Month, Value: o.Bandwidth.P95BPS}}
	default:
		return c, false
	}
	return c, true
}

var chartText = map[string]map[string]string{
	"en": {"nodata": "no data in this range", "total": "all backends", "out": "outgoing", "p95": "95th percentile",
		"requests": "requests per minute", "backends": "requests per minute per backend", "status": "requests per minute by status class", "bandwidth": "outgoing bandwidth"},
	"zh": {"nodata": "该时间段没有数据", "total": "全部后端", "out": "出流量", "p95": "95计费值",
		"requests": "每分钟请求数", "backends": "各后端每分钟请求数", "status": "各状态码类别每分钟请求数", "bandwidth": "出口带宽"},
}

// fail logs why a request failed and answers a generic message: the
// database's own text (accounts, addresses, SQL) is for the log only.
func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Warn("dashboard: "+what+" failed", "err", err)
	msg := "the database did not answer: see the dashboard's log"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "the database took too long: try a shorter range"
	}
	writeError(w, http.StatusServiceUnavailable, errors.New(msg))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		// Headers are gone by now; the client sees a cut answer.
		return
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

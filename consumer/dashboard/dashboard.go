// Package dashboard serves the traffic dashboard of `consumer dashboard`:
// a page (HTML, CSS and JavaScript embedded in the binary, no CDN), its
// JSON API under /api/, charts drawn as SVG on the server, and /healthz.
// It only reads MySQL.
package dashboard

import (
	"context"
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
	// Now is the clock.
	Now func() time.Time

	mu    sync.Mutex
	cache map[Range]*cached
}

// cached is an overview computed for a range, shared by the charts and the
// overview requests of one page load (they come together).
type cached struct {
	done chan struct{}
	at   time.Time
	o    *Overview
	err  error
}

const cacheTTL = 5 * time.Second

// New returns a dashboard over st.
func New(st *store.Store, log *slog.Logger) (*Server, error) {
	page, err := template.ParseFS(assets, "assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("dashboard page: %w", err)
	}
	return &Server{store: st, log: log, page: page, Now: time.Now, cache: map[Range]*cached{}}, nil
}

// Handler routes the dashboard's paths.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /api/overview", s.apiOverview)
	mux.HandleFunc("GET /api/top", s.apiTop)
	mux.HandleFunc("GET /api/alerts", s.apiAlerts)
	mux.HandleFunc("GET /api/chart/{name}", s.apiChart)
	return mux
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
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
// quickly repeated requests.
func (s *Server) overview(ctx context.Context, r Range) (*Overview, error) {
	s.mu.Lock()
	now := s.Now()
	for k, c := range s.cache {
		select {
		case <-c.done:
			if now.Sub(c.at) > cacheTTL {
				delete(s.cache, k)
			}
		default:
		}
	}
	c, ok := s.cache[r]
	if !ok {
		c = &cached{done: make(chan struct{}), at: now}
		s.cache[r] = c
		s.mu.Unlock()
		c.o, c.err = overview(context.WithoutCancel(ctx), s.store, r)
		close(c.done)
		if c.err != nil {
			s.mu.Lock()
			delete(s.cache, r)
			s.mu.Unlock()
		}
		return c.o, c.err
	}
	s.mu.Unlock()
	select {
	case <-c.done:
		return c.o, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Server) rangeOf(w http.ResponseWriter, r *http.Request) (Range, bool) {
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
	n := 10
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 100 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("n %q: want 1 to 100", v))
			return
		}
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

func (s *Server) fail(w http.ResponseWriter, what string, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	s.log.Warn("dashboard: "+what+" failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%s: %w", what, err))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}

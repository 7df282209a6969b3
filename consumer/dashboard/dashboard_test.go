package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/consumer/internal/trafficseed"
	"github.com/trafficlab/trafficlab/consumer/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mariadbtest.StopShared()
	os.Exit(code)
}

var dbSeq atomic.Int32

func newStore(tb testing.TB) *store.Store {
	tb.Helper()
	srv := mariadbtest.Shared(tb)
	ctx := context.Background()
	mc, err := srv.NewDatabase(ctx, fmt.Sprintf("db%d_%d", os.Getpid(), dbSeq.Add(1)))
	if err != nil {
		tb.Fatal(err)
	}
	s, err := store.Open(mc)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	return s
}

var backends = []string{"web-1", "web-2", "web-3"}

// seed stores minutes of the three backends from end-d to end: a daily
// wave around 120 requests per minute per backend, 2% 5xx, 5% 404.
func seed(tb testing.TB, st *store.Store, end time.Time, d time.Duration) []trafficseed.Row {
	tb.Helper()
	end = end.UTC().Truncate(time.Minute)
	var rows []trafficseed.Row
	for m := end.Add(-d); m.Before(end); m = m.Add(time.Minute) {
		for i, b := range backends {
			day := float64(m.Hour()*60+m.Minute()) / 1440 * 2 * math.Pi
			n := uint64(120 + 80*math.Sin(day+float64(i)) + float64(m.Minute()%7))
			e5, e4 := n/50, n/20
			rows = append(rows, trafficseed.Row{
				Minute: m, Backend: b, Requests: n, BytesOut: n * 5120, BytesIn: n * 300,
				Status:     [agg.StatusClasses]uint64{2: n - e5 - e4, 4: e4, 5: e5},
				TopURIs:    []agg.TopEntry{{Key: "/", Count: n / 2}, {Key: "/api/items", Count: n / 4}, {Key: "/img/logo.png", Count: n / 8}},
				TopClients: []agg.TopEntry{{Key: "10.0.0.7", Count: n / 3}, {Key: "2001:db8::1", Count: n / 5}},
			})
		}
	}
	if err := trafficseed.Write(context.Background(), st.DB(), rows); err != nil {
		tb.Fatal(err)
	}
	// The consumer's summaries of those minutes, as after an upgrade.
	if _, err := st.BackfillTop(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return rows
}

func newServer(tb testing.TB, st *store.Store) *Server {
	tb.Helper()
	s, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{User: testUser, Password: testPassword})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// The tests' login.
const testUser, testPassword = "admin", "test-password"

// get requests path logged in (unless hdr sets Authorization).
func get(t *testing.T, h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.SetBasicAuth(testUser, testPassword)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 11, 25, 3, 30, 20, 0, time.UTC)
	for _, c := range []struct {
		q        string
		from, to string
		step     time.Duration
		err      string
	}{
		{"", "2026-11-25T02:31:00Z", "2026-11-25T03:31:00Z", time.Minute, ""},
		{"range=6h", "2026-11-24T21:31:00Z", "2026-11-25T03:31:00Z", time.Minute, ""},
		{"range=24h", "2026-11-24T03:30:00Z", "2026-11-25T03:31:00Z", 5 * time.Minute, ""},
		{"range=7d", "2026-11-18T03:30:00Z", "2026-11-25T03:31:00Z", 30 * time.Minute, ""},
		{"from=2026-11-25T01:00:00Z&to=2026-11-25T02:00:00Z", "2026-11-25T01:00:00Z", "2026-11-25T02:00:00Z", time.Minute, ""},
		{"from=1795993200&to=1795996800", "2026-11-29T23:00:00Z", "2026-11-30T00:00:00Z", time.Minute, ""},
		{"range=2w", "", "", 0, "range"},
		{"from=yesterday", "", "", 0, "from"},
		{"from=2026-11-25T02:00:00Z&to=2026-11-25T01:00:00Z", "", "", 0, "not before"},
		{"from=2025-01-01T00:00:00Z", "", "", 0, "longer"},
	} {
		q, _ := url.ParseQuery(c.q)
		r, err := ParseRange(q, now)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.q, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.q, err)
			continue
		}
		if got := r.From.Format(time.RFC3339); got != c.from {
			t.Errorf("%s: from %s, want %s", c.q, got, c.from)
		}
		if got := r.To.Format(time.RFC3339); got != c.to {
			t.Errorf("%s: to %s, want %s", c.q, got, c.to)
		}
		if r.Step != c.step {
			t.Errorf("%s: step %v, want %v", c.q, r.Step, c.step)
		}
	}
}

func TestLang(t *testing.T) {
	for _, c := range []struct{ url, accept, want string }{
		{"/", "zh-CN,zh;q=0.9,en;q=0.8", "zh"},
		{"/", "en-US,en;q=0.9,zh;q=0.5", "en"},
		{"/", "fr-FR,zh-TW;q=0.5", "zh"},
		{"/", "", "en"},
		{"/?lang=zh", "en", "zh"},
		{"/?lang=en", "zh-CN", "en"},
	} {
		r := httptest.NewRequest(http.MethodGet, c.url, nil)
		r.Header.Set("Accept-Language", c.accept)
		if got := Lang(r); got != c.want {
			t.Errorf("%s %q: %s, want %s", c.url, c.accept, got, c.want)
		}
	}
}

// TestAPI checks the API's figures against the stored rows.
func TestAPI(t *testing.T) {
	st := newStore(t)
	// Five-minute aligned, so the range holds whole bandwidth samples.
	end := time.Now().UTC().Truncate(5 * time.Minute)
	rows := seed(t, st, end, 3*time.Hour)
	s := newServer(t, st)
	h := s.Handler()

	from, to := end.Add(-2*time.Hour), end.Add(-time.Hour)
	q := "?from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
	rec := get(t, h, "/api/overview"+q)
	if rec.Code != 200 {
		t.Fatalf("overview: %d %s", rec.Code, rec.Body)
	}
	var o struct {
		StepSeconds int         `json:"step_seconds"`
		Times       []time.Time `json:"times"`
		Requests    struct {
			Total    []float64
			Backends map[string][]float64
		} `json:"requests"`
		Status    map[string][]float64 `json:"status"`
		Totals    Totals               `json:"totals"`
		Backends  []string             `json:"backends"`
		Bandwidth struct {
			Times    []time.Time                `json:"times"`
			OutBPS   struct{ Total []*float64 } `json:"out_bps"`
			P95BPS   float64                    `json:"p95_bps"`
			P95Month string                     `json:"p95_month"`
		} `json:"bandwidth"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &o); err != nil {
		t.Fatal(err)
	}
	var want Totals
	want.Status = map[string]uint64{}
	perMinute := map[time.Time]uint64{}
	var bytes5 map[time.Time]uint64 = map[time.Time]uint64{}
	for _, r := range rows {
		if r.Minute.Before(from) || !r.Minute.Before(to) {
			continue
		}
		want.Requests += r.Requests
		want.BytesOut += r.BytesOut
		want.Status["5xx"] += r.Status[5]
		perMinute[r.Minute] += r.Requests
		bytes5[r.Minute.Truncate(5*time.Minute)] += r.BytesOut
	}
	if o.Totals.Requests != want.Requests || o.Totals.BytesOut != want.BytesOut || o.Totals.Status["5xx"] != want.Status["5xx"] {
		t.Errorf("totals %+v, want requests %d bytes %d 5xx %d", o.Totals, want.Requests, want.BytesOut, want.Status["5xx"])
	}
	if o.StepSeconds != 60 || len(o.Times) != 60 || len(o.Requests.Total) != 60 {
		t.Fatalf("step %d, %d times, %d values; want 60, 60, 60", o.StepSeconds, len(o.Times), len(o.Requests.Total))
	}
	for i, tm := range o.Times {
		if got, w := o.Requests.Total[i], float64(perMinute[tm]); got != w {
			t.Errorf("requests at %v: %g, want %g", tm, got, w)
		}
	}
	if strings.Join(o.Backends, ",") != "web-1,web-2,web-3" {
		t.Errorf("backends %v", o.Backends)
	}
	// Bandwidth: 12 five-minute samples, bit/s = bytes*8/300.
	if len(o.Bandwidth.Times) != 12 {
		t.Fatalf("%d bandwidth points, want 12", len(o.Bandwidth.Times))
	}
	for i, tm := range o.Bandwidth.Times {
		if w := float64(bytes5[tm]) * 8 / 300; o.Bandwidth.OutBPS.Total[i] == nil || math.Abs(*o.Bandwidth.OutBPS.Total[i]-w) > 0.01 {
			t.Errorf("bandwidth at %v: %v, want %g", tm, o.Bandwidth.OutBPS.Total[i], w)
		}
	}
	bill, err := st.MonthlyPercentile(context.Background(), to.Add(-time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if o.Bandwidth.P95BPS != bill.Total || o.Bandwidth.P95Month != to.Add(-time.Second).Format("2006-01") {
		t.Errorf("p95 %g %s, want %g", o.Bandwidth.P95BPS, o.Bandwidth.P95Month, bill.Total)
	}

	// Top lists sum the minutes' lists.
	rec = get(t, h, "/api/top"+q+"&n=2")
	var top struct{ URIs, Clients []TopEntry }
	if err := json.Unmarshal(rec.Body.Bytes(), &top); err != nil || rec.Code != 200 {
		t.Fatalf("top: %d %s", rec.Code, rec.Body)
	}
	var root uint64
	for _, r := range rows {
		if !r.Minute.Before(from) && r.Minute.Before(to) {
			root += r.Requests / 2
		}
	}
	if len(top.URIs) != 2 || top.URIs[0] != (TopEntry{"/", root}) || top.URIs[1].Key != "/api/items" || top.Clients[0].Key != "10.0.0.7" {
		t.Errorf("top %+v, want / with %d first", top, root)
	}

	// Charts are SVG with a line per series.
	for _, c := range []struct{ name, lines string }{{"requests", "1"}, {"backends", "3"}, {"status", ""}, {"bandwidth", "1"}} {
		rec := get(t, h, "/api/chart/"+c.name+".svg"+q+"&lang=zh&tz=480")
		body := rec.Body.String()
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(body, "<svg") {
			t.Errorf("chart %s: %d %s", c.name, rec.Code, rec.Header().Get("Content-Type"))
			continue
		}
		if n := strings.Count(body, `class="series"`); c.lines != "" && fmt.Sprint(n) != c.lines {
			t.Errorf("chart %s has %d series, want %s", c.name, n, c.lines)
		}
	}
	if body := get(t, h, "/api/chart/bandwidth.svg"+q+"&lang=zh").Body.String(); !strings.Contains(body, "95计费值") || !strings.Contains(body, `class="hline"`) {
		t.Errorf("bandwidth chart lacks the 95th percentile line or its Chinese label")
	}
	// The current minute is still filling: null in the series, not a drop.
	var live struct {
		Requests struct{ Total []*float64 } `json:"requests"`
	}
	if err := json.Unmarshal(get(t, h, "/api/overview?range=1h").Body.Bytes(), &live); err != nil {
		t.Fatal(err)
	}
	if n := len(live.Requests.Total); n != 60 || live.Requests.Total[n-1] != nil || live.Requests.Total[n-10] == nil {
		t.Errorf("1h series: %d points, last %v; want 60 with the current minute null", n, live.Requests.Total[n-1])
	}
	if rec := get(t, h, "/api/chart/pie.svg"+q); rec.Code != 404 {
		t.Errorf("unknown chart: %d", rec.Code)
	}
	if rec := get(t, h, "/api/overview?range=1y"); rec.Code != 400 || !strings.Contains(rec.Body.String(), "error") {
		t.Errorf("bad range: %d %s", rec.Code, rec.Body)
	}

	// Alerts: one firing, one resolved within the range.
	ctx := context.Background()
	if _, err := st.FireAlert(ctx, "traffic_low", "", from.Add(10*time.Minute), 30, 300); err != nil {
		t.Fatal(err)
	}
	if err := st.ResolveAlert(ctx, "traffic_low", "", from.Add(20*time.Minute), 290); err != nil {
		t.Fatal(err)
	}
	if _, err := st.FireAlert(ctx, "backend_silent", "web-2", from.Add(30*time.Minute), 0, 240); err != nil {
		t.Fatal(err)
	}
	rec = get(t, h, "/api/alerts"+q)
	var al struct{ Firing, History []Alert }
	if err := json.Unmarshal(rec.Body.Bytes(), &al); err != nil {
		t.Fatal(err)
	}
	if len(al.Firing) != 1 || al.Firing[0].Rule != "backend_silent" || al.Firing[0].Scope != "web-2" || al.Firing[0].EndedAt != nil {
		t.Errorf("firing %+v", al.Firing)
	}
	if len(al.History) != 2 || al.History[1].Scope != "total" || al.History[1].State != "resolved" || al.History[1].EndedAt == nil {
		t.Errorf("history %+v", al.History)
	}

	if rec := get(t, h, "/healthz"); rec.Code != 200 {
		t.Errorf("healthz %d", rec.Code)
	}
	rec = get(t, h, "/", "Accept-Language", "zh-CN,zh;q=0.9")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `<html lang="zh"`) {
		t.Errorf("page: %d, lang not taken from Accept-Language", rec.Code)
	}
	for _, a := range []string{"/static/app.js", "/static/style.css"} {
		if rec := get(t, h, a); rec.Code != 200 || rec.Body.Len() < 500 {
			t.Errorf("%s: %d, %d bytes", a, rec.Code, rec.Body.Len())
		}
	}
}

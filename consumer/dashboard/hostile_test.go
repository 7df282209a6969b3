package dashboard

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve runs the dashboard's real HTTP server (NewHTTPServer) on a
// loopback port and returns its address.
func serve(t *testing.T, s *Server, to Timeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(s.Handler(), to, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// TestHostileRequests: what anyone who reaches the port can send gets a
// short 4xx answer, never a 5xx, a panic or an echo of the input.
func TestHostileRequests(t *testing.T) {
	st := newStore(t)
	addr := serve(t, newServer(t, st), DefaultTimeouts)
	do := func(path string, hdr map[string]string, login bool) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if login {
			req.SetBasicAuth(testUser, testPassword)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%.80s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	huge := strings.Repeat("9", 5000)
	for _, c := range []struct {
		path string
		want int
	}{
		{"/api/overview?from=-9223372036854775808", 400},
		{"/api/overview?from=9223372036854775807", 400},
		{"/api/overview?from=-62135596800&to=-62135596000", 400},
		{"/api/overview?from=253402300700", 400},
		{"/api/overview?from=0001-01-01T00:00:00Z", 400},
		{"/api/overview?from=9999-12-31T23:59:00-23:59", 400},
		{"/api/overview?from=2026-01-01T00:00:00Z&to=2026-03-05T00:00:00Z", 400}, // 63 days
		{"/api/overview?from=2026-03-05T00:00:00Z&to=2026-01-01T00:00:00Z", 400},
		{"/api/overview?from=" + huge, 400},
		{"/api/overview?range=" + huge, 400},
		{"/api/overview?" + strings.Repeat("a=b&", 3000), 400},
		{"/api/top?n=-1", 400}, {"/api/top?n=0", 400}, {"/api/top?n=101", 400},
		{"/api/top?n=" + huge, 400}, {"/api/top?n=1e3", 400}, {"/api/top?n=%00", 400},
		{"/api/chart/requests.svg?tz=" + huge, 400},
		{"/api/chart/" + huge + ".svg", 404},
		{"/api/top?n=100&from=2026-01-01T00:00:00Z&to=2026-03-03T00:00:00Z&unknown=%ff%fe", 200},
	} {
		code, body := do(c.path, nil, true)
		if code != c.want || (code != 200 && (len(body) > 300 || strings.Contains(body, huge[:100]))) {
			t.Errorf("%.100s: %d %.300s; want %d with a short message", c.path, code, body, c.want)
		}
	}
	// Huge headers: refused before any handler runs.
	if code, _ := do("/api/top", map[string]string{"X-Junk": strings.Repeat("x", 64<<10)}, true); code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KB of headers: %d, want 431", code)
	}
	// Not logged in: nothing but the login question, even with absurd
	// parameters.
	if code, body := do("/api/top?n=-1", nil, false); code != 401 || strings.Contains(body, "want 1 to") {
		t.Errorf("no login: %d %s", code, body)
	}
	if code, body := do("/healthz", nil, false); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz without login: %d %s", code, body)
	}
	// A password of another length, or a prefix of the right one.
	for _, pw := range []string{testPassword[:4], testPassword + "x", ""} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/top", nil)
		req.SetBasicAuth(testUser, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("password %q: %d, want 401", pw, resp.StatusCode)
		}
	}
}

// TestSlowAndIdleClients: a client that never finishes its headers, and a
// kept-alive connection left idle, are closed by the server.
func TestSlowAndIdleClients(t *testing.T) {
	st := newStore(t)
	addr := serve(t, newServer(t, st), Timeouts{ReadHeader: 300 * time.Millisecond, Read: time.Second, Write: 5 * time.Second, Idle: 500 * time.Millisecond})
	closed := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, c)
		return err == nil // EOF: the server closed it; a timeout is an error
	}
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprint(slow, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
	if !closed(slow) {
		t.Error("a request whose headers never end keeps its connection")
	}
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	fmt.Fprint(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	if !closed(idle) {
		t.Error("an idle kept-alive connection stays open")
	}
}

// TestOverviewBounded: distinct custom ranges do not grow the cache past
// its bound; while MySQL is stuck, requests beyond the concurrency cap are
// turned away instead of piling up, and an overview whose clients all left
// is dropped (not cached, not waited for).
func TestOverviewBounded(t *testing.T) {
	st := newStore(t)
	s, err := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Options{User: testUser, Password: testPassword,
		MaxConcurrent: 2, QueueWait: 200 * time.Millisecond, CacheEntries: 5})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	custom := func(i int) string {
		return "/api/overview?" + url.Values{"from": {base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339)},
			"to": {base.Add(time.Duration(i)*time.Minute + time.Hour).Format(time.RFC3339)}}.Encode()
	}
	for i := range 40 {
		if rec := get(t, h, custom(i)); rec.Code != 200 {
			t.Fatalf("%s: %d %s", custom(i), rec.Code, rec.Body)
		}
	}
	if n := s.cachedEntries(); n > 5 {
		t.Errorf("%d overviews cached after 40 ranges, want at most 5", n)
	}

	// MySQL stuck: a write lock on the minutes blocks every overview.
	ctx := context.Background()
	lock, err := st.DB().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "LOCK TABLES traffic_minute WRITE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	codes := make([]int, 2)
	cancels := make([]context.CancelFunc, 2)
	for i := range 2 {
		rctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(rctx, http.MethodGet, custom(100+i), nil)
			req.SetBasicAuth(testUser, testPassword)
			rec := newRecorder()
			h.ServeHTTP(rec, req)
			codes[i] = rec.code
		}()
	}
	time.Sleep(300 * time.Millisecond) // both hold their token by now
	if rec := get(t, h, custom(200)); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "busy") {
		t.Errorf("a third request while two are stuck: %d %s, want 503 busy", rec.Code, rec.Body)
	}
	// Their clients leave: the computations are dropped.
	for _, c := range cancels {
		c()
	}
	wg.Wait()
	s.mu.Lock()
	_, kept0 := s.cache[mustRange(t, s, custom(100))]
	_, kept1 := s.cache[mustRange(t, s, custom(101))]
	s.mu.Unlock()
	if kept0 || kept1 {
		t.Error("overviews whose clients left are still cached")
	}
	if _, err := lock.ExecContext(ctx, "UNLOCK TABLES"); err != nil {
		t.Fatal(err)
	}
	if rec := get(t, h, custom(100)); rec.Code != 200 {
		t.Errorf("after MySQL came back: %d %s", rec.Code, rec.Body)
	}
}

func mustRange(t *testing.T, s *Server, path string) Range {
	t.Helper()
	u, _ := url.Parse(path)
	r, err := ParseRange(u.Query(), s.Now())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// recorder is a ResponseWriter safe to read after the handler returned
// from another goroutine.
type recorder struct {
	hdr  http.Header
	code int
}

func newRecorder() *recorder                    { return &recorder{hdr: http.Header{}, code: 200} }
func (r *recorder) Header() http.Header         { return r.hdr }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }

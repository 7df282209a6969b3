package dashboard

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkOverview7d times GET /api/overview?range=7d over a week of
// minutes of three backends (30,240 rows as wide as real ones) in a real
// MariaDB, from request to encoded JSON, with an empty cache each time.
// The target is 300 ms.
//
//	go test -run '^$' -bench Overview7d -benchtime 20x ./consumer/dashboard
func BenchmarkOverview7d(b *testing.B) {
	st := newStore(b)
	now := time.Now().UTC()
	start := time.Now()
	seed(b, st, now, 7*24*time.Hour+time.Hour)
	b.Logf("seeded 7 days x 3 backends in %v", time.Since(start).Round(time.Millisecond))
	var worst time.Duration
	b.ResetTimer()
	for b.Loop() {
		s := newServer(b, st) // an empty cache
		req := httptest.NewRequest(http.MethodGet, "/api/overview?range=7d", nil)
		rec := httptest.NewRecorder()
		t0 := time.Now()
		s.Handler().ServeHTTP(rec, req)
		worst = max(worst, time.Since(t0))
		if rec.Code != 200 || rec.Body.Len() < 10000 {
			b.Fatalf("overview: %d, %d bytes", rec.Code, rec.Body.Len())
		}
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}

package dashboard

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/internal/trafficseed"
	"github.com/trafficlab/trafficlab/consumer/store"
)

// Benchmark62Days times GET /api/top?n=100 and GET /api/overview over the
// longest range (62 days) of three backends in a real MariaDB: 267,840
// minute rows whose top lists are full of distinct URIs and clients (22 of
// each row's 25 URIs, and all of its 10 clients, appear nowhere else, as
// when visitors request made-up URIs), with the consumer's hour and day
// summaries and hour counters (built by BackfillTop, as after an upgrade).
// Each request starts with an empty cache. Besides ns/op and
// -benchmem's B/op it reports the worst request and the peak heap in use
// during requests. Targets: 300 ms and 50 MB.
//
//	go test -run '^$' -bench 62Days -benchtime 10x -benchmem ./consumer/dashboard
func Benchmark62Days(b *testing.B) {
	st := newStore(b)
	end := time.Now().UTC().Truncate(time.Minute)
	start := end.Add(-MaxRange - 2*time.Hour).Truncate(time.Hour) // 5-minute samples within a day's seed
	t0 := time.Now()
	seed62(b, st, start, end)
	b.Logf("seeded %v of 3 backends in %v", end.Sub(start), time.Since(t0).Round(time.Second))
	t0 = time.Now()
	n, err := st.BackfillTop(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("built %d hour and day summaries in %v", n, time.Since(t0).Round(time.Second))
	// A custom range cut inside hours and days: every kind of row is read.
	q := fmt.Sprintf("from=%d&to=%d", end.Add(-MaxRange).Add(17*time.Minute).Unix(), end.Add(-41*time.Minute).Unix())
	for name, path := range map[string]string{"top": "/api/top?n=100&" + q, "overview": "/api/overview?" + q} {
		b.Run(name, func(b *testing.B) {
			var worst time.Duration
			var peak uint64
			b.ResetTimer()
			for b.Loop() {
				s := newServer(b, st)
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.SetBasicAuth(testUser, testPassword)
				rec := httptest.NewRecorder()
				runtime.GC()
				stop := watchHeap(&peak)
				t1 := time.Now()
				s.Handler().ServeHTTP(rec, req)
				worst = max(worst, time.Since(t1))
				stop()
				if rec.Code != 200 || rec.Body.Len() < 1000 {
					b.Fatalf("%s: %d %.300s", path, rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		})
	}
}

// watchHeap samples the bytes of heap objects (live and not yet swept:
// what the request makes the process hold) every millisecond into peak,
// until stop is called; runtime/metrics reads them without stopping the
// world, unlike runtime.ReadMemStats.
func watchHeap(peak *uint64) (stop func()) {
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for !done.Load() {
			metrics.Read(s)
			*peak = max(*peak, s[0].Value.Uint64())
			time.Sleep(time.Millisecond)
		}
	}()
	return func() { done.Store(true); <-finished }
}

// seed62 writes the minutes of [start, end) a day at a time (the rows of
// the whole range would take gigabytes to hold).
func seed62(b *testing.B, st *store.Store, start, end time.Time) {
	b.Helper()
	for day := start; day.Before(end); day = day.Add(24 * time.Hour) {
		var rows []trafficseed.Row
		last := day.Add(24 * time.Hour)
		if end.Before(last) {
			last = end
		}
		for m := day; m.Before(last); m = m.Add(time.Minute) {
			for i, be := range backends {
				n := uint64(150 + (m.Minute()*7+i*13)%97)
				uris := []agg.TopEntry{{Key: "/", Count: n / 4}, {Key: "/api/items", Count: n / 8}, {Key: "/img/logo.png", Count: n / 16}}
				for j := range 22 {
					uris = append(uris, agg.TopEntry{Key: fmt.Sprintf("/made-up/%d/%s/%d", m.Unix(), be, j), Count: uint64(22 - j)})
				}
				var clients []agg.TopEntry
				for j := range 10 {
					clients = append(clients, agg.TopEntry{Key: fmt.Sprintf("10.%d.%d.%d", m.Unix()/60%250, i*10+j, m.Minute()), Count: uint64(10 - j)})
				}
				rows = append(rows, trafficseed.Row{Minute: m, Backend: be, Requests: n, BytesOut: n * 5120, BytesIn: n * 300,
					Status: [agg.StatusClasses]uint64{2: n - n/20, 5: n / 20}, TopURIs: uris, TopClients: clients})
			}
		}
		if err := trafficseed.WriteSketchBytes(context.Background(), st.DB(), rows, 256); err != nil {
			b.Fatal(err)
		}
	}
}

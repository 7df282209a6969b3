package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/consumer/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mariadbtest.StopShared()
	os.Exit(code)
}

var dbSeq atomic.Int32

// newStore returns a migrated store on a fresh database of the shared
// server.
func newStore(t *testing.T) *store.Store {
	t.Helper()
	srv := mariadbtest.Shared(t)
	ctx := context.Background()
	mc, err := srv.NewDatabase(ctx, fmt.Sprintf("st%d_%d", os.Getpid(), dbSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMigrate(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	again, err := s.Migrate(ctx)
	if err != nil || len(again) != 0 {
		t.Fatalf("second Migrate applied %v, %v; want nothing", again, err)
	}
	migs, _ := store.Migrations()
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migs) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migs))
	}
	for _, table := range []string{"traffic_minute", "bandwidth_5m", "probes", "kafka_offsets", "rejects_minute", "reject_samples"} {
		if _, err := s.DB().Exec(`SELECT 1 FROM ` + table + ` LIMIT 1`); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
}

func aggregate(t *testing.T, lines ...string) *agg.Batch {
	t.Helper()
	p, err := nginxlog.Compile(nginxlog.Format)
	if err != nil {
		t.Fatal(err)
	}
	a := agg.NewAggregator(p, 3, agg.WithProbeKey(testProbeKey))
	for _, l := range lines {
		a.Add([]byte(l))
	}
	return a.Take()
}

var testProbeKey = []byte("store-test-probe-key")

// probeURI is the signed URI of probe id.
func probeURI(id string) string { return agg.ProbePrefix + agg.SignProbe(testProbeKey, id) }

func event(backend, ts, client, uri string, status, sent int) string {
	line := fmt.Sprintf(`%s 192.0.2.10 [%s] "GET %s HTTP/1.1" %d 10 %d 100 0.020 "-" "curl/8" "example.com"`, client, ts, uri, status, sent)
	return `{"message":` + string(nginxlog.AppendJSONString(nil, []byte(line))) + `,"host":{"name":"` + backend + `"}}`
}

func TestCommitExactlyOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 3, 0, 0, time.UTC)
	b1 := aggregate(t,
		event("web-1", "01/May/2026:12:00:01 +0000", "10.0.0.1", "/a", 200, 1000),
		event("web-1", "01/May/2026:12:00:02 +0000", "10.0.0.2", probeURI("xyz"), 503, 500),
		event("web-2", "01/May/2026:12:01:00 +0000", "2001:db8::1", "/b", 404, 300),
		"garbage line",
	)
	c1 := &store.Commit{Group: "g", Topic: "t", Batch: b1, Now: now, KeepSamples: 10,
		Partitions: []store.PartitionOffsets{{Partition: 0, To: 3}, {Partition: 1, To: 1}}}
	if err := s.Commit(ctx, c1); err != nil {
		t.Fatal(err)
	}
	// The same commit again: MySQL already holds its target offsets.
	if err := s.Commit(ctx, c1); !errors.Is(err, store.ErrAlreadyCommitted) {
		t.Fatalf("replayed commit: %v, want ErrAlreadyCommitted", err)
	}
	// A commit built on stale offsets conflicts and writes nothing.
	stale := &store.Commit{Group: "g", Topic: "t", Batch: aggregate(t, event("web-1", "01/May/2026:12:00:05 +0000", "10.0.0.9", "/a", 200, 7)), Now: now,
		Partitions: []store.PartitionOffsets{{Partition: 0, Stored: true, From: 2, To: 4}}}
	if err := s.Commit(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale commit: %v, want ErrConflict", err)
	}
	// A late line for 12:00 on web-1 merges into the existing row.
	late := aggregate(t, event("web-1", "01/May/2026:12:00:59 +0000", "10.0.0.1", probeURI("xyz"), 200, 50))
	c2 := &store.Commit{Group: "g", Topic: "t", Batch: late, Now: now.Add(time.Minute), KeepSamples: 10,
		Partitions: []store.PartitionOffsets{{Partition: 0, Stored: true, From: 3, To: 4}, {Partition: 1, Stored: true, From: 1, To: 1}}}
	if err := s.Commit(ctx, c2); err != nil {
		t.Fatal(err)
	}
	off, err := s.Offsets(ctx, "g", "t")
	if err != nil || off[0] != 4 || off[1] != 1 || len(off) != 2 {
		t.Fatalf("offsets %v %v", off, err)
	}
	if off, _ := s.Offsets(ctx, "other", "t"); len(off) != 0 {
		t.Errorf("offsets leak across groups: %v", off)
	}

	rows, err := s.Minutes(ctx, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows %+v", rows)
	}
	r := rows[0]
	if r.Backend != "web-1" || r.Requests != 3 || r.BytesOut != 1550 || r.BytesIn != 300 ||
		r.Status != [agg.StatusClasses]uint64{0, 0, 2, 0, 0, 1} || r.Visitors != 2 {
		t.Errorf("web-1 12:00 = %+v", r)
	}
	if len(r.TopClients) != 2 || r.TopClients[0].Key != "10.0.0.1" || r.TopClients[0].Count != 2 {
		t.Errorf("top clients %+v", r.TopClients)
	}
	if r.P50 < 19*time.Millisecond || r.P50 > 21*time.Millisecond {
		t.Errorf("p50 %v, want 20ms ±1%%", r.P50)
	}
	if rows[1].Backend != "web-2" || rows[1].Status[4] != 1 || rows[1].TopClients[0].Key != "2001:db8::1" {
		t.Errorf("web-2 = %+v", rows[1])
	}

	p, ok, err := s.Probe(ctx, "xyz")
	if err != nil || !ok || p.Count != 2 || p.Backend != "web-1" ||
		!p.FirstSeen.Equal(time.Date(2026, 5, 1, 12, 0, 2, 0, time.UTC)) || !p.LastSeen.Equal(time.Date(2026, 5, 1, 12, 0, 59, 0, time.UTC)) {
		t.Errorf("probe %+v %v %v", p, ok, err)
	}
	if _, ok, _ := s.Probe(ctx, "nope"); ok {
		t.Error("unknown probe found")
	}

	rej, err := s.RejectCounts(ctx, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil || rej[agg.RejectMismatch] != 1 || len(rej) != 1 {
		t.Errorf("rejects %v %v", rej, err)
	}
	smp, err := s.RejectSamples(ctx, 10)
	if err != nil || len(smp) != 1 || string(smp[0].Input) != "garbage line" || smp[0].Kind != agg.RejectMismatch {
		t.Errorf("samples %+v %v", smp, err)
	}

	bw, err := s.Bandwidth(ctx, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil || len(bw) != 2 || bw[0].BytesOut != 1550 || bw[1].BytesOut != 300 ||
		!bw[0].Start.Equal(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("bandwidth %+v %v", bw, err)
	}

	merged, err := s.Merged(ctx, now.Add(-time.Hour), now.Add(time.Hour), "")
	if err != nil || merged.Requests != 4 || merged.Visitors.Estimate() != 3 {
		t.Errorf("merged %+v %v", merged, err)
	}
}

func TestRejectSamplesBounded(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		b := aggregate(t, fmt.Sprintf("bad %d a", i), fmt.Sprintf("bad %d b", i), fmt.Sprintf("bad %d c", i))
		c := &store.Commit{Group: "g", Topic: "t", Batch: b, Now: time.Now(), KeepSamples: 5,
			Partitions: []store.PartitionOffsets{{Partition: 0, Stored: i > 0, From: int64(3 * i), To: int64(3*i + 3)}}}
		if err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	smp, err := s.RejectSamples(ctx, 100)
	if err != nil || len(smp) != 5 || string(smp[0].Input) != "bad 3 c" {
		t.Fatalf("samples %d %v (%v)", len(smp), err, smp)
	}
	rej, _ := s.RejectCounts(ctx, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if rej[agg.RejectMismatch] != 12 {
		t.Errorf("rejects %v, want 12", rej)
	}
}

// TestMonthlyPercentile stores a month of samples and bills it.
func TestMonthlyPercentile(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	month := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC) // 28 days: 8,064 slots, 403 dropped
	// web-1 sends 1,000 bytes per 5 minutes in every slot but 500, where it
	// sends 3,000 + i. web-2 sends 2,000 in the first 1,000 slots only.
	tx, err := s.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	var vals []string
	for i := 0; i < 8064; i++ {
		at := month.Add(time.Duration(i) * agg.SampleInterval).Format("2006-01-02 15:04:05")
		out := 1000
		if i%16 == 3 && i/16 < 500 {
			out = 3000 + i/16
		}
		vals = append(vals, fmt.Sprintf("('%s', 'web-1', %d, 0, 1)", at, out))
		if i < 1000 {
			vals = append(vals, fmt.Sprintf("('%s', 'web-2', 2000, 0, 1)", at))
		}
	}
	for len(vals) > 0 {
		n := min(len(vals), 2000)
		if _, err := tx.Exec(`INSERT INTO bandwidth_5m (bucket, backend, bytes_out, bytes_in, requests) VALUES ` + strings.Join(vals[:n], ",")); err != nil {
			t.Fatal(err)
		}
		vals = vals[n:]
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	bill, err := s.MonthlyPercentile(ctx, month.Add(100*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	// web-1: 500 bursts 3000..3499; dropping the top 403 leaves 97: the
	// billed one is 3096 bytes per 5 minutes.
	if want := agg.BitsPerSecond(3096); bill.PerBackend["web-1"] != want {
		t.Errorf("web-1 %v, want %v", bill.PerBackend["web-1"], want)
	}
	// web-2 is idle in 7,064 slots: billed 2,000 only if more than 403 of
	// the busy 1,000 remain, which they do.
	if want := agg.BitsPerSecond(2000); bill.PerBackend["web-2"] != want {
		t.Errorf("web-2 %v, want %v", bill.PerBackend["web-2"], want)
	}
	// Total: slots with both busy are 3000 (1000+2000), with a web-1 burst
	// inside the first 1000 slots 5000+k (k < 63: 63 of the bursts), bursts
	// after that 3000+k. Sorted from the top: 63 of 5000+k, then 437 of
	// 3063..3499, then 3000s. Dropping 403: 63 + 340 bursts 3160..3499 are
	// dropped, the billed one is 3159.
	if want := agg.BitsPerSecond(3159); bill.Total != want {
		t.Errorf("total %v, want %v", bill.Total, want)
	}
	if bill.Slots != 8064 {
		t.Errorf("slots %d", bill.Slots)
	}
}

func TestRetention(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO bandwidth_5m VALUES ('2025-04-30 23:55:00', 'w', 1, 1, 1), ('2025-05-01 00:00:00', 'w', 1, 1, 1)`,
		`INSERT INTO rejects_minute VALUES ('2026-06-07 11:59:00', 'value', 1), ('2026-06-08 12:00:00', 'value', 1)`,
		// A resolved alert older than the billing months goes with its
		// notice; a recent one and a firing one stay.
		`INSERT INTO alerts (rule, scope, state, open_key, started_at, ended_at, value, baseline, last_value, updated_at) VALUES
		('no_data', '', 'resolved', NULL, '2025-04-30 10:00:00', '2025-04-30 11:00:00', 0, 9, 9, '2025-04-30 11:00:00'),
		('no_data', '', 'resolved', NULL, '2025-05-02 10:00:00', '2025-05-02 11:00:00', 0, 9, 9, '2025-05-02 11:00:00'),
		('no_data', '', 'firing', 'no_data/', '2025-04-01 10:00:00', NULL, 0, 9, 9, '2025-04-01 11:00:00')`,
		`INSERT INTO alert_notices VALUES (1, 'webhook', 'resolved', '2025-04-30 11:01:00', 1), (2, 'webhook', 'resolved', '2025-05-02 11:01:00', 1)`,
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	old := aggregate(t, event("w", "07/Jun/2026:11:59:00 +0000", "10.0.0.1", probeURI("old"), 200, 1),
		event("w", "08/Jun/2026:12:00:00 +0000", "10.0.0.1", probeURI("new"), 200, 1))
	if err := s.Commit(ctx, &store.Commit{Group: "g", Topic: "t", Batch: old, Now: now,
		Partitions: []store.PartitionOffsets{{Partition: 0, To: 2}}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Retain(ctx, now, 7, 13)
	if err != nil {
		t.Fatal(err)
	}
	// One each of: minute, probe, reject count, bandwidth sample (May 2025,
	// 13 whole months before June 2026, is kept; April 2025 is not),
	// resolved alert, notice; the hour counters and the hour and day top
	// summaries of the old minute.
	if n != 9 {
		t.Errorf("deleted %d rows, want 9", n)
	}
	var alerts, notices int
	if err := s.DB().QueryRow(`SELECT (SELECT COUNT(*) FROM alerts), (SELECT COUNT(*) FROM alert_notices)`).Scan(&alerts, &notices); err != nil || alerts != 2 || notices != 1 {
		t.Errorf("%d alerts and %d notices left (%v), want 2 and 1", alerts, notices, err)
	}
	rows, _ := s.Minutes(ctx, now.AddDate(0, -1, 0), now)
	if len(rows) != 1 || !rows[0].Minute.Equal(time.Date(2026, 6, 8, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("minutes left %+v", rows)
	}
	if _, ok, _ := s.Probe(ctx, "old"); ok {
		t.Error("old probe kept")
	}
	bw, _ := s.Bandwidth(ctx, time.Time{}, now)
	if len(bw) != 3 || !bw[0].Start.Equal(time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC)) {
		// then the commit's own two June 2026 samples
		t.Errorf("bandwidth left %+v", bw)
	}
}

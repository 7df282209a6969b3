package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/store"
)

// TestTopListsOverRanges: lines over three days committed in several
// commits (late lines added to existing hours and days), and minutes
// stored before the summaries existed (backfilled); the top lists of
// ranges cut anywhere — inside a minute's hour, across hours and days —
// are the exact counts of the lines in them (few keys: the summaries are
// exact).
func TestTopListsOverRanges(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	start := time.Date(2026, 5, 1, 22, 17, 0, 0, time.UTC)
	type line struct {
		at  time.Time
		uri string
	}
	var lines []line
	for i := range 3000 {
		at := start.Add(time.Duration(i) * 83 * time.Second)
		lines = append(lines, line{at, fmt.Sprintf("/p%d", i%7*(i%3))})
	}
	const layout = "02/Jan/2006:15:04:05 -0700"
	commit := func(part []line, from int64) {
		var evs []string
		for _, l := range part {
			evs = append(evs, event("web-1", l.at.Format(layout), "10.0.0.1", l.uri, 200, 10))
		}
		c := &store.Commit{Group: "g", Topic: "t", Batch: aggregate(t, evs...), Now: time.Now(),
			Partitions: []store.PartitionOffsets{{Partition: 0, Stored: from > 0, From: from, To: from + int64(len(part))}}}
		if err := s.Commit(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	// Every third line first, then the rest: the second commits add to
	// hours and days that have summaries already.
	var first, rest []line
	for i, l := range lines[:2000] {
		if i%3 == 0 {
			first = append(first, l)
		} else {
			rest = append(rest, l)
		}
	}
	commit(first, 0)
	commit(rest[:700], int64(len(first)))
	commit(rest[700:], int64(len(first)+700))
	// The last 1000 lines' minutes stored without their summaries, as
	// before migration 4.
	commit(lines[2000:], 2000)
	if _, err := s.DB().Exec(`DELETE FROM traffic_top WHERE start >= ?`, lines[2000].at.Truncate(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.BackfillTop(ctx); err != nil || n == 0 {
		t.Fatalf("backfill made %d summaries (%v)", n, err)
	}
	if n, err := s.BackfillTop(ctx); err != nil || n != 0 {
		t.Fatalf("a second backfill made %d summaries (%v), want none", n, err)
	}

	end := lines[len(lines)-1].at.Add(time.Minute)
	// The overview's buckets of whole hours (from the hour counters, the
	// last partial hour from the minutes) are the minutes' sums.
	minutes, err := s.Minutes(ctx, start, end)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []time.Duration{time.Hour, 3 * time.Hour, 6 * time.Hour, 15 * time.Minute} {
		from := start.Truncate(step)
		buckets, err := s.Buckets(ctx, from, end, step)
		if err != nil {
			t.Fatal(err)
		}
		got, want := map[int][2]uint64{}, map[int][2]uint64{}
		for _, b := range buckets {
			g := got[b.Index]
			got[b.Index] = [2]uint64{g[0] + b.Requests, g[1] + b.BytesOut}
		}
		for _, m := range minutes {
			i := int(m.Minute.Sub(from) / step)
			w := want[i]
			want[i] = [2]uint64{w[0] + m.Requests, w[1] + m.BytesOut}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("buckets of %v: %v, want %v", step, got, want)
		}
	}

	for _, r := range []struct{ from, to time.Time }{
		{start, end},
		{start.Add(37 * time.Minute), end.Add(-95 * time.Minute)},
		{time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 3, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 5, 2, 5, 3, 0, 0, time.UTC), time.Date(2026, 5, 2, 5, 40, 0, 0, time.UTC)},
		{time.Date(2026, 5, 2, 23, 59, 0, 0, time.UTC), time.Date(2026, 5, 4, 0, 1, 0, 0, time.UTC)},
	} {
		want := map[string]uint64{}
		for _, l := range lines {
			if m := l.at.Truncate(time.Minute); !m.Before(r.from) && m.Before(r.to) {
				want[l.uri]++
			}
		}
		uris, clients, err := s.TopLists(ctx, r.from, r.to, 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]uint64{}
		for _, e := range uris {
			got[e.Key] = e.Count
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%v to %v: uris %v, want %v", r.from, r.to, got, want)
		}
		var all uint64
		for _, n := range want {
			all += n
		}
		if all > 0 && (len(clients) != 1 || clients[0] != (agg.TopEntry{Key: "10.0.0.1", Count: all})) {
			t.Errorf("%v to %v: clients %v, want 10.0.0.1 with %d", r.from, r.to, clients, all)
		}
	}
}

package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
)

// Bucket is the sum of the minutes of one backend in one time bucket.
type Bucket struct {
	Index    int // bucket number from the range's start
	Backend  string
	Requests uint64
	BytesOut uint64
	BytesIn  uint64
	Status   [agg.StatusClasses]uint64 // 0 other, 1..5 = 1xx..5xx
}

// The bucketing is done by the server so that a week of minutes (30,000
// rows for 3 backends) leaves it as a few hundred rows. The covering index
// holds every column read: the optimizer prefers the primary key's range
// (same prefix), which drags the wide rows along, hence FORCE INDEX (same
// syntax in MySQL 8 and MariaDB).
const qBuckets = `SELECT TIMESTAMPDIFF(MINUTE, ?, minute) DIV ? AS b, backend,
SUM(requests), SUM(bytes_out), SUM(bytes_in),
SUM(status_1xx), SUM(status_2xx), SUM(status_3xx), SUM(status_4xx), SUM(status_5xx), SUM(status_other)
FROM traffic_minute FORCE INDEX (traffic_minute_overview) WHERE minute >= ? AND minute < ?
GROUP BY b, backend ORDER BY b, backend`

// Buckets returns the minutes in [from, to) summed per backend over
// buckets of step (a whole number of minutes) counted from from.
func (s *Store) Buckets(ctx context.Context, from, to time.Time, step time.Duration) ([]Bucket, error) {
	mins := int(step / time.Minute)
	if mins < 1 {
		mins = 1
	}
	rows, err := s.db.QueryContext(ctx, qBuckets, from.UTC(), mins, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read buckets: %w", err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		var b Bucket
		st := &b.Status
		if err := rows.Scan(&b.Index, &b.Backend, &b.Requests, &b.BytesOut, &b.BytesIn,
			&st[1], &st[2], &st[3], &st[4], &st[5], &st[0]); err != nil {
			return nil, fmt.Errorf("read buckets: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read buckets: %w", err)
	}
	return out, nil
}

const qTopLists = `SELECT top_uris, top_clients FROM traffic_minute WHERE minute >= ? AND minute < ?`

// TopLists merges the top URIs and client addresses of the minutes in
// [from, to), all backends, and returns the n most frequent of each. The
// counts are those of the per-minute summaries (agg.TopK): exact for keys
// frequent in every minute, upper bounds otherwise.
func (s *Store) TopLists(ctx context.Context, from, to time.Time, n int) (uris, clients []agg.TopEntry, err error) {
	rows, err := s.db.QueryContext(ctx, qTopLists, from.UTC(), to.UTC())
	if err != nil {
		return nil, nil, fmt.Errorf("read top lists: %w", err)
	}
	defer rows.Close()
	// Sums, not a bounded summary: a range's minutes track a few thousand
	// keys at most.
	su, sc := map[string]uint64{}, map[string]uint64{}
	var eu, ec []agg.TopEntry
	for rows.Next() {
		var u, c []byte
		if err := rows.Scan(&u, &c); err != nil {
			return nil, nil, fmt.Errorf("read top lists: %w", err)
		}
		eu, ec = eu[:0], ec[:0]
		if err := json.Unmarshal(u, &eu); err != nil {
			return nil, nil, fmt.Errorf("read top lists: uris: %w", err)
		}
		if err := json.Unmarshal(c, &ec); err != nil {
			return nil, nil, fmt.Errorf("read top lists: clients: %w", err)
		}
		for _, e := range eu {
			su[e.Key] += e.Count
		}
		for _, e := range ec {
			sc[e.Key] += e.Count
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read top lists: %w", err)
	}
	return topOf(su, n), topOf(sc, n), nil
}

func topOf(m map[string]uint64, n int) []agg.TopEntry {
	out := make([]agg.TopEntry, 0, len(m))
	for k, v := range m {
		out = append(out, agg.TopEntry{Key: k, Count: v})
	}
	sortTop(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func sortTop(e []agg.TopEntry) {
	slices.SortFunc(e, func(a, b agg.TopEntry) int {
		if a.Count != b.Count {
			return cmp.Compare(b.Count, a.Count)
		}
		return strings.Compare(a.Key, b.Key)
	})
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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
// buckets of step (a whole number of minutes) counted from from; a bucket
// and backend may come in two parts, to be added up. Buckets
// of whole hours starting on hours are summed from the hour counters, the
// range's last, partial hour from its minutes: weeks of data are a few
// thousand rows, not a quarter million.
func (s *Store) Buckets(ctx context.Context, from, to time.Time, step time.Duration) ([]Bucket, error) {
	from, to = from.UTC(), to.UTC()
	mins := int(step / time.Minute)
	if mins < 1 {
		mins = 1
	}
	if step%time.Hour != 0 || !from.Truncate(time.Hour).Equal(from) {
		return s.buckets(ctx, qBuckets, from, mins, from, to)
	}
	cut := to.Truncate(time.Hour)
	out, err := s.buckets(ctx, qHourBuckets, from, mins, from, cut)
	if err != nil || !cut.Before(to) {
		return out, err
	}
	tail, err := s.buckets(ctx, qBuckets, from, mins, cut, to)
	if err != nil {
		return nil, err
	}
	// A bucket may come twice (hours and minutes): callers add them up.
	out = append(out, tail...)
	return out, nil
}

func (s *Store) buckets(ctx context.Context, query string, origin time.Time, mins int, from, to time.Time) ([]Bucket, error) {
	rows, err := s.db.QueryContext(ctx, query, origin, mins, from, to)
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

// Reading the top lists of a range: its whole UTC days from the day
// summaries, the whole hours left from the hour summaries, the minutes
// left (under two hours) from the minutes; each row decoded and merged
// into a bounded summary one at a time. So whatever the range (62 days at
// most) and however many distinct keys visitors made, a request reads a
// few hundred rows of bounded lists and holds TopMergeCapacity keys.
const (
	qTopMinutes = `SELECT top_uris, top_clients FROM traffic_minute WHERE (minute >= ? AND minute < ?) OR (minute >= ? AND minute < ?)`
	qTopHours   = `SELECT top_uris, top_clients FROM traffic_top WHERE period = 'h' AND ((start >= ? AND start < ?) OR (start >= ? AND start < ?))`
	qTopDays    = `SELECT top_uris, top_clients FROM traffic_top WHERE period = 'd' AND start >= ? AND start < ?`
)

// TopMergeCapacity is how many keys a range's merge tracks: well above
// the 100 a top list shows, so the keys shown are those of the summaries.
const TopMergeCapacity = 1000

// span is a half-open time interval.
type span struct{ from, to time.Time }

// cover splits [from, to) into whole days, the whole hours around them and
// the minutes around those (each side's pair may be empty).
func cover(from, to time.Time) (minutes, hours [2]span, days span) {
	ceil := func(t time.Time, d time.Duration) time.Time {
		if u := t.Truncate(d); u.Before(t) {
			return u.Add(d)
		}
		return t
	}
	hs, he := ceil(from, time.Hour), to.Truncate(time.Hour)
	if !hs.Before(he) {
		minutes[0] = span{from, to}
		return
	}
	minutes = [2]span{{from, hs}, {he, to}}
	ds, de := ceil(hs, 24*time.Hour), he.Truncate(24*time.Hour)
	if !ds.Before(de) {
		hours[0] = span{hs, he}
		return
	}
	return minutes, [2]span{{hs, ds}, {de, he}}, span{ds, de}
}

// TopLists returns the n most frequent URIs and client addresses of
// [from, to) (whole minutes), all backends. Counts come from the
// space-saving summaries (agg.TopK): exact for keys frequent throughout,
// upper bounds otherwise.
func (s *Store) TopLists(ctx context.Context, from, to time.Time, n int) (uris, clients []agg.TopEntry, err error) {
	from, to = from.UTC(), to.UTC()
	minutes, hours, days := cover(from, to)
	su, sc := agg.NewTopK(TopMergeCapacity), agg.NewTopK(TopMergeCapacity)
	for _, q := range []struct {
		query string
		args  []any
	}{
		{qTopDays, []any{days.from, days.to}},
		{qTopHours, []any{hours[0].from, hours[0].to, hours[1].from, hours[1].to}},
		{qTopMinutes, []any{minutes[0].from, minutes[0].to, minutes[1].from, minutes[1].to}},
	} {
		if err := mergeTopRows(ctx, s.db, q.query, q.args, su, sc); err != nil {
			return nil, nil, fmt.Errorf("read top lists: %w", err)
		}
	}
	return topOf(su, n), topOf(sc, n), nil
}

func mergeTopRows(ctx context.Context, db *sql.DB, query string, args []any, su, sc *agg.TopK) error {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var u, c []byte
	var list []agg.TopEntry
	for rows.Next() {
		if err := rows.Scan(&u, &c); err != nil {
			return err
		}
		for _, m := range []struct {
			data []byte
			into *agg.TopK
		}{{u, su}, {c, sc}} {
			list = list[:0]
			if err := json.Unmarshal(m.data, &list); err != nil {
				return fmt.Errorf("decode top list: %w", err)
			}
			m.into.AddEntries(list)
		}
	}
	return rows.Err()
}

func topOf(t *agg.TopK, n int) []agg.TopEntry {
	out := t.Top(n)
	for i := range out {
		out[i].Err = 0
	}
	return out
}

package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
)

const (
	qAddHour = `UPDATE traffic_hour SET requests = requests + ?, bytes_out = bytes_out + ?, bytes_in = bytes_in + ?,
status_1xx = status_1xx + ?, status_2xx = status_2xx + ?, status_3xx = status_3xx + ?,
status_4xx = status_4xx + ?, status_5xx = status_5xx + ?, status_other = status_other + ?
WHERE hour = ? AND backend = ?`
	// A missing hour is summed from its stored minutes, which hold the
	// batch by then (and minutes from before migration 4).
	qInsertHour = `INSERT INTO traffic_hour (hour, backend, requests, bytes_out, bytes_in,
status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, status_other)
SELECT ?, ?, COALESCE(SUM(requests), 0), COALESCE(SUM(bytes_out), 0), COALESCE(SUM(bytes_in), 0),
COALESCE(SUM(status_1xx), 0), COALESCE(SUM(status_2xx), 0), COALESCE(SUM(status_3xx), 0),
COALESCE(SUM(status_4xx), 0), COALESCE(SUM(status_5xx), 0), COALESCE(SUM(status_other), 0)
FROM traffic_minute WHERE backend = ? AND minute >= ? AND minute < ?`
)

type hourKey struct {
	hour    int64
	backend string
}

// writeHours adds the batch's counters to the hours, after writeMinutes.
func writeHours(ctx context.Context, tx *sql.Tx, b *agg.Batch) error {
	sums := map[hourKey]*agg.Minute{}
	var keys []hourKey
	for k, m := range b.Minutes {
		hk := hourKey{k.Minute - ((k.Minute%3600)+3600)%3600, k.Backend}
		s := sums[hk]
		if s == nil {
			s = &agg.Minute{}
			sums[hk] = s
			keys = append(keys, hk)
		}
		s.Requests += m.Requests
		s.BytesOut += m.BytesOut
		s.BytesIn += m.BytesIn
		for i := range s.Status {
			s.Status[i] += m.Status[i]
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].hour != keys[j].hour {
			return keys[i].hour < keys[j].hour
		}
		return keys[i].backend < keys[j].backend
	})
	for _, k := range keys {
		s, at := sums[k], time.Unix(k.hour, 0).UTC()
		st := s.Status
		res, err := tx.ExecContext(ctx, qAddHour, s.Requests, s.BytesOut, s.BytesIn, st[1], st[2], st[3], st[4], st[5], st[0], at, k.backend)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n == 0 {
				_, err = tx.ExecContext(ctx, qInsertHour, at, k.backend, k.backend, at, at.Add(time.Hour))
			}
		}
		if err != nil {
			return fmt.Errorf("commit: hour %s %s: %w", at.Format(time.RFC3339), k.backend, err)
		}
	}
	return nil
}

// qMissingHours lists the hours of stored minutes without counters.
const qMissingHours = `SELECT m.h, m.backend FROM (
SELECT DISTINCT DATE_FORMAT(minute, '%Y-%m-%d %H:00:00') AS h, backend FROM traffic_minute
) m LEFT JOIN traffic_hour t ON t.hour = m.h AND t.backend = m.backend
WHERE t.hour IS NULL`

// backfillHours sums the hours that minutes stored before migration 4
// lack, each in a statement of its own (a commit that inserted the hour
// first wins: its sum is complete).
func (s *Store) backfillHours(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, qMissingHours)
	if err != nil {
		return 0, err
	}
	var missing []topKey
	for rows.Next() {
		var h string
		var k topKey
		if err := rows.Scan(&h, &k.backend); err != nil {
			rows.Close()
			return 0, err
		}
		if k.start, err = time.ParseInLocation(time.DateTime, h, time.UTC); err != nil {
			rows.Close()
			return 0, err
		}
		missing = append(missing, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	made := 0
	for _, k := range missing {
		_, err := s.db.ExecContext(ctx, qInsertHour, k.start, k.backend, k.backend, k.start, k.start.Add(time.Hour))
		if isDuplicate(err) {
			continue
		}
		if err != nil {
			return made, err
		}
		made++
	}
	return made, nil
}

// The overview's buckets from the hours, for buckets of whole hours.
const qHourBuckets = `SELECT TIMESTAMPDIFF(MINUTE, ?, hour) DIV ? AS b, backend,
SUM(requests), SUM(bytes_out), SUM(bytes_in),
SUM(status_1xx), SUM(status_2xx), SUM(status_3xx), SUM(status_4xx), SUM(status_5xx), SUM(status_other)
FROM traffic_hour WHERE hour >= ? AND hour < ?
GROUP BY b, backend ORDER BY b, backend`

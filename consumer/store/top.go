package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
)

// Rollup periods of traffic_top.
const (
	periodHour = "h"
	periodDay  = "d"
)

var periodWidth = map[string]time.Duration{periodHour: time.Hour, periodDay: 24 * time.Hour}

type topKey struct {
	period  string
	start   time.Time
	backend string
}

const (
	qSelectTop = `SELECT top_uris, top_clients FROM traffic_top WHERE period = ? AND start = ? AND backend = ? FOR UPDATE`
	qUpdateTop = `UPDATE traffic_top SET top_uris = ?, top_clients = ?, updated_at = ? WHERE period = ? AND start = ? AND backend = ?`
	qInsertTop = `INSERT INTO traffic_top (period, start, backend, top_uris, top_clients, updated_at) VALUES (?, ?, ?, ?, ?, ?)`
	// The stored minutes of one period and backend, to build its summary.
	qTopOfMinutes = `SELECT top_uris, top_clients FROM traffic_minute WHERE backend = ? AND minute >= ? AND minute < ?`
)

// topSummary is a pair of bounded summaries being merged.
type topSummary struct{ uris, clients *agg.TopK }

func newTopSummary() topSummary {
	return topSummary{agg.NewTopK(agg.TopRollupCapacity), agg.NewTopK(agg.TopRollupCapacity)}
}

// add merges stored lists (JSON) into the summary.
func (t topSummary) add(uris, clients []byte) error {
	u, err := agg.UnmarshalTopK(uris, agg.TopRollupCapacity)
	if err != nil {
		return fmt.Errorf("uris: %w", err)
	}
	c, err := agg.UnmarshalTopK(clients, agg.TopRollupCapacity)
	if err != nil {
		return fmt.Errorf("clients: %w", err)
	}
	t.uris.Merge(u)
	t.clients.Merge(c)
	return nil
}

func (t topSummary) encode() (uris, clients []byte, err error) {
	if uris, err = t.uris.MarshalTop(agg.TopRollupStored); err != nil {
		return nil, nil, err
	}
	if clients, err = t.clients.MarshalTop(agg.TopRollupStored); err != nil {
		return nil, nil, err
	}
	return uris, clients, nil
}

// writeTop keeps the hour and day summaries of the batch's minutes, after
// writeMinutes in the same transaction: an existing summary gets the
// batch's lists added; a missing one is built from the period's stored
// minutes, which hold the batch by then (so minutes stored before the
// summaries existed count too). Rows are locked in key order, as minutes.
func writeTop(ctx context.Context, tx *sql.Tx, b *agg.Batch, now time.Time) error {
	deltas := map[topKey]topSummary{}
	for k, m := range b.Minutes {
		for period, w := range periodWidth {
			tk := topKey{period, k.Time().Truncate(w), k.Backend}
			d, ok := deltas[tk]
			if !ok {
				d = newTopSummary()
				deltas[tk] = d
			}
			d.uris.Merge(m.TopURIs)
			d.clients.Merge(m.TopClients)
		}
	}
	keys := make([]topKey, 0, len(deltas))
	for k := range deltas {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.period != b.period {
			return a.period < b.period
		}
		if !a.start.Equal(b.start) {
			return a.start.Before(b.start)
		}
		return a.backend < b.backend
	})
	for _, k := range keys {
		if err := writeTopRow(ctx, tx, k, deltas[k], now); err != nil {
			return fmt.Errorf("commit: top lists %s %s %s: %w", k.period, k.start.Format(time.RFC3339), k.backend, err)
		}
	}
	return nil
}

func writeTopRow(ctx context.Context, tx *sql.Tx, k topKey, delta topSummary, now time.Time) error {
	var uris, clients []byte
	err := tx.QueryRowContext(ctx, qSelectTop, k.period, k.start, k.backend).Scan(&uris, &clients)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		sum, err := summaryOfMinutes(ctx, tx, k)
		if err != nil {
			return err
		}
		u, c, err := sum.encode()
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, qInsertTop, k.period, k.start, k.backend, u, c, now)
		return err
	case err != nil:
		return err
	}
	sum := newTopSummary()
	if err := sum.add(uris, clients); err != nil {
		// As for minutes: an unreadable summary must not block commits;
		// it restarts from the minutes.
		if sum, err = summaryOfMinutes(ctx, tx, k); err != nil {
			return err
		}
	} else {
		sum.uris.Merge(delta.uris)
		sum.clients.Merge(delta.clients)
	}
	u, c, err := sum.encode()
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, qUpdateTop, u, c, now, k.period, k.start, k.backend)
	return err
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// summaryOfMinutes merges the stored minutes of a period and backend.
func summaryOfMinutes(ctx context.Context, q querier, k topKey) (topSummary, error) {
	sum := newTopSummary()
	rows, err := q.QueryContext(ctx, qTopOfMinutes, k.backend, k.start, k.start.Add(periodWidth[k.period]))
	if err != nil {
		return sum, err
	}
	defer rows.Close()
	for rows.Next() {
		var u, c []byte
		if err := rows.Scan(&u, &c); err != nil {
			return sum, err
		}
		// A minute whose lists do not decode is left out, not fatal.
		_ = sum.add(u, c)
	}
	return sum, rows.Err()
}

// qMissingTop lists the hours and days of stored minutes that have no
// summary yet (minutes stored before migration 4).
const qMissingTop = `SELECT m.p, m.s, m.backend FROM (
SELECT DISTINCT 'h' AS p, DATE_FORMAT(minute, '%Y-%m-%d %H:00:00') AS s, backend FROM traffic_minute
UNION ALL
SELECT DISTINCT 'd' AS p, DATE_FORMAT(minute, '%Y-%m-%d 00:00:00') AS s, backend FROM traffic_minute
) m LEFT JOIN traffic_top t ON t.period = m.p AND t.start = m.s AND t.backend = m.backend
WHERE t.period IS NULL`

// BackfillTop builds the hour counters and the hour and day summaries
// that minutes stored before they existed lack, each in a transaction of
// its own (a commit that got there first wins; its row is complete). It
// returns how many rows it made.
func (s *Store) BackfillTop(ctx context.Context) (int, error) {
	hours, err := s.backfillHours(ctx)
	if err != nil {
		return hours, fmt.Errorf("backfill hour counters: %w", err)
	}
	made, err := s.backfillTop(ctx)
	return hours + made, err
}

func (s *Store) backfillTop(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, qMissingTop)
	if err != nil {
		return 0, fmt.Errorf("backfill top lists: %w", err)
	}
	var missing []topKey
	for rows.Next() {
		var k topKey
		var start string
		if err := rows.Scan(&k.period, &start, &k.backend); err != nil {
			rows.Close()
			return 0, fmt.Errorf("backfill top lists: %w", err)
		}
		if k.start, err = time.ParseInLocation(time.DateTime, start, time.UTC); err != nil {
			rows.Close()
			return 0, fmt.Errorf("backfill top lists: %w", err)
		}
		missing = append(missing, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("backfill top lists: %w", err)
	}
	made := 0
	for _, k := range missing {
		sum, err := summaryOfMinutes(ctx, s.db, k)
		if err != nil {
			return made, fmt.Errorf("backfill top lists: %w", err)
		}
		u, c, err := sum.encode()
		if err != nil {
			return made, fmt.Errorf("backfill top lists: %w", err)
		}
		_, err = s.db.ExecContext(ctx, qInsertTop, k.period, k.start, k.backend, u, c, time.Now().UTC())
		if isDuplicate(err) {
			continue
		}
		if err != nil {
			return made, fmt.Errorf("backfill top lists: %w", err)
		}
		made++
	}
	return made, nil
}

package store

import (
	"context"
	"fmt"
	"time"
)

// retentionChunk bounds one DELETE, so that pruning a large backlog holds
// locks briefly and does not bloat the undo log.
const retentionChunk = 5000

// Retain deletes minute rows, probes and reject counts older than
// minuteDays, and bandwidth samples, resolved alerts and sent notices older
// than bandwidthMonths, and returns the number of rows deleted.
func (s *Store) Retain(ctx context.Context, now time.Time, minuteDays, bandwidthMonths int) (int64, error) {
	now = now.UTC()
	minuteCut := now.AddDate(0, 0, -minuteDays).Truncate(time.Minute)
	// Whole months: a sample of the oldest kept month is never cut off.
	y, m, _ := now.Date()
	bwCut := time.Date(y, m-time.Month(bandwidthMonths), 1, 0, 0, 0, 0, time.UTC)
	var total int64
	for _, d := range []struct {
		query string
		cut   time.Time
	}{
		{`DELETE FROM traffic_minute WHERE minute < ? LIMIT ?`, minuteCut},
		// Summaries go with the last of their minutes.
		{`DELETE FROM traffic_top WHERE period = 'h' AND start < ? LIMIT ?`, minuteCut.Add(-time.Hour)},
		{`DELETE FROM traffic_hour WHERE hour < ? LIMIT ?`, minuteCut.Add(-time.Hour)},
		{`DELETE FROM traffic_top WHERE period = 'd' AND start < ? LIMIT ?`, minuteCut.Add(-24 * time.Hour)},
		{`DELETE FROM probes WHERE first_seen < ? LIMIT ?`, minuteCut},
		{`DELETE FROM rejects_minute WHERE minute < ? LIMIT ?`, minuteCut},
		{`DELETE FROM bandwidth_5m WHERE bucket < ? LIMIT ?`, bwCut},
		// Alert history is small: kept as long as the billing samples.
		{`DELETE FROM alerts WHERE state = 'resolved' AND ended_at < ? LIMIT ?`, bwCut},
		{`DELETE FROM alert_notices WHERE sent_at < ? LIMIT ?`, bwCut},
	} {
		for {
			res, err := s.db.ExecContext(ctx, d.query, d.cut, retentionChunk)
			if err != nil {
				return total, fmt.Errorf("retention: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, fmt.Errorf("retention: %w", err)
			}
			total += n
			if n < retentionChunk {
				break
			}
		}
	}
	return total, nil
}

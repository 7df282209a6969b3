package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/trafficlab/trafficlab/consumer/agg"
)

const (
	qAddRejects    = `UPDATE rejects_minute SET line_count = line_count + ? WHERE minute = ? AND kind = ?`
	qInsertRejects = `INSERT INTO rejects_minute (minute, kind, line_count) VALUES (?, ?, ?)`
	qInsertSample  = `INSERT INTO reject_samples (seen_at, kind, reason, input) VALUES `
	// The id below which samples are dropped: the (keep)th newest.
	qSampleCutoff = `SELECT id FROM reject_samples ORDER BY id DESC LIMIT 1 OFFSET ?`
	qTrimSamples  = `DELETE FROM reject_samples WHERE id < ?`
)

// writeRejects counts the batch's rejected lines under the minute they were
// consumed in (a rejected line may have no time of its own) and keeps its
// samples, trimming the table to keep rows.
func writeRejects(ctx context.Context, tx *sql.Tx, b *agg.Batch, now time.Time, keep int) error {
	minute := now.Truncate(time.Minute)
	kinds := make([]string, 0, len(b.Rejects))
	for k := range b.Rejects {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, kind := range kinds {
		n := b.Rejects[kind]
		if n == 0 {
			continue
		}
		if err := addOrInsert(ctx, tx, qAddRejects, []any{n, minute, kind}, qInsertRejects, []any{minute, kind, n}); err != nil {
			return fmt.Errorf("commit: rejects %s: %w", kind, err)
		}
	}
	samples := b.Samples
	if len(samples) > keep {
		samples = samples[:keep]
	}
	if len(samples) == 0 {
		return nil
	}
	q := qInsertSample + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(samples)), ", ")
	args := make([]any, 0, 4*len(samples))
	for _, s := range samples {
		args = append(args, now, s.Kind, truncUTF8(s.Err, 512), s.Input)
	}
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("commit: reject samples: %w", err)
	}
	var cutoff uint64
	err := tx.QueryRowContext(ctx, qSampleCutoff, keep-1).Scan(&cutoff)
	switch {
	case err == sql.ErrNoRows:
		return nil // fewer than keep rows
	case err != nil:
		return fmt.Errorf("commit: trim reject samples: %w", err)
	}
	if _, err := tx.ExecContext(ctx, qTrimSamples, cutoff); err != nil {
		return fmt.Errorf("commit: trim reject samples: %w", err)
	}
	return nil
}

// truncUTF8 cuts s to at most n bytes without splitting a character.
func truncUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

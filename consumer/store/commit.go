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

// Commit is one transaction's worth of work: the aggregates of the lines
// [From, To) of each partition, and those offsets.
type Commit struct {
	Group, Topic string
	Partitions   []PartitionOffsets
	Batch        *agg.Batch
	// Now stamps updated_at, stored_at and the reject counts' minute.
	Now time.Time
	// KeepSamples trims reject_samples to this many rows.
	KeepSamples int
}

// ErrAlreadyCommitted says an earlier attempt of the same commit went
// through although it reported an error (the connection died during COMMIT):
// MySQL holds exactly this commit's target offsets. Nothing was written
// again; the caller treats the commit as done.
var ErrAlreadyCommitted = errors.New("this commit was already applied")

// Commit writes c in one transaction. It returns ErrConflict when the
// offsets in MySQL are not c's From offsets (nothing is written),
// ErrAlreadyCommitted when they are already c's To offsets, and any other
// error when the outcome is a failure the caller may retry with the same c.
func (s *Store) Commit(ctx context.Context, c *Commit) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("commit: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // the error that matters is err
		}
	}()
	now := c.Now.UTC()
	// Offsets first: the compare-and-set fails fast on a conflict, and its
	// row locks serialize two consumers racing for the same partitions.
	if err := s.casOffsets(ctx, tx, c, now); err != nil {
		return err
	}
	b := c.Batch
	if b != nil {
		if err := writeMinutes(ctx, tx, b, now); err != nil {
			return err
		}
		if err := writeHours(ctx, tx, b); err != nil {
			return err
		}
		if err := writeTop(ctx, tx, b, now); err != nil {
			return err
		}
		if err := writeBandwidth(ctx, tx, b); err != nil {
			return err
		}
		if err := writeProbes(ctx, tx, b, now); err != nil {
			return err
		}
		if err := writeRejects(ctx, tx, b, now, c.KeepSamples); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

const (
	qCASOffset = `UPDATE kafka_offsets SET next_offset = ?, updated_at = ?
WHERE consumer_group = ? AND topic = ? AND kafka_partition = ? AND next_offset = ?`
	qInsertOffset = `INSERT INTO kafka_offsets (consumer_group, topic, kafka_partition, next_offset, updated_at)
VALUES (?, ?, ?, ?, ?)`
	qOffsetOf = `SELECT next_offset FROM kafka_offsets WHERE consumer_group = ? AND topic = ? AND kafka_partition = ?`
)

func (s *Store) casOffsets(ctx context.Context, tx *sql.Tx, c *Commit, now time.Time) error {
	conflict := false
	for _, p := range c.Partitions {
		if p.Stored && p.From == p.To {
			continue // nothing consumed: the row stays as it is
		}
		if p.Stored {
			res, err := tx.ExecContext(ctx, qCASOffset, p.To, now, c.Group, c.Topic, p.Partition, p.From)
			if err != nil {
				return fmt.Errorf("commit: offset of partition %d: %w", p.Partition, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("commit: offset of partition %d: %w", p.Partition, err)
			}
			if n != 1 {
				conflict = true
				break
			}
			continue
		}
		if _, err := tx.ExecContext(ctx, qInsertOffset, c.Group, c.Topic, p.Partition, p.To, now); err != nil {
			if isDuplicate(err) {
				conflict = true
				break
			}
			return fmt.Errorf("commit: offset of partition %d: %w", p.Partition, err)
		}
	}
	if !conflict {
		return nil
	}
	// Either someone else moved the offsets, or an earlier attempt of this
	// very commit succeeded without us hearing of it. In the second case
	// every partition is at its To.
	for _, p := range c.Partitions {
		if p.Stored && p.From == p.To {
			continue
		}
		var cur int64
		err := tx.QueryRowContext(ctx, qOffsetOf, c.Group, c.Topic, p.Partition).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrConflict
		}
		if err != nil {
			return fmt.Errorf("commit: check offset of partition %d: %w", p.Partition, err)
		}
		if cur != p.To {
			return fmt.Errorf("%w: partition %d is at %d, this commit goes from %d to %d", ErrConflict, p.Partition, cur, p.From, p.To)
		}
	}
	return ErrAlreadyCommitted
}

const (
	qSelectMinute = `SELECT visitors_hll, latency_sketch, top_uris, top_clients
FROM traffic_minute WHERE minute = ? AND backend = ? FOR UPDATE`
	qUpdateMinute = `UPDATE traffic_minute SET
requests = requests + ?, bytes_out = bytes_out + ?, bytes_in = bytes_in + ?,
status_1xx = status_1xx + ?, status_2xx = status_2xx + ?, status_3xx = status_3xx + ?,
status_4xx = status_4xx + ?, status_5xx = status_5xx + ?, status_other = status_other + ?,
visitors = ?, rt_p50 = ?, rt_p95 = ?, rt_p99 = ?,
visitors_hll = ?, latency_sketch = ?, top_uris = ?, top_clients = ?, updated_at = ?
WHERE minute = ? AND backend = ?`
	qInsertMinute = `INSERT INTO traffic_minute (minute, backend, requests, bytes_out, bytes_in,
status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, status_other,
visitors, rt_p50, rt_p95, rt_p99, visitors_hll, latency_sketch, top_uris, top_clients, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// sortedKeys orders a batch's minutes so that two transactions touching the
// same rows lock them in the same order (no deadlock between them).
func sortedKeys(b *agg.Batch) []agg.Key {
	keys := make([]agg.Key, 0, len(b.Minutes))
	for k := range b.Minutes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Minute != keys[j].Minute {
			return keys[i].Minute < keys[j].Minute
		}
		return keys[i].Backend < keys[j].Backend
	})
	return keys
}

func writeMinutes(ctx context.Context, tx *sql.Tx, b *agg.Batch, now time.Time) error {
	for _, k := range sortedKeys(b) {
		add := b.Minutes[k]
		at := k.Time()
		// The counters are added in SQL; the sketches are merged here with
		// the stored ones, read under a row lock.
		merged := agg.NewMinute()
		var hll, lat, uris, clients []byte
		err := tx.QueryRowContext(ctx, qSelectMinute, at, k.Backend).Scan(&hll, &lat, &uris, &clients)
		exists := err == nil
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("commit: read minute %s %s: %w", at.Format(time.RFC3339), k.Backend, err)
		default:
			if err := agg.DecodeMinuteSketches(merged, hll, lat, uris, clients); err != nil {
				// A row this consumer cannot read (corrupted by hand, or
				// written by a newer version) must not block every
				// commit: its sketches restart from this batch, its exact
				// counters are kept.
				merged = agg.NewMinute()
			}
		}
		if err := merged.Merge(add); err != nil {
			return fmt.Errorf("commit: merge minute %s %s: %w", at.Format(time.RFC3339), k.Backend, err)
		}
		vis, err := merged.EncodeVisitors()
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		latency := merged.EncodeLatency()
		topU, err := merged.TopURIs.MarshalTop(agg.TopStored)
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		topC, err := merged.TopClients.MarshalTop(agg.TopStored)
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		p50, p95, p99 := quantileArgs(merged)
		s := add.Status
		if exists {
			_, err = tx.ExecContext(ctx, qUpdateMinute,
				add.Requests, add.BytesOut, add.BytesIn, s[1], s[2], s[3], s[4], s[5], s[0],
				merged.Visitors.Estimate(), p50, p95, p99, vis, latency, topU, topC, now, at, k.Backend)
		} else {
			_, err = tx.ExecContext(ctx, qInsertMinute, at, k.Backend,
				add.Requests, add.BytesOut, add.BytesIn, s[1], s[2], s[3], s[4], s[5], s[0],
				merged.Visitors.Estimate(), p50, p95, p99, vis, latency, topU, topC, now)
		}
		if err != nil {
			return fmt.Errorf("commit: write minute %s %s: %w", at.Format(time.RFC3339), k.Backend, err)
		}
	}
	return nil
}

func quantileArgs(m *agg.Minute) (p50, p95, p99 any) {
	a, b, c, ok := m.Quantiles()
	if !ok {
		return nil, nil, nil
	}
	return a.Seconds(), b.Seconds(), c.Seconds()
}

const (
	qAddBandwidth = `UPDATE bandwidth_5m SET bytes_out = bytes_out + ?, bytes_in = bytes_in + ?, requests = requests + ?
WHERE bucket = ? AND backend = ?`
	qInsertBandwidth = `INSERT INTO bandwidth_5m (bucket, backend, bytes_out, bytes_in, requests) VALUES (?, ?, ?, ?, ?)`
)

type bwKey struct {
	bucket  int64
	backend string
}

// writeBandwidth adds the batch's bytes to the 5-minute samples, which are
// sums of the minutes they contain.
func writeBandwidth(ctx context.Context, tx *sql.Tx, b *agg.Batch) error {
	const width = int64(agg.SampleInterval / time.Second)
	sums := map[bwKey]*[3]uint64{}
	var keys []bwKey
	for _, k := range sortedKeys(b) {
		m := b.Minutes[k]
		bk := bwKey{k.Minute - ((k.Minute%width)+width)%width, k.Backend}
		s := sums[bk]
		if s == nil {
			s = &[3]uint64{}
			sums[bk] = s
			keys = append(keys, bk)
		}
		s[0] += m.BytesOut
		s[1] += m.BytesIn
		s[2] += m.Requests
	}
	for _, k := range keys {
		s := sums[k]
		at := time.Unix(k.bucket, 0).UTC()
		if err := addOrInsert(ctx, tx, qAddBandwidth, []any{s[0], s[1], s[2], at, k.backend},
			qInsertBandwidth, []any{at, k.backend, s[0], s[1], s[2]}); err != nil {
			return fmt.Errorf("commit: bandwidth %s %s: %w", at.Format(time.RFC3339), k.backend, err)
		}
	}
	return nil
}

// addOrInsert runs an additive UPDATE and, when it matched no row, the
// INSERT of the row. A concurrent insert of the same row makes the INSERT
// fail with a duplicate key, which fails the transaction for a retry.
func addOrInsert(ctx context.Context, tx *sql.Tx, update string, uargs []any, insert string, iargs []any) error {
	res, err := tx.ExecContext(ctx, update, uargs...)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	_, err = tx.ExecContext(ctx, insert, iargs...)
	return err
}

const (
	qSelectProbe = `SELECT first_seen, last_seen, backend FROM probes WHERE probe_id = ? FOR UPDATE`
	qUpdateProbe = `UPDATE probes SET request_count = request_count + ?, first_seen = ?, last_seen = ?, backend = ?
WHERE probe_id = ?`
	qInsertProbe = `INSERT INTO probes (probe_id, first_seen, last_seen, backend, request_count, stored_at)
VALUES (?, ?, ?, ?, ?, ?)`
)

func writeProbes(ctx context.Context, tx *sql.Tx, b *agg.Batch, now time.Time) error {
	ids := make([]string, 0, len(b.Probes))
	for id := range b.Probes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := b.Probes[id]
		first := p.FirstSeen.Truncate(time.Second)
		var (
			oldFirst, oldLast time.Time
			backend           string
		)
		err := tx.QueryRowContext(ctx, qSelectProbe, id).Scan(&oldFirst, &oldLast, &backend)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, qInsertProbe, id, first, first, p.Backend, p.Count, now)
		case err == nil:
			// The row keeps the backend of the earliest sighting; both are
			// decided here, from the locked row, not by SET expressions
			// whose evaluation order MySQL and MariaDB may not share.
			newFirst, newLast := oldFirst, oldLast
			if first.Before(oldFirst) {
				newFirst, backend = first, p.Backend
			}
			if first.After(oldLast) {
				newLast = first
			}
			_, err = tx.ExecContext(ctx, qUpdateProbe, p.Count, newFirst, newLast, backend, id)
		}
		if err != nil {
			return fmt.Errorf("commit: probe %s: %w", id, err)
		}
	}
	return nil
}

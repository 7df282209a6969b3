package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
)

// MinuteRow is one stored minute of one backend.
type MinuteRow struct {
	Minute        time.Time
	Backend       string
	Requests      uint64
	BytesOut      uint64
	BytesIn       uint64
	Status        [agg.StatusClasses]uint64 // as agg.Minute.Status: 0 other, 1..5 = 1xx..5xx
	Visitors      uint64
	P50, P95, P99 time.Duration // zero when no request time was logged
	TopURIs       []agg.TopEntry
	TopClients    []agg.TopEntry
}

const qMinutes = `SELECT minute, backend, requests, bytes_out, bytes_in,
status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, status_other,
visitors, rt_p50, rt_p95, rt_p99, top_uris, top_clients
FROM traffic_minute WHERE minute >= ? AND minute < ? ORDER BY minute, backend`

// Minutes returns the stored minutes in [from, to), all backends.
func (s *Store) Minutes(ctx context.Context, from, to time.Time) ([]MinuteRow, error) {
	rows, err := s.db.QueryContext(ctx, qMinutes, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read minutes: %w", err)
	}
	defer rows.Close()
	var out []MinuteRow
	for rows.Next() {
		var r MinuteRow
		var p50, p95, p99 sql.NullFloat64
		var uris, clients []byte
		st := &r.Status
		if err := rows.Scan(&r.Minute, &r.Backend, &r.Requests, &r.BytesOut, &r.BytesIn,
			&st[1], &st[2], &st[3], &st[4], &st[5], &st[0], &r.Visitors, &p50, &p95, &p99, &uris, &clients); err != nil {
			return nil, fmt.Errorf("read minutes: %w", err)
		}
		r.P50, r.P95, r.P99 = seconds(p50), seconds(p95), seconds(p99)
		if err := json.Unmarshal(uris, &r.TopURIs); err != nil {
			return nil, fmt.Errorf("read minutes: top uris: %w", err)
		}
		if err := json.Unmarshal(clients, &r.TopClients); err != nil {
			return nil, fmt.Errorf("read minutes: top clients: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read minutes: %w", err)
	}
	return out, nil
}

func seconds(f sql.NullFloat64) time.Duration {
	if !f.Valid {
		return 0
	}
	return time.Duration(f.Float64 * float64(time.Second)).Round(time.Microsecond)
}

const qMergeMinutes = `SELECT requests, bytes_out, bytes_in,
status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, status_other,
visitors_hll, latency_sketch, top_uris, top_clients
FROM traffic_minute WHERE minute >= ? AND minute < ? AND (? = '' OR backend = ?)`

// Merged returns the minutes in [from, to) of one backend ("" for all of
// them) merged into one: its Visitors estimate the unique clients of the
// whole range, its Latency the percentiles of the whole range.
func (s *Store) Merged(ctx context.Context, from, to time.Time, backend string) (*agg.Minute, error) {
	rows, err := s.db.QueryContext(ctx, qMergeMinutes, from.UTC(), to.UTC(), backend, backend)
	if err != nil {
		return nil, fmt.Errorf("merge minutes: %w", err)
	}
	defer rows.Close()
	sum := agg.NewMinute()
	for rows.Next() {
		m := agg.NewMinute()
		var hll, lat, uris, clients []byte
		st := &m.Status
		if err := rows.Scan(&m.Requests, &m.BytesOut, &m.BytesIn, &st[1], &st[2], &st[3], &st[4], &st[5], &st[0],
			&hll, &lat, &uris, &clients); err != nil {
			return nil, fmt.Errorf("merge minutes: %w", err)
		}
		if err := agg.DecodeMinuteSketches(m, hll, lat, uris, clients); err != nil {
			return nil, fmt.Errorf("merge minutes: %w", err)
		}
		if err := sum.Merge(m); err != nil {
			return nil, fmt.Errorf("merge minutes: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("merge minutes: %w", err)
	}
	return sum, nil
}

// BandwidthSample is one 5-minute sample of one backend.
type BandwidthSample struct {
	Start    time.Time
	Backend  string
	BytesOut uint64
	BytesIn  uint64
	Requests uint64
}

// OutBPS returns the sample's average outgoing rate in bit/s.
func (b BandwidthSample) OutBPS() float64 { return agg.BitsPerSecond(b.BytesOut) }

// InBPS returns the sample's average incoming rate in bit/s.
func (b BandwidthSample) InBPS() float64 { return agg.BitsPerSecond(b.BytesIn) }

const qBandwidth = `SELECT bucket, backend, bytes_out, bytes_in, requests
FROM bandwidth_5m WHERE bucket >= ? AND bucket < ? ORDER BY bucket, backend`

// Bandwidth returns the 5-minute samples in [from, to).
func (s *Store) Bandwidth(ctx context.Context, from, to time.Time) ([]BandwidthSample, error) {
	rows, err := s.db.QueryContext(ctx, qBandwidth, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read bandwidth: %w", err)
	}
	defer rows.Close()
	var out []BandwidthSample
	for rows.Next() {
		var b BandwidthSample
		if err := rows.Scan(&b.Start, &b.Backend, &b.BytesOut, &b.BytesIn, &b.Requests); err != nil {
			return nil, fmt.Errorf("read bandwidth: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read bandwidth: %w", err)
	}
	return out, nil
}

// Billing is the 95th percentile of a calendar month's outgoing bandwidth.
type Billing struct {
	Month      time.Time          // first instant of the month, UTC
	Slots      int                // 5-minute intervals in the month
	PerBackend map[string]float64 // bit/s
	Total      float64            // of the sum of all backends per interval, bit/s
}

// MonthlyPercentile computes the billing of the UTC calendar month holding
// t from the stored 5-minute samples, with agg.BillingPercentile. The total
// is the percentile of the summed samples, not the sum of the percentiles.
func (s *Store) MonthlyPercentile(ctx context.Context, t time.Time) (*Billing, error) {
	start, end := agg.MonthBounds(t)
	samples, err := s.Bandwidth(ctx, start, end)
	if err != nil {
		return nil, err
	}
	bill := &Billing{Month: start, Slots: agg.SlotsInMonth(start), PerBackend: map[string]float64{}}
	per := map[string][]float64{}
	total := map[time.Time]uint64{}
	for _, b := range samples {
		per[b.Backend] = append(per[b.Backend], b.OutBPS())
		total[b.Start] += b.BytesOut
	}
	for be, v := range per {
		bill.PerBackend[be] = agg.BillingPercentile(v, bill.Slots)
	}
	tv := make([]float64, 0, len(total))
	for _, bytes := range total {
		tv = append(tv, agg.BitsPerSecond(bytes))
	}
	bill.Total = agg.BillingPercentile(tv, bill.Slots)
	return bill, nil
}

// ProbeRow is a stored probe.
type ProbeRow struct {
	ID        string
	FirstSeen time.Time // the request's own time (the line's time), UTC
	LastSeen  time.Time
	Backend   string // the backend of the first sighting
	Count     uint64
	StoredAt  time.Time // when the consumer first committed it
}

const qProbe = `SELECT probe_id, first_seen, last_seen, backend, request_count, stored_at FROM probes WHERE probe_id = ?`

// Probe returns the row of a probe id; ok is false when it was not seen.
func (s *Store) Probe(ctx context.Context, id string) (p ProbeRow, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, qProbe, id).Scan(&p.ID, &p.FirstSeen, &p.LastSeen, &p.Backend, &p.Count, &p.StoredAt)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("read probe %s: %w", id, err)
	}
	return p, true, nil
}

const qRejectCounts = `SELECT kind, SUM(line_count) FROM rejects_minute WHERE minute >= ? AND minute < ? GROUP BY kind`

// RejectCounts returns the rejected lines by kind consumed in [from, to).
func (s *Store) RejectCounts(ctx context.Context, from, to time.Time) (map[string]uint64, error) {
	rows, err := s.db.QueryContext(ctx, qRejectCounts, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("read rejects: %w", err)
	}
	defer rows.Close()
	out := map[string]uint64{}
	for rows.Next() {
		var k string
		var n uint64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("read rejects: %w", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rejects: %w", err)
	}
	return out, nil
}

// RejectSample is a stored rejected input.
type RejectSample struct {
	SeenAt time.Time
	Kind   string
	Reason string
	Input  []byte
}

const qRejectSamples = `SELECT seen_at, kind, reason, input FROM reject_samples ORDER BY id DESC LIMIT ?`

// RejectSamples returns the newest stored rejected inputs.
func (s *Store) RejectSamples(ctx context.Context, limit int) ([]RejectSample, error) {
	rows, err := s.db.QueryContext(ctx, qRejectSamples, limit)
	if err != nil {
		return nil, fmt.Errorf("read reject samples: %w", err)
	}
	defer rows.Close()
	var out []RejectSample
	for rows.Next() {
		var r RejectSample
		if err := rows.Scan(&r.SeenAt, &r.Kind, &r.Reason, &r.Input); err != nil {
			return nil, fmt.Errorf("read reject samples: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read reject samples: %w", err)
	}
	return out, nil
}

// Package trafficseed writes synthetic minute rows and their 5-minute
// bandwidth samples straight into the consumer's tables, for tests and
// benchmarks of what reads them (alerts, dashboard) at sizes the pipeline
// would take long to produce.
package trafficseed

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
)

// Row is one minute of one backend.
type Row struct {
	Minute     time.Time
	Backend    string
	Requests   uint64
	BytesOut   uint64
	BytesIn    uint64
	Status     [agg.StatusClasses]uint64 // 0 other, 1..5 = 1xx..5xx
	TopURIs    []agg.TopEntry
	TopClients []agg.TopEntry
}

// SketchBytes is the size of the placeholder sketches stored with each
// row: about what a busy minute's HyperLogLog and latency sketch take, so
// scans read rows as wide as real ones.
const SketchBytes = 1536

// Write inserts rows (minute rows and the bandwidth samples summed from
// them) in batches. A minute must be seeded once: its samples are
// inserted, not added to.
func Write(ctx context.Context, db *sql.DB, rows []Row) error {
	return WriteSketchBytes(ctx, db, rows, SketchBytes)
}

// WriteSketchBytes is Write with placeholder sketches of sketchBytes: long
// seeds that do not scan the sketches keep the database small with fewer.
func WriteSketchBytes(ctx context.Context, db *sql.DB, rows []Row, sketchBytes int) error {
	pad := strings.Repeat("x", sketchBytes)
	const batch = 500
	for i := 0; i < len(rows); i += batch {
		part := rows[i:min(i+batch, len(rows))]
		var q strings.Builder
		q.WriteString(`INSERT INTO traffic_minute (minute, backend, requests, bytes_out, bytes_in, status_1xx, status_2xx, status_3xx, status_4xx, status_5xx, status_other, visitors, visitors_hll, latency_sketch, top_uris, top_clients, updated_at) VALUES `)
		args := make([]any, 0, len(part)*17)
		now := time.Now().UTC()
		for j, r := range part {
			if j > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
			uris, err := json.Marshal(nonNil(r.TopURIs))
			if err != nil {
				return err
			}
			clients, err := json.Marshal(nonNil(r.TopClients))
			if err != nil {
				return err
			}
			s := r.Status
			args = append(args, r.Minute.UTC(), r.Backend, r.Requests, r.BytesOut, r.BytesIn, s[1], s[2], s[3], s[4], s[5], s[0],
				r.Requests/3, pad, pad[:sketchBytes/3], uris, clients, now)
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("seed minutes: %w", err)
		}
	}
	type key struct {
		t time.Time
		b string
	}
	bw := map[key]*[3]uint64{}
	var keys []key
	for _, r := range rows {
		k := key{r.Minute.UTC().Truncate(agg.SampleInterval), r.Backend}
		if bw[k] == nil {
			bw[k] = &[3]uint64{}
			keys = append(keys, k)
		}
		bw[k][0] += r.BytesOut
		bw[k][1] += r.BytesIn
		bw[k][2] += r.Requests
	}
	for i := 0; i < len(keys); i += batch {
		part := keys[i:min(i+batch, len(keys))]
		var q strings.Builder
		q.WriteString(`INSERT INTO bandwidth_5m (bucket, backend, bytes_out, bytes_in, requests) VALUES `)
		var args []any
		for j, k := range part {
			if j > 0 {
				q.WriteString(",")
			}
			q.WriteString("(?,?,?,?,?)")
			v := bw[k]
			args = append(args, k.t, k.b, v[0], v[1], v[2])
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("seed bandwidth: %w", err)
		}
	}
	return nil
}

func nonNil(e []agg.TopEntry) []agg.TopEntry {
	if e == nil {
		return []agg.TopEntry{}
	}
	return e
}

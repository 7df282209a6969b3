package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/dedup"
)

// Limits of a partition worker.
const (
	fetchMaxBytes = 4 << 20
	fetchMaxWait  = 250 * time.Millisecond
	// maxMessage bounds the read buffer; a bigger message (far above
	// Kafka's default 1 MB limit) is counted as a reject and skipped.
	maxMessage = 64 << 20
	// A worker stops fetching while its batch holds this many minutes (or
	// lines) and the committer has not taken it: MySQL is down or slow,
	// and Kafka keeps the data better than memory does.
	maxPendingMinutes = 400
	maxPendingLines   = 2_000_000
)

// worker reads one partition and aggregates it. Its batch and next offset
// change together under mu, so what the committer takes is always exactly
// the lines [previous next, next).
type worker struct {
	s    *Service
	part int32

	mu   sync.Mutex
	agg  *agg.Aggregator
	next int64 // offset of the next line to aggregate; -1: start at the earliest

	// seen holds the IDs of the partition's last events (nil: no dedup).
	// Offsets before warmTo were counted in an earlier session: they are
	// read into seen only, from warmPos on (warmPos < 0: not yet started),
	// unless seen already holds them.
	seen            *dedup.Window
	warmTo, warmPos int64
	warmStart       time.Time

	taken    chan struct{} // signalled when the committer took the batch
	done     chan struct{} // closed when run returns
	errSince time.Time     // start of the current run of Kafka errors, zero when fetching
}

// newWorker starts at offset next (-1: the earliest). seen is the dedup
// window (nil: none); warm says it lacks the events before next.
func newWorker(s *Service, part int32, next int64, seen *dedup.Window, warm bool) *worker {
	opts := s.aggOptions()
	if seen != nil {
		opts = append(opts, agg.WithDedup(seen))
	}
	w := &worker{s: s, part: part, next: next, agg: agg.NewAggregator(s.parser, s.cfg.RejectSamples, opts...),
		seen: seen, warmTo: max(next, 0), warmPos: max(next, 0),
		taken: make(chan struct{}, 1), done: make(chan struct{})}
	if warm && seen != nil && next > 0 {
		w.warmPos = -1
	}
	return w
}

// aggOptions are the configured checks of every line.
func (s *Service) aggOptions() []agg.Option {
	return []agg.Option{
		agg.WithTimeWindow(s.cfg.TimeWindow.Back, s.cfg.TimeWindow.Ahead, time.Now),
		agg.WithProbeKey([]byte(s.cfg.ProbeKey)),
	}
}

// take hands the batch and the offset after it to the committer.
func (w *worker) take() (*agg.Batch, int64) {
	w.mu.Lock()
	b, next := w.agg.Take(), w.next
	w.mu.Unlock()
	select {
	case w.taken <- struct{}{}:
	default:
	}
	return b, next
}

func (w *worker) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.agg.Batch()
	return len(b.Minutes) >= maxPendingMinutes || b.Lines() >= maxPendingLines
}

func (w *worker) failing() (bool, time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.errSince.IsZero(), w.errSince
}

func (w *worker) setErr(failing bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case !failing:
		w.errSince = time.Time{}
	case w.errSince.IsZero():
		w.errSince = time.Now()
	}
}

// run reads the partition until ctx ends, reconnecting with backoff.
func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	log := w.s.log.With("partition", w.part)
	bo := newBackoff(100*time.Millisecond, 10*time.Second)
	buf := make([]byte, 256<<10)
	for ctx.Err() == nil {
		conn, err := w.s.dialLeader(ctx, w.part)
		if err == nil {
			stop := context.AfterFunc(ctx, func() { conn.Close() }) // unblocks a fetch at shutdown
			err = w.consume(ctx, conn, &buf, bo)
			stop()
			conn.Close()
		}
		if ctx.Err() != nil {
			return
		}
		w.s.metrics.kafkaErrors.Inc()
		w.setErr(true)
		d := bo.next()
		log.Warn("kafka: retrying", "err", err, "in", d)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// consume fetches and aggregates until an error that needs a new
// connection.
func (w *worker) consume(ctx context.Context, conn *kafka.Conn, buf *[]byte, bo *backoff) error {
	w.mu.Lock()
	next := w.next
	w.mu.Unlock()
	if next < 0 {
		first, err := conn.ReadFirstOffset()
		if err != nil {
			return fmt.Errorf("read first offset: %w", err)
		}
		w.mu.Lock()
		w.next, next = first, first
		w.mu.Unlock()
	}
	if w.warmPos < w.warmTo {
		if w.warmPos < 0 {
			first, err := conn.ReadFirstOffset()
			if err != nil {
				return fmt.Errorf("read first offset: %w", err)
			}
			w.warmPos, w.warmStart = max(w.warmTo-int64(w.seen.Size()), first), time.Now()
		}
		next = w.warmPos
	}
	lag := w.s.metrics.lag.WithLabelValues(partLabel(w.part))
	var rejects [4]uint64
	var dups uint64
	for {
		for w.full() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-w.taken:
			}
		}
		if err := conn.SetReadDeadline(time.Now().Add(fetchMaxWait + 30*time.Second)); err != nil {
			return fmt.Errorf("set deadline: %w", err)
		}
		if _, err := conn.Seek(next, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			return fmt.Errorf("seek %d: %w", next, err)
		}
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: fetchMaxWait})
		n, warmed, oversized := 0, 0, false
		for {
			size, err := batch.Read(*buf)
			if errors.Is(err, io.ErrShortBuffer) && len(*buf) >= maxMessage {
				oversized = true
			}
			if err != nil {
				break
			}
			off := batch.Offset() - 1
			if off < next {
				continue // a compressed batch starts before the offset asked for
			}
			if off < w.warmTo {
				w.mu.Lock()
				w.agg.Remember((*buf)[:size])
				w.mu.Unlock()
				w.warmPos, next = off+1, off+1
				warmed++
				continue
			}
			w.mu.Lock()
			kind := w.agg.Add((*buf)[:size])
			w.next = off + 1
			w.mu.Unlock()
			next = off + 1
			n++
			switch kind {
			case "":
			case agg.Duplicate:
				dups++
			default:
				rejects[rejectIndex(kind)]++
			}
		}
		hw := batch.HighWaterMark()
		endOffset := batch.Offset()
		err := batch.Close()
		if warmed > 0 {
			w.s.metrics.remembered.Add(float64(warmed))
		}
		if dups > 0 {
			w.s.metrics.duplicates.Add(float64(dups))
			dups = 0
		}
		if n > 0 {
			w.s.metrics.lines.Add(float64(n))
			for i, c := range rejects {
				if c > 0 {
					w.s.metrics.rejects.WithLabelValues(agg.RejectKinds[i]).Add(float64(c))
					rejects[i] = 0
				}
			}
		}
		var kerr kafka.Error
		switch {
		case err == nil:
			// A batch whose last records were compacted away ends past
			// the last record read; move on or the same batch comes back.
			if endOffset > next {
				w.skipTo(endOffset)
				next = endOffset
			}
		case errors.Is(err, io.ErrShortBuffer):
			// The batch stopped at the message it could not hold (endOffset).
			if oversized && endOffset == next && next < w.warmTo {
				w.skipTo(next + 1) // counted (as a reject) when it was first read
				next++
			} else if oversized && endOffset == next {
				// It is beyond any sane size: count it as rejected and skip
				// it, so that one bad message does not stop the partition.
				w.s.log.Error("kafka: message too large, skipped", "partition", w.part, "offset", next, "limit", maxMessage)
				w.s.metrics.skipped.Inc()
				w.mu.Lock()
				w.agg.Reject(agg.RejectOther, "message larger than the consumer's limit", nil)
				w.next = next + 1
				w.mu.Unlock()
				next++
			} else if len(*buf) < maxMessage {
				*buf = make([]byte, 2*len(*buf))
			}
		case errors.As(err, &kerr) && kerr == kafka.RequestTimedOut:
			// No new data within MaxWait.
		case errors.As(err, &kerr) && kerr == kafka.OffsetOutOfRange && next < w.warmTo:
			// Retention deleted what was to be read into the window; what
			// is left to count is in range or handled there.
			w.s.log.Warn("kafka: the events before the committed offset are gone; copies of them will be counted", "partition", w.part, "offset", next)
			w.skipTo(w.warmTo)
			next = w.warmTo
		case errors.As(err, &kerr) && kerr == kafka.OffsetOutOfRange:
			var jerr error
			if next, jerr = w.outOfRange(conn, next); jerr != nil {
				return jerr
			}
		default:
			return fmt.Errorf("fetch at offset %d: %w", next, err)
		}
		if w.warmPos == w.warmTo && !w.warmStart.IsZero() && next >= w.warmTo {
			w.s.log.Info("dedup window filled from the events before the committed offset", "partition", w.part,
				"events", w.seen.Len(), "took", time.Since(w.warmStart).Round(time.Millisecond))
			w.warmStart = time.Time{}
		}
		if done := max(next, w.warmTo); hw >= done {
			lag.Set(float64(hw - done))
		}
		w.setErr(false)
		bo.reset()
	}
}

// skipTo moves past offsets that hold nothing to read (compacted away,
// oversized), within the window's part or the part to count.
func (w *worker) skipTo(to int64) {
	if to <= w.warmTo {
		w.warmPos = to
		return
	}
	w.warmPos = w.warmTo
	w.advance(to, 0)
}

// advance moves next without aggregating (skipped offsets).
func (w *worker) advance(to int64, skipped int64) {
	w.mu.Lock()
	w.next = to
	w.mu.Unlock()
	if skipped > 0 {
		w.s.metrics.skipped.Add(float64(skipped))
	}
}

// outOfRange handles an offset Kafka no longer (or not yet) has. Below the
// log start, retention deleted lines before they were consumed: they are
// lost, loudly, and consumption goes on from the oldest line. Past the end
// (the topic was recreated or truncated), going back to its start could
// count lines twice, so the consumer goes on from the end.
func (w *worker) outOfRange(conn *kafka.Conn, next int64) (int64, error) {
	first, last, err := conn.ReadOffsets()
	if err != nil {
		return next, fmt.Errorf("offset %d out of range, reading the partition's offsets: %w", next, err)
	}
	switch {
	case next < first:
		w.s.log.Error("kafka: lines were deleted before they were consumed; continuing from the oldest",
			"partition", w.part, "offset", next, "oldest", first, "lost", first-next)
		w.advance(first, first-next)
		return first, nil
	case next > last:
		w.s.log.Error("kafka: stored offset is past the end of the partition (topic recreated?); continuing from the end",
			"partition", w.part, "offset", next, "end", last)
		w.advance(last, 0)
		return last, nil
	}
	return next, nil // it moved into range meanwhile: fetch again
}

func rejectIndex(kind string) int {
	for i, k := range agg.RejectKinds {
		if k == kind {
			return i
		}
	}
	return len(agg.RejectKinds) - 1
}

// backoff is a capped exponential backoff.
type backoff struct {
	min, max, cur time.Duration
}

func newBackoff(min, max time.Duration) *backoff { return &backoff{min: min, max: max} }

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }

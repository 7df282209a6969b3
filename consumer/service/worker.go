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

	taken    chan struct{} // signalled when the committer took the batch
	done     chan struct{} // closed when run returns
	errSince time.Time     // start of the current run of Kafka errors, zero when fetching
}

func newWorker(s *Service, part int32, next int64) *worker {
	return &worker{s: s, part: part, next: next, agg: agg.NewAggregator(s.parser, s.cfg.RejectSamples, s.aggOptions()...),
		taken: make(chan struct{}, 1), done: make(chan struct{})}
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
	lag := w.s.metrics.lag.WithLabelValues(partLabel(w.part))
	var rejects [4]uint64
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
		n, oversized := 0, false
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
			w.mu.Lock()
			kind := w.agg.Add((*buf)[:size])
			w.next = off + 1
			w.mu.Unlock()
			next = off + 1
			n++
			if kind != "" {
				rejects[rejectIndex(kind)]++
			}
		}
		hw := batch.HighWaterMark()
		endOffset := batch.Offset()
		err := batch.Close()
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
				w.advance(endOffset, 0)
				next = endOffset
			}
		case errors.Is(err, io.ErrShortBuffer):
			// The batch stopped at the message it could not hold (endOffset).
			if oversized && endOffset == next {
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
		case errors.As(err, &kerr) && kerr == kafka.OffsetOutOfRange:
			var jerr error
			if next, jerr = w.outOfRange(conn, next); jerr != nil {
				return jerr
			}
		default:
			return fmt.Errorf("fetch at offset %d: %w", next, err)
		}
		if hw >= next {
			lag.Set(float64(hw - next))
		}
		w.setErr(false)
		bo.reset()
	}
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

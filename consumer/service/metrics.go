package service

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/trafficlab/trafficlab/consumer/agg"
)

// metrics are the consumer's Prometheus series, on a registry of its own
// (no global state: tests run several services in one process).
type metrics struct {
	reg            *prometheus.Registry
	lines          prometheus.Counter
	rejects        *prometheus.CounterVec
	committedLines prometheus.Counter
	lag            *prometheus.GaugeVec
	committed      *prometheus.GaugeVec
	flush          prometheus.Histogram
	commitErrors   prometheus.Counter
	conflicts      prometheus.Counter
	kafkaErrors    prometheus.Counter
	skipped        prometheus.Counter
	duplicates     prometheus.Counter
	remembered     prometheus.Counter
	generation     prometheus.Gauge
	assigned       prometheus.Gauge
}

func newMetrics() *metrics {
	const ns = "trafficlab_consumer"
	m := &metrics{
		reg: prometheus.NewRegistry(),
		lines: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "lines_total",
			Help: "Kafka messages read and aggregated or rejected (rate() gives lines/s; lines re-read after a restart count again)."}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rejects_total",
			Help: "Messages rejected, by kind: mismatch (not the log format), value (a malformed value), event (a broken filebeat event), other."}, []string{"kind"}),
		committedLines: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "committed_lines_total",
			Help: "Messages whose aggregates and offsets were committed to MySQL."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "lag_messages",
			Help: "Messages in the partition after the last one aggregated (high watermark - next offset)."}, []string{"partition"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "committed_offset",
			Help: "Next offset to consume per partition, as last committed to MySQL."}, []string{"partition"}),
		flush: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "flush_seconds",
			Help:    "Time to commit one flush (aggregates and offsets) to MySQL, successful attempts.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "commit_errors_total",
			Help: "Failed commit attempts (MySQL unavailable or failing); they are retried."}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "commit_conflicts_total",
			Help: "Commits refused because another consumer moved the offsets; the consumer restarted from MySQL's offsets."}),
		kafkaErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "kafka_errors_total",
			Help: "Kafka connection and fetch errors; they are retried."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "skipped_messages_total",
			Help: "Messages Kafka deleted (retention) before they were consumed, and oversized messages skipped."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "duplicates_total",
			Help: "Copies of filebeat events already counted (filebeat sent a batch again), skipped."}),
		remembered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "dedup_warmup_messages_total",
			Help: "Messages before a partition's committed offset read again, without counting them, to know the copies that may follow."}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "group_generation",
			Help: "The consumer group's generation this consumer is a member of (it changes at every rebalance)."}),
		assigned: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "assigned_partitions",
			Help: "Partitions the consumer group gave this consumer in the current generation."}),
	}
	m.reg.MustRegister(m.lines, m.rejects, m.committedLines, m.lag, m.committed, m.flush,
		m.commitErrors, m.conflicts, m.kafkaErrors, m.skipped, m.duplicates, m.remembered, m.generation, m.assigned,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, k := range agg.RejectKinds {
		m.rejects.WithLabelValues(k) // export zeros, so rate() works from the start
	}
	return m
}

func partLabel(p int32) string { return strconv.Itoa(int(p)) }

// Command pipeline is the harness behind consumer/bench/pipeline.sh: it
// starts a throwaway MariaDB, a kfake broker in a process of its own (this
// program again, with -broker) holding filebeat events, then a built
// `consumer run`, and reports lines/s from the consumer's start until MySQL's
// offsets cover every line, and the consumer's peak RSS.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/internal/loadgen"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/consumer/store"
)

const topic = "nginxlog"

type options struct {
	lines, partitions, clients int
	compression                string
	consumer                   string
	flush                      time.Duration
	start                      int64 // Unix time of the first line
	strict                     bool
}

func main() {
	var o options
	broker := flag.Bool("broker", false, "run as the broker process (internal)")
	flag.IntVar(&o.lines, "lines", 1_000_000, "lines (filebeat events) in the topic")
	flag.IntVar(&o.partitions, "partitions", 4, "partitions of the topic")
	flag.IntVar(&o.clients, "clients", 1_000_000, "distinct client addresses, cycled over the lines")
	flag.StringVar(&o.compression, "compression", "gzip", "producer compression: gzip (filebeat's default), snappy, lz4, zstd or none")
	flag.StringVar(&o.consumer, "consumer", "", "the consumer binary to measure")
	flag.DurationVar(&o.flush, "flush", time.Second, "the consumer's flush_interval")
	flag.Int64Var(&o.start, "start", 0, "Unix time of the first line (internal)")
	flag.BoolVar(&o.strict, "strict", false, "exit 1 when a target is missed")
	flag.Parse()
	var err error
	if *broker {
		err = runBroker(o)
	} else {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func (o options) gen() *loadgen.Gen {
	start := time.Unix(o.start, 0).UTC()
	return &loadgen.Gen{
		Start:    start,
		Step:     time.Hour / time.Duration(o.lines), // all lines within one hour
		Backends: []string{"web-1", "web-2", "web-3"},
		Clients:  o.clients,
		URIs:     5000,
	}
}

// runBroker fills a kfake broker with the events, says READY on stdout and
// serves until stdin closes.
func runBroker(o options) error {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(o.partitions), topic))
	if err != nil {
		return err
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	var codec kgo.CompressionCodec
	switch o.compression {
	case "gzip":
		codec = kgo.GzipCompression()
	case "snappy":
		codec = kgo.SnappyCompression()
	case "lz4":
		codec = kgo.Lz4Compression()
	case "zstd":
		codec = kgo.ZstdCompression()
	case "none":
		codec = kgo.NoCompression()
	default:
		return fmt.Errorf("unknown compression %q", o.compression)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(10*time.Millisecond))
	if err != nil {
		return err
	}
	g := o.gen()
	ctx := context.Background()
	var bytes int64
	var perr error
	for i := 0; i < o.lines; i++ {
		v, _ := g.Event(nil, i)
		bytes += int64(len(v))
		cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(i % o.partitions), Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				perr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	cl.Close()
	if perr != nil {
		return perr
	}
	fmt.Printf("READY %s %d\n", addr, bytes)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func run(o options) error {
	if o.consumer == "" {
		return errors.New("-consumer is required (pipeline.sh builds it)")
	}
	if err := mariadbtest.Available(); err != nil {
		return fmt.Errorf("MariaDB is needed (%v): run scripts/test-deps.sh", err)
	}
	o.start = time.Now().UTC().Truncate(time.Hour).Add(-time.Hour).Unix()
	fmt.Printf("pipeline: %d filebeat 7.17 events (%s), %d partitions, %d distinct clients within one hour\n",
		o.lines, o.compression, o.partitions, min(o.clients, o.lines))

	db, err := mariadbtest.Start()
	if err != nil {
		return err
	}
	defer db.Close()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	t0 := time.Now()
	bcmd := exec.Command(self, "-broker", "-lines", strconv.Itoa(o.lines), "-partitions", strconv.Itoa(o.partitions),
		"-clients", strconv.Itoa(o.clients), "-compression", o.compression, "-start", strconv.FormatInt(o.start, 10))
	bcmd.Stderr = os.Stderr
	stdin, err := bcmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := bcmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := bcmd.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); _ = bcmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "READY" {
		return fmt.Errorf("broker did not start: %q %v", line, err)
	}
	addr := f[1]
	evBytes, _ := strconv.ParseInt(f[2], 10, 64)
	fmt.Printf("broker: %s, %d MB of events loaded in %v (own process, pid %d)\n",
		addr, evBytes>>20, time.Since(t0).Round(100*time.Millisecond), bcmd.Process.Pid)

	ctx := context.Background()
	mc, err := db.NewDatabase(ctx, "bench")
	if err != nil {
		return err
	}
	c := config.Defaults()
	c.Kafka.Brokers = []string{addr}
	c.MySQL = mc
	c.FlushInterval = o.flush
	c.Listen = ""
	// Many lines a few ms apart may run past now+1h: this measures speed,
	// not the window.
	c.TimeWindow = config.TimeWindow{}
	data, err := yaml.Marshal(&c)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(db.Dir, "consumer.yaml")
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return err
	}
	st, err := store.Open(mc)
	if err != nil {
		return err
	}
	defer st.Close()

	logPath := filepath.Join(db.Dir, "consumer.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	ccmd := exec.Command(o.consumer, "run", "--config", cfgPath)
	ccmd.Stdout, ccmd.Stderr = logf, logf
	start := time.Now()
	if err := ccmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- ccmd.Wait() }()
	defer func() {
		_ = ccmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = ccmd.Process.Kill()
		}
	}()

	var done int64
	var elapsed time.Duration
	for {
		off, err := st.Offsets(ctx, c.Kafka.Group, topic)
		if err == nil {
			done = 0
			for _, v := range off {
				done += v
			}
			if done >= int64(o.lines) {
				elapsed = time.Since(start)
				break
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("consumer exited: %v; log %s", err, logPath)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("only %d of %d lines committed after 10 minutes", done, o.lines)
		}
	}
	peak, cur := rss(ccmd.Process.Pid)

	// Correctness: every line counted once, and the unique visitors of the
	// hour merged from the minutes' sketches.
	from := time.Unix(o.start, 0)
	m, err := st.Merged(ctx, from, from.Add(time.Hour), "")
	if err != nil {
		return err
	}
	if m.Requests != uint64(o.lines) {
		return fmt.Errorf("MySQL counts %d requests, want %d", m.Requests, o.lines)
	}
	rate := float64(o.lines) / elapsed.Seconds()
	fmt.Printf("stored: %d requests, %d unique visitors estimated (true %d)\n", m.Requests, m.Visitors.Estimate(), min(o.clients, o.lines))
	fmt.Printf("RESULT pipeline: %d lines committed in %v = %.0f lines/s (target >= 150000) %s\n",
		o.lines, elapsed.Round(time.Millisecond), rate, verdict(rate >= 150000))
	fmt.Printf("RESULT consumer RSS: peak %d MB, at the end %d MB (target <= 200 MB) %s\n",
		peak>>20, cur>>20, verdict(peak <= 200<<20))
	if o.strict && (rate < 150000 || peak > 200<<20) {
		return errors.New("a target was missed")
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// rss returns the peak (VmHWM) and current (VmRSS) resident set of a
// process, in bytes.
func rss(pid int) (peak, cur int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmHWM:":
			peak = kb << 10
		case "VmRSS:":
			cur = kb << 10
		}
	}
	return peak, cur
}

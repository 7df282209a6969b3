// Command pipeline is the harness behind consumer/bench/pipeline.sh: it
// starts a throwaway MariaDB, a kfake broker in a process of its own (this
// program again, with -broker) holding filebeat events, then, for each
// count of -consumers, that many built `consumer run` processes in one
// consumer group on a database of their own, and reports lines/s from
// their start until MySQL's offsets cover every line, the ratio to one
// consumer, the cores they used and each one's peak RSS.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
	consumers                  []int
	pin                        bool
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
	flag.BoolVar(&o.pin, "pin", true, "pin consumer i to core i mod cores (taskset), as if each had a host's core of its own")
	counts := flag.String("consumers", "1", "consumer processes to run, one measurement per count: 1,2,3")
	flag.Parse()
	for _, f := range strings.Split(*counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			fmt.Fprintf(os.Stderr, "pipeline: -consumers %q: want counts from 1 to 64, comma-separated\n", *counts)
			os.Exit(2)
		}
		o.consumers = append(o.consumers, n)
	}
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

	fmt.Printf("machine: %d cores\n", runtime.NumCPU())
	var results []result
	for _, n := range o.consumers {
		r, err := measure(o, db, addr, n)
		if err != nil {
			return fmt.Errorf("%d consumers: %w", n, err)
		}
		results = append(results, r)
	}
	missed := false
	fmt.Println()
	pinned := ""
	if o.pin {
		pinned = fmt.Sprintf("; consumer i pinned to core i mod %d", runtime.NumCPU())
	}
	fmt.Printf("lines/s: from the moment every consumer holds partitions until MySQL has every line; cores: CPU time per second of the whole run%s\n", pinned)
	fmt.Println("consumers  lines/s  vs 1  cores (consumers / machine)  peak RSS per consumer")
	for _, r := range results {
		ratio := "-"
		if results[0].n == 1 {
			ratio = fmt.Sprintf("%.2fx", r.rate/results[0].rate)
		}
		var peaks []string
		for _, p := range r.peaks {
			peaks = append(peaks, fmt.Sprintf("%d MB", p>>20))
			missed = missed || p > 200<<20
		}
		fmt.Printf("%9d  %7.0f  %4s  %5.2f / %.2f                  %s\n", r.n, r.rate, ratio, r.cores, r.machineCores, strings.Join(peaks, ", "))
	}
	first := results[0]
	fmt.Printf("RESULT pipeline: %d lines committed in %v by %d consumer(s) = %.0f lines/s (target >= 150000 with one) %s\n",
		o.lines, first.elapsed.Round(time.Millisecond), first.n, float64(o.lines)/first.elapsed.Seconds(), verdict(first.n != 1 || float64(o.lines)/first.elapsed.Seconds() >= 150000))
	missed = missed || (first.n == 1 && float64(o.lines)/first.elapsed.Seconds() < 150000)
	for _, r := range results {
		if r.n == 2 && first.n == 1 {
			ok := r.rate >= 1.7*first.rate
			missed = missed || !ok
			fmt.Printf("RESULT two consumers: %.2fx one (target >= 1.7x) %s\n", r.rate/first.rate, verdict(ok))
		}
	}
	fmt.Printf("RESULT consumer RSS: peak %d MB (target <= 200 MB each) %s\n", maxPeak(results)>>20, verdict(maxPeak(results) <= 200<<20))
	if o.strict && missed {
		return errors.New("a target was missed")
	}
	return nil
}

// result is one measurement: n consumers through the whole topic.
type result struct {
	n                   int
	elapsed, formed     time.Duration // since the start: all lines committed, every consumer holding partitions
	rate                float64
	cores, machineCores float64 // CPU time per second of the run: the consumers', the machine's
	peaks               []int64 // peak RSS per consumer
}

func maxPeak(rs []result) int64 {
	var m int64
	for _, r := range rs {
		for _, p := range r.peaks {
			m = max(m, p)
		}
	}
	return m
}

// measure runs n consumers in one group, on a database of their own, from
// the topic's start until MySQL's offsets cover every line.
func measure(o options, db *mariadbtest.Server, addr string, n int) (result, error) {
	ctx := context.Background()
	mc, err := db.NewDatabase(ctx, fmt.Sprintf("bench%d", n))
	if err != nil {
		return result{}, err
	}
	st, err := store.Open(mc)
	if err != nil {
		return result{}, err
	}
	defer st.Close()
	group := fmt.Sprintf("bench-%d", n) // a group of its own: the broker knows the earlier runs' groups
	var cfgs, listens []string
	for i := range n {
		c := config.Defaults()
		c.Kafka.Brokers = []string{addr}
		c.Kafka.Group = group
		c.MySQL = mc
		c.FlushInterval = o.flush
		// Its metrics tell when the group has given it partitions.
		if c.Listen, err = freeAddr(); err != nil {
			return result{}, err
		}
		// Many lines a few ms apart may run past now+1h: this measures
		// speed, not the window.
		c.TimeWindow = config.TimeWindow{}
		data, err := yaml.Marshal(&c)
		if err != nil {
			return result{}, err
		}
		cfgPath := filepath.Join(db.Dir, fmt.Sprintf("consumer%d-%d.yaml", n, i))
		if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
			return result{}, err
		}
		cfgs, listens = append(cfgs, cfgPath), append(listens, c.Listen)
	}

	busy0, total0 := machineCPU()
	start := time.Now()
	var procs []*exec.Cmd
	exited := make(chan error, n)
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for range procs {
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				for _, p := range procs {
					_ = p.Process.Kill()
				}
			}
		}
	}()
	for i := range n {
		logPath := filepath.Join(db.Dir, fmt.Sprintf("consumer%d-%d.log", n, i))
		logf, err := os.Create(logPath)
		if err != nil {
			return result{}, err
		}
		defer logf.Close()
		cmd := exec.Command(o.consumer, "run", "--config", cfgs[i])
		if o.pin {
			cmd = exec.Command("taskset", "-c", strconv.Itoa(i%runtime.NumCPU()), o.consumer, "run", "--config", cfgs[i])
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			return result{}, err
		}
		procs = append(procs, cmd)
		go func() {
			err := cmd.Wait()
			exited <- fmt.Errorf("consumer %d exited: %v; log %s", i, err, logPath)
		}()
	}

	// The group has formed when every consumer holds partitions; the
	// lines committed by then are left out of the group's rate.
	var done, doneFormed int64
	var elapsed, formed time.Duration
	for {
		off, err := st.Offsets(ctx, group, topic)
		if err == nil {
			done = 0
			for _, v := range off {
				done += v
			}
		}
		if formed == 0 && allAssigned(listens) {
			formed, doneFormed = time.Since(start), done
		}
		if done >= int64(o.lines) {
			elapsed = time.Since(start)
			break
		}
		select {
		case err := <-exited:
			exited <- err // for the deferred wait
			return result{}, err
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 10*time.Minute {
			return result{}, fmt.Errorf("only %d of %d lines committed after 10 minutes", done, o.lines)
		}
	}
	if formed == 0 {
		return result{}, fmt.Errorf("the %d consumers were done before the group gave each of them partitions: raise -lines", n)
	}
	busy1, total1 := machineCPU()
	window := elapsed - formed
	r := result{n: n, elapsed: elapsed, formed: formed, rate: float64(int64(o.lines)-doneFormed) / window.Seconds()}
	var cpu time.Duration
	for _, p := range procs {
		peak, _ := rss(p.Process.Pid)
		r.peaks = append(r.peaks, peak)
		cpu += cpuTime(p.Process.Pid)
	}
	r.cores = cpu.Seconds() / elapsed.Seconds() // the whole run: group forming is mostly waiting
	if total1 > total0 {
		r.machineCores = float64(runtime.NumCPU()) * float64(busy1-busy0) / float64(total1-total0)
	}

	// Correctness: every line counted once, and the unique visitors of the
	// hour merged from the minutes' sketches of every consumer.
	from := time.Unix(o.start, 0)
	m, err := st.Merged(ctx, from, from.Add(time.Hour), "")
	if err != nil {
		return result{}, err
	}
	if m.Requests != uint64(o.lines) {
		return result{}, fmt.Errorf("MySQL counts %d requests, want %d", m.Requests, o.lines)
	}
	fmt.Printf("%d consumer(s): group formed after %v (%d lines committed by then), all %d lines committed after %v: %.0f lines/s in between; %d requests stored, %d unique visitors estimated (true %d)\n",
		n, formed.Round(time.Millisecond), doneFormed, o.lines, elapsed.Round(time.Millisecond), r.rate, m.Requests, m.Visitors.Estimate(), min(o.clients, o.lines))
	return r, nil
}

// freeAddr is a loopback address with a free port.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// allAssigned reports whether every consumer's /metrics shows partitions
// assigned to it.
func allAssigned(listens []string) bool {
	client := &http.Client{Timeout: time.Second}
	for _, addr := range listens {
		res, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		assigned := false
		for _, l := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(l, "trafficlab_consumer_assigned_partitions "); ok && v != "0" {
				assigned = true
			}
		}
		if !assigned {
			return false
		}
	}
	return true
}

// cpuTime is the user and system CPU time a running process used.
func cpuTime(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	i := strings.LastIndexByte(string(data), ')')
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// machineCPU reads the machine's busy and total CPU time from /proc/stat.
func machineCPU() (busy, total int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
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

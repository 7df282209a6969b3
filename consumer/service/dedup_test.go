package service_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/trafficlab/trafficlab/consumer/internal/loadgen"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/consumer/service"
)

// TestFilebeatResends: filebeat sends a batch again when Kafka's answer was
// lost, into the same partition. The copies are not counted, neither while
// the consumer runs nor after it restarts, when the copies are of events it
// counted in its previous life; MySQL's totals stay exact.
func TestFilebeatResends(t *testing.T) {
	srv := mariadbtest.Shared(t)
	const parts, n = 2, 4000
	addr, cl := broker(t, parts)
	c, st := newConfig(t, srv, addr)
	g, exp := gen(), loadgen.NewExpect()
	produce(t, cl, g, 0, n, parts, exp)
	svc, stop, _ := startService(t, c)
	waitCommitted(t, st, n, 60*time.Second)

	dups := resend(t, cl, g, 100, 300, parts, exp) // while it runs
	waitCommitted(t, st, n+200, 30*time.Second)
	verify(t, st, exp)
	wantMetric(t, svc, fmt.Sprintf("trafficlab_consumer_duplicates_total %d", dups))

	// A new process knows nothing of what it counted: it reads the events
	// before its offsets again (into its window only).
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	dups = resend(t, cl, g, n-700, n-400, parts, exp)
	produce(t, cl, g, n, n+1000, parts, exp)
	svc, _, _ = startService(t, c)
	waitCommitted(t, st, n+200+300+1000, 60*time.Second)
	verify(t, st, exp)
	wantMetric(t, svc, fmt.Sprintf("trafficlab_consumer_duplicates_total %d", dups))
	wantMetric(t, svc, fmt.Sprintf("trafficlab_consumer_dedup_warmup_messages_total %d", n+200))
	wantMetric(t, svc, "trafficlab_consumer_lines_total 1300")
}

// resend produces events [from, to) of g again, into the partitions they
// went to, and returns how many are copies the consumer can tell. The
// generator's garbage without log.offset (a truncated event, a raw message)
// is another reject each time: exp counts it again.
func resend(t *testing.T, cl *kgo.Client, g *loadgen.Gen, from, to, partitions int, exp *loadgen.Expect) (dups int) {
	t.Helper()
	again := loadgen.NewExpect()
	produce(t, cl, g, from, to, partitions, again)
	for i := from; i < to; i++ {
		v, l := g.Event(nil, i)
		if json.Valid(v) && bytes.Contains(v, []byte(`"log":{"offset":`)) {
			dups++
		} else {
			exp.Rejects[l.Garbage]++
		}
	}
	if dups < (to-from)*8/10 {
		t.Fatalf("only %d of %d events resent carry an offset", dups, to-from)
	}
	return dups
}

func wantMetric(t *testing.T, svc *service.Service, line string) {
	t.Helper()
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\n"+line+"\n") {
		name, _, _ := strings.Cut(line, " ")
		var got []string
		for _, l := range strings.Split(rec.Body.String(), "\n") {
			if strings.HasPrefix(l, name) {
				got = append(got, l)
			}
		}
		t.Errorf("/metrics: want %q, have %q", line, got)
	}
}

package alert

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/config"
	"github.com/trafficlab/trafficlab/consumer/internal/mariadbtest"
	"github.com/trafficlab/trafficlab/consumer/internal/smtptest"
	"github.com/trafficlab/trafficlab/consumer/internal/trafficseed"
	"github.com/trafficlab/trafficlab/consumer/notify"
	"github.com/trafficlab/trafficlab/consumer/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	mariadbtest.StopShared()
	os.Exit(code)
}

var dbSeq atomic.Int32

func newStore(t *testing.T) *store.Store {
	t.Helper()
	srv := mariadbtest.Shared(t)
	ctx := context.Background()
	mc, err := srv.NewDatabase(ctx, fmt.Sprintf("al%d_%d", os.Getpid(), dbSeq.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// hook is an in-process webhook receiver.
type hook struct {
	mu      sync.Mutex
	notices []notify.Notice
	keys    []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n notify.Notice
	if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.notices = append(h.notices, n)
	h.keys = append(h.keys, r.Header.Get("X-Trafficlab-Notice"))
}

// TestEvaluatorDelivers runs two evaluators minute by minute over a stored
// drop to 10% for 10 minutes on three backends: traffic_low fires in total
// and per backend, is stored with its start, value and baseline, and every
// notice reaches the webhook and the mailbox exactly once: the firing one,
// one reminder after the repeat interval, the resolved one.
func TestEvaluatorDelivers(t *testing.T) {
	st := newStore(t)
	ctx := context.Background()
	base := time.Now().UTC().Truncate(time.Minute).Add(-6 * time.Hour)
	var rows []trafficseed.Row
	for i := 0; i < 180; i++ {
		for _, b := range []string{"web-1", "web-2", "web-3"} {
			n := uint64(100)
			if i >= 120 && i < 130 {
				n = 10
			}
			rows = append(rows, trafficseed.Row{Minute: base.Add(time.Duration(i) * time.Minute), Backend: b, Requests: n,
				BytesOut: n * 1000, Status: [agg.StatusClasses]uint64{2: n}})
		}
	}
	if err := trafficseed.Write(ctx, st.DB(), rows); err != nil {
		t.Fatal(err)
	}

	h := &hook{}
	web := httptest.NewServer(h)
	defer web.Close()
	mail := smtptest.Start(t, "alerts", "s3cret")

	cfg := config.DefaultAlerts()
	cfg.RepeatInterval = 5 * time.Minute
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var evs []*Evaluator
	for _, holder := range []string{"a", "b"} {
		e, err := NewEvaluator(cfg, st, log, holder)
		if err != nil {
			t.Fatal(err)
		}
		e.SetNotifiers(&notify.Webhook{URL: web.URL, Retries: 1, Backoff: time.Millisecond},
			&notify.Email{Addr: mail.Addr, Username: "alerts", Password: "s3cret", From: "tl@example.org",
				To: []string{"ops@example.org"}, Mode: "starttls", TLS: &tls.Config{RootCAs: mail.Roots}})
		evs = append(evs, e)
	}
	var fired, resolved time.Time
	var clock time.Time
	for i := 100; i < 180; i++ {
		// With settle 1m, the tick at last+2m judges minute last.
		clock = base.Add(time.Duration(i+2) * time.Minute)
		held := 0
		for _, e := range evs {
			e.Now = func() time.Time { return clock }
			ok, err := e.Tick(ctx)
			if err != nil {
				t.Fatalf("minute %d: %v", i, err)
			}
			if ok {
				held++
			}
		}
		if held != 1 {
			t.Fatalf("minute %d: %d evaluators held the lease, want 1", i, held)
		}
		firing, err := st.FiringAlerts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(firing) > 0 && fired.IsZero() {
			fired = base.Add(time.Duration(i) * time.Minute)
		}
		if len(firing) == 0 && !fired.IsZero() && resolved.IsZero() {
			resolved = base.Add(time.Duration(i) * time.Minute)
		}
	}
	if want := base.Add(124 * time.Minute); !fired.Equal(want) {
		t.Errorf("traffic_low fired when minute %v was judged, want %v (5 minutes into the drop)", fired, want)
	}
	if want := base.Add(132 * time.Minute); !resolved.Equal(want) {
		t.Errorf("resolved when minute %v was judged, want %v (3 minutes after recovery)", resolved, want)
	}
	hist, err := st.AlertHistory(ctx, base, clock, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 4 {
		t.Fatalf("history has %d alerts, want 4 (total and 3 backends): %+v", len(hist), hist)
	}
	for _, a := range hist {
		if a.Rule != "traffic_low" || a.State != store.AlertResolved || !a.Start.Equal(base.Add(120*time.Minute)) ||
			!a.End.Equal(base.Add(130*time.Minute)) {
			t.Errorf("alert %+v: want traffic_low resolved, from minute 120 to 130", a)
		}
		wantV, wantB := 10.0, 100.0
		if a.Scope == "" {
			wantV, wantB = 30, 300
		}
		if a.Value != wantV || a.Baseline != wantB {
			t.Errorf("alert %s: value %g baseline %g, want %g and %g", a.Scope, a.Value, a.Baseline, wantV, wantB)
		}
	}

	// Per alert: the firing notice, one reminder (fired at 124, reminded at
	// 129, resolved at 132), the resolved notice; each once.
	var want []string
	for _, a := range hist {
		want = append(want, fmt.Sprintf("%d-firing-0", a.ID), fmt.Sprintf("%d-firing-1", a.ID), fmt.Sprintf("%d-resolved-0", a.ID))
	}
	sort.Strings(want)
	got := append([]string(nil), h.keys...)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("webhook received %v\nwant %v", got, want)
	}
	for _, n := range h.notices {
		if n.Status == "resolved" && (n.EndedAt == nil || n.Summary == "") {
			t.Errorf("resolved notice %+v lacks its end or summary", n)
		}
	}
	var mailKeys []string
	for _, m := range mail.Messages() {
		for _, l := range strings.Split(m.Data, "\r\n") {
			if k, ok := strings.CutPrefix(l, "X-Trafficlab-Notice: "); ok {
				mailKeys = append(mailKeys, k)
			}
		}
	}
	sort.Strings(mailKeys)
	if strings.Join(mailKeys, " ") != strings.Join(want, " ") {
		t.Errorf("mailbox received %v\nwant %v", mailKeys, want)
	}

	// The holder releasing its lease (shutdown) hands evaluation over.
	if err := st.ReleaseLease(ctx, LeaseName, "a"); err != nil {
		t.Fatal(err)
	}
	if ok, err := evs[1].Tick(ctx); err != nil || !ok {
		t.Errorf("after release, the other evaluator: held %v, %v", ok, err)
	}
}

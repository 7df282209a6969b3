package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trafficlab/trafficlab/consumer/internal/smtptest"
)

func sample() Notice {
	return Notice{Version: PayloadVersion, Status: "firing", AlertID: 7, Rule: "traffic_low", Scope: "total",
		StartedAt: time.Date(2026, 11, 25, 3, 0, 0, 0, time.UTC), Value: 10, Baseline: 100,
		Summary: Summary("firing", "traffic_low", "total", 10, 100)}
}

func TestWebhookRetriesUntilAccepted(t *testing.T) {
	var mu sync.Mutex
	var got []Notice
	var keys []string
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		var n Notice
		if err := json.NewDecoder(r.Body).Decode(&n); err != nil {
			t.Error(err)
		}
		got = append(got, n)
		keys = append(keys, r.Header.Get("X-Trafficlab-Notice"))
	}))
	defer srv.Close()
	w := &Webhook{URL: srv.URL, Retries: 3, Backoff: 10 * time.Millisecond}
	if err := w.Send(context.Background(), sample()); err != nil {
		t.Fatal(err)
	}
	if calls != 3 || len(got) != 1 {
		t.Fatalf("%d calls, %d accepted; want 3 and 1", calls, len(got))
	}
	if got[0].Rule != "traffic_low" || got[0].Value != 10 || got[0].Baseline != 100 || got[0].Status != "firing" || keys[0] != "7-firing-0" {
		t.Errorf("received %+v key %s", got[0], keys[0])
	}
}

func TestWebhookGivesUp(t *testing.T) {
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		http.Error(w, "nope", http.StatusBadRequest)
	}))
	defer srv.Close()
	err := (&Webhook{URL: srv.URL, Retries: 3, Backoff: time.Millisecond}).Send(context.Background(), sample())
	if err == nil || !strings.Contains(err.Error(), "400") || calls != 1 {
		t.Fatalf("err %v after %d calls; want a 400 error after one call (a 4xx is not retried)", err, calls)
	}
	srv.Close()
	err = (&Webhook{URL: srv.URL, Retries: 2, Backoff: time.Millisecond}).Send(context.Background(), sample())
	if err == nil {
		t.Fatal("a closed server accepted the notice")
	}
}

func TestEmailStartTLSAuth(t *testing.T) {
	srv := smtptest.Start(t, "alerts", "pa55")
	e := &Email{Addr: srv.Addr, Username: "alerts", Password: "pa55", From: "tl@example.org",
		To: []string{"ops@example.org", "oncall@example.org"}, Mode: "starttls", TLS: &tls.Config{RootCAs: srv.Roots}}
	n := sample()
	if err := e.Send(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if !m.TLS || m.User != "alerts" || m.From != "tl@example.org" || len(m.To) != 2 {
		t.Errorf("message %+v", m)
	}
	for _, want := range []string{"Subject: [trafficlab] FIRING traffic_low on total", "baseline:  100", "X-Trafficlab-Notice: 7-firing-0"} {
		if !strings.Contains(m.Data, want) {
			t.Errorf("mail lacks %q:\n%s", want, m.Data)
		}
	}

	bad := *e
	bad.Password = "wrong"
	if err := bad.Send(context.Background(), n); err == nil || !strings.Contains(err.Error(), "auth") {
		t.Errorf("wrong password: %v", err)
	}
	untrusted := *e
	untrusted.TLS = nil
	if err := untrusted.Send(context.Background(), n); err == nil || !strings.Contains(err.Error(), "starttls") {
		t.Errorf("untrusted certificate: %v", err)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("failed sends delivered mail")
	}
}

// The URL's token never shows in an error: neither for an answer nor for a
// server that cannot be reached (net/http quotes the whole URL).
func TestWebhookErrorsHideTheToken(t *testing.T) {
	const token = "xoxb-T0KEN-42"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "nope", http.StatusForbidden)
	}))
	defer srv.Close()
	for _, url := range []string{srv.URL + "/services/" + token, srv.URL + "/hook?token=" + token} {
		err := (&Webhook{URL: url, Backoff: time.Millisecond}).Send(context.Background(), sample())
		if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "403") {
			t.Errorf("answered 403: %v", err)
		}
	}
	srv.Close()
	err := (&Webhook{URL: srv.URL + "/services/" + token, Backoff: time.Millisecond}).Send(context.Background(), sample())
	if err == nil || strings.Contains(err.Error(), token) {
		t.Errorf("unreachable: %v", err)
	}
}

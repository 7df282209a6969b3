package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Webhook posts notices as JSON.
type Webhook struct {
	URL     string
	Client  *http.Client
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one (at most a minute).
	Backoff time.Duration
}

// Channel implements Notifier.
func (w *Webhook) Channel() string { return "webhook" }

// Send posts n, retrying failures (network errors, 5xx, 408, 429) with
// exponential backoff. X-Trafficlab-Notice carries a key that is the same
// for the retries of one notice, so a receiver can drop a duplicate when a
// response was lost after it had acted.
func (w *Webhook) Send(ctx context.Context, n Notice) error {
	body, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	key := fmt.Sprintf("%d-%s-%d", n.AlertID, n.Status, n.Repeat)
	wait := w.Backoff
	if wait <= 0 {
		wait = time.Second
	}
	var last error
	for attempt := 0; attempt <= w.Retries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("webhook %s: %w (last error: %v)", Redact(w.URL), ctx.Err(), last)
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Minute)
		}
		retry, err := w.post(ctx, body, key)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			break
		}
	}
	return fmt.Errorf("webhook %s: %w", Redact(w.URL), last)
}

// Redact shows a webhook URL without what makes it a credential: chat
// services put their token in the path or the query, so only the scheme
// and host are left.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(an invalid URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

func (w *Webhook) post(ctx context.Context, body []byte, key string) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("not a valid URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "trafficlab-consumer")
	req.Header.Set("X-Trafficlab-Notice", key)
	c := w.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL; Send names it redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return true, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return false, nil
	}
	err = fmt.Errorf("answered %s", resp.Status)
	return resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests, err
}

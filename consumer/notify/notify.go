// Package notify delivers alert notices: a JSON POST to a webhook, or an
// email over SMTP (STARTTLS or TLS, with authentication).
//
// A Notifier sends one notice; deciding what to send and when (de-
// duplication, repeat interval, the resolved notice) is the alert
// evaluator's job, which records every notice sent in MySQL.
package notify

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Notice is what a notifier sends; its JSON form is the webhook's payload
// (documented in consumer/README.md).
type Notice struct {
	// Version of the payload's shape.
	Version int `json:"version"`
	// Status is "firing" or "resolved".
	Status  string `json:"status"`
	AlertID int64  `json:"alert_id"`
	Rule    string `json:"rule"`
	// Scope is a backend's name or "total".
	Scope     string     `json:"scope"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
	// Value and Baseline are the figures that fired the alert (for a
	// resolved notice Value is the reading that resolved it).
	Value    float64 `json:"value"`
	Baseline float64 `json:"baseline"`
	// Repeat is 0 for the first firing notice and counts the reminders.
	Repeat       int    `json:"repeat"`
	Summary      string `json:"summary"`
	DashboardURL string `json:"dashboard_url,omitempty"`
}

// PayloadVersion is the Version of the notices this package sends.
const PayloadVersion = 1

// Notifier delivers notices on one channel.
type Notifier interface {
	// Channel names the channel ("webhook", "email") in the notices table.
	Channel() string
	Send(ctx context.Context, n Notice) error
}

// Summary returns a one-line description of an alert.
func Summary(status, rule, scope string, value, baseline float64) string {
	var what string
	switch rule {
	case "traffic_high":
		what = fmt.Sprintf("requests per minute %s above the baseline %s", num(value), num(baseline))
	case "traffic_low":
		what = fmt.Sprintf("requests per minute %s below the baseline %s", num(value), num(baseline))
	case "no_data":
		what = fmt.Sprintf("no log lines while about %s per minute were expected", num(baseline))
	case "error_ratio":
		what = fmt.Sprintf("5xx share %.1f%% above %.1f%%", value*100, baseline*100)
	case "backend_silent":
		what = fmt.Sprintf("no requests while the other backends get %s per minute", num(baseline))
	default:
		what = fmt.Sprintf("value %s, baseline %s", num(value), num(baseline))
	}
	return fmt.Sprintf("%s %s on %s: %s", strings.ToUpper(status), rule, scope, what)
}

func num(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprint(int64(f))
	}
	return fmt.Sprintf("%.1f", f)
}

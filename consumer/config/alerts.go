package config

import (
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"time"
)

// Alerts configures the alert rules that `consumer run` evaluates every
// minute and where their notices go.
type Alerts struct {
	// Enabled turns evaluation on; when several consumers run, one of them
	// (the holder of a MySQL lock) evaluates.
	Enabled bool `yaml:"enabled"`
	// Settle is how long after a minute ends it is evaluated: lines reach
	// MySQL a few seconds late (filebeat, Kafka, the flush interval).
	Settle time.Duration `yaml:"settle"`
	// ResolveMinutes is how many consecutive good minutes resolve a firing
	// alert; each rule's Minutes is how many bad ones fire it. Together
	// they damp flapping.
	ResolveMinutes int `yaml:"resolve_minutes"`
	// MinHistory is how much history the moving-average baseline needs:
	// a consumer that just started has no baseline, and the traffic and
	// no_data rules stay quiet until it has.
	MinHistory time.Duration `yaml:"min_history"`
	// RepeatInterval is how often a still-firing alert is notified again.
	RepeatInterval time.Duration `yaml:"repeat_interval"`
	// DashboardURL, when set, is linked from every notice.
	DashboardURL string `yaml:"dashboard_url"`

	TrafficHigh   TrafficRule `yaml:"traffic_high"`
	TrafficLow    TrafficRule `yaml:"traffic_low"`
	NoData        NoDataRule  `yaml:"no_data"`
	ErrorRatio    ErrorRule   `yaml:"error_ratio"`
	BackendSilent SilentRule  `yaml:"backend_silent"`
	Webhook       Webhook     `yaml:"webhook"`
	Email         Email       `yaml:"email"`
}

// TrafficRule is traffic_high or traffic_low: requests per minute above
// (below) Factor times the baseline for Minutes minutes. Floor, in requests
// per minute, keeps quiet times from paging: traffic_low needs a baseline of
// at least Floor, traffic_high a value of at least Floor.
type TrafficRule struct {
	Enabled bool    `yaml:"enabled"`
	Factor  float64 `yaml:"factor"`
	Minutes int     `yaml:"minutes"`
	Floor   float64 `yaml:"floor"`
}

// NoDataRule fires when no line at all arrived for Minutes minutes while
// the baseline is at least Floor requests per minute.
type NoDataRule struct {
	Enabled bool    `yaml:"enabled"`
	Minutes int     `yaml:"minutes"`
	Floor   float64 `yaml:"floor"`
}

// ErrorRule fires when the 5xx share is above Threshold for Minutes
// minutes; minutes with fewer than MinRequests requests do not count.
type ErrorRule struct {
	Enabled     bool    `yaml:"enabled"`
	Threshold   float64 `yaml:"threshold"`
	Minutes     int     `yaml:"minutes"`
	MinRequests float64 `yaml:"min_requests"`
}

// SilentRule fires when a backend seen in the previous hour gets no request
// for Minutes minutes while the other backends get at least MinOthers
// requests per minute together.
type SilentRule struct {
	Enabled   bool    `yaml:"enabled"`
	Minutes   int     `yaml:"minutes"`
	MinOthers float64 `yaml:"min_others"`
}

// Webhook posts every notice as JSON; "" url turns it off.
type Webhook struct {
	URL     string        `yaml:"url"`
	Timeout time.Duration `yaml:"timeout"`
	// Retries is how many times a failed POST is tried again, with
	// exponential backoff.
	Retries int `yaml:"retries"`
}

// Email sends every notice by SMTP; "" host turns it off.
type Email struct {
	Host     string   `yaml:"host"`
	Port     int      `yaml:"port"`
	Username string   `yaml:"username"`
	Password string   `yaml:"password"`
	From     string   `yaml:"from"`
	To       []string `yaml:"to"`
	// TLS is "starttls" (default: refuse a server without it), "tls"
	// (implicit TLS, port 465) or "none" (loopback relays only).
	TLS string `yaml:"tls"`
	// CAFile, when set, is the only CA trusted for the server's certificate.
	CAFile  string        `yaml:"ca_file"`
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultAlerts returns the alert settings' defaults.
func DefaultAlerts() Alerts {
	return Alerts{
		Enabled:        true,
		Settle:         time.Minute,
		ResolveMinutes: 3,
		MinHistory:     10 * time.Minute,
		RepeatInterval: 4 * time.Hour,
		TrafficHigh:    TrafficRule{Enabled: true, Factor: 3, Minutes: 5, Floor: 100},
		TrafficLow:     TrafficRule{Enabled: true, Factor: 0.3, Minutes: 5, Floor: 20},
		NoData:         NoDataRule{Enabled: true, Minutes: 3, Floor: 5},
		ErrorRatio:     ErrorRule{Enabled: true, Threshold: 0.05, Minutes: 5, MinRequests: 20},
		BackendSilent:  SilentRule{Enabled: true, Minutes: 3, MinOthers: 10},
		Webhook:        Webhook{Timeout: 10 * time.Second, Retries: 4},
		Email:          Email{Port: 587, TLS: "starttls", Timeout: 20 * time.Second},
	}
}

func (a *Alerts) validate(bad func(string, ...any)) {
	if a.Settle < 0 || a.Settle > 30*time.Minute {
		bad("alerts.settle %v: want 0 to 30m", a.Settle)
	}
	if a.ResolveMinutes < 1 || a.ResolveMinutes > 120 {
		bad("alerts.resolve_minutes %d: want 1 to 120", a.ResolveMinutes)
	}
	if a.MinHistory < time.Minute || a.MinHistory > time.Hour {
		bad("alerts.min_history %v: want 1m to 1h", a.MinHistory)
	}
	if a.RepeatInterval < time.Minute {
		bad("alerts.repeat_interval %v: want at least 1m", a.RepeatInterval)
	}
	if a.DashboardURL != "" {
		if u, err := url.Parse(a.DashboardURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			bad("alerts.dashboard_url %q: want an http(s) URL", a.DashboardURL)
		}
	}
	minutes := func(name string, n int) {
		if n < 1 || n > 120 {
			bad("alerts.%s.minutes %d: want 1 to 120", name, n)
		}
	}
	minutes("traffic_high", a.TrafficHigh.Minutes)
	minutes("traffic_low", a.TrafficLow.Minutes)
	minutes("no_data", a.NoData.Minutes)
	minutes("error_ratio", a.ErrorRatio.Minutes)
	minutes("backend_silent", a.BackendSilent.Minutes)
	if a.TrafficHigh.Factor <= 1 {
		bad("alerts.traffic_high.factor %g: want more than 1", a.TrafficHigh.Factor)
	}
	if a.TrafficLow.Factor <= 0 || a.TrafficLow.Factor >= 1 {
		bad("alerts.traffic_low.factor %g: want between 0 and 1", a.TrafficLow.Factor)
	}
	for name, v := range map[string]float64{
		"traffic_high.floor": a.TrafficHigh.Floor, "traffic_low.floor": a.TrafficLow.Floor,
		"no_data.floor": a.NoData.Floor, "error_ratio.min_requests": a.ErrorRatio.MinRequests,
		"backend_silent.min_others": a.BackendSilent.MinOthers,
	} {
		if v < 0 {
			bad("alerts.%s %g: must not be negative", name, v)
		}
	}
	if a.ErrorRatio.Threshold <= 0 || a.ErrorRatio.Threshold >= 1 {
		bad("alerts.error_ratio.threshold %g: want between 0 and 1", a.ErrorRatio.Threshold)
	}
	if w := a.Webhook; w.URL != "" {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// Not shown: the URL carries its service's token.
			bad("alerts.webhook.url: want an http(s) URL")
		}
		if w.Timeout <= 0 {
			bad("alerts.webhook.timeout must be positive")
		}
		if w.Retries < 0 || w.Retries > 20 {
			bad("alerts.webhook.retries %d: want 0 to 20", w.Retries)
		}
	}
	if e := a.Email; e.Host != "" {
		if e.Port <= 0 || e.Port > 65535 {
			bad("alerts.email.port %d is out of range", e.Port)
		}
		if _, err := mail.ParseAddress(e.From); err != nil {
			bad("alerts.email.from %q: %v", e.From, err)
		}
		if len(e.To) == 0 {
			bad("alerts.email.to: at least one recipient is needed")
		}
		for _, to := range e.To {
			if _, err := mail.ParseAddress(to); err != nil {
				bad("alerts.email.to %q: %v", to, err)
			}
		}
		switch e.TLS {
		case "starttls", "tls":
		case "none":
			if e.Password != "" && !isLoopback(e.Host) {
				bad("alerts.email: tls none would send the password in clear to %s; use starttls or tls", e.Host)
			}
		default:
			bad("alerts.email.tls %q: want starttls, tls or none", e.TLS)
		}
		if e.Timeout <= 0 {
			bad("alerts.email.timeout must be positive")
		}
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SMTPAddr returns host:port of the mail server.
func (e Email) SMTPAddr() string { return net.JoinHostPort(e.Host, fmt.Sprint(e.Port)) }

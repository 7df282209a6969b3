package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const full = `
kafka:
  brokers: [kafka-1:9092, kafka-2:9092]
  topic: weblogs
  group: billing
mysql:
  host: db-1
  port: 3307
  user: tl
  password: "s3cr:et'\"x"
  database: tl
log_format: combined
flush_interval: 500ms
shutdown_timeout: 5s
retention:
  minute_days: 7
  bandwidth_months: 24
listen: "[::1]:9999"
reject_samples: 10
log_level: debug
`

func write(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "consumer.yaml")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
	return p
}

func TestLoadFull(t *testing.T) {
	c, err := Load(write(t, full, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Topic != "weblogs" || len(c.Kafka.Brokers) != 2 || c.Kafka.Group != "billing" {
		t.Errorf("kafka = %+v", c.Kafka)
	}
	if c.MySQL.Password != `s3cr:et'"x` || c.MySQL.Port != 3307 {
		t.Errorf("mysql = %+v", c.MySQL)
	}
	if n, a := c.MySQL.Addr(); n != "tcp" || a != "db-1:3307" {
		t.Errorf("addr = %s %s", n, a)
	}
	if c.FlushInterval != 500*time.Millisecond || c.ShutdownTimeout != 5*time.Second {
		t.Errorf("durations %v %v", c.FlushInterval, c.ShutdownTimeout)
	}
	if c.Retention.MinuteDays != 7 || c.Retention.BandwidthMonths != 24 || c.RejectSamples != 10 {
		t.Errorf("retention %+v samples %d", c.Retention, c.RejectSamples)
	}
	if _, err := c.Parser(); err != nil {
		t.Error(err)
	}
}

func TestLoadDefaults(t *testing.T) {
	c, err := Load(write(t, "kafka: {brokers: ['k:9092']}\nmysql: {socket: /run/mysqld/mysqld.sock, password: x}\n", 0o600))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if c.FlushInterval != d.FlushInterval || c.Kafka.Topic != "nginxlog" || c.LogFormat != "trafficlab" ||
		c.Retention != d.Retention || c.Listen != d.Listen {
		t.Errorf("defaults not applied: %+v", c)
	}
	if n, a := c.MySQL.Addr(); n != "unix" || a != "/run/mysqld/mysqld.sock" {
		t.Errorf("addr = %s %s", n, a)
	}
}

func TestLoadRefusesReadableFile(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		_, err := Load(write(t, full, mode))
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v", mode, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	base := "kafka: {brokers: ['k:9092']}\nmysql: {host: db}\n"
	for name, c := range map[string]struct{ body, want string }{
		"unknown key":           {base + "flush_intervall: 1s\n", "flush_intervall"},
		"no brokers":            {"mysql: {host: db}\n", "kafka.brokers"},
		"bad broker":            {"kafka: {brokers: ['k']}\nmysql: {host: db}\n", "host:port"},
		"no mysql":              {"kafka: {brokers: ['k:9092']}\n", "host or socket"},
		"short billing":         {base + "retention: {bandwidth_months: 12}\n", "at least 13"},
		"no minute rows":        {base + "retention: {minute_days: 0}\n", "minute_days"},
		"bad format":            {base + "log_format: '$remote_addr $'\n", "log_format"},
		"bad escape":            {base + "log_escape: html\n", "log_escape"},
		"bad duration":          {base + "flush_interval: soon\n", "soon"},
		"tiny flush":            {base + "flush_interval: 1ms\n", "flush_interval"},
		"bad level":             {base + "log_level: loud\n", "log_level"},
		"bad listen":            {base + "listen: 9310\n", "listen"},
		"negative sample":       {base + "reject_samples: -1\n", "reject_samples"},
		"negative dedup window": {base + "dedup_window: -1\n", "dedup_window -1"},
		"huge dedup window":     {base + "dedup_window: 10000001\n", "dedup_window 10000001"},
		"low factor up":         {base + "alerts: {traffic_high: {factor: 0.5}}\n", "traffic_high.factor"},
		"low factor down":       {base + "alerts: {traffic_low: {factor: 2}}\n", "traffic_low.factor"},
		"zero minutes":          {base + "alerts: {no_data: {minutes: 0}}\n", "no_data.minutes"},
		"ratio of 5":            {base + "alerts: {error_ratio: {threshold: 5}}\n", "error_ratio.threshold"},
		"no resolve":            {base + "alerts: {resolve_minutes: 0}\n", "resolve_minutes"},
		"fast repeat":           {base + "alerts: {repeat_interval: 10s}\n", "repeat_interval"},
		"bad webhook":           {base + "alerts: {webhook: {url: 'ftp://x'}}\n", "webhook.url"},
		"mail nobody":           {base + "alerts: {email: {host: smtp, from: a@b.c}}\n", "email.to"},
		"mail bad tls":          {base + "alerts: {email: {host: smtp, from: a@b.c, to: [d@e.f], tls: maybe}}\n", "email.tls"},
		"clear password":        {base + "alerts: {email: {host: smtp.example.org, from: a@b.c, to: [d@e.f], tls: none, password: x}}\n", "in clear"},
		"alert typo":            {base + "alerts: {trafic_low: {factor: 0.5}}\n", "trafic_low"},
		"sasl in clear":         {"kafka: {brokers: ['k:9092'], sasl: {mechanism: SCRAM-SHA-512, username: u, password: p}}\nmysql: {host: db}\n", "needs kafka.tls"},
		"sasl plain":            {"kafka: {brokers: ['k:9092'], tls: {ca_file: /ca.pem}, sasl: {mechanism: PLAIN, username: u, password: p}}\nmysql: {host: db}\n", "SCRAM-SHA-512 or SCRAM-SHA-256"},
		"sasl no user":          {"kafka: {brokers: ['k:9092'], tls: {ca_file: /ca.pem}, sasl: {mechanism: SCRAM-SHA-512, password: p}}\nmysql: {host: db}\n", "username and password"},
	} {
		_, err := Parse([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

// TestExampleConfig keeps the shipped example valid.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../consumer.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention.BandwidthMonths < MinBandwidthMonths || c.MySQL.Password == "" {
		t.Errorf("example config %+v", c)
	}
	// The example documents the alert defaults: it must show them as they
	// are (the example mail addresses aside).
	got := c.Alerts
	got.Email.From, got.Email.To = "", nil
	if want := DefaultAlerts(); !reflect.DeepEqual(got, want) {
		t.Errorf("example alerts differ from the defaults:\n%+v\n%+v", got, want)
	}
}

// Package config reads the consumer's YAML configuration file.
//
// The file holds the MySQL password (and the Kafka login), so it must not be readable by anyone
// but its owner (mode 0600): Load refuses it otherwise. The password is
// never taken from the command line or the environment, where other users
// could read it (ps, /proc/PID/environ).
package config

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/internal/kafkatls"
)

// Config is the consumer's configuration.
type Config struct {
	Kafka Kafka `yaml:"kafka"`
	MySQL MySQL `yaml:"mysql"`
	// LogFormat is the nginx log_format of the lines: a format string or a
	// predefined name (nginxlog.FormatName, "combined").
	LogFormat string `yaml:"log_format"`
	// LogEscape is the log_format's escape= parameter.
	LogEscape string `yaml:"log_escape"`
	// FlushInterval is how often aggregates and offsets are committed.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// ShutdownTimeout bounds the final flush on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	Retention       Retention     `yaml:"retention"`
	// Listen is the address of /metrics and /healthz; "" disables them.
	Listen string `yaml:"listen"`
	// RejectSamples is how many rejected lines MySQL keeps for inspection.
	RejectSamples int `yaml:"reject_samples"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `yaml:"log_level"`
	// Dashboard is read by `consumer dashboard`, which serves the web
	// page and its JSON API from the same MySQL.
	Dashboard Dashboard `yaml:"dashboard"`
	// Alerts are evaluated by `consumer run` and listed by the dashboard.
	Alerts Alerts `yaml:"alerts"`
	// TimeWindow bounds the time of a line around now; lines outside are
	// rejects (value), not minutes.
	TimeWindow TimeWindow `yaml:"time_window"`
	// ProbeKey signs verify's probe URIs (HMAC): only a probe signed with
	// it is recorded in the probes table. "" records none.
	ProbeKey string `yaml:"probe_key"`
	// DedupWindow is how many of a partition's last filebeat events the
	// consumer remembers, so that a copy filebeat sent again is not counted
	// twice; 0 turns that off.
	DedupWindow int `yaml:"dedup_window"`
}

// MaxDedupWindow bounds dedup_window: a window costs 24 to 40 bytes per
// event and partition.
const MaxDedupWindow = 10_000_000

// TimeWindow is how far before and after now a line's time may lie; 0
// leaves that side open (replaying old logs), within the years MySQL
// stores.
type TimeWindow struct {
	Back  time.Duration `yaml:"back"`
	Ahead time.Duration `yaml:"ahead"`
}

// MinProbeKey is the least length of a probe key.
const MinProbeKey = 16

// Dashboard configures `consumer dashboard`.
type Dashboard struct {
	// Listen is the address the dashboard serves HTTP on.
	Listen string `yaml:"listen"`
	// User and Password are the login (HTTP basic auth) of every page but
	// /healthz; `consumer dashboard` refuses to serve without a password.
	User     string `yaml:"user"`
	Password string `yaml:"password"`
}

// Kafka says where the lines come from.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	Topic   string   `yaml:"topic"`
	// Group is the Kafka consumer group the consumers join, which gives
	// each of them its share of the partitions, and names their offsets
	// in MySQL (they are not committed to Kafka): consumers of one group
	// share the work and never count a line twice.
	Group    string `yaml:"group"`
	ClientID string `yaml:"client_id"`
	// SessionTimeout is how long the group waits for a consumer that
	// stopped answering (killed, cut off) before its partitions go to the
	// others.
	SessionTimeout time.Duration `yaml:"session_timeout"`
	// TLS connects to the brokers over TLS when CAFile is set.
	TLS KafkaTLS `yaml:"tls"`
	// SASL logs in to the brokers (over TLS only) when Mechanism is set.
	SASL KafkaSASL `yaml:"sasl"`
}

// KafkaTLS is kafka.tls.
type KafkaTLS struct {
	// CAFile is the PEM certificate of the CA that signed the brokers'.
	CAFile string `yaml:"ca_file"`
}

// KafkaSASL is kafka.sasl: SCRAM-SHA-512 or SCRAM-SHA-256.
type KafkaSASL struct {
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	Password  string `yaml:"password"`
}

// TLSConfig is the TLS configuration of the Kafka connections; nil when
// kafka.tls is not set.
func (k Kafka) TLSConfig() (*tls.Config, error) {
	if k.TLS.CAFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(k.TLS.CAFile)
	if err != nil {
		return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
	}
	cfg, err := kafkatls.ClientConfig(b, nil)
	if err != nil {
		return nil, fmt.Errorf("kafka.tls.ca_file %s: %w", k.TLS.CAFile, err)
	}
	return cfg, nil
}

// MySQL says where the aggregates go.
type MySQL struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Socket   string `yaml:"socket"` // a unix socket instead of host and port
	User     string `yaml:"user"`
	Password string `yaml:"password"`
	Database string `yaml:"database"`
}

// Addr returns the network and address of the server.
func (m MySQL) Addr() (network, addr string) {
	if m.Socket != "" {
		return "unix", m.Socket
	}
	return "tcp", net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
}

// Retention says how long rows are kept.
type Retention struct {
	// MinuteDays: per-minute rows (and probes and reject counts).
	MinuteDays int `yaml:"minute_days"`
	// BandwidthMonths: 5-minute bandwidth samples, at least 13 so that the
	// 95th percentile of every month of the past year can be billed again.
	BandwidthMonths int `yaml:"bandwidth_months"`
}

// MinBandwidthMonths is the least retention of bandwidth samples.
const MinBandwidthMonths = 13

// Defaults returns a Config with every optional setting at its default.
func Defaults() Config {
	return Config{
		Kafka:           Kafka{Topic: "nginxlog", Group: "trafficlab-consumer", ClientID: "trafficlab-consumer", SessionTimeout: 10 * time.Second},
		MySQL:           MySQL{Port: 3306, User: "trafficlab", Database: "trafficlab"},
		LogFormat:       nginxlog.FormatName,
		LogEscape:       "default",
		FlushInterval:   2 * time.Second,
		ShutdownTimeout: 20 * time.Second,
		Retention:       Retention{MinuteDays: 35, BandwidthMonths: MinBandwidthMonths},
		Listen:          "127.0.0.1:9310",
		RejectSamples:   1000,
		LogLevel:        "info",
		Dashboard:       Dashboard{Listen: "127.0.0.1:8080", User: "admin"},
		Alerts:          DefaultAlerts(),
		// A week back covers a consumer stopped over a long weekend; an
		// hour ahead, clocks a little off.
		TimeWindow: TimeWindow{Back: 7 * 24 * time.Hour, Ahead: time.Hour},
		// A copy comes seconds after its original: 100,000 events is
		// minutes of a busy partition, 2.9 MB each.
		DedupWindow: 100_000,
	}
}

// Load reads and validates the file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("config %s: mode %04o lets other users read the MySQL password: chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads and validates a configuration; unknown keys are errors, so a
// typo does not silently leave a default in place.
func Parse(data []byte) (*Config, error) {
	c := Defaults()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the settings.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers: at least one broker address is needed")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("kafka.brokers: %q: want host:port", b)
		}
	}
	if c.Kafka.Topic == "" {
		bad("kafka.topic is empty")
	}
	if s := c.Kafka.SASL; s.Mechanism != "" || s.Username != "" || s.Password != "" {
		switch {
		case s.Mechanism != "SCRAM-SHA-512" && s.Mechanism != "SCRAM-SHA-256":
			bad("kafka.sasl.mechanism %q: want SCRAM-SHA-512 or SCRAM-SHA-256", s.Mechanism)
		case s.Username == "" || s.Password == "":
			bad("kafka.sasl: username and password are needed")
		case c.Kafka.TLS.CAFile == "":
			bad("kafka.sasl needs kafka.tls: the login would go over the network in clear")
		}
	}
	if c.Kafka.Group == "" {
		bad("kafka.group is empty")
	}
	// The brokers refuse one below their group.min.session.timeout.ms
	// (6 s unless set otherwise) and say so.
	if t := c.Kafka.SessionTimeout; t < time.Second || t > 30*time.Minute {
		bad("kafka.session_timeout %s: want 1s to 30m (the brokers' least is 6s unless set otherwise)", t)
	}
	if len(c.Kafka.Group) > 255 || len(c.Kafka.Topic) > 249 {
		bad("kafka.group or kafka.topic is too long")
	}
	if c.MySQL.Socket == "" && c.MySQL.Host == "" {
		bad("mysql: host or socket is needed")
	}
	if c.MySQL.Port <= 0 || c.MySQL.Port > 65535 {
		bad("mysql.port %d is out of range", c.MySQL.Port)
	}
	if c.MySQL.User == "" || c.MySQL.Database == "" {
		bad("mysql.user and mysql.database are needed")
	}
	if esc, err := nginxlog.ParseEscape(c.LogEscape); err != nil {
		bad("log_escape: %v", err)
	} else if _, err := nginxlog.Compile(c.LogFormat, nginxlog.WithEscape(esc)); err != nil {
		bad("log_format: %v", err)
	}
	if c.FlushInterval < 100*time.Millisecond || c.FlushInterval > 5*time.Minute {
		bad("flush_interval %v: want 100ms to 5m", c.FlushInterval)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout must be positive")
	}
	if c.Retention.MinuteDays < 1 {
		bad("retention.minute_days %d: want at least 1", c.Retention.MinuteDays)
	}
	if c.Retention.BandwidthMonths < MinBandwidthMonths {
		bad("retention.bandwidth_months %d: billing needs at least %d", c.Retention.BandwidthMonths, MinBandwidthMonths)
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen %q: want host:port", c.Listen)
		}
	}
	if _, _, err := net.SplitHostPort(c.Dashboard.Listen); err != nil {
		bad("dashboard.listen %q: want host:port", c.Dashboard.Listen)
	}
	if c.Dashboard.User == "" || strings.ContainsAny(c.Dashboard.User, ":\r\n") {
		bad("dashboard.user %q: want a name without a colon", c.Dashboard.User)
	}
	if c.RejectSamples < 0 || c.RejectSamples > 100000 {
		bad("reject_samples %d: want 0 to 100000", c.RejectSamples)
	}
	if c.TimeWindow.Back < 0 || c.TimeWindow.Ahead < 0 {
		bad("time_window: back and ahead must not be negative")
	}
	if c.DedupWindow < 0 || c.DedupWindow > MaxDedupWindow {
		bad("dedup_window %d: want 0 to %d", c.DedupWindow, MaxDedupWindow)
	}
	if c.ProbeKey != "" && len(c.ProbeKey) < MinProbeKey {
		bad("probe_key: want at least %d characters", MinProbeKey)
	}
	c.Alerts.validate(bad)
	if _, err := c.SlogLevel(); err != nil {
		bad("log_level: %v", err)
	}
	return errors.Join(errs...)
}

// SlogLevel returns LogLevel as a log/slog level.
func (c *Config) SlogLevel() (l slog.Level, err error) {
	err = l.UnmarshalText([]byte(c.LogLevel))
	return l, err
}

// Parser compiles the configured log format.
func (c *Config) Parser() (*nginxlog.Parser, error) {
	esc, err := nginxlog.ParseEscape(c.LogEscape)
	if err != nil {
		return nil, err
	}
	return nginxlog.Compile(c.LogFormat, nginxlog.WithEscape(esc))
}

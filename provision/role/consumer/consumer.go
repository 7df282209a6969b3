// Package consumer is the role of the consumer hosts: `consumer run`, built
// from this module for the host, reading the log topic from every broker
// and committing aggregates and offsets to MySQL (see goservice for how it
// is deployed). The engine starts it after the database and the brokers.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/mysql"
	"github.com/trafficlab/trafficlab/provision/role/topic"
	"github.com/trafficlab/trafficlab/provision/rolekit/goservice"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Service is the consumer's service: its unit, user, binary and
// configuration paths, for drills and checks.
var Service = goservice.Service{Name: "consumer", Description: "nginx log consumer from Kafka into MySQL", Command: "run"}

// MetricsListen is where the consumer serves /metrics and /healthz: on
// the loopback only (checks reach it over SSH).
const MetricsListen = "127.0.0.1:9310"

// Metrics of the consumer (consumer/service) that verify and the drills
// read.
const (
	MetricLag        = "trafficlab_consumer_lag_messages" // per partition held
	MetricAssigned   = "trafficlab_consumer_assigned_partitions"
	MetricGeneration = "trafficlab_consumer_group_generation"
	// MetricDuplicates counts copies of filebeat events skipped.
	MetricDuplicates = "trafficlab_consumer_duplicates_total"
)

// Option configures the role.
type Option func(*consumerRole)

// WithBuilder builds the binary with b instead of goservice.ConsumerBuilder.
func WithBuilder(b goservice.Builder) Option { return func(r *consumerRole) { r.builder = b } }

// New returns the consumer role.
func New(opts ...Option) role.Role {
	r := &consumerRole{builder: goservice.ConsumerBuilder()}
	for _, o := range opts {
		o(r)
	}
	return r
}

type consumerRole struct{ builder goservice.Builder }

// Name is the role's name.
const Name = "consumer"

func (*consumerRole) Name() string             { return Name }
func (*consumerRole) On(h inventory.Host) bool { return h.Has(inventory.RoleConsumer) }

// Needs: the consumer reads the topic on the brokers into the database.
func (*consumerRole) Needs(*inventory.Inventory) []string {
	return []string{mysql.Name, kafka.Name, topic.Name}
}

func (*consumerRole) Files(c *role.Context) ([]role.File, error) {
	if !c.Host.Has(inventory.RoleConsumer) {
		return nil, fmt.Errorf("%s does not have the consumer role", c.Host.Name)
	}
	// dashboard.listen is only read by `consumer dashboard`; the same
	// value keeps the two files alike.
	dash := net.JoinHostPort(c.Host.Address, strconv.Itoa(c.Inventory.Dashboard.Port))
	return Service.Files(c, goservice.ConfigOptions{Listen: MetricsListen, DashboardListen: dash}, goservice.LocalAfter(c))
}

func (r *consumerRole) Plan(c *role.Context) (role.Plan, error) {
	files, err := r.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	bin, err := r.builder.Build(c.OS.Arch)
	if err != nil {
		return role.Plan{}, fmt.Errorf("%s (%s): %w", c.Host.Name, c.OS.Machine, err)
	}
	p := Service.Plan(files, bin)
	p.Steps = append(p.Steps, healthWait())
	return p, nil
}

// HealthProbe asks the consumer's /healthz on MetricsListen, from the
// host, and prints the HTTP answer.
func HealthProbe() string {
	_, port, _ := net.SplitHostPort(MetricsListen)
	n, _ := strconv.Atoi(port)
	return step.TCPProbe(n, `'GET /healthz HTTP/1.0\r\n\r\n'`)
}

// HealthTimeout bounds the wait for a started consumer to answer /healthz.
var HealthTimeout = time.Minute

// healthWait holds the host's steps until the consumer answers /healthz:
// proof that the binary runs on the host and accepted its configuration
// (it serves /healthz before connecting to anything, and reports an
// outage only after retrying it for a while).
func healthWait() step.Step {
	probe := HealthProbe()
	return step.Wait("consumer answering /healthz on "+MetricsListen, HealthTimeout,
		fmt.Sprintf("see `journalctl -u %s` on this host", Service.Unit()),
		func(ctx context.Context, h step.Host) (bool, string, error) {
			res, err := h.Run(ctx, probe, remote.WithTimeout(10*time.Second))
			var exit *remote.ExitError
			if errors.As(err, &exit) {
				return false, "nothing answers on " + MetricsListen, nil
			}
			if err != nil {
				return false, "", err
			}
			status, _, _ := strings.Cut(string(res.Stdout), "\n")
			status = strings.TrimSpace(status)
			return strings.HasSuffix(status, " 200 OK"), "/healthz answered " + strconv.Quote(status), nil
		})
}

func (*consumerRole) Remove(*role.Context) ([]step.Step, error) { return Service.Remove(), nil }

// Logs: the consumer logs to the journal.
func (*consumerRole) Logs(*role.Context) role.Logs { return role.Logs{Units: []string{Service.Unit()}} }

func (*consumerRole) Keeps(*role.Context) []string {
	return []string{"the consumer's data in MySQL (the mysql role's destroy drops the database)"}
}

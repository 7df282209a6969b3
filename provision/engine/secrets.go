package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

	"github.com/trafficlab/trafficlab/internal/kafkatls"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
)

// secretSpec is one cluster secret: where the inventory may give it, the
// stack configuration key that keeps a generated one, and how to make one.
type secretSpec struct {
	key    string // resource input key and config key (under "trafficlab:")
	length int
	get    func(*inventory.Inventory) inventory.Secret
	field  func(*role.Secrets) *string
	// when says whether the cluster needs the secret; nil is always.
	when func(*inventory.Inventory) bool
}

func notGiven(*inventory.Inventory) inventory.Secret { return inventory.Secret{} }

func saslSSL(inv *inventory.Inventory) bool {
	return inv.Kafka.Security == inventory.KafkaSASLSSL && len(inv.HostsWith(inventory.RoleKafka)) > 0
}

var secretSpecs = []secretSpec{
	// keepalived uses at most 8 characters of auth_pass.
	{key: "vrrpAuthPass", length: 8, get: func(i *inventory.Inventory) inventory.Secret { return i.LB.AuthPass },
		field: func(s *role.Secrets) *string { return &s.VRRPAuth }},
	{key: "mysqlPassword", length: 24, get: func(i *inventory.Inventory) inventory.Secret { return i.MySQL.Password },
		field: func(s *role.Secrets) *string { return &s.MySQLPassword }},
	{key: "mysqlRootPassword", length: 24, get: func(i *inventory.Inventory) inventory.Secret { return i.MySQL.RootPassword },
		field: func(s *role.Secrets) *string { return &s.MySQLRootPassword }},
	// Generated only: nothing outside the cluster needs to choose them.
	{key: "mysqlDashboardPassword", length: 24, get: notGiven,
		field: func(s *role.Secrets) *string { return &s.MySQLDashboardPassword }},
	{key: "probeKey", length: 32, get: notGiven,
		field: func(s *role.Secrets) *string { return &s.ProbeKey }},
	{key: "dashboardPassword", length: 20, get: func(i *inventory.Inventory) inventory.Secret { return i.Dashboard.Password },
		field: func(s *role.Secrets) *string { return &s.DashboardPassword }},
	{key: "kafkaFilebeatPassword", length: 24, get: notGiven, when: saslSSL,
		field: func(s *role.Secrets) *string { return &s.KafkaFilebeatPassword }},
	{key: "kafkaConsumerPassword", length: 24, get: notGiven, when: saslSSL,
		field: func(s *role.Secrets) *string { return &s.KafkaConsumerPassword }},
}

// configNamespace prefixes our keys in the stack configuration: Pulumi
// scopes configuration by project name.
const configNamespace = projectName + ":"

// Keys of the Kafka TLS material, in the stack configuration and in the
// secrets input of resources.
const (
	kafkaCAKey    = "kafkaCA"     // the CA's key and certificate (the stack only)
	kafkaCACert   = "kafkaCACert" // its certificate (resources)
	kafkaAdminKey = "kafkaAdmin"
	kafkaCertKey  = "kafkaCert." // + the broker's host name
)

// secretsToMap and secretsFromMap convert between role.Secrets and the
// secrets input of resources. host's resources carry the secrets of that
// host alone: no broker's key is in another host's inputs. A secret the
// cluster does not use is left out, so turning on a feature changes only
// the resources that use it.
func secretsToMap(s role.Secrets, host string) map[string]string {
	m := map[string]string{}
	for _, sp := range secretSpecs {
		if v := *sp.field(&s); v != "" || sp.when == nil {
			m[sp.key] = v
		}
	}
	if s.KafkaCA != "" {
		m[kafkaCACert] = s.KafkaCA
		m[kafkaAdminKey] = s.KafkaAdmin
	}
	if c, ok := s.KafkaCerts[host]; ok {
		m[kafkaCertKey+host] = c
	}
	return m
}

func secretsFromMap(m map[string]string) role.Secrets {
	var s role.Secrets
	for _, sp := range secretSpecs {
		*sp.field(&s) = m[sp.key]
	}
	s.KafkaCA, s.KafkaAdmin = m[kafkaCACert], m[kafkaAdminKey]
	for k, v := range m {
		if host, ok := strings.CutPrefix(k, kafkaCertKey); ok {
			if s.KafkaCerts == nil {
				s.KafkaCerts = map[string]string{}
			}
			s.KafkaCerts[host] = v
		}
	}
	return s
}

// configStore is the part of a stack the secrets need: reading its
// configuration (decrypted) and setting one secret value.
type configStore interface {
	all(ctx context.Context) (auto.ConfigMap, error)
	setSecret(ctx context.Context, key, value string) error
	set(ctx context.Context, key, value string) error
}

// resolveSecrets returns the cluster's secrets: each from the inventory
// when given there, else from the stack's secret configuration, else
// generated now and stored there (encrypted with the stack's passphrase),
// so that every later run uses the same value. Values are never printed.
// generated lists the keys made in this call.
func resolveSecrets(ctx context.Context, inv *inventory.Inventory, store configStore) (s role.Secrets, generated []string, err error) {
	var cfg auto.ConfigMap
	for _, sp := range secretSpecs {
		if sp.when != nil && !sp.when(inv) {
			continue
		}
		if v := sp.get(inv); v.IsSet() {
			*sp.field(&s) = v.Value()
			continue
		}
		if cfg == nil {
			if cfg, err = store.all(ctx); err != nil {
				return s, nil, fmt.Errorf("read the stack's secrets: %w", err)
			}
		}
		if v, ok := cfg[configNamespace+sp.key]; ok && v.Value != "" {
			*sp.field(&s) = v.Value
			continue
		}
		v, err := generateSecret(sp.length)
		if err != nil {
			return s, generated, err
		}
		if err := store.setSecret(ctx, configNamespace+sp.key, v); err != nil {
			return s, generated, fmt.Errorf("store the generated %s: %w", sp.key, err)
		}
		*sp.field(&s) = v
		generated = append(generated, sp.key)
	}
	made, err := resolveKafkaTLS(ctx, inv, store, cfg, &s)
	return s, append(generated, made...), err
}

// resolveKafkaTLS fills in the Kafka TLS material when kafka.security asks
// for TLS: the CA (the inventory's kafka.ca, else the stack's, else made
// now and kept there), then provision's client certificate and every
// broker's, each kept in the stack and made again only when it no longer
// fits (another CA, a changed name or address, 30 days from expiry). made
// lists what was made in this call.
func resolveKafkaTLS(ctx context.Context, inv *inventory.Inventory, store configStore, cfg auto.ConfigMap, s *role.Secrets) (made []string, err error) {
	brokers := inv.HostsWith(inventory.RoleKafka)
	if !inv.Kafka.TLS() || len(brokers) == 0 {
		return nil, nil
	}
	if cfg == nil {
		if cfg, err = store.all(ctx); err != nil {
			return nil, fmt.Errorf("read the stack's secrets: %w", err)
		}
	}
	// keep returns the stack's value of key when ok accepts it, else
	// stores and returns a new one. Values are PEM text ending in one
	// newline whichever way they came: the CLI drops the newline a value
	// set through its stdin ends in, and the files written from them must
	// be the same in the run that made them and in every later one.
	keep := func(key string, ok func([]byte) error, mk func() ([]byte, error)) ([]byte, error) {
		if v, found := cfg[configNamespace+key]; found && v.Value != "" && ok([]byte(v.Value)) == nil {
			return pemText(v.Value), nil
		}
		b, err := mk()
		if err != nil {
			return nil, err
		}
		b = pemText(string(b))
		if err := store.setSecret(ctx, configNamespace+key, string(b)); err != nil {
			return nil, fmt.Errorf("store the generated %s: %w", key, err)
		}
		made = append(made, key)
		return b, nil
	}
	var caPEM []byte
	if inv.Kafka.CA.PEM.IsSet() {
		caPEM = []byte(inv.Kafka.CA.PEM.Value())
	} else {
		caPEM, err = keep(kafkaCAKey, func(b []byte) error { _, err := kafkatls.ParseCA(b, nil); return err },
			func() ([]byte, error) { return kafkatls.NewCA(inv.Cluster.Name) })
		if err != nil {
			return made, err
		}
	}
	ca, err := kafkatls.ParseCA(caPEM, nil)
	if err != nil {
		return made, fmt.Errorf("the Kafka CA: %w", err)
	}
	s.KafkaCA = string(ca.CertPEM)
	admin, err := keep(kafkaAdminKey, func(b []byte) error { return ca.Check(b, kafkatls.AdminName, nil, nil) },
		func() ([]byte, error) { return ca.Issue(kafkatls.AdminName, nil, nil) })
	if err != nil {
		return made, err
	}
	s.KafkaAdmin = string(admin)
	s.KafkaCerts = map[string]string{}
	for _, h := range brokers {
		dns, ips := kafka.CertNames(h)
		b, err := keep(kafkaCertKey+h.Name, func(b []byte) error { return ca.Check(b, h.Name, dns, ips) },
			func() ([]byte, error) { return ca.Issue(h.Name, dns, ips) })
		if err != nil {
			return made, err
		}
		s.KafkaCerts[h.Name] = string(b)
	}
	return made, nil
}

// resolveValues returns the values the roles on the inventory's hosts
// keep in the stack's configuration (role.ValueRole), making each the
// first time and keeping it there, so every later run and every host uses
// the same one. They are no secrets. generated names those made in this
// call.
func resolveValues(ctx context.Context, inv *inventory.Inventory, roles []role.Role, store configStore) (values map[string]string, generated []string, err error) {
	var wanted []role.Value
	for _, ro := range roles {
		vr, ok := ro.(role.ValueRole)
		if !ok || !onSomeHost(ro, inv) {
			continue
		}
		wanted = append(wanted, vr.Values(inv)...)
	}
	if len(wanted) == 0 {
		return nil, nil, nil
	}
	cfg, err := store.all(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("read the stack's configuration: %w", err)
	}
	values = map[string]string{}
	for _, v := range wanted {
		if _, done := values[v.Key]; done {
			continue
		}
		if kept, ok := cfg[configNamespace+v.Key]; ok && kept.Value != "" {
			if err := v.Valid(kept.Value); err != nil {
				return nil, nil, fmt.Errorf("the stack's %s%s: %w", configNamespace, v.Key, err)
			}
			values[v.Key] = kept.Value
			continue
		}
		made, err := v.New()
		if err != nil {
			return nil, nil, fmt.Errorf("make the stack's %s: %w", v.Key, err)
		}
		if err := store.set(ctx, configNamespace+v.Key, made); err != nil {
			return nil, nil, fmt.Errorf("store the generated %s: %w", v.Key, err)
		}
		values[v.Key] = made
		generated = append(generated, v.Key+" "+made)
	}
	return values, generated, nil
}

// onSomeHost reports whether ro has a resource on any of inv's hosts.
func onSomeHost(ro role.Role, inv *inventory.Inventory) bool {
	for _, h := range inv.Hosts {
		if role.Applies(ro, inv, h) {
			return true
		}
	}
	return false
}

// kafkaSecurityKey keeps, in the stack's configuration, the kafka.security
// the brokers were set up with.
const kafkaSecurityKey = "kafkaSecurity"

// checkKafkaSecurity refuses a kafka.security other than the one the
// stack's brokers run with: the change is no rolling one (a restarted
// broker would have listeners its peers lack, and the roll would halt
// with the cluster degraded), so up and preview say so before anything
// is touched. Without brokers in the state (before the first up, after
// destroy) any value goes, and is kept. brokersRunning reports whether the
// state has broker resources; a stack set up before trafficlab kept the
// setting ran plaintext, the only kind there was.
func checkKafkaSecurity(ctx context.Context, inv *inventory.Inventory, store configStore, brokersRunning func(context.Context) (bool, error)) error {
	if len(inv.HostsWith(inventory.RoleKafka)) == 0 {
		return nil
	}
	cfg, err := store.all(ctx)
	if err != nil {
		return fmt.Errorf("read the stack's configuration: %w", err)
	}
	want := string(inv.Kafka.Security)
	was := cfg[configNamespace+kafkaSecurityKey].Value
	if was == want {
		return nil
	}
	running, err := brokersRunning(ctx)
	if err != nil {
		return err
	}
	if running && was == "" {
		was = string(inventory.KafkaPlaintext)
	}
	if running && was != want {
		return fmt.Errorf("%s: kafka.security is %s, but the brokers run with %s: changing it is no rolling change (a restarted broker would have listeners the others lack, and the cluster would be left degraded); set it back to %s, or run provision destroy, then up",
			inv.Where("kafka.security"), want, was, was)
	}
	if err := store.set(ctx, configNamespace+kafkaSecurityKey, want); err != nil {
		return fmt.Errorf("keep kafka.security in the stack: %w", err)
	}
	return nil
}

// pemText is PEM text with exactly one newline at its end.
func pemText(s string) []byte { return []byte(strings.TrimSpace(s) + "\n") }

// secretAlphabet avoids characters that need quoting in any config format
// the roles write (keepalived, my.cnf, YAML).
const secretAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

func generateSecret(n int) (string, error) {
	var b strings.Builder
	max := big.NewInt(int64(len(secretAlphabet)))
	for range n {
		i, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate a secret: %w", err)
		}
		b.WriteByte(secretAlphabet[i.Int64()])
	}
	return b.String(), nil
}

// stackConfig is the configStore of a stack. Setting a value goes through
// the CLI's stdin, never its arguments (the Automation API's SetConfig
// passes the value as an argument, visible in ps).
type stackConfig struct {
	stack *auto.Stack
	cli   *cli
	env   map[string]string
}

func (c stackConfig) all(ctx context.Context) (auto.ConfigMap, error) {
	return c.stack.GetAllConfig(ctx)
}

func (c stackConfig) setSecret(ctx context.Context, key, value string) error {
	_, stderr, _, err := c.cli.Run(ctx, c.stack.Workspace().WorkDir(), strings.NewReader(value), nil, nil,
		envList(c.env), "config", "set", "--secret", "--stack", c.stack.Name(), key)
	if err != nil {
		return fmt.Errorf("pulumi config set --secret %s: %w: %s", key, err, strings.TrimSpace(stderr))
	}
	return nil
}

func (c stackConfig) set(ctx context.Context, key, value string) error {
	_, stderr, _, err := c.cli.Run(ctx, c.stack.Workspace().WorkDir(), nil, nil, nil,
		envList(c.env), "config", "set", "--plaintext", "--stack", c.stack.Name(), key, value)
	if err != nil {
		return fmt.Errorf("pulumi config set %s: %w: %s", key, err, strings.TrimSpace(stderr))
	}
	return nil
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// Secrets returns the cluster's secrets as up uses them (the inventory's,
// else the stack's), for checks that log in where the roles set a
// password (verify reading MySQL). It generates nothing: a secret that is
// neither in the inventory nor in the stack means up never ran.
func (e *Engine) Secrets(ctx context.Context) (role.Secrets, error) {
	r, err := e.begin(ctx, "secrets")
	if err != nil {
		return role.Secrets{}, err
	}
	// Reading secrets is no run worth keeping next to the real ones.
	defer os.RemoveAll(r.dir)
	defer r.close()
	s, err := r.selectStack(ctx)
	if err != nil {
		return role.Secrets{}, err
	}
	sec, _, err := resolveSecrets(ctx, e.opts.Inventory, readOnlyConfig{stackConfig{stack: &s, cli: r.cli, env: r.env}})
	return sec, err
}

// readOnlyConfig is a stack's configuration that refuses changes.
type readOnlyConfig struct{ stackConfig }

func (readOnlyConfig) setSecret(_ context.Context, key, _ string) error {
	return fmt.Errorf("the stack has no %s yet: run provision up first", key)
}

func (readOnlyConfig) set(_ context.Context, key, _ string) error {
	return fmt.Errorf("the stack has no %s yet: run provision up first", key)
}

package engine

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"

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
	set    func(*role.Secrets, string)
}

var secretSpecs = []secretSpec{
	// keepalived uses at most 8 characters of auth_pass.
	{"vrrpAuthPass", 8, func(i *inventory.Inventory) inventory.Secret { return i.LB.AuthPass },
		func(s *role.Secrets, v string) { s.VRRPAuth = v }},
	{"mysqlPassword", 24, func(i *inventory.Inventory) inventory.Secret { return i.MySQL.Password },
		func(s *role.Secrets, v string) { s.MySQLPassword = v }},
	{"mysqlRootPassword", 24, func(i *inventory.Inventory) inventory.Secret { return i.MySQL.RootPassword },
		func(s *role.Secrets, v string) { s.MySQLRootPassword = v }},
	// Generated only: nothing outside the cluster needs to choose them.
	{"mysqlDashboardPassword", 24, func(*inventory.Inventory) inventory.Secret { return inventory.Secret{} },
		func(s *role.Secrets, v string) { s.MySQLDashboardPassword = v }},
	{"probeKey", 32, func(*inventory.Inventory) inventory.Secret { return inventory.Secret{} },
		func(s *role.Secrets, v string) { s.ProbeKey = v }},
	{"dashboardPassword", 20, func(i *inventory.Inventory) inventory.Secret { return i.Dashboard.Password },
		func(s *role.Secrets, v string) { s.DashboardPassword = v }},
}

// configNamespace prefixes our keys in the stack configuration: Pulumi
// scopes configuration by project name.
const configNamespace = projectName + ":"

// secretsToMap and secretsFromMap convert between role.Secrets and the
// secrets input of resources.
func secretsToMap(s role.Secrets) map[string]string {
	return map[string]string{
		"vrrpAuthPass":           s.VRRPAuth,
		"mysqlPassword":          s.MySQLPassword,
		"mysqlRootPassword":      s.MySQLRootPassword,
		"mysqlDashboardPassword": s.MySQLDashboardPassword,
		"probeKey":               s.ProbeKey,
		"dashboardPassword":      s.DashboardPassword,
	}
}

func secretsFromMap(m map[string]string) role.Secrets {
	var s role.Secrets
	for _, sp := range secretSpecs {
		sp.set(&s, m[sp.key])
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
		if v := sp.get(inv); v.IsSet() {
			sp.set(&s, v.Value())
			continue
		}
		if cfg == nil {
			if cfg, err = store.all(ctx); err != nil {
				return s, nil, fmt.Errorf("read the stack's secrets: %w", err)
			}
		}
		if v, ok := cfg[configNamespace+sp.key]; ok && v.Value != "" {
			sp.set(&s, v.Value)
			continue
		}
		v, err := generateSecret(sp.length)
		if err != nil {
			return s, generated, err
		}
		if err := store.setSecret(ctx, configNamespace+sp.key, v); err != nil {
			return s, generated, fmt.Errorf("store the generated %s: %w", sp.key, err)
		}
		sp.set(&s, v)
		generated = append(generated, sp.key)
	}
	return s, generated, nil
}

// kafkaClusterIDKey is the stack configuration key of the KRaft cluster id.
const kafkaClusterIDKey = "kafkaClusterId"

// resolveKafkaClusterID returns the Kafka cluster id kept in the stack's
// configuration, making one (kafka.NewClusterID) and keeping it there the
// first time an inventory has brokers, so every later run and every broker
// uses the same one. It is made in ZooKeeper mode too, so that a cluster
// moved to KRaft later keeps one id. It is not a secret: it is in every
// broker's meta.properties. generated says it was made in this call.
func resolveKafkaClusterID(ctx context.Context, inv *inventory.Inventory, store configStore) (id string, generated bool, err error) {
	if len(inv.HostsWith(inventory.RoleKafka)) == 0 {
		return "", false, nil
	}
	cfg, err := store.all(ctx)
	if err != nil {
		return "", false, fmt.Errorf("read the stack's configuration: %w", err)
	}
	if v, ok := cfg[configNamespace+kafkaClusterIDKey]; ok && v.Value != "" {
		if !kafka.ValidClusterID(v.Value) {
			return "", false, fmt.Errorf("the stack's %s%s is %q, not a Kafka cluster id", configNamespace, kafkaClusterIDKey, v.Value)
		}
		return v.Value, false, nil
	}
	if id, err = kafka.NewClusterID(); err != nil {
		return "", false, err
	}
	if err := store.set(ctx, configNamespace+kafkaClusterIDKey, id); err != nil {
		return "", false, fmt.Errorf("store the generated %s: %w", kafkaClusterIDKey, err)
	}
	return id, true, nil
}

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

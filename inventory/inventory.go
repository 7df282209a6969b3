// Package inventory reads the one YAML file that describes a trafficlab
// cluster: its hosts and their roles, and the settings of every role.
//
// Load reads, decodes, fills in defaults and validates the file before
// anything connects to a host. Every problem found is returned at once as a
// Problems error whose entries point at the offending line, so a user can fix
// a whole file in one pass instead of one error per run.
package inventory

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Inventory is the whole desired state of one cluster. After Load every
// default is filled in, so users of this type never need to know them.
type Inventory struct {
	// File is the path the inventory was read from. Relative paths inside
	// the file (templates, local artifacts) have already been resolved
	// against its directory.
	File string `yaml:"-"`
	// lines are where each setting is in File (Where).
	lines map[string]int

	Cluster   Cluster   `yaml:"cluster"`
	SSH       SSH       `yaml:"ssh"`
	Hosts     []Host    `yaml:"hosts"`
	ZooKeeper ZooKeeper `yaml:"zookeeper"`
	Kafka     Kafka     `yaml:"kafka"`
	Web       Web       `yaml:"web"`
	LB        LB        `yaml:"lb"`
	Filebeat  Filebeat  `yaml:"filebeat"`
	MySQL     MySQL     `yaml:"mysql"`
	Dashboard Dashboard `yaml:"dashboard"`
	Alerts    Alerts    `yaml:"alerts"`
}

// Cluster holds the settings shared by every host.
type Cluster struct {
	// Name becomes the Pulumi stack name, hence its narrow syntax.
	Name     string       `yaml:"name"`
	Domain   string       `yaml:"domain"`
	Timezone string       `yaml:"timezone"`
	Firewall FirewallMode `yaml:"firewall"`
	SELinux  SELinuxMode  `yaml:"selinux"`
	// NTPServers are the sources chrony uses; empty keeps the distro's.
	NTPServers []string `yaml:"ntp_servers"`
	// PackageProxy is an http(s)://host:port proxy for apt/dnf on the hosts.
	PackageProxy string `yaml:"package_proxy"`
	// Templates is a directory of template overrides, already resolved
	// against the inventory file's directory; empty means none.
	Templates string `yaml:"templates"`
}

// FirewallMode says what trafficlab does with the host firewall.
type FirewallMode string

// Firewall modes.
const (
	FirewallManaged   FirewallMode = "managed"   // open exactly the ports the roles need
	FirewallDisabled  FirewallMode = "disabled"  // stop the firewall, as the seed did
	FirewallUnmanaged FirewallMode = "unmanaged" // leave it alone
)

// SELinuxMode is the SELinux mode set on RHEL-like hosts.
type SELinuxMode string

// SELinux modes.
const (
	// SELinuxKeep, the default, leaves each host's mode as it is: an
	// enforcing host stays enforcing, and the roles label what they need.
	SELinuxKeep       SELinuxMode = "keep"
	SELinuxEnforcing  SELinuxMode = "enforcing"
	SELinuxPermissive SELinuxMode = "permissive"
	SELinuxDisabled   SELinuxMode = "disabled"
)

// SSH says how to reach the hosts.
type SSH struct {
	User string `yaml:"user"`
	Port int    `yaml:"port"`
	// Key is a private key file; empty means ssh-agent and the usual
	// ~/.ssh keys. A leading ~ is left for the SSH transport to expand.
	Key          string       `yaml:"key"`
	KnownHosts   string       `yaml:"known_hosts"`
	HostKeyCheck HostKeyCheck `yaml:"host_key_check"`
	// Bastion is a jump host, [user@]host[:port]; see BastionAddress.
	Bastion string `yaml:"bastion"`
	// ConnectTimeout bounds how long a host that does not answer yet (a
	// machine still booting) is retried before giving up.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// SudoPassword is fed to sudo on stdin for non-root users; empty means
	// root or passwordless sudo (it cannot be generated).
	SudoPassword Secret `yaml:"sudo_password"`
}

// HostKeyCheck is the policy for unknown host keys.
type HostKeyCheck string

// Host key policies.
const (
	HostKeyAcceptNew HostKeyCheck = "accept-new" // trust on first use, refuse changes
	HostKeyStrict    HostKeyCheck = "strict"     // the key must already be in known_hosts
)

// BastionAddress splits SSH.Bastion into the user to log in as (SSH.User
// when not given) and a host:port to dial (port 22 when not given). It
// returns empty strings when there is no bastion.
func (s SSH) BastionAddress() (user, hostport string) {
	if s.Bastion == "" {
		return "", ""
	}
	user, host, port, err := parseBastion(s.Bastion)
	if err != nil {
		// Load has rejected such values; a hand-built SSH gets no bastion
		// rather than a half-parsed one.
		return "", ""
	}
	if user == "" {
		user = s.User
	}
	if port == 0 {
		port = 22
	}
	return user, net.JoinHostPort(host, strconv.Itoa(port))
}

// Host is one machine and the roles it carries.
type Host struct {
	Name    string  `yaml:"name"`
	Address string  `yaml:"address"`
	Roles   []Role  `yaml:"roles"`
	SSH     HostSSH `yaml:"ssh"`
	LB      HostLB  `yaml:"lb"`
	Web     HostWeb `yaml:"web"`
}

// HostSSH overrides the SSH user and port for one host. After Load both are
// set, falling back to the inventory's ssh section.
type HostSSH struct {
	User string `yaml:"user"`
	Port int    `yaml:"port"`
}

// HostLB holds the per-host keepalived settings of an lb host.
type HostLB struct {
	// Priority is the VRRP priority; the highest live one holds the VIP.
	Priority int `yaml:"priority"`
}

// HostWeb holds the per-host settings of a web host.
type HostWeb struct {
	// Weight is this server's weight in the LB upstream.
	Weight int `yaml:"weight"`
}

// Has reports whether the host carries role.
func (h Host) Has(role Role) bool { return slices.Contains(h.Roles, role) }

// Where is "FILE:LINE" of the setting at path ("kafka.security"), or of
// the nearest section around it when the file leaves it to a default, for
// problems found after Load (by provision, against the running cluster).
func (inv *Inventory) Where(path string) string {
	return fmt.Sprintf("%s:%d", inv.File, lineOf(inv.lines, path))
}

// Host returns the host named name.
func (inv *Inventory) Host(name string) (Host, bool) {
	i := slices.IndexFunc(inv.Hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		return Host{}, false
	}
	return inv.Hosts[i], true
}

// HostsWith returns the hosts carrying role, in inventory order.
func (inv *Inventory) HostsWith(role Role) []Host {
	var out []Host
	for _, h := range inv.Hosts {
		if h.Has(role) {
			out = append(out, h)
		}
	}
	return out
}

// Role is something a host does in the cluster.
type Role string

// The known roles.
const (
	RoleZooKeeper Role = "zookeeper"
	RoleKafka     Role = "kafka"
	RoleWeb       Role = "web"
	RoleLB        Role = "lb"
	RoleFilebeat  Role = "filebeat"
	RoleMySQL     Role = "mysql"
	RoleConsumer  Role = "consumer"
	RoleDashboard Role = "dashboard"
)

// Roles lists every known role in data-path order, which is also the order
// the validate table shows them in.
var Roles = []Role{RoleZooKeeper, RoleKafka, RoleWeb, RoleLB, RoleFilebeat, RoleMySQL, RoleConsumer, RoleDashboard}

// ZooKeeper configures the ensemble used by Kafka in ZooKeeper mode.
type ZooKeeper struct {
	// Toy allows a single-node ensemble, for laptops and CI.
	Toy  bool   `yaml:"toy"`
	Heap string `yaml:"heap"`
	// Artifact is the Apache tarball installed on RHEL-like hosts (Debian
	// and Ubuntu use the distro package): an http(s) URL or an absolute
	// local path after Load.
	Artifact string `yaml:"artifact"`
	SHA512   string `yaml:"sha512"`
}

// Kafka configures the brokers and the log topic.
type Kafka struct {
	Version string    `yaml:"version"`
	Mode    KafkaMode `yaml:"mode"`
	// Controllers is where the KRaft controllers run: in the brokers'
	// own processes (combined) or in a process of their own beside each
	// broker (separate), as a migration from ZooKeeper needs them.
	Controllers KafkaControllers `yaml:"controllers"`
	// Artifact is the Kafka distribution: an http(s) URL or an absolute
	// local path after Load. An https artifact without SHA512 is checked
	// against the .sha512 file Apache publishes next to it.
	Artifact   string            `yaml:"artifact"`
	SHA512     string            `yaml:"sha512"`
	Heap       string            `yaml:"heap"`
	Topic      Topic             `yaml:"topic"`
	Retention  Retention         `yaml:"retention"`
	Properties map[string]string `yaml:"properties"`
	// Security is how clients and brokers talk to each other: in clear
	// (plaintext, the default), over TLS (tls), or over TLS with every
	// client logging in with SCRAM-SHA-512 (sasl_ssl).
	Security KafkaSecurity `yaml:"security"`
	// CA is the user's own certificate authority for tls and sasl_ssl;
	// unset, provision makes one and keeps it as a Pulumi secret.
	CA KafkaCA `yaml:"ca"`
	// RunningProtocol is not read from the file: provision sets it, from
	// its state, to the inter-broker protocol of the oldest release a
	// broker still runs while a ZooKeeper-mode upgrade rolls onto a newer
	// one, so that the upgraded brokers keep speaking it (Kafka's upgrade
	// notes); empty otherwise.
	RunningProtocol string `yaml:"-"`
}

// KafkaSecurity is kafka.security.
type KafkaSecurity string

// Kafka security settings.
const (
	KafkaPlaintext KafkaSecurity = "plaintext"
	KafkaTLS       KafkaSecurity = "tls"
	KafkaSASLSSL   KafkaSecurity = "sasl_ssl"
)

// TLS reports whether Kafka's connections are encrypted.
func (k Kafka) TLS() bool { return k.Security == KafkaTLS || k.Security == KafkaSASLSSL }

// KafkaCA is kafka.ca: PEM files, absolute after Load. Key may be empty
// when Cert holds the key too.
type KafkaCA struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// PEM is what the files hold, read once by Load: the CA's key too, so
	// a Secret, masked wherever it is printed.
	PEM Secret `yaml:"-"`
}

// KafkaMode is how the brokers keep their metadata.
type KafkaMode string

// Kafka metadata modes. Migrating is the way from ZooKeeper to KRaft
// (Kafka 3.9's migration): KRaft controllers copy the metadata out of
// ZooKeeper while the brokers still run in ZooKeeper mode.
const (
	KafkaZooKeeper KafkaMode = "zookeeper"
	KafkaMigrating KafkaMode = "migrating"
	KafkaKRaft     KafkaMode = "kraft"
)

// KafkaControllers is kafka.controllers.
type KafkaControllers string

// Where the KRaft controllers run.
const (
	ControllersCombined KafkaControllers = "combined"
	ControllersSeparate KafkaControllers = "separate"
)

// UsesZooKeeper reports whether the brokers keep (or still copy) their
// metadata in ZooKeeper.
func (k Kafka) UsesZooKeeper() bool { return k.Mode == KafkaZooKeeper || k.Mode == KafkaMigrating }

// HasControllers reports whether the cluster runs KRaft controllers.
func (k Kafka) HasControllers() bool { return k.Mode == KafkaKRaft || k.Mode == KafkaMigrating }

// SeparateControllers reports whether the KRaft controllers run in
// processes of their own.
func (k Kafka) SeparateControllers() bool {
	return k.HasControllers() && k.Controllers == ControllersSeparate
}

// Topic is the topic filebeat writes the access log to.
type Topic struct {
	Name string `yaml:"name"`
	// Partitions is one per broker unless set (0 in the file means that).
	Partitions  int `yaml:"partitions"`
	Replication int `yaml:"replication"`
	MinInsync   int `yaml:"min_insync"`
}

// Retention bounds how long and how much log the brokers keep; whichever
// limit is hit first deletes old segments. -1 means no limit.
type Retention struct {
	Hours int   `yaml:"hours"`
	Bytes int64 `yaml:"bytes"`
}

// Web configures nginx on the web hosts.
type Web struct {
	Port int `yaml:"port"`
}

// LB configures the nginx load balancers and their keepalived VIP.
type LB struct {
	// VIP is the virtual address in CIDR form; the prefix is the subnet
	// keepalived brings it up on. See VIPPrefix.
	VIP             string      `yaml:"vip"`
	Port            int         `yaml:"port"`
	Algorithm       LBAlgorithm `yaml:"algorithm"`
	VirtualRouterID int         `yaml:"virtual_router_id"`
	Unicast         bool        `yaml:"unicast"`
	NoPreempt       bool        `yaml:"nopreempt"`
	AuthPass        Secret      `yaml:"auth_pass"`
}

// VIPPrefix returns the parsed VIP (address and prefix length), or the zero
// Prefix when there is none.
func (l LB) VIPPrefix() netip.Prefix {
	p, err := netip.ParsePrefix(l.VIP)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// SiteURL is the site as clients reach it by host (the cluster's domain,
// or the VIP) on the load balancers' port: http://host[:port]path, the
// port left out when it is 80. The one way trafficlab writes the site's
// address: the stack outputs, health checks, verify's probes and drills.
func (l LB) SiteURL(host, path string) string {
	if l.Port != 80 {
		host = net.JoinHostPort(host, strconv.Itoa(l.Port))
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return "http://" + host + path
}

// VIPURL is the site's address on the VIP ("/" for the page; probes add
// their path).
func (l LB) VIPURL(path string) string { return l.SiteURL(l.VIPPrefix().Addr().String(), path) }

// LBAlgorithm is the nginx upstream balancing method.
type LBAlgorithm string

// Balancing methods.
const (
	RoundRobin LBAlgorithm = "round_robin"
	Weighted   LBAlgorithm = "weighted" // round robin honouring hosts[].web.weight
	IPHash     LBAlgorithm = "ip_hash"
	LeastConn  LBAlgorithm = "least_conn"
)

// Filebeat configures the log shipper.
type Filebeat struct {
	// Artifact is Elastic's filebeat tarball (an http(s) URL or an absolute
	// local path after Load); empty means Elastic's x86-64 tarball of the
	// filebeat role's default version. A URL without SHA512 is checked
	// against the .sha512 Elastic publishes beside it.
	Artifact string `yaml:"artifact"`
	SHA512   string `yaml:"sha512"`
}

// MySQL configures the database that stores the aggregates. Empty
// passwords are generated once by provision and kept as Pulumi secrets.
type MySQL struct {
	Database     string `yaml:"database"`
	User         string `yaml:"user"`
	Password     Secret `yaml:"password"`
	RootPassword Secret `yaml:"root_password"`
}

// Dashboard configures the web page with the traffic and alerts.
type Dashboard struct {
	Port int `yaml:"port"`
	// Password is the dashboard's HTTP basic auth password (user
	// "admin"); empty means one generated by provision and kept as a
	// Pulumi secret, printed by `provision status`.
	Password Secret `yaml:"password"`
}

// Alerts configures the consumer's alert rules (all of them are in
// consumer/consumer.example.yaml).
type Alerts struct {
	// Speed is how soon the rules judge: normal (the consumer's defaults:
	// an hour's baseline, rules of 3-5 minutes) or fast (about two
	// minutes, for labs and demos where traffic is made up on the spot).
	Speed AlertSpeed `yaml:"speed"`
	// Webhook gets a JSON POST of every notice; unset means none. It is a
	// secret: chat services put the token that lets anyone post into the
	// URL itself.
	Webhook Secret `yaml:"webhook"`
}

// AlertSpeed is how soon alert rules fire.
type AlertSpeed string

// Alert speeds.
const (
	AlertsNormal AlertSpeed = "normal"
	AlertsFast   AlertSpeed = "fast"
)

// The brokers' ports: the clients' listener, the KRaft controllers', and
// with TLS the brokers' own (mutual TLS: replication, the controller's
// requests and provision's admin connections).
const (
	KafkaPort           = 9092
	KafkaControllerPort = 9093
	KafkaInternalPort   = 9094
)

// ZooKeeper's ports: the clients' (the brokers', and the quorum checks'),
// the followers' connection to the leader, and the leader election's.
const (
	ZooKeeperClientPort   = 2181
	ZooKeeperPeerPort     = 2888
	ZooKeeperElectionPort = 3888
)

// Listener is a TCP port a host listens on for one of its roles, or sshd.
type Listener struct {
	Role    string // a role name, or "ssh"
	Port    int
	Setting string // the inventory key that chooses the port; "" for fixed ports
}

// Listeners lists the TCP ports host h listens on. It is the one place
// that knows each role's ports: validation checks them for clashes and the
// firewall opens them.
func (inv *Inventory) Listeners(h Host) []Listener {
	out := []Listener{{"ssh", h.SSH.Port, "ssh.port"}}
	for _, r := range Roles {
		if !h.Has(r) {
			continue
		}
		switch r {
		case RoleZooKeeper:
			out = append(out, Listener{"zookeeper", ZooKeeperClientPort, ""}, Listener{"zookeeper", ZooKeeperPeerPort, ""}, Listener{"zookeeper", ZooKeeperElectionPort, ""})
		case RoleKafka:
			out = append(out, Listener{"kafka", KafkaPort, ""})
			if inv.Kafka.HasControllers() {
				out = append(out, Listener{"kafka", KafkaControllerPort, ""})
			}
			if inv.Kafka.TLS() {
				out = append(out, Listener{"kafka", KafkaInternalPort, ""})
			}
		case RoleWeb:
			out = append(out, Listener{"web", inv.Web.Port, "web.port"})
		case RoleLB:
			out = append(out, Listener{"lb", inv.LB.Port, "lb.port"})
		case RoleMySQL:
			out = append(out, Listener{"mysql", 3306, ""})
		case RoleDashboard:
			out = append(out, Listener{"dashboard", inv.Dashboard.Port, "dashboard.port"})
		}
	}
	return out
}

// Ordinal is h's place among the hosts carrying role r, from 1 in inventory
// order, or 0 when h does not carry it: ZooKeeper's myid and Kafka's broker
// or node id.
func (inv *Inventory) Ordinal(r Role, h Host) int {
	for i, x := range inv.HostsWith(r) {
		if x.Name == h.Name {
			return i + 1
		}
	}
	return 0
}

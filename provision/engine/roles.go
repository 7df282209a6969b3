package engine

import (
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/base"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/dashboard"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/mysql"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// Roles are the roles provision configures, in order: base first, since
// every other role on a host depends on it; then ZooKeeper, which the
// brokers depend on; the database, then the consumer and the dashboard,
// which depend on it (and the consumer on the brokers; see clusterDeps).
// A role's dependencies on other hosts must come before it in this order.
//
// Broker restarts after a configuration change are plain `systemctl
// restart`s for now, every changed broker at once: the rolling restart
// (kafka.WithRestart) is still to come.
func Roles() []role.Role {
	return []role.Role{base.New(), zookeeper.New(), kafka.New(), mysql.New(), consumer.New(), dashboard.New()}
}

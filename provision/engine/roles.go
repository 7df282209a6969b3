package engine

import (
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/base"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/dashboard"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/mysql"
	"github.com/trafficlab/trafficlab/provision/role/topic"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// Roles are the roles provision configures, in order: base first, since
// every other role on a host depends on it; then ZooKeeper, which the
// brokers depend on, the brokers, which the topic depends on; the
// database, then the consumer and the dashboard, which depend on it (and
// the consumer on the topic; see Needs). A role's dependencies on other
// hosts must come before it in this order. Each call returns new roles:
// the kafka and zookeeper roles keep their rolling restarts' turn for the
// run.
func Roles() []role.Role {
	return []role.Role{base.New(), zookeeper.New(), kafka.New(), topic.New(), mysql.New(), consumer.New(), dashboard.New()}
}

package engine

import (
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/base"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/topic"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// Roles are the roles provision configures, in order: base first, since
// every other role on a host depends on it; then ZooKeeper, which the
// brokers depend on, then the brokers, which the topic depends on (see
// clusterDeps). Each call returns new roles: the kafka role keeps the
// rolling restart's turn for the run.
func Roles() []role.Role {
	return []role.Role{base.New(), zookeeper.New(), kafka.New(), topic.New()}
}

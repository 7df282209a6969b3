package engine

import (
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/base"
	"github.com/trafficlab/trafficlab/provision/role/filebeat"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/lb"
	"github.com/trafficlab/trafficlab/provision/role/web"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// Roles are the roles provision configures, in order: base first, since
// every other role on a host depends on it; then ZooKeeper, which the
// brokers depend on; the web servers before the load balancers that
// balance over them; filebeat last, after the brokers it ships to and the
// web server whose log it reads (see register and clusterDeps). A role
// must come after every role it depends on.
//
// Broker restarts after a configuration change are plain `systemctl
// restart`s for now, every changed broker at once: the rolling restart
// (kafka.WithRestart) is still to come.
func Roles() []role.Role {
	return []role.Role{base.New(), zookeeper.New(), kafka.New(), web.New(), lb.New(), filebeat.New()}
}

package engine

import (
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/base"
	"github.com/trafficlab/trafficlab/provision/role/consumer"
	"github.com/trafficlab/trafficlab/provision/role/dashboard"
	"github.com/trafficlab/trafficlab/provision/role/filebeat"
	"github.com/trafficlab/trafficlab/provision/role/kafka"
	"github.com/trafficlab/trafficlab/provision/role/lb"
	"github.com/trafficlab/trafficlab/provision/role/mysql"
	"github.com/trafficlab/trafficlab/provision/role/topic"
	"github.com/trafficlab/trafficlab/provision/role/web"
	"github.com/trafficlab/trafficlab/provision/role/zookeeper"
)

// Roles are the roles provision configures, in order: base first, since
// every other role on a host depends on it; then ZooKeeper, which the
// brokers depend on, the brokers, which the topic depends on; the web
// servers before the load balancers that balance over them; filebeat
// after the brokers it ships to and the web server whose log it reads;
// the database, then the consumer and the dashboard, which depend on it
// (and the consumer on the topic). See Needs: a role must come after every
// role it depends on. Each call returns new roles: the kafka and zookeeper
// roles keep their rolling restarts' turn for the run.
func Roles() []role.Role {
	return []role.Role{base.New(), zookeeper.New(), kafka.New(), topic.New(), web.New(), lb.New(), filebeat.New(),
		mysql.New(), consumer.New(), dashboard.New()}
}

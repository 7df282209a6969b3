package engine

import (
	"fmt"
	"slices"

	"github.com/trafficlab/trafficlab/inventory"
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
// brokers depend on, the KRaft controllers of their own (a migration's),
// the brokers, which the topic depends on; the web
// servers before the load balancers that balance over them; filebeat
// after the brokers it ships to and the web server whose log it reads;
// the database, then the consumer and the dashboard, which depend on it
// (and the consumer on the topic). See Needs: where a cluster's roles
// depend on each other in another order (a migration's last step), Ordered
// puts them so. Each call returns new roles: the kafka and zookeeper
// roles keep their rolling restarts' turn for the run.
func Roles() []role.Role {
	return []role.Role{base.New(), zookeeper.New(), kafka.NewController(), kafka.New(), topic.New(), web.New(), lb.New(), filebeat.New(),
		mysql.New(), consumer.New(), dashboard.New()}
}

// Ordered is roles, each after the roles it needs in inv (Needs), and
// otherwise in the order given.
func Ordered(inv *inventory.Inventory, roles []role.Role) ([]role.Role, error) {
	needs := Needs(inv, roles)
	var out []role.Role
	placed := map[string]bool{}
	for len(out) < len(roles) {
		progress := false
		for _, ro := range roles {
			if placed[ro.Name()] {
				continue
			}
			ready := true
			for _, n := range needs[ro.Name()] {
				if !placed[n] && slices.ContainsFunc(roles, func(r role.Role) bool { return r.Name() == n }) {
					ready = false
				}
			}
			if ready {
				out = append(out, ro)
				placed[ro.Name()] = true
				progress = true
				break // from the start again: the order given wins ties
			}
		}
		if !progress {
			return nil, fmt.Errorf("the roles need each other in a circle: %v", needs)
		}
	}
	return out, nil
}

package engine

import (
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/base"
)

// Roles are the roles provision configures, in order: base first, since
// every other role on a host depends on it.
func Roles() []role.Role {
	return []role.Role{base.New()}
}

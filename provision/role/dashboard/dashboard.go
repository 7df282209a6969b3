// Package dashboard is the role of the dashboard host: `consumer
// dashboard`, the same binary as the consumer's, serving the traffic page
// and its JSON API from MySQL on the host's inventory address at the
// inventory's dashboard port, behind a login (see goservice for how it is
// deployed).
//
// The role has no readiness check: it only deploys and starts the unit.
package dashboard

import (
	"fmt"
	"net"
	"strconv"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/role/mysql"
	"github.com/trafficlab/trafficlab/provision/rolekit/goservice"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Service is the dashboard's service: its unit, user, binary and
// configuration paths, for drills and checks.
var Service = goservice.Service{Name: "dashboard", Description: "traffic dashboard", Command: "dashboard"}

// Option configures the role.
type Option func(*dashboardRole)

// WithBuilder builds the binary with b instead of goservice.ConsumerBuilder.
func WithBuilder(b goservice.Builder) Option { return func(r *dashboardRole) { r.builder = b } }

// New returns the dashboard role.
func New(opts ...Option) role.Role {
	r := &dashboardRole{builder: goservice.ConsumerBuilder()}
	for _, o := range opts {
		o(r)
	}
	return r
}

type dashboardRole struct{ builder goservice.Builder }

// Name is the role's name.
const Name = "dashboard"

func (*dashboardRole) Name() string             { return Name }
func (*dashboardRole) On(h inventory.Host) bool { return h.Has(inventory.RoleDashboard) }

// Needs: the dashboard reads the database.
func (*dashboardRole) Needs(*inventory.Inventory) []string { return []string{mysql.Name} }

// Listen is the address the dashboard serves on: the host's inventory
// address only, not every address it has (a management or container
// network the page was never meant for).
func Listen(inv *inventory.Inventory, h inventory.Host) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(inv.Dashboard.Port))
}

// URL is the dashboard's address for people: the first dashboard host's,
// "" when there is none.
func URL(inv *inventory.Inventory) string { return goservice.DashboardURL(inv) }

// Outputs adds the stack output dashboard_url.
func (*dashboardRole) Outputs(inv *inventory.Inventory) map[string]string {
	return map[string]string{"dashboard_url": URL(inv)}
}

func (*dashboardRole) Files(c *role.Context) ([]role.File, error) {
	if !c.Host.Has(inventory.RoleDashboard) {
		return nil, fmt.Errorf("%s does not have the dashboard role", c.Host.Name)
	}
	// No /metrics of its own: the consumer's listen address would clash on
	// a host that runs both.
	return Service.Files(c, goservice.ConfigOptions{DashboardListen: Listen(c.Inventory, c.Host)}, goservice.LocalAfter(c))
}

func (r *dashboardRole) Plan(c *role.Context) (role.Plan, error) {
	files, err := r.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	bin, err := r.builder.Build(c.OS.Arch)
	if err != nil {
		return role.Plan{}, fmt.Errorf("%s (%s): %w", c.Host.Name, c.OS.Machine, err)
	}
	return Service.Plan(files, bin), nil
}

func (*dashboardRole) Remove(*role.Context) ([]step.Step, error) { return Service.Remove(), nil }

func (*dashboardRole) Keeps(*role.Context) []string { return nil }

// Logs: the dashboard logs to the journal.
func (*dashboardRole) Logs(*role.Context) role.Logs {
	return role.Logs{Units: []string{Service.Unit()}}
}

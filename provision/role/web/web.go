// Package web is the role of the web servers: the distribution's nginx
// serving the cluster's site name with a small page that names the host
// that served it, and an access log in the format the consumer parses
// (consumer/nginxlog.Format), with the client's address taken from the
// load balancers' X-Real-IP header.
package web

import (
	"fmt"
	"strings"

	"github.com/trafficlab/trafficlab/consumer/agg"
	"github.com/trafficlab/trafficlab/consumer/nginxlog"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/rolekit/nginx"
	"github.com/trafficlab/trafficlab/provision/step"
)

// Where the role keeps things, the same on every family.
const (
	// Unit is the service serving the site (the distribution's nginx).
	Unit = nginx.Unit
	// SiteConf is the site's server block.
	SiteConf = nginx.ConfDir + "/trafficlab-web.conf"
	// Root is the site's document root and Page its page.
	Root = "/var/www/trafficlab"
	Page = Root + "/index.html"
	// AccessLog is the access log filebeat ships, in nginxlog.Format.
	AccessLog = nginx.LogDir + "/trafficlab-access.log"
	// ServedByHeader names the web host in every response, so a client
	// (the drills, the end-to-end test) sees which one answered.
	ServedByHeader = "X-Served-By"
)

// New returns the web role.
func New() role.Role { return web{} }

type web struct{}

// Name is the role's name.
const Name = "web"

func (web) Name() string                        { return Name }
func (web) On(h inventory.Host) bool            { return h.Has(inventory.RoleWeb) }
func (web) Needs(*inventory.Inventory) []string { return nil }

// RealIPFrom are the addresses whose X-Real-IP header nginx believes: the
// load balancers, and the VIP they may send from.
func RealIPFrom(inv *inventory.Inventory) []string {
	var out []string
	for _, h := range inv.HostsWith(inventory.RoleLB) {
		out = append(out, h.Address)
	}
	if vip := inv.LB.VIPPrefix(); vip.IsValid() && len(out) > 0 {
		out = append(out, vip.Addr().String())
	}
	return out
}

func (web) Files(c *role.Context) ([]role.File, error) {
	// The format goes into a single-quoted nginx string.
	if strings.ContainsAny(nginxlog.Format, `'\`) {
		return nil, fmt.Errorf("nginxlog.Format holds a quote or backslash, which the site's log_format cannot carry as written")
	}
	inv := c.Inventory
	conf, err := c.Templates.Render("web/site.conf.tmpl", map[string]any{
		"Host": c.Host.Name, "Domain": inv.Cluster.Domain, "Port": inv.Web.Port,
		"FormatName": nginxlog.FormatName, "Format": nginxlog.Format, "AccessLog": AccessLog,
		"RealIPFrom": RealIPFrom(inv), "Root": Root, "ServedBy": ServedByHeader, "ProbePrefix": agg.ProbePrefix,
	})
	if err != nil {
		return nil, err
	}
	page, err := c.Templates.Render("web/index.html.tmpl", map[string]any{
		"Domain": inv.Cluster.Domain, "Host": c.Host.Name, "Address": c.Host.Address,
	})
	if err != nil {
		return nil, err
	}
	return []role.File{
		{Path: SiteConf, Content: conf, Mode: 0o644, Owner: "root:root"},
		{Path: Page, Content: page, Mode: 0o644, Owner: "root:root"},
	}, nil
}

func (w web) Plan(c *role.Context) (role.Plan, error) {
	files, err := w.Files(c)
	if err != nil {
		return role.Plan{}, err
	}
	steps := []step.Step{nginx.Packages()}
	var changes []step.ID
	for _, s := range nginx.DisableDefaultSite(c.OS) {
		steps = append(steps, s)
		changes = append(changes, s.ID)
	}
	steps = append(steps, step.Dir(Root, 0o755, "root:root"))
	for _, f := range files {
		s := step.File(f.Spec())
		steps = append(steps, s)
		changes = append(changes, s.ID)
	}
	steps = append(steps, nginx.Relabel(c.OS, []string{Root, SiteConf}, changes...)...)
	steps = append(steps,
		nginx.Reload(changes...),
		step.Service(Unit, step.Running))
	return role.Plan{Files: files, Steps: steps}, nil
}

func (web) Remove(c *role.Context) ([]step.Step, error) {
	return []step.Step{
		step.FileAbsent(SiteConf),
		step.TreeAbsent(Root),
		nginx.ReloadIfRunning(step.FileID(SiteConf).Removal()),
		nginx.RemoveLogs(AccessLog),
	}, nil
}

// Logs: nginx, its error log and the site's access log.
func (web) Logs(*role.Context) role.Logs {
	return role.Logs{Units: []string{nginx.Unit}, Files: []string{nginx.LogDir + "/error.log", AccessLog}}
}

func (web) Keeps(c *role.Context) []string {
	keeps := []string{"the nginx package and its service as it runs now"}
	if len(nginx.DisableDefaultSite(c.OS)) > 0 {
		keeps = append(keeps, "the distribution's default site disabled ("+nginx.DebianDefaultSite+" removed; the site is still in /etc/nginx/sites-available)")
	}
	return keeps
}

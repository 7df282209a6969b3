package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/engine"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
	"github.com/trafficlab/trafficlab/provision/step"
	"github.com/trafficlab/trafficlab/templates"
)

// secretMask stands in for every secret in rendered files: render shows
// where a secret goes, never what it is.
const secretMask = "********"

func newRenderCmd() *cobra.Command {
	var file, osName string
	var container bool
	cmd := &cobra.Command{
		Use:   "render [-i INVENTORY] HOST [PATH]",
		Short: "List the files trafficlab writes on a host, or print one, without connecting",
		Long: `Render works offline and connects nowhere. Without PATH it lists every file
(and every managed block in a file that is not trafficlab's alone) that the
roles of HOST write; with PATH it prints that file exactly as it would be
written, with secrets masked.

Paths and contents depend on the host's system, which render cannot ask:
--os names it as ID:VERSION from /etc/os-release (debian:12, ubuntu:24.04,
rocky:9, almalinux:8, ...), and --container says the host is a container.`,
		Example: "  provision render -i inventory/examples/seed-centos.yaml --os rocky:9 kafka-1\n" +
			"  provision render -i inventory/examples/seed-centos.yaml --os rocky:9 kafka-1 /etc/chrony.conf",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				var err error
				if file, err = inventory.Find(); err != nil {
					return err
				}
			}
			inv, err := loadInventory(cmd.ErrOrStderr(), file)
			if err != nil {
				return err
			}
			os, err := renderOS(osName, container)
			if err != nil {
				return err
			}
			path := ""
			if len(args) == 2 {
				path = args[1]
			}
			return render(cmd.OutOrStdout(), inv, os, args[0], path)
		},
	}
	cmd.Flags().StringVarP(&file, "inventory", "i", "", "inventory file (default: ./"+inventory.DefaultFile+", else the local lab's "+inventory.LabFile+")")
	cmd.Flags().StringVar(&osName, "os", "debian:12", "the host's system as ID:VERSION_ID of its /etc/os-release")
	cmd.Flags().BoolVar(&container, "container", false, "the host is a container (as the lab's machines are)")
	return cmd
}

// renderOS describes the system named by "ID:VERSION" through the same
// parser that reads a real host's /etc/os-release, so render accepts and
// refuses exactly the systems up does.
func renderOS(name string, container bool) (facts.OS, error) {
	id, version, ok := strings.Cut(name, ":")
	if !ok || id == "" || version == "" {
		return facts.OS{}, fmt.Errorf("--os %q: want ID:VERSION, like debian:12 or rocky:9", name)
	}
	os, err := facts.ParseOSRelease([]byte(fmt.Sprintf("ID=%q\nVERSION_ID=%q\n", id, version)))
	if err != nil {
		return facts.OS{}, fmt.Errorf("--os %s: %w", name, err)
	}
	if container {
		os.Container = "container"
	}
	return os, nil
}

// roleFiles renders every file the roles of c's host write (with
// maskedContext, each secret replaced by secretMask), and returns the
// roles that apply there.
func roleFiles(c *role.Context) ([]role.File, []role.Role, error) {
	inv, host := c.Inventory, c.Host
	var files []role.File
	var roles []role.Role
	for _, r := range engine.Roles() {
		if !role.Applies(r, inv, host) {
			continue
		}
		fs, err := r.Files(c)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %s: %w", host.Name, r.Name(), err)
		}
		files = append(files, fs...)
		roles = append(roles, r)
	}
	return files, roles, nil
}

// maskedContext is a role context whose secrets are all secretMask.
func maskedContext(inv *inventory.Inventory, os facts.OS, host inventory.Host) (*role.Context, error) {
	set, err := templates.Load(inv.Cluster.Templates)
	if err != nil {
		return nil, err
	}
	// The webhook URL carries its service's token: masked like the rest.
	if inv.Alerts.Webhook.IsSet() {
		masked := *inv
		masked.Alerts.Webhook = inventory.NewSecret(secretMask)
		inv = &masked
	}
	return &role.Context{
		Inventory: inv, Host: host, OS: os, Templates: set,
		Secrets: role.Secrets{VRRPAuth: secretMask, MySQLPassword: secretMask, MySQLRootPassword: secretMask,
			MySQLDashboardPassword: secretMask, DashboardPassword: secretMask, ProbeKey: secretMask,
			// The CA's certificate is no secret, but it lives in the stack,
			// which render does not open.
			KafkaCA: "(the cluster CA's certificate, kept in the stack)\n", KafkaCerts: map[string]string{host.Name: secretMask},
			KafkaAdmin: secretMask, KafkaFilebeatPassword: secretMask, KafkaConsumerPassword: secretMask},
	}, nil
}

func render(w io.Writer, inv *inventory.Inventory, os facts.OS, hostName, path string) error {
	var host inventory.Host
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
		if h.Name == hostName {
			host = h
		}
	}
	if host.Name == "" {
		return fmt.Errorf("%s has no host %q (hosts: %s)", inv.File, hostName, strings.Join(names, ", "))
	}
	c, err := maskedContext(inv, os, host)
	if err != nil {
		return err
	}
	files, _, err := roleFiles(c)
	if err != nil {
		return err
	}
	if path == "" {
		for _, f := range files {
			line := f.Path
			if f.Block != "" {
				line += "  (block " + f.Block + ")"
			}
			fmt.Fprintln(w, line)
		}
		return nil
	}
	var found []role.File
	for _, f := range files {
		if f.Path == path {
			found = append(found, f)
		}
	}
	if len(found) == 0 {
		return fmt.Errorf("trafficlab writes no %s on %s (run render without PATH for the list)", path, host.Name)
	}
	for _, f := range found {
		if f.Block != "" {
			begin, end := step.BlockMarkers(f.Block)
			fmt.Fprintf(w, "%s\n%s%s\n", begin, f.Content, end)
			continue
		}
		w.Write(f.Content)
	}
	return nil
}

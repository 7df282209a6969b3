package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/trafficlab/trafficlab/inventory"
)

func newValidateCmd() *cobra.Command {
	var file string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check an inventory file without connecting to any host",
		Long: `Validate reads the inventory, fills in defaults and checks it, without
connecting to any host. A valid inventory prints its hosts and roles and
exits 0. Otherwise every problem is printed as FILE:LINE: message on stderr
and the exit status is 2.

${VAR} in any value is replaced by the environment variable VAR; an unset
variable is a problem. Write $$ for a literal $.`,
		Example: "  provision validate -i inventory/examples/seed-centos.yaml",
		Args:    cobra.NoArgs,
		// The problems are the output; the exitCode error only carries the
		// status and must not be printed as "Error: exit status 2".
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				var err error
				if file, err = inventory.Find(); err != nil {
					return err
				}
			}
			if asJSON {
				return runValidateJSON(cmd.OutOrStdout(), cmd.ErrOrStderr(), file, os.LookupEnv)
			}
			return runValidate(cmd.OutOrStdout(), cmd.ErrOrStderr(), file, os.LookupEnv)
		},
	}
	cmd.Flags().StringVarP(&file, "inventory", "i", "", "inventory file (default: ./"+inventory.DefaultFile+", else the local lab's "+inventory.LabFile+")")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the hosts, or the problems, as JSON on stdout")
	return cmd
}

// validation is what validate --json prints.
type validation struct {
	File     string           `json:"file"`
	OK       bool             `json:"ok"`
	Problems []validProblem   `json:"problems,omitempty"`
	Hosts    []validationHost `json:"hosts,omitempty"`
	Kafka    *struct {
		Version string `json:"version"`
		Mode    string `json:"mode"`
	} `json:"kafka,omitempty"`
	VIP string `json:"vip,omitempty"`
}

type validProblem struct {
	Line    int    `json:"line,omitempty"`
	Message string `json:"message"`
}

type validationHost struct {
	Name    string   `json:"name"`
	Address string   `json:"address"`
	Roles   []string `json:"roles"`
}

// runValidateJSON is validate --json: the same outcome (exit 2 for an
// invalid inventory), as one JSON document.
func runValidateJSON(stdout, stderr io.Writer, file string, lookup func(string) (string, bool)) error {
	out := validation{File: file}
	inv, err := inventory.LoadEnv(file, lookup)
	var problems inventory.Problems
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			out.Problems = append(out.Problems, validProblem{Line: p.Line, Message: p.Msg})
		}
	case err != nil:
		out.Problems = append(out.Problems, validProblem{Message: err.Error()})
	default:
		out.OK = true
		for _, h := range inv.Hosts {
			vh := validationHost{Name: h.Name, Address: h.Address, Roles: []string{}}
			for _, r := range h.Roles {
				vh.Roles = append(vh.Roles, string(r))
			}
			out.Hosts = append(out.Hosts, vh)
		}
		out.Kafka = &struct {
			Version string `json:"version"`
			Mode    string `json:"mode"`
		}{inv.Kafka.Version, string(inv.Kafka.Mode)}
		if vip := inv.LB.VIPPrefix(); vip.IsValid() {
			out.VIP = vip.Addr().String()
		}
	}
	if err := writeJSON(stdout, out); err != nil {
		return err
	}
	if !out.OK {
		return exitCode(2)
	}
	return nil
}

// runValidate is the validate command with its outputs and environment
// passed in, so tests can run it without a process.
func runValidate(stdout, stderr io.Writer, file string, lookup func(string) (string, bool)) error {
	inv, err := inventory.LoadEnv(file, lookup)
	var problems inventory.Problems
	switch {
	case errors.As(err, &problems):
		for _, p := range problems {
			fmt.Fprintln(stderr, p.Error())
		}
		return exitCode(2)
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stderr, "provision validate: %s: no such file (choose the inventory with -i FILE)\n", file)
		return exitCode(2)
	case err != nil:
		fmt.Fprintf(stderr, "provision validate: %v\n", err)
		return exitCode(2)
	}
	if err := validateTable(stdout, inv); err != nil {
		return fmt.Errorf("write the host table: %w", err)
	}
	_, err = fmt.Fprintln(stdout, validateSummary(inv))
	return err
}

// validateTable prints hosts × roles. Only roles some host carries get a
// column, which keeps the table within a terminal's width (a kraft cluster
// has no zookeeper column).
func validateTable(w io.Writer, inv *inventory.Inventory) error {
	var roles []inventory.Role
	for _, r := range inventory.Roles {
		if len(inv.HostsWith(r)) > 0 {
			roles = append(roles, r)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"HOST", "ADDRESS"}
	for _, r := range roles {
		head = append(head, strings.ToUpper(string(r)))
	}
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, h := range inv.Hosts {
		row := []string{h.Name, h.Address}
		for _, r := range roles {
			// A dot rather than a blank keeps each row readable across
			// wide gaps.
			mark := "·"
			if h.Has(r) {
				mark = "✓"
			}
			row = append(row, mark)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// validateSummary is the one line saying what the inventory builds.
func validateSummary(inv *inventory.Inventory) string {
	s := fmt.Sprintf("%s: %d host%s, kafka %s (%s mode)", inv.File, len(inv.Hosts), validatePlural(len(inv.Hosts)), inv.Kafka.Version, inv.Kafka.Mode)
	if vip := inv.LB.VIPPrefix(); vip.IsValid() {
		s += ", VIP " + vip.Addr().String()
	}
	return s
}

func validatePlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

package base

import (
	"context"
	"strings"

	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/step"
)

const selinuxConfig = "/etc/selinux/config"

// selinuxSteps set the mode for the next boot (the config file) and for the
// running system (setenforce). A running kernel cannot switch SELinux off
// or back on: "disabled" runs permissive until the next boot, and a
// disabled kernel gets the wanted mode at its next boot.
func selinuxSteps(mode inventory.SELinuxMode) []step.Step {
	line := "SELINUX=" + string(mode)
	return []step.Step{
		step.Command("selinux "+string(mode)+" at boot",
			"grep -qx '"+line+"' "+selinuxConfig,
			"sed -i 's/^SELINUX=.*/"+line+"/' "+selinuxConfig),
		step.Planned("selinux "+string(mode)+" now", func(ctx context.Context, t *step.Target) (string, error) {
			res, err := t.Host.Run(ctx, "getenforce")
			if err != nil {
				return "", err
			}
			switch now := strings.TrimSpace(string(res.Stdout)); {
			case now == "Permissive" && mode == inventory.SELinuxEnforcing:
				return "setenforce 1", nil
			case now == "Enforcing" && mode != inventory.SELinuxEnforcing:
				return "setenforce 0", nil
			}
			return "", nil
		}),
	}
}

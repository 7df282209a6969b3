package step

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
)

// packageManager holds every difference between the package managers the
// roles meet, so that no role needs to know which one a host has.
type packageManager struct {
	// missing prints, one per line, those of the packages in "$@" that
	// are not installed.
	missing string
	// install installs the packages in "$@" without asking.
	install string
	// refresh updates the package lists; "" when install does it itself.
	refresh string
}

var managers = map[string]packageManager{
	"apt": {
		missing: `for p in "$@"; do dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || echo "$p"; done`,
		install: `DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o Dpkg::Options::=--force-confold "$@"`,
		// A fresh image has empty package lists: install finds nothing
		// until they are fetched once.
		refresh: `DEBIAN_FRONTEND=noninteractive apt-get update -q`,
	},
	"dnf": {
		missing: `for p in "$@"; do rpm -q --quiet "$p" || echo "$p"; done`,
		install: `dnf install -y -q "$@"`,
	},
}

// Package names reach a shell; allow only what distributions use.
var packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9.+_-]*$`)

// withArgs runs script with args as "$@" so no name is ever spliced into
// the script itself.
func withArgs(script string, args []string) string {
	return "sh -c " + remote.ShellQuote(script) + " sh " + strings.Join(args, " ")
}

// Packages keeps the named packages installed. Names may differ per
// family; give them as a map from facts.Family to names.
func Packages(byFamily map[facts.Family][]string) Step {
	var all []string
	for _, names := range byFamily {
		all = append(all, names...)
	}
	slices.Sort(all)
	list := strings.Join(slices.Compact(all), " ")
	return Step{
		ID:   ID{Kind: KindPackages, Object: list},
		Name: "packages " + list,
		Check: func(ctx context.Context, t *Target) (*Change, error) {
			pm, names, err := packagesFor(t, byFamily)
			if err != nil || len(names) == 0 {
				return nil, err
			}
			missing, err := missingPackages(ctx, t, pm, names)
			if err != nil || len(missing) == 0 {
				return nil, err
			}
			return &Change{Summary: "install " + strings.Join(missing, " ")}, nil
		},
		Apply: func(ctx context.Context, t *Target) error {
			pm, names, err := packagesFor(t, byFamily)
			if err != nil {
				return err
			}
			missing, err := missingPackages(ctx, t, pm, names)
			if err != nil {
				return err
			}
			if _, err = t.Host.Run(ctx, withArgs(pm.install, missing)); err == nil || pm.refresh == "" || !remote.IsExit(err) {
				return err
			}
			if _, err := t.Host.Run(ctx, pm.refresh); err != nil {
				return fmt.Errorf("updating package lists: %w", err)
			}
			_, err = t.Host.Run(ctx, withArgs(pm.install, missing))
			return err
		},
		Retries: 2,
	}
}

func packagesFor(t *Target, byFamily map[facts.Family][]string) (packageManager, []string, error) {
	pm, ok := managers[t.OS.PackageManager]
	if !ok {
		return pm, nil, fmt.Errorf("no support for package manager %q", t.OS.PackageManager)
	}
	names := byFamily[t.OS.Family]
	for _, n := range names {
		if !packageName.MatchString(n) {
			return pm, nil, fmt.Errorf("invalid package name %q", n)
		}
	}
	return pm, names, nil
}

func missingPackages(ctx context.Context, t *Target, pm packageManager, names []string) ([]string, error) {
	res, err := t.Host.Run(ctx, withArgs(pm.missing, names))
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(res.Stdout)), nil
}

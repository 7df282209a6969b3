//go:build linux

// Package hostpkg installs the Debian packages the lab needs on the host
// when they are missing, without letting their maintainer scripts start the
// distribution's own services (there is no systemd on the host, and the lab
// runs its own squid and chronyd with its own configuration).
package hostpkg

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/trafficlab/trafficlab/lab/progress"
	"github.com/trafficlab/trafficlab/lab/run"
)

// Need maps each package to a file it provides, so presence is checked
// without asking dpkg about every package.
var Need = []struct{ Package, Provides string }{
	{"systemd-container", "/usr/bin/systemd-nspawn"},
	{"debootstrap", "/usr/sbin/debootstrap"},
	{"iproute2", "/usr/sbin/ip"},
	{"squid", "/usr/sbin/squid"},
	{"chrony", "/usr/sbin/chronyd"},
	{"openssh-client", "/usr/bin/ssh"},
	// Maven (with Debian's JDK 17 under it) assembles the lab's Apache
	// Kafka from Maven Central (lab/kafkadist).
	{"maven", "/usr/share/maven/bin/mvn"},
}

// Missing lists the packages of Need whose file is absent.
func Missing() []string {
	var out []string
	for _, n := range Need {
		if _, err := os.Stat(n.Provides); err != nil {
			out = append(out, n.Package)
		}
	}
	return out
}

const policyRC = "/usr/sbin/policy-rc.d"

// Ensure installs the missing packages, saying what it installs. It runs
// apt-get update once first. While installing, a policy-rc.d that denies
// every service start is in place (an existing one is left alone), so
// postinst scripts do not start squid or chronyd through their init scripts.
func Ensure(ctx context.Context, p *progress.Printer) error {
	missing := Missing()
	if len(missing) == 0 {
		return nil
	}
	p.Printf("host: installing %s", strings.Join(missing, " "))
	if _, err := os.Stat(policyRC); os.IsNotExist(err) {
		if err := os.WriteFile(policyRC, []byte("#!/bin/sh\n# trafficlab lab: no service starts during package installs\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("install host packages: write %s: %w", policyRC, err)
		}
		defer os.Remove(policyRC)
	}
	opts := run.Options{Env: []string{"DEBIAN_FRONTEND=noninteractive"}}
	if _, err := run.With(ctx, opts, "apt-get", "update", "-q"); err != nil {
		return fmt.Errorf("install host packages: %w", err)
	}
	args := append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)
	if _, err := run.With(ctx, opts, "apt-get", args...); err != nil {
		return fmt.Errorf("install host packages: %w", err)
	}
	if still := Missing(); len(still) > 0 {
		return fmt.Errorf("install host packages: still missing after apt-get install: %s", strings.Join(still, " "))
	}
	p.Printf("host: installed %s", strings.Join(missing, " "))
	return nil
}

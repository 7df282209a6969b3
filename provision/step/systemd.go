package step

import (
	"context"
	"fmt"
	"strings"

	"github.com/trafficlab/trafficlab/provision/remote"
)

// ServiceState is what a systemd unit should be doing.
type ServiceState int

const (
	Running ServiceState = iota // enabled at boot and active now
	Stopped                     // disabled and inactive (a unit that does not exist counts)
)

// Service keeps a systemd unit enabled and active, or disabled and stopped.
func Service(unit string, want ServiceState) Step {
	name := "service " + unit + " running"
	if want == Stopped {
		name = "service " + unit + " stopped"
	}
	s := Planned(name, func(ctx context.Context, t *Target) (string, error) {
		return serviceCommand(ctx, t.Host, unit, want)
	})
	s.ID = ID{Kind: KindService, Object: unit, Absent: want == Stopped}
	return s
}

// serviceCommand returns the systemctl command that brings unit to want,
// or "" when it is there already.
func serviceCommand(ctx context.Context, h Host, unit string, want ServiceState) (string, error) {
	q := remote.ShellQuote(unit)
	// is-enabled and is-active exit non-zero for "disabled" and
	// "inactive"; their output is what matters, so read it either way.
	res, err := h.Run(ctx, "systemctl is-enabled "+q+" 2>/dev/null; systemctl is-active "+q+" 2>/dev/null; true")
	if err != nil {
		return "", err
	}
	out := strings.Fields(string(res.Stdout))
	enabled, active := "", ""
	switch len(out) {
	case 2:
		enabled, active = out[0], out[1]
	case 1: // is-enabled prints nothing for a unit file that does not exist
		active = out[0]
	}
	isEnabled := enabled == "enabled" || enabled == "static" || enabled == "alias" || enabled == "generated"
	isActive := active == "active" || active == "reloading" || active == "activating"
	switch want {
	case Running:
		if enabled == "masked" {
			return "", fmt.Errorf("unit %s is masked; unmask it by hand if it should run", unit)
		}
		switch {
		case !isEnabled:
			return "systemctl enable --now " + q, nil
		case !isActive:
			return "systemctl start " + q, nil
		}
	case Stopped:
		if enabled == "" || enabled == "not-found" {
			if isActive {
				return "systemctl stop " + q, nil
			}
			return "", nil
		}
		if enabled == "enabled" || isActive {
			return "systemctl disable --now " + q, nil
		}
	}
	return "", nil
}

// UnitFile keeps a unit file of ours under /etc/systemd/system and has
// systemd re-read its configuration when it changes.
func UnitFile(unit string, content []byte) Step {
	return systemdFile("/etc/systemd/system/"+unit, content)
}

// UnitAbsent undoes UnitFile and the service it runs: the unit stopped
// and disabled, its file removed, systemd told.
func UnitAbsent(unit string) []Step {
	path := "/etc/systemd/system/" + unit
	return []Step{
		Service(unit, Stopped),
		FileAbsent(path),
		OnChange("reload systemd without "+unit, "systemctl daemon-reload", FileID(path).Removal()),
	}
}

// DropIn keeps a drop-in for a unit (ours or the distribution's), for
// changing one setting without owning the whole unit.
func DropIn(unit, name string, content []byte) Step {
	return systemdFile("/etc/systemd/system/"+unit+".d/"+name+".conf", content)
}

func systemdFile(path string, content []byte) Step {
	s := File(FileSpec{Path: path, Content: content, Mode: 0o644, Owner: "root:root"})
	upload := s.Apply
	s.Apply = func(ctx context.Context, t *Target) error {
		if _, err := t.Host.Run(ctx, "mkdir -p "+remote.ShellQuote(path[:strings.LastIndex(path, "/")])); err != nil {
			return err
		}
		if err := upload(ctx, t); err != nil {
			return err
		}
		_, err := t.Host.Run(ctx, "systemctl daemon-reload")
		return err
	}
	return s
}

// RestartRunning restarts unit when one of the steps after names changed
// something in this run, if the unit is running: one not running yet is
// left to the step that starts it with the new configuration anyway.
// restart does the restart (`systemctl restart`, given to it as do), so
// that a role can take a cluster-wide turn around it.
func RestartRunning(unit string, after []ID, restart func(ctx context.Context, t *Target, do func(context.Context) error) error) Step {
	cmd := "systemctl restart " + unit
	s := AfterChange("restart "+unit, cmd, after, func(ctx context.Context, t *Target) error {
		return restart(ctx, t, func(ctx context.Context) error {
			_, err := t.Host.Run(ctx, cmd)
			return err
		})
	})
	due := s.Check
	s.Check = func(ctx context.Context, t *Target) (*Change, error) {
		c, err := due(ctx, t)
		if c == nil || err != nil {
			return c, err // done earlier in this run
		}
		if _, err := t.Host.Run(ctx, "systemctl is-active --quiet "+unit); err != nil {
			if remote.IsExit(err) {
				return nil, nil
			}
			return nil, err
		}
		return c, nil
	}
	return s
}

// TestAndReload tests a service's configuration with test and has a
// running unit re-read it (systemctl reload: no restart, no connection
// dropped), when any of the steps after names changed something in this
// run. A configuration the test refuses fails the step with the tool's own
// message and is never loaded: the running service keeps the one it has.
// A stopped unit is only tested; the service step after this one starts
// it. what names the service for people ("nginx").
func TestAndReload(what, unit, test string, after ...ID) Step {
	return AfterChange("test and reload "+what, test+" && systemctl reload "+unit, after, func(ctx context.Context, t *Target) error {
		if _, err := t.Host.Run(ctx, test); err != nil {
			return fmt.Errorf("%s refuses the configuration, left the running one alone: %w", what, err)
		}
		if _, err := t.Host.Run(ctx, "systemctl is-active --quiet "+unit); err != nil {
			if remote.IsExit(err) {
				return nil
			}
			return err
		}
		_, err := t.Host.Run(ctx, "systemctl reload "+unit)
		return err
	})
}

// RestartStale is RestartRunning that also restarts a running unit that
// has run since before one of files last changed: a run that wrote them
// and then stopped before the restart (a halted roll, a Ctrl-C) leaves the
// unit on its old configuration, and the next run finds the files as
// wanted.
func RestartStale(unit string, files []string, after []ID, restart func(ctx context.Context, t *Target, do func(context.Context) error) error) Step {
	s := RestartRunning(unit, after, restart)
	due := s.Check
	s.When = func(*Target) bool { return true }
	s.Check = func(ctx context.Context, t *Target) (*Change, error) {
		if t.Changed(after...) || t.Changed(s.ID) {
			return due(ctx, t)
		}
		var newer []string
		for _, f := range files {
			newer = append(newer, fmt.Sprintf("test \"$(stat -c %%Y %s 2>/dev/null || echo 0)\" -gt \"$since\"", remote.ShellQuote(f)))
		}
		// Exit 0: the unit runs and a file is newer than its start. In
		// UTC: date misreads zone names such as CST (Asia/Shanghai).
		script := fmt.Sprintf("systemctl is-active --quiet %[1]s && since=$(date -d \"$(TZ=UTC systemctl show -p ActiveEnterTimestamp --value %[1]s)\" +%%s) && { %[2]s; }", unit, strings.Join(newer, " || "))
		_, err := t.Host.Run(ctx, script)
		if remote.IsExit(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &Change{Summary: "systemctl restart " + unit + " (it runs a configuration older than its files)"}, nil
	}
	return s
}

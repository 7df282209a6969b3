package step

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/trafficlab/trafficlab/provision/remote"
)

// User keeps a system user (and its group of the same name) that cannot
// log in.
func User(name, home string) Step {
	q := remote.ShellQuote(name)
	s := Command("user "+name,
		"id -u "+q+" >/dev/null 2>&1",
		"useradd --system --user-group --no-create-home --home-dir "+remote.ShellQuote(home)+" --shell /usr/sbin/nologin "+q)
	s.ID = ID{Kind: KindUser, Object: name}
	return s
}

// UserAbsent removes a user made by User, with its group.
func UserAbsent(name string) Step {
	q := remote.ShellQuote(name)
	s := Command("remove user "+name, "! id -u "+q+" >/dev/null 2>&1", "userdel "+q)
	s.ID = ID{Kind: KindUser, Object: name, Absent: true}
	return s
}

// Dir keeps a directory with the given mode and owner ("user:group").
func Dir(p string, mode fs.FileMode, owner string) Step {
	user, group, _ := strings.Cut(owner, ":")
	q := remote.ShellQuote
	s := Command("directory "+p,
		fmt.Sprintf(`test "$(stat -c '%%U:%%G %%a' -- %s 2>/dev/null)" = '%s %o'`, q(p), owner, mode.Perm()),
		fmt.Sprintf("install -d -m %04o -o %s -g %s -- %s", mode.Perm(), q(user), q(group), q(p)))
	s.ID = ID{Kind: KindDirectory, Object: p}
	return s
}

// TreeAbsent keeps nothing at p: a file, a link, or a directory with all
// it holds.
func TreeAbsent(p string) Step {
	q := remote.ShellQuote(p)
	s := Command("remove "+p, "! test -e "+q+" && ! test -L "+q, "rm -rf "+q)
	s.ID = ID{Kind: KindDirectory, Object: p, Absent: true}
	return s
}

// EmptyDirAbsent removes the directory p when nothing is left in it; one
// shared with others (the kept distributions of several roles) goes with
// the last of them.
func EmptyDirAbsent(p string) Step {
	s := Planned("remove "+p+" if empty", func(ctx context.Context, t *Target) (string, error) {
		res, err := t.Host.Run(ctx, "ls -A "+remote.ShellQuote(p)+" 2>/dev/null")
		if remote.IsExit(err) {
			return "", nil // not there
		}
		if err != nil || strings.TrimSpace(string(res.Stdout)) != "" {
			return "", err
		}
		return "rmdir " + remote.ShellQuote(p), nil
	})
	s.ID = ID{Kind: KindDirectory, Object: p, Block: "if empty", Absent: true}
	return s
}

// Probe looks at a service once: ready, or what it is doing instead.
type Probe func(ctx context.Context, h Host) (ready bool, state string, err error)

// Poll is how often Wait probes; tests shorten it.
var Poll = 2 * time.Second

// Wait is a step that changes nothing but holds the host's steps until
// probe says ready, at most timeout; then it fails saying what the probe
// saw last and what to look at (hint). In a dry run it probes once and
// reports a wait as the change it would make.
func Wait(name string, timeout time.Duration, hint string, probe Probe) Step {
	check := func(ctx context.Context, t *Target) (*Change, error) {
		deadline := time.Now().Add(timeout)
		for {
			ready, state, err := probe(ctx, t.Host)
			if err != nil || ready {
				return nil, err
			}
			if t.DryRun {
				return &Change{Summary: "wait: " + state}, nil
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("not ready after %s: %s; %s", timeout, state, hint)
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting (%s): %w", state, ctx.Err())
			case <-time.After(Poll):
			}
		}
	}
	return Step{ID: ID{Kind: KindWait, Object: name}, Name: name, Check: check, Apply: func(context.Context, *Target) error { return nil }}
}

// TCPProbe is a command that uses bash's /dev/tcp on the host, so that no
// client tool (nc, a JDK's CLI) has to be installed: it connects to port
// on the loopback address, sends send (if any) and prints the answer.
func TCPProbe(port int, send string) string {
	script := fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", port)
	if send != "" {
		script += fmt.Sprintf(" && printf %s >&3 && cat <&3", send)
	}
	return "bash -c " + remote.ShellQuote(script)
}

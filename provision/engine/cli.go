package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/blang/semver"
	sdk "github.com/pulumi/pulumi/sdk/v3"
)

// CLIVersion is the pulumi CLI version the engine needs: the SDK's own, as
// the Automation API and the CLI speak a protocol that changes between
// releases.
func CLIVersion() string { return "v" + sdk.Version.String() }

// CLICachePath is where scripts/pulumi-cli.sh (`make tools`) builds the
// CLI: a cache outside the work tree keyed by version.
func CLICachePath() (string, error) {
	base := "/var/cache/trafficlab"
	if os.Geteuid() != 0 {
		dir := os.Getenv("XDG_CACHE_HOME")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("find the pulumi CLI cache: %w", err)
			}
			dir = filepath.Join(home, ".cache")
		}
		base = filepath.Join(dir, "trafficlab")
	}
	return filepath.Join(base, "pulumi", CLIVersion(), "pulumi"), nil
}

// ErrNoCLI says that no pulumi CLI of the right version was found.
var ErrNoCLI = errors.New("no pulumi CLI")

// FindCLI returns the path of a pulumi CLI of CLIVersion: the one on PATH
// when its version matches, else the one `make tools` builds.
func FindCLI() (string, error) {
	want := CLIVersion()
	var seen []string
	if p, err := exec.LookPath("pulumi"); err == nil {
		v := cliVersion(p)
		if v == want {
			return p, nil
		}
		seen = append(seen, fmt.Sprintf("%s is %s", p, v))
	}
	cached, err := CLICachePath()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(cached); err == nil {
		v := cliVersion(cached)
		if v == want {
			return cached, nil
		}
		seen = append(seen, fmt.Sprintf("%s is %s", cached, v))
	}
	msg := fmt.Sprintf("%v %s found on PATH or in %s", ErrNoCLI, want, filepath.Dir(cached))
	if len(seen) > 0 {
		msg += " (" + strings.Join(seen, "; ") + ")"
	}
	return "", fmt.Errorf("%s: run `make tools` to build it once from the Go module proxy", msg)
}

func cliVersion(path string) string {
	cmd := exec.Command(path, "version")
	cmd.Env = append(os.Environ(), "PULUMI_SKIP_UPDATE_CHECK=true")
	out, err := cmd.Output()
	if err != nil {
		return "unusable: " + err.Error()
	}
	return strings.TrimSpace(string(out))
}

// cli runs the pulumi CLI for the Automation API (it implements
// auto.PulumiCommand). Unlike the SDK's own runner it puts the CLI in a
// process group of its own, so that a Ctrl-C on the terminal reaches only
// provision, which then interrupts Pulumi exactly once: Pulumi's first
// interrupt cancels gracefully (running operations finish, state is
// saved), a second one would abandon them.
type cli struct {
	path    string
	version semver.Version
	// abort, when closed, interrupts a running CLI a second time, which
	// makes it stop at once.
	abort <-chan struct{}
}

func newCLI(path string, abort <-chan struct{}) (*cli, error) {
	v, err := semver.ParseTolerant(CLIVersion())
	if err != nil {
		return nil, err
	}
	return &cli{path: path, version: v, abort: abort}, nil
}

func (c *cli) Version() semver.Version { return c.version }

// waitDelay bounds how long the CLI may take to exit after its second
// interrupt before it is killed.
const waitDelay = 10 * time.Second

func (c *cli) Run(ctx context.Context, workdir string, stdin io.Reader, stdoutTo, stderrTo []io.Writer,
	env []string, args ...string,
) (string, string, int, error) {
	if err := ctx.Err(); err != nil {
		return "", "", -1, err
	}
	if !slices.Contains(args, "--non-interactive") {
		args = append([]string{"--non-interactive"}, args...)
	}
	cmd := exec.Command(c.path, args...)
	cmd.Dir = workdir
	cmd.Env = append(append(os.Environ(), env...), "PULUMI_AUTOMATION_API=true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = io.MultiWriter(append(stdoutTo, &stdout)...)
	cmd.Stderr = io.MultiWriter(append(stderrTo, &stderr)...)
	cmd.Stdin = stdin
	if err := cmd.Start(); err != nil {
		return "", "", -1, fmt.Errorf("start %s: %w", c.path, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	interrupt := func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	ctxDone, abort := ctx.Done(), c.abort
	var kill <-chan time.Time
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-ctxDone:
			interrupt()
			ctxDone = nil
		case <-abort:
			interrupt()
			abort = nil
			kill = time.After(waitDelay)
		case <-kill:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			kill = nil
		}
	}
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		code = -1
	}
	return stdout.String(), stderr.String(), code, err
}

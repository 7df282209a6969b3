package engine

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// StateEnv overrides the default state directory.
const StateEnv = "TRAFFICLAB_STATE"

// DefaultStateDir is where provision keeps Pulumi's state, the stack
// configuration, the generated passphrase and the run logs: outside any
// work tree, so a `git clean` or a fresh clone never loses a cluster's
// state. $TRAFFICLAB_STATE overrides it.
func DefaultStateDir() (string, error) {
	if d := os.Getenv(StateEnv); d != "" {
		return filepath.Abs(d)
	}
	if os.Geteuid() == 0 {
		return "/var/lib/trafficlab/state", nil
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the state directory: %w (set %s)", err, StateEnv)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "trafficlab"), nil
}

// dirs names what lives in a state directory.
type dirs struct {
	root string
}

// backend is the Pulumi file backend used unless PULUMI_BACKEND_URL is set.
func (d dirs) backend() string { return filepath.Join(d.root, "backend") }

// workspace holds Pulumi.yaml and Pulumi.<stack>.yaml (the stack's
// configuration with its encrypted secrets).
func (d dirs) workspace() string { return filepath.Join(d.root, "workspace") }

// passphrase is the generated secrets passphrase, 0600.
func (d dirs) passphrase() string { return filepath.Join(d.root, "passphrase") }

// runs holds one directory per command run of a stack.
func (d dirs) runs(stack string) string { return filepath.Join(d.root, "runs", stack) }

func (d dirs) ensure() error {
	for _, p := range []string{d.root, d.backend(), d.workspace()} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	return nil
}

// keptRuns is how many run directories of a stack are kept.
const keptRuns = 30

// newRunDir creates the directory of one run, named by its start time and
// command so that `ls` lists runs in order, and drops the oldest runs.
func (d dirs) newRunDir(stack, command string, now time.Time) (string, error) {
	base := d.runs(stack)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("run directory: %w", err)
	}
	name := now.Format("20060102-150405.000") + "-" + command
	dir := filepath.Join(base, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", fmt.Errorf("run directory: %w", err)
	}
	pruneRuns(base, keptRuns)
	return dir, nil
}

func pruneRuns(base string, keep int) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for len(names) > keep {
		_ = os.RemoveAll(filepath.Join(base, names[0]))
		names = names[1:]
	}
}

// LastRunDir returns the newest run directory of a stack, "" if none.
func (d dirs) lastRunDir(stack string) string {
	entries, err := os.ReadDir(d.runs(stack))
	if err != nil {
		return ""
	}
	var last string
	for _, e := range entries {
		if e.IsDir() && e.Name() > last {
			last = e.Name()
		}
	}
	if last == "" {
		return ""
	}
	return filepath.Join(d.runs(stack), last)
}

// passphraseEnv returns the environment that gives Pulumi the secrets
// passphrase: nothing when the user set PULUMI_CONFIG_PASSPHRASE or
// PULUMI_CONFIG_PASSPHRASE_FILE (the CLI inherits it), else the file beside
// the state, generated on first use. The file is passed by name so the
// passphrase itself never appears in any process's arguments or
// environment.
func (d dirs) passphraseEnv() (map[string]string, error) {
	if os.Getenv("PULUMI_CONFIG_PASSPHRASE") != "" || os.Getenv("PULUMI_CONFIG_PASSPHRASE_FILE") != "" {
		return nil, nil
	}
	path, err := ensurePassphrase(d.passphrase())
	if err != nil {
		return nil, err
	}
	return map[string]string{"PULUMI_CONFIG_PASSPHRASE_FILE": path}, nil
}

// ensurePassphrase creates the passphrase file once (0600, never
// overwritten: losing it loses every secret of every stack) and checks an
// existing one is not readable by others.
func ensurePassphrase(path string) (string, error) {
	st, err := os.Stat(path)
	switch {
	case err == nil:
		if st.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("passphrase file %s is mode %04o: make it 0600 (chmod 600 %s)", path, st.Mode().Perm(), path)
		}
		return path, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", fmt.Errorf("generate the passphrase: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return path, nil // another provision made it meanwhile
	}
	if err != nil {
		return "", fmt.Errorf("passphrase file: %w", err)
	}
	_, err = f.WriteString(base64.RawURLEncoding.EncodeToString(buf) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", fmt.Errorf("write the passphrase file: %w", err)
	}
	return path, nil
}

// backendURL is the Pulumi backend: PULUMI_BACKEND_URL when the user set
// it, else the file backend in the state directory.
func (d dirs) backendURL() string {
	if u := os.Getenv("PULUMI_BACKEND_URL"); u != "" {
		return u
	}
	return "file://" + filepath.ToSlash(d.backend())
}

// describeBackend says where the state is, for status output; a URL's
// credentials are not shown.
func describeBackend(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "…" + u[i:]
		}
	}
	return u
}

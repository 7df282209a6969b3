//go:build linux

// Package daemon runs the lab's long-lived processes (nspawn machines, the
// package proxy, the NTP server) in the background without a service
// manager: each in its own session, output appended to a log file, its pid in
// a pid file. Processes are recognised by their command line, so a stale pid
// file (after a reboot, or a pid reused by something else) is never trusted,
// and processes whose pid file was lost can still be found and stopped.
package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Spec describes one background process.
type Spec struct {
	Name    string   // for messages, e.g. "squid"
	Path    string   // executable
	Args    []string // arguments, without argv[0]
	Env     []string // extra environment
	Dir     string   // working directory ("" = /)
	PidFile string
	LogFile string
	// SelfPidFile says the process writes PidFile itself (squid, chronyd);
	// Start then leaves it alone rather than racing the process for it.
	SelfPidFile bool
	// Match recognises the process from its command line (argv). It must
	// be specific to this lab instance (e.g. test for a lab path in argv).
	Match func(argv []string) bool
}

// Start launches the process in a new session, detached from the caller.
func Start(s Spec) (int, error) {
	for _, d := range []string{filepath.Dir(s.PidFile), filepath.Dir(s.LogFile)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return 0, fmt.Errorf("start %s: %w", s.Name, err)
		}
	}
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- %s: starting %s %s\n", time.Now().Format(time.RFC3339), s.Path, strings.Join(s.Args, " "))
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Dir = s.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Stdout, cmd.Stderr = logf, logf // stdin stays /dev/null
	// Its own session: no controlling terminal, and no SIGHUP or ^C from the
	// terminal that ran `lab up`.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while this process lives (the lab's tests run
	// for a long time); when `lab` exits, init adopts and reaps it.
	go cmd.Wait() //nolint:errcheck
	if s.SelfPidFile {
		return pid, nil
	}
	if err := os.WriteFile(s.PidFile, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return pid, fmt.Errorf("start %s: %w", s.Name, err)
	}
	slog.Debug("started", "name", s.Name, "pid", pid, "log", s.LogFile)
	return pid, nil
}

// Running returns the pid of the process if the pid file names a live
// process that Match recognises.
func Running(s Spec) (int, bool) {
	b, err := os.ReadFile(s.PidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	argv, ok := Argv(pid)
	if !ok || !s.Match(argv) {
		return 0, false
	}
	return pid, true
}

// Argv returns a live (non-zombie) process's command line.
func Argv(pid int) ([]string, bool) {
	if !Alive(pid) {
		return nil, false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), true
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain spaces or parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// Find returns the pids of live processes whose command line matches.
func Find(match func(argv []string) bool) []int {
	des, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	self := os.Getpid()
	for _, de := range des {
		pid, err := strconv.Atoi(de.Name())
		if err != nil || pid == self {
			continue
		}
		if argv, ok := Argv(pid); ok && match(argv) {
			out = append(out, pid)
		}
	}
	return out
}

// Stop sends sig to pid and waits up to grace for it to exit; then it sends
// SIGKILL (and, if given, kills extra pids first, such as a container's
// init that would outlive its nspawn parent). It reports whether the process
// exited on its own.
func Stop(pid int, sig syscall.Signal, grace time.Duration) (clean bool, err error) {
	if !Alive(pid) {
		return true, nil
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("signal %d: %w", pid, err)
	}
	if WaitGone(pid, grace) {
		return true, nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return false, fmt.Errorf("kill %d: %w", pid, err)
	}
	if !WaitGone(pid, 5*time.Second) {
		return false, fmt.Errorf("process %d survived SIGKILL", pid)
	}
	return false, nil
}

// WaitGone polls until pid is gone (or a zombie) or d passes.
func WaitGone(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !Alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// HasArg reports whether argv contains a.
func HasArg(argv []string, a string) bool {
	for _, x := range argv {
		if x == a {
			return true
		}
	}
	return false
}

// InRoot returns the pids of live processes whose root directory is
// rootDir: the processes of an nspawn machine (nspawn bind-mounts rootDir as
// the container's root, so /proc/PID/root is that very directory — same
// device and inode — even when nspawn itself is gone) or of a chroot, such
// as debootstrap's package installs.
func InRoot(rootDir string) []int {
	var want syscall.Stat_t
	if err := syscall.Stat(rootDir, &want); err != nil {
		return nil
	}
	var host syscall.Stat_t
	if err := syscall.Stat("/", &host); err != nil {
		return nil
	}
	if want.Dev == host.Dev && want.Ino == host.Ino {
		return nil
	}
	des, _ := os.ReadDir("/proc")
	var out []int
	for _, de := range des {
		var pid int
		if _, err := fmt.Sscanf(de.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if err := syscall.Stat(fmt.Sprintf("/proc/%d/root", pid), &st); err != nil {
			continue
		}
		if st.Dev == want.Dev && st.Ino == want.Ino && Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// KillAll sends SIGKILL to pids and waits briefly for each to go.
func KillAll(pids []int) {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, pid := range pids {
		WaitGone(pid, 5*time.Second)
	}
}

// Command returns the program name of argv: the base name of argv[0], or of
// argv[1] when argv[0] is a shell running a script (debootstrap is one).
func Command(argv []string) string {
	if len(argv) == 0 {
		return ""
	}
	name := filepath.Base(argv[0])
	switch name {
	case "sh", "bash", "dash":
		if len(argv) > 1 && !strings.HasPrefix(argv[1], "-") {
			return filepath.Base(argv[1])
		}
	}
	return name
}

//go:build linux

package daemon

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestCommand(t *testing.T) {
	for argv, want := range map[*[]string]string{
		{"/usr/bin/systemd-nspawn", "-D", "/x"}:                   "systemd-nspawn",
		{"/bin/sh", "/usr/sbin/debootstrap", "--variant=minbase"}: "debootstrap",
		{"/bin/sh", "-c", "echo"}:                                 "sh",
		{"cp", "-a", "x", "y"}:                                    "cp",
	} {
		if got := Command(*argv); got != want {
			t.Errorf("Command(%q) = %q, want %q", *argv, got, want)
		}
	}
	if Command(nil) != "" {
		t.Error("Command(nil) not empty")
	}
}

// TestStartStop runs a real background process the way the lab runs its
// daemons, finds it, and stops it.
func TestStartStop(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	s := Spec{
		Name: "sleeper", Path: "/bin/sh", Args: []string{"-c", "exec sleep 60", marker},
		PidFile: filepath.Join(dir, "run", "sleeper.pid"), LogFile: filepath.Join(dir, "logs", "sleeper.log"),
		Match: func(argv []string) bool { return HasArg(argv, marker) },
	}
	if _, ok := Running(s); ok {
		t.Fatal("running before start")
	}
	pid, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	// exec replaces sh with sleep, whose argv lacks the marker: match the
	// shell until then, and the pid either way.
	time.Sleep(100 * time.Millisecond)
	if !Alive(pid) {
		t.Fatal("process not alive after start")
	}
	if sid := session(t, pid); sid != pid {
		t.Errorf("process session %d, want its own (%d)", sid, pid)
	}
	if b, err := os.ReadFile(s.PidFile); err != nil || len(b) == 0 {
		t.Errorf("pid file: %v", err)
	}
	clean, err := Stop(pid, syscall.SIGTERM, 5*time.Second)
	if err != nil || !clean {
		t.Errorf("Stop = %v, %v", clean, err)
	}
	if Alive(pid) {
		t.Error("alive after Stop")
	}
	if _, ok := Running(s); ok {
		t.Error("Running after Stop")
	}
}

// session reads the session id from /proc/PID/stat (the field after the
// parent and process group).
func session(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	var state byte
	var ppid, pgrp, sid int
	rest := b[bytes.LastIndexByte(b, ')')+2:]
	if _, err := fmt.Sscanf(string(rest), "%c %d %d %d", &state, &ppid, &pgrp, &sid); err != nil {
		t.Fatal(err)
	}
	return sid
}

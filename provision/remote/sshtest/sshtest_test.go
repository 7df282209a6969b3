package sshtest_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
)

func TestScript(t *testing.T) {
	script := new(sshtest.Script).
		Otherwise(sshtest.Reply{Stderr: "unexpected\n", Exit: 99}).
		OnPrefix("dnf ", sshtest.Reply{Stdout: "Complete!\n"}).
		OnRegexp(`^systemctl is-active \S+$`, sshtest.Reply{Stdout: "inactive\n", Exit: 3}).
		On("systemctl is-active nginx", sshtest.Reply{Stdout: "active\n"})
	srv := sshtest.New(t, sshtest.WithHandler(script.Handler()))
	c, err := remote.Connect(context.Background(), srv.Config(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	run := func(cmd string, opts ...remote.RunOption) (string, int) {
		res, err := c.Run(ctx, cmd, opts...)
		var exit *remote.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return string(res.Stdout) + string(res.Stderr), res.ExitCode
	}
	for _, tc := range []struct {
		cmd  string
		out  string
		exit int
	}{
		{"dnf install -y nginx", "Complete!\n", 0},
		{"systemctl is-active nginx", "active\n", 0}, // the later, exact rule wins
		{"systemctl is-active keepalived", "inactive\n", 3},
		{"reboot", "unexpected\n", 99},
	} {
		if out, exit := run(tc.cmd, remote.WithStdin(strings.NewReader("in:"+tc.cmd))); out != tc.out || exit != tc.exit {
			t.Errorf("%s: got %q exit %d, want %q exit %d", tc.cmd, out, exit, tc.out, tc.exit)
		}
	}
	calls := script.Calls()
	if len(calls) != 4 || calls[2].Command != "systemctl is-active keepalived" || calls[2].Stdin != "in:systemctl is-active keepalived" {
		t.Errorf("calls %+v", calls)
	}
	if !reflect.DeepEqual(script.Commands(), srv.Commands()) {
		t.Errorf("script saw %q, server %q", script.Commands(), srv.Commands())
	}
}

func TestSudoInFrontOfScript(t *testing.T) {
	script := new(sshtest.Script).On("id -u", sshtest.Reply{Stdout: "0\n"})
	srv := sshtest.New(t, sshtest.WithUser("deploy"), sshtest.WithHandler(sshtest.Sudo("pw", script.Handler())))
	cfg := srv.Config(t)
	cfg.SudoPassword = "pw"
	c, err := remote.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(context.Background(), "id -u", remote.WithStdin(strings.NewReader("data")))
	if err != nil || string(res.Stdout) != "0\n" {
		t.Fatalf("got %q, %v", res.Stdout, err)
	}
	if calls := script.Calls(); len(calls) != 1 || calls[0] != (sshtest.Call{Command: "id -u", Stdin: "data"}) {
		t.Errorf("the script should see the unwrapped command and only the caller's stdin: %+v", calls)
	}
	if cmd := srv.Commands()[0]; !strings.HasPrefix(cmd, "sudo -S -p ") {
		t.Errorf("server saw %q", cmd)
	}
}

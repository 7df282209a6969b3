package facts_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/remote"
	"github.com/trafficlab/trafficlab/provision/remote/sshtest"
)

func TestParseOSRelease(t *testing.T) {
	supported := map[string]facts.OS{
		"rocky-9.4":       {ID: "rocky", VersionID: "9.4", PrettyName: "Rocky Linux 9.4 (Blue Onyx)", Family: facts.RHEL, Major: 9},
		"rocky-8.9":       {ID: "rocky", VersionID: "8.9", PrettyName: "Rocky Linux 8.9 (Green Obsidian)", Family: facts.RHEL, Major: 8},
		"almalinux-9.4":   {ID: "almalinux", VersionID: "9.4", PrettyName: "AlmaLinux 9.4 (Seafoam Ocelot)", Family: facts.RHEL, Major: 9},
		"almalinux-8.10":  {ID: "almalinux", VersionID: "8.10", PrettyName: "AlmaLinux 8.10 (Cerulean Leopard)", Family: facts.RHEL, Major: 8},
		"centos-stream-9": {ID: "centos", VersionID: "9", PrettyName: "CentOS Stream 9", Family: facts.RHEL, Major: 9},
		"centos-stream-8": {ID: "centos", VersionID: "8", PrettyName: "CentOS Stream 8", Family: facts.RHEL, Major: 8},
		"rhel-9.4":        {ID: "rhel", VersionID: "9.4", PrettyName: "Red Hat Enterprise Linux 9.4 (Plow)", Family: facts.RHEL, Major: 9},
		"rhel-8.10":       {ID: "rhel", VersionID: "8.10", PrettyName: "Red Hat Enterprise Linux 8.10 (Ootpa)", Family: facts.RHEL, Major: 8},
		"ol-9.3":          {ID: "ol", VersionID: "9.3", PrettyName: "Oracle Linux Server 9.3", Family: facts.RHEL, Major: 9},
		"debian-12":       {ID: "debian", VersionID: "12", PrettyName: "Debian GNU/Linux 12 (bookworm)", Family: facts.Debian, Major: 12},
		"debian-13":       {ID: "debian", VersionID: "13", PrettyName: "Debian GNU/Linux 13 (trixie)", Family: facts.Debian, Major: 13},
		"ubuntu-22.04":    {ID: "ubuntu", VersionID: "22.04", PrettyName: "Ubuntu 22.04.4 LTS", Family: facts.Debian, Major: 22},
		"ubuntu-24.04":    {ID: "ubuntu", VersionID: "24.04", PrettyName: "Ubuntu 24.04.1 LTS", Family: facts.Debian, Major: 24},
	}
	refused := map[string]string{
		"centos-7":           "centos 7 (CentOS Linux 7 (Core)) is not supported: it is end of life and has neither Java 17 nor MySQL 8; use Rocky Linux or AlmaLinux 9",
		"rocky-10.0":         "unsupported version rocky 10.0 (Rocky Linux 10.0 (Red Quartz)): trafficlab supports " + facts.Supported,
		"debian-11":          "unsupported version debian 11 (Debian GNU/Linux 11 (bullseye)): trafficlab supports " + facts.Supported,
		"debian-sid":         "unsupported version of debian (Debian GNU/Linux trixie/sid): no VERSION_ID",
		"ubuntu-20.04":       "unsupported version ubuntu 20.04 (Ubuntu 20.04.6 LTS): trafficlab supports " + facts.Supported,
		"fedora-40":          "unsupported operating system fedora 40 (Fedora Linux 40 (Server Edition)): trafficlab supports " + facts.Supported,
		"amzn-2023":          "unsupported operating system amzn 2023 (Amazon Linux 2023.5.20240805)",
		"opensuse-leap-15.5": "unsupported operating system opensuse-leap 15.5 (openSUSE Leap 15.5)",
		"alpine-3.20":        "unsupported operating system alpine 3.20.3 (Alpine Linux v3.20)",
		"linuxmint-21.3":     "unsupported operating system linuxmint 21.3 (Linux Mint 21.3)",
	}
	files, _ := filepath.Glob("testdata/os-release/*")
	if len(files) != len(supported)+len(refused) {
		t.Errorf("%d testdata files, %d cases", len(files), len(supported)+len(refused))
	}
	for _, file := range files {
		name := filepath.Base(file)
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		got, err := facts.ParseOSRelease(data)
		if want, ok := supported[name]; ok {
			want.PackageManager, want.ServiceManager = map[facts.Family]string{facts.RHEL: "dnf", facts.Debian: "apt"}[want.Family], "systemd"
			if err != nil || got != want {
				t.Errorf("%s:\n got %+v, %v\nwant %+v", name, got, err, want)
			}
			continue
		}
		if want := refused[name]; err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error\n got %v\nwant %s…", name, err, want)
		}
	}
}

func TestParseOSReleaseQuoting(t *testing.T) {
	got, err := facts.ParseOSRelease([]byte("# comment\nID='rocky'\nVERSION_ID=9.4\nPRETTY_NAME=\"Say \\\"hi\\\" \\$x\"\n\nBROKEN LINE\n"))
	if err != nil || got.ID != "rocky" || got.VersionID != "9.4" || got.PrettyName != `Say "hi" $x` {
		t.Errorf("got %+v, %v", got, err)
	}
	if _, err := facts.ParseOSRelease([]byte("NAME=x\n")); err == nil {
		t.Error("os-release without ID accepted")
	}
}

func detect(t *testing.T, script *sshtest.Script) (facts.OS, error) {
	srv := sshtest.New(t, sshtest.WithHandler(script.Handler()))
	cfg := srv.Config(t)
	cfg.Name = "kafka-1"
	c, err := remote.Connect(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return facts.Detect(context.Background(), c)
}

func osRelease(t *testing.T, name string) string {
	data, err := os.ReadFile(filepath.Join("testdata/os-release", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestDetect(t *testing.T) {
	script := new(sshtest.Script).
		On("cat /etc/os-release", sshtest.Reply{Stdout: osRelease(t, "rocky-9.4")}).
		On("systemd-detect-virt --container", sshtest.Reply{Stdout: "none\n", Exit: 1}).
		On("uname -m", sshtest.Reply{Stdout: "aarch64\n"})
	got, err := detect(t, script)
	if err != nil || got.Family != facts.RHEL || got.Major != 9 || got.PackageManager != "dnf" || got.Container != "" || got.Machine != "aarch64" || got.Arch != "arm64" {
		t.Errorf("got %+v, %v", got, err)
	}
	if cmds := script.Commands(); len(cmds) != 3 {
		t.Errorf("commands %q", cmds)
	}

	script.On("cat /etc/os-release", sshtest.Reply{Stdout: osRelease(t, "debian-12")}).
		On("systemd-detect-virt --container", sshtest.Reply{Stdout: "systemd-nspawn\n"}).
		On("uname -m", sshtest.Reply{Stdout: "x86_64\n"})
	got, err = detect(t, script)
	if err != nil || got.Family != facts.Debian || got.Major != 12 || got.Container != "systemd-nspawn" || got.Arch != "amd64" {
		t.Errorf("got %+v, %v", got, err)
	}
}

func TestDetectRefusesWithHostName(t *testing.T) {
	script := new(sshtest.Script).On("cat /etc/os-release", sshtest.Reply{Stdout: osRelease(t, "centos-7")})
	_, err := detect(t, script)
	if err == nil || !strings.HasPrefix(err.Error(), "kafka-1: centos 7 (CentOS Linux 7 (Core)) is not supported") {
		t.Errorf("got %v", err)
	}

	script = new(sshtest.Script).
		On("cat /etc/os-release", sshtest.Reply{Stdout: osRelease(t, "ubuntu-24.04")}).
		On("systemd-detect-virt --container", sshtest.Reply{Stderr: "sh: systemd-detect-virt: not found\n", Exit: 127})
	_, err = detect(t, script)
	if err == nil || !strings.Contains(err.Error(), "kafka-1") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("got %v", err)
	}
}

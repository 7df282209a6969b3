// Package facts finds out what a host runs: its distribution family and
// version, from /etc/os-release, and whether it is a container.
package facts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/trafficlab/trafficlab/provision/remote"
)

// Family groups distributions that configure alike.
type Family string

const (
	RHEL   Family = "rhel"   // RHEL and its rebuilds: dnf, firewalld, SELinux
	Debian Family = "debian" // Debian and Ubuntu: apt
)

// OS describes a host's operating system.
type OS struct {
	ID, VersionID, PrettyName string // from /etc/os-release
	Family                    Family
	Major                     int    // 8, 9, 12, 22, 24 ...
	PackageManager            string // "dnf" or "apt"
	ServiceManager            string // "systemd"
	Container                 string // "" unless a container, else what systemd-detect-virt --container printed
	// Machine is what `uname -m` printed (x86_64, aarch64, ...) and Arch
	// the same as Go's GOARCH (amd64, arm64, ...), "" for a machine Go
	// does not build for: the consumer is cross-compiled for it.
	Machine, Arch string
}

// goarch maps `uname -m` to GOARCH for the machines Go builds Linux
// binaries for.
var goarch = map[string]string{
	"x86_64": "amd64", "amd64": "amd64",
	"aarch64": "arm64", "arm64": "arm64",
	"i386": "386", "i686": "386",
	"armv7l": "arm", "armv6l": "arm",
	"ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64",
	"loongarch64": "loong64",
}

// GOARCH returns the Go architecture of a machine as `uname -m` names it,
// or "" when Go has none.
func GOARCH(machine string) string { return goarch[machine] }

// Supported lists the systems trafficlab provisions, for error messages.
const Supported = "RHEL-like 8 and 9 (RHEL, Rocky Linux, AlmaLinux, CentOS Stream, Oracle Linux), Debian 12 and 13, Ubuntu 22.04 and 24.04"

// rhelIDs are the IDs of RHEL rebuilds; derivatives not listed are
// recognised by "rhel" or "centos" in ID_LIKE.
var rhelIDs = []string{"rhel", "centos", "rocky", "almalinux", "ol"}

// ParseOSRelease reads the contents of an os-release file and says whether
// the system is supported.
func ParseOSRelease(data []byte) (OS, error) {
	kv := parseKeyValues(data)
	info := OS{ID: kv["ID"], VersionID: kv["VERSION_ID"], PrettyName: kv["PRETTY_NAME"], ServiceManager: "systemd"}
	like := strings.Fields(kv["ID_LIKE"])
	if info.ID == "" {
		return info, errors.New("os-release has no ID")
	}
	describe := info.ID
	if info.VersionID != "" {
		describe += " " + info.VersionID
	}
	if info.PrettyName != "" {
		describe += " (" + info.PrettyName + ")"
	}
	major, _ := strconv.Atoi(strings.SplitN(info.VersionID, ".", 2)[0])
	info.Major = major

	switch {
	case info.ID == "debian" || info.ID == "ubuntu":
		info.Family, info.PackageManager = Debian, "apt"
		if info.ID == "debian" && (major == 12 || major == 13) ||
			info.ID == "ubuntu" && (info.VersionID == "22.04" || info.VersionID == "24.04") {
			return info, nil
		}
	case slices.Contains(rhelIDs, info.ID) || slices.Contains(like, "rhel") || slices.Contains(like, "centos"):
		info.Family, info.PackageManager = RHEL, "dnf"
		if major == 8 || major == 9 {
			return info, nil
		}
		if major > 0 && major <= 7 {
			return info, fmt.Errorf("%s is not supported: it is end of life and has neither Java 17 nor MySQL 8; use Rocky Linux or AlmaLinux 9", describe)
		}
	default:
		return info, fmt.Errorf("unsupported operating system %s: trafficlab supports %s", describe, Supported)
	}
	if info.VersionID == "" {
		return info, fmt.Errorf("unsupported version of %s: no VERSION_ID (a testing or rolling release?); trafficlab supports %s", describe, Supported)
	}
	return info, fmt.Errorf("unsupported version %s: trafficlab supports %s", describe, Supported)
}

// parseKeyValues reads KEY=VALUE lines with shell-like quoting, as the
// os-release format defines.
func parseKeyValues(data []byte) map[string]string {
	kv := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, value, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		kv[key] = unquote(value)
	}
	return kv
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
		return v[1 : len(v)-1]
	}
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return v
	}
	v = v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0 {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Detect reads the host's /etc/os-release, asks systemd whether it is a
// container and uname what machine it is. The commands run as the login user (no sudo needed).
func Detect(ctx context.Context, c *remote.Client) (OS, error) {
	res, err := c.Run(ctx, "cat /etc/os-release", remote.WithoutSudo())
	if err != nil {
		return OS{}, fmt.Errorf("detect operating system: %w", err)
	}
	info, err := ParseOSRelease(res.Stdout)
	if err != nil {
		return info, fmt.Errorf("%s: %w", c.Name(), err)
	}
	// Exit status 1 with "none" means not a container.
	res, err = c.Run(ctx, "systemd-detect-virt --container", remote.WithoutSudo())
	var exit *remote.ExitError
	switch out := strings.TrimSpace(string(res.Stdout)); {
	case err == nil:
		info.Container = out
	case errors.As(err, &exit) && exit.Code == 1:
	default:
		return info, fmt.Errorf("detect container: %w", err)
	}
	res, err = c.Run(ctx, "uname -m", remote.WithoutSudo())
	if err != nil {
		return info, fmt.Errorf("detect architecture: %w", err)
	}
	info.Machine = strings.TrimSpace(string(res.Stdout))
	info.Arch = GOARCH(info.Machine)
	return info, nil
}

// InterfaceOf names the network interface that carries address on the
// host (keepalived must bring the VIP up there), from `ip -o addr show`.
func InterfaceOf(ctx context.Context, c *remote.Client, address string) (string, error) {
	res, err := c.Run(ctx, "ip -o addr show", remote.WithoutSudo())
	if err != nil {
		return "", fmt.Errorf("list network interfaces: %w", err)
	}
	return ParseInterface(string(res.Stdout), address)
}

// ParseInterface finds address in the output of `ip -o addr show`, one
// address per line: "2: eth0    inet 10.0.0.1/24 brd ... scope global eth0".
func ParseInterface(out, address string) (string, error) {
	want, err := netip.ParseAddr(address)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", address, err)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		for i := 2; i+1 < len(f); i++ {
			if f[i] != "inet" && f[i] != "inet6" {
				continue
			}
			p, err := netip.ParsePrefix(f[i+1])
			if err != nil || p.Addr().Unmap() != want.Unmap() {
				continue
			}
			name, _, _ := strings.Cut(f[1], "@") // "eth0@if12" on a veth
			return strings.TrimSuffix(name, ":"), nil
		}
	}
	return "", fmt.Errorf("no network interface carries %s", address)
}

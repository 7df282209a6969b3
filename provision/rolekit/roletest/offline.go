package roletest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/internal/golden"
	"github.com/trafficlab/trafficlab/inventory"
	"github.com/trafficlab/trafficlab/provision/facts"
	"github.com/trafficlab/trafficlab/provision/role"
)

// Rocky9 is the operating system facts.Detect finds on NewRHEL's host:
// Rocky Linux 9.4 on x86-64, not a container. It is the OS of offline
// contexts (Offline) for the RHEL-like family.
func Rocky9() facts.OS { return detected(RockyRelease) }

// Debian12 is the operating system facts.Detect finds on the host of
// NewDebian("none"): Debian 12 on x86-64, not a container. Set Container
// for a container's.
func Debian12() facts.OS { return detected(DebianRelease) }

// detected is what facts.Detect makes of a host with the os-release file
// release, on an x86-64 machine that is no container.
func detected(release string) facts.OS {
	os, err := facts.ParseOSRelease([]byte(release))
	if err != nil {
		panic(fmt.Sprintf("roletest: the fake hosts' os-release: %v", err))
	}
	os.Machine = "x86_64"
	os.Arch = facts.GOARCH(os.Machine)
	return os
}

// Offline returns the role context of the inventory's host called name as
// planning without a connection has it (`provision render`, a role's
// golden files): the OS given (Rocky9, Debian12), the built-in templates,
// and no secrets, values, interface or Dial. Tests set the fields they
// need on the context it returns.
func Offline(t testing.TB, inv *inventory.Inventory, name string, os facts.OS) *role.Context {
	t.Helper()
	return &role.Context{Inventory: inv, Host: HostNamed(t, inv, name), OS: os, Templates: Templates(t)}
}

// FilesOption changes what AssertFiles writes of each file.
type FilesOption int

const (
	// ShowSecret adds whether each file holds a secret to its header
	// line: " secret=true" or " secret=false".
	ShowSecret FilesOption = 1 << iota
)

// AssertFiles renders ro's files on c (ro.Files, as render does) and
// compares them with the golden file at path (testdata/NAME.golden), one
// file after the other, each as a header line
//
//	==> PATH[ (block BLOCK)] MODE OWNER[ secret=SECRET]
//
// followed by its content and an empty line. It fails the test with
// golden's diff, and with -update rewrites the golden file. It returns the
// files, for tests that check them further.
func AssertFiles(t testing.TB, ro role.Role, c *role.Context, path string, opts ...FilesOption) []role.File {
	t.Helper()
	files, err := ro.Files(c)
	if err != nil {
		t.Fatal(err)
	}
	var show FilesOption
	for _, o := range opts {
		show |= o
	}
	var out strings.Builder
	for _, f := range files {
		where := f.Path
		if f.Block != "" {
			where += " (block " + f.Block + ")"
		}
		fmt.Fprintf(&out, "==> %s %04o %s", where, f.Mode, f.Owner)
		if show&ShowSecret != 0 {
			fmt.Fprintf(&out, " secret=%v", f.Secret)
		}
		fmt.Fprintf(&out, "\n%s\n", f.Content)
	}
	golden.Assert(t, path, []byte(out.String()))
	return files
}

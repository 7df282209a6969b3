package aptsrc

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	text := `# a comment
deb http://mirror.example/debian bookworm main contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://mirror.example/debian bookworm-updates main # trailing
deb [ trusted=yes ] http://mirror.example/debian-security bookworm-security main
deb-src http://mirror.example/debian bookworm main
deb https://packages.vendor.example/apt cloud-sdk-bookworm main
broken line
`
	got := ParseList(text, "sources.list")
	if len(got) != 5 {
		t.Fatalf("got %d entries, want 5: %+v", len(got), got)
	}
	want := Entry{Type: "deb", URI: "http://mirror.example/debian", Suite: "bookworm-updates",
		Components: []string{"main"}, SignedBy: "/usr/share/keyrings/x.gpg", Source: "sources.list:3"}
	if !reflect.DeepEqual(got[1], want) {
		t.Errorf("entry 1 = %+v, want %+v", got[1], want)
	}
	if got[2].Suite != "bookworm-security" || got[2].URI != "http://mirror.example/debian-security" {
		t.Errorf("options with spaces not skipped: %+v", got[2])
	}
	if !reflect.DeepEqual(got[0].Components, []string{"main", "contrib"}) {
		t.Errorf("components = %v", got[0].Components)
	}
}

func TestParseDeb822(t *testing.T) {
	text := `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://vendor.example/node
Suites: nodistro
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
 -----END PGP PUBLIC KEY BLOCK-----
`
	got, err := ParseDeb822(text, "debian.sources")
	if err != nil {
		t.Fatal(err)
	}
	var summary []string
	for _, e := range got {
		summary = append(summary, e.Type+" "+e.URI+" "+e.Suite)
	}
	want := []string{
		"deb http://mirror.example/debian bookworm",
		"deb http://mirror.example/debian bookworm-updates",
		"deb http://mirror.example/debian-security bookworm-security",
		"deb-src http://mirror.example/debian-security bookworm-security",
		"deb https://vendor.example/node nodistro",
	}
	if !reflect.DeepEqual(summary, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(summary, "\n"), strings.Join(want, "\n"))
	}
	if got[0].Source != "debian.sources:1" || got[2].Source != "debian.sources:8" {
		t.Errorf("sources = %q, %q", got[0].Source, got[2].Source)
	}
	if !strings.Contains(got[4].SignedBy, "BEGIN PGP") {
		t.Errorf("embedded key lost: %q", got[4].SignedBy)
	}
	if _, err := ParseDeb822("Types: deb\nno colon here\n", "bad.sources"); err == nil {
		t.Error("malformed paragraph accepted")
	}
	if _, err := ParseDeb822("Types: deb\nSuites: x\n", "bad.sources"); err == nil {
		t.Error("paragraph without URIs accepted")
	}
}

func TestParseConf(t *testing.T) {
	text := `// comment
Acquire::Check-Valid-Until "false";
Acquire { Check-Date "false"; http { Proxy "http://host-only:3128"; Timeout "10"; }; };
/* block
   comment */
APT { NeverAutoRemove { "^firmware-linux.*"; "^linux-image-[0-9]+"; }; };
#clear APT::Foo
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };
Dir::Cache::pkgcache "";
acquire::check-valid-until "false";
`
	got, err := ParseConf(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"acquire::check-valid-until": "false", // a later, differently cased key wins
		"Acquire::Check-Date":        "false",
		"Acquire::http::Proxy":       "http://host-only:3128",
		"Acquire::http::Timeout":     "10",
		"Dir::Cache::pkgcache":       "",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	for _, bad := range []string{`Acquire { X "1";`, `Acquire::X "1"`, `}`, `A "unterminated;`} {
		if _, err := ParseConf(bad); err == nil {
			t.Errorf("ParseConf(%q) accepted", bad)
		}
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := Paths{
		SourcesList:    filepath.Join(dir, "sources.list"),
		SourcesListDir: filepath.Join(dir, "sources.list.d"),
		AptConf:        filepath.Join(dir, "apt.conf"),
		AptConfDir:     filepath.Join(dir, "apt.conf.d"),
	}
	files := map[string]string{
		"sources.list.d/debian.sources": "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
			"Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n",
		"sources.list.d/vendor.list":                  "deb https://vendor.example/apt cloud-sdk-bookworm main\n",
		"sources.list.d/other.list.disabled-by-admin": "deb http://ignored.example/debian bookworm main\n",
		"sources.list.d/old.list":                     "deb http://mirror.example/debian bullseye main\n",
		"apt.conf.d/99snapshot":                       "Acquire::Check-Valid-Until \"false\";\n",
		"apt.conf.d/50appstream":                      "Acquire::IndexTargets::deb::DEP-11::MetaKey \"x\";\n",
		"apt.conf.d/01proxy":                          "Acquire::http::Proxy \"http://corp:3128\";\nAcquire::https::Verify-Peer \"true\";\n",
		"apt.conf.d/20old.dpkg-old":                   "Acquire::Retries \"99\";\n",
		"apt.conf":                                    "Acquire::Retries \"3\";\n",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := Read(p)
	if err != nil {
		t.Fatal(err)
	}
	deb := h.Debian("bookworm")
	if len(deb) != 3 {
		t.Fatalf("Debian entries = %+v, want bookworm, -updates, -security", deb)
	}
	m, err := Mirror(deb, "bookworm")
	if err != nil || m.URI != "http://mirror.example/debian" {
		t.Errorf("Mirror = %+v, %v", m, err)
	}
	if _, err := Mirror(deb, "trixie"); err == nil {
		t.Error("Mirror found a suite the host does not have")
	}
	if got := Hosts(deb); !reflect.DeepEqual(got, []string{"mirror.example"}) {
		t.Errorf("Hosts = %v", got)
	}
	want := map[string]string{
		"Acquire::Check-Valid-Until":  "false",
		"Acquire::https::Verify-Peer": "true",
		"Acquire::Retries":            "3",
	}
	if !reflect.DeepEqual(h.Acquire, want) {
		t.Errorf("Acquire = %v, want %v", h.Acquire, want)
	}
	conf := AptConf(h.Acquire)
	if !strings.Contains(conf, "Acquire::Check-Valid-Until \"false\";\n") {
		t.Errorf("AptConf:\n%s", conf)
	}
	src := Deb822(deb)
	back, err := ParseDeb822(src, "rendered")
	if err != nil || len(back) != 3 || back[2].Suite != "bookworm-security" {
		t.Errorf("Deb822 does not round-trip: %v\n%s", err, src)
	}
}

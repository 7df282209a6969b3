package filebeatdist

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"

	"github.com/trafficlab/trafficlab/provision/role/filebeat"
	"github.com/trafficlab/trafficlab/provision/rolekit/install"
)

// The tarball has Elastic's name and layout, so the filebeat role installs
// it exactly as it would Elastic's, and the same program packs the same.
func TestPackageLooksLikeElastics(t *testing.T) {
	top := TopDir(Version, "amd64")
	if top != "filebeat-7.17.29-linux-x86_64" || TopDir(Version, "arm64") != "filebeat-7.17.29-linux-arm64" {
		t.Errorf("TopDir = %s", top)
	}
	if Version != filebeat.DefaultVersion {
		t.Errorf("the lab builds %s, the role defaults to %s", Version, filebeat.DefaultVersion)
	}
	// The role unpacks it where it would unpack Elastic's default tarball.
	lab := install.NewTarball("/var/cache/trafficlab/artifacts/x/"+top+".tar.gz", "", filebeat.Home)
	if def := install.NewTarball(filebeat.DefaultArtifact(), "", filebeat.Home); lab.Dir != def.Dir || lab.File() != def.File() {
		t.Errorf("lab %s into %s, Elastic's %s into %s", lab.File(), lab.Dir, def.File(), def.Dir)
	}
	a, err := Package(top, []byte("\x7fELF program"), map[string][]byte{"filebeat.yml": []byte("# sample\n"), "LICENSE.txt": []byte("license")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Package(top, []byte("\x7fELF program"), map[string][]byte{"LICENSE.txt": []byte("license"), "filebeat.yml": []byte("# sample\n")})
	if !bytes.Equal(a, b) {
		t.Error("the same content packs differently")
	}
	gz, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var entries []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, h.Name+" "+strings.TrimPrefix(h.FileInfo().Mode().String(), "-"))
	}
	want := top + "/ drwxr-xr-x," + top + "/LICENSE.txt rw-r--r--," + top + "/README.md rw-r--r--," + top + "/filebeat rwxr-xr-x," + top + "/filebeat.yml rw-r--r--"
	if got := strings.Join(entries, ","); got != want {
		t.Errorf("entries:\n%s\nwant:\n%s", got, want)
	}
}

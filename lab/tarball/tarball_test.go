package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"testing"
)

func TestWriteLayoutAndDeterminism(t *testing.T) {
	files := map[string]File{
		"README.md":          {0o644, []byte("read me")},
		"bin/start.sh":       {0o755, []byte("#!/bin/sh\n")},
		"bin/stop.sh":        {0o755, []byte("#!/bin/sh\n")},
		"config/server.conf": {0o644, []byte("a=1\n")},
	}
	a, err := Write("dist-1.0", files)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Write("dist-1.0", files)
	if !bytes.Equal(a, b) {
		t.Error("the same files made two different tarballs")
	}
	gz, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name+" "+string(rune(h.Typeflag))+" "+h.ModTime.UTC().Format("2006")+" "+h.Uname)
		if h.Typeflag == tar.TypeReg {
			body, _ := io.ReadAll(tr)
			if f := files[strings.TrimPrefix(h.Name, "dist-1.0/")]; !bytes.Equal(body, f.Content) || h.Mode != int64(f.Mode) {
				t.Errorf("%s: %q mode %o", h.Name, body, h.Mode)
			}
		}
	}
	want := []string{
		"dist-1.0/ 5 2025 root", "dist-1.0/README.md 0 2025 root",
		"dist-1.0/bin/ 5 2025 root", "dist-1.0/bin/start.sh 0 2025 root", "dist-1.0/bin/stop.sh 0 2025 root",
		"dist-1.0/config/ 5 2025 root", "dist-1.0/config/server.conf 0 2025 root",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

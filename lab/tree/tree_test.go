//go:build linux

package tree

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUnescape(t *testing.T) {
	if got := unescape(`/var/lib/with\040space`); got != "/var/lib/with space" {
		t.Errorf("unescape = %q", got)
	}
}

func TestRemove(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "machine")
	os.MkdirAll(filepath.Join(dir, "etc", "ssh"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "ssh", "key"), []byte("x"), 0o600)
	if err := Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", dir, err)
	}
	for _, bad := range []string{"/", "relative/path", ""} {
		if err := Remove(bad); err == nil {
			t.Errorf("Remove(%q) accepted", bad)
		}
	}
}

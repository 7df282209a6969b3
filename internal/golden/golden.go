// Package golden compares test output with files kept under testdata.
//
// Run a package's tests with -update to rewrite its golden files after an
// intended change, then review the diff like any other code change.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/aymanbagabas/go-udiff"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Assert fails t when got differs from the file at path, showing a unified
// diff. With -update it writes got to path instead.
func Assert(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file %s: %v (run the test with -update to create it)", path, err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("output differs from %s (run with -update if the change is intended):\n%s",
			path, udiff.Unified(path, "got", string(want), string(got)))
	}
}

package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	local, lab := filepath.Join(dir, "inventory.yaml"), filepath.Join(dir, "lab.yaml")
	if _, err := find(local, lab); err == nil || !strings.Contains(err.Error(), "-i FILE") {
		t.Fatalf("nothing there: %v", err)
	}
	os.WriteFile(lab, nil, 0o644)
	if got, err := find(local, lab); err != nil || got != lab {
		t.Fatalf("only the lab: %q %v", got, err)
	}
	os.WriteFile(local, nil, 0o644)
	if got, err := find(local, lab); err != nil || got != local {
		t.Fatalf("the current directory's file comes first: %q %v", got, err)
	}
}

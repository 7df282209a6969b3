//go:build lab

package kafkastandin

import (
	"context"
	"os"
	"testing"
)

// Building compiles the stand-in with -trimpath (a cold build of its
// dependencies), so it runs with the lab tests.
func TestBuildIsReproducible(t *testing.T) {
	wd, _ := os.Getwd()
	mod, err := FindModule(wd)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	a, err := Build(context.Background(), mod, cache)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(context.Background(), mod, cache)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("two builds differ: %+v, %+v", a, b)
	}
	if _, err := os.Stat(a.Path); err != nil {
		t.Error(err)
	}
}
